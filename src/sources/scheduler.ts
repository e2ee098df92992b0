/**
 * Spreading requests over several sources at once (docs/multi-source.md): each request goes to the
 * source expected to answer it first, a request that takes much longer than its source usually needs
 * is hedged (asked of the next source too; the first valid answer wins, the other is stopped), and a
 * source that fails or loses a hedge is dropped for a while (tried only after the others), its work
 * retried elsewhere. Sources only ever hand over blocks they checked against their CID.
 */
import type { CID } from '../cid.js'
import { CairnError, isCairnError } from '../errors.js'
import type { Source } from './index.js'

/** A hedge to a source dropped after a failure waits this many hedge delays. */
const DROPPED_HEDGE_FACTOR = 4
/** A request is hedged after this many times its source's usual time per block… */
const HEDGE_FACTOR = 4
/** …but never sooner than this (a busy event loop must not hedge every request). */
export const HEDGE_MIN_MS = 100
/**
 * A stream (one response bringing many blocks) is given up as stalled after no less than this: its
 * next block may wait on the server's reading and hashing, and giving it up costs the rest of it.
 */
const STALL_MIN_MS = 500
/**
 * A lost hedge is reported as a failure of the slower source when it has not delivered a block yet,
 * or lost this many times in a row: one slow answer from a good source is not worth a warning.
 */
const REPORT_AFTER_LOSSES = 3
/** How fast the penalty of a lost hedge or a stall wears off. */
const PENALTY_HALF_LIFE_MS = 5_000
/** A source dropped after a failure comes back after this long, doubling with each failure in a row. */
const COOLDOWN_MS = 1_000
const COOLDOWN_MAX_MS = 60_000
/** Requests in flight at one source beyond which it is not given more while another has room. */
const MAX_IN_FLIGHT = 32
/** Weight of a new sample in a source's running mean of time per block. */
const EWMA_WEIGHT = 0.25

/** One request (or stream) in flight at a source: `since` is when it last made progress. */
export interface Ticket {
  since: number
}

/** What the scheduler knows of one source. */
export class Lane {
  /** Running mean of milliseconds per block delivered (undefined until the source has delivered one). */
  ms: number | undefined
  /** Failures in a row. */
  strikes = 0
  /** Hedges lost and streams given up as stalled in a row. */
  losses = 0
  /** Blocks it delivered. */
  delivered = 0
  /** Until when the source is tried only after the others (after a failure). */
  droppedUntil = 0
  /** Milliseconds a lost hedge or a stall showed it may take, set at `penaltyAt`, halving every {@link PENALTY_HALF_LIFE_MS}. */
  penalty = 0
  penaltyAt = 0
  readonly inFlight = new Set<Ticket>()

  constructor(
    readonly source: Source,
    /** Its place in the order the user gave: breaks ties. */
    readonly rank: number,
  ) {}

  /** The penalty as it stands at `now`. */
  penaltyNow(now: number): number {
    return this.penalty * 0.5 ** ((now - this.penaltyAt) / PENALTY_HALF_LIFE_MS)
  }

  /**
   * How long the source takes per block, as far as is known: its mean, or more while one of its
   * requests has waited longer or while it lately lost a hedge or stalled.
   */
  expected(prior: number, now: number): number {
    let ms = Math.max(this.ms ?? prior, this.penaltyNow(now))
    for (const t of this.inFlight) ms = Math.max(ms, now - t.since)
    return ms
  }
}

/** One source failing on one CID (the scheduler's caller records and reports it). */
export type Report = (cid: CID, source: Source, error: unknown) => void

/**
 * The choice of source for each request and the hedging of slow ones, over a fixed list of sources.
 * Methods that take `now` use `performance.now()` times.
 */
export class Scheduler {
  readonly lanes: readonly Lane[]

  constructor(
    sources: readonly Source[],
    /** The longest a hedge waits (the sources' own timeout). */
    private readonly maxHedgeMs: number,
  ) {
    this.lanes = sources.map((s, i) => new Lane(s, i))
  }

  /** The lane of a source. */
  laneOf(source: Source): Lane {
    return this.lanes.find((l) => l.source === source) as Lane
  }

  /**
   * The source expected to answer next soonest, among those not in `exclude`: live sources before
   * dropped ones, `avoid` last; then by (requests in flight + 1) × expected time per block, a source
   * not yet heard from counted as good as the best one. Undefined when every source is excluded.
   */
  pick(exclude: ReadonlySet<Source> = new Set(), avoid?: Source, filter: (s: Source) => boolean = () => true): Lane | undefined {
    const now = performance.now()
    const prior = this.prior()
    let best: Lane | undefined
    let bestKey: number[] = []
    for (const lane of this.lanes) {
      if (exclude.has(lane.source) || !filter(lane.source)) continue
      const key = [
        lane.source === avoid ? 1 : 0,
        lane.droppedUntil > now ? lane.droppedUntil : 0,
        lane.inFlight.size >= MAX_IN_FLIGHT ? 1 : 0,
        (lane.inFlight.size + 1) * lane.expected(prior, now),
        lane.rank,
      ]
      if (best === undefined || less(key, bestKey)) {
        best = lane
        bestKey = key
      }
    }
    return best
  }

