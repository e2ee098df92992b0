/**
 * IPNS names as users write them (`k51…`, `/ipns/k51…`, `ipns://k51…`) and the Ed25519 key inside one:
 * a name is a CIDv1 (libp2p-key 0x72) of the identity multihash of the key's protobuf, so the key is
 * read from the name itself and nothing else is trusted for it.
 */
import { CID } from 'multiformats/cid'
import { base36 } from 'multiformats/bases/base36'
import { CairnError } from '../errors.js'

const LIBP2P_KEY = 0x72
/** Protobuf prefix of an Ed25519 public key: field 1 (KeyType) = 1, field 2 (Data) of 32 bytes. */
const ED25519_PB_PREFIX = Uint8Array.from([0x08, 0x01, 0x12, 0x20])

/** True when `text` is written as an IPNS name (it may still be invalid). */
export function looksLikeName(text: string): boolean {
  return /^(ipns:\/\/|\/ipns\/)/.test(text) || /^k51[0-9a-z]{20,}$/.test(text)
}

/** A parsed IPNS name. */
export interface IpnsName {
  /** The canonical form, `k51…` (base36 CIDv1). */
  readonly name: string
  readonly cid: CID
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array
}

/**
 * Parses `k51…`, `/ipns/k51…` or `ipns://k51…` (any multibase of the CID is accepted and given back as
 * base36). Throws `USAGE` for anything else, including names of keys other than Ed25519 (whose key is
 * not inlined in the name).
 */
export function parseName(text: string): IpnsName {
  const bare = text
    .replace(/^ipns:\/\//, '')
    .replace(/^\/ipns\//, '')
    .replace(/\/+$/, '')
  let cid: CID
  try {
    cid = bare.startsWith('k') ? CID.parse(bare, base36) : CID.parse(bare)
  } catch {
    throw new CairnError('USAGE', `${JSON.stringify(text)} is not an IPNS name (expected k51…, /ipns/k51… or ipns://k51…)`, {
      subject: text,
    })
  }
  const mh = cid.multihash
  if (cid.version !== 1 || cid.code !== LIBP2P_KEY || mh.code !== 0x00 || mh.digest.length !== 36 || !prefixed(mh.digest))
    throw new CairnError(
      'USAGE',
      `${JSON.stringify(text)} is not the IPNS name of an Ed25519 key (expected a libp2p-key CID inlining the key)`,
      {
        subject: text,
      },
    )
  return { name: cid.toString(base36), cid, publicKey: mh.digest.slice(4) }
}

function prefixed(digest: Uint8Array): boolean {
  return ED25519_PB_PREFIX.every((b, i) => digest[i] === b)
}
