/**
 * The Ethereum account that signs anchors: a private key in `CAIRN_ETH_KEY` (hex), or a keystore file
 * (`--keystore`, or `CAIRN_ETH_KEYSTORE`) unlocked with `CAIRN_ETH_KEYSTORE_PASSWORD`. Messages name the
 * variable or the file, never the key or the password.
 */
import { readFile } from 'node:fs/promises'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { CairnError, ioError } from '../errors.js'
import { decryptKeystore } from './keystore.js'

/** Where the key comes from. */
export interface KeyOptions {
  /** A keystore file (default `env.CAIRN_ETH_KEYSTORE`); used when `CAIRN_ETH_KEY` is not set. */
  readonly keystore?: string
  /** Where `CAIRN_ETH_KEY`, `CAIRN_ETH_KEYSTORE` and `CAIRN_ETH_KEYSTORE_PASSWORD` are read (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv
}

/**
 * Loads the signing account. Throws `AUTH` when no key is given, when `CAIRN_ETH_KEY` is not a
 * secp256k1 private key (0x and 64 hex digits, not zero, below the curve order), or when the keystore
 * password is missing or wrong; `USAGE` for a file that is not a keystore; `IO` when it cannot be read.
 */
export async function loadAccount(options: KeyOptions = {}): Promise<PrivateKeyAccount> {
  const env = options.env ?? process.env
  const raw = env.CAIRN_ETH_KEY
  if (raw !== undefined && raw.trim() !== '') return accountFromKey(raw.trim(), 'CAIRN_ETH_KEY')
  const file = options.keystore ?? (env.CAIRN_ETH_KEYSTORE || undefined)
  if (file === undefined)
    throw new CairnError('AUTH', 'No Ethereum key to sign with: CAIRN_ETH_KEY is not set and no keystore was given', {
      hint: 'set CAIRN_ETH_KEY to a hex private key, or pass --keystore <file> with CAIRN_ETH_KEYSTORE_PASSWORD',
    })
  const password = env.CAIRN_ETH_KEYSTORE_PASSWORD
  if (password === undefined)
    throw new CairnError('AUTH', `The keystore ${file} needs a password: CAIRN_ETH_KEYSTORE_PASSWORD is not set`, { subject: file })
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw ioError('read the keystore', file, e)
  }
  return accountFromKey(decryptKeystore(text, password, file), `the keystore ${file}`)
}

function accountFromKey(key: string, where: string): PrivateKeyAccount {
  const hex = key.startsWith('0x') || key.startsWith('0X') ? key.slice(2) : key
  const bad = (why: string): CairnError =>
    new CairnError('AUTH', `${where} is not an Ethereum private key: ${why}`, {
      hint: 'expected 0x and 64 hex digits (a secp256k1 private key); the value is not shown',
    })
  if (!/^[0-9a-fA-F]*$/.test(hex)) throw bad('it holds characters that are not hex digits')
  if (hex.length !== 64) throw bad(`it has ${hex.length} hex digits (expected 64)`)
  try {
    return privateKeyToAccount(`0x${hex.toLowerCase()}`)
  } catch {
    // the library's message would quote the key
    throw bad('it is zero or not below the secp256k1 curve order')
  }
}
