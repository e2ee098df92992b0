/**
 * Planning a publish to a target that keeps what it is sent (a Kubo node): which blocks of the
 * release it lacks, and what to pin so that the release is kept without its parent. A target learns
 * what it holds from the dataset's receipts (the releases earlier publishes put there whole: their
 * subtrees are skipped unread) and then from the target itself (one question per block left).
 */
import type { Writable } from 'node:stream'
import { carHeader, sectionPrefix } from '../car/write.js'
import type { CID } from '../cid.js'
import type { BlockSource } from '../store/blocks.js'
import { mapLimit } from '../util/pool.js'
import { blockLinks } from '../car/block.js'
import { linksInRelease, releaseLinks, type History } from './links.js'

/** What a target must be sent and pinned. */
export interface SendPlan {
  /** Blocks the target lacks, in depth-first order of the release. */
  readonly missing: readonly CID[]
  /** Their bytes. */
  readonly missingBytes: number
  /** Blocks of the release (and asked-for history) in all. */
  readonly blocks: number
  /** Blocks taken as held because an earlier publish's release holds them (their subtrees not read). */
  readonly known: number
  /** Blocks the target was asked about, and of those the ones it had. */
  readonly asked: number
  readonly had: number
  /**
   * Pins that keep the release whole without its parent: each version's own links (card, index, tree)
   * recursively, and the version block itself directly (a recursive pin of a version would walk into
   * its parent, which the target may lack). A card that links to other content (`derivedFrom`, weights
   * by CID) is pinned directly too: its links are references, not parts (src/release/links.ts).
   */
  readonly pins: { readonly recursive: readonly CID[]; readonly direct: readonly CID[] }
}

/** Options of {@link planSend}. */
export interface PlanOptions {
  readonly history?: History
  /** Versions the target holds whole (newest first); the newest readable one's blocks are skipped. */
  readonly held?: readonly CID[]
  /** Asks the target which of `cids` it has; undefined: every block not known from `held` is sent. */
  readonly has?: (cids: readonly CID[]) => Promise<boolean[]>
  /** At most this many blocks are asked about (default 65,536); the rest are sent. */
  readonly askLimit?: number
  readonly signal?: AbortSignal
}

/** CIDs kept from a held release at most: past this, the rest is asked about or sent. */
const MAX_KNOWN = 1 << 20
const ASK_BATCH = 8

/**
 * Walks the release `root` (with `history`) from `source` and finds what the target lacks. Throws the
 * source's `MISSING_BLOCK` / `CORRUPT_BLOCK`, and whatever `has` throws.
 */
export async function planSend(source: BlockSource, root: CID, options: PlanOptions = {}): Promise<SendPlan> {
  const known = await heldBlocks(source, options.held ?? [])
  const seen = new Set<string>()
  const unknown: { cid: CID; size: number }[] = []
  const recursive: CID[] = []
  const direct: CID[] = []
  let knownCount = 0
  // `pin`: a version's own link (card, index, tree), pinned on its own
  const stack: { cid: CID; history: History; version: boolean; pin: boolean }[] = [
    { cid: root, history: options.history ?? 0, version: true, pin: false },
  ]
  while (stack.length > 0) {
    options.signal?.throwIfAborted()
    const { cid, history, version, pin } = stack.pop() as (typeof stack)[number]
    const key = cid.toString()
    if (seen.has(key) || cid.multihash.code === 0x00) continue
    seen.add(key)
    if (known.has(key)) {
      knownCount++
      if (version) direct.push(cid)
      // a pin root is one small block: read to tell a card with references from the rest
      if (pin) (cid.code !== 0x55 && hasReferences(cid, await source.get(cid)) ? direct : recursive).push(cid)
      continue
    }
    const bytes = await source.get(cid)
    unknown.push({ cid, size: bytes.length })
    const links = releaseLinks(cid, bytes, history)
    if (version) direct.push(cid)
    if (pin) (hasReferences(cid, bytes) ? direct : recursive).push(cid)
    for (let i = links.length - 1; i >= 0; i--) {
      const l = links[i]
      if (!seen.has(l.cid.toString())) stack.push({ cid: l.cid, history: l.history, version: l.parent, pin: version && !l.parent })
    }
  }
  let asked = 0
  let had = 0
  let held: boolean[] = unknown.map(() => false)
  if (options.has) {
    const limit = Math.min(unknown.length, options.askLimit ?? 65_536)
    const batches: number[] = []
    for (let i = 0; i < limit; i += ASK_BATCH) batches.push(i)
    held = []
    const answers = await mapLimit(batches, 4, async (start) => {
      options.signal?.throwIfAborted()
      const batch = unknown.slice(start, Math.min(limit, start + ASK_BATCH)).map((u) => u.cid)
      return (options.has as NonNullable<PlanOptions['has']>)(batch)
    })
    for (const a of answers) held.push(...a)
    asked = limit
    had = held.filter(Boolean).length
    while (held.length < unknown.length) held.push(false)
  }
  const missing: CID[] = []
  let missingBytes = 0
  unknown.forEach((u, i) => {
    if (held[i]) return
    missing.push(u.cid)
    missingBytes += u.size
  })
  return { missing, missingBytes, blocks: seen.size, known: knownCount, asked, had, pins: { recursive, direct } }
}

