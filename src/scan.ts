/**
 * Finds the shards of a dataset folder: every regular file, recursively, except hidden entries (a
 * name starting with `.`, which covers `.cairn/`) and the card `cairn.json` at the top. Symbolic
 * links are never followed: they are reported as skipped, like sockets and other special files.
 */
import { constants, lstatSync, readdirSync } from 'node:fs'
import { join, sep } from 'node:path'
import { CARD_FILE } from './dataset.js'
import { CairnError, ioError } from './errors.js'
import { checkShardPath, comparePaths } from './manifest.js'
import type { FileIdentity } from './unixfs/file.js'
import { withRoom } from './util/grow.js'

/** A file found in the dataset. */
export interface FoundFile {
  /** Relative `/`-separated shard path. */
  readonly path: string
  /** Absolute path on disk. */
  readonly abs: string
  readonly size: number
  /** What the scan saw, to detect a change while the file is read. */
  readonly identity: FileIdentity
}

/**
 * A file's stamp, the stat cache's key: size, mtime and ctime in nanoseconds, and inode (as a signed
 * 64-bit number), at positions 0…3. Any write to the file changes it (ctime cannot be set back).
 */
export type Stamp = BigInt64Array

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
  /** The stamp of file `i` at `4i`…`4i+3` ({@link Stamp}). */
  private stamps: Stamp = new BigInt64Array(4 * 1024)
  private bytes = 0
  /** The root and a separator: a path joined to it needs no normalising (shard paths are normalised). */
  private readonly prefix: string

  constructor(root: string) {
    this.prefix = root.endsWith(sep) ? root : root + sep
  }

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

  /**
   * Makes file `i` use `path`, a string equal to its own (the stat cache's): a build that finds
   * 100,000 files in the cache then holds each path once, not twice.
   */
  sharePath(i: number, path: string): void {
    if (this.paths[i] === path) this.paths[i] = path
  }

  size(i: number): number {
    return Number(this.stamps[4 * i])
  }

  /** File `i`'s stamp (a view: valid as long as this scan). */
  stamp(i: number): Stamp {
    return this.stamps.subarray(4 * i, 4 * i + 4)
  }

  /** True when file `i` has stamp `k` of `stamps` (a whole array, e.g. the stat cache's). */
  sameStamp(i: number, stamps: Stamp, k: number): boolean {
    // compared as 32-bit words: reading a BigInt64Array element makes a heap BigInt
    const a = words(this.stamps)
    const b = words(stamps)
    for (let w = 0; w < 8; w++) if (a[8 * i + w] !== b[8 * k + w]) return false
    return true
  }

  /**
   * True when file `i` was modified or had its inode changed (ctime) at or after `after` (ns): it could
   * change again within the same clock tick and keep its stamp. ctime counts too, since tools that copy
   * files (tar, rsync -t) set mtime into the past while ctime is now.
   */
  changedSince(i: number, after: bigint): boolean {
    return this.stamps[4 * i + 1] >= after || this.stamps[4 * i + 2] >= after
  }

  at(i: number): FoundFile {
    const size = Number(this.stamps[4 * i])
    const path = this.paths[i]
    return {
      path,
      abs: this.prefix + (sep === '/' ? path : path.replaceAll('/', sep)),
      size,
      identity: { size, mtimeNs: this.stamps[4 * i + 1], ino: BigInt.asUintN(64, this.stamps[4 * i + 3]) },
    }
  }

  /** Adds a file whose stamp is stamp `k` of `stamps`. */
  push(path: string, stamps: Stamp, k: number): void {
    const i = this.paths.length
    this.stamps = withRoom(this.stamps, 4 * (i + 1))
    this.paths.push(path)
    this.stamps.set(stamps.subarray(4 * k, 4 * k + 4), 4 * i)
    this.bytes += Number(stamps[4 * k])
  }
}

/** A whole stamps array as 32-bit words, the view made once per array. */
function words(stamps: Stamp): Int32Array {
  let w = wordViews.get(stamps)
  if (!w) {
    w = new Int32Array(stamps.buffer, stamps.byteOffset, 2 * stamps.length)
    wordViews.set(stamps, w)
  }
  return w
}

const wordViews = new WeakMap<Stamp, Int32Array>()

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Options of {@link scan}. */
export interface ScanOptions {
  /** Paths left out (`.cairnignore`, src/worktree/ignore.ts): an ignored folder is not entered. */
  readonly ignore?: { ignores(path: string, folder: boolean): boolean }
}

/**
 * Scans `root`. Throws `BAD_PATH` for a name that is not valid UTF-8 or would not be a normalised
 * shard path (a backslash, a control character), and `IO` for a folder that cannot be read. The work
 * is synchronous (a few µs per entry, the event loop waits): the promise is settled when it returns.
 * It keeps every file found: where memory must not grow with the files, use {@link walkFiles}.
 */
export async function scan(root: string, options: ScanOptions = {}): Promise<ScanResult> {
  const files = new FoundFiles(root)
  const skipped: SkippedEntry[] = []
  for (const f of walkFiles(root, options, skipped)) files.push(f.path, f.stamp, 0)
  return { files, skipped }
}

/** A file of {@link walkFiles}: its shard path, absolute path and stamp (its own array). */
export interface WalkedFile {
  readonly path: string
  readonly abs: string
  readonly stamp: Stamp
}

/**
 * The files of `root` one at a time, in canonical path order, as {@link scan} finds them (and with its
 * errors), entries that are not shards pushed to `skipped`. Memory holds the entries of the folders
 * the walk is in (one listing per level), never every file: a build walks 10⁷ files in the space of
 * its largest folder.
 */
