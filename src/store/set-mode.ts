/**
 * `cairn store mode`: shows or changes how builds store the files' blocks (docs/store.md, "Store
 * modes"), and whether this store's file system can clone files.
 */
import { withDataset } from '../dataset.js'
import { withLock } from './lock.js'
import { assertStoreMode, readStoreMode, writeStoreMode, type StoreMode } from './mode.js'
import { probeReflink } from './reflink-pack.js'

export interface StoreModeOptions {
  readonly dir?: string
  /** The mode to set; none to only report the mode. */
  readonly set?: StoreMode
}

export interface StoreModeResult {
  /** The mode now in force. */
  readonly mode: StoreMode
  /** The mode before, when it was changed. */
  readonly previous?: StoreMode
  /** Whether the store's file system can clone files (what `reflink` needs), and if not why. */
  readonly reflinks: { readonly supported: boolean; readonly reason?: string }
}

/**
 * Reports the store's mode, or sets it (under the dataset's lock: refused while a build runs). A change
 * applies to later builds; blocks already stored stay where they are and stay readable. Throws
 * `NOT_A_DATASET`, `USAGE` (an unknown mode), `LOCKED`, `IO`.
 */
export async function storeMode(options: StoreModeOptions = {}): Promise<StoreModeResult> {
  if (options.set !== undefined) assertStoreMode(options.set)
  return withDataset(options.dir, async (dataset) => {
    const storeDir = dataset.store.root
    const reason = await probeReflink(storeDir)
    const reflinks = reason === undefined ? { supported: true } : { supported: false, reason }
    if (options.set === undefined) return { mode: await readStoreMode(storeDir), reflinks }
    const set = options.set
    return withLock(dataset.root, async () => {
      const previous = await readStoreMode(storeDir)
      if (previous !== set) await writeStoreMode(storeDir, set)
      return { mode: set, ...(previous !== set ? { previous } : {}), reflinks }
    })
  })
}
