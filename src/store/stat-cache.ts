/**
 * The stat cache (`.cairn/stat-cache`, docs/store.md): what a previous build learned about each file,
 * keyed by path and the file's stamp (size, mtime and ctime in nanoseconds, inode). A file whose stamp
 * is unchanged is not read again; any change to it changes the stamp (ctime cannot be set back), so a
 * changed file is always re-hashed. Entries are tied to the card's row rules: when those change, files
 * are read (and validated) again. The cache is an optimisation only: a missing, unreadable or damaged
 * cache (its checksum tells) just means every file is read.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CID, cidFromBytes, cidFromText } from '../cid.js'
import type { FormatName } from '../formats/interface.js'
import type { ShardEntry } from '../manifest.js'
import type { Stamp } from '../scan.js'
import { writeFileAtomicWith } from '../util/atomic.js'
import { withRoom } from '../util/grow.js'
import type { StoreMark } from './blocks.js'

const VERSION = 4

/** What a build tells the cache about one file. */
export interface FileFacts {
  readonly stamp: Stamp
  readonly entry: ShardEntry
  readonly dagSize: number
}

/**
 * A file as the cache knows it: its position `index` in the cache (its stamp is at `4 × index` of
 * {@link StatCache.stamps}). `cid` and `schema` are the CIDs' bytes (CIDv1), views of the cache's
 * column; `entry` is made on first use.
 */
export interface CachedFile {
  readonly index: number
  readonly cid: Uint8Array
  readonly schema: Uint8Array | undefined
  readonly dagSize: number
  readonly entry: ShardEntry
}

/**
 * The index and tree roots (and totals) built from exactly the cached entries: when every file of a
 * build hits the cache, the same entries give the same roots, and neither needs rebuilding.
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

/** A loaded cache. */
export interface StatCache {
  /** How many files it knows. */
  readonly size: number
  /** Every file's stamp, four numbers each, in the cache's order. */
  readonly stamps: Stamp
  /** The path of the `k`-th file (the cache's order is a build's canonical path order). */
  path(k: number): string
  /**
   * What the cache knows of `path`. `at` is where the caller expects it: the cache keeps the order it
   * was saved in, a build's canonical path order, so a scan in that order finds each file there without
   * a lookup by path. Never found in a cache whose facts turn out malformed (it is then as if empty).
   */
  get(path: string, at?: number): CachedFile | undefined
  /** The file at position `index` of the cache (one that {@link get} found). */
  at(index: number): CachedFile
  readonly roots?: CachedRoots
  readonly head?: CachedHead
  /** The store's index logs and their lengths when the cache was saved (see `BlockStore.holdsAll`). */
  readonly store?: readonly StoreMark[]
}

/** The first line after the header: what every rebuild needs (one JSON parse of paths and roots). */
interface Keys {
  readonly rules: string
  readonly roots: { readonly index: string; readonly tree: string; readonly totals: CachedRoots['totals'] } | null
  readonly head: { readonly cid: string; readonly block: string } | null
  readonly store: StoreMark[] | null
  readonly paths: string[]
  /** The stamps, four little-endian 64-bit integers per file, in base64. */
  readonly stamps: string
}

/** The second line: the facts of each file, parsed only when some file is not found unchanged. */
interface FactsLine {
  /** Every file's CID (CIDv1 bytes, self-delimiting), end to end, in base64. */
  readonly cids: string
  readonly sizes: number[]
  readonly formats: FormatName[]
  readonly dagSizes: number[]
  readonly rows: (number | null)[]
  /** Every file's schema CID, or a zero byte for none (no CID starts with one), in base64. */
  readonly schemas: string
}

/** The facts in memory: the CIDs as two byte columns and where each file's starts (no string per file). */
interface Facts extends Omit<FactsLine, 'cids' | 'schemas'> {
  readonly cids: Uint8Array
  /** File `i`'s CID is `cids[cidAt[i]]`…`cids[cidAt[i + 1]]`. */
  readonly cidAt: Int32Array
  readonly schemas: Uint8Array
  /** File `i`'s schema CID is `schemas[schemaAt[i]]`…`schemas[schemaAt[i + 1]]`, after a zero byte for none. */
  readonly schemaAt: Int32Array
}

