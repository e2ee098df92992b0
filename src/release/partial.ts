/** Which part of a version a partial clone holds, for `verify`. */
import { join, resolve } from 'node:path'
import type { CID } from '../cid.js'
import { STORE_DIR, type Dataset } from '../dataset.js'
import { readCloneRecord, selectedBy, type Selection } from './clone-record.js'

/** The part of a version a partial clone holds. */
export interface PartialClone {
  readonly selections: readonly Selection[]
  /** Whether a shard path is in the part. */
  readonly held: (path: string) => boolean
}

/**
 * The part `dir` holds when it is the folder of `dataset`, a partial clone of `version`; undefined for
 * any other case (a whole clone, another version, another folder, a dataset built here).
 */
export async function partOfClone(dataset: Dataset, version: CID, dir: string): Promise<PartialClone | undefined> {
  if (resolve(dir) !== dataset.root) return undefined
  const record = await readCloneRecord(join(dataset.root, STORE_DIR))
  if (!record || !record.cid.equals(version)) return undefined
  const held = selectedBy(record.selections)
  return held ? { selections: record.selections, held } : undefined
}
