/**
 * The 32-byte values an anchor holds, and how they relate to CIDs. A version CID is CIDv1, dag-json,
 * sha2-256: its digest is the anchor's `version` (and the signature's subject, and what an IPNS name
 * points at). Going back, a digest names exactly one version CID: CIDv1 + dag-json + sha2-256 + it.
 * The dataset is sha2-256 of its name's UTF-8 bytes (`printf %s NAME | sha256sum`).
 */
import { createHash } from 'node:crypto'
import { create as createDigest } from 'multiformats/hashes/digest'
import { CID, DAG_JSON, SHA2_256 } from '../cid.js'
import { CairnError } from '../errors.js'

/** A 0x-prefixed hex string, as viem and the chain write bytes. */
export type Hex = `0x${string}`

/** Thirty-two zero bytes: the `parent` of a first version. */
export const ZERO_DIGEST: Hex = `0x${'00'.repeat(32)}`

/**
 * The sha2-256 digest inside a version CID, as 0x-hex. Throws `USAGE` for a CID that is not CIDv1
 * dag-json sha2-256 (every cairn version CID is).
 */
export function versionDigest(cid: CID): Hex {
  if (cid.version !== 1 || cid.code !== DAG_JSON || cid.multihash.code !== SHA2_256 || cid.multihash.digest.length !== 32) {
    throw new CairnError('USAGE', `${cid} is not a cairn version CID (expected CIDv1, dag-json, sha2-256)`, { subject: cid.toString() })
  }
  return `0x${Buffer.from(cid.multihash.digest).toString('hex')}`
}

/** The version CID a 32-byte digest names: CIDv1, dag-json, sha2-256. Throws `USAGE` for anything but 32 bytes of hex. */
export function cidFromDigest(digest: string): CID {
  if (!/^0x[0-9a-fA-F]{64}$/.test(digest))
    throw new CairnError('USAGE', `${JSON.stringify(digest)} is not a 32-byte digest (0x and 64 hex digits)`)
  return CID.createV1(DAG_JSON, createDigest(SHA2_256, Buffer.from(digest.slice(2), 'hex')))
}

/** The anchor's `dataset`: sha2-256 of the name's UTF-8 bytes (a dataset name, or an IPNS name as `k51…`). */
export function datasetDigest(name: string): Hex {
  if (name.length === 0) throw new CairnError('USAGE', 'The dataset name to anchor under is empty')
  return `0x${createHash('sha256').update(name, 'utf8').digest('hex')}`
}
