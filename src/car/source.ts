/**
 * CAR files as block sources. {@link CarBlockSource} indexes a CAR once (CID → where its bytes lie),
 * streaming, without holding any block's bytes; `get` then reads just that range and checks it against
 * the CID. {@link FallbackSource} tries several sources in turn (the store first, then a CAR).
 */
import { open, type FileHandle } from 'node:fs/promises'
import type { CID } from '../cid.js'
import { CairnError, ioError, isCairnError } from '../errors.js'
import type { BlockSource } from '../store/blocks.js'
import { checkBlock } from './block.js'
import { CarSectionReader, fileSize, readReused, StreamDamage } from './reader.js'

/** Where one block's bytes lie in the file. */
interface Range {
  readonly offset: number
  readonly length: number
}

/** The multihash bytes as a map key: CIDv0 and CIDv1 of the same block share it, whatever the codec. */
function keyOf(cid: CID): string {
  const mh = cid.multihash.bytes
  return `${cid.code}:${Buffer.from(mh.buffer, mh.byteOffset, mh.length).toString('latin1')}`
}

/**
 * A CAR file (v1, or v2 with a v1 inside) as a {@link BlockSource}. Memory: one index entry per block
 * (its key and two numbers), never block bytes. Open it with {@link CarBlockSource.open}; close it with
 * {@link CarBlockSource.close}.
 */
export class CarBlockSource implements BlockSource {
  private constructor(
    readonly path: string,
    /** The roots named in the CAR header. */
    readonly roots: readonly CID[],
    private readonly index: ReadonlyMap<string, Range>,
    private readonly fh: FileHandle,
  ) {}

  /**
   * Indexes the CAR at `path` in one streaming pass. Throws `BAD_CAR` when the file is not a CAR or
   * is malformed or truncated, `IO` when it cannot be read.
   */
  static async open(path: string): Promise<CarBlockSource> {
    const index = new Map<string, Range>()
    // the one CAR reader (src/car/reader.ts): its section and block caps apply before anything is read
    const reader = new CarSectionReader(readReused(path, 1 << 20), path, true, await fileSize(path))
    let roots: CID[]
    let count = 0
    try {
      roots = await reader.readHeader()
      for (let batch = await reader.next(); batch.length > 0; batch = await reader.next()) {
        for (const { cid, bytes, offset } of batch) {
          count++
          // the first copy of a block is the one read: what a later duplicate says does not matter
          const key = keyOf(cid)
          if (!index.has(key)) index.set(key, { offset, length: bytes.length })
        }
      }
    } catch (e) {
      if (!(e instanceof StreamDamage)) throw e
      throw new CairnError(
        'BAD_CAR',
        `${path} is not a readable CAR file: it is ${e.kind === 'truncated' ? 'truncated' : 'malformed'} after ${count} blocks (${e.message})`,
        {
          subject: path,
          details: [{ kind: e.kind, offset: e.offset }],
          hint: 'check that the file is a CAR (e.g. made by `cairn pack` or `ipfs dag export`) and was copied whole',
        },
      )
    } finally {
      await reader.close()
    }
    let fh: FileHandle
    try {
      fh = await open(path, 'r')
    } catch (e) {
      throw ioError('open', path, e)
    }
    return new CarBlockSource(path, roots, index, fh)
  }

  /** Blocks in the file. */
  get size(): number {
    return this.index.size
  }

  /** True when the file holds a block for `cid` (not checked until read). */
  has(cid: CID): boolean {
    return this.index.has(keyOf(cid))
  }

  /**
   * Reads the block's bytes from the file and checks them against `cid`. Throws `MISSING_BLOCK` when
   * the CAR does not hold it, `CORRUPT_BLOCK` when the bytes do not hash to it, `IO` on a read error.
   */
  async get(cid: CID): Promise<Uint8Array> {
    const range = this.index.get(keyOf(cid))
    if (range === undefined)
      throw new CairnError('MISSING_BLOCK', `Block ${cid} is not in CAR file ${this.path}`, { subject: cid.toString() })
    const bytes = Buffer.allocUnsafe(range.length)
    let filled = 0
    while (filled < range.length) {
      let n: number
      try {
        ;({ bytesRead: n } = await this.fh.read(bytes, filled, range.length - filled, range.offset + filled))
      } catch (e) {
        throw ioError('read', this.path, e)
      }
      if (n === 0)
        throw new CairnError('BAD_CAR', `CAR file ${this.path} ends inside block ${cid} (it changed after it was indexed)`, {
          subject: this.path,
        })
      filled += n
    }
    await checkBlock(cid, bytes)
    return bytes
  }

  /** Closes the file. */
  async close(): Promise<void> {
    await this.fh.close()
  }
}

/**
 * Tries each source in order and returns the first block found; a `MISSING_BLOCK` moves on to the
 * next source, any other error (a corrupt block) is thrown at once. Throws `MISSING_BLOCK` naming the
 * CID and every source's message when none has it.
 */
export class FallbackSource implements BlockSource {
  constructor(private readonly sources: readonly BlockSource[]) {}

  async get(cid: CID): Promise<Uint8Array> {
    const misses: string[] = []
    for (const s of this.sources) {
      try {
        return await s.get(cid)
      } catch (e) {
        if (!isCairnError(e, 'MISSING_BLOCK')) throw e
        misses.push(e.message)
      }
    }
    throw new CairnError(
      'MISSING_BLOCK',
      misses.length === 1 ? misses[0] : `Block ${cid} is in none of the sources (${misses.join('; ')})`,
      {
        subject: cid.toString(),
      },
    )
  }
}
