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
import { identityOf, type FileIdentity } from './unixfs/file.js'

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
  readonly files: readonly FoundFile[]
  readonly skipped: readonly SkippedEntry[]
}

/**
 * Kept for every file of a build, so kept small: the stamp is one flat string (a template literal
 * would keep a tree of pieces), and the absolute path is made again when it is needed.
 */
class Found implements FoundFile {
  readonly size: number
  readonly stamp: string
  readonly identity: FileIdentity
  constructor(
    private readonly root: string,
    readonly path: string,
    st: BigIntStats,
  ) {
    this.size = Number(st.size)
    this.stamp = [st.size, st.mtimeNs, st.ctimeNs, st.ino].join(':')
    this.identity = identityOf(st)
  }
  get abs(): string {
    return join(this.root, this.path)
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Scans `root`. Throws `BAD_PATH` for a name that is not valid UTF-8 or would not be a normalised
 * shard path (a backslash, a control character), and `IO` for a folder that cannot be read. The work
 * is synchronous (a few µs per entry, the event loop waits): the promise is settled when it returns.
 */
export async function scan(root: string): Promise<ScanResult> {
  const files: FoundFile[] = []
  const skipped: SkippedEntry[] = []
  walk(root, '', files, skipped)
  files.sort((a, b) => comparePaths(a.path, b.path))
  return { files, skipped }
}

// Synchronous throughout: a promise round trip to the thread pool costs several times the few µs of
// an lstat, and waiting for one readdir after another left the process idle for ~1 ms each.
function walk(root: string, rel: string, files: FoundFile[], skipped: SkippedEntry[]): void {
  const dir = rel === '' ? root : join(root, rel)
  let names
  try {
    names = readdirSync(dir)
  } catch (e) {
    throw ioError('read folder', dir, e)
  }
  // names are decoded as UTF-8 with U+FFFD for bytes that are not: only then look at the bytes
  if (names.some((name) => name.includes('\ufffd'))) assertUtf8Names(dir, rel)
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
    if (st.isSymbolicLink()) {
      skipped.push({ path, reason: 'symbolic link (never followed)' })
    } else if (st.isDirectory()) {
      walk(root, path, files, skipped)
    } else if (st.isFile()) {
      files.push(new Found(root, path, st))
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
