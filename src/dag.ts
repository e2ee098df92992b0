/**
 * Walking a release out of a block source in CAR order: depth-first, pre-order, children in the order
 * their parent's codec lists them, every block once. The same DAG always walks in the same order.
 * What belongs to the release (and how much history) is {@link releaseLinks}'s to say.
 */
import { cidText, type CID } from './cid.js'
import { CairnError, isCairnError } from './errors.js'
import { releaseLinks, type History } from './release/links.js'
import type { BlockSource } from './store/blocks.js'
import type { Block } from './unixfs/file.js'
import { quiet } from './util/pool.js'
import { SeenSet, type SeenSetOptions } from './walk/seen-set.js'

/**
 * Yields every block of the release `root` (with `history` ancestors' releases: 0, the default, none;
 * `Infinity` every one, which is the whole DAG), each verified by the source. Identity-hash CIDs carry
 * their bytes inline and are not yielded. Throws `MISSING_BLOCK` for the first block the source lacks.
 * Memory holds the path being walked, its siblings still to visit and a bounded {@link SeenSet} (its
 * limits, `seen`, change how fast the walk is, never what it yields).
 */
export async function* walkDag(source: BlockSource, root: CID, history: History = 0, seenLimits?: SeenSetOptions): AsyncGenerator<Block> {
  const seen = new SeenSet(seenLimits)
  try {
    yield* walk(source, root, history, seen)
  } finally {
    seen.close()
  }
}

async function* walk(source: BlockSource, root: CID, history: History, seen: SeenSet): AsyncGenerator<Block> {
  const stack: CID[] = [root]
  const depths: History[] = [history]
  // the version each block on the stack belongs to, to name it when an ancestor's block is missing
  const owners: CID[] = [root]
  // the next blocks of the walk are read (and verified) ahead, so reading and hashing overlap
  const ahead = new Map<string, Promise<Uint8Array>>()
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    const depth = depths.pop() as History
    const owner = owners.pop() as CID
    if (cid.multihash.code === 0x00) continue // identity: the bytes are in the CID, nothing to walk or read
    const key = keyOf(cid)
    // a block read ahead leaves the map when its turn comes, even when it was reached by another way first
    const pending = ahead.get(key)
    ahead.delete(key)
    if (!seen.add(cid)) continue
    let bytes: Uint8Array
    try {
      bytes = await (pending ?? source.get(cid))
    } catch (e) {
      if (owner === root || !isCairnError(e, 'MISSING_BLOCK')) throw e
      throw new CairnError('MISSING_BLOCK', `Block ${cid} of version ${owner}, an ancestor of ${root}, is missing: ${e.message}`, {
        subject: cid.toString(),
        hint: 'the history is not all here: fetch it (`--from` a source that has it) or leave --history out',
        cause: e,
      })
    }
    const links = releaseLinks(cid, bytes, depth)
    for (let i = links.length - 1; i >= 0; i--) {
      const link = links[i]
      // whether it was seen is asked when it is read ahead or popped: once here too would double the lookups
      if (link.cid.multihash.code !== 0x00) {
        stack.push(link.cid)
        depths.push(link.history)
        owners.push(link.parent ? link.cid : owner)
      }
    }
    for (let i = stack.length - 1; i >= 0 && i >= stack.length - READ_AHEAD; i--) {
      const next = stack[i]
      const k = keyOf(next)
      if (!ahead.has(k) && !seen.has(next)) ahead.set(k, quiet(source.get(next)))
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
