/**
 * The stat cache (`.cairn/stat-cache`, docs/store.md): what a previous build learned about each file,
 * keyed by path and the file's stamp (size, mtime and ctime in nanoseconds, inode). A file whose stamp
 * is unchanged is not read again; any change to it changes the stamp (ctime cannot be set back), so a
 * changed file is always re-hashed. Entries are tied to the card's row rules: when those change, files
 * are read (and validated) again. The cache is an optimisation only: a missing, unreadable or damaged
 * cache just means files are read.
 *
 * Its records are in a build's canonical path order and are read and written one frame at a time,
 * alongside the scan ({@link StatCacheCursor}, {@link StatCacheWriter}): memory holds a frame, never the
 * whole cache. A build writes its cache as a `.partial` file, frame by frame, and renames it over
 * `stat-cache` once sealed; a build killed midway leaves a partial whose whole frames the next build
 * still uses.
 */
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, fstatSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { CID, cidFromBytes, cidFromText } from '../cid.js'
import type { FormatName } from '../formats/interface.js'
import type { ShardEntry } from '../manifest.js'
import type { Stamp } from '../scan.js'
import type { StoreMark } from './blocks.js'

/** The format version, in the header frame. Version 4 (one JSON document read whole) and older are ignored. */
const VERSION = 5
const MAGIC = Buffer.from('CAIRNSC5', 'latin1')
const FOOTER_BYTES = 16
/** A frame: payload length (u32 LE), the first 16 bytes of the payload's sha256, the payload. */
const FRAME_HEAD = 20
/** Records per frame are cut at about this many bytes (tests force it smaller). */
export const FRAME_BYTES = 64 * 1024
/** A frame larger than this is damage, never allocated. */
const MAX_FRAME = 16 * 1024 * 1024
const CACHE_FILE = 'stat-cache'
const PARTIAL = /^stat-cache\.[0-9a-z.-]+\.partial$/

/** What a build tells the cache about one file. */
export interface FileFacts {
  readonly stamp: Stamp
  readonly entry: ShardEntry
  readonly dagSize: number
}

/**
 * A file as the cache knows it. `cid` and `schema` are the CIDs' bytes (CIDv1); `entry` is made on
 * first use.
 */
export interface CachedFile {
  readonly path: string
  /** Size, mtime, ctime, inode (see {@link Stamp}). */
  readonly stamp: Stamp
  readonly cid: Uint8Array
  readonly schema: Uint8Array | undefined
  readonly dagSize: number
  readonly entry: ShardEntry
}

/**
 * The index and tree roots (and totals) built from exactly the cached entries: when every file of a
 * build hits the cache, the same entries give the same roots.
 */
export interface CachedRoots {
  readonly index: CID
  readonly tree: CID
  readonly totals: { readonly shards: number; readonly bytes: number; readonly rows: number }
}

/** The version HEAD named when the cache was saved, and its block (to be checked against the CID before use). */
export interface CachedHead {
  readonly cid: CID
  readonly bytes: Uint8Array
}

/** A sealed cache's facts about itself (its trailer). */
export interface StatCacheInfo {
  /** Files it knows. */
  readonly count: number
  /** Their bytes. */
  readonly bytes: number
  readonly roots?: CachedRoots
  readonly head?: CachedHead
  /** The store's index logs and their lengths when the cache was saved (see `BlockStore.holdsAll`). */
  readonly store?: readonly StoreMark[]
}

/** A cache file that can be read from the start any number of times, each by its own cursor. */
export interface StatCache {
  /** The trailer of a sealed cache; undefined for a partial one (left by a build killed midway). */
  readonly info: StatCacheInfo | undefined
  /** A new cursor at the first record. */
  cursor(): StatCacheCursor
  /**
   * Writes this cache's records to `writer` with `edits` applied (see {@link CacheEdit}; sorted by
   * `compare`, the records' order), copying every frame no edit falls in as it is, without decoding
   * it. False when a frame turned out damaged (the writer then holds a prefix only: do not seal it).
   */
  copyTo(writer: StatCacheWriter, edits: readonly CacheEdit[], compare: (a: string, b: string) => number): boolean
}

