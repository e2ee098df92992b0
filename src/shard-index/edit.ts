/**
 * A new shard index from its parent and a few edits, reusing every parent leaf the edits leave alone
 * (docs/streaming-build.md, "A build after a few changes"). The result is the index a cold build of
 * the same entries gives, node for node: leaf boundaries depend only on the sequence of paths (a
 * boundary is a hash of the path, the size cap an estimate from path lengths), so a leaf whose
 * entries and following path are unchanged, met where a leaf starts, closes where it closed before.
 */
import type { CID } from '../cid.js'
import { CairnError } from '../errors.js'
import { comparePaths, type BranchEntry, type ShardEntry } from '../manifest.js'
import type { BlockSource } from '../store/blocks.js'
import type { BlockSink } from '../unixfs/file.js'
import { IndexBuilder, readIndexNode, type BuiltIndex } from './prolly.js'

/** One edit of an index: the entry now at `path`, or its removal (`entry` undefined). */
export interface IndexEdit {
  readonly path: string
  readonly entry: ShardEntry | undefined
}

/** A leaf of the parent index: its branch entry, or, for an index of one leaf, the leaf's entries. */
interface ParentLeaf {
  readonly branch: BranchEntry | undefined
  readonly cid: CID
  readonly first: string | undefined
}

/**
 * Builds the index of the parent's entries (under `root`) with `edits` applied, passing new node
 * blocks to `sink` (a reused leaf is not passed again). `edits` must be sorted by
 * {@link comparePaths} without repeats; a removal of a path the parent lacks is ignored. Reads the
 * parent's branch nodes and only the leaves an edit falls in or next to. Throws what the source
 * throws (`MISSING_BLOCK`, `CORRUPT_BLOCK`, `INVALID_MANIFEST`) and `BAD_PATH` for unsorted edits.
 */
export async function editIndex(source: BlockSource, root: CID, edits: readonly IndexEdit[], sink: BlockSink): Promise<BuiltIndex> {
  const builder = new IndexBuilder(sink)
  let e = 0
  // entries of a leaf merged with the edits up to `bound` (exclusive; undefined: all the rest)
  const feed = async (entries: readonly ShardEntry[], bound: string | undefined): Promise<void> => {
    let k = 0
    for (;;) {
      const edit = e < edits.length && (bound === undefined || comparePaths(edits[e].path, bound) < 0) ? edits[e] : undefined
      const old = k < entries.length ? entries[k] : undefined
      if (edit === undefined && old === undefined) return
      const order = edit === undefined ? 1 : old === undefined ? -1 : comparePaths(edit.path, old.path)
      let next: ShardEntry | undefined
      if (order <= 0) {
        next = edit!.entry
        e++
        if (order === 0) k++
      } else next = entries[k++]
      if (next) {
        const added = builder.add(next)
        if (added) await added
      }
    }
  }
  let pending: ParentLeaf | undefined
  const visit = async (leaf: ParentLeaf | undefined): Promise<void> => {
    const current = pending
    pending = leaf
    if (!current) return
    const bound = leaf?.first
    // the edits that fall in this leaf's range, up to the next leaf's first path
    let end = e
    while (end < edits.length && (bound === undefined || comparePaths(edits[end].path, bound) < 0)) end++
    // a removed next path could let the leaf close later (the size cap looks at the next path)
    const nextRemoved = bound !== undefined && end < edits.length && edits[end].path === bound && edits[end].entry === undefined
    if (end === e && !nextRemoved && current.branch && builder.atLeafStart) {
      const reused = builder.reuseLeaf(current.branch)
      if (reused) await reused
      return
    }
    const node = await readIndexNode(source, current.cid)
    await feed(node.entries as readonly ShardEntry[], bound)
  }
  const top = await readIndexNode(source, root)
  if (top.level === 0) {
    await feed(top.entries as readonly ShardEntry[], undefined)
  } else {
    for await (const branch of parentLeaves(source, top.entries as readonly BranchEntry[], top.level))
      await visit({ branch, cid: branch.node, first: branch.path })
    await visit(undefined)
  }
  // additions after the last parent entry
  await feed([], undefined)
  return builder.finish()
}

/** The branch entries of the leaves under `entries` (of a node at `level` ≥ 1), in order. */
async function* parentLeaves(source: BlockSource, entries: readonly BranchEntry[], level: number): AsyncGenerator<BranchEntry> {
  if (level === 1) {
    yield* entries
    return
  }
  for (const child of entries) {
    const node = await readIndexNode(source, child.node)
    if (node.level !== level - 1) {
      throw new CairnError('INVALID_MANIFEST', `index node ${child.node}: level ${node.level} under a node of level ${level}`, {
        subject: child.node.toString(),
      })
    }
    yield* parentLeaves(source, node.entries as readonly BranchEntry[], node.level)
  }
}
