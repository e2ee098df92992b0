/**
 * The shard index: a prolly tree of dag-json nodes sorted by path (docs/index.md). Node boundaries
 * are chosen by content: an entry closes its node when `murmur3-32("<level>:<path>")` falls under
 * 2³² / {@link TARGET_FANOUT}, or when the node would pass {@link MAX_NODE_BYTES}. The same set of
 * entries therefore always gives the same root, whatever order they were found in, and a change to
 * one shard rewrites only the nodes on its path (plus, rarely, a neighbour whose boundary moved).
 */
import { murmur332 } from '@multiformats/murmur3'
import type { Link } from '../cid.js'
import { CairnError } from '../errors.js'
import {
  checkShardPath,
  comparePaths,
  decodeManifest,
  encodeManifest,
  type BranchEntry,
  type IndexNode,
  type ShardEntry,
  type Totals,
} from '../manifest.js'
import type { BlockSource } from '../store/blocks.js'
import type { BlockSink } from '../unixfs/file.js'
import type { CID } from '../cid.js'

/** Average entries per node. */
export const TARGET_FANOUT = 64
/** Estimated encoded size past which a node is closed whatever the hash says (blocks stay far below 1 MiB). */
export const MAX_NODE_BYTES = 256 * 1024
const THRESHOLD = Math.floor(0x1_0000_0000 / TARGET_FANOUT)
/**
 * A smaller fanout and node cap a test may force, to build many nodes of few entries (the index is
 * then not the canonical one: every build under the same tuning agrees with every other).
 */
export const indexTuning: { fanout?: number; maxNodeBytes?: number } = {}
const encoder = new TextEncoder()
const keyBuffer = new Uint8Array(4096)

/** True when the entry with `path` at `level` closes its node. */
export function isBoundary(level: number, path: string): boolean {
  const key = `${level}:${path}`
  // encoded into one reused buffer when it fits (it nearly always does): no allocation per entry
  const { read, written } = encoder.encodeInto(key, keyBuffer)
  const bytes = read === key.length ? keyBuffer.subarray(0, written) : encoder.encode(key)
  // murmur3-32 is synchronous; the hasher interface merely allows promises
  const h = murmur332.encode(bytes) as Uint8Array
  const threshold = indexTuning.fanout === undefined ? THRESHOLD : Math.floor(0x1_0000_0000 / indexTuning.fanout)
  return ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0 < threshold
}

/** The root of a built index and the totals below it. */
export interface BuiltIndex {
  readonly root: Link<IndexNode>
  readonly totals: Totals
}

/**
 * Builds the index over `entries`, which must be sorted by {@link comparePaths} without duplicates
 * (throws `BAD_PATH` otherwise), passing every node block to `sink`, children first.
 */
export async function buildIndex(entries: Iterable<ShardEntry> | AsyncIterable<ShardEntry>, sink: BlockSink): Promise<BuiltIndex> {
  const builder = new IndexBuilder(sink)
  for await (const e of entries) await builder.add(e)
  return builder.finish()
}

/** One level of an index being built: the items of the node it is filling. */
interface Level {
  items: (ShardEntry | BranchEntry)[]
  bytes: number
  /** Items this level received in all; a level above 0 that received one item is not built: it is the root. */
  received: number
  first: ShardEntry | BranchEntry | undefined
}

/**
 * Builds an index one entry at a time, in path order: memory holds one open node per level, so an
 * index of any size is built in the space of a few nodes. Gives the same nodes as cutting the whole
 * sorted list level by level: an item closes its node when it is a boundary, and a node is closed
 * before an item that would take it past {@link MAX_NODE_BYTES}.
 */
export class IndexBuilder {
  private readonly levels: Level[] = []
  private last: string | undefined
  private built = 0

  constructor(private readonly sink: BlockSink) {}

  /**
   * Adds the next entry; throws `BAD_PATH` when it is not after the previous one. Returns a promise
   * only when the entry closed a node (which is passed to the sink, awaited): most entries are added
   * synchronously, without a promise each.
   */
  add(entry: ShardEntry): Promise<void> | undefined {
    if (this.last !== undefined && comparePaths(this.last, entry.path) >= 0) {
      throw new CairnError('BAD_PATH', `Index entries out of order or duplicated at ${JSON.stringify(entry.path)}`, {
        subject: entry.path,
      })
    }
    this.last = entry.path
    return this.push(0, entry)
  }

  /** True when no node is open at level 0: the next entry starts a new leaf. */
  get atLeafStart(): boolean {
    return this.levels.length === 0 || this.levels[0].items.length === 0
  }