/** One path's record in a rewritten cache: the new facts, or none (the file is gone, or not cacheable). */
export interface CacheEdit {
  readonly path: string
  readonly facts: FileFacts | undefined
}

interface Trailer {
  readonly count: number
  readonly bytes: number
  readonly roots: { readonly index: string; readonly tree: string; readonly totals: CachedRoots['totals'] } | null
  readonly head: { readonly cid: string; readonly block: string } | null
  readonly store: StoreMark[] | null
}

class Cached implements CachedFile {
  #entry: ShardEntry | undefined
  constructor(
    readonly path: string,
    readonly stamp: Stamp,
    readonly cid: Uint8Array,
    readonly schema: Uint8Array | undefined,
    readonly size: number,
    readonly format: FormatName,
    readonly rows: number | undefined,
    readonly dagSize: number,
  ) {}
  get entry(): ShardEntry {
    this.#entry ??= {
      path: this.path,
      cid: cidFromBytes(this.cid),
      size: this.size,
      format: this.format,
      ...(this.rows === undefined ? {} : { rows: this.rows }),
      ...(this.schema === undefined ? {} : { schema: cidFromBytes(this.schema) }),
    }
    return this.#entry
  }
}

/**
 * Reads a cache's records in order, one frame in memory at a time. A frame that is torn, too large or
 * does not match its checksum ends the records (`damaged` then tells): what follows is as if absent,
 * never misread.
 */
export class StatCacheCursor {
  /** The record the cursor is at, undefined past the last one. */
  current: CachedFile | undefined
  /** Records passed so far ({@link current} excluded). */
  passed = 0
  /** True when a damaged frame ended the records early. */
  damaged = false
  private frame: Buffer = Buffer.alloc(0)
  private at = 0
  private position: number
  private fd: number | undefined

  constructor(
    file: string,
    start: number,
    /** Where the records end (a sealed cache's trailer), or undefined: to the end of the file. */
    private readonly end: number | undefined,
    private readonly frameBytes: number,
  ) {
    this.position = start
    try {
      this.fd = openSync(file, 'r')
    } catch {
      this.fd = undefined
    }
    this.read()
  }

  /** Moves to the next record. */
  advance(): void {
    if (this.current === undefined) return
    this.passed++
    this.read()
  }

  /**
   * Moves past every record before `path` (in `compare` order) and returns the record at `path`, if any
   * (the cursor then stays on it). Records passed are reported to `skipped`.
   */
  seek(path: string, compare: (a: string, b: string) => number, skipped?: (file: CachedFile) => void): CachedFile | undefined {
    for (;;) {
      const c = this.current
      if (c === undefined) return undefined
      if (c.path === path) return c
      if (compare(c.path, path) > 0) return undefined
      skipped?.(c)
      this.advance()
    }
  }

  /** Closes the file (also done at the end of the records). */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
    this.fd = undefined
    this.current = undefined
  }

  private read(): void {
    if (this.at >= this.frame.length && !this.nextFrame()) {
      this.close()
      return
    }
    try {
      this.current = this.decode()
    } catch {
      this.damaged = true
      this.close()
    }
  }

  /** Loads the next frame; false at the end of the records (or of the whole frames). */
  private nextFrame(): boolean {
    const fd = this.fd
    if (fd === undefined) return false
    const frame = readNextFrame(fd, this.position, this.end, this.frameBytes)
    if (frame === undefined) return false
    if (frame === 'torn') return this.torn()
    this.position = frame.end
    this.frame = frame.payload
    this.at = 0
    return true
  }

  /** A frame that cannot be used: a sealed cache is damaged; a partial one merely ends there. */
  private torn(): false {
    if (this.end !== undefined) this.damaged = true
    return false
  }

  private decode(): CachedFile {
    const r = new RecordReader(this.frame, this.at)
    const record = r.record()
    this.at = r.at
    return record
  }
}