  /**
   * How long to wait for a request before asking another source as well: a few times what the best
   * source needs per block, whichever source was asked. A source much slower than the best is thus
   * hedged on every request and soon left alone; sources within that factor of each other all work.
   */
  hedgeDelay(): number {
    return Math.min(this.maxHedgeMs, Math.max(HEDGE_MIN_MS, HEDGE_FACTOR * this.prior()))
  }

  /** How long a stream may bring no block while a reader waits before it is given up as stalled. */
  stallDelay(): number {
    return Math.min(this.maxHedgeMs, Math.max(STALL_MIN_MS, HEDGE_FACTOR * this.prior()))
  }

  /** Marks a request started at `lane`; {@link Scheduler.end} it when it settles. */
  begin(lane: Lane): Ticket {
    const ticket = { since: performance.now() }
    lane.inFlight.add(ticket)
    return ticket
  }

  end(lane: Lane, ticket: Ticket): void {
    lane.inFlight.delete(ticket)
  }

  /** `lane` delivered a block after `ms`: its mean moves toward it, and it is live again. */
  observe(lane: Lane, ms: number): void {
    lane.delivered++
    lane.ms = lane.ms === undefined ? ms : lane.ms + EWMA_WEIGHT * (ms - lane.ms)
    lane.strikes = 0
    lane.losses = 0
    lane.droppedUntil = 0
  }

  /** `lane` failed: it is dropped for a while, longer each time in a row. */
  strike(lane: Lane): void {
    lane.strikes++
    lane.droppedUntil = performance.now() + Math.min(COOLDOWN_MAX_MS, COOLDOWN_MS * 2 ** (lane.strikes - 1))
  }

  /**
   * `lane` lost a hedge or stalled after waiting `ms`: until the penalty wears off it is expected to
   * take that long per block (twice its penalty so far, if more), so that it gets work only when the
   * others are that busy. Its mean is left alone: a good source's slow moment must not stretch every
   * hedge delay.
   */
  slow(lane: Lane, ms: number): void {
    const now = performance.now()
    lane.penalty = Math.max(ms, 2 * lane.penaltyNow(now))
    lane.penaltyAt = now
    lane.losses++
  }

  /**
   * The block `cid`, from whichever source answers first with valid bytes: the best source is asked
   * (see {@link Scheduler.pick}); when it has not answered after its hedge delay, or fails, the next
   * one is asked too, and so on. The first valid block wins; requests still running are stopped, and
   * the sources asked before the winner count as slow for a while (reported to `report` as too slow when they delivered
   * nothing yet or lost {@link REPORT_AFTER_LOSSES} times in a row). Every other failure is reported,
   * except "not found" (sources that each hold part of the blocks answer it all the time). Rejects with
   * the failures of every source when none supplied the block.
   */
  fetch(cid: CID, report: Report, avoid?: Source, options: HedgeOptions = {}): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const asked = new Set<Source>(options.exclude === undefined ? [] : [options.exclude])
      const failures: { source: Source; error: unknown }[] = []
      const running = new Map<Lane, { ticket: Ticket; stop: AbortController }>()
      let settled = false
      let timer: NodeJS.Timeout | undefined

