/**
 * Decrypting an Ethereum keystore file (Web3 Secret Storage, version 3: scrypt or pbkdf2-sha256, then
 * aes-128-ctr, with a keccak-256 MAC), as geth, foundry's `cast wallet` and ox write them. viem
 * signs but does not read keystores; node's crypto does the KDF and the cipher (ox, viem's own
 * primitives, derives the scrypt keys OpenSSL refuses).
 */
import { createDecipheriv, pbkdf2Sync, scryptSync, timingSafeEqual } from 'node:crypto'
import { Bytes, Keystore } from 'ox'
import { keccak256 } from 'viem'
import { CairnError } from '../errors.js'

const HEX = /^(0x)?[0-9a-fA-F]*$/
// the largest scrypt cost we agree to pay: geth's "standard" n = 2^18 with r = 8 (256 MiB)
const MAX_SCRYPT_MEMORY = 512 * 1024 * 1024

/**
 * The private key (0x-hex) inside a v3 keystore's JSON text, decrypted with `password`. Throws `AUTH`
 * when the password is wrong (the MAC does not match) and `USAGE` when the text is not a v3 keystore
 * (naming the field, never a secret).
 */
export function decryptKeystore(text: string, password: string, file: string): `0x${string}` {
  const bad = (why: string): CairnError =>
    new CairnError('USAGE', `${file} is not an Ethereum keystore (version 3): ${why}`, { subject: file })
  let json: Record<string, unknown>
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    throw bad('not JSON')
  }
  if (json?.version !== 3) throw bad(`version ${JSON.stringify(json?.version)} (expected 3)`)
  const crypto = (json.crypto ?? json.Crypto) as Record<string, unknown> | undefined
  if (!crypto || typeof crypto !== 'object') throw bad('no crypto section')
  const hex = (v: unknown, name: string, bytes?: number): Buffer => {
    if (typeof v !== 'string' || !HEX.test(v) || v.replace(/^0x/, '').length % 2 !== 0) throw bad(`${name} is not hex`)
    const b = Buffer.from(v.replace(/^0x/, ''), 'hex')
    if (bytes !== undefined && b.length !== bytes) throw bad(`${name} is ${b.length} bytes (expected ${bytes})`)
    return b
  }
  if (crypto.cipher !== 'aes-128-ctr') throw bad(`cipher ${JSON.stringify(crypto.cipher)} (expected aes-128-ctr)`)
  const iv = hex((crypto.cipherparams as { iv?: unknown } | undefined)?.iv, 'cipherparams.iv', 16)
  const ciphertext = hex(crypto.ciphertext, 'ciphertext', 32)
  const mac = hex(crypto.mac, 'mac', 32)
  const params = (crypto.kdfparams ?? {}) as Record<string, unknown>
  const int = (v: unknown, name: string, max: number): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max)
      throw bad(`kdfparams.${name} is not a whole number in 1…${max}`)
    return v
  }
  const dklen = int(params.dklen, 'dklen', 64)
  if (dklen < 32) throw bad('kdfparams.dklen is below 32')
  const salt = hex(params.salt, 'kdfparams.salt')
  let key: Buffer
  if (crypto.kdf === 'scrypt') {
    const N = int(params.n, 'n', 2 ** 20)
    const r = int(params.r, 'r', 64)
    const p = int(params.p, 'p', 64)
    if ((N & (N - 1)) !== 0) throw bad('kdfparams.n is not a power of 2')
    const memory = 128 * r * (N + p + 2)
    if (memory > MAX_SCRYPT_MEMORY) throw bad('kdfparams ask for more than 512 MiB of scrypt memory')
    try {
      key = scryptSync(Buffer.from(password, 'utf8'), salt, dklen, { N, r, p, maxmem: memory + 1024 * 1024 })
    } catch {
      // OpenSSL refuses N >= 2^(16 r), which the secret-storage test vector and ox (viem's keystore
      // writer) use by default (r = 1, N = 2^18): derive those with ox's scrypt (@noble/hashes) instead
      const derived = Keystore.toKey(json as unknown as Keystore.Keystore, { password })
      key = Buffer.from(Bytes.from(typeof derived === 'function' ? derived() : derived))
    }
  } else if (crypto.kdf === 'pbkdf2') {
    if (params.prf !== 'hmac-sha256') throw bad(`kdfparams.prf ${JSON.stringify(params.prf)} (expected hmac-sha256)`)
    key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, int(params.c, 'c', 10_000_000), dklen, 'sha256')
  } else {
    throw bad(`kdf ${JSON.stringify(crypto.kdf)} (expected scrypt or pbkdf2)`)
  }
  const expected = Buffer.from(keccak256(Buffer.concat([key.subarray(16, 32), ciphertext])).slice(2), 'hex')
  if (!timingSafeEqual(expected, mac))
    throw new CairnError('AUTH', `Wrong password for the keystore ${file} (its MAC does not match)`, {
      subject: file,
      hint: 'set CAIRN_ETH_KEYSTORE_PASSWORD to the keystore password',
    })
  const decipher = createDecipheriv('aes-128-ctr', key.subarray(0, 16), iv)
  const secret = Buffer.concat([decipher.update(ciphertext), decipher.final()])
  return `0x${secret.toString('hex')}`
}