/** Reads the records of one frame's payload, from `at`; throws on anything that is not a whole record. */
class RecordReader {
  constructor(
    private readonly b: Buffer,
    public at: number,
  ) {}

  get done(): boolean {
    return this.at >= this.b.length
  }

  record(): CachedFile {
    const b = this.b
    const pathLength = this.varint()
    const path = b.toString('utf8', this.at, (this.at += pathLength))
    const stamp = readStamp(b, this.at)
    this.at += 32
    const cid = this.cidBytes(false)!
    const schema = this.cidBytes(true)
    const size = this.varint()
    const rows = this.varint()
    const dagSize = this.varint()
    const formatLength = b[this.at++]
    const format = b.toString('latin1', this.at, (this.at += formatLength)) as FormatName
    if (this.at > b.length || path === '') throw new Error('record past its frame')
    return new Cached(path, stamp, cid, schema, size, format, rows === 0 ? undefined : rows - 1, dagSize)
  }

  /** Moves past one record without making it; returns its size field. */
  skip(): number {
    // (each length read before it is added: `this.at += this.varint()` would add to the old position)
    const pathLength = this.varint()
    this.at += pathLength + 32
    const cidLength = this.varint()
    this.at += cidLength
    const schemaLength = this.varint()
    this.at += schemaLength
    const size = this.varint()
    this.varint()
    this.varint()
    const formatLength = this.b[this.at]
    if (formatLength === undefined) throw new Error('record past its frame')
    this.at += formatLength + 1
    if (this.at > this.b.length) throw new Error('record past its frame')
    return size
  }

  /** The path of the record at `at` (without moving). */
  peekPath(): string {
    const from = this.at
    const length = this.varint()
    const path = this.b.toString('utf8', this.at, this.at + length)
    this.at = from
    return path
  }

  private cidBytes(optional: boolean): Uint8Array | undefined {
    const length = this.varint()
    if (length === 0 && optional) return undefined
    const bytes = this.b.subarray(this.at, (this.at += length))
    // throws for bytes that are no CID (the frame is then treated as damage)
    if (!isCidV1(bytes)) throw new Error('not a CIDv1')
    return bytes
  }

  private varint(): number {
    let value = 0
    let scale = 1
    for (let n = 0; n < 8; n++) {
      const byte = this.b[this.at++]
      if (byte === undefined) throw new Error('varint past its frame')
      value += (byte & 0x7f) * scale
      if (byte < 0x80) return value
      scale *= 128
    }
    throw new Error('varint too long')
  }
}

/**
 * The frame at `position` (checked against its digest), undefined at the end of the records (`end`,
 * or the end of the file), 'torn' when it is cut short, too large or does not match its digest.
 */
