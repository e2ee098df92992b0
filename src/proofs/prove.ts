/** `prove`: writes the small CAR that proves one file belongs to a release. */
import { CarWriter } from '@ipld/car/writer'
import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { CID } from '../cid.js'
import { openDataset } from '../dataset.js'
import { isCairnError, ioError } from '../errors.js'
import type { FormatName } from '../formats/interface.js'
import { FallbackSource } from '../car/source.js'
import { openSources } from '../sources/index.js'
import type { BlockSource } from '../store/blocks.js'
import { resolveRef } from '../version.js'
import { walkProof } from './blocks.js'

/** Options of {@link prove}. */
export interface ProveOptions {
  /** The dataset folder (default: the current one); optional when `ref` is a CID and `from` is given. */
  readonly dir?: string
  /** A version CID, HEAD, HEAD~n or a tag. */
  readonly ref: string
  /** The file's path in the release (`/`-separated). */
  readonly path: string
  /** Where the proof CAR goes (written to a temporary file, then renamed). */
  readonly output: string
  /** Sources for blocks the store lacks (gateways, CARs, dir: folders), as `clone --from`. */
  readonly from?: readonly string[]
}

/** What {@link prove} wrote. */
export interface ProveResult {
  readonly version: CID
  readonly path: string
  readonly cid: CID
  readonly size: number
  readonly format: FormatName
  readonly rows?: number
  /** Blocks in the proof. */
  readonly blocks: number
  /** The proof's size in bytes. */
  readonly bytes: number
  readonly output: string
}

/**
 * Writes the proof of `path` in `ref` to `output`: a CARv1 whose root is the version (see
 * `src/proofs/blocks.ts` for which blocks). Fails as `walkProof` does, with `BAD_REF`,
 * `NOT_A_DATASET` (no dataset and no `from`), or `IO`; on failure nothing is left at `output`.
 */
export async function prove(options: ProveOptions): Promise<ProveResult> {
  let dataset
  try {
    dataset = await openDataset(options.dir)
  } catch (e) {
    if (!(isCairnError(e, 'NOT_A_DATASET') && (options.from?.length ?? 0) > 0)) throw e
  }
  const remote = (options.from?.length ?? 0) > 0 ? await openSources(options.from ?? []) : undefined
  try {
    const sources: BlockSource[] = [...(dataset ? [dataset.store] : []), ...(remote ? [remote] : [])]
    const source = sources.length === 1 ? sources[0] : new FallbackSource(sources)
    const version = dataset ? await resolveRef(dataset, options.ref) : (await import('../cid.js')).cidFromText(options.ref)
    const proof = await walkProof(source, version, options.path.replace(/^\/+|\/+$/g, ''))
    const { writer, out } = CarWriter.create([version])
    const tmp = `${options.output}.${process.pid}.tmp`
    let bytes = 0
    const counted = Readable.from(
      (async function* () {
        for await (const chunk of out) {
          bytes += chunk.length
          yield chunk
        }
      })(),
    )
    const feed = (async () => {
      try {
        for (const cid of proof.blocks) await writer.put({ cid, bytes: await source.get(cid) })
      } finally {
        await writer.close()
      }
    })()
    try {
      await Promise.all([feed, pipeline(counted, createWriteStream(tmp))])
      await rename(tmp, options.output)
    } catch (e) {
      await rm(tmp, { force: true })
      if (isCairnError(e)) throw e
      throw ioError('write', options.output, e)
    }
    const e = proof.entry
    return {
      version,
      path: proof.path,
      cid: proof.cid,
      size: e.size,
      format: e.format,
      rows: e.rows,
      blocks: proof.blocks.length,
      bytes,
      output: options.output,
    }
  } finally {
    await remote?.close()
    await dataset?.store.close()
  }
}
