/** Fetching a clone's history: the releases of its ancestors, every block verified, into the store. */
import { FallbackSource } from '../car/source.js'
import type { CID } from '../cid.js'
import { walkDag } from '../dag.js'
import type { BlockSource, BlockStoreLike } from '../store/blocks.js'
import type { History } from './links.js'

/**
 * Puts into `store` every block of the releases of `parent` and its ancestors up to `history`
 * versions back (1: the parent alone), reading what the store lacks from `source`. Returns the blocks
 * added. Throws `MISSING_BLOCK` naming the ancestor whose block no source has, or the source's `FETCH_FAILED`.
 */
export async function fetchHistory(store: BlockStoreLike, source: BlockSource, parent: CID | null, history: History): Promise<number> {
  if (history <= 0 || parent === null) return 0
  let added = 0
  for await (const block of walkDag(new FallbackSource([store, source]), parent, history - 1)) {
    if (await store.has(block.cid)) continue
    await store.put(block.cid, block.bytes)
    added++
  }
  return added
}