function readNextFrame(
  fd: number,
  position: number,
  end: number | undefined,
  frameBytes: number,
): { payload: Buffer; end: number } | 'torn' | undefined {
  if (end !== undefined && position >= end) return undefined
  const head = Buffer.alloc(FRAME_HEAD)
  const got = readFully(fd, head, position)
  if (got === 0 && end === undefined) return undefined
  if (got < FRAME_HEAD) return 'torn'
  const length = head.readUInt32LE(0)
  if (length === 0 || length > Math.max(MAX_FRAME, 4 * frameBytes)) return 'torn'
  const payload = Buffer.allocUnsafe(length)
  if (readFully(fd, payload, position + FRAME_HEAD) < length) return 'torn'
  if (!digest16(payload).equals(head.subarray(4, FRAME_HEAD))) return 'torn'
  return { payload, end: position + FRAME_HEAD + length }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1
/** Where a stamp's bytes are put together before it is copied out (its own small array). */
const SCRATCH = new BigInt64Array(4)
const SCRATCH_BYTES = new Uint8Array(SCRATCH.buffer)

/**
 * The stamp at `at` (four signed 64-bit little-endian numbers). Copied as bytes where the platform is
 * little-endian: each readBigInt64LE builds its BigInt from two halves, and a status reads one stamp per
 * file of the dataset. (`slice` of a 32-byte array gives one kept in V8's heap, with no buffer of its own.)
 */
function readStamp(b: Buffer, at: number): Stamp {
  if (at + 32 > b.length) throw new Error('stamp past its frame')
  if (LITTLE_ENDIAN) {
    SCRATCH_BYTES.set(new Uint8Array(b.buffer, b.byteOffset + at, 32))
    return SCRATCH.slice()
  }
  const stamp = new BigInt64Array(4)
  for (let k = 0; k < 4; k++) stamp[k] = b.readBigInt64LE(at + 8 * k)
  return stamp
}

/**
 * True when `bytes` are exactly one CIDv1: version 1, a codec, a multihash code and a digest of the
 * length it states (what `CID.inspectBytes` checks, without making an object per record).
 */
function isCidV1(bytes: Uint8Array): boolean {
  let at = 0
  const varint = (): number => {
    let value = 0
    for (let shift = 0; shift < 28; shift += 7) {
      const byte = bytes[at++]
      if (byte === undefined) return -1
      value |= (byte & 0x7f) << shift
      if (byte < 0x80) return value
    }
    return -1
  }
  if (varint() !== 1 || varint() < 0 || varint() < 0) return false
  const digest = varint()
  return digest >= 0 && at + digest === bytes.length
}

function readFully(fd: number, into: Buffer, position: number): number {
  let read = 0
  while (read < into.length) {
    const n = readSync(fd, into, read, into.length - read, position + read)
    if (n === 0) break
    read += n
  }
  return read
}

function digest16(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest().subarray(0, 16)
}

/** Options for reading and writing caches (tests force tiny frames). */
export interface StatCacheOptions {
  readonly frameBytes?: number
}

/**
 * Opens the sealed cache of the store at `root` (`.cairn`): undefined when it is absent, of another
 * format, made under other row rules, or its header or trailer is damaged. Reads its header and
 * trailer only; records are read by cursors.
 */
export function openStatCache(root: string, rulesKey: string, options: StatCacheOptions = {}): StatCache | undefined {
  const file = join(root, CACHE_FILE)
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return undefined
  }
  try {
    const size = fstatSync(fd).size
    if (size < FOOTER_BYTES) return undefined
    const footer = Buffer.alloc(FOOTER_BYTES)
    if (readFully(fd, footer, size - FOOTER_BYTES) < FOOTER_BYTES || !footer.subarray(8).equals(MAGIC)) return undefined
    const trailerAt = footer.readUInt32LE(0) + footer.readUInt32LE(4) * 2 ** 32
    const header = readFrame(fd, 0, size)
    if (!header || !matchesHeader(header.payload, rulesKey)) return undefined
    const trailerFrame = readFrame(fd, trailerAt, size - FOOTER_BYTES)
    if (!trailerFrame || trailerFrame.end !== size - FOOTER_BYTES) return undefined
    const t = JSON.parse(trailerFrame.payload.toString('utf8')) as Trailer
    if (!Number.isSafeInteger(t.count) || t.count < 0) return undefined
    const info: StatCacheInfo = {
      count: t.count,
      bytes: t.bytes,
      ...(t.roots ? { roots: { index: cidFromText(t.roots.index), tree: cidFromText(t.roots.tree), totals: t.roots.totals } } : {}),
      ...(t.head ? { head: { cid: cidFromText(t.head.cid), bytes: Buffer.from(t.head.block, 'utf8') } } : {}),
      ...(Array.isArray(t.store) ? { store: t.store } : {}),
    }
    const frameBytes = options.frameBytes ?? FRAME_BYTES
    return {
      info,
      cursor: () => new StatCacheCursor(file, header.end, trailerAt, frameBytes),
      copyTo: (writer, edits, compare) => copyWithEdits(file, header.end, trailerAt, frameBytes, writer, edits, compare),
    }
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

/**
 * The partial caches a build killed midway left beside the store's cache, newest first (at most
 * `limit`), whose whole frames hold facts as good as a sealed cache's: each was written only once its
 * file's blocks were stored. Their blocks may have been removed since (gc), so a hit from one must be
 * checked against the store. With `prune`, the older ones are removed (under the store's lock only).
 */
export function openPartialCaches(
  root: string,
  rulesKey: string,
  limit = 2,
  options: StatCacheOptions & { readonly prune?: boolean } = {},
): StatCache[] {
  const out: StatCache[] = []
  const files = partialFiles(root)
  // older ones are superseded (a build that used them wrote their hits again): removed, so that builds
  // that keep failing do not pile them up
  for (const old of options.prune ? files.slice(limit) : []) {
    try {
      unlinkSync(old)
    } catch {
      // removed by then, or not ours to remove: skipped all the same
    }
  }
  for (const file of files.slice(0, limit)) {
    let fd: number
    try {
      fd = openSync(file, 'r')
    } catch {
      continue
    }
    try {
      const header = readFrame(fd, 0, fstatSync(fd).size)
      if (!header || !matchesHeader(header.payload, rulesKey)) continue
      const frameBytes = options.frameBytes ?? FRAME_BYTES
      out.push({
        info: undefined,
        cursor: () => new StatCacheCursor(file, header.end, undefined, frameBytes),
        copyTo: (writer, edits, compare) => copyWithEdits(file, header.end, undefined, frameBytes, writer, edits, compare),
      })
    } finally {
      closeSync(fd)
    }
  }
  return out
}

/** {@link StatCache.copyTo} of the cache `file` whose records lie from `start` to `end`. */
function copyWithEdits(
  file: string,
  start: number,
  end: number | undefined,
  frameBytes: number,
  writer: StatCacheWriter,
  edits: readonly CacheEdit[],
  compare: (a: string, b: string) => number,
): boolean {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return false
  }
  try {
    let e = 0
    const add = (facts: FileFacts | undefined): void => {
      if (facts) writer.add(facts)
    }
    let frame = readNextFrame(fd, start, end, frameBytes)
    while (frame !== undefined) {
      if (frame === 'torn') return false
      const next = readNextFrame(fd, frame.end, end, frameBytes)
      // the edits up to the next frame's first path belong here (those before the first frame's too)
      const bound = next === undefined || next === 'torn' ? undefined : new RecordReader(next.payload, 0).peekPath()
      let to = e
      while (to < edits.length && (bound === undefined || compare(edits[to].path, bound) < 0)) to++
      if (to === e) {
        const r = new RecordReader(frame.payload, 0)
        let records = 0
        let bytes = 0
        for (; !r.done; records++) bytes += r.skip()
        writer.copyFrame(frame.payload, records, bytes)
      } else {
        const r = new RecordReader(frame.payload, 0)
        while (!r.done) {
          const c = r.record()
          while (e < to && compare(edits[e].path, c.path) < 0) add(edits[e++].facts)
          if (e < to && edits[e].path === c.path) add(edits[e++].facts)
          else writer.add({ stamp: c.stamp, entry: c.entry, dagSize: c.dagSize })
        }
        while (e < to) add(edits[e++].facts)
      }
      frame = next
    }
    while (e < edits.length) add(edits[e++].facts)
    return true
  } catch {
    return false
  } finally {
    closeSync(fd)
  }
}

/** The partial cache files in `root`, newest first. */
function partialFiles(root: string): string[] {
  let names: string[]
  try {
    names = readdirSync(root).filter((n) => PARTIAL.test(n))
  } catch {
    return []
  }
  const withTimes = names.map((n) => {
    const file = join(root, n)
    try {
      return { file, mtime: statSync(file).mtimeMs }
    } catch {
      return { file, mtime: -1 }
    }
  })
  return withTimes
    .filter((f) => f.mtime >= 0)
    .sort((a, b) => b.mtime - a.mtime)
    .map((f) => f.file)
}

function readFrame(fd: number, at: number, limit: number): { payload: Buffer; end: number } | undefined {
  const head = Buffer.alloc(FRAME_HEAD)
  if (at + FRAME_HEAD > limit || readFully(fd, head, at) < FRAME_HEAD) return undefined
  const length = head.readUInt32LE(0)
  if (at + FRAME_HEAD + length > limit || length > MAX_FRAME) return undefined
  const payload = Buffer.alloc(length)
  if (readFully(fd, payload, at + FRAME_HEAD) < length || !digest16(payload).equals(head.subarray(4, FRAME_HEAD))) return undefined
  return { payload, end: at + FRAME_HEAD + length }
}

function matchesHeader(payload: Buffer, rulesKey: string): boolean {
  try {
    const h = JSON.parse(payload.toString('utf8')) as { statCache?: unknown; rules?: unknown }
    return h.statCache === VERSION && h.rules === rulesKey
  } catch {
    return false
  }
}

/** What a build knows when it seals the cache. */
export interface CacheSeal {
  /** The index and tree built from exactly the files added (none left out as racy). */
  readonly roots?: CachedRoots
  /** The version HEAD names after the build. */
  readonly head?: CachedHead
  /** The store's index logs as they are once every block of the build is written. */
  readonly store?: readonly StoreMark[]
}

/**
 * Writes a build's cache file by file, in path order, to a partial file of its own, a frame at a
 * time (synchronous writes: records go out in order, and memory holds one frame); {@link seal} makes
 * it the store's cache. Write failures are swallowed: the cache only saves time, so a cache that
 * cannot be written is merely not there.
 */
export class StatCacheWriter {
  private fd: number | undefined
  private readonly file: string
  private buffer: Buffer
  private used = 0
  private position = 0
  private records = 0
  private bytes = 0
  private readonly frameBytes: number

  constructor(
    private readonly root: string,
    rulesKey: string,
    options: StatCacheOptions = {},
  ) {
    this.frameBytes = options.frameBytes ?? FRAME_BYTES
    this.buffer = Buffer.allocUnsafe(this.frameBytes + 4096)
    this.file = join(root, `${CACHE_FILE}.${process.pid}-${randomBytes(6).toString('hex')}.partial`)
    try {
      this.fd = openSync(this.file, 'wx')
      this.writeFrame(Buffer.from(JSON.stringify({ statCache: VERSION, rules: rulesKey }), 'utf8'))
    } catch {
      this.fail()
    }
  }

  /** Files added so far. */
  get size(): number {
    return this.records
  }

  /** Adds the next file (after the previous one in path order). */
  add({ stamp, entry: e, dagSize }: FileFacts): void {
    if (this.fd === undefined) return
    const path = Buffer.from(e.path, 'utf8')
    const cid = e.cid.version === 0 ? e.cid.toV1().bytes : e.cid.bytes
    const schema = e.schema === undefined ? undefined : e.schema.version === 0 ? e.schema.toV1().bytes : e.schema.bytes
    const need = path.length + cid.length + (schema?.length ?? 0) + 32 + 6 * 9 + 1 + e.format.length
    if (this.used > 0 && this.used + need > this.frameBytes) this.flush()
    if (this.buffer.length < need) this.buffer = Buffer.allocUnsafe(need)
    this.varint(path.length)
    this.used += path.copy(this.buffer, this.used)
    for (let k = 0; k < 4; k++) this.buffer.writeBigInt64LE(stamp[k], this.used + 8 * k)
    this.used += 32
    this.varint(cid.length)
    this.buffer.set(cid, this.used)
    this.used += cid.length
    this.varint(schema?.length ?? 0)
    if (schema) {
      this.buffer.set(schema, this.used)
      this.used += schema.length
    }
    this.varint(e.size)
    this.varint(e.rows === undefined ? 0 : e.rows + 1)
    this.varint(dagSize)
    this.buffer[this.used++] = e.format.length
    this.used += this.buffer.write(e.format, this.used, 'latin1')
    this.records++
    this.bytes += e.size
  }

  /**
   * Adds a whole frame of another cache, `payload` (its `records` files of `bytes` bytes, after the
   * files added so far in path order), as it is.
   */
  copyFrame(payload: Buffer, records: number, bytes: number): void {
    if (this.fd === undefined) return
    try {
      this.flush()
      this.writeFrame(payload)
      this.records += records
      this.bytes += bytes
    } catch {
      this.fail()
    }
  }

  /**
   * Writes the last frame and the trailer, and makes this the store's cache (an atomic rename); other
   * partial caches, whose facts this one now holds or supersedes, are removed.
   */
  seal(seal: CacheSeal): void {
    if (this.fd === undefined) return
    try {
      this.flush()
      const { roots, head, store } = seal
      const trailer: Trailer = {
        count: this.records,
        bytes: this.bytes,
        roots: roots ? { index: roots.index.toString(), tree: roots.tree.toString(), totals: roots.totals } : null,
        head: head ? { cid: head.cid.toString(), block: Buffer.from(head.bytes).toString('utf8') } : null,
        store: store ? [...store] : null,
      }
      const trailerAt = this.position
      this.writeFrame(Buffer.from(JSON.stringify(trailer), 'utf8'))
      const footer = Buffer.alloc(FOOTER_BYTES)
      footer.writeUInt32LE(trailerAt % 2 ** 32, 0)
      footer.writeUInt32LE(Math.floor(trailerAt / 2 ** 32), 4)
      MAGIC.copy(footer, 8)
      this.write(footer)
      closeSync(this.fd)
      this.fd = undefined
      renameSync(this.file, join(this.root, CACHE_FILE))
      for (const other of partialFiles(this.root)) {
        try {
          unlinkSync(other)
        } catch {
          // another one's leftover: removed next time
        }
      }
    } catch {
      this.fail()
    }
  }

  /**
   * Stops writing, keeping the frames written so far: a failed or stopped build's facts are valid for
   * the files it stored, and the next build uses them.
   */
  close(): void {
    if (this.fd === undefined) return
    try {
      this.flush()
      closeSync(this.fd)
    } catch {
      // a partial frame at the end is ignored by readers
    }
    this.fd = undefined
  }

  private flush(): void {
    if (this.used === 0) return
    const payload = this.buffer.subarray(0, this.used)
    this.writeFrame(payload)
    this.used = 0
  }

  private writeFrame(payload: Buffer): void {
    const head = Buffer.alloc(FRAME_HEAD)
    head.writeUInt32LE(payload.length, 0)
    digest16(payload).copy(head, 4)
    this.write(head)
    this.write(payload)
  }

  private write(bytes: Buffer): void {
    for (let at = 0; at < bytes.length;) {
      const n = writeSync(this.fd!, bytes, at, bytes.length - at, this.position)
      at += n
      this.position += n
    }
  }

  private varint(value: number): void {
    while (value >= 0x80) {
      this.buffer[this.used++] = (value % 128) | 0x80
      value = Math.floor(value / 128)
    }
    this.buffer[this.used++] = value
  }

  private fail(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd)
      } catch {
        // nothing more to do
      }
    }
    this.fd = undefined
    try {
      unlinkSync(this.file)
    } catch {
      // never created
    }
  }
}
