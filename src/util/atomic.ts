/**
 * Replacing a file atomically: the data goes to a temporary name first and is renamed over the target
 * only when complete, so a reader (or a process killed midway) sees the old file or the new one, never
 * half of one.
 */
import { randomBytes } from 'node:crypto'
import { open, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises'
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
  return join(options.tmpDir ?? dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
}
