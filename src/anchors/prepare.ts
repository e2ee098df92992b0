/**
 * From a version to the arguments of its anchor: the version's digest, its parent's, the dataset's
 * and its place in its history (walked in the store).
 */
import { CID } from '../cid.js'
import type { Dataset } from '../dataset.js'
import { readVersion, resolveRef } from '../version.js'
import { datasetDigest, versionDigest, ZERO_DIGEST } from './digest.js'
import type { AnchorArgs } from './receipts.js'

/** A version ready to anchor. */
export interface PreparedAnchor {
  readonly version: CID
  readonly parentVersion: CID | null
  readonly datasetName: string
  readonly args: AnchorArgs
}

/**
 * The anchor of the version `ref` of `dataset`, under `datasetName` (default: the version's own name).
 * `sequence` is 1 for a first version and the parent's + 1, so every version's parents must be in the
 * store. Throws `BAD_REF`, `MISSING_BLOCK`, `INVALID_MANIFEST`.
 */
export async function prepareAnchor(dataset: Dataset, ref: string | undefined, datasetName?: string): Promise<PreparedAnchor> {
  const version = await resolveRef(dataset, ref)
  const manifest = await readVersion(dataset.store, version)
  let sequence = 1
  for (let at = manifest.parent; at !== null; sequence++) at = (await readVersion(dataset.store, at)).parent
  const name = datasetName ?? manifest.name
  return {
    version,
    parentVersion: manifest.parent,
    datasetName: name,
    args: {
      dataset: datasetDigest(name),
      version: versionDigest(version),
      parent: manifest.parent ? versionDigest(manifest.parent) : ZERO_DIGEST,
      sequence,
    },
  }
}
