/**
 * Reading a sorted run (format.ts): a lookup reads one fan-out entry and one bucket of records by
 * `pread` (a few hundred bytes), never the run; a cursor walks its records in order a buffer at a time.
 */
import { isReferencePack } from '../reference-pack.js'
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import {
  bloomBits,
  bucketOf,
  decodeHeader,
  FIXED_HEADER,
  fingerprintHi,
  fingerprintLo,
  headerSize,
  writeKey,
  type RunHeader,
} from './format.js'

/** A block's place: the pack's name, the byte offset in it, and the block's length. */
export interface Location {
  readonly pack: string
  readonly offset: number
  readonly length: number
}

/** Records read at once while scanning a bucket. */
const SCAN_RECORDS = 64
/**
 * After this many lookups a run keeps its fan-out table and Bloom filter in memory: one `pread` per lookup
 * instead of two, none for a block it lacks (~1.2 bytes per record: 12 MiB for 10⁷ blocks, read once).
 */
export const RESIDENT_AFTER = 1024

export class SortedRun {
  /** Per pack of the header: whether its log is still there and at least as long as the run says (else its records are skipped). */
  live: boolean[]
  private fanout: Uint32Array | undefined
  private bloom: Uint8Array | undefined
  private lookups = 0
  private readonly probe: Buffer
  private readonly scan: Buffer
  private readonly pair = Buffer.alloc(8)

  private constructor(
    readonly file: string,
    private readonly fd: number,
    readonly header: RunHeader,
    private readonly residentAfter: number,
  ) {
    this.live = header.packs.map(() => true)
    this.probe = Buffer.alloc(9 + header.width)
    this.scan = Buffer.allocUnsafe(SCAN_RECORDS * header.recordBytes)
  }

  /**
   * Opens a run; undefined when the file is not a whole run (a damaged or foreign file is not used).
   * Throws the file system's error (ENOENT when another process merged it away meanwhile).
   */
  static open(file: string, residentAfter = RESIDENT_AFTER): SortedRun | undefined {
    const fd = openSync(file, 'r')
    try {
      const first = Buffer.alloc(FIXED_HEADER)
      const size = readSync(fd, first, 0, FIXED_HEADER, 0) === FIXED_HEADER ? headerSize(first) : undefined
      const st = fstatSync(fd)
      if (size !== undefined && size <= st.size) {
        const bytes = Buffer.alloc(size)
        const header = readSync(fd, bytes, 0, size, 0) === size ? decodeHeader(bytes) : undefined
        if (header && st.size === header.bloomAt + header.bloomBytes) return new SortedRun(file, fd, header, residentAfter)
      }
    } catch (e) {
      closeSync(fd)
      throw e
    }
    closeSync(fd)
    return undefined
  }

  get count(): number {
    return this.header.count
  }

  /**
   * Where the block whose CIDv1 bytes are `cid` lies: the first of its records whose pack is live, except
   * that a copy wins over a reference to a data file (see {@link preferred}).
   */
  lookup(cid: Uint8Array): Location | undefined {
    const h = this.header
    if (cid.length > h.width || h.count === 0) return undefined
    writeKey(cid, h.width, this.probe, 0)
    const hi32 = fingerprintHi(cid)
    const bloom = this.bloom
    if (bloom && !bloomBits(hi32, fingerprintLo(cid), bloom.length, (bit) => (bloom[bit >>> 3] & (1 << (bit & 7))) !== 0)) return undefined
    const b = bucketOf(hi32, h.bits)
    let lo: number
    let end: number
    if (this.fanout) {
      lo = this.fanout[b]
      end = this.fanout[b + 1]
    } else {
      if (++this.lookups > this.residentAfter) this.loadFanout()
      this.read(this.pair, 8, h.fanoutAt + 4 * b)
      lo = this.pair.readUInt32LE(0)
      end = this.pair.readUInt32LE(4)
    }
    if (!(lo <= end && end <= h.count)) return undefined
    const keyBytes = 9 + h.width
    // a bucket holds ~8 records; a larger one (many blocks of one fingerprint prefix) is searched first
    let hi = end
    while (hi - lo > SCAN_RECORDS) {
      const mid = (lo + hi) >>> 1
      this.read(this.scan, keyBytes, h.recordsAt + mid * h.recordBytes)
      if (this.scan.compare(this.probe, 0, keyBytes, 0, keyBytes) < 0) lo = mid + 1
      else hi = mid
    }
    let best: Location | undefined
    for (let i = lo; i < end;) {
      const n = Math.min(SCAN_RECORDS, end - i)
      this.read(this.scan, n * h.recordBytes, h.recordsAt + i * h.recordBytes)
      for (let j = 0; j < n; j++) {
        const at = j * h.recordBytes
        const c = this.scan.compare(this.probe, 0, keyBytes, at, at + keyBytes)
        if (c < 0) continue
        if (c > 0) return best
        best = preferred(best, this.value(this.scan, at))
        if (best && !isReferencePack(best.pack)) return best
      }
      i += n
    }
    return best
  }

