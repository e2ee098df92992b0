/**
 * A whole tree of small files read from several sources at once (docs/multi-source.md): the tree is
 * cut into subtrees of about {@link UNIT_BYTES} (folders, or HAMT shards), each fetched as its own CAR
 * stream from the source the scheduler expects to answer first, several at once and read ahead, so that
 * every source streams its part while the files are written. A stream that stalls is hedged block by
 * block (see `Scheduler.watch`) and its subtree asked of another source again; a file in no subtree
 * being streamed comes on its own. Every block is checked against its CID by the source that sent it.
 */
import * as dagPb from '@ipld/dag-pb'
import type { CID } from '../cid.js'
import type { BlockSource } from '../store/blocks.js'
import { CarSession, keyOf } from './car-session.js'
import type { Source, SourceList } from './index.js'
import type { Scheduler } from './scheduler.js'

/** A subtree of at most this many bytes (its links' `Tsize`) is one CAR request. */
const UNIT_BYTES = 2 * 1024 * 1024
/** Bytes each stream reads ahead of the writers. */
const PREFETCH_BYTES = 4 * 1024 * 1024
/** Streams at once per source. */
const STREAMS_PER_SOURCE = 2
/**
 * Reads that went elsewhere after which the oldest subtree is dropped (when a read finds no subtree):
 * its files were read another way (on their own, before it was opened), and it would hold its place
 * and its blocks for nobody.
 */
const STUCK_AFTER_READS = 64
/** Keys of files read on their own that are remembered, so that a subtree opened later does not wait for them. */
const ALONE_KEYS = 16384

/** One subtree: its root and the files under it not yet handed out. */
interface Unit {
  readonly root: CID
  readonly keys: Set<string>
  session: CarSession | undefined
  /** Sources whose stream of it was given up. */
  readonly tried: Set<Source>
  /** The read that last took a file from it (or opened it). */
  touched: number
}

/** Reads a tree of small files through CAR streams of its subtrees spread over the sources. */
export class TreeSession implements BlockSource {
  private readonly units: AsyncIterator<Unit>
  /** Subtrees being streamed or holding blocks read ahead, in the tree's order. */
  private readonly open: Unit[] = []
  private readonly owner = new Map<string, Unit>()
  private exhausted = false
  private filling: Promise<void> = Promise.resolve()
  private closed = false
  /** Reads so far. */
  private reads = 0
  /** Keys of files read on their own lately, oldest first. */
  private readonly alone = new Set<string>()

  constructor(
    private readonly list: SourceList,
    private readonly scheduler: Scheduler,
    root: CID,
    /** Keys of the tree's folder and shard nodes (the caller has them; streams drop them). */
    private readonly skip: ReadonlySet<string>,
    /** Where the tree's nodes are read from (the caller's copy). */
    local: BlockSource,
  ) {
    this.units = subtrees(local, root, skip)[Symbol.asyncIterator]()
  }

  async get(cid: CID): Promise<Uint8Array> {
    if (cid.multihash.code === 0x00) return cid.multihash.digest
    const key = keyOf(cid)
    const read = ++this.reads
    await this.fill()
    const unit = this.owner.get(key)
    if (unit === undefined) {
      this.alone.add(key)
      if (this.alone.size > ALONE_KEYS) this.alone.delete(this.alone.values().next().value as string)
      return this.readAlone(cid)
    }
    unit.touched = read
    const bytes = await this.streamOf(unit).get(cid)
    unit.keys.delete(key)
    this.owner.delete(key)
    if (unit.keys.size === 0) await this.retire(unit)
    return bytes
  }

  async close(): Promise<void> {
    this.closed = true
    const open = this.open.splice(0)
    this.owner.clear()
    await Promise.all(open.map(async (u) => u.session?.close()))
  }

