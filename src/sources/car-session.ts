/**
 * One CAR stream serving the blocks of a DAG to the readers of a session (see `SourceList.session`),
 * with a block-by-block fallback through the {@link SourceList} for whatever the stream cannot supply.
 */
import type { CID } from '../cid.js'
import { CairnError, isCairnError } from '../errors.js'
import type { BlockSource } from '../store/blocks.js'
import type { Block } from '../unixfs/file.js'
import type { FetchOptions, Source, SourceList } from './index.js'
import type { Lane, Scheduler, Ticket } from './scheduler.js'

/** Blocks a CAR session may hold that were sent before they were asked for (out of order, or not in the DAG). */
export const STASH_LIMIT_BYTES = 32 * 1024 * 1024

/** The multihash and codec as a map key. */
export function keyOf(cid: CID): string {
  const mh = cid.multihash.bytes
  return `${cid.code}:${Buffer.from(mh.buffer, mh.byteOffset, mh.length).toString('latin1')}`
}

/** Keys of blocks a {@link CarSession} handed out lately, so that a second reader of one does not wait for it. */
const TAKEN_KEYS = 16384

/**
 * One CAR stream serving its blocks to one reader or several at once (see {@link SourceList.session}),
 * with a block-by-block fallback. A single pump reads the stream while some reader waits; a block goes to
 * the readers waiting for it, or into the stash for a reader to come. A stash grown past its limit while
 * a reader still waits means the stream is not coming to that reader's block: the stream is given up,
 * and what is still wanted fetched on its own.
 */
export class CarSession implements BlockSource {
  private iterator: AsyncIterator<Block> | undefined
  private readonly abort = new AbortController()
  /** The stream as a request in flight at its source, when spreading (it makes progress with each block). */
  private readonly ticket: Ticket | undefined
  private pumping = false
  private readonly waiting = new Map<string, Reader[]>()
  private readonly stash = new Map<string, Uint8Array>()
  private stashed = 0
  /** Keys handed out lately, oldest first: a file may hold a block twice, or two files the same block. */
  private readonly taken = new Set<string>()

  constructor(
    private readonly list: SourceList,
    private readonly source: Source,
    root: CID,
    private readonly skip: ReadonlySet<string>,
    /** When spreading: the scheduler and the source's lane, told of each block and of a stall. */
    private readonly watch?: { readonly scheduler: Scheduler; readonly lane: Lane },
    /** Bytes of blocks read ahead while no reader waits (0: the stream is read only for a waiting reader). */
    private readonly prefetch = 0,
  ) {
    const dag = source.dag as (root: CID, options: FetchOptions) => AsyncIterable<Block>
    this.iterator = dag.call(source, root, { signal: this.abort.signal })[Symbol.asyncIterator]()
    this.ticket = watch?.scheduler.begin(watch.lane)
    if (prefetch > 0) void this.pump()
  }

  /** The source the stream comes from. */
  get from(): Source {
    return this.source
  }

  /** True once the stream ended or was given up: every block it did not bring is then fetched on its own. */
  get stopped(): boolean {
    return this.iterator === undefined
  }

  /** True once the stream ended by itself (it was not given up). */
  complete = false

  get(cid: CID): Promise<Uint8Array> {
    if (cid.multihash.code === 0x00) return Promise.resolve(cid.multihash.digest)
    const key = keyOf(cid)
    const early = this.stash.get(key)
    if (early !== undefined) {
      this.stash.delete(key)
      this.stashed -= early.length
      this.took(key)
      if (this.prefetch > 0) void this.pump()
      return Promise.resolve(early)
    }
    // the stream is over, or already sent this block: fetch it on its own
    if (this.iterator === undefined || this.taken.has(key)) return this.list.get(cid, this.source)
    return new Promise((resolve, reject) => {
      const reader = { cid, resolve, reject }
      const readers = this.waiting.get(key)
      if (readers) readers.push(reader)
      else this.waiting.set(key, [reader])
      void this.pump()
    })
  }

  async close(): Promise<void> {
    await this.stop()
  }

