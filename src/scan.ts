/**
 * Finds the shards of a dataset folder: every regular file, recursively, except hidden entries (a
 * name starting with `.`, which covers `.cairn/`) and the card `cairn.json` at the top. Symbolic
 * links are never followed: they are reported as skipped, like sockets and other special files.
 */
import { lstatSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
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

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Scans `root`. Throws `BAD_PATH` for a name that is not valid UTF-8 or would not be a normalised
 * shard path (a backslash, a control character), and `IO` for a folder that cannot be read.
 */
export async function scan(root: string): Promise<ScanResult> {
  const files: FoundFile[] = []
  const skipped: SkippedEntry[] = []
  await walk(root, '', files, skipped)
  files.sort((a, b) => comparePaths(a.path, b.path))
  return { files, skipped }
}

async function walk(root: string, rel: string, files: FoundFile[], skipped: SkippedEntry[]): Promise<void> {
  const dir = rel === '' ? root : join(root, rel)
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' })
  } catch (e) {
    throw ioError('read folder', dir, e)
  }
  const regular: { path: string; abs: string }[] = []
  for (const entry of entries) {
    let name: string
    try {
      name = utf8.decode(entry.name)
    } catch {
      const shown = (rel ? rel + '/' : '') + entry.name.toString('latin1')
      throw new CairnError('BAD_PATH', `File name ${JSON.stringify(shown)} is not valid UTF-8 (shard paths must be UTF-8)`, {
        subject: shown,
        hint: 'rename the file',
      })
    }
    if (name.startsWith('.')) continue
    const path = rel ? `${rel}/${name}` : name
    if (path === CARD_FILE) continue
    checkShardPath(path, 'file name')
    if (entry.isSymbolicLink()) {
      skipped.push({ path, reason: 'symbolic link (never followed)' })
    } else if (entry.isDirectory()) {
      await walk(root, path, files, skipped)
    } else if (entry.isFile()) {
      regular.push({ path, abs: join(root, path) })
    } else {
      skipped.push({ path, reason: 'not a regular file' })
    }
  }
  // a synchronous lstat costs a few µs; a promise round trip to the thread pool costs several times that
  const stats = regular.map(({ path, abs }) => {
    try {
      return lstatSync(abs, { bigint: true })
    } catch (e) {
      throw ioError('read', path, e)
    }
  })
  regular.forEach(({ path, abs }, i) => {
    const st = stats[i]
    files.push({ path, abs, size: Number(st.size), stamp: `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}`, identity: identityOf(st) })
  })
}
