/**
 * CID helpers shared by the whole library: hashing with Node's native sha2-256 (much faster than the
 * web-crypto path multiformats uses by default) and the link type with a phantom payload type.
 */
import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import * as raw from 'multiformats/codecs/raw'

export { CID }

/** Multicodec codes cairn writes. */
export const RAW = raw.code // 0x55
export const DAG_PB = 0x70
export const DAG_JSON = 0x0129
export const SHA2_256 = 0x12

/** A CID whose block decodes to a `T` (a phantom type: documentation the compiler checks). */
export type Link<T> = CID & { readonly __payload?: T }

/** sha2-256 of `bytes` as a CIDv1 with the given codec. */
export function cidFor<T = unknown>(code: number, bytes: Uint8Array): Link<T> {
  const digest = createHash('sha256').update(bytes).digest()
  return CID.createV1(code, Digest.create(SHA2_256, digest)) as Link<T>
}

/** Parses a CID string, or returns undefined when it is not one. */
export function tryParseCid(text: string): CID | undefined {
  try {
    return CID.parse(text)
  } catch {
    return undefined
  }
}
