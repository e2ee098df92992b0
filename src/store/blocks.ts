/**
 * The local content-addressed block store in `.cairn/blocks/`. Layout (docs/store.md): one file per
 * block, named by its base32 CID, in a folder named by the CID's two characters before the last
 * (flatfs `next-to-last/2`). A block is written to `.cairn/tmp/` and renamed into place, so a block
 * file that exists is always whole; every read is hashed against the CID before it is used.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { checkBlock } from '../car/block.js'
import type { CID } from '../cid.js'
import { CairnError, ioError } from '../errors.js'

/** Anything blocks can be read from, verified: the store, a CAR file, a gateway. */
export interface BlockSource {
  /** The block's bytes, checked against `cid`. Throws `MISSING_BLOCK` or `CORRUPT_BLOCK`. */
  get(cid: CID): Promise<Uint8Array>
}

/** A block source that can also tell cheaply whether it has a block. */
export interface BlockStoreLike extends BlockSource {
  has(cid: CID): Promise<boolean>
  put(cid: CID, bytes: Uint8Array): Promise<void>
}

/** The on-disk block store of one dataset. */
export class BlockStore implements BlockStoreLike {
  private readonly blocksDir: string
  private readonly tmpDir: string
  /** CIDs known to be on disk, so repeated puts of shared blocks skip the file system. */
  private readonly known = new Set<string>()
  private readonly madeDirs = new Set<string>()

  /** `root` is the `.cairn` folder. */
  constructor(readonly root: string) {
    this.blocksDir = join(root, 'blocks')
    this.tmpDir = join(root, 'tmp')
  }

  /** Where the block for `cid` lives (whether or not it exists). */
  pathOf(cid: CID): string {
    const key = cid.toV1().toString()
    return join(this.blocksDir, key.slice(-3, -1), key)
  }

  async has(cid: CID): Promise<boolean> {
    const key = cid.toString()
    if (this.known.has(key)) return true
    try {
      await stat(this.pathOf(cid))
      this.known.add(key)
      return true
    } catch {
      return false
    }
  }

  /** Stores a block (the caller made `bytes` from `cid`'s hash). A block already present is not rewritten. */
  async put(cid: CID, bytes: Uint8Array): Promise<void> {
    if (await this.has(cid)) return
    const final = this.pathOf(cid)
    const dir = join(final, '..')
    const tmp = join(this.tmpDir, `${randomBytes(8).toString('hex')}.blk`)
    try {
      if (!this.madeDirs.has(dir)) {
        await mkdir(dir, { recursive: true })
        this.madeDirs.add(dir)
      }
      await writeFile(tmp, bytes)
      await rename(tmp, final)
    } catch (e) {
      await unlink(tmp).catch(() => {})
      throw ioError('write block to', final, e)
    }
    this.known.add(cid.toString())
  }

  async get(cid: CID): Promise<Uint8Array> {
    let bytes: Uint8Array
    try {
      bytes = await readFile(this.pathOf(cid))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CairnError('MISSING_BLOCK', `Block ${cid} is not in the store ${this.root}`, { subject: cid.toString() })
      }
      throw ioError('read block', this.pathOf(cid), e)
    }
    await checkBlock(cid, bytes)
    return bytes
  }
}
