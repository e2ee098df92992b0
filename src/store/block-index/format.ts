/**
 * The layout of a sorted run (`.cairn/block-index/<name>.run`, docs/store.md): a header, a fan-out
 * table, then fixed-width records sorted by key. A record is
 * `[fingerprint 8][cid length 1][cid, zero-padded to the run's width][pack 4][offset 6][length 4]`, the
 * fingerprint being the CID's last 8 bytes (the end of its digest: uniform for a cryptographic hash). The
 * key is the first `9 + width` bytes, compared as bytes. The fan-out table has `2^bits + 1` little-endian
 * u32: entry `b` is the first record whose fingerprint's top `bits` bits are at least `b`. After the
 * records, a Bloom filter of the keys ({@link BLOOM_HASHES} bits per key, at positions
 * `(lo + i × (hi | 1)) mod m` of the fingerprint's two halves), so that a block a run lacks (every new
 * block a build puts) costs no read once the filter is loaded.
 */

export const MAGIC = 0x4e555243 // 'CRUN' little-endian
export const RUN_VERSION = 1
/** Fixed part of the header, before the pack names and ranges. */
export const FIXED_HEADER = 40
/** The bytes of a record after its key: pack, offset, length. */
export const VALUE_BYTES = 14
/** Bits of Bloom filter per record a run may hold (~1% false positives with {@link BLOOM_HASHES}). */
export const BLOOM_BITS_PER_KEY = 10
export const BLOOM_HASHES = 7

/** The longest CID a run holds (a longer one is not a block cairn can check anyway). */
export const MAX_CID_BYTES = 127

/** A byte range of one pack's index log whose every whole line the run holds. */
export interface Range {
  readonly pack: string
  readonly from: number
  readonly to: number
}

export interface RunHeader {
  readonly width: number
  readonly bits: number
  readonly count: number
  /** The packs records name (a record holds an index into this list). */
  readonly packs: readonly string[]
  /** Which lines of which logs the run holds. */
  readonly ranges: readonly { readonly pack: number; readonly from: number; readonly to: number }[]
  /** Bytes of the Bloom filter after the records. */
  readonly bloomBytes: number
  /** Where the fan-out table starts, the records, and the Bloom filter. */
  readonly fanoutAt: number
  readonly recordsAt: number
  readonly bloomAt: number
  readonly recordBytes: number
}

/** Bytes of Bloom filter for a run of at most `count` records. */
export function bloomBytesFor(count: number): number {
  return Math.max(8, Math.ceil((count * BLOOM_BITS_PER_KEY) / 8))
}

/** Calls `bit` with each Bloom filter bit position of a fingerprint (`hi`, `lo`) in a filter of `bytes` bytes; stops when it returns false. */
export function bloomBits(hi: number, lo: number, bytes: number, bit: (position: number) => boolean): boolean {
  const m = bytes * 8
  const step = (hi | 1) >>> 0
  for (let i = 0; i < BLOOM_HASHES; i++) if (!bit((lo + i * step) % m)) return false
  return true
}

export function recordBytes(width: number): number {
  return 9 + width + VALUE_BYTES
}

/** Fan-out bits for `count` records: buckets of ~8 records, at most 2^24 of them. */
export function fanoutBits(count: number): number {
  let bits = 0
  while (bits < 24 && 8 * 2 ** (bits + 1) <= count) bits++
  return bits
}

/** The bucket of a fingerprint whose first 4 bytes (big-endian) are `hi`. */
export function bucketOf(hi: number, bits: number): number {
  return bits === 0 ? 0 : hi >>> (32 - bits)
}

/** Writes `cid`'s key (fingerprint, length, zero-padded bytes) into `into` at `at`; `width` ≥ cid.length. */
export function writeKey(cid: Uint8Array, width: number, into: Uint8Array, at: number): void {
  const n = cid.length
  for (let i = 0; i < 8; i++) into[at + i] = n - 8 + i >= 0 ? cid[n - 8 + i] : 0
  into[at + 8] = n
  into.set(cid, at + 9)
  into.fill(0, at + 9 + n, at + 9 + width)
}