  /** The place a record at `at` of `bytes` names, or undefined when its pack is not live. */
  value(bytes: Buffer, at: number): Location | undefined {
    const v = at + 9 + this.header.width
    const pack = bytes.readUInt32LE(v)
    if (!this.live[pack]) return undefined
    return {
      pack: this.header.packs[pack],
      offset: bytes.readUInt32LE(v + 4) + bytes.readUInt16LE(v + 8) * 2 ** 32,
      length: bytes.readUInt32LE(v + 10),
    }
  }

  /** A cursor over the records in key order, reading `bufferRecords` at a time. */
  cursor(bufferRecords = 4096): RunCursor {
    return new RunCursor(this, Math.max(1, bufferRecords))
  }

  /** Reads `records` records from record `index` into `into`; returns how many whole records it got. */
  readRecords(into: Buffer, index: number, records: number): number {
    const h = this.header
    const n = Math.min(records, h.count - index)
    if (n <= 0) return 0
    this.read(into, n * h.recordBytes, h.recordsAt + index * h.recordBytes)
    return n
  }

  close(): void {
    closeSync(this.fd)
  }

  private loadFanout(): void {
    const entries = 2 ** this.header.bits + 1
    const bytes = Buffer.alloc(4 * entries)
    this.read(bytes, bytes.length, this.header.fanoutAt)
    this.fanout = new Uint32Array(entries)
    for (let i = 0; i < entries; i++) this.fanout[i] = bytes.readUInt32LE(4 * i)
    const bloom = Buffer.alloc(this.header.bloomBytes)
    this.read(bloom, bloom.length, this.header.bloomAt)
    this.bloom = bloom
  }

  private read(into: Buffer, length: number, position: number): void {
    let got = 0
    while (got < length) {
      const n = readSync(this.fd, into, got, length - got, position + got)
      if (n === 0) break
      got += n
    }
    // a run is checked for its full length when opened; a shorter read means it changed under us
    if (got < length) into.fill(0, got, length)
  }
}

/** Walks a run's records in key order: `next()` moves to the next one, then `bytes` at `at` holds it. */
export class RunCursor {
  bytes: Buffer
  at = -1
  private index = 0
  private held = 0
  private slot = 0

  constructor(
    readonly run: SortedRun,
    private readonly bufferRecords: number,
  ) {
    this.bytes = Buffer.allocUnsafe(bufferRecords * run.header.recordBytes)
  }

  /** False once every record has been read. */
  next(): boolean {
    if (++this.slot >= this.held) {
      this.held = this.run.readRecords(this.bytes, this.index, this.bufferRecords)
      this.index += this.held
      this.slot = 0
      if (this.held === 0) return false
    }
    this.at = this.slot * this.run.header.recordBytes
    return true
  }
}

/**
 * Of two places of one block, the one reads should use: a copy in a pack wins over a reference to a data
 * file (which can break when the file is edited), and among references the newest pack (its name starts
 * with its time). Between two copies, the first found.
 */
export function preferred(a: Location | undefined, b: Location | undefined): Location | undefined {
  if (a === undefined) return b
  if (b === undefined || !isReferencePack(a.pack)) return a
  if (!isReferencePack(b.pack)) return b
  return b.pack > a.pack ? b : a
}
