/** `anchors`: the anchor receipts recorded in the store. */
import { withDataset } from '../dataset.js'
import { resolveRef } from '../version.js'
import { readReceipts, type AnchorReceipt } from './receipts.js'

/** What {@link anchors} is told. */
export interface AnchorsOptions {
  readonly dir?: string
  /** Only this version's anchors (default: every version's). */
  readonly ref?: string
}

/**
 * The anchor receipts recorded for the version `ref`, or for every version, oldest block time first.
 * They say what `cairn anchor` saw; `cairn verify --anchored` checks them against the chain. Throws
 * `BAD_REF`, `INVALID_MANIFEST` for a receipt file that is not valid (naming it), `IO`.
 */
export async function anchors(options: AnchorsOptions = {}): Promise<AnchorReceipt[]> {
  return withDataset(options.dir, async (dataset) =>
    readReceipts(dataset.root, options.ref === undefined ? undefined : await resolveRef(dataset, options.ref)),
  )
}