class Cached implements CachedFile {
  #entry: ShardEntry | undefined
  constructor(
    private readonly facts: Facts,
    private readonly paths: readonly string[],
    readonly index: number,
  ) {}
  get cid(): Uint8Array {
    const f = this.facts
    return f.cids.subarray(f.cidAt[this.index], f.cidAt[this.index + 1])
  }
  get schema(): Uint8Array | undefined {
    const f = this.facts
    const start = f.schemaAt[this.index]
    return f.schemas[start] === 0 ? undefined : f.schemas.subarray(start, f.schemaAt[this.index + 1])
  }
  get dagSize(): number {
    return this.facts.dagSizes[this.index]
  }
  get entry(): ShardEntry {
    if (this.#entry) return this.#entry
    const f = this.facts
    const i = this.index
    const rows = f.rows[i]
    const schema = this.schema
    this.#entry = {
      path: this.paths[i],
      cid: cidFromBytes(this.cid),
      size: f.sizes[i],
      format: f.formats[i],
      ...(rows === null ? {} : { rows }),
      ...(schema === undefined ? {} : { schema: cidFromBytes(schema) }),
    }
    return this.#entry
  }
}

class Loaded implements StatCache {
  #byPath: Map<string, number> | undefined
  /** Parsed on first use; null when they do not agree with the paths. */
  #facts: Facts | null | undefined
  constructor(
    readonly keys: Keys,
    readonly stamps: Stamp,
    /** The facts line until it is parsed (then let go: megabytes for 100,000 files). */
    private factsText: string,
    readonly roots: CachedRoots | undefined,
    readonly head: CachedHead | undefined,
  ) {}
  get size(): number {
    return this.keys.paths.length
  }
  get store(): readonly StoreMark[] | undefined {
    return this.keys.store ?? undefined
  }
  path(k: number): string {
    return this.keys.paths[k]
  }
  at(index: number): CachedFile {
    return new Cached(this.facts()!, this.keys.paths, index)
  }
  get(path: string, at?: number): CachedFile | undefined {
    const facts = this.facts()
    if (!facts) return undefined
    const paths = this.keys.paths
    if (at !== undefined && paths[at] === path) return new Cached(facts, paths, at)
    this.#byPath ??= new Map(paths.map((p, i) => [p, i]))
    const i = this.#byPath.get(path)
    return i === undefined ? undefined : new Cached(facts, paths, i)
  }
  /**
   * The facts line, parsed when a file's facts are first asked for: a rebuild that finds nothing
   * changed never parses it. Its checksum was checked on load; its columns must agree with the paths.
   */
  private facts(): Facts | null {
    if (this.#facts === undefined) {
      try {
        const line = JSON.parse(this.factsText) as FactsLine
        this.factsText = ''
        const n = this.keys.paths.length
        const cids = Buffer.from(line.cids, 'base64')
        const schemas = Buffer.from(line.schemas, 'base64')
        const cidAt = cidStarts(cids, n, false)
        const schemaAt = cidStarts(schemas, n, true)
        const columns = [line.sizes, line.formats, line.dagSizes, line.rows]
        this.#facts =
          cidAt && schemaAt && columns.every((c) => Array.isArray(c) && c.length === n) ? { ...line, cids, cidAt, schemas, schemaAt } : null
      } catch {
        this.#facts = null
      }
    }
    return this.#facts
  }
}

/**
 * Where each of `n` CIDs laid end to end in `bytes` starts (and, at `n`, where the last ends), or null
 * unless `bytes` are exactly `n` CIDv1s (or zero bytes, where `none` allows them).
 */
function cidStarts(bytes: Uint8Array, n: number, none: boolean): Int32Array | null {
  const at = new Int32Array(n + 1)
  let p = 0
  for (let i = 0; i < n; i++) {
    at[i] = p
    if (none && bytes[p] === 0) {
      p++
      continue
    }
    // throws for bytes that are no CID at all (caught by the caller: the facts are then not used)
    const { version, size } = CID.inspectBytes(bytes.subarray(p))
    if (version !== 1) return null
    p += size
    if (p > bytes.length) return null
  }
  at[n] = p
  return p === bytes.length ? at : null
}

const EMPTY: StatCache = {
  size: 0,
  stamps: new BigInt64Array(0),
  path: () => '',
  get: () => undefined,
  at: () => {
    throw new Error('the empty stat cache has no files')
  },
}

