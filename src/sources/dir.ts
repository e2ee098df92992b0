/**
 * A `dir:` folder (docs/dir-target.md) as a block source: the `.idx` files of its CARs say where each
 * block's bytes lie; `get` reads just that range and checks it against the CID. Only the index is held
 * in memory (a key and three numbers per block), never block bytes.
 */
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { checkBlock } from '../car/block.js'
import { MAX_BLOCK_BYTES } from '../car/reader.js'
import { CID } from '../cid.js'
import { CairnError, ioError } from '../errors.js'
import type { Source } from './index.js'

interface Where {
  readonly car: string
  readonly offset: number
  readonly length: number
}

/** The multihash and codec as a map key: CIDv0 and CIDv1 of a dag-pb block share it. */
function keyOf(cid: CID): string {
  const mh = cid.multihash.bytes
  return `${cid.code}:${Buffer.from(mh.buffer, mh.byteOffset, mh.length).toString('latin1')}`
}

/** A `dir:` folder of CAR files, read through its block indexes. Open with {@link DirSource.open}. */
export class DirSource implements Source {
  private readonly handles = new Map<string, Promise<FileHandle>>()

  private constructor(
    /** The folder. */
    readonly path: string,
    private readonly index: ReadonlyMap<string, Where>,
  ) {}

  /** `dir:<path>`, as the user names it. */
  get name(): string {
    return `dir:${this.path}`
  }

  /** Blocks listed in the folder's indexes. */
  get size(): number {
    return this.index.size
  }

  /**
   * Reads `cairn-dir.json` and every `cars/*.idx`. Throws `USAGE` when the folder is not a `dir:`
   * target (no `cairn-dir.json`, or another format or version), `BAD_CAR` when an index line is
   * malformed, `IO` when the folder cannot be read.
   */
  static async open(path: string): Promise<DirSource> {
    const dir = resolve(path)
    const markerFile = join(dir, 'cairn-dir.json')
    let marker: unknown
    try {
      marker = JSON.parse(await readFile(markerFile, 'utf8'))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CairnError('USAGE', `${dir} is not a dir: target (no cairn-dir.json)`, {
          subject: dir,
          hint: 'make one with `cairn publish --to dir:<path>`',
        })
      }
      if (e instanceof SyntaxError) throw new CairnError('USAGE', `${markerFile} is not JSON`, { subject: markerFile })
      throw ioError('read', markerFile, e)
    }
    const m = marker as { format?: unknown; v?: unknown } | null
    if (m?.format !== 'cairn-dir' || m.v !== 1) {
      throw new CairnError('USAGE', `${markerFile} says ${JSON.stringify(marker)} (expected {"format": "cairn-dir", "v": 1})`, {
        subject: markerFile,
        hint: 'upgrade cairn',
      })
    }
    const carsDir = join(dir, 'cars')
    let names: string[]
    try {
      names = await readdir(carsDir)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') names = []
      else throw ioError('read folder', carsDir, e)
    }
    const index = new Map<string, Where>()
    for (const name of names.sort()) {
      if (!name.endsWith('.idx')) continue
      const car = name.slice(0, -4) + '.car'
      if (!names.includes(car)) continue // an index whose CAR is not (yet) there
      const idxFile = join(carsDir, name)
      let text: string
      try {
        text = await readFile(idxFile, 'utf8')
      } catch (e) {
        throw ioError('read', idxFile, e)
      }
      let line = 0
      for (const row of text.split('\n')) {
        line++
        if (row === '') continue
        const parts = row.split(' ')
        const offset = Number(parts[1])
        const length = Number(parts[2])
        let cid: CID
        try {
          // the block cap of the one CAR reader: an index cannot make a read allocate more
          if (
            parts.length !== 3 ||
            !Number.isSafeInteger(offset) ||
            !Number.isSafeInteger(length) ||
            offset < 0 ||
            length < 0 ||
            length > MAX_BLOCK_BYTES
          )
            throw new Error('bad line')
          cid = CID.parse(parts[0])
        } catch {
          throw new CairnError(
            'BAD_CAR',
            `${idxFile} line ${line} is not "<cid> <offset> <length>" (a length of at most ${MAX_BLOCK_BYTES}): ${JSON.stringify(row.slice(0, 120))}`,
            { subject: idxFile },
          )
        }
        const key = keyOf(cid)
        if (!index.has(key)) index.set(key, { car, offset, length })
      }
    }
    return new DirSource(dir, index)
  }

  /** True when an index lists `cid` (its bytes are checked only when read). */
  has(cid: CID): boolean {
    return this.index.has(keyOf(cid))
  }

  /**
   * Reads the block from its CAR and checks it against `cid`. Throws `MISSING_BLOCK` when no index
   * lists it, `CORRUPT_BLOCK` when the bytes do not hash to it (or the CAR is shorter than its index
   * says), `IO` when the CAR cannot be read.
   */
  async get(cid: CID): Promise<Uint8Array> {
    if (cid.multihash.code === 0x00) return cid.multihash.digest
    const where = this.index.get(keyOf(cid))
    if (where === undefined) throw new CairnError('MISSING_BLOCK', `Block ${cid} is not in ${this.name}`, { subject: cid.toString() })
    const file = join(this.path, 'cars', where.car)
    let handle = this.handles.get(where.car)
    if (handle === undefined) {
      handle = open(file, 'r')
      this.handles.set(where.car, handle)
      handle.catch(() => this.handles.delete(where.car))
    }
    const bytes = Buffer.allocUnsafe(where.length)
    let filled = 0
    try {
      const fh = await handle
      while (filled < where.length) {
        const { bytesRead } = await fh.read(bytes, filled, where.length - filled, where.offset + filled)
        if (bytesRead === 0) break
        filled += bytesRead
      }
    } catch (e) {
      throw ioError('read', file, e)
    }
    if (filled < where.length) {
      throw new CairnError(
        'CORRUPT_BLOCK',
        `Block ${cid}: ${file} ends before the ${where.length} bytes its index lists at offset ${where.offset}`,
        {
          subject: cid.toString(),
        },
      )
    }
    try {
      await checkBlock(cid, bytes)
    } catch (e) {
      throw new CairnError('CORRUPT_BLOCK', `${this.name} holds wrong bytes for block ${cid} (in ${where.car}): ${(e as Error).message}`, {
        subject: cid.toString(),
        cause: e,
      })
    }
    return bytes
  }

  /** Closes the CAR files opened so far. */
  async close(): Promise<void> {
    const handles = [...this.handles.values()]
    this.handles.clear()
    await Promise.all(handles.map(async (h) => (await h.catch(() => undefined))?.close()))
  }
}