/** True for a block with links that are not parts of its release (a card's): a recursive pin would follow them. */
function hasReferences(cid: CID, bytes: Uint8Array): boolean {
  return cid.code !== 0x55 && linksInRelease(cid, bytes).length < blockLinks(cid, bytes).length
}

/**
 * The CIDs of the newest of `held` whose release can be read from `source` (raw blocks are not read:
 * their CIDs come from their parents' links), at most {@link MAX_KNOWN}. Empty when none can be read.
 */
async function heldBlocks(source: BlockSource, held: readonly CID[]): Promise<Set<string>> {
  for (const version of held.slice(0, 3)) {
    const set = new Set<string>()
    try {
      const stack: CID[] = [version]
      while (stack.length > 0 && set.size < MAX_KNOWN) {
        const cid = stack.pop() as CID
        const key = cid.toString()
        if (set.has(key)) continue
        set.add(key)
        if (cid.code === 0x55 || cid.multihash.code === 0x00) continue
        for (const l of releaseLinks(cid, await source.get(cid), 0)) stack.push(l.cid)
      }
      return set
    } catch {
      // that release is not all here (a clone, a pruned store): try an older one
    }
  }
  return new Set()
}

/**
 * Writes a CARv1 whose header names `root` and which holds exactly `cids`, read (verified) from
 * `source` in that order, and ends `out`. Respects backpressure. Returns the blocks and bytes written.
 */
export async function writeBlocksCar(
  source: BlockSource,
  root: CID,
  cids: readonly CID[],
  out: Writable,
): Promise<{ blocks: number; bytes: number }> {
  let bytes = 0
  const write = (chunk: Uint8Array): Promise<void> | undefined => {
    if (out.write(chunk)) return undefined
    return new Promise((resolve, reject) => {
      const onDrain = (): void => {
        out.off('close', onClose)
        resolve()
      }
      const onClose = (): void => {
        out.off('drain', onDrain)
        reject(new Error('the CAR output was closed before the CAR was complete'))
      }
      out.once('drain', onDrain)
      out.once('close', onClose)
    })
  }
  try {
    await write(carHeader([root]))
    // the next block is read while this one is written
    let next = cids.length > 0 ? source.get(cids[0]) : undefined
    for (let i = 0; i < cids.length; i++) {
      const block = await (next as Promise<Uint8Array>)
      next = i + 1 < cids.length ? source.get(cids[i + 1]) : undefined
      next?.catch(() => {})
      await write(sectionPrefix(cids[i], block.length))
      await write(block)
      bytes += block.length
    }
    out.end()
  } catch (e) {
    out.destroy(e instanceof Error ? e : new Error(String(e)))
    throw e
  }
  return { blocks: cids.length, bytes }
}