/** Loads the cache of the store at `root` (`.cairn`), or an empty one when it is absent, stale or damaged. */
export async function loadStatCache(root: string, rulesKey: string): Promise<StatCache> {
  let bytes: Buffer
  try {
    // one synchronous read: the async one reads 512 KiB per thread-pool round trip
    bytes = readFileSync(join(root, 'stat-cache'))
  } catch {
    return EMPTY
  }
  try {
    const nl = bytes.indexOf(10)
    const header = JSON.parse(bytes.toString('utf8', 0, nl)) as { statCache?: unknown; sha256?: unknown }
    if (header.statCache !== VERSION) return EMPTY
    const rest = bytes.subarray(nl + 1)
    if (header.sha256 !== createHash('sha256').update(rest).digest('hex')) return EMPTY
    const nl2 = rest.indexOf(10)
    const keys = JSON.parse(rest.toString('utf8', 0, nl2)) as Keys
    if (keys.rules !== rulesKey || !Array.isArray(keys.paths) || typeof keys.stamps !== 'string') return EMPTY
    const stampBytes = Buffer.from(keys.stamps, 'base64')
    if (stampBytes.length !== 32 * keys.paths.length) return EMPTY
    const r = keys.roots
    const roots = r ? { index: cidFromText(r.index), tree: cidFromText(r.tree), totals: r.totals } : undefined
    const head = keys.head ? { cid: cidFromText(keys.head.cid), bytes: Buffer.from(keys.head.block, 'utf8') } : undefined
    // the stamps' text is decoded once and not kept (megabytes for 100,000 files)
    return new Loaded({ ...keys, stamps: '' }, decodeStamps(stampBytes), rest.toString('utf8', nl2 + 1), roots, head)
  } catch {
    return EMPTY
  }
}

/** What a build knows when it saves the cache. */
export interface CacheSeal {
  /** The index and tree built from exactly the files added (none left out as racy). */
  readonly roots?: CachedRoots
  /** The version HEAD names after the build. */
  readonly head?: CachedHead
  /** The store's index logs as they are once every block of the build is written. */
  readonly store?: readonly StoreMark[]
}

/**
 * Gathers what a build learns, file by file in path order, as the cache's columns (CIDs as bytes,
 * numbers in typed arrays), so that a build need not keep every entry until it saves.
 */
export class StatCacheWriter {
  private readonly paths: string[] = []
  private stamps: Stamp = new BigInt64Array(4 * 256)
  private readonly cids = new CidColumn()
  private readonly schemas = new CidColumn()
  private readonly sizes = new Numbers()
  private readonly dagSizes = new Numbers()
  /** Rows, NaN for none. */
  private readonly rows = new Numbers()
  /** Formats, as their place in `formatNames`. */
  private readonly formats = new Numbers()
  private readonly formatNames: FormatName[] = []
  constructor(private readonly rulesKey: string) {}

  /** Files added so far. */
  get size(): number {
    return this.paths.length
  }

  add({ stamp, entry: e, dagSize }: FileFacts): void {
    const i = this.paths.length
    this.stamps = withRoom(this.stamps, 4 * (i + 1))
    this.stamps.set(stamp, 4 * i)
    this.paths.push(e.path)
    this.cids.push(e.cid)
    this.schemas.push(e.schema)
    this.sizes.push(e.size)
    let format = this.formatNames.indexOf(e.format)
    if (format < 0) format = this.formatNames.push(e.format) - 1
    this.formats.push(format)
    this.dagSizes.push(dagSize)
    this.rows.push(e.rows ?? NaN)
  }

  /** Replaces the cache atomically. Failures are ignored: the cache only saves time. */
  async save(root: string, seal: CacheSeal): Promise<void> {
    const n = this.paths.length
    const { roots, head, store } = seal
    const keys: Omit<Keys, 'paths' | 'stamps'> = {
      rules: this.rulesKey,
      roots: roots ? { index: roots.index.toString(), tree: roots.tree.toString(), totals: roots.totals } : null,
      head: head ? { cid: head.cid.toString(), block: Buffer.from(head.bytes).toString('utf8') } : null,
      store: store ? [...store] : null,
    }
    const parts = this.lines(JSON.stringify(keys), encodeStamps(this.stamps.subarray(0, 4 * n)))
    await writeFileAtomicWith(
      join(root, 'stat-cache'),
      async (file) => {
        // the header (whose checksum covers the rest) is written last, over a placeholder of its length
        const hash = createHash('sha256')
        let position = HEADER_LENGTH
        for (const part of parts) {
          const bytes = Buffer.from(part, 'utf8')
          hash.update(bytes)
          for (let at = 0; at < bytes.length;) at += (await file.write(bytes, at, bytes.length - at, position + at)).bytesWritten
          position += bytes.length
        }
        const header = Buffer.from(headerLine(hash.digest('hex')), 'utf8')
        await file.write(header, 0, header.length, 0)
      },
      { tmpDir: join(root, 'tmp') },
    ).catch(() => {})
  }

