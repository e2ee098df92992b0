/**
 * Clone packs (store mode `reflink`): a pack `clone-<id>.pack` that is a copy-on-write clone of one
 * whole data file (`FICLONE` through `fs.copyFile(…, COPYFILE_FICLONE_FORCE)`: btrfs, XFS, APFS…), so
 * that its raw leaves lie at their offsets in the file, which is exactly where they lie in the pack; its
 * index log `clone-<id>.idx` lists them as any pack's log does. Reading a clone pack is reading a pack.
 * The clone shares the file's extents until either is written: the store costs no second copy, and an
 * edit of the data file later leaves the clone (and every version it fed) whole.
 *
 * Files under {@link REFLINK_MIN_BYTES} are copied into the ordinary pack instead (a pack file and a
 * log per file would cost more than the bytes they save). Where the file system cannot clone, the first
 * failure is remembered and every block is copied, as in `copy` mode ({@link ReflinkWriter.unsupported}).
 */
import { randomBytes } from 'node:crypto'
import { constants, write } from 'node:fs'
import { copyFile, open, stat, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { cidText, type CID } from '../cid.js'
import { ioError } from '../errors.js'
import type { LeafOrigin } from '../unixfs/file.js'

/** Clone packs' names start with this. */
export const CLONE_PREFIX = 'clone-'

/** Files smaller than this are copied, not cloned. */
export const REFLINK_MIN_BYTES = 64 * 1024

/** Whether a pack id names a clone pack. */
export function isClonePack(id: string): boolean {
  return id.startsWith(CLONE_PREFIX)
}

/** Errors of `FICLONE` that mean "this file system (or this pair of folders) cannot clone". */
const CANNOT_CLONE = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY', 'EPERM', 'EBADF'])

interface Clone {
  readonly name: string
  readonly index: FileHandle
  tail: Promise<void>
}

/** Makes clone packs of the data files a build imports. */
export class ReflinkWriter {
  /** Why cloning failed on this store (then every block is copied), once it has. */
  unsupported: string | undefined
  /** Files cloned and their bytes, by this writer. */
  readonly cloned = { files: 0, bytes: 0 }
  private readonly clones = new Map<string, Promise<Clone | undefined>>()

  constructor(private readonly packsDir: string) {}

  /**
   * Records the block `cid` (`length` bytes at `from`) in the clone pack of its file, cloning the file
   * on its first block; resolves with its place once its index line is written. Resolves undefined when
   * the block is to be copied instead (a small file, a file system that cannot clone, a file that
   * changed before it could be cloned). Throws `IO` for any other failure (a full disk).
   */
  async put(cid: CID, length: number, from: LeafOrigin): Promise<{ pack: string; offset: number; length: number } | undefined> {
    if (this.unsupported !== undefined || from.identity.size < REFLINK_MIN_BYTES) return undefined
    const key = `${from.path}\0${from.identity.ino}\0${from.identity.mtimeNs}\0${from.identity.size}`
    let clone = this.clones.get(key)
    if (clone === undefined) {
      clone = this.clone(from)
      this.clones.set(key, clone)
      // a build imports a file's blocks one after the other: the last few files are all it asks for again
      if (this.clones.size > 64) {
        const [oldest, done] = this.clones.entries().next().value!
        this.clones.delete(oldest)
        void done.then((c) => c && c.tail.then(() => c.index.close())).catch(() => {})
      }
    }
    const c = await clone
    if (c === undefined) return undefined
    const line = `${cidText(cid.version === 0 ? cid.toV1() : cid)} ${from.offset} ${length}\n`
    c.tail = c.tail.then(() => appendAll(c.index.fd, line))
    try {
      await c.tail
    } catch (e) {
      throw ioError('write the block index', join(this.packsDir, c.name + '.idx'), e)
    }
    return { pack: c.name, offset: from.offset, length }
  }

  /** Closes the clone packs' logs. */
  async close(): Promise<void> {
    const clones = [...this.clones.values()]
    this.clones.clear()
    for (const c of await Promise.all(clones.map((p) => p.catch(() => undefined)))) {
      if (c) await c.tail.catch(() => {}).then(() => c.index.close())
    }
  }

  /** Clones the file into a new pack; undefined when it cannot be (see {@link put}). */
  private async clone(from: LeafOrigin): Promise<Clone | undefined> {
    const name = `${CLONE_PREFIX}${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`
    const pack = join(this.packsDir, name + '.pack')
    try {
      await copyFile(from.path, pack, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE)
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? ''
      await unlink(pack).catch(() => {})
      if (CANNOT_CLONE.has(code)) {
        this.unsupported = `the file system cannot clone ${from.path} into ${this.packsDir} (${code})`
        return undefined
      }
      if (code === 'ENOENT') return undefined // the file went away: the build reports it
      throw ioError('clone', from.path, e)
    }
    // the clone must hold the bytes the build hashed: the file as it was read, unchanged since
    try {
      const now = await stat(from.path, { bigint: true })
      const copy = await stat(pack)
      const same = Number(now.size) === from.identity.size && now.mtimeNs === from.identity.mtimeNs && now.ino === from.identity.ino
      if (!same || copy.size !== from.identity.size) {
        await unlink(pack).catch(() => {})
        return undefined
      }
    } catch {
      await unlink(pack).catch(() => {})
      return undefined
    }
    let index: FileHandle
    try {
      index = await open(join(this.packsDir, name + '.idx'), 'a')
    } catch (e) {
      await unlink(pack).catch(() => {})
      throw ioError('create', join(this.packsDir, name + '.idx'), e)
    }
    this.cloned.files++
    this.cloned.bytes += from.identity.size
    return { name, index, tail: Promise.resolve() }
  }
}

/**
 * Whether files of `dir` can be cloned into `packsDir` (`cairn store mode` reports it): clones a small
 * probe file made in `packsDir`'s parent and removes both. Resolves with undefined when they can, else
 * the reason.
 */
export async function probeReflink(storeDir: string): Promise<string | undefined> {
  const tag = randomBytes(6).toString('hex')
  const a = join(storeDir, 'tmp', `.reflink-probe-${tag}`)
  const b = join(storeDir, 'tmp', `.reflink-probe-${tag}.clone`)
  try {
    await (await import('node:fs/promises')).writeFile(a, 'cairn reflink probe\n', { flag: 'wx' })
    await copyFile(a, b, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE)
    return undefined
  } catch (e) {
    return `the file system of ${storeDir} cannot clone files (${(e as NodeJS.ErrnoException).code ?? String(e)})`
  } finally {
    await unlink(a).catch(() => {})
    await unlink(b).catch(() => {})
  }
}

/** Appends all of `text` (ASCII) to `fd`, opened for appending. */
async function appendAll(fd: number, text: string): Promise<void> {
  let bytes = Buffer.from(text, 'latin1')
  while (bytes.length > 0) {
    const n = await new Promise<number>((resolve, reject) => write(fd, bytes, (e, written) => (e ? reject(e) : resolve(written))))
    bytes = bytes.subarray(n)
  }
}