/** The first 4 bytes of `cid`'s fingerprint, big-endian. */
export function fingerprintHi(cid: Uint8Array): number {
  return fingerprintWord(cid, 0)
}

/** The last 4 bytes of `cid`'s fingerprint, big-endian. */
export function fingerprintLo(cid: Uint8Array): number {
  return fingerprintWord(cid, 4)
}

function fingerprintWord(cid: Uint8Array, from: number): number {
  const n = cid.length
  let word = 0
  for (let i = from; i < from + 4; i++) word = (word << 8) | (n - 8 + i >= 0 ? cid[n - 8 + i] : 0)
  return word >>> 0
}

/** The header's bytes (the fan-out table and the records follow). */
export function encodeHeader(h: Omit<RunHeader, 'fanoutAt' | 'recordsAt' | 'bloomAt' | 'recordBytes'>): Buffer {
  const names = h.packs.map((p) => Buffer.from(p, 'latin1'))
  const size = FIXED_HEADER + names.reduce((s, n) => s + 1 + n.length, 0) + 20 * h.ranges.length
  const out = Buffer.alloc(size)
  out.writeUInt32LE(MAGIC, 0)
  out.writeUInt32LE(RUN_VERSION, 4)
  out.writeUInt32LE(size, 8)
  out.writeUInt32LE(h.width, 12)
  out.writeUInt32LE(h.bits, 16)
  out.writeDoubleLE(h.count, 20)
  out.writeUInt32LE(h.packs.length, 28)
  out.writeUInt32LE(h.ranges.length, 32)
  out.writeUInt32LE(h.bloomBytes, 36)
  let at = FIXED_HEADER
  for (const n of names) {
    out[at++] = n.length
    n.copy(out, at)
    at += n.length
  }
  for (const r of h.ranges) {
    out.writeUInt32LE(r.pack, at)
    out.writeDoubleLE(r.from, at + 4)
    out.writeDoubleLE(r.to, at + 12)
    at += 20
  }
  return out
}

/** The header's size, read from its first bytes (undefined when they are not a run's). */
export function headerSize(first: Buffer): number | undefined {
  if (first.length < FIXED_HEADER || first.readUInt32LE(0) !== MAGIC || first.readUInt32LE(4) !== RUN_VERSION) return undefined
  return first.readUInt32LE(8)
}

/** Decodes a whole header; undefined when it does not hold together (a damaged run is not used). */
export function decodeHeader(bytes: Buffer): RunHeader | undefined {
  const size = headerSize(bytes)
  if (size === undefined || size > bytes.length) return undefined
  const width = bytes.readUInt32LE(12)
  const bits = bytes.readUInt32LE(16)
  const count = bytes.readDoubleLE(20)
  const packCount = bytes.readUInt32LE(28)
  const rangeCount = bytes.readUInt32LE(32)
  const bloomBytes = bytes.readUInt32LE(36)
  if (width > MAX_CID_BYTES || bits > 24 || !Number.isSafeInteger(count) || count < 0 || bloomBytes === 0) return undefined
  const packs: string[] = []
  let at = FIXED_HEADER
  for (let i = 0; i < packCount; i++) {
    if (at >= size) return undefined
    const n = bytes[at++]
    if (at + n > size) return undefined
    packs.push(bytes.toString('latin1', at, at + n))
    at += n
  }
  if (at + 20 * rangeCount !== size) return undefined
  const ranges: { pack: number; from: number; to: number }[] = []
  for (let i = 0; i < rangeCount; i++, at += 20) {
    const r = { pack: bytes.readUInt32LE(at), from: bytes.readDoubleLE(at + 4), to: bytes.readDoubleLE(at + 12) }
    if (r.pack >= packCount || !Number.isSafeInteger(r.from) || !(r.to >= r.from) || !Number.isSafeInteger(r.to)) return undefined
    ranges.push(r)
  }
  const fanoutAt = size
  const recordsAt = fanoutAt + 4 * (2 ** bits + 1)
  const bloomAt = recordsAt + count * recordBytes(width)
  return { width, bits, count, packs, ranges, bloomBytes, fanoutAt, recordsAt, bloomAt, recordBytes: recordBytes(width) }
}
