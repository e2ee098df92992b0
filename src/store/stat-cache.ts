/**
 * The stat cache (`.cairn/stat-cache`, docs/store.md): what a previous build learned about each file,
 * keyed by path and the file's stamp (size, mtime and ctime in nanoseconds, inode). A file whose stamp
 * is unchanged is not read again; any change to it changes the stamp (ctime cannot be set back), so a
 * changed file is always re-hashed. Entries are tied to the card's row rules: when those change, files
 * are read (and validated) again. The cache is an optimisation only: a missing or unreadable cache just
 * means every file is read.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from '../cid.js'
import type { FormatName } from '../formats/interface.js'
import type { ShardEntry } from '../manifest.js'
import { writeFileAtomic } from '../util/atomic.js'

const VERSION = 1

/** What the cache keeps per file. */
export interface CachedFile {
  readonly stamp: string
  readonly entry: ShardEntry
  readonly dagSize: number
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
  readonly files: Map<string, CachedFile>
  readonly roots?: CachedRoots
}

type Line = [
  path: string,
  stamp: string,
  cid: string,
  size: number,
  format: FormatName,
  dagSize: number,
  rows: number | null,
  schema: string | null,
]

/** Loads the cache of the store at `root` (`.cairn`), or an empty one when it is absent, stale or damaged. */
export async function loadStatCache(root: string, rulesKey: string): Promise<StatCache> {
  const out = new Map<string, CachedFile>()
  let text: string
  try {
    text = await readFile(join(root, 'stat-cache'), 'utf8')
  } catch {
    return { files: out }
  }
  const lines = text.split('\n')
  let roots: CachedRoots | undefined
  try {
    const header = JSON.parse(lines[0]) as {
      statCache?: number
      rules?: string
      index?: string
      tree?: string
      totals?: CachedRoots['totals']
    }
    if (header.statCache !== VERSION || header.rules !== rulesKey) return { files: out }
    if (header.index && header.tree && header.totals)
      roots = { index: CID.parse(header.index), tree: CID.parse(header.tree), totals: header.totals }
    for (const line of lines.slice(1)) {
      if (line === '') continue
      const [path, stamp, cid, size, format, dagSize, rows, schema] = JSON.parse(line) as Line
      const entry: ShardEntry = {
        path,
        cid: CID.parse(cid),
        size,
        format,
        ...(rows === null ? {} : { rows }),
        ...(schema === null ? {} : { schema: CID.parse(schema) }),
      }
      out.set(path, { stamp, entry, dagSize })
    }
  } catch {
    return { files: new Map() }
  }
  return { files: out, roots }
}

/**
 * Replaces the cache atomically. `roots` are saved only when `files` are every file of the build (none
 * left out as racy). Failures are ignored: the cache only saves time.
 */
export async function saveStatCache(root: string, rulesKey: string, files: Iterable<CachedFile>, roots?: CachedRoots): Promise<void> {
  const header = roots ? { index: roots.index.toString(), tree: roots.tree.toString(), totals: roots.totals } : {}
  const parts = [JSON.stringify({ statCache: VERSION, rules: rulesKey, ...header })]
  for (const { stamp, entry: e, dagSize } of files) {
    const line: Line = [e.path, stamp, e.cid.toString(), e.size, e.format, dagSize, e.rows ?? null, e.schema?.toString() ?? null]
    parts.push(JSON.stringify(line))
  }
  await writeFileAtomic(join(root, 'stat-cache'), parts.join('\n') + '\n', { tmpDir: join(root, 'tmp') }).catch(() => {})
}