      const finish = (): void => {
        settled = true
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', cancel)
      }
      // the caller no longer needs the block (a stream it hedged brought it first): stop every request
      const cancel = (): void => {
        if (settled) return
        finish()
        for (const [lane, r] of running) {
          this.end(lane, r.ticket)
          r.stop.abort()
        }
        running.clear()
        reject(new Cancelled())
      }
      if (options.signal?.aborted === true) return reject(new Cancelled())
      options.signal?.addEventListener('abort', cancel, { once: true })
      const failed = (): void => {
        finish()
        reject(new AllFailed(failures))
      }
      // a hedge goes to a live source first: one dropped after a failure is for when the others fail, not when they are slow
      const live = (source: Source): boolean => this.laneOf(source).droppedUntil <= performance.now()
      const launch = (hedge = false): boolean => {
        const lane = this.pick(asked, avoid, hedge ? live : undefined)
        if (lane === undefined) return false
        asked.add(lane.source)
        const ticket = this.begin(lane)
        const stop = new AbortController()
        running.set(lane, { ticket, stop })
        lane.source.get(cid, { signal: stop.signal }).then(
          (bytes) => {
            this.end(lane, ticket)
            running.delete(lane)
            if (settled) return
            finish()
            const now = performance.now()
            this.observe(lane, now - ticket.since)
            // the others are stopped; those asked before this one were slower, and reported as such
            for (const [other, r] of running) {
              this.end(other, r.ticket)
              r.stop.abort()
              if (r.ticket.since >= ticket.since) continue
              this.slow(other, now - r.ticket.since)
              // a source that has lost hedges before without a block between is failing, not having a slow moment
              if (other.delivered === 0 || other.losses >= REPORT_AFTER_LOSSES)
                report(cid, other.source, slower(other.source, lane.source, cid, now - r.ticket.since))
            }
            running.clear()
            resolve(bytes)
          },
          (error: unknown) => {
            this.end(lane, ticket)
            running.delete(lane)
            if (settled) return
            failures.push({ source: lane.source, error })
            if (!isCairnError(error, 'MISSING_BLOCK')) {
              this.strike(lane)
              report(cid, lane.source, error)
            }
            if (running.size === 0 && !launch()) failed()
          },
        )
        // hedged when it takes too long, as long as another source is left to ask
        clearTimeout(timer)
        if (this.pick(asked, avoid) !== undefined) {
          // a source dropped after a failure is asked only when even a few hedge delays went by
          const liveLeft = this.pick(asked, avoid, live) !== undefined
          timer = setTimeout(
            () => {
              if (!settled && !launch(liveLeft) && !launch() && running.size === 0) failed()
            },
            liveLeft ? this.hedgeDelay() : DROPPED_HEDGE_FACTOR * this.hedgeDelay(),
          )
        }
        return true
      }
      if (!launch()) failed()
    })
  }

  /**
   * Waits for `pending`, a stream's next block from `lane`, while a reader waits for `cid`: when it
   * has not come after the stall delay, `cid` is asked of the other sources too (see
   * {@link Scheduler.fetch}), and whichever comes first wins. `{ step }` when the stream answered
   * first (the hedge is then stopped); `{ bytes, ms }` when another source sent `cid` first, `ms`
   * after the wait began (the stream is stalled: the caller gives it up, and its rejection is
   * ignored). When no other source could supply `cid` the stream is waited for alone (its source's
   * idle timeout bounds it). Rejects as `pending` does. The wait is armed afresh for each block and
   * needs nothing from any other request: a stream stalled after everything else finished is hedged too.
   */
  async watch<T>(pending: Promise<T>, lane: Lane, cid: CID, report: Report): Promise<{ step: T } | { bytes: Uint8Array; ms: number }> {
    const asked = performance.now()
    let timer: NodeJS.Timeout | undefined
    const quiet = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), this.stallDelay())))
    try {
      const first = await Promise.race([pending.then((step) => ({ step })), quiet])
      if (first !== undefined) return first
    } finally {
      clearTimeout(timer)
    }
    const stop = new AbortController()
    const hedge = this.fetch(cid, report, undefined, { exclude: lane.source, signal: stop.signal }).then(
      (bytes) => ({ bytes, ms: performance.now() - asked }),
      () => undefined,
    )
    try {
      const won = await Promise.race([pending.then((step) => ({ step })), hedge])
      if (won !== undefined) {
        if ('bytes' in won) void pending.catch(() => {})
        return won
      }
      return { step: await pending }
    } finally {
      stop.abort()
    }
  }

  /** The best mean among the sources that answered (1 ms before any did): how a new source is first judged. */
  private prior(): number {
    let best: number | undefined
    for (const lane of this.lanes) if (lane.ms !== undefined && (best === undefined || lane.ms < best)) best = lane.ms
    return best ?? 1
  }
}

/** Options of {@link Scheduler.fetch} when it hedges a stream. */
export interface HedgeOptions {
  /** A source never asked (the one whose stream is being hedged). */
  readonly exclude?: Source
  /** Aborting it stops every request of the fetch, which then rejects with {@link Cancelled}. */
  readonly signal?: AbortSignal
}

/** A fetch whose caller aborted it. */
export class Cancelled extends Error {
  constructor() {
    super('cancelled')
  }
}

/** Every source failed on one CID: each failure, in the order they came. */
export class AllFailed extends Error {
  constructor(readonly failures: readonly { readonly source: Source; readonly error: unknown }[]) {
    super(`every source failed (${failures.length})`)
  }
}

/** A request stopped because another source, asked later, answered first. */
function slower(slow: Source, fast: Source, cid: CID, ms: number): CairnError {
  return new CairnError(
    'FETCH_FAILED',
    `${slow.name} failed on ${cid}: no block within ${Math.round(ms)} ms, ${fast.name} answered first`,
    {
      subject: cid.toString(),
    },
  )
}

function less(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i]
  return false
}
