/**
 * Replacing a file atomically: the data goes to a temporary name first and is renamed over the target
 * only when complete, so a reader (or a process killed midway) sees the old file or the new one, never
 * half of one. Temporary names carry the writer's pid (`.<name>.<pid>.<hex>.tmp`), so that the next
 * command writing there removes what a killed one left ({@link removeStaleTemps}).
 */
import { randomBytes } from 'node:crypto'
import { open, readdir, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

export interface AtomicWriteOptions {
  /** Where the temporary file goes (default: beside the target; it must be on the same file system). */
  readonly tmpDir?: string
  /** The new file's mode (e.g. 0o600 for secrets). */
  readonly mode?: number
  /** Flush the data to disk before the rename. */
  readonly flush?: boolean
}

/**
 * Writes `data` to `file` atomically. Rejects with the file system's own error (callers name the
 * file in their message); the temporary file is removed on failure.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = tmpName(file, options)
  try {
    await writeFile(tmp, data, { mode: options.mode, flag: 'wx', flush: options.flush })
    await rename(tmp, file)
  } catch (e) {
    await unlink(tmp).catch(() => {})
    throw e
  }
}

/**
 * Replaces `file` atomically with what `write` writes to the open temporary file (for data made piece
 * by piece, or written out of order). Rejects like {@link writeFileAtomic}.
 */
export async function writeFileAtomicWith(
  file: string,
  write: (handle: FileHandle) => Promise<void>,
  options: Omit<AtomicWriteOptions, 'flush'> = {},
): Promise<void> {
  const tmp = tmpName(file, options)
  try {
    const handle = await open(tmp, 'wx', options.mode)
    try {
      await write(handle)
    } finally {
      await handle.close()
    }
    await rename(tmp, file)
  } catch (e) {
    await unlink(tmp).catch(() => {})
    throw e
  }
}

function tmpName(file: string, options: AtomicWriteOptions): string {
  return tempPath(file, options.tmpDir)
}

/** A temporary name for `file` in `dir` (default: beside it) that carries this process's pid. */
export function tempPath(file: string, dir: string = dirname(file)): string {
  return join(dir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
}

/** `<anything>.<pid>.<hex>.tmp`: the temporary names of this module and of the lock's. */
const TEMP_NAME = /\.(\d+)\.[0-9a-f]{8,16}\.tmp$/

/**
 * Removes the temporary files in `dir` (see {@link tempPath}) of processes that no longer run: what a
 * command killed midway left. Files of live processes, and any other file, are left alone. Returns how
 * many were removed; never throws (a folder that cannot be read has nothing to clean).
 */
export async function removeStaleTemps(dir: string): Promise<number> {
  let removed = 0
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = TEMP_NAME.exec(name)
    if (m === null) continue
    const pid = Number(m[1])
    if (pid === process.pid || !Number.isSafeInteger(pid) || pid <= 0 || isRunning(pid)) continue
    if (
      await unlink(join(dir, name)).then(
        () => true,
        () => false,
      )
    )
      removed++
  }
  return removed
}

/** True when a process with this pid runs (EPERM: it runs under another user). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