export function walkFiles(root: string, options: ScanOptions, skipped: SkippedEntry[]): Generator<WalkedFile> {
  return walk(root, '', root.endsWith(sep) ? root : root + sep, skipped, options.ignore)
}

/**
 * Walks one folder, its entries in canonical order: a folder sorts as its name followed by `/`, where
 * every path under it starts, so visiting each folder in turn gives every path in order, and no sort of
 * the whole list is needed.
 *
 * Synchronous throughout: a promise round trip to the thread pool costs several times the few µs of
 * an lstat, and waiting for one readdir after another left the process idle for ~1 ms each.
 */
function* walk(root: string, rel: string, prefix: string, skipped: SkippedEntry[], ignore: ScanOptions['ignore']): Generator<WalkedFile> {
  const { order, paths, kinds, stamps } = readFolder(root, rel, ignore)
  for (const k of order) {
    const path = paths[k]
    if (kinds[k] === Kind.Link) skipped.push({ path, reason: 'symbolic link (never followed)' })
    else if (kinds[k] === Kind.Folder) yield* walk(root, path, prefix, skipped, ignore)
    else if (kinds[k] === Kind.File) {
      yield { path, abs: prefix + (sep === '/' ? path : path.replaceAll('/', sep)), stamp: stamps.slice(4 * k, 4 * k + 4) }
    } else skipped.push({ path, reason: 'not a regular file' })
  }
}

/** A folder's entries (after the ignore rules), in columns, and the order they sort in. */
interface Folder {
  readonly order: readonly number[]
  readonly paths: readonly string[]
  readonly kinds: readonly Kind[]
  /** Entry `k`'s stamp at `4k`…`4k+3`, for a file. */
  readonly stamps: Stamp
}

/**
 * Lists and stats one folder. A function of its own, apart from the generator: the per-entry loop
 * then gets its machine code once, with type feedback of its own, where inside the generator it was
 * compiled three times in a `status` of 10,000 files (each folder's loop deoptimised the last).
 */
function readFolder(root: string, rel: string, ignore: ScanOptions['ignore']): Folder {
  const dir = rel === '' ? root : join(root, rel)
  let names
  try {
    names = readdirSync(dir)
  } catch (e) {
    throw ioError('read folder', dir, e)
  }
  // names are decoded as UTF-8 with U+FFFD for bytes that are not: only then look at the bytes
  if (names.some((name) => name.includes('\ufffd'))) assertUtf8Names(dir, rel)
  // The folder's entries in columns: where each sorts (its name, and `/` after a folder's), its path,
  // its kind and, for a file, its stamp. The stat objects are dropped at once (they are large), and
  // no object is made per entry.
  const keys: string[] = []
  const paths: string[] = []
  const kinds: Kind[] = []
  const stamps: Stamp = new BigInt64Array(4 * names.length)
  let surrogates = false
  for (const name of names) {
    if (name.startsWith('.')) continue
    const path = rel ? `${rel}/${name}` : name
    if (path === CARD_FILE) continue
    // a name from readdir is never empty and holds no '/' or NUL: only these can make it a bad segment
    if (BAD_NAME.test(name)) checkShardPath(path, 'file name')
    surrogates ||= SURROGATE.test(name)
    // `dir` is normalised already; the lstat that gives the stamp also gives the type (never following a link)
    let st
    try {
      st = lstatSync(dir + sep + name, BIGINT)
    } catch (e) {
      throw ioError('read', path, e)
    }
    // the type from the mode at once: each of BigIntStats' isFile()… makes BigInts of the mode's masks
    const type = Number(st.mode) & S_IFMT
    const kind = type === S_IFREG ? Kind.File : type === S_IFDIR ? Kind.Folder : type === S_IFLNK ? Kind.Link : Kind.Other
    if (ignore?.ignores(path, kind === Kind.Folder)) continue
    if (kind === Kind.File) {
      const k = 4 * keys.length
      stamps[k] = st.size
      stamps[k + 1] = st.mtimeNs
      stamps[k + 2] = st.ctimeNs
      stamps[k + 3] = BigInt.asIntN(64, st.ino)
    }
    keys.push(kind === Kind.Folder ? name + '/' : name)
    paths.push(path)
    kinds.push(kind)
  }
  // without surrogate pairs, UTF-16 order is UTF-8 byte order (names in a folder are distinct)
  const order = keys.map((_, k) => k)
  order.sort(surrogates ? (a, b) => comparePaths(keys[a], keys[b]) : (a, b) => (keys[a] < keys[b] ? -1 : 1))
  return { order, paths, kinds, stamps }
}

/** True when two stamps are equal. */
export function sameStamp(a: Stamp, b: Stamp): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3]
}

/**
 * True when the file of `stamp` was modified or had its inode changed (ctime) at or after `after` (ns):
 * it could change again within the same clock tick and keep its stamp. ctime counts too, since tools
 * that copy files (tar, rsync -t) set mtime into the past while ctime is now.
 */
export function changedSince(stamp: Stamp, after: bigint): boolean {
  return stamp[1] >= after || stamp[2] >= after
}

/** The identity of the file of `stamp` (what a read checks it still has). */
export function identityOfStamp(stamp: Stamp): FileIdentity {
  return { size: Number(stamp[0]), mtimeNs: stamp[1], ino: BigInt.asUintN(64, stamp[3]) }
}

/** What an entry of a folder is. */
const enum Kind {
  File,
  Folder,
  Link,
  Other,
}

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK } = constants
const BIGINT = { bigint: true } as const

const BAD_NAME = /[\\\u0000-\u001f\u007f]/
const SURROGATE = /[\ud800-\udfff]/

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
