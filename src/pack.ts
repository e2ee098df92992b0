/**
 * `pack`: one CARv1 holding a release (the version, card, index nodes, schema blocks, tree, file
 * blocks; not its parent unless history is asked for, see src/release/links.ts), the version CID as
 * its single root, depth-first, without duplicates. The same version always gives the same bytes.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { rename, unlink } from 'node:fs/promises'
import type { Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { carHeader, sectionPrefix } from './car/write.js'
import { RAW, type CID } from './cid.js'
import { ioError, isCairnError } from './errors.js'
import { walkDag } from './dag.js'
import type { History } from './release/links.js'
import { withDatasetSource } from './release/source.js'
import type { BlockSource } from './store/blocks.js'
import { hashPool } from './util/hash-pool.js'
import { readVersion, resolveRef } from './version.js'

export interface PackOptions {
  /** The dataset folder or a folder inside it (default: the current folder). */
  readonly dir?: string
  /** The version to pack (default `HEAD`). */
  readonly ref?: string
  /** A file path (written to a temporary name, renamed when complete) or a writable stream. */
  readonly output: string | Writable
  /** Ancestors whose releases the CAR also holds: 0 (default) none, `Infinity` all (the whole DAG). */
  readonly history?: History
  /** Sources for blocks the dataset lacks (a clone's history); default: those the clone recorded. */
  readonly from?: readonly string[]
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
  /** The release's UnixFS tree: `ipfs-car unpack <car> --root <tree>` gives the files. */
  readonly tree: CID
  readonly blocks: number
  /** Bytes of block data written (without CAR framing). */
  readonly bytes: number
  /** The output file, when the output was a path. */
  readonly file?: string
}

/**
 * Packs the version `ref` of the dataset into a CAR: its release, and with `history` its ancestors'.
 * In a clone, blocks the store lacks are read from the files the clone wrote (verified) and, for
 * history, from the recorded sources. Throws `BAD_REF`, `MISSING_BLOCK` (a block of the release is
 * nowhere: nothing is left at the output path; for an ancestor's block, naming the version),
 * `CORRUPT_BLOCK`, `FETCH_FAILED` or `IO`.
 */
export async function pack(options: PackOptions): Promise<PackResult> {
  const history = options.history ?? 0
  return withDatasetSource(options.dir, { from: options.from, recorded: history > 0 }, async ({ dataset, source }) => {
    const root = await resolveRef(dataset, options.ref, source)
    const version = await readVersion(source, root)
    const tree = version.tree
    const totalBytes = version.totals.bytes
    if (typeof options.output !== 'string') {
      return {
        root,
        tree,
        ...(await writeCar(source, root, options.output, (p) => options.onProgress?.({ ...p, totalBytes }), { history })),
      }
    }
    const file = options.output
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
    try {
      const counts = await writeCar(source, root, createWriteStream(tmp), (p) => options.onProgress?.({ ...p, totalBytes }), {
        reuseBuffers: true,
        history,
      })
      await rename(tmp, file)
      return { root, tree, ...counts, file }
    } catch (e) {
      await unlink(tmp).catch(() => {})
      // a CairnError has a `code` too (MISSING_BLOCK, CORRUPT_BLOCK): only file-system errors become IO
      if (!isCairnError(e) && (e as NodeJS.ErrnoException).code) throw ioError('write', file, e)
      throw e
    }
  })
}

/** Sections smaller than this are copied together into writes of about this size. */
const COALESCE = 64 * 1024

/**
 * Streams the DAG under `root` from `source` into `out` as a CARv1 with `root` as its only root, and
 * ends `out`. Waits for `out` to drain (backpressure); on failure `out` is destroyed with the error.
 * `reuseBuffers`: `out` is done with a chunk when its write callback runs (a file stream, not a
 * PassThrough), so the buffers of raw blocks read on hashing threads can be reused.
 */
export async function writeCar(
  source: BlockSource,
  root: CID,
  out: Writable,
  onProgress?: (p: { blocks: number; bytes: number }) => void,
  options: { readonly reuseBuffers?: boolean; readonly history?: History } = {},
): Promise<{ blocks: number; bytes: number }> {
  let blocks = 0
  let bytes = 0
  const pool = hashPool()
  // an error of `out` while nothing waits on it must not go unhandled: it is rethrown at the next wait
  let failed: { error: unknown } | undefined
  const onError = (error: unknown): void => {
    failed ??= { error }
  }
  out.on('error', onError)
  // small sections are gathered into one write of up to COALESCE bytes: a stream write per 4 KiB block
  // costs more than the copy
  let small: Uint8Array[] = [carHeader([root])]
  let smallBytes = small[0].length
  const flush = (): boolean => {
    const ok = out.write(small.length === 1 ? small[0] : Buffer.concat(small, smallBytes))
    small = []
    smallBytes = 0
    return ok
  }
  try {
    for await (const block of walkDag(source, root, options.history ?? 0)) {
      if (failed) throw failed.error
      if (out.destroyed) throw closedEarly()
      const prefix = sectionPrefix(block.cid, block.bytes.length)
      if (block.bytes.length < COALESCE) {
        small.push(prefix, block.bytes)
        smallBytes += prefix.length + block.bytes.length
        if (smallBytes >= COALESCE && !flush()) await drained(out)
      } else {
        if (smallBytes > 0) flush()
        out.write(prefix)
        const done = options.reuseBuffers && block.cid.code === RAW ? () => pool.release(block.bytes) : undefined
        if (!out.write(block.bytes, done)) await drained(out)
      }
      blocks++
      bytes += block.bytes.length
      if (onProgress && blocks % 64 === 0) onProgress({ blocks, bytes })
    }
    if (smallBytes > 0) flush()
    out.end()
    await finished(out)
  } catch (e) {
    // the listener stays: destroying with the error emits it once more, later
    out.destroy(e instanceof Error ? e : new Error(String(e)))
    throw failed?.error ?? e
  }
  out.off('error', onError)
  onProgress?.({ blocks, bytes })
  return { blocks, bytes }
}

/** Waits until `out` takes more; rejects when it is closed or destroyed first (it would never drain). */
function drained(out: Writable): Promise<void> {
  if (out.destroyed) return Promise.reject(closedEarly())
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      out.off('close', onClose)
      resolve()
    }
    const onClose = (): void => {
      out.off('drain', onDrain)
      reject(closedEarly())
    }
    out.once('drain', onDrain)
    out.once('close', onClose)
  })
}

function closedEarly(): Error {
  return Object.assign(new Error('the CAR output was closed before the CAR was complete'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })
}
