/**
 * The store's index of blocks, by CID (docs/store.md): sorted runs on disk (`.cairn/block-index/*.run`)
 * for the bulk, and in memory only the lines of the logs no run holds yet (a bounded number: past
 * `spillEntries` they are written as a run). Opening it lists the runs and stats the logs; a lookup reads
 * a few hundred bytes of each run. The logs stay the truth: a run is a copy of some of their lines, made
 * by whichever process finds them missing, written whole (temporary name, flush, rename) and used only
 * while the logs it copies are still there and as long. So a process killed at any moment leaves every
 * block findable, an old store (logs only) is converted as it is opened, and gc, which deletes logs,
 * makes the runs' records of their packs dead (dropped at the next merge).
 */
import { mkdirSync, readdirSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { BlockLocations } from '../locations.js'
import { isReferencePack } from '../reference-pack.js'
import { readLog, LOG_BUFFER_BYTES } from './log.js'
import { coalesce, mergeRuns } from './merge.js'
import { preferred, SortedRun, type Location } from './run.js'
import { RecordBatch } from './write.js'

export type { Location } from './run.js'

export interface BlockIndexOptions {
  /** Entries held in memory before they are written as a run (default 2^18, ~20 MB). Tests force tiny values. */
  readonly spillEntries?: number
  /** Bytes of a log read at a time. */
  readonly logBufferBytes?: number
  /** Records each input of a merge reads at a time. */
  readonly mergeBufferRecords?: number
  /** Lookups a run serves by reading its fan-out table before it keeps the table and its Bloom filter in memory (default 1,024). */
  readonly residentAfterLookups?: number
}

const SPILL_ENTRIES = 1 << 18
/** A log line is a CID's 59 characters, two numbers and three separators: at least 64 bytes. */
const MIN_LINE = 64
/** Runs of one size class (a power of this, in spills) are merged when there are this many. */
const FAN_IN = 4
/** More runs than this are all merged into one. */
const MAX_RUNS = 16
/** A run's temporary file this old belongs to a killed process. */
const TMP_AGE_MS = 60 * 60 * 1000

/** Lines of one pack's log in [from, to) are in memory; those before `from`, in runs. */
interface Span {
  from: number
  to: number
}

export class BlockIndex {
  private runs: SortedRun[] = []
  /** For each run, per pack of its header: the end of its ranges (the log must be at least this long). */
  private readonly ends = new WeakMap<SortedRun, number[]>()
  private mem = new BlockLocations()
  private readonly spans = new Map<string, Span>()
  /** Packs this process writes: their lines reach memory through {@link added}, never by reading the log. */
  private readonly own = new Set<string>()
  private opened = false
  /** False once writing a run failed (a read-only store): the logs' lines are then held in memory. */
  private writable = true
  private readonly spill: number
  private readonly logBuffer: number

  constructor(
    private readonly packsDir: string,
    private readonly runsDir: string,
    private readonly options: BlockIndexOptions = {},
  ) {
    this.spill = Math.max(1, options.spillEntries ?? SPILL_ENTRIES)
    this.logBuffer = options.logBufferBytes ?? LOG_BUFFER_BYTES
  }

  /** The runs in use (for inspection and tests). */
  get runCount(): number {
    return this.runs.length
  }

  /** Entries held in memory. */
  get memoryEntries(): number {
    return this.mem.size
  }

  /**
   * Takes in what the logs gained since the last look (the first call opens the runs): lines no run holds
   * are read into memory, or, when more than `spillEntries`, written as runs. Synchronous. Throws the
   * file system's error.
   */
  refresh(): void {
    if (!this.opened) this.openRuns()
    const logs = this.logSizes()
    this.checkRuns(logs)
    this.dropDead()
    let tail = 0
    for (const [pack, size] of logs) {
      if (this.own.has(pack)) continue
      let span = this.spans.get(pack)
      if (!span) {
        const at = this.covered(pack, size)
        span = { from: at, to: at }
        this.spans.set(pack, span)
      }
      if (size > span.to) tail += size - span.to
    }
    const gone = [...this.spans.keys()].filter((pack) => !logs.has(pack))
    if (gone.length > 0) this.forget(gone)
    if (this.mem.size + tail / MIN_LINE > this.spill && this.compact(logs)) return
    for (const [pack, span] of this.spans) {
      const size = logs.get(pack)
      if (this.own.has(pack) || size === undefined || size <= span.to) continue
      span.to = readLog(this.log(pack), span.to, size, (cid, offset, length) => this.remember(cid, pack, offset, length), this.logBuffer)
    }
  }

  /** Where the block whose CIDv1 bytes are `cid` lies, as of the last {@link refresh}. */
  get(cid: Uint8Array): Location | undefined {
    let best = this.mem.get(cid)
    for (let i = this.runs.length - 1; i >= 0 && !(best && !isReferencePack(best.pack)); i--)
      best = preferred(best, this.runs[i].lookup(cid))
    return best
  }

  /**
   * Records in memory a block placed in a pack that is not this process's own (a reference or clone pack
   * written through the store's file packs, whose log the next {@link refresh} reads like any other's).
   */
  note(cid: Uint8Array, pack: string, offset: number, length: number): void {
    this.remember(cid, pack, offset, length)
  }

  /** Sets a block's place in memory unless memory holds a place reads should prefer (see {@link preferred}). */
  private remember(cid: Uint8Array, pack: string, offset: number, length: number): void {
    const known = this.mem.get(cid)
    const at = { pack, offset, length }
    if (known === undefined || preferred(known, at) === at) this.mem.set(cid, pack, offset, length)
  }

  has(cid: Uint8Array): boolean {
    return this.get(cid) !== undefined
  }

  /**
   * Records a block this process wrote to its own pack, whose log line lies in [lineFrom, lineTo) of the
   * pack's log, appended whole before this call. May write a run (synchronously).
   */
  added(cid: Uint8Array, pack: string, offset: number, length: number, lineFrom: number, lineTo: number): void {
    if (!this.own.has(pack)) {
      this.own.add(pack)
      this.spans.set(pack, { from: 0, to: 0 })
    }
    this.remember(cid, pack, offset, length)
    const span = this.spans.get(pack)!
    // a run is made from the log, not from memory: the span only says how far the log is accounted for
    if (lineFrom <= span.to && lineTo > span.to) span.to = lineTo
    if (this.mem.size >= this.spill && this.writable) this.compact(undefined)
  }

  /**
   * Drops what memory holds of packs whose logs are gone (gc deleted them): memory is emptied and the
   * lines of the other packs it held are read again (this process's own from its log, the others' below).
   */
  private forget(gone: readonly string[]): void {
    for (const pack of gone) {
      this.spans.delete(pack)
      this.own.delete(pack)
    }
    if (this.mem.size === 0) return
    this.mem = new BlockLocations()
    for (const [pack, span] of this.spans) {
      const to = span.to
      span.to = span.from
      if (this.own.has(pack))
        span.to = readLog(this.log(pack), span.from, to, (cid, offset, length) => this.remember(cid, pack, offset, length), this.logBuffer)
    }
  }

  /** Every block's CIDv1 bytes (copies), runs first, possibly with repeats. */
  *keys(): Generator<Uint8Array> {
    for (const run of this.runs) {
      const c = run.cursor()
      while (c.next()) {
        if (!run.value(c.bytes, c.at)) continue
        const n = c.bytes[c.at + 8]
        yield new Uint8Array(c.bytes.subarray(c.at + 9, c.at + 9 + n))
      }
    }
    for (const k of this.mem.keys()) yield k.slice()
  }

  /** Closes the runs; the next {@link refresh} opens them again. */
  close(): void {
    for (const run of this.runs) run.close()
    this.runs = []
    this.opened = false
  }

  private openRuns(): void {
    for (let attempt = 0; ; attempt++) {
      let names: string[]
      try {
        names = readdirSync(this.runsDir)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') names = []
        else throw e
      }
      const runs: SortedRun[] = []
      try {
        for (const name of names) {
          if (name.endsWith('.run')) {
            const run = SortedRun.open(join(this.runsDir, name), this.options.residentAfterLookups)
            if (run) runs.push(run)
          } else if (name.endsWith('.tmp')) this.removeStale(name)
        }
      } catch (e) {
        for (const r of runs) r.close()
        // another process merged a run away between the listing and the open: list again
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 8) continue
        throw e
      }
      this.runs = runs
      for (const run of runs) this.track(run)
      this.opened = true
      return
    }
  }

  /** Notes the end of each pack's ranges in `run`. */
  private track(run: SortedRun): SortedRun {
    const ends = run.header.packs.map(() => 0)
    for (const r of run.header.ranges) ends[r.pack] = Math.max(ends[r.pack], r.to)
    this.ends.set(run, ends)
    return run
  }

  /**
   * Rewrites each run that names a dead pack without its records (after a gc deleted packs: otherwise
   * their records would take space until the run is merged, which for the largest run may be never).
   */
  private dropDead(): void {
    for (const run of [...this.runs]) {
      if (!this.writable) return
      if (run.live.every((l) => l)) continue
      let rewritten: SortedRun | undefined
      try {
        rewritten = SortedRun.open(mergeRuns(this.runsDir, [run], this.options.mergeBufferRecords), this.options.residentAfterLookups)
      } catch {
        this.writable = false
        return
      }
      if (!rewritten) continue
      this.runs = this.runs.map((r) => (r === run ? this.track(rewritten) : r))
      run.close()
      this.remove(run.file)
    }
  }

  /** Marks the packs of each run whose logs are gone or shorter as dead; a run with none left is deleted. */
  private checkRuns(logs: ReadonlyMap<string, number>): void {
    this.runs = this.runs.filter((run) => {
      const ends = this.ends.get(run)!
      run.live = run.header.packs.map((p, i) => (logs.get(p) ?? -1) >= ends[i])
      if (run.live.some((l) => l)) return true
      run.close()
      this.remove(run.file)
      return false
    })
  }

  /** The end of the first bytes of `pack`'s log that the runs hold without a gap. */
  private covered(pack: string, size: number): number {
    const ranges: { from: number; to: number }[] = []
    for (const run of this.runs) {
      const i = run.header.packs.indexOf(pack)
      if (i < 0 || !run.live[i]) continue
      for (const r of run.header.ranges) if (r.pack === i) ranges.push(r)
    }
    ranges.sort((a, b) => a.from - b.from)
    let at = 0
    for (const r of ranges) if (r.from <= at) at = Math.max(at, r.to)
    return Math.min(at, size)
  }

  /**
   * Writes every span's lines as runs, read from the logs (up to `logs`' size for others' packs, the span's
   * end for this process's own), a bounded batch at a time; empties memory. False when a run could not be
   * written (nothing changed then, and no run is tried again).
   */
  private compact(logs: ReadonlyMap<string, number> | undefined): boolean {
    const batch = new RecordBatch()
    // a spill of this process's writes reads the rest of the batch whose block crossed the limit too: the
    // slack keeps it one run instead of a full one and a tiny one
    const chunk = this.spill + (this.spill >> 3)
    let ranges: { pack: string; from: number; to: number }[] = []
    const written: string[] = []
    const ends = new Map<string, number>()
    const flush = (): void => {
      if (batch.size > 0 || ranges.length > 0) written.push(batch.write(this.runsDir, coalesce(ranges)))
      ranges = []
    }
    try {
      mkdirs(this.runsDir)
      for (const [pack, span] of this.spans) {
        const end = this.own.has(pack) || !logs ? span.to : (logs.get(pack) ?? span.to)
        let start = span.from
        const last = readLog(
          this.log(pack),
          span.from,
          end,
          (cid, offset, length, lineEnd) => {
            batch.add(cid, pack, offset, length)
            if (batch.size >= chunk) {
              ranges.push({ pack, from: start, to: lineEnd })
              start = lineEnd
              flush()
            }
          },
          this.logBuffer,
        )
        if (last > start) ranges.push({ pack, from: start, to: last })
        ends.set(pack, last)
      }
      flush()
    } catch {
      // a store we may not write (read-only, full): its lines stay in memory
      for (const f of written) this.remove(f)
      this.writable = false
      return false
    }
    for (const f of written) {
      const run = SortedRun.open(f, this.options.residentAfterLookups)
      if (run) this.runs.push(this.track(run))
    }
    for (const [pack, end] of ends) this.spans.set(pack, { from: end, to: end })
    this.mem = new BlockLocations()
    this.merge()
    return true
  }

  /** Merges runs while a size class holds {@link FAN_IN} of them, or all of them past {@link MAX_RUNS}. */
  private merge(): void {
    for (;;) {
      let group: SortedRun[] | undefined
      if (this.runs.length > MAX_RUNS) group = [...this.runs]
      else {
        const tiers = new Map<number, SortedRun[]>()
        for (const run of this.runs) {
          const tier = Math.floor(Math.log(Math.max(1, run.count / this.spill)) / Math.log(FAN_IN))
          const t = tiers.get(tier) ?? []
          t.push(run)
          tiers.set(tier, t)
          if (t.length >= FAN_IN) group = t
        }
      }
      if (!group) return
      let run: SortedRun | undefined
      try {
        run = SortedRun.open(mergeRuns(this.runsDir, group, this.options.mergeBufferRecords), this.options.residentAfterLookups)
      } catch {
        this.writable = false
        return
      }
      if (!run) return
      this.runs = [...this.runs.filter((r) => !group.includes(r)), this.track(run)]
      for (const r of group) {
        r.close()
        this.remove(r.file)
      }
    }
  }

  /** Every index log and its size. */
  private logSizes(): Map<string, number> {
    const sizes = new Map<string, number>()
    let names: string[]
    try {
      names = readdirSync(this.packsDir)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return sizes
      throw e
    }
    for (const name of names) {
      if (!name.endsWith('.idx')) continue
      try {
        sizes.set(name.slice(0, -4), statSync(join(this.packsDir, name)).size)
      } catch (e) {
        // deleted (by gc) since the listing
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
      }
    }
    return sizes
  }

  private log(pack: string): string {
    return join(this.packsDir, pack + '.idx')
  }

  private removeStale(name: string): void {
    try {
      if (Date.now() - statSync(join(this.runsDir, name)).mtimeMs > TMP_AGE_MS) unlinkSync(join(this.runsDir, name))
    } catch {
      // gone, or not ours to delete
    }
  }

  private remove(file: string): void {
    if (!this.writable) return
    try {
      unlinkSync(file)
    } catch {
      // gone already, or a read-only store
    }
  }
}

function mkdirs(dir: string): void {
  try {
    statSync(dir)
  } catch {
    mkdirSync(dir, { recursive: true })
  }
}
