/**
 * A set of CIDs whose memory does not grow with the number it holds: the "seen" set of a walk that
 * must emit every block once (pack, a trustless CAR, a CAR check, gc's reachable blocks). The newest
 * keys are kept in memory; past `memoryKeys` they are sorted and written to a run file, and runs of a
 * level are merged into one of the next level (an LSM tree). Each run keeps in memory only a Bloom
 * filter (about 10 bits a key) and its first key every page: a lookup reads at most one page of a run
 * that may hold the key. Run files are unlinked as soon as they are open, so a killed process leaves
 * nothing behind. Exact: no false answer, whatever the limits (docs/memory.md).
 */
import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import type { CID } from '../cid.js'
import { ioError, isCairnError } from '../errors.js'

/** Limits of a {@link SeenSet}: small values (tests) give the same answers, more slowly. */
export interface SeenSetOptions {
  /** Keys held in memory before they are written to a run (default 131,072: about 10 MiB). */
  readonly memoryKeys?: number
  /** Keys per page of a run: one lookup reads one page (default 64). */
  readonly pageKeys?: number
  /** Runs of one level merged into one of the next (default 4). */
  readonly fanIn?: number
  /** Folder for the run files (default: the system's temporary folder). */
  readonly dir?: string
}

/** A key's fixed width on disk: a CIDv1 of a sha2-256 digest is 36 or 37 bytes. */
const WIDTH = 40
/** The last byte of a record: the key's length, or HASHED for a key too long to fit (its sha256 instead). */
const HASHED = 0xff

/** Default limits. */
export const SEEN_DEFAULTS = { memoryKeys: 1 << 17, pageKeys: 64, fanIn: 4 } as const

/**
 * An exact set of CIDs (a CIDv0 and its CIDv1 are two keys, as two blocks of a CAR are) with bounded
 * memory. Synchronous: its files are small reads of the page cache. Call {@link close} when done.
 */
export class SeenSet {
  private readonly memoryKeys: number
  private readonly pageKeys: number
  private readonly fanIn: number
  private readonly dir: string
  private memory = new Set<string>()
  /** Newest last. */
  private runs: Run[] = []
  private count = 0
  private readonly record = Buffer.alloc(WIDTH)
  private page: Buffer

  constructor(options: SeenSetOptions = {}) {
    this.memoryKeys = Math.max(1, options.memoryKeys ?? SEEN_DEFAULTS.memoryKeys)
    this.pageKeys = Math.max(1, options.pageKeys ?? SEEN_DEFAULTS.pageKeys)
    this.fanIn = Math.max(2, options.fanIn ?? SEEN_DEFAULTS.fanIn)
    this.dir = options.dir ?? tmpdir()
    this.page = Buffer.alloc(this.pageKeys * WIDTH)
  }

  /** How many keys the set holds. */
  get size(): number {
    return this.count
  }

  /** How many run files are open (for tests and the bench's notes). */
  get runCount(): number {
    return this.runs.length
  }

  /** True when `cid` was added. */
  has(cid: CID | Uint8Array): boolean {
    const key = this.keyOf(cid)
    if (this.memory.has(key)) return true
    return this.onDisk(key)
  }

  /** Adds `cid`; false when it was there already. May write and merge run files. */
  add(cid: CID | Uint8Array): boolean {
    const key = this.keyOf(cid)
    if (this.memory.has(key) || this.onDisk(key)) return false
    this.memory.add(key)
    this.count++
    if (this.memory.size >= this.memoryKeys) this.spill()
    return true
  }

  /** Adds `cid`, which the caller has just found absent with {@link has} (the look-up is not repeated). */
  addAbsent(cid: CID | Uint8Array): void {
    this.memory.add(this.keyOf(cid))
    this.count++
    if (this.memory.size >= this.memoryKeys) this.spill()
  }

  /** Closes (and so frees) the run files. The set is empty afterwards. */
  close(): void {
    for (const run of this.runs) run.close()
    this.runs = []
    this.memory = new Set()
    this.count = 0
  }

  /** The record of a key as a flat latin1 string (sorted as the record's bytes). */
  private keyOf(cid: CID | Uint8Array): string {
    const bytes = cid instanceof Uint8Array ? cid : cid.bytes
    const r = this.record
    r.fill(0)
    if (bytes.length < WIDTH) {
      r.set(bytes)
      r[WIDTH - 1] = bytes.length
    } else {
      createHash('sha256').update(bytes).digest().copy(r)
      r[WIDTH - 1] = HASHED
    }
    return r.toString('latin1', 0, WIDTH)
  }

  private onDisk(key: string): boolean {
    if (this.runs.length === 0) return false
    const [h1, h2] = hashes(key)
    try {
      for (let i = this.runs.length - 1; i >= 0; i--) {
        const run = this.runs[i]
        if (run.maybe(h1, h2) && run.contains(key, this.page)) return true
      }
    } catch (e) {
      throw ioError('read a temporary file in', this.dir, e)
    }
    return false
  }

  private spill(): void {
    try {
      this.spillRuns()
    } catch (e) {
      if (isCairnError(e)) throw e
      throw ioError('write a temporary file in', this.dir, e)
    }
  }

  private spillRuns(): void {
    const keys = [...this.memory].sort()
    this.memory = new Set()
    const writer = new RunWriter(this.dir, keys.length, this.pageKeys, 0)
    for (const k of keys) writer.push(k)
    this.runs.push(writer.done())
    // merge while the newest fanIn runs share a level: O(log n) runs, each key rewritten O(log n) times
    while (this.runs.length >= this.fanIn) {
      const tail = this.runs.slice(-this.fanIn)
      if (!tail.every((r) => r.level === tail[0].level)) break
      this.runs.splice(-this.fanIn, this.fanIn, merge(tail, this.dir, this.pageKeys))
    }
  }
}

