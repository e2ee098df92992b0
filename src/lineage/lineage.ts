/**
 * `lineage`: the graph of releases behind a release (its history through `parent`, the releases it
 * was made from through the card's `derivedFrom`), read from the dataset's store and the `--from`
 * sources. Outside a dataset, a CID and `--from` are enough.
 */
import { FallbackSource } from '../car/source.js'
import { tryParseCid } from '../cid.js'
import { openDataset } from '../dataset.js'
import { CairnError, isCairnError } from '../errors.js'
import { openSources, type SourceList, type SourceOptions } from '../sources/index.js'
import type { BlockSource } from '../store/blocks.js'
import { resolveRef } from '../version.js'
import { walkLineage, type LineageGraph, type LineageNode } from './graph.js'

/** Options of {@link lineage}. */
export interface LineageOptions {
  /** The dataset folder (default: found from the current folder; none is needed for a CID with `from`). */
  readonly dir?: string
  /** A CID, HEAD, HEAD~n or a tag (default HEAD). */
  readonly ref?: string
  /** Follow at most this many links from the release. */
  readonly depth?: number
  /** Where to look besides the store, in order: gateway URLs, CAR files, `dir:` folders, dataset folders. */
  readonly from?: readonly string[]
  /** Gateway timeouts. */
  readonly sourceOptions?: Omit<SourceOptions, 'onFailure'>
  /** Each release as it is read. */
  readonly onNode?: (node: LineageNode) => void
}

/**
 * The lineage graph of `ref`. A release that no source holds is an unreachable node, not an error.
 *
 * @throws {CairnError} `NOT_A_DATASET` for a ref that is not a CID outside a dataset, or a CID outside
 *   a dataset without `from`; `BAD_REF`; `USAGE` for a source that cannot be opened; `CORRUPT_BLOCK`.
 */
export async function lineage(options: LineageOptions = {}): Promise<LineageGraph> {
  const from = options.from ?? []
  const ref = options.ref ?? 'HEAD'
  const dataset = await openDataset(options.dir).catch((e: unknown) => {
    // a CID can be followed from the sources alone
    if (isCairnError(e, 'NOT_A_DATASET') && options.dir === undefined && tryParseCid(ref) && from.length > 0) return undefined
    throw e
  })
  let list: SourceList | undefined
  try {
    const root = dataset ? await resolveRef(dataset, ref) : tryParseCid(ref)
    if (root === undefined) throw new CairnError('BAD_REF', `${ref} is not a CID`, { subject: ref })
    if (from.length > 0) list = await openSources(from, options.sourceOptions)
    const chain: BlockSource[] = []
    if (dataset) chain.push(dataset.store)
    if (list) chain.push(list)
    return await walkLineage(new FallbackSource(chain), root, { depth: options.depth, onNode: options.onNode })
  } finally {
    await list?.close()
    await dataset?.store.close()
  }
}
