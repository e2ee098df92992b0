/**
 * Diffing two shard indexes (prolly trees) by walking them together, level by level, and never reading
 * a subtree whose node CID is the same on both sides: equal CIDs mean equal entries. With `k` changed
 * shards in trees of depth `d`, about `2 × k × d` index nodes are read, whatever the number of shards.
 */
import type { CID } from '../cid.js'
import { comparePaths, type BranchEntry, type IndexNode, type ShardEntry } from '../manifest.js'
import { readIndexNode } from '../shard-index/prolly.js'
import type { BlockSource } from '../store/blocks.js'
import { mapLimit } from '../util/pool.js'

/** A shard that is on one side only, or on both with another CID. */
export interface EntryChange {
  readonly path: string
  /** The entry in the first index; absent when the path was added. */
  readonly before?: ShardEntry
  /** The entry in the second index; absent when the path was removed. */
  readonly after?: ShardEntry
}

/** What {@link diffIndexes} found, and what it cost. */
export interface IndexDiff {
  /** Paths whose entries differ, in path order (added, removed, or same path with another entry). */
  readonly changes: readonly EntryChange[]
  /** Index nodes read (both sides together), the roots included. */
  readonly nodesRead: number
  /** Height of the taller index (0 for a single leaf). */
  readonly depth: number
}

/** Progress of an index diff: index nodes read so far. */
export interface IndexDiffProgress {
  readonly nodesRead: number
}

/** Options of {@link diffIndexes}. */
export interface DiffIndexesOptions {
  /** Nodes fetched at once (default 16): helps slow sources such as gateways. The result does not depend on it. */
  readonly concurrency?: number
  readonly onProgress?: (progress: IndexDiffProgress) => void
}

/** A branch entry waiting to be read (a subtree), or a shard entry. */
type Item =
  { readonly kind: 'node'; readonly level: number; readonly entry: BranchEntry } | { readonly kind: 'leaf'; readonly entry: ShardEntry }

/**
 * Compares the shard indexes rooted at `a` and `b`, read from `source`. Both frontiers are kept in
 * path order; each round drops the subtrees whose node CID appears on both sides, then expands the
 * remaining subtrees of the highest level (on either side) one level down, until only shard entries
 * remain, which are merged by path. An entry present on both sides with the same CID, size, format,
 * rows and schema is not a change.
 *
 * Memory holds the two frontiers: proportional to the changes times the fanout (64) for similar
 * indexes, and to the whole index for unrelated ones.
 *
 * @throws {CairnError} `MISSING_BLOCK` / `CORRUPT_BLOCK` from the source (naming the node's CID), and
 *   `INVALID_MANIFEST` / `BAD_PATH` for a node that is not a valid index node. Never a partial result.
 */
export async function diffIndexes(source: BlockSource, a: CID, b: CID, options: DiffIndexesOptions = {}): Promise<IndexDiff> {
  if (a.equals(b)) return { changes: [], nodesRead: 0, depth: 0 }
  let nodesRead = 0
  const read = async (cid: CID): Promise<IndexNode> => {
    const node = await readIndexNode(source, cid)
    nodesRead++
    options.onProgress?.({ nodesRead })
    return node
  }
  const [rootA, rootB] = await Promise.all([read(a), read(b)])
  const depth = Math.max(rootA.level, rootB.level)
  let left = itemsOf(rootA)
  let right = itemsOf(rootB)
  const concurrency = options.concurrency ?? 16

  for (;;) {
    const inA = new Set<string>()
    for (const it of left) if (it.kind === 'node') inA.add(it.entry.node.toString())
    const shared = new Set<string>()
    for (const it of right) if (it.kind === 'node' && inA.has(it.entry.node.toString())) shared.add(it.entry.node.toString())
    const keep = (it: Item): boolean => it.kind === 'leaf' || !shared.has(it.entry.node.toString())
    if (shared.size > 0) {
      left = left.filter(keep)
      right = right.filter(keep)
    }
    let top = -1
    for (const it of left) if (it.kind === 'node' && it.level > top) top = it.level
    for (const it of right) if (it.kind === 'node' && it.level > top) top = it.level
    if (top < 0) break
    // expanding only the highest level lets a taller side come down to meet the other before comparing
    ;[left, right] = await Promise.all([expand(left, top, read, concurrency), expand(right, top, read, concurrency)])
  }
  return { changes: merge(left as LeafItem[], right as LeafItem[]), nodesRead, depth }
}

type LeafItem = Extract<Item, { kind: 'leaf' }>

function itemsOf(node: IndexNode): Item[] {
  if (node.level === 0) return (node.entries as readonly ShardEntry[]).map((entry) => ({ kind: 'leaf', entry }))
  return (node.entries as readonly BranchEntry[]).map((entry) => ({ kind: 'node', level: node.level - 1, entry }))
}

async function expand(items: Item[], level: number, read: (cid: CID) => Promise<IndexNode>, concurrency: number): Promise<Item[]> {
  const targets = items.filter((it) => it.kind === 'node' && it.level === level)
  if (targets.length === 0) return items
  const nodes = await mapLimit(targets, concurrency, (it) => read((it as Extract<Item, { kind: 'node' }>).entry.node))
  const byTarget = new Map<Item, IndexNode>(targets.map((t, i) => [t, nodes[i]]))
  const out: Item[] = []
  for (const it of items) {
    const node = byTarget.get(it)
    if (node === undefined) out.push(it)
    else for (const child of itemsOf(node)) out.push(child)
  }
  return out
}

function merge(left: readonly LeafItem[], right: readonly LeafItem[]): EntryChange[] {
  const out: EntryChange[] = []
  let i = 0
  let j = 0
  while (i < left.length || j < right.length) {
    const c = i >= left.length ? 1 : j >= right.length ? -1 : comparePaths(left[i].entry.path, right[j].entry.path)
    if (c < 0) {
      out.push({ path: left[i].entry.path, before: left[i++].entry })
    } else if (c > 0) {
      out.push({ path: right[j].entry.path, after: right[j++].entry })
    } else {
      const before = left[i++].entry
      const after = right[j++].entry
      if (!sameEntry(before, after)) out.push({ path: before.path, before, after })
    }
  }
  return out
}

/** Same CID, size, format, rows and schema. */
export function sameEntry(x: ShardEntry, y: ShardEntry): boolean {
  return (
    x.cid.equals(y.cid) &&
    x.size === y.size &&
    x.format === y.format &&
    x.rows === y.rows &&
    (x.schema === undefined ? y.schema === undefined : y.schema !== undefined && x.schema.equals(y.schema))
  )
}
