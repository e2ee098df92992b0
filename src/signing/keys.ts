/**
 * Signing keys: Ed25519 (signatures and IPNS names) and ECDSA P-256 (OpenSSF Model Signing statements),
 * kept as PKCS#8 PEM files in `<config>/keys/<name>.pem` (`$XDG_CONFIG_HOME/cairn`, else
 * `~/.config/cairn`; `CAIRN_CONFIG_DIR` overrides), readable by the user alone, or handed to a command
 * in `CAIRN_KEY` (for CI). A private key never leaves this module in any printable form: what callers
 * get is a {@link SigningKey} whose `sign` uses it, and the public facts.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto'
import { mkdir, readdir, readFile, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { base36 } from 'multiformats/bases/base36'
import { CairnError, ioError } from '../errors.js'
import { writeFileAtomic } from '../util/atomic.js'

/** The environment variable that may hold a private key (PKCS#8 PEM, or its DER in base64). */
export const KEY_ENV = 'CAIRN_KEY'
/** The key used when no name is given. */
export const DEFAULT_KEY_NAME = 'default'

/** Key algorithms cairn makes and uses. */
export type KeyType = 'ed25519' | 'ecdsa-p256'

/** The public facts of a key: safe to print. */
export interface PublicKeyInfo {
  /** The key's name (`$CAIRN_KEY` for the environment's key). */
  readonly name: string
  readonly type: KeyType
  /** SubjectPublicKeyInfo, PEM. */
  readonly publicKeyPem: string
  /** Hex sha256 of the SPKI DER: the `keyid` of DSSE signatures and the bundle's key hint. */
  readonly keyId: string
  /** For Ed25519 keys: the key's IPNS name (`k51…`, CIDv1 libp2p-key in base36). */
  readonly ipnsName?: string
}

/** A private key ready to sign, with its public facts. */
export interface SigningKey extends PublicKeyInfo {
  /** Signs `data` (Ed25519: pure; P-256: ECDSA over sha256, DER signature). */
  sign(data: Uint8Array): Uint8Array
  /** For Ed25519: the 32-byte seed, for the IPNS library only (never printed). */
  readonly seed?: Uint8Array
}

/** A key as `key list` shows it. */
export interface KeyEntry extends PublicKeyInfo {
  readonly file: string
}

/** Where keys and other per-user state live. */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CAIRN_CONFIG_DIR) return env.CAIRN_CONFIG_DIR
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config')
  return join(base, 'cairn')
}

function keysDir(env: NodeJS.ProcessEnv): string {
  return join(configDir(env), 'keys')
}

function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name))
    throw new CairnError('USAGE', `${JSON.stringify(name)} is not a key name (letters, digits, '.', '_', '-'; at most 64)`, {
      subject: name,
    })
}

/**
 * Makes a new key `name` (default {@link DEFAULT_KEY_NAME}) of `type` (default Ed25519) and writes it
 * with mode 0600 in a folder of mode 0700. Throws `USAGE` when a key of that name exists (keys are
 * never overwritten) or the name is not acceptable, `IO` when it cannot be written.
 */
export async function newKey(options: { name?: string; type?: KeyType; env?: NodeJS.ProcessEnv } = {}): Promise<KeyEntry> {
  const env = options.env ?? process.env
  const name = options.name ?? DEFAULT_KEY_NAME
  checkName(name)
  const type = options.type ?? 'ed25519'
  const { privateKey } = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const dir = keysDir(env)
  const file = join(dir, `${name}.pem`)
  if (await stat(file).catch(() => undefined))
    throw new CairnError('USAGE', `A key named ${JSON.stringify(name)} exists already (${file})`, {
      subject: name,
      hint: 'choose another name; keys are never overwritten',
    })
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await writeFileAtomic(file, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600, flush: true })
  } catch (e) {
    throw ioError('write the key', file, e)
  }
  return { ...publicInfo(name, privateKey), file }
}

/** Every key in the config folder, by name. Keys that cannot be read are listed by the error they raise. */
export async function listKeys(env: NodeJS.ProcessEnv = process.env): Promise<KeyEntry[]> {
  const dir = keysDir(env)
  let names: string[]
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.pem')).sort()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw ioError('read', dir, e)
  }
  const out: KeyEntry[] = []
  for (const n of names) {
    const name = n.slice(0, -4)
    const key = await loadKey({ name, env })
    out.push({ ...publicOnly(key), file: join(dir, n) })
  }
  return out
}

/**
 * The signing key to use: the named key from the config folder when `name` is given; else the key in
 * `CAIRN_KEY` when set; else the key named {@link DEFAULT_KEY_NAME}. Throws `AUTH` when the key is
 * missing or unreadable, when its file is readable or writable by others (saying how to fix the
 * mode), or when it is not a private key of a known type; `USAGE` for a bad name.
 */