  /**
   * A file in no open subtree: read on its own. The oldest subtree, when no read took a file from it
   * for {@link STUCK_AFTER_READS} reads, is dropped: the files it waits for were read another way.
   */
  private async readAlone(cid: CID): Promise<Uint8Array> {
    const oldest = this.open[0]
    if (oldest !== undefined && this.reads - oldest.touched > STUCK_AFTER_READS) {
      for (const key of oldest.keys) if (this.owner.get(key) === oldest) this.owner.delete(key)
      oldest.keys.clear()
      await this.retire(oldest)
    }
    return this.list.get(cid)
  }

  /** Opens subtrees in the tree's order while fewer than two per source are open (one filler at a time). */
  private fill(): Promise<void> {
    this.filling = this.filling.then(async () => {
      const width = STREAMS_PER_SOURCE * this.scheduler.lanes.length
      while (!this.exhausted && !this.closed && this.open.length < width) {
        const next = await this.units.next()
        if (next.done === true) {
          this.exhausted = true
          break
        }
        const unit = next.value
        // a file in an open subtree already (the same bytes twice), or read on its own, is not waited for
        for (const key of unit.keys) {
          if (this.owner.has(key) || this.alone.has(key)) unit.keys.delete(key)
          else this.owner.set(key, unit)
        }
        if (unit.keys.size === 0) continue
        unit.touched = this.reads
        this.open.push(unit)
        this.streamOf(unit)
      }
    })
    return this.filling
  }

  /**
   * The session of a subtree: its stream, or a new one from the source expected to answer first
   * (not one whose stream of it was given up) when there is none yet or the last was given up.
   */
  private streamOf(unit: Unit): BlockSource {
    const s = unit.session
    if (s !== undefined && !(s.stopped && !s.complete && unit.keys.size > 0)) return s
    if (s !== undefined) {
      unit.tried.add(s.from)
      void s.close()
    }
    const lane = this.scheduler.pick(unit.tried, undefined, (source) => source.dag !== undefined)
    if (lane === undefined) {
      unit.session = undefined
      return { get: (cid: CID) => this.list.get(cid) }
    }
    unit.session = new CarSession(this.list, lane.source, unit.root, this.skip, { scheduler: this.scheduler, lane }, PREFETCH_BYTES)
    return unit.session
  }

  /** A subtree whose files were all handed out: its stream and blocks go. */
  private async retire(unit: Unit): Promise<void> {
    const at = this.open.indexOf(unit)
    if (at >= 0) this.open.splice(at, 1)
    await unit.session?.close()
    void this.fill()
  }
}

/**
 * The tree's subtrees in depth-first order, each with the keys of the files under it: a folder or
 * shard node of at most {@link UNIT_BYTES}, or a larger one whose own files make most of it (a folder
 * cannot be split below its entries). Files directly under a node that is split are in no subtree.
 */
async function* subtrees(local: BlockSource, root: CID, skip: ReadonlySet<string>): AsyncGenerator<Unit> {
  const unit = async (cid: CID): Promise<Unit> => {
    const keys = new Set<string>()
    const stack = [cid]
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      for (const link of dagPb.decode(await local.get(node)).Links) {
        if (skip.has(keyOf(link.Hash))) stack.push(link.Hash)
        else keys.add(keyOf(link.Hash))
      }
    }
    return { root: cid, keys, session: undefined, tried: new Set(), touched: 0 }
  }
  const split = async function* (cid: CID, size: number | undefined): AsyncGenerator<Unit> {
    if (size !== undefined && size <= UNIT_BYTES) return yield await unit(cid)
    const links = dagPb.decode(await local.get(cid)).Links
    const sizeOf = (l: dagPb.PBLink): number => l.Tsize ?? Infinity
    const own = links.filter((l) => !skip.has(keyOf(l.Hash))).reduce((n, l) => n + sizeOf(l), 0)
    const all = size ?? links.reduce((n, l) => n + sizeOf(l), 0)
    if (all <= UNIT_BYTES || own * 2 >= all) return yield await unit(cid)
    for (const link of links) if (skip.has(keyOf(link.Hash))) yield* split(link.Hash, link.Tsize)
  }
  yield* split(root, undefined)
}