  /**
   * The two lines after the header, made a few thousand files at a time: for 100,000 files each is
   * megabytes, which would otherwise all be in memory at once (twice: as text and as bytes).
   */
  private *lines(keys: string, stamps: Buffer): Generator<string> {
    const n = this.paths.length
    yield keys.slice(0, -1) + ',"paths":'
    yield* jsonArray(n, (i) => this.paths[i])
    yield ',"stamps":"'
    yield* base64(stamps)
    yield '"}\n{"cids":"'
    yield* this.cids.base64()
    yield '","sizes":'
    yield* jsonArray(n, (i) => this.sizes.at(i))
    yield ',"formats":'
    yield* jsonArray(n, (i) => this.formatNames[this.formats.at(i)])
    yield ',"dagSizes":'
    yield* jsonArray(n, (i) => this.dagSizes.at(i))
    yield ',"rows":'
    yield* jsonArray(n, (i) => {
      const rows = this.rows.at(i)
      return Number.isNaN(rows) ? null : rows
    })
    yield ',"schemas":"'
    yield* this.schemas.base64()
    yield '"}\n'
  }
}

/** The first line of the cache: its format and the checksum of the rest. */
function headerLine(sha256: string): string {
  return JSON.stringify({ statCache: VERSION, sha256 }) + '\n'
}

const HEADER_LENGTH = headerLine('0'.repeat(64)).length

/** A JSON array of `length` items, in parts of a few thousand. */
function* jsonArray(length: number, item: (i: number) => unknown): Generator<string> {
  if (length === 0) yield '[]'
  for (let at = 0; at < length; at += 4096) {
    const part = Array.from({ length: Math.min(4096, length - at) }, (_, k) => item(at + k))
    const text = JSON.stringify(part)
    yield (at === 0 ? '[' : ',') + text.slice(1, -1) + (at + 4096 >= length ? ']' : '')
  }
}

/**
 * Optional CIDs, one per file, kept as their bytes end to end (CIDv1, 36 bytes each for the CIDs a
 * build makes; a zero byte for none) rather than as objects or text, and saved so.
 */
class CidColumn {
  private bytes = new Uint8Array(36 * 256)
  private used = 0

  push(cid: CID | undefined): void {
    const b = cid === undefined ? NONE : cid.version === 0 ? cid.toV1().bytes : cid.bytes
    this.bytes = withRoom(this.bytes, this.used + b.length)
    this.bytes.set(b, this.used)
    this.used += b.length
  }

  /** The column in base64, in parts. */
  base64(): Generator<string> {
    return base64(Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.used))
  }
}

const NONE = new Uint8Array(1)

/** `bytes` in base64, in parts of whole 3-byte groups (which join without padding in between). */
function* base64(bytes: Buffer): Generator<string> {
  for (let at = 0; at < bytes.length; at += 3 * 65536) yield bytes.toString('base64', at, Math.min(bytes.length, at + 3 * 65536))
}

/** Numbers, one per file, in a typed array: not a JS array that every collection traces and that leaves a copy behind each time it grows. */
class Numbers {
  private values = new Float64Array(256)
  private length = 0

  push(value: number): void {
    this.values = withRoom(this.values, this.length + 1)
    this.values[this.length++] = value
  }

  at(i: number): number {
    return this.values[i]
  }
}

const LITTLE_ENDIAN = new Uint8Array(new BigInt64Array([1n]).buffer)[0] === 1

/** Stamps as little-endian bytes: on a little-endian machine, the array's own bytes. */
function encodeStamps(stamps: Stamp): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(stamps.buffer, stamps.byteOffset, stamps.byteLength)
  const bytes = Buffer.alloc(stamps.byteLength)
  stamps.forEach((v, k) => bytes.writeBigInt64LE(v, 8 * k))
  return bytes
}

function decodeStamps(bytes: Buffer): Stamp {
  const stamps = new BigInt64Array(bytes.length / 8)
  if (LITTLE_ENDIAN) new Uint8Array(stamps.buffer).set(bytes)
  else for (let k = 0; k < stamps.length; k++) stamps[k] = bytes.readBigInt64LE(8 * k)
  return stamps
}
