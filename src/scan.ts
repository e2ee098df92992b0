/**
 * Finds the shards of a dataset folder: every regular file, recursively, except hidden entries (a
 * name starting with `.`, which covers `.cairn/`) and the card `cairn.json` at the top. Symbolic
 * links are never followed: they are reported as skipped, like sockets and other special files.
 */
import { lstatSync, readdirSync, type BigIntStats } from 'node:fs'
import { join, sep } from 'node:path'
import { CARD_FILE } from './dataset.js'
import { CairnError, ioError } from './errors.js'
import { checkShardPath, comparePaths } from './manifest.js'
import type { FileIdentity } from './unixfs/file.js'

/** A file found in the dataset. */
export interface FoundFile {
  /** Relative `/`-separated shard path. */
  readonly path: string
  /** Absolute path on disk. */
  readonly abs: string
  readonly size: number
  /** Size, mtime and ctime (nanoseconds) and inode: the stat cache's key (a changed file changes it). */
  readonly stamp: string
  /** What the scan saw, to detect a change while the file is read. */
  readonly identity: FileIdentity
}

/** An entry that is not a shard, and why. */
export interface SkippedEntry {
  readonly path: string
  readonly reason: string
}

/** The result of a scan: files in canonical path order, and what was skipped. */
export interface ScanResult {
  readonly files: FoundFiles
  readonly skipped: readonly SkippedEntry[]
}

/**
 * The files of a scan, in canonical path order. Kept for every file of a build or a verify, so kept in
 * columns (a path string and four 64-bit numbers per file, about 90 bytes): {@link at} makes the
 * object for one file when it is needed.
 */
export class FoundFiles {
  private readonly paths: string[] = []
  /** Size, mtime (ns), ctime (ns) and inode of file `i` at `4i`…`4i+3` (the inode as unsigned). */
  private stats = new BigInt64Array(4 * 1024)
  private bytes = 0

  constructor(private readonly root: string) {}

  get length(): number {
    return this.paths.length
  }

  /** The sum of the files' sizes. */
  get totalBytes(): number {
    return this.bytes
  }

  path(i: number): string {
    return this.paths[i]
  }

  size(i: number): number {
    return Number(this.stats[4 * i])
  }

  at(i: number): FoundFile {
    const s = this.stats
    const size = s[4 * i]
    const mtimeNs = s[4 * i + 1]
    const ino = BigInt.asUintN(64, s[4 * i + 3])
    const path = this.paths[i]
    return {
      path,
      abs: join(this.root, path),
      size: Number(size),
      // joined, not a template literal, which would keep a tree of seven pieces
      stamp: [size, mtimeNs, s[4 * i + 2], ino].join(':'),
      identity: { size: Number(size), mtimeNs, ino },
    }
  }

  push(path: string, st: BigIntStats): void {
    const i = this.paths.length
    if (4 * i + 4 > this.stats.length) {
      const grown = new BigInt64Array(2 * this.stats.length)
      grown.set(this.stats)
      this.stats = grown
    }
    this.paths.push(path)
    this.stats[4 * i] = st.size
    this.stats[4 * i + 1] = st.mtimeNs
    this.stats[4 * i + 2] = st.ctimeNs
    this.stats[4 * i + 3] = BigInt.asIntN(64, st.ino)
    this.bytes += Number(st.size)
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Scans `root`. Throws `BAD_PATH` for a name that is not valid UTF-8 or would not be a normalised
 * shard path (a backslash, a control character), and `IO` for a folder that cannot be read. The work
 * is synchronous (a few µs per entry, the event loop waits): the promise is settled when it returns.
 */
export async function scan(root: string): Promise<ScanResult> {
  const files = new FoundFiles(root)
  const skipped: SkippedEntry[] = []
  walk(root, '', files, skipped)
  return { files, skipped }
}

/**
 * Walks one folder, its entries in canonical order: a folder sorts as its name followed by `/`, where
 * every path under it starts, so visiting each folder in turn gives every path in order, and no sort of
 * the whole list is needed.
 *
 * Synchronous throughout: a promise round trip to the thread pool costs several times the few µs of
 * an lstat, and waiting for one readdir after another left the process idle for ~1 ms each.
 */
function walk(root: string, rel: string, files: FoundFiles, skipped: SkippedEntry[]): void {
  const dir = rel === '' ? root : join(root, rel)
  let names
  try {
    names = readdirSync(dir)
  } catch (e) {
    throw ioError('read folder', dir, e)
  }
  // names are decoded as UTF-8 with U+FFFD for bytes that are not: only then look at the bytes
  if (names.some((name) => name.includes('\ufffd'))) assertUtf8Names(dir, rel)
  const entries: { key: string; path: string; st: BigIntStats }[] = []
  for (const name of names) {
    if (name.startsWith('.')) continue
    const path = rel ? `${rel}/${name}` : name
    if (path === CARD_FILE) continue
    checkShardPath(path, 'file name')
    // `dir` is normalised already; the lstat that gives the stamp also gives the type (never following a link)
    const abs = dir + sep + name
    let st
    try {
      st = lstatSync(abs, { bigint: true })
    } catch (e) {
      throw ioError('read', path, e)
    }
    entries.push({ key: st.isDirectory() ? name + '/' : name, path, st })
  }
  entries.sort((a, b) => comparePaths(a.key, b.key))
  for (const { path, st } of entries) {
    if (st.isSymbolicLink()) {
      skipped.push({ path, reason: 'symbolic link (never followed)' })
    } else if (st.isDirectory()) {
      walk(root, path, files, skipped)
    } else if (st.isFile()) {
      files.push(path, st)
    } else {
      skipped.push({ path, reason: 'not a regular file' })
    }
  }
}

/** Throws `BAD_PATH` for the first name in `dir` that is not valid UTF-8. */
function assertUtf8Names(dir: string, rel: string): void {
  let names
  try {
    names = readdirSync(dir, { encoding: 'buffer' })
  } catch (e) {
    throw ioError('read folder', dir, e)
  }
  for (const name of names) {
    try {
      utf8.decode(name)
    } catch {
      const shown = (rel ? rel + '/' : '') + name.toString('latin1')
      throw new CairnError('BAD_PATH', `File name ${JSON.stringify(shown)} is not valid UTF-8 (shard paths must be UTF-8)`, {
        subject: shown,
        hint: 'rename the file',
      })
    }
  }
}