/** Two 32-bit FNV-1a hashes of a record (double hashing gives a Bloom filter's k probes). */
function hashes(key: string): [number, number] {
  let a = 0x811c9dc5
  let b = 0x01000193 ^ 0x5bd1e995
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x5bd1e995)
  }
  return [a >>> 0, (b | 1) >>> 0]
}

const BLOOM_BITS_PER_KEY = 10
const BLOOM_PROBES = 7

/** One sorted run file: its Bloom filter and the first key of each page stay in memory. */
class Run {
  constructor(
    private readonly fd: number,
    readonly keys: number,
    readonly level: number,
    private readonly pageKeys: number,
    private readonly bloom: Uint32Array,
    private readonly fences: readonly string[],
  ) {}

  maybe(h1: number, h2: number): boolean {
    const bits = this.bloom.length * 32
    for (let i = 0; i < BLOOM_PROBES; i++) {
      const bit = (h1 + Math.imul(i, h2)) >>> 0
      const at = bit % bits
      if ((this.bloom[at >>> 5] & (1 << (at & 31))) === 0) return false
    }
    return true
  }

  contains(key: string, page: Buffer): boolean {
    // the last page whose first key is ≤ key
    let lo = 0
    let hi = this.fences.length - 1
    if (hi < 0 || key < this.fences[0]) return false
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (this.fences[mid] <= key) lo = mid
      else hi = mid - 1
    }
    const n = Math.min(this.pageKeys, this.keys - lo * this.pageKeys)
    readFully(this.fd, page, n * WIDTH, lo * this.pageKeys * WIDTH)
    let a = 0
    let b = n - 1
    while (a <= b) {
      const m = (a + b) >>> 1
      const k = page.toString('latin1', m * WIDTH, (m + 1) * WIDTH)
      if (k === key) return true
      if (k < key) a = m + 1
      else b = m - 1
    }
    return false
  }

  /** Reads records `from`… into `into` (whole records), returning how many. */
  read(from: number, into: Buffer): number {
    const n = Math.min(Math.floor(into.length / WIDTH), this.keys - from)
    if (n > 0) readFully(this.fd, into, n * WIDTH, from * WIDTH)
    return n
  }

  close(): void {
    closeSync(this.fd)
  }
}

/** Writes sorted keys to a new, already unlinked file, building the run's Bloom filter and fences. */
class RunWriter {
  private readonly fd: number
  private readonly bloom: Uint32Array
  private readonly fences: string[] = []
  private readonly buffer = Buffer.alloc(1024 * WIDTH)
  private buffered = 0
  private written = 0

  constructor(
    dir: string,
    private readonly expected: number,
    private readonly pageKeys: number,
    private readonly level: number,
  ) {
    const path = join(dir, `.cairn-seen-${process.pid}-${randomBytes(6).toString('hex')}`)
    this.fd = openSync(path, 'w+', 0o600)
    unlinkSync(path)
    this.bloom = new Uint32Array(Math.max(1, Math.ceil((expected * BLOOM_BITS_PER_KEY) / 32)))
  }

  push(key: string): void {
    if (this.written % this.pageKeys === 0) this.fences.push(key)
    const bits = this.bloom.length * 32
    const [h1, h2] = hashes(key)
    for (let i = 0; i < BLOOM_PROBES; i++) {
      const at = ((h1 + Math.imul(i, h2)) >>> 0) % bits
      this.bloom[at >>> 5] |= 1 << (at & 31)
    }
    this.buffer.write(key, this.buffered * WIDTH, WIDTH, 'latin1')
    this.written++
    if (++this.buffered * WIDTH === this.buffer.length) this.flush()
  }

  done(): Run {
    this.flush()
    if (this.written !== this.expected) throw new Error(`seen set: a run of ${this.expected} keys got ${this.written}`)
    return new Run(this.fd, this.written, this.level, this.pageKeys, this.bloom, this.fences)
  }

  private flush(): void {
    const bytes = this.buffered * WIDTH
    for (let off = 0; off < bytes;) off += writeSync(this.fd, this.buffer, off, bytes - off)
    this.buffered = 0
  }
}

/** Merges sorted runs (no key in two of them) into one run of the next level, and closes them. */
function merge(runs: readonly Run[], dir: string, pageKeys: number): Run {
  const total = runs.reduce((n, r) => n + r.keys, 0)
  const writer = new RunWriter(dir, total, pageKeys, runs[0].level + 1)
  const CHUNK = 512
  const cursors = runs.map((run) => ({ run, buf: Buffer.alloc(CHUNK * WIDTH), at: 0, have: 0, next: 0 }))
  const head = (c: (typeof cursors)[number]): string | undefined => {
    if (c.at === c.have) {
      c.have = c.run.read(c.next, c.buf)
      c.next += c.have
      c.at = 0
      if (c.have === 0) return undefined
    }
    return c.buf.toString('latin1', c.at * WIDTH, (c.at + 1) * WIDTH)
  }
  for (;;) {
    let best: (typeof cursors)[number] | undefined
    let bestKey: string | undefined
    for (const c of cursors) {
      const k = head(c)
      if (k !== undefined && (bestKey === undefined || k < bestKey)) {
        best = c
        bestKey = k
      }
    }
    if (best === undefined || bestKey === undefined) break
    writer.push(bestKey)
    best.at++
  }
  const merged = writer.done()
  for (const r of runs) r.close()
  return merged
}

function readFully(fd: number, into: Buffer, length: number, position: number): void {
  for (let off = 0; off < length;) {
    const n = readSync(fd, into, off, length - off, position + off)
    if (n === 0) throw new Error('seen set: a run file ended early')
    off += n
  }
}
