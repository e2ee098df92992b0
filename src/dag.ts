/**
 * Walking a DAG out of a block source in CAR order: depth-first, pre-order, children in the order
 * their parent's codec lists them, every block once. The same DAG always walks in the same order.
 */
import { blockLinks } from './car/block.js'
import { cidText, type CID } from './cid.js'
import type { BlockSource } from './store/blocks.js'
import type { Block } from './unixfs/file.js'
import { quiet } from './util/pool.js'

/**
 * Yields every block reachable from `root`, each verified by the source. Identity-hash CIDs carry
 * their bytes inline and are not yielded. Throws `MISSING_BLOCK` for the first block the source lacks.
 */
export async function* walkDag(source: BlockSource, root: CID): AsyncGenerator<Block> {
  const seen = new Set<string>()
  const stack: CID[] = [root]
  // the next blocks of the walk are read (and verified) ahead, so reading and hashing overlap
  const ahead = new Map<string, Promise<Uint8Array>>()
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    if (cid.multihash.code === 0x00) continue // identity: the bytes are in the CID, nothing to walk or read
    const key = keyOf(cid)
    if (seen.has(key)) continue
    seen.add(key)
    const pending = ahead.get(key)
    ahead.delete(key)
    const bytes = await (pending ?? source.get(cid))
    const links = blockLinks(cid, bytes)
    for (let i = links.length - 1; i >= 0; i--) {
      if (links[i].multihash.code !== 0x00 && !seen.has(keyOf(links[i]))) stack.push(links[i])
    }
    for (let i = stack.length - 1; i >= 0 && i >= stack.length - READ_AHEAD; i--) {
      const next = stack[i]
      const k = keyOf(next)
      if (!seen.has(k) && !ahead.has(k)) ahead.set(k, quiet(source.get(next)))
    }
    yield { cid, bytes }
  }
}

/** Blocks read ahead of the one being yielded. */
const READ_AHEAD = 4

/** A CID's text, fast: a CIDv0 keeps its own (it is another CID than its CIDv1, in a CAR as anywhere). */
function keyOf(cid: CID): string {
  return cid.version === 0 ? cid.toString() : cidText(cid)
}
