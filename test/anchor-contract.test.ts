/**
 * The anchor contract and the values an anchor holds: the shipped bytecode is what solc-js makes of
 * the shipped source; digests and the dataset hash against independent implementations (coreutils'
 * sha256sum, viem's ABI decoder); the keystore reader against the Web3 Secret Storage test vectors.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Keystore } from 'ox'
import { decodeFunctionData } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { describe, expect, it } from 'vitest'
import * as artifact from '../src/anchors/artifact.generated.js'
import { loadAccount } from '../src/anchors/key.js'
import { decryptKeystore } from '../src/anchors/keystore.js'
import { isCairnError } from '../src/index.js'
import { anchorCalldata } from '../src/anchors/contract.js'
import { cidFromDigest, datasetDigest, versionDigest, ZERO_DIGEST } from '../src/anchors/digest.js'
import { CID } from '../src/cid.js'
import { thrown } from './helpers/dataset.js'
// @ts-expect-error: a plain JS build script, without type declarations
import { compile } from '../bin/compile-anchor.js'

describe('the anchor contract', () => {
  it('the shipped ABI and bytecode equal a fresh compile of src/anchors/CairnAnchor.sol by solc-js (else run bin/compile-anchor.js)', () => {
    const fresh = compile() as { compiler: string; abi: unknown; bytecode: string; deployedBytecode: string }
    expect(fresh.compiler).toBe(artifact.compiler)
    expect(fresh.bytecode).toBe(artifact.bytecode)
    expect(fresh.deployedBytecode).toBe(artifact.deployedBytecode)
    expect(fresh.abi).toEqual(artifact.abi)
    // small enough to audit: the runtime code is a few hundred bytes
    expect((artifact.deployedBytecode.length - 2) / 2).toBeLessThan(600)
  }, 60_000)
})

describe('anchor values', () => {
  const v = CID.parse('baguqeerauxiahh4wkgvbmtay3yvnivnb7dnulspas6z2ckwtipzzzyuo22ga')

  it('a version digest is the sha2-256 inside the CID, and the CID comes back from it with dag-json', () => {
    const d = versionDigest(v)
    expect(d).toBe(`0x${Buffer.from(v.multihash.digest).toString('hex')}`)
    expect(cidFromDigest(d).equals(v)).toBe(true)
  })

  it('refuses CIDs that are not version CIDs, and digests that are not 32 bytes', async () => {
    const raw = CID.parse('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e')
    expect(() => versionDigest(raw)).toThrow(/not a cairn version CID/)
    expect(() => cidFromDigest('0x1234')).toThrow(/not a 32-byte digest/)
    expect(isCairnError(await thrown(async () => cidFromDigest('zz')), 'USAGE')).toBe(true)
  })

  it.each(['tiny-instruct', 'k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8', 'ünïcode name'])(
    'the dataset digest of %j is `printf %%s NAME | sha256sum`',
    (name) => {
      const out = execFileSync('sha256sum', { input: Buffer.from(name, 'utf8'), stdio: ['pipe', 'pipe', 'ignore'] }).toString()
      expect(datasetDigest(name)).toBe(`0x${out.split(' ')[0]}`)
    },
  )

  it('the calldata decodes with viem to the same four arguments', () => {
    const args = { dataset: datasetDigest('d'), version: versionDigest(v), parent: ZERO_DIGEST, sequence: 1 }
    const data = anchorCalldata(args)
    expect(data.length).toBe(2 + 8 + 4 * 64)
    const decoded = decodeFunctionData({ abi: artifact.abi, data })
    expect(decoded.functionName).toBe('anchor')
    expect(decoded.args).toEqual([args.dataset, args.version, args.parent, 1n])
  })
})

function thrownSync(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error('expected a throw')
}

describe('keys', () => {
  // the Web3 Secret Storage definition's test vectors (password "testpassword")
  const SECRET = '0x7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d'
  const pbkdf2 = {
    crypto: {
      cipher: 'aes-128-ctr',
      cipherparams: { iv: '6087dab2f9fdbbfaddc31a909735c1e6' },
      ciphertext: '5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46',
      kdf: 'pbkdf2',
      kdfparams: { c: 262144, dklen: 32, prf: 'hmac-sha256', salt: 'ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd' },
      mac: '517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2',
    },
    id: '3198bc9c-6672-5ab3-d995-4942343ae5b6',
    version: 3,
  }
  const scrypt = {
    crypto: {
      cipher: 'aes-128-ctr',
      cipherparams: { iv: '83dbcc02d8ccb40e466191a123791e0e' },
      ciphertext: 'd172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c',
      kdf: 'scrypt',
      kdfparams: { dklen: 32, n: 262144, r: 1, p: 8, salt: 'ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19' },
      mac: '2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097',
    },
    id: '3198bc9c-6672-5ab3-d995-4942343ae5b6',
    version: 3,
  }

  it.each([
    ['pbkdf2', pbkdf2],
    ['scrypt', scrypt],
  ])(
    'decrypts the %s test vector to its secret and address 0x008aeeda…',
    async (_, vector) => {
      expect(decryptKeystore(JSON.stringify(vector), 'testpassword', 'k.json')).toBe(SECRET)
      const dir = await mkdtemp(join(tmpdir(), 'cairn-key-'))
      await writeFile(join(dir, 'k.json'), JSON.stringify(vector))
      const account = await loadAccount({ keystore: join(dir, 'k.json'), env: { CAIRN_ETH_KEYSTORE_PASSWORD: 'testpassword' } })
      expect(account.address.toLowerCase()).toBe('0x008aeeda4d805471df9b2a5b0f38a0c3bcba786b')
    },
    60_000,
  )

  it.each([
    ['scrypt n=8192 r=8 p=1 (foundry, geth light)', () => Keystore.scrypt({ password: 'pw', n: 8192, r: 8, p: 1 })],
    ['pbkdf2 c=10000', () => Keystore.pbkdf2({ password: 'pw', iterations: 10_000 })],
  ])("decrypts a keystore that ox (viem's primitives) encrypted: %s", (_, derive) => {
    const [key, opts] = derive()
    const secret = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318'
    const keystore = Keystore.encrypt(secret, key, opts)
    expect(decryptKeystore(JSON.stringify(keystore), 'pw', 'k.json')).toBe(secret)
    expect(
      isCairnError(
        thrownSync(() => decryptKeystore(JSON.stringify(keystore), 'pW', 'k.json')),
        'AUTH',
      ),
    ).toBe(true)
  })

  it('a wrong password is AUTH, a file that is not a keystore is USAGE; neither message holds a secret', async () => {
    const wrong = await thrown(async () => decryptKeystore(JSON.stringify(pbkdf2), 'nope', 'k.json'))
    expect(isCairnError(wrong, 'AUTH')).toBe(true)
    expect((wrong as Error).message).toMatch(/Wrong password/)
    for (const bad of ['not json', '{"version":1}', JSON.stringify({ ...pbkdf2, crypto: { ...pbkdf2.crypto, kdf: 'argon2' } })]) {
      const e = await thrown(async () => decryptKeystore(bad, 'testpassword', 'k.json'))
      expect(isCairnError(e, 'USAGE'), String(e)).toBe(true)
      expect((e as Error).message).not.toContain('testpassword')
    }
  })

  it.each([
    ['not hex', 'zz'.repeat(32), /not hex digits/],
    ['63 digits', '0x' + 'a'.repeat(63), /63 hex digits/],
    ['zero', '0x' + '0'.repeat(64), /zero or not below/],
    ['the curve order', '0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141', /zero or not below/],
  ])('CAIRN_ETH_KEY %s: AUTH, the value never in the message', async (_, key, message) => {
    const e = await thrown(() => loadAccount({ env: { CAIRN_ETH_KEY: key } }))
    expect(isCairnError(e, 'AUTH')).toBe(true)
    expect((e as Error).message).toMatch(message)
    expect(JSON.stringify({ m: (e as Error).message, h: (e as { hint?: string }).hint })).not.toContain(key.replace(/^0x/, '').slice(0, 16))
  })

  it('no key at all is AUTH naming CAIRN_ETH_KEY; a good key gives the account viem derives', async () => {
    const e = await thrown(() => loadAccount({ env: {} }))
    expect(isCairnError(e, 'AUTH')).toBe(true)
    expect((e as Error).message).toMatch(/CAIRN_ETH_KEY/)
    const account = await loadAccount({ env: { CAIRN_ETH_KEY: SECRET.slice(2).toUpperCase() } })
    expect(account.address).toBe(privateKeyToAccount(SECRET).address)
  })
})
