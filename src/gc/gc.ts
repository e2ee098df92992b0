/**
 * `gc` and `du`: what the store holds against what the refs reach, and collecting the rest
 * (docs/gc.md). Kept: the releases of HEAD, every tag and every version in the HEAD log (unless
 * `expireHeadLog`), each with the releases of its first `keepHistory` ancestors (default: all) and the
 * version blocks and cards of older ones. Packs are never rewritten in place: the blocks to keep of a
 * pack with garbage are copied into a new pack (data flushed, then its index log), the packs to delete
 * are named in a journal, and only then are their logs and packs removed. A gc killed at any point
 * leaves every kept block in the store; the next gc finishes the job.
 */
import { randomBytes } from 'node:crypto'
import { fsyncSync, mkdirSync, openSync, closeSync, renameSync, writeSync } from 'node:fs'
import { readdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { cidBytesText, CID } from '../cid.js'
import { withDataset, type Dataset } from '../dataset.js'
import { CairnError, ioError } from '../errors.js'
import { filterHeadLog, readHeadLog } from '../history/reflog.js'
import { withLock } from '../store/lock.js'
import { writeFileAtomic } from '../util/atomic.js'
import type { SeenSetOptions } from '../walk/seen-set.js'
import { listPacks, type StoreFiles } from './packs.js'
import { isFilePack } from '../store/file-packs.js'
import { Reach } from './reach.js'
import { CopyList } from './copy-list.js'
import { countBlocks } from './count.js'

export interface GcOptions {
  readonly dir?: string
  /** Delete now; without it, a dry run that reports what would be freed. */
  readonly now?: boolean
  /** Keep the releases of this many ancestors of HEAD, of each tag and of each version in the HEAD log (default: all). */
  readonly keepHistory?: number
  /** Do not keep the versions of the HEAD log (moves a `reset --undo` could go back to). */
  readonly expireHeadLog?: boolean
  readonly onProgress?: (p: { readonly phase: 'mark' | 'copy' | 'delete'; readonly blocks: number }) => void
  /** Limits of the on-disk sets of blocks (tests force tiny ones: the answers are the same). */
  readonly limits?: GcLimits
}

/** Limits of gc's and du's bounded structures. */
export interface GcLimits {
  /** The sets of reached and of counted blocks (src/walk/seen-set.ts). */
  readonly seen?: SeenSetOptions
  /** Bytes of an index log read at a time. */
  readonly logBufferBytes?: number
}

/** What {@link gc} found and did. */
export interface GcResult {
  /** False for a dry run. */
  readonly done: boolean
  /** Blocks (distinct) in the store before, and how many are kept. */
  readonly blocks: number
  readonly keptBlocks: number
  /** Blocks and bytes of block data no ref reaches. */
  readonly garbageBlocks: number
  readonly garbageBytes: number
  /** Bytes on disk (packs and their logs) before, and freed (or that would be freed). */
  readonly storeBytes: number
  readonly freedBytes: number
  /** Packs deleted (or that would be), and packs written with their kept blocks. */
  readonly packsDeleted: number
  readonly packsWritten: number
  /** Blocks the kept versions link to that the store does not have. */
  readonly missing: number
}

/** Journal of the packs a gc is deleting (under `.cairn/`): a killed gc's deletions are finished by the next. */
const JOURNAL = 'gc-journal'
/** src/clone.ts's record of a clone (not imported from there: that would load every source and target). */
const CLONE_RECORD = 'clone.json'
/** Packs written by gc end with this; one without its log is a killed gc's and is deleted at once. */
const GC_SUFFIX = '-gc'
/** Other packs without a log are deleted only when this old: a writer creates its log right after its pack. */
const ORPHAN_AGE_MS = 60 * 60 * 1000

/**
 * Collects (with `now`) or reports the blocks no ref reaches. Takes the dataset's lock: refused while a
 * build or another gc runs. Throws `IO`, `CORRUPT_BLOCK` (a kept block is damaged: nothing is deleted),
 * `INVALID_MANIFEST`, `USAGE` (a negative keepHistory).
 */
export async function gc(options: GcOptions = {}): Promise<GcResult> {
  const keep = options.keepHistory ?? Infinity
  if (!(keep >= 0)) throw new CairnError('USAGE', `--keep-history must be 0 or more (found ${keep})`)
  return withDataset(options.dir, (dataset) =>
    withLock(dataset.root, async () => {
      await refuseDuringClone(dataset)
      const packsDir = join(dataset.store.root, 'packs')
      if (options.now) {
        await finishJournal(dataset, packsDir)
        await dropTornLogs(dataset)
      }
      const files = listPacks(packsDir)
      const limits = withTmp(dataset, options.limits)
      options.onProgress?.({ phase: 'mark', blocks: 0 })
      const reach = await markKept(dataset, keep, !options.expireHeadLog, limits)
      let plan: Sweep | undefined
      try {
        plan = planSweep(packsDir, files, reach, limits)
        const result = {
          blocks: plan.blocks,
          keptBlocks: reach.size,
          garbageBlocks: plan.blocks - reach.size,
          garbageBytes: plan.garbageBytes,
          storeBytes: plan.storeBytes,
          freedBytes: plan.freedBytes,
          packsDeleted: plan.doomed.length,
          packsWritten: plan.copy.count > 0 ? 1 : 0,
          missing: reach.missing,
        }
        if (!options.now || (plan.doomed.length === 0 && plan.orphans.length === 0)) return { done: !!options.now, ...result }
        await sweep(dataset, packsDir, plan, options.onProgress)
        // moves to versions that are gone could never be undone: the log forgets them
        if (options.expireHeadLog) await filterHeadLog(dataset.store.root, (m) => reach.has(m.to))
        return { done: true, ...result }
      } finally {
        plan?.copy.close()
        reach.close()
      }
    }),
  )
}

/** The limits with the sets' run files under `.cairn/tmp` (beside the store, not in a small /tmp). */
function withTmp(dataset: Dataset, limits: GcLimits | undefined): GcLimits {
  const dir = join(dataset.store.root, 'tmp')
  try {
    mkdirSync(dir, { recursive: true })
  } catch (e) {
    throw ioError('create', dir, e)
  }
  return { ...limits, seen: { dir, ...limits?.seen } }
}

/** Marks what HEAD, the tags and (unless told) the HEAD log's versions reach. */
async function markKept(dataset: Dataset, keep: number, headLog: boolean, limits: GcLimits): Promise<Reach> {
  const reach = new Reach(dataset.store, await dataset.store.snapshot(), limits.seen)
  try {
    const head = await dataset.refs.head()
    if (head) await reach.history(head, keep)
    for (const t of await dataset.refs.tags()) await reach.history(t.cid, keep)
    if (headLog) {
      for (const move of await readHeadLog(dataset.store.root)) {
        await reach.history(move.to, keep)
        if (move.from) await reach.history(move.from, keep)
      }
    }
  } catch (e) {
    reach.close()
    throw e
  }
  return reach
}

interface Sweep {
  /** Distinct blocks in the store. */
  readonly blocks: number
  /** Packs to delete (their kept blocks copied first). */
  readonly doomed: string[]
  /** Kept blocks to copy out of them (on disk). */
  readonly copy: CopyList
  /** Logless packs to delete. */
  readonly orphans: string[]
  readonly garbageBytes: number
  readonly storeBytes: number
  readonly freedBytes: number
}

/**
 * Which packs hold garbage (a block no ref reaches, a second copy, bytes no log line names), and what to
 * copy out: one pass over the logs, oldest pack first, a block's first line being its counted copy.
 * Memory holds a pack's name per pack; the blocks to copy go to a file.
 */
function planSweep(packsDir: string, files: StoreFiles, reach: Reach, limits: GcLimits): Sweep {
  const doomed: string[] = []
  const copy = new CopyList(limits.seen?.dir as string)
  let garbageBytes = 0
  let storeBytes = 0
  let freedBytes = 0
  // the new pack's size and its log's, as the kept blocks of doomed packs are listed
  let newBytes = 0
  let newLogBytes = 0
  try {
    const blocks = countBlocks(packsDir, files.packs, limits, (pack) => {
      storeBytes += pack.packBytes + pack.idxBytes
      // a clone or reference pack is the data file's bytes: kept whole while a block of it is live, never
      // copied out (that would make the second copy its mode avoids), deleted whole when none is
      if (isFilePack(pack.id)) {
        let live = false
        return {
          line: (cid) => {
            live ||= reach.has(cid)
          },
          end: () => {
            if (live) return
            doomed.push(pack.id)
            freedBytes += pack.packBytes + pack.idxBytes
          },
        }
      }
      let lines = 0
      let live = 0
      let kept = 0
      const mark = copy.mark()
      const before = { newBytes, newLogBytes }
      return {
        line: (cid, length, counted) => {
          lines++
          if (counted && reach.has(cid)) {
            live += length
            kept++
            copy.push(cid)
            newLogBytes += cidBytesText(cid).length + `${newBytes} ${length}\n`.length + 1
            newBytes += length
          } else if (counted) garbageBytes += length
        },
        end: () => {
          if (live === pack.packBytes && kept === lines) {
            copy.rollback(mark)
            ;({ newBytes, newLogBytes } = before)
            return
          }
          doomed.push(pack.id)
          freedBytes += pack.packBytes + pack.idxBytes
        },
      }
    })
    // the kept blocks move into the new pack, with a log line each
    freedBytes -= newBytes + newLogBytes
    const now = Date.now()
    const orphans = files.orphans.filter((o) => o.id.endsWith(GC_SUFFIX) || now - o.mtimeMs > ORPHAN_AGE_MS).map((o) => o.id)
    for (const o of files.orphans) {
      storeBytes += o.bytes
      if (orphans.includes(o.id)) freedBytes += o.bytes
    }
    return { blocks, doomed, copy, orphans, garbageBytes, storeBytes, freedBytes }
  } catch (e) {
    copy.close()
    throw e
  }
}

/**
 * Copies the kept blocks of the doomed packs into one new pack (each read checked against its CID),
 * flushes it, then its log (written beside it under `.cairn/tmp`, flushed, and only then renamed into
 * the packs), records the doomed packs in the journal, then deletes their logs and packs, and the orphans.
 */
async function sweep(dataset: Dataset, packsDir: string, plan: Sweep, onProgress: GcOptions['onProgress']): Promise<void> {
  if (plan.copy.count > 0) {
    const id = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}${GC_SUFFIX}`
    const packFile = join(packsDir, id + '.pack')
    const idxFile = join(packsDir, id + '.idx')
    const logFile = join(dataset.store.root, 'tmp', id + '.idx')
    let copied = 0
    const fd = openOrThrow(packFile)
    let ifd: number | undefined
    try {
      ifd = openOrThrow(logFile)
      const log = new Appender(ifd)
      let offset = 0
      for (const bytes of plan.copy.cids()) {
        const cid = CID.decode(bytes)
        // read through the store: checked against the CID, so a damaged block is never carried over
        const block = await dataset.store.get(cid)
        let written = 0
        while (written < block.length) written += writeSync(fd, block, written, block.length - written, offset + written)
        log.add(`${cidBytesText(bytes)} ${offset} ${block.length}\n`)
        offset += block.length
        onProgress?.({ phase: 'copy', blocks: ++copied })
      }
      fsyncSync(fd)
      log.flush()
      fsyncSync(ifd)
    } catch (e) {
      closeSync(fd)
      if (ifd !== undefined) closeSync(ifd)
      await unlink(packFile).catch(() => {})
      await unlink(logFile).catch(() => {})
      throw e instanceof CairnError ? e : ioError('write', packFile, e)
    }
    closeSync(fd)
    closeSync(ifd)
    // the log last: until it is whole and in place, the old packs still hold every block
    try {
      renameSync(logFile, idxFile)
    } catch (e) {
      await unlink(logFile).catch(() => {})
      throw ioError('write', idxFile, e)
    }
  }
  const journal = join(dataset.store.root, JOURNAL)
  await writeFileAtomic(journal, JSON.stringify({ delete: [...plan.doomed, ...plan.orphans] }) + '\n', {
    tmpDir: join(dataset.store.root, 'tmp'),
    flush: true,
  }).catch((e: unknown) => {
    throw ioError('write', journal, e)
  })
  await deletePacks(packsDir, [...plan.doomed, ...plan.orphans], onProgress)
  await unlink(journal).catch(() => {})
}

/** Lines appended to a file a megabyte at a time: a log of 10⁷ lines is never one string. */
class Appender {
  private parts: string[] = []
  private held = 0
  private at = 0
  constructor(private readonly fd: number) {}

  add(line: string): void {
    this.parts.push(line)
    this.held += line.length
    if (this.held >= 1 << 20) this.flush()
  }

  flush(): void {
    const bytes = Buffer.from(this.parts.join(''), 'latin1')
    this.parts = []
    this.held = 0
    for (let off = 0; off < bytes.length;) off += writeSync(this.fd, bytes, off, bytes.length - off, this.at + off)
    this.at += bytes.length
  }
}

/** Deletes each pack's log, then the pack (a pack without its log holds nothing of the store). */
async function deletePacks(packsDir: string, ids: readonly string[], onProgress: GcOptions['onProgress']): Promise<void> {
  let n = 0
  for (const id of ids) {
    for (const file of [join(packsDir, id + '.idx'), join(packsDir, id + '.pack')]) {
      try {
        await unlink(file)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('delete', file, e)
      }
    }
    onProgress?.({ phase: 'delete', blocks: ++n })
  }
}

/** A killed gc left a journal: its new pack's log is whole (the journal is written after it), so its deletions are finished. */
async function finishJournal(dataset: Dataset, packsDir: string): Promise<void> {
  const journal = join(dataset.store.root, JOURNAL)
  let text: string
  try {
    text = await readFile(journal, 'utf8')
  } catch {
    return
  }
  let ids: unknown
  try {
    ids = (JSON.parse(text) as { delete?: unknown }).delete
  } catch {
    ids = undefined
  }
  // a journal is written whole (temp, then rename): one that does not parse is not ours to act on
  if (Array.isArray(ids) && ids.every((i) => typeof i === 'string' && /^[A-Za-z0-9-]+$/.test(i)))
    await deletePacks(packsDir, ids as string[], undefined)
  await unlink(journal).catch(() => {})
}

/** A gc killed while writing its new pack's log left it under `.cairn/tmp` (its pack, logless, is an orphan). */
async function dropTornLogs(dataset: Dataset): Promise<void> {
  const tmp = join(dataset.store.root, 'tmp')
  const names = await readdir(tmp).catch(() => [] as string[])
  for (const name of names) if (name.endsWith(GC_SUFFIX + '.idx')) await unlink(join(tmp, name)).catch(() => {})
}

/** A clone still under way has blocks no ref reaches yet (HEAD moves last): not garbage. Throws `USAGE`. */
async function refuseDuringClone(dataset: Dataset): Promise<void> {
  const text = await readFile(join(dataset.store.root, CLONE_RECORD), 'utf8').catch(() => undefined)
  let record: { complete?: unknown } | undefined
  try {
    record = text === undefined ? undefined : (JSON.parse(text) as { complete?: unknown })
  } catch {
    record = undefined
  }
  if (record && record.complete === false) {
    throw new CairnError('USAGE', `A clone into ${dataset.root} is not finished: gc would take its blocks for garbage`, {
      hint: 'run the same `cairn clone` again to finish it, then gc',
    })
  }
}

function openOrThrow(file: string): number {
  try {
    return openSync(file, 'wx')
  } catch (e) {
    throw ioError('create', file, e)
  }
}

/** A part of the store: distinct blocks and their bytes. */
export interface DuPart {
  readonly blocks: number
  readonly bytes: number
}

/** What {@link du} reports. */
export interface DuResult {
  /** Everything: packs and logs on disk, distinct blocks and their bytes. */
  readonly store: DuPart & { readonly packs: number; readonly diskBytes: number }
  /** HEAD's release. */
  readonly head: DuPart
  /** The tags' releases together. */
  readonly tags: DuPart
  /** Every version HEAD, the tags and the HEAD log reach, with all their history. */
  readonly history: DuPart
  /** Blocks nothing reaches: what `gc --now` frees. */
  readonly unreachable: DuPart
}

/** Sizes of the store and of what HEAD, the tags and the history reach. Reads only; takes no lock. */
export async function du(options: { readonly dir?: string; readonly limits?: GcLimits } = {}): Promise<DuResult> {
  return withDataset(options.dir, async (dataset) => {
    const packsDir = join(dataset.store.root, 'packs')
    const files = listPacks(packsDir)
    const limits = withTmp(dataset, options.limits)
    let diskBytes = 0
    for (const p of files.packs) diskBytes += p.packBytes + p.idxBytes
    for (const o of files.orphans) diskBytes += o.bytes
    const present = await dataset.store.snapshot()
    const reaches: Reach[] = []
    try {
      const head = await dataset.refs.head()
      const headReach = new Reach(dataset.store, present, limits.seen)
      reaches.push(headReach)
      if (head) await headReach.release(head)
      const tagReach = new Reach(dataset.store, present, limits.seen)
      reaches.push(tagReach)
      for (const t of await dataset.refs.tags()) await tagReach.release(t.cid)
      const all = await markKept(dataset, Infinity, true, limits)
      reaches.push(all)
      let bytes = 0
      const blocks = countBlocks(packsDir, files.packs, limits, () => ({
        line: (cid, length, counted) => {
          if (!counted) return
          bytes += length
          for (const r of reaches) if (r.has(cid)) r.bytes += length
        },
        end: () => {},
      }))
      const part = (r: Reach): DuPart => ({ blocks: r.size, bytes: r.bytes })
      return {
        store: { packs: files.packs.length, diskBytes, blocks, bytes },
        head: part(headReach),
        tags: part(tagReach),
        history: part(all),
        unreachable: { blocks: blocks - all.size, bytes: bytes - all.bytes },
      }
    } finally {
      for (const r of reaches) r.close()
    }
  })
}
