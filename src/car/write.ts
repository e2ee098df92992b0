/**
 * Writing CARv1 (https://ipld.io/specs/transport/car/carv1/): a varint-prefixed dag-cbor header
 * `{version: 1, roots}`, then one section per block: varint(length of CID + block), the CID, the block.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { varint } from 'multiformats'
import type { CID } from '../cid.js'

/** The header of a CAR with these roots, its length prefix included. */
export function carHeader(roots: readonly CID[]): Uint8Array {
  const header = dagCbor.encode({ version: 1, roots: [...roots] })
  const out = new Uint8Array(varint.encodingLength(header.length) + header.length)
  varint.encodeTo(header.length, out)
  out.set(header, out.length - header.length)
  return out
}

/** What precedes a block of `length` bytes in its CAR section: the length prefix and the CID. */
export function sectionPrefix(cid: CID, length: number): Uint8Array {
  const n = cid.bytes.length + length
  const size = varint.encodingLength(n)
  const out = new Uint8Array(size + cid.bytes.length)
  varint.encodeTo(n, out)
  out.set(cid.bytes, size)
  return out
}

/** Bytes a block takes in a CAR: length prefix, CID, block. */
export function sectionLength(cid: CID, length: number): number {
  const n = cid.bytes.length + length
  return varint.encodingLength(n) + n
}