  /**
   * Takes a whole leaf built earlier, `leaf` (its branch entry: first path, node, totals), as if its
   * entries had been added one by one; valid only {@link atLeafStart} and when the entries that follow
   * would have closed it where it closed (the caller's proof: see `editIndex`). Returns a promise only
   * when a node above closed.
   */
  reuseLeaf(leaf: BranchEntry): Promise<void> | undefined {
    if (!this.atLeafStart || (this.last !== undefined && comparePaths(this.last, leaf.path) >= 0)) {
      throw new CairnError('BAD_PATH', `Index leaf reused out of order at ${JSON.stringify(leaf.path)}`, { subject: leaf.path })
    }
    // later entries are checked against the leaf's first path (its last one is not read)
    this.last = leaf.path
    if (this.levels.length === 0) this.levels.push({ items: [], bytes: 0, received: 0, first: undefined })
    this.levels[0].received += leaf.totals.shards
    return this.push(1, leaf)
  }

  /** Closes every open node; returns the root and the totals below it. */
  async finish(): Promise<BuiltIndex> {
    if (this.levels.length === 0) {
      const { cid } = await emit({ type: 'cairn.index', v: 1, level: 0, entries: [] }, this.sink)
      return { root: cid, totals: { shards: 0, bytes: 0, rows: 0 } }
    }
    for (let level = 0; ; level++) {
      const l = this.levels[level]
      // a level above 0 that received a single item: that item's node is the root
      if (level > 0 && l.received === 1) {
        // (a node may have been closed over it alone when it was a boundary: unused, like any block of a failed build)
        const root = l.first as BranchEntry
        return { root: root.node, totals: root.totals }
      }
      if (l.items.length > 0) await this.close(level)
    }
  }

  /** Adds `item` to the node open at `level`; a promise only when a node was closed. */
  private push(level: number, item: ShardEntry | BranchEntry): Promise<void> | undefined {
    if (this.levels.length === level) this.levels.push({ items: [], bytes: 0, received: 0, first: item })
    const l = this.levels[level]
    if (l.items.length > 0 && l.bytes + estimate(item) > (indexTuning.maxNodeBytes ?? MAX_NODE_BYTES))
      return this.close(level).then(() => this.place(level, item))
    return this.place(level, item)
  }

  private place(level: number, item: ShardEntry | BranchEntry): Promise<void> | undefined {
    const l = this.levels[level]
    l.items.push(item)
    l.bytes += estimate(item)
    l.received++
    return isBoundary(level, item.path) ? this.close(level) : undefined
  }

  /** Turns the open node of `level` into a block and passes its branch entry up. */
  private async close(level: number): Promise<void> {
    const l = this.levels[level]
    const items = l.items
    l.items = []
    l.bytes = 0
    const { cid } = await emit({ type: 'cairn.index', v: 1, level, entries: items } as IndexNode, this.sink)
    // let timers and I/O run during a long build, even when the sink is synchronous
    if (++this.built % 256 === 0) await new Promise((resolve) => setImmediate(resolve))
    await this.push(level + 1, { path: items[0].path, node: cid, totals: sumTotals(items) })
  }
}

async function emit(node: IndexNode, sink: BlockSink): Promise<{ cid: Link<IndexNode> }> {
  const block = encodeManifest<'cairn.index'>(node)
  await sink(block)
  return { cid: block.cid }
}

function estimate(item: ShardEntry | BranchEntry): number {
  return item.path.length * 3 + 200
}

function sumTotals(items: readonly (ShardEntry | BranchEntry)[]): Totals {
  let shards = 0
  let bytes = 0
  let rows = 0
  for (const it of items) {
    if ('node' in it) {
      shards += it.totals.shards
      bytes += it.totals.bytes
      rows += it.totals.rows
    } else {
      shards++
      bytes += it.size
      rows += it.rows ?? 0
    }
  }
  return { shards, bytes, rows }
}

/**
 * Reads and checks one index node: dag-json, schema, known format version, normalised paths in
 * strictly increasing order. Throws `INVALID_MANIFEST` / `BAD_PATH` naming the node's CID.
 */
export async function readIndexNode(source: BlockSource, cid: CID): Promise<IndexNode> {
  const node = decodeManifest('cairn.index', cid, await source.get(cid))
  let previous: string | undefined
  for (const e of node.entries) {
    checkShardPath(e.path, `index node ${cid}: path`)
    if (previous !== undefined && comparePaths(previous, e.path) >= 0) {
      throw new CairnError('INVALID_MANIFEST', `index node ${cid}: paths out of order at ${JSON.stringify(e.path)}`, {
        subject: cid.toString(),
      })
    }
    previous = e.path
  }
  return node
}

/** Every shard entry under `root`, in path order, reading one node at a time. */
export async function* walkEntries(source: BlockSource, root: CID): AsyncGenerator<ShardEntry> {
  const node = await readIndexNode(source, root)
  if (node.level === 0) {
    yield* node.entries as readonly ShardEntry[]
    return
  }
  for (const child of node.entries as readonly BranchEntry[]) yield* walkEntries(source, child.node)
}
