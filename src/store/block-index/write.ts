/**
 * Writing sorted runs (format.ts): {@link RunWriter} takes records in key order and writes them through
 * a buffer, the fan-out table as it goes, the header last; {@link RecordBatch} gathers a bounded number of
 * index entries in columns and writes them as one sorted run. A run is written to a temporary name,
 * flushed and renamed: a run file is whole or absent.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { withRoom } from '../../util/grow.js'
import { bloomBits, bloomBytesFor, bucketOf, encodeHeader, fanoutBits, fingerprintHi, fingerprintLo, writeKey } from './format.js'

/** Bytes gathered before each write of a run. */
const WRITE_BUFFER = 1 << 20

/** A fresh run name: time, then random hex (names sort roughly by age, and never collide). */
export function runName(): string {
  return `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}.run`
}

export class RunWriter {
  private readonly fd: number
  private readonly tmp: string
  private readonly buffer: Buffer
  private used = 0
  private count = 0
  private readonly fanout: Uint32Array
  private readonly bloom: Uint8Array
  private nextBucket = 0
  private readonly recordBytes: number
  private readonly bits: number
  private readonly headerBytes: number
  private readonly packIds = new Map<string, number>()

  /**
   * Starts a run in `dir` holding at most `maxCount` records of CIDs up to `width` bytes, naming `packs`
   * and covering `ranges` (their packs must be among `packs`). Throws the file system's error.
   */
  constructor(
    private readonly dir: string,
    private readonly width: number,
    maxCount: number,
    private readonly packs: readonly string[],
    private readonly ranges: readonly { readonly pack: string; readonly from: number; readonly to: number }[],
  ) {
    packs.forEach((p, i) => this.packIds.set(p, i))
    this.bits = fanoutBits(maxCount)
    this.fanout = new Uint32Array(2 ** this.bits + 1)
    this.bloom = new Uint8Array(bloomBytesFor(maxCount))
    this.recordBytes = 9 + width + 14
    this.headerBytes = this.header(0).length
    this.tmp = join(dir, `${runName()}.tmp`)
    this.fd = openSync(this.tmp, 'wx')
    this.buffer = Buffer.allocUnsafe(Math.max(this.recordBytes, WRITE_BUFFER - (WRITE_BUFFER % this.recordBytes)))
    // the header and fan-out are written last, over these zeros
    this.writeAll(Buffer.alloc(this.headerBytes + 4 * this.fanout.length), 0)
  }

  /** Appends a record; records must come in key order. */
  add(cid: Uint8Array, pack: string, offset: number, length: number): void {
    const hi = fingerprintHi(cid)
    const b = bucketOf(hi, this.bits)
    const bloom = this.bloom
    bloomBits(hi, fingerprintLo(cid), bloom.length, (bit) => {
      bloom[bit >>> 3] |= 1 << (bit & 7)
      return true
    })
    while (this.nextBucket <= b) this.fanout[this.nextBucket++] = this.count
    if (this.used + this.recordBytes > this.buffer.length) this.flush()
    const at = this.used
    writeKey(cid, this.width, this.buffer, at)
    const v = at + 9 + this.width
    this.buffer.writeUInt32LE(this.packIds.get(pack)!, v)
    this.buffer.writeUInt32LE(offset % 2 ** 32, v + 4)
    this.buffer.writeUInt16LE(Math.floor(offset / 2 ** 32), v + 8)
    this.buffer.writeUInt32LE(length, v + 10)
    this.used += this.recordBytes
    this.count++
  }

  /** Writes the header and fan-out, flushes the file to disk and gives it its name; returns its path. */
  finish(): string {
    try {
      this.flush()
      while (this.nextBucket < this.fanout.length) this.fanout[this.nextBucket++] = this.count
      const fanout = Buffer.allocUnsafe(4 * this.fanout.length)
      for (let i = 0; i < this.fanout.length; i++) fanout.writeUInt32LE(this.fanout[i], 4 * i)
      this.writeAll(this.bloom, this.position())
      this.writeAll(this.header(this.count), 0)
      this.writeAll(fanout, this.headerBytes)
      // a run claims its log ranges: it must be whole on disk before its name makes it seen
      fsyncSync(this.fd)
      closeSync(this.fd)
    } catch (e) {
      this.abort()
      throw e
    }
    const file = join(this.dir, runName())
    renameSync(this.tmp, file)
    return file
  }