export async function loadKey(options: { name?: string; env?: NodeJS.ProcessEnv; type?: KeyType } = {}): Promise<SigningKey> {
  const env = options.env ?? process.env
  let key: KeyObject
  let name: string
  if (options.name === undefined && env[KEY_ENV]) {
    name = `$${KEY_ENV}`
    key = parsePrivate(env[KEY_ENV], `$${KEY_ENV}`)
  } else {
    name = options.name ?? DEFAULT_KEY_NAME
    checkName(name)
    const file = join(keysDir(env), `${name}.pem`)
    let st
    try {
      st = await stat(file)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      throw new CairnError('AUTH', `No key named ${JSON.stringify(name)} (${file}: ${code ?? (e as Error).message})`, {
        subject: name,
        hint: `make one with \`cairn key new${name === DEFAULT_KEY_NAME ? '' : ` ${name}`}\`, or set ${KEY_ENV}`,
      })
    }
    if ((st.mode & 0o077) !== 0)
      throw new CairnError('AUTH', `The key file ${file} is open to other users (mode ${(st.mode & 0o777).toString(8)}); it is not used`, {
        subject: file,
        hint: `run \`chmod 600 ${file}\``,
      })
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (e) {
      throw new CairnError('AUTH', `Cannot read the key file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        subject: file,
        hint: 'check the file permissions',
      })
    }
    key = parsePrivate(text, file)
  }
  const info = publicInfo(name, key)
  if (options.type !== undefined && info.type !== options.type)
    throw new CairnError('USAGE', `Key ${name} is ${info.type}; this needs a ${options.type} key`, {
      subject: name,
      hint: `make one with \`cairn key new <name> --type ${options.type}\``,
    })
  const seed = info.type === 'ed25519' ? Buffer.from(key.export({ format: 'jwk' }).d as string, 'base64url') : undefined
  return {
    ...info,
    seed,
    sign: (data) => new Uint8Array(nodeSign(info.type === 'ed25519' ? null : 'sha256', data, key)),
  }
}

/**
 * Reads a public key given as a PEM (SPKI) text, a file holding one, or the name of a key in the config
 * folder. Throws `USAGE` when none of these is found.
 */
export async function readPublicKey(spec: string, env: NodeJS.ProcessEnv = process.env): Promise<PublicKeyInfo> {
  if (spec.includes('-----BEGIN')) return publicFromPem(spec, 'the given key')
  const text = await readFile(spec, 'utf8').catch(() => undefined)
  if (text !== undefined && text.includes('-----BEGIN')) {
    if (/PRIVATE KEY/.test(text))
      throw new CairnError('USAGE', `${spec} holds a private key; give the public key (cairn key export --public)`)
    return publicFromPem(text, spec)
  }
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(spec) && (await stat(join(keysDir(env), `${spec}.pem`)).catch(() => undefined)))
    return publicOnly(await loadKey({ name: spec, env }))
  throw new CairnError('USAGE', `${JSON.stringify(spec)} is neither a public key (PEM text or file), a key name nor an IPNS name`, {
    subject: spec,
  })
}

/** The public facts of an SPKI PEM. */
export function publicFromPem(pem: string, what: string): PublicKeyInfo {
  let key: KeyObject
  try {
    key = createPublicKey(pem)
  } catch (e) {
    throw new CairnError('USAGE', `${what} is not a public key in PEM: ${(e as Error).message}`, { subject: what })
  }
  return publicInfo(what, key)
}

/** The Ed25519 public key (SPKI facts) behind a raw 32-byte key, e.g. from an IPNS name. */
export function publicFromEd25519Raw(raw: Uint8Array, name: string): PublicKeyInfo {
  const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw])
  return publicInfo(name, createPublicKey({ key: der, format: 'der', type: 'spki' }))
}

function parsePrivate(text: string, what: string): KeyObject {
  const t = text.trim()
  let key: KeyObject
  try {
    key = t.startsWith('-----') ? createPrivateKey(t) : createPrivateKey({ key: Buffer.from(t, 'base64'), format: 'der', type: 'pkcs8' })
  } catch {
    // the error text of OpenSSL may quote the input: never pass it on
    throw new CairnError('AUTH', `${what} does not hold a private key (expected PKCS#8 PEM, or its DER in base64)`, { subject: what })
  }
  typeOf(key, what)
  return key
}

function typeOf(key: KeyObject, what: string): KeyType {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519'
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256'
  throw new CairnError('AUTH', `${what} is a ${key.asymmetricKeyType ?? 'unknown'} key (expected Ed25519 or ECDSA P-256)`, {
    subject: what,
  })
}

function publicInfo(name: string, key: KeyObject): PublicKeyInfo {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  const type = typeOf(pub, name)
  const der = pub.export({ type: 'spki', format: 'der' })
  const info = {
    name,
    type,
    publicKeyPem: pub.export({ type: 'spki', format: 'pem' }) as string,
    keyId: createHash('sha256').update(der).digest('hex'),
  }
  return type === 'ed25519' ? { ...info, ipnsName: ipnsNameOf(der.subarray(der.length - 32)) } : info
}

function publicOnly(key: SigningKey): PublicKeyInfo {
  const { name, type, publicKeyPem, keyId, ipnsName } = key
  return ipnsName === undefined ? { name, type, publicKeyPem, keyId } : { name, type, publicKeyPem, keyId, ipnsName }
}

/** The IPNS name of a raw Ed25519 public key: CIDv1, libp2p-key, identity multihash of its protobuf, base36. */
export function ipnsNameOf(raw: Uint8Array): string {
  return publicKeyFromRaw(raw).toCID().toString(base36)
}
