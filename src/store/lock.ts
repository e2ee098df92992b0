/**
 * One writer at a time per dataset (and per clone target): a lock file holding the writer's pid. The
 * file is written whole under a temporary name and hard-linked to the lock's name, so it appears with
 * its pid in one atomic step: a competitor never sees it empty. A lock left by a process that no
 * longer runs (killed midway) is taken over. See docs/hostile-input.md.
 */
import { randomBytes } from 'node:crypto'
import { link, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { STORE_DIR } from '../dataset.js'
import { CairnError, ioError } from '../errors.js'
import { isRunning } from '../util/atomic.js'

/** Lock files this process holds: a lock with our own pid is only stale when it is not one of them. */
const held = new Set<string>()

/**
 * Runs `fn` holding the dataset's write lock (`.cairn/lock`). Throws `LOCKED` when another live process
 * holds it, or another call in this process (two concurrent builds would both take HEAD as their parent).
 */
export async function withLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  return withLockFile(join(root, STORE_DIR, 'lock'), fn)
}

/**
 * Runs `fn` holding the lock file `file` (its folder must exist). Throws `LOCKED` naming the holder's
 * pid when a live process holds it, `IO` when it cannot be created.
 */
export async function withLockFile<T>(file: string, fn: () => Promise<T>): Promise<T> {
  await acquire(file)
  try {
    return await fn()
  } finally {
    await unlink(file).catch(() => {})
    held.delete(file)
  }
}

/** True when `name` is a lock's own file or one of its temporary files (see {@link withLockFile}). */
export function isLockFileName(name: string, lock: string): boolean {
  return name === lock || (name.startsWith(`${lock}.`) && name.endsWith('.tmp'))
}

function locked(file: string, who: string): CairnError {
  return new CairnError('LOCKED', `${who} is writing to ${dirname(file)} (lock ${file})`, {
    subject: file,
    hint: 'wait for it to finish and run the command again; a lock whose process has died is taken over by the next command',
  })
}

async function acquire(file: string): Promise<void> {
  if (held.has(file)) throw locked(file, 'Another operation of this process')
  // claimed before the first await, so a concurrent call in this process sees it
  held.add(file)
  try {
    await removeStaleTemps(file)
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
    try {
      await writeFile(tmp, `${process.pid}\n`, { flag: 'wx' })
    } catch (e) {
      throw ioError('create lock', file, e)
    }
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await link(tmp, file)
          return
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create lock', file, e)
        }
        const pid = await readPid(file)
        if (pid !== undefined && pid !== process.pid && isRunning(pid)) throw locked(file, `Another cairn process (pid ${pid})`)
        if (pid === undefined && attempt === 0) {
          // not ours to judge yet: a lock written by an older cairn may be seen between its create and its write
          await new Promise((r) => setTimeout(r, 50))
          continue
        }
        await takeOver(file, pid)
      }
      throw locked(file, 'Another cairn process')
    } finally {
      await unlink(tmp).catch(() => {})
    }
  } catch (e) {
    held.delete(file)
    throw e
  }
}

/**
 * Removes a stale lock: renamed away first (only one of several competitors can rename one file), then
 * checked: if what was renamed is not the stale lock that was judged (a competitor took over meanwhile),
 * it is put back.
 */
async function takeOver(file: string, stalePid: number | undefined): Promise<void> {
  const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.stale.tmp`
  try {
    await rename(file, aside)
  } catch {
    return // gone already: try again
  }
  const pid = await readPid(aside)
  if (pid !== stalePid && pid !== undefined && isRunning(pid)) {
    await link(aside, file).catch(() => {})
    await unlink(aside).catch(() => {})
    throw locked(file, `Another cairn process (pid ${pid})`)
  }
  await unlink(aside).catch(() => {})
}

/** Temporary files of this lock left by processes that died before removing them. */
async function removeStaleTemps(file: string): Promise<void> {
  const dir = dirname(file)
  const name = basename(file)
  const names = await readdir(dir).catch(() => [] as string[])
  for (const n of names) {
    if (!isLockFileName(n, name) || n === name) continue
    const pid = Number(n.slice(name.length + 1).split('.')[0])
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isRunning(pid)) await unlink(join(dir, n)).catch(() => {})
  }
}

async function readPid(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '')
  const pid = Number(text.trim())
  return text.trim() !== '' && Number.isInteger(pid) && pid > 0 ? pid : undefined
}

/** Locks taken one after another and released together, the last taken first (see {@link withLockFile}). */
export class HeldLocks {
  private readonly files: string[] = []

  /** Takes the lock `file` (its folder must exist) until {@link HeldLocks.release}. Throws as {@link withLockFile}. */
  async take(file: string): Promise<void> {
    await acquire(file)
    this.files.push(file)
  }

  /** Releases every lock taken. */
  async release(): Promise<void> {
    for (const file of this.files.reverse()) {
      await unlink(file).catch(() => {})
      held.delete(file)
    }
    this.files.length = 0
  }
}
