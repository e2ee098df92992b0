/**
 * One writer at a time per dataset: `.cairn/lock` is created exclusively and holds the writer's pid.
 * A lock left by a process that no longer runs (killed midway) is taken over.
 */
import { readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { STORE_DIR } from '../dataset.js'
import { CairnError, ioError } from '../errors.js'

/** Lock files this process holds: a lock with our own pid is only stale when it is not one of them. */
const held = new Set<string>()

/**
 * Runs `fn` holding the dataset's write lock. Throws `IO` when another live process holds it, or
 * another call in this process (two concurrent builds would both take HEAD as their parent).
 */
export async function withLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  const file = join(root, STORE_DIR, 'lock')
  await acquire(file)
  try {
    return await fn()
  } finally {
    await unlink(file).catch(() => {})
    held.delete(file)
  }
}

async function acquire(file: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    if (held.has(file)) {
      throw new CairnError('IO', `Another operation of this process is writing to this dataset (${file})`, {
        subject: file,
        hint: 'wait for it to finish',
      })
    }
    // claimed before the first await, so a concurrent call in this process sees it
    held.add(file)
    try {
      await writeFile(file, String(process.pid), { flag: 'wx' })
      return
    } catch (e) {
      held.delete(file)
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create lock', file, e)
    }
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim())
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new CairnError('IO', `Another cairn process (pid ${pid}) is writing to this dataset (${file})`, {
        subject: file,
        hint: 'wait for it to finish',
      })
    }
    await unlink(file).catch(() => {})
  }
  throw new CairnError('IO', `Cannot take the lock ${file}`, { subject: file })
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}
