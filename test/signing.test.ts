/**
 * Keys, `cairn sign` and `verify --signed-by`. Oracles: `@sigstore/verify` called here directly (not
 * through cairn's code) on cairn's bundles, `@sigstore/sign` making a bundle cairn must accept, node's
 * own sha256 over the version block's bytes and over each file.
 */
import { createHash, createPublicKey, generateKeyPairSync, sign as nodeSign } from 'node:crypto'
import { chmod, readFile, readdir, stat, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { bundleFromJSON } from '@sigstore/bundle'
import { DSSEBundleBuilder } from '@sigstore/sign'
import { toSignedEntity, Verifier } from '@sigstore/verify'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { validateWith } from '../src/schemas.js'
import { cairn, ensureBuilt, parseJson, type CliResult } from './helpers/cli.js'
import { builtTemplate, type BuiltDataset } from './helpers/dataset.js'
import { tempDirs } from './helpers/tmp.js'

const tmp = tempDirs('cairn-sign-')
afterEach(() => tmp.cleanup())
beforeAll(() => ensureBuilt())
const template = builtTemplate()
afterAll(() => template.dispose())

interface Ctx extends BuiltDataset {
  env: Record<string, string>
}

async function setup(): Promise<Ctx> {
  const ds = await template.copy(tmp)
  return { ...ds, env: { CAIRN_CONFIG_DIR: join(await tmp.make(), 'config'), CAIRN_KEY: undefined as unknown as string } }
}

const run = (c: Ctx, args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> =>
  cairn(args, { env: { ...c.env, ...env } })

async function ok<T>(c: Ctx, args: string[], env: Record<string, string | undefined> = {}): Promise<T> {
  const r = await run(c, [...args, '--json'], env)
  expect(r.exitCode, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0)
  return parseJson<T>(r)
}

function expectError(r: CliResult, exit: number, code: string): { message: string; hint?: string } {
  const json = parseJson<{ error: { code: string; message: string; hint?: string } }>(r)
  expect(json.error?.code, r.stdout).toBe(code)
  expect(r.exitCode).toBe(exit)
  expect(validateWith('cli/error.schema.json', json)).toEqual([])
  return json.error
}

interface SignJson {
  version: { '/': string }
  digest: string
  kept: string
  output?: string
  signer: { keyId: string; ipnsName?: string }
}

/** The bytes of a block from the dataset's store, through `cairn cat`-free means: pack it alone and read the CAR? Simpler: the store API. */
async function versionBlock(dir: string, cid: string): Promise<Uint8Array> {
  const { openDataset } = await import('../src/dataset.js')
  const { CID } = await import('multiformats/cid')
  const ds = await openDataset(dir)
  try {
    return await ds.store.get(CID.parse(cid))
  } finally {
    await ds.store.close()
  }
}

/** @sigstore/verify, offline, trusting exactly `pem` (what any Sigstore client does with a public key). */
function sigstoreVerify(bundleJson: unknown, pem: string): void {
  const publicKey = createPublicKey(pem)
  const verifier = new Verifier(
    { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [], publicKey: () => ({ publicKey, validFor: () => true }) },
    { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 },
  )
  verifier.verify(toSignedEntity(bundleFromJSON(bundleJson)))
}

describe('keys', () => {
  it('key new writes a 0600 file in a 0700 folder; list and export --public show public facts only', async () => {
    const c = await setup()
    const made = await ok<{ file: string; keyId: string; ipnsName: string; publicKeyPem: string }>(c, ['key', 'new', 'alice'])
    expect((await stat(made.file)).mode & 0o777).toBe(0o600)
    expect((await stat(join(made.file, '..'))).mode & 0o777).toBe(0o700)
    expect(made.ipnsName).toMatch(/^k51[0-9a-z]+$/)
    const secret = await readFile(made.file, 'utf8')
    const body = secret.replace(/-----[^-]+-----/g, '').replace(/\s/g, '')
    const list = await ok<{ keys: { name: string; keyId: string }[] }>(c, ['key', 'list'])
    expect(list.keys.map((k) => k.name)).toEqual(['alice'])
    const exported = await ok<{ publicKeyPem: string; keyId: string; ipnsName: string }>(c, ['key', 'export', 'alice', '--public'])
    expect(exported.keyId).toBe(made.keyId)
    // the key id is the sha256 of the SPKI DER, computed here with node alone
    const der = createPublicKey(exported.publicKeyPem).export({ type: 'spki', format: 'der' })
    expect(createHash('sha256').update(der).digest('hex')).toBe(made.keyId)
    const human = await run(c, ['key', 'export', 'alice', '--public'])
    for (const out of [JSON.stringify(made), JSON.stringify(list), JSON.stringify(exported), human.stdout, human.stderr]) {
      expect(out).not.toContain(body)
      expect(out).not.toContain('PRIVATE KEY')
    }
    expect(validateWith('cli/key-new.schema.json', made)).toEqual([])
    expect(validateWith('cli/key-list.schema.json', list)).toEqual([])
    expect(validateWith('cli/key-export.schema.json', exported)).toEqual([])
    expectError(await run(c, ['key', 'export', 'alice', '--json']), 2, 'USAGE')
    expectError(await run(c, ['key', 'new', 'alice', '--json']), 2, 'USAGE')
  })

  it('refuses a key file open to others, saying how to fix its mode; a missing key is AUTH too', async () => {
    const c = await setup()
    const made = await ok<{ file: string }>(c, ['key', 'new'])
    await chmod(made.file, 0o644)
    const e = expectError(await run(c, ['sign', '-C', c.dir, '--json']), 8, 'AUTH')
    expect(e.message).toContain('644')
    expect(e.hint).toBe(`run \`chmod 600 ${made.file}\``)
    expect(await readdir(join(c.dir, '.cairn'))).not.toContain('signatures')
    expectError(await run(c, ['sign', '-C', c.dir, '--key', 'nobody', '--json']), 8, 'AUTH')
  })

  it('CAIRN_KEY (PKCS#8 PEM) signs without a config folder, and is never echoed', async () => {
    const c = await setup()
    const { privateKey } = generateKeyPairSync('ed25519')
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
    const r = await run(c, ['sign', '-C', c.dir, '--json'], { CAIRN_KEY: pem })
    expect(r.exitCode, r.stdout).toBe(0)
    const body = pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, '')
    expect(r.stdout + r.stderr).not.toContain(body)
    const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
    expect(parseJson<SignJson>(r).signer.keyId).toBe(createHash('sha256').update(spki).digest('hex'))
    const bad = await run(c, ['sign', '-C', c.dir, '--json'], { CAIRN_KEY: 'not-a-key-but-a-secret-value' })
    const e = expectError(bad, 8, 'AUTH')
    expect(bad.stdout + bad.stderr).not.toContain('not-a-key-but-a-secret-value')
    expect(e.message).toContain('CAIRN_KEY')
  })
})

describe('sign', () => {
  it('makes a v0.3 bundle that @sigstore/verify accepts, over the sha256 inside the version CID, with the release predicate', async () => {
    const c = await setup()
    await ok(c, ['key', 'new'])
    const pub = await ok<{ publicKeyPem: string; ipnsName: string }>(c, ['key', 'export', '--public'])
    const out = join(await tmp.make(), 'v2.sigstore.json')
    const signed = await ok<SignJson>(c, ['sign', '-C', c.dir, '-o', out])
    expect(signed.version['/']).toBe(c.v2)
    const block = await versionBlock(c.dir, c.v2)
    expect(signed.digest).toBe(createHash('sha256').update(block).digest('hex'))
    const text = await readFile(out, 'utf8')
    expect(await readFile(signed.kept, 'utf8')).toBe(text)
    expect(signed.kept).toBe(join(c.dir, '.cairn', 'signatures', c.v2, `${signed.signer.keyId}.sigstore.json`))
    const bundle = JSON.parse(text) as { mediaType: string; dsseEnvelope: { payload: string; payloadType: string } }
    expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json')
    sigstoreVerify(bundle, pub.publicKeyPem)
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'))
    expect(bundle.dsseEnvelope.payloadType).toBe('application/vnd.in-toto+json')
    expect(statement._type).toBe('https://in-toto.io/Statement/v1')
    expect(statement.subject).toEqual([{ name: `tiny-instruct@${c.v2}`, uri: `ipfs://${c.v2}`, digest: { sha256: signed.digest } }])
    expect(statement.predicateType).toBe('https://cairn.dev/attestation/release/v1')
    expect(validateWith('release-predicate.schema.json', statement.predicate)).toEqual([])
    expect(statement.predicate).toMatchObject({
      dataset: 'tiny-instruct',
      version: c.v2,
      parent: c.v1,
      publisher: { ipnsName: pub.ipnsName },
    })
    expect(validateWith('cli/sign.schema.json', signed)).toEqual([])
    // another key's public key does not verify it
    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string
    expect(() => sigstoreVerify(bundle, other)).toThrow()
  })

  it('keeps one bundle per key: a generator and a curator sign the same release', async () => {
    const c = await setup()
    await ok(c, ['key', 'new', 'generator'])
    await ok(c, ['key', 'new', 'curator'])
    await ok(c, ['sign', '-C', c.dir, '--key', 'generator'])
    await ok(c, ['sign', '-C', c.dir, '--key', 'curator'])
    await ok(c, ['sign', '-C', c.dir, '--key', 'curator'])
    expect(await readdir(join(c.dir, '.cairn', 'signatures', c.v2))).toHaveLength(2)
    for (const k of ['generator', 'curator']) {
      const v = await ok<{ signatures: { status: string; others: number } }>(c, ['verify', '-C', c.dir, '--signed-by', k])
      expect(v.signatures).toMatchObject({ status: 'signed', others: 1 })
    }
  })
})

describe('verify --signed-by', () => {
  it('accepts a key name, a PEM file and the IPNS name; reports an ancestor as covered by the signed descendant', async () => {
    const c = await setup()
    const key = await ok<{ ipnsName: string }>(c, ['key', 'new'])
    const pubFile = join(await tmp.make(), 'key.pub')
    await writeFile(pubFile, (await ok<{ publicKeyPem: string }>(c, ['key', 'export', '--public'])).publicKeyPem)
    await ok(c, ['sign', '-C', c.dir])
    for (const by of ['default', pubFile, key.ipnsName, `/ipns/${key.ipnsName}`]) {
      const v = await ok<{ ok: boolean; signatures: { status: string; depth: number } }>(c, ['verify', '-C', c.dir, '--signed-by', by])
      expect(v.signatures).toMatchObject({ status: 'signed', depth: 0 })
      expect(validateWith('cli/verify.schema.json', v)).toEqual([])
    }
    // v1 is not signed itself; v2 (signed) names it as parent
    await ok(c, ['clone', c.v1, join(c.dir, '..', 'v1'), '--from', c.dir])
    const r = await run(c, ['verify', c.v1, join(c.dir, '..', 'v1'), '-C', c.dir, '--signed-by', key.ipnsName, '--json'])
    const v = parseJson<{ ok: boolean; signatures: { status: string; coveredBy: { '/': string }; depth: number } }>(r)
    expect(v.signatures).toMatchObject({ status: 'covered', coveredBy: { '/': c.v2 }, depth: 1 })
    const human = await run(c, ['verify', c.v1, join(c.dir, '..', 'v1'), '-C', c.dir, '--signed-by', 'default'])
    expect(human.stdout).toContain(`covered by the signature of ${c.v2}`)
  })

  it('refuses a tampered bundle (5), a signature over another digest (5), and a key that signed nothing (11)', async () => {
    const c = await setup()
    await ok(c, ['key', 'new'])
    await ok(c, ['key', 'new', 'stranger'])
    const signed = await ok<SignJson>(c, ['sign', '-C', c.dir])
    expectError(await run(c, ['verify', '-C', c.dir, '--signed-by', 'stranger', '--json']), 11, 'NOT_SIGNED')

    const original = await readFile(signed.kept, 'utf8')
    const bundle = JSON.parse(original) as { dsseEnvelope: { payload: string } }
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'))
    statement.predicate.totals.rows += 1
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString('base64')
    await writeFile(signed.kept, JSON.stringify(bundle))
    const tampered = expectError(await run(c, ['verify', '-C', c.dir, '--signed-by', 'default', '--json']), 5, 'SIGNATURE_INVALID')
    expect(tampered.message).toMatch(/tampered/)

    // a genuine signature of v1 put beside v2: valid, but over another digest
    await writeFile(signed.kept, original)
    const v1Signed = await ok<SignJson>(c, ['sign', c.v1, '-C', c.dir])
    await writeFile(signed.kept, await readFile(v1Signed.kept, 'utf8'))
    const other = expectError(await run(c, ['verify', '-C', c.dir, '--signed-by', 'default', '--json']), 5, 'SIGNATURE_INVALID')
    expect(other.message).toMatch(/another digest/)
  })

  it('accepts a bundle made by @sigstore/sign with a test key', async () => {
    const c = await setup()
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string
    const keyId = createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex')
    const digest = createHash('sha256')
      .update(await versionBlock(c.dir, c.v2))
      .digest('hex')
    const statement = {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: `tiny-instruct@${c.v2}`, uri: `ipfs://${c.v2}`, digest: { sha256: digest } }],
      predicateType: 'https://cairn.dev/attestation/release/v1',
      predicate: { note: 'made by @sigstore/sign' },
    }
    const builder = new DSSEBundleBuilder({
      signer: {
        sign: async (data: Buffer) => ({
          signature: nodeSign(null, data, privateKey),
          key: { $case: 'publicKey', publicKey: pem, hint: keyId },
        }),
      },
      witnesses: [],
    })
    const made = await builder.create({ data: Buffer.from(JSON.stringify(statement)), type: 'application/vnd.in-toto+json' })
    const { bundleToJSON } = await import('@sigstore/bundle')
    const dir = join(c.dir, '.cairn', 'signatures', c.v2)
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, `${keyId}.sigstore.json`), JSON.stringify(bundleToJSON(made)))
    const pubFile = join(await tmp.make(), 'oracle.pub')
    await writeFile(pubFile, pem)
    const v = await ok<{ signatures: { status: string; signer: { keyId: string } } }>(c, ['verify', '-C', c.dir, '--signed-by', pubFile])
    expect(v.signatures).toMatchObject({ status: 'signed', signer: { keyId } })
  })
})