  /** Reads the stream while readers wait, or while the blocks read ahead stay within `prefetch`. */
  private async pump(): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      while (this.iterator !== undefined && (this.waiting.size > 0 || this.stashed < this.prefetch)) {
        let next: IteratorResult<Block>
        const asked = performance.now()
        try {
          const got = await this.next(this.iterator)
          if ('bytes' in got) {
            // another source sent the awaited block first: this stream is stalled (or far slower)
            const { cid, bytes, ms } = got
            this.deliver(keyOf(cid), bytes)
            if (this.watch) this.watch.scheduler.slow(this.watch.lane, ms)
            await this.giveUp(
              cid,
              `brought no block for ${Math.round(ms)} ms while ${cid} was awaited, another source sent it first (stalled)`,
            )
            return
          }
          next = got.step
        } catch (e) {
          // closed meanwhile (its reads are done): the abort is ours, not the source's failure
          if (this.iterator === undefined) return
          // spreading, a source that lacks the DAG's root is no failure: the others have it
          const lacks = this.watch !== undefined && isCairnError(e, 'MISSING_BLOCK')
          // (closed meanwhile: nobody waits)
          if (this.waiting.size > 0 && !lacks) this.list.record(this.anyWaiting(), this.source, e)
          if (this.watch && !lacks) this.watch.scheduler.strike(this.watch.lane)
          await this.stop()
          return
        }
        if (this.watch && this.ticket && !next.done) {
          this.ticket.since = performance.now()
          this.watch.scheduler.observe(this.watch.lane, this.ticket.since - asked)
        }
        if (next.done) {
          this.complete = true
          // what was read ahead stays for its readers
          if (this.waiting.size === 0) await this.stop(true)
          else await this.giveUp(this.anyWaiting(), `ended without block ${this.anyWaiting()}`)
          return
        }
        const key = keyOf(next.value.cid)
        if (this.waiting.has(key)) this.deliver(key, next.value.bytes)
        else if (!this.skip.has(key) && !this.stash.has(key)) {
          this.stash.set(key, next.value.bytes)
          this.stashed += next.value.bytes.length
          if (this.stashed > STASH_LIMIT_BYTES && this.waiting.size > 0) {
            const cid = this.anyWaiting()
            await this.giveUp(cid, `sent over ${STASH_LIMIT_BYTES} bytes of blocks not asked for before block ${cid}`)
            return
          }
        }
      }
    } finally {
      this.pumping = false
    }
  }

  /**
   * The stream's next block; when spreading and it does not come within the stall delay, the block a
   * reader awaits is asked of the other sources too, and `{ cid, bytes, ms }` is what one of them
   * sent first (see {@link Scheduler.watch}).
   */
  private async next(
    iterator: AsyncIterator<Block>,
  ): Promise<{ step: IteratorResult<Block> } | { cid: CID; bytes: Uint8Array; ms: number }> {
    const next = iterator.next()
    if (this.watch === undefined) return { step: await next }
    const { scheduler, lane } = this.watch
    // reading ahead with nobody waiting, a quiet stream costs nothing yet: it is watched once a reader waits
    while (this.waiting.size === 0) {
      let timer: NodeJS.Timeout | undefined
      const quiet = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), scheduler.stallDelay())))
      try {
        const got = await Promise.race([next.then((step) => ({ step })), quiet])
        if (got !== undefined) return got
      } finally {
        clearTimeout(timer)
      }
    }
    const cid = this.anyWaiting()
    const got = await scheduler.watch(next, lane, cid, (c, source, e) => this.list.record(c, source, e))
    return 'bytes' in got ? { cid, ...got } : got
  }

  /** Hands a block to the readers waiting for it. */
  private deliver(key: string, bytes: Uint8Array): void {
    const readers = this.waiting.get(key) ?? []
    this.waiting.delete(key)
    this.took(key)
    for (const r of readers) r.resolve(bytes)
  }

  private async giveUp(cid: CID, what: string): Promise<void> {
    this.list.record(
      cid,
      this.source,
      new CairnError('FETCH_FAILED', `the CAR from ${this.source.name} ${what}`, { subject: cid.toString() }),
    )
    await this.stop()
  }

  /** Ends the stream; every reader still waiting gets its block on its own (that source last). */
  private async stop(keepStash = false): Promise<void> {
    const it = this.iterator
    this.iterator = undefined
    // spreading, a read still pending (a stalled stream) ends now, not at the source's idle timeout
    // (with no read pending, ending the iteration below closes the connection itself)
    if (this.watch && !this.complete && this.pumping) this.abort.abort()
    if (this.ticket && this.watch) this.watch.scheduler.end(this.watch.lane, this.ticket)
    if (!keepStash) {
      this.stash.clear()
      this.stashed = 0
    }
    const readers = [...this.waiting.values()].flat()
    this.waiting.clear()
    for (const r of readers) this.list.get(r.cid, this.source).then(r.resolve, r.reject)
    await it?.return?.(undefined).catch(() => {})
  }

  /** A CID some reader waits for (the pump runs only while there is one). */
  private anyWaiting(): CID {
    for (const readers of this.waiting.values()) return readers[0].cid
    throw new Error('no reader waits')
  }

  private took(key: string): void {
    this.taken.add(key)
    if (this.taken.size > TAKEN_KEYS) for (const oldest of this.taken) return void this.taken.delete(oldest)
  }
}

/** A reader of a {@link CarSession} waiting for a block. */
interface Reader {
  readonly cid: CID
  readonly resolve: (bytes: Uint8Array) => void
  readonly reject: (e: unknown) => void
}
