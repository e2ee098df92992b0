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
import { CID, cidText } from '../cid.js'
import type { FormatName } from '../formats/interface.js'
import type { ShardEntry } from '../manifest.js'
import { writeFileAtomic } from '../util/atomic.js'

const VERSION = 2

/** What a build tells the cache about one file. */
export interface FileFacts {
  readonly stamp: string
  readonly entry: ShardEntry
  readonly dagSize: number
}

/**
 * A file as the cache knows it. `cid` and `schema` are the CIDs' text (CIDv1, base32), so checking that
 * the store still has them parses nothing; `entry` is parsed on first use (10,000 CID parses cost more
 * than the rest of a rebuild).
 */
export interface CachedFile extends FileFacts {
  readonly cid: string
  readonly schema: string | undefined
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

/** A loaded cache. */
export interface StatCache {
  /** How many files it knows. */
  readonly size: number
  /**
   * What the cache knows of `path`. `at` is where the caller expects it: the cache keeps the order it
   * was saved in, a build's canonical path order, so a scan in that order finds each file there without
   * a lookup by path.
   */
  get(path: string, at?: number): CachedFile | undefined
  readonly roots?: CachedRoots
}

/** The cache's body: one array per field (one JSON parse, and no array per file). */
interface Body {
  readonly rules: string
  readonly roots: { readonly index: string; readonly tree: string; readonly totals: CachedRoots['totals'] } | null
  readonly paths: string[]
  readonly stamps: string[]
  readonly cids: string[]
  readonly sizes: number[]
  readonly formats: FormatName[]
  readonly dagSizes: number[]
  readonly rows: (number | null)[]
  readonly schemas: (string | null)[]
}

class Cached implements CachedFile {
  #entry: ShardEntry | undefined
  constructor(
    private readonly body: Body,
    private readonly i: number,
  ) {}
  get stamp(): string {
    return this.body.stamps[this.i]
  }
  get cid(): string {
    return this.body.cids[this.i]
  }
  get schema(): string | undefined {
    return this.body.schemas[this.i] ?? undefined
  }
  get dagSize(): number {
    return this.body.dagSizes[this.i]
  }
  get entry(): ShardEntry {
    if (this.#entry) return this.#entry
    const { body: b, i } = this
    const rows = b.rows[i]
    const schema = b.schemas[i]
    this.#entry = {
      path: b.paths[i],
      cid: CID.parse(b.cids[i]),
      size: b.sizes[i],
      format: b.formats[i],
      ...(rows === null ? {} : { rows }),
      ...(schema === null ? {} : { schema: CID.parse(schema) }),
    }
    return this.#entry
  }
}

class Loaded implements StatCache {
  #byPath: Map<string, number> | undefined
  constructor(
    private readonly body: Body,
    readonly roots: CachedRoots | undefined,
  ) {}
  get size(): number {
    return this.body.paths.length
  }
  get(path: string, at?: number): CachedFile | undefined {
    const paths = this.body.paths
    if (at !== undefined && paths[at] === path) return new Cached(this.body, at)
    this.#byPath ??= new Map(paths.map((p, i) => [p, i]))
    const i = this.#byPath.get(path)
    return i === undefined ? undefined : new Cached(this.body, i)
  }
}

const EMPTY: StatCache = { size: 0, get: () => undefined }

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
    const body = JSON.parse(rest.toString('utf8')) as Body
    if (body.rules !== rulesKey) return EMPTY
    const columns = [body.paths, body.stamps, body.cids, body.sizes, body.formats, body.dagSizes, body.rows, body.schemas]
    if (!columns.every((c) => Array.isArray(c) && c.length === body.paths.length)) return EMPTY
    const r = body.roots
    return new Loaded(body, r ? { index: CID.parse(r.index), tree: CID.parse(r.tree), totals: r.totals } : undefined)
  } catch {
    return EMPTY
  }
}

/**
 * Gathers what a build learns, file by file in path order, as the cache's columns (CIDs as text), so
 * that a build need not keep every entry until it saves: about a hundred bytes per file.
 */
export class StatCacheWriter {
  private readonly body: Omit<Body, 'roots'>
  constructor(rulesKey: string) {
    this.body = { rules: rulesKey, paths: [], stamps: [], cids: [], sizes: [], formats: [], dagSizes: [], rows: [], schemas: [] }
  }

  /** Files added so far. */
  get size(): number {
    return this.body.paths.length
  }

  add({ stamp, entry: e, dagSize }: FileFacts): void {
    const b = this.body
    b.paths.push(e.path)
    b.stamps.push(stamp)
    b.cids.push(cidText(e.cid))
    b.sizes.push(e.size)
    b.formats.push(e.format)
    b.dagSizes.push(dagSize)
    b.rows.push(e.rows ?? null)
    b.schemas.push(e.schema ? cidText(e.schema) : null)
  }

  /**
   * Replaces the cache atomically. `roots` are saved only when the files added are every file of the
   * build (none left out as racy). Failures are ignored: the cache only saves time.
   */
  async save(root: string, roots?: CachedRoots): Promise<void> {
    const body: Body = {
      ...this.body,
      roots: roots ? { index: roots.index.toString(), tree: roots.tree.toString(), totals: roots.totals } : null,
    }
    const rest = Buffer.from(JSON.stringify(body) + '\n')
    const header = JSON.stringify({ statCache: VERSION, sha256: createHash('sha256').update(rest).digest('hex') }) + '\n'
    const data = Buffer.concat([Buffer.from(header), rest])
    await writeFileAtomic(join(root, 'stat-cache'), data, { tmpDir: join(root, 'tmp') }).catch(() => {})
  }
}