describe('sign --oms (OpenSSF Model Signing v1.0)', () => {
  it('signs every file with its plain sha256 (computed here by reading the files), ECDSA P-256, verifiable by @sigstore/verify', async () => {
    const c = await setup()
    await ok(c, ['key', 'new'])
    await ok(c, ['key', 'new', 'oms', '--type', 'ecdsa-p256'])
    const pem = (await ok<{ publicKeyPem: string }>(c, ['key', 'export', 'oms', '--public'])).publicKeyPem
    const sigFile = join(await tmp.make(), 'model.sig')
    const signed = await ok<{ oms: { file: string; files: number } }>(c, ['sign', '-C', c.dir, '--oms', '--oms-output', sigFile])
    const bundle = JSON.parse(await readFile(sigFile, 'utf8'))
    sigstoreVerify(bundle, pem)
    expect(bundle.verificationMaterial.publicKey.hint).toBe(createHash('sha256').update(pem).digest('hex'))
    const st = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'))
    expect(st.predicateType).toBe('https://model_signing/signature/v1.0')
    expect(st.predicate.serialization).toMatchObject({ method: 'files', hash_type: 'sha256' })
    const resources = st.predicate.resources as { name: string; algorithm: string; digest: string }[]
    expect(resources).toHaveLength(signed.oms.files)
    const root = createHash('sha256')
    for (const r of resources) {
      expect(r.digest).toBe(
        createHash('sha256')
          .update(await readFile(join(c.dir, r.name)))
          .digest('hex'),
      )
      root.update(Buffer.from(r.digest, 'hex'))
    }
    expect(resources.map((r) => r.name)).toEqual(resources.map((r) => r.name).sort())
    expect(st.subject[0].digest.sha256).toBe(root.digest('hex'))
    // by default the signature stays in the store: the data folder still verifies
    const again = await ok<{ oms: { file: string } }>(c, ['sign', '-C', c.dir, '--oms'])
    expect(again.oms.file).toBe(join(c.dir, '.cairn', 'oms', `${c.v2}.sig`))
    expect(JSON.parse(await readFile(again.oms.file, 'utf8')).dsseEnvelope.payload).toBe(bundle.dsseEnvelope.payload)
    expect((await ok<{ ok: boolean }>(c, ['verify', '-C', c.dir])).ok).toBe(true)
    // a clone without the files' blocks: one-block files need none (the sha256 is the CID's digest)
    const clone = join(await tmp.make(), 'clone')
    await ok(c, ['clone', c.v2, clone, '--from', c.dir])
    await ok(c, ['key', 'new', 'oms2', '--type', 'ecdsa-p256'])
    const fromClone = await ok<{ oms: { file: string } }>(c, ['sign', '-C', clone, '--oms', '--oms-key', 'oms2'])
    const st2 = JSON.parse(
      Buffer.from(JSON.parse(await readFile(fromClone.oms.file, 'utf8')).dsseEnvelope.payload, 'base64').toString('utf8'),
    )
    expect(st2.predicate.resources).toEqual(resources)
  })
})
