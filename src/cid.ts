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

const BASE32 = new TextEncoder().encode('abcdefghijklmnopqrstuvwxyz234567')
/** The value of each base32 character's code, -1 for the others. */
const BASE32_VALUE = new Int8Array(128).fill(-1)
BASE32.forEach((code, value) => (BASE32_VALUE[code] = value))

/**
 * Parses a CID's text: `CID.parse(text)`, several times faster for the CIDv1 base32 text cairn writes
 * (in manifests and caches), without the cache of strings `CID.parse` attaches to every CID it makes.
 * Any other text goes to `CID.parse`, which also gives the errors.
 */
export function cidFromText(text: string): CID {
  const bytes = text.length <= 256 ? cidTextBytes(text, 0, text.length) : undefined
  if (bytes === undefined) return CID.parse(text)
  return sha256CidV1(bytes) ?? notV0(CID.decode(bytes), text)
}

/**
 * The bytes `text[start…end)` stands for when it is multibase base32 (`b…`, as cairn writes CIDs), or
 * undefined for anything else; decoded into `into` when it has room (then a view of it is returned).
 * Whether the bytes are a CID is the caller's to check.
 */
export function cidTextBytes(text: string, start: number, end: number, into?: Uint8Array): Uint8Array | undefined {
  if (text.charCodeAt(start) !== 0x62) return undefined
  const length = ((end - start - 1) * 5) >>> 3
  const bytes = into !== undefined && into.length >= length ? into.subarray(0, length) : new Uint8Array(length)
  let n = 0
  let bits = 0
  let value = 0
  for (let i = start + 1; i < end; i++) {
    const c = text.charCodeAt(i)
    const v = c < 128 ? BASE32_VALUE[c] : -1
    if (v < 0) return undefined
    value = ((value << 5) | v) & 0xfff // at most 7 bits are pending before the next 5
    bits += 5
    if (bits >= 8) {
      bits -= 8
      bytes[n++] = value >>> bits
    }
  }
  // leftover bits must be fewer than a character's, and zero: anything else is text CID.parse refuses
  if (bits >= 5 || (value & ((1 << bits) - 1)) !== 0) return undefined
  return bytes
}

/** The CID whose bytes are `bytes`, built around them when it is a CIDv1 of sha2-256 (every CID cairn makes). */
export function cidFromBytes(bytes: Uint8Array): CID {
  return sha256CidV1(bytes) ?? CID.decode(bytes)
}

/**
 * The CID of `bytes` when they are a CIDv1 with a sha2-256 multihash (every CID cairn makes), built
 * around `bytes` themselves: `CID.decode` would copy them once more. Undefined for any other bytes.
 */
function sha256CidV1(bytes: Uint8Array): CID | undefined {
  if (bytes[0] !== 1) return undefined
  // the codec: a varint of one or two bytes
  let code = bytes[1]
  let at = 2
  if (code >= 0x80) {
    if (bytes[2] === undefined || bytes[2] >= 0x80 || bytes[2] === 0) return undefined
    code = (code & 0x7f) | (bytes[2] << 7)
    at = 3
  }
  if (bytes[at] !== SHA2_256 || bytes[at + 1] !== 32 || bytes.length !== at + 34) return undefined
  const multihash = bytes.subarray(at)
  return new CID(1, code, new Digest.Digest(SHA2_256, 32, multihash.subarray(2), multihash), bytes)
}

/** `cid`, unless it is a CIDv0, which has no multibase text (CID.parse says so). */
function notV0(cid: CID, text: string): CID {
  return cid.version === 0 ? CID.parse(text) : cid
}

/**
 * The CIDv1 of `cid` as base32 text: `cid.toV1().toString()`, several times faster (the generic
 * multibase encoder dominated writing many small blocks), and a flat string, not a rope of 60 pieces.
 * A CIDv0 and its CIDv1 give the same text.
 */
export function cidText(cid: CID): string {
  return cidBytesText(cid.version === 0 ? cid.toV1().bytes : cid.bytes)
}

/** The base32 text of a CIDv1 given as its bytes (see {@link cidText}). */
export function cidBytesText(bytes: Uint8Array): string {
  const length = 1 + Math.ceil((bytes.length * 8) / 5)
  // written into one reused buffer and read out as latin1: a single allocation, the string itself
  const out = length <= textBuffer.length ? textBuffer : Buffer.allocUnsafe(length)
  out[0] = 0x62 // 'b', the multibase prefix of base32
  let n = 1
  let bits = 0
  let value = 0
  for (let i = 0; i < bytes.length; i++) {
    value = ((value << 8) | bytes[i]) & 0xfff // the 12 low bits are all that can still be pending
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out[n++] = BASE32[(value >>> bits) & 31]
    }
  }
  if (bits > 0) out[n++] = BASE32[(value << (5 - bits)) & 31]
  return out.toString('latin1', 0, n)
}

/** Room for the text of any CID but an identity CID carrying a large block. */
const textBuffer = Buffer.allocUnsafe(256)
