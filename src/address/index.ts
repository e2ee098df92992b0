/**
 * What `cat` and `clone` are given: a content address. A CID with an optional path (`bafy…/train/x`,
 * `/ipfs/bafy…/x`, `ipfs://bafy…/x`), or, where a dataset is at hand, one of its refs with a path as
 * git writes it (`v2:train/part-000.parquet`, `HEAD~1:README.md`, a bare `v2`). The dataset at hand is
 * also where blocks are read first: its store is a source that needs no network.
 */
import { tryParseCid, type CID } from '../cid.js'
import { openDataset } from '../dataset.js'
import { CairnError, isCairnError } from '../errors.js'
import { DEFAULT_GATEWAYS } from '../sources/gateway.js'
import { resolveRef } from '../version.js'

/** Where to look for the dataset at hand. */
export interface AtHandOptions {
  /** A dataset folder (or a folder inside one) named by the user (`-C`): it must be a dataset. */
  readonly dir?: string
  /** Without `dir`: look upward from the current folder, and go on without a dataset when there is none. */
  readonly findDataset?: boolean
}

/** A resolved address. */
export interface Address {
  /** The root: the CID given, or the version a ref names. */
  readonly root: CID
  /** The path under the root ('' for none), without leading or trailing `/`. */
  readonly path: string
  /** The ref as given, when the address named one (`v2` of `v2:x`). */
  readonly ref?: string
  /** The root folder of the dataset at hand, if any: its store is read before any other source. */
  readonly dataset?: string
}

/**
 * Resolves `text` to a root CID and a path. A ref needs a dataset at hand (`NOT_A_DATASET` otherwise,
 * `BAD_REF` when it names nothing there); a CID does not.
 *
 * @throws {CairnError} `USAGE` for text that is neither, `NOT_A_DATASET`, `BAD_REF`.
 */
export async function resolveAddress(text: string, options: AtHandOptions = {}): Promise<Address> {
  const dataset = await datasetAtHand(options)
  const stripped = text.replace(/^ipfs:\/\//, '').replace(/^\/ipfs\//, '')
  const { head, path } = split(stripped)
  const cid = tryParseCid(head)
  if (cid !== undefined) return { root: cid, path, dataset }
  if (/^\/|^ipfs:/.test(text) || head === '')
    throw new CairnError('USAGE', `${JSON.stringify(text)}: expected <cid>[/<path>] or <ref>:<path>`, { subject: text })
  if (dataset === undefined && !options.findDataset)
    throw new CairnError('USAGE', `${JSON.stringify(head)} is not a CID (expected <cid> or <cid>/<path>)`, { subject: text })
  if (dataset === undefined)
    throw new CairnError('NOT_A_DATASET', `${JSON.stringify(head)} is not a CID, and no dataset is at hand to resolve it as a ref`, {
      subject: text,
      hint: 'give a CID, or run this inside a dataset (or with -C <dataset>) to use HEAD, HEAD~n or a tag',
    })
  const at = await openDataset(dataset)
  try {
    return { root: await resolveRef(at, head), path, ref: head, dataset }
  } finally {
    await at.store.close()
  }
}

/**
 * The sources to read from, in order: the dataset's store first when one is at hand, then `from` as
 * given; without `from`, the public gateways (only reached for blocks the store lacks).
 */
export function sourcesFor(address: Pick<Address, 'dataset'>, from: readonly string[] | undefined): string[] {
  return [...(address.dataset === undefined ? [] : [address.dataset]), ...(from ?? DEFAULT_GATEWAYS)]
}

/** `ref:path` (git's form, when the colon comes before any `/`) or `cid/path`. */
function split(text: string): { head: string; path: string } {
  const colon = text.indexOf(':')
  const slash = text.indexOf('/')
  const at = colon >= 0 && (slash < 0 || colon < slash) ? colon : slash
  if (at < 0) return { head: text, path: '' }
  return { head: text.slice(0, at), path: text.slice(at + 1).replace(/^\/+|\/+$/g, '') }
}

/** The root of the dataset at hand, or undefined when none is to be found (and none was named). */
async function datasetAtHand(options: AtHandOptions): Promise<string | undefined> {
  if (options.dir === undefined && !options.findDataset) return undefined
  try {
    const dataset = await openDataset(options.dir ?? '.')
    await dataset.store.close()
    return dataset.root
  } catch (e) {
    if (options.dir === undefined && isCairnError(e, 'NOT_A_DATASET')) return undefined
    throw e
  }
}
