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
const encoder = new TextEncoder()

/** True when the entry with `path` at `level` closes its node. */
export function isBoundary(level: number, path: string): boolean {
  // murmur3-32 is synchronous; the hasher interface merely allows promises
  const h = murmur332.encode(encoder.encode(`${level}:${path}`)) as Uint8Array
  return ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0 < THRESHOLD
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
export async function buildIndex(entries: readonly ShardEntry[], sink: BlockSink): Promise<BuiltIndex> {
  for (let i = 1; i < entries.length; i++) {
    if (comparePaths(entries[i - 1].path, entries[i].path) >= 0) {
      throw new CairnError('BAD_PATH', `Index entries out of order or duplicated at ${JSON.stringify(entries[i].path)}`, {
        subject: entries[i].path,
      })
    }
  }
  let level = 0
  let children: BranchEntry[] = await chunk(0, entries, sink)
  while (children.length > 1) {
    level++
    children = await chunk(level, children, sink)
  }
  if (children.length === 0) {
    const { cid } = await emit({ type: 'cairn.index', v: 1, level: 0, entries: [] }, sink)
    return { root: cid, totals: { shards: 0, bytes: 0, rows: 0 } }
  }
  return { root: children[0].node, totals: children[0].totals }
}

async function chunk(level: number, items: readonly (ShardEntry | BranchEntry)[], sink: BlockSink): Promise<BranchEntry[]> {
  const out: BranchEntry[] = []
  let start = 0
  let bytes = 0
  for (let i = 0; i < items.length; i++) {
    bytes += estimate(items[i])
    const last = i === items.length - 1
    if (last || isBoundary(level, items[i].path) || bytes + estimate(items[i + 1]) > MAX_NODE_BYTES) {
      const slice = items.slice(start, i + 1)
      const node = { type: 'cairn.index', v: 1, level, entries: slice } as IndexNode
      const { cid } = await emit(node, sink)
      out.push({ path: slice[0].path, node: cid, totals: sumTotals(slice) })
      // let timers and I/O run during a long build, even when the sink is synchronous
      if (out.length % 256 === 0) await new Promise((resolve) => setImmediate(resolve))
      start = i + 1
      bytes = 0
    }
  }
  return out
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
