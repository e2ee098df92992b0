/**
 * `pack`: one CARv1 holding a version's whole DAG (version, card, index nodes, schema blocks, tree,
 * file blocks), the version CID as its single root, depth-first, without duplicates. The same version
 * always gives the same bytes.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { rename, unlink } from 'node:fs/promises'
import { Readable, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CarWriter } from '@ipld/car/writer'
import type { CID } from './cid.js'
import { withDataset } from './dataset.js'
import { ioError, isCairnError } from './errors.js'
import { walkDag } from './dag.js'
import type { BlockSource } from './store/blocks.js'
import { readVersion, resolveRef } from './version.js'

export interface PackOptions {
  /** The dataset folder or a folder inside it (default: the current folder). */
  readonly dir?: string
  /** The version to pack (default `HEAD`). */
  readonly ref?: string
  /** A file path (written to a temporary name, renamed when complete) or a writable stream. */
  readonly output: string | Writable
  readonly onProgress?: (progress: PackProgress) => void
}

export interface PackProgress {
  readonly blocks: number
  readonly bytes: number
  /** The version's content bytes: an estimate of the total. */
  readonly totalBytes: number
}

export interface PackResult {
  readonly root: CID
  readonly blocks: number
  /** Bytes of block data written (without CAR framing). */
  readonly bytes: number
  /** The output file, when the output was a path. */
  readonly file?: string
}

/**
 * Packs the version `ref` of the dataset into a CAR. Throws `BAD_REF`, `MISSING_BLOCK` (the store
 * lacks a block of the DAG: nothing is left at the output path), `CORRUPT_BLOCK` or `IO`.
 */
export async function pack(options: PackOptions): Promise<PackResult> {
  return withDataset(options.dir, async (dataset) => {
    const root = await resolveRef(dataset, options.ref)
    const version = await readVersion(dataset.store, root)
    const totalBytes = version.totals.bytes
    if (typeof options.output !== 'string') {
      return { root, ...(await writeCar(dataset.store, root, options.output, (p) => options.onProgress?.({ ...p, totalBytes }))) }
    }
    const file = options.output
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
    try {
      const counts = await writeCar(dataset.store, root, createWriteStream(tmp), (p) => options.onProgress?.({ ...p, totalBytes }))
      await rename(tmp, file)
      return { root, ...counts, file }
    } catch (e) {
      await unlink(tmp).catch(() => {})
      // a CairnError has a `code` too (MISSING_BLOCK, CORRUPT_BLOCK): only file-system errors become IO
      if (!isCairnError(e) && (e as NodeJS.ErrnoException).code) throw ioError('write', file, e)
      throw e
    }
  })
}

/** Streams the DAG under `root` from `source` into `out` as a CARv1 with `root` as its only root. */
export async function writeCar(
  source: BlockSource,
  root: CID,
  out: Writable,
  onProgress?: (p: { blocks: number; bytes: number }) => void,
): Promise<{ blocks: number; bytes: number }> {
  const { writer, out: car } = CarWriter.create([root])
  let blocks = 0
  let bytes = 0
  const feed = (async () => {
    try {
      for await (const block of walkDag(source, root)) {
        await writer.put(block)
        blocks++
        bytes += block.bytes.length
        if (onProgress && blocks % 64 === 0) onProgress({ blocks, bytes })
      }
    } finally {
      await writer.close()
    }
  })()
  await Promise.all([feed, pipeline(Readable.from(car), out)])
  onProgress?.({ blocks, bytes })
  return { blocks, bytes }
}