  /** Gives up: the temporary file is removed. */
  abort(): void {
    try {
      closeSync(this.fd)
    } catch {
      // already closed
    }
    try {
      unlinkSync(this.tmp)
    } catch {
      // gone already
    }
  }

  private header(count: number): Buffer {
    const ranges = this.ranges.map((r) => ({ pack: this.packIds.get(r.pack)!, from: r.from, to: r.to }))
    return encodeHeader({ width: this.width, bits: this.bits, count, packs: this.packs, ranges, bloomBytes: this.bloom.length })
  }

  private position(): number {
    return this.headerBytes + 4 * this.fanout.length + (this.count * this.recordBytes - this.used)
  }

  private flush(): void {
    if (this.used === 0) return
    this.writeAll(this.buffer.subarray(0, this.used), this.position())
    this.used = 0
  }

  private writeAll(bytes: Uint8Array, position: number): void {
    let done = 0
    while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done, position + done)
  }
}

/**
 * Up to a bounded number of index entries in columns (no object per entry), written as one sorted run.
 */
export class RecordBatch {
  private cids = new Uint8Array(37 * 1024)
  private starts = new Float64Array(1025)
  private his = new Uint32Array(1024)
  private los = new Uint32Array(1024)
  private packs = new Uint32Array(1024)
  private offsets = new Float64Array(1024)
  private lengths = new Float64Array(1024)
  private readonly packNames: string[] = []
  private readonly packIds = new Map<string, number>()
  private width = 0
  size = 0

  add(cid: Uint8Array, pack: string, offset: number, length: number): void {
    const i = this.size++
    const start = this.starts[i]
    this.cids = withRoom(this.cids, start + cid.length)
    this.cids.set(cid, start)
    this.starts = withRoom(this.starts, i + 2)
    this.starts[i + 1] = start + cid.length
    this.his = withRoom(this.his, i + 1)
    this.los = withRoom(this.los, i + 1)
    this.packs = withRoom(this.packs, i + 1)
    this.offsets = withRoom(this.offsets, i + 1)
    this.lengths = withRoom(this.lengths, i + 1)
    this.his[i] = fingerprintHi(cid)
    this.los[i] = fingerprintLo(cid)
    let id = this.packIds.get(pack)
    if (id === undefined) {
      id = this.packNames.push(pack) - 1
      this.packIds.set(pack, id)
    }
    this.packs[i] = id
    this.offsets[i] = offset
    this.lengths[i] = length
    if (cid.length > this.width) this.width = cid.length
  }

  /** Writes the entries, sorted, as a run in `dir` covering `ranges`, and empties the batch; returns the run's path. */
  write(dir: string, ranges: readonly { readonly pack: string; readonly from: number; readonly to: number }[]): string {
    const order = new Uint32Array(this.size)
    for (let i = 0; i < order.length; i++) order[i] = i
    order.sort((a, b) => this.compare(a, b))
    const packs = [...new Set([...this.packNames, ...ranges.map((r) => r.pack)])]
    const w = new RunWriter(dir, this.width, this.size, packs, ranges)
    try {
      for (const i of order) w.add(this.cid(i), this.packNames[this.packs[i]], this.offsets[i], this.lengths[i])
    } catch (e) {
      w.abort()
      throw e
    }
    const file = w.finish()
    this.clear()
    return file
  }

  clear(): void {
    this.size = 0
    this.width = 0
    this.packNames.length = 0
    this.packIds.clear()
  }

  private cid(i: number): Uint8Array {
    return this.cids.subarray(this.starts[i], this.starts[i + 1])
  }

  /** The order of keys as bytes: fingerprint, CID length, CID. */
  private compare(a: number, b: number): number {
    if (this.his[a] !== this.his[b]) return this.his[a] < this.his[b] ? -1 : 1
    if (this.los[a] !== this.los[b]) return this.los[a] < this.los[b] ? -1 : 1
    const la = this.starts[a + 1] - this.starts[a]
    const lb = this.starts[b + 1] - this.starts[b]
    if (la !== lb) return la - lb
    const sa = this.starts[a]
    const sb = this.starts[b]
    for (let i = 0; i < la; i++) if (this.cids[sa + i] !== this.cids[sb + i]) return this.cids[sa + i] - this.cids[sb + i]
    // the same block twice: any order, but a stable one
    return a - b
  }
}
