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
import { fsyncSync, openSync, closeSync, writeSync } from 'node:fs'
import { readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { cidFromText, cidText, type CID } from '../cid.js'
import { withDataset, type Dataset } from '../dataset.js'
import { CairnError, ioError } from '../errors.js'
import { filterHeadLog, readHeadLog } from '../history/reflog.js'
import { withLock } from '../store/lock.js'
import { writeFileAtomic } from '../util/atomic.js'
import { readLayout, type StoreLayout } from './packs.js'
import { isFilePack } from '../store/file-packs.js'
import { Reach } from './reach.js'

export interface GcOptions {
  readonly dir?: string
  /** Delete now; without it, a dry run that reports what would be freed. */
  readonly now?: boolean
  /** Keep the releases of this many ancestors of HEAD, of each tag and of each version in the HEAD log (default: all). */
  readonly keepHistory?: number
  /** Do not keep the versions of the HEAD log (moves a `reset --undo` could go back to). */
  readonly expireHeadLog?: boolean
  readonly onProgress?: (p: { readonly phase: 'mark' | 'copy' | 'delete'; readonly blocks: number }) => void
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
      if (options.now) await finishJournal(dataset, packsDir)
      const layout = readLayout(packsDir)
      options.onProgress?.({ phase: 'mark', blocks: 0 })
      const reach = await markKept(dataset, layout, keep, !options.expireHeadLog)
      const plan = planSweep(layout, reach)
      const result = {
        blocks: layout.blocks.size,
        keptBlocks: reach.keys.size,
        garbageBlocks: layout.blocks.size - reach.keys.size,
        garbageBytes: plan.garbageBytes,
        storeBytes: plan.storeBytes,
        freedBytes: plan.freedBytes,
        packsDeleted: plan.doomed.length,
        packsWritten: plan.copy.length > 0 ? 1 : 0,
        missing: reach.missing,
      }
      if (!options.now || (plan.doomed.length === 0 && plan.orphans.length === 0)) return { done: !!options.now, ...result }
      await sweep(dataset, packsDir, layout, plan, options.onProgress)
      // moves to versions that are gone could never be undone: the log forgets them
      if (options.expireHeadLog) await filterHeadLog(dataset.store.root, (m) => reach.has(cidText(m.to)))
      return { done: true, ...result }
    }),
  )
}

/** Marks what HEAD, the tags and (unless told) the HEAD log's versions reach. */
async function markKept(dataset: Dataset, layout: StoreLayout, keep: number, headLog: boolean): Promise<Reach> {
  const reach = new Reach(dataset.store, layout.blocks)
  const head = await dataset.refs.head()
  if (head) await reach.history(head, keep)
  for (const t of await dataset.refs.tags()) await reach.history(t.cid, keep)
  if (headLog) {
    for (const move of await readHeadLog(dataset.store.root)) {
      await reach.history(move.to, keep)
      if (move.from) await reach.history(move.from, keep)
    }
  }
  return reach
}

interface Sweep {
  /** Packs to delete (their kept blocks copied first). */
  readonly doomed: string[]
  /** Kept blocks to copy out of them. */
  readonly copy: { readonly key: string; readonly pack: string; readonly offset: number; readonly length: number }[]
  /** Logless packs to delete. */
  readonly orphans: string[]
  readonly garbageBytes: number
  readonly storeBytes: number
  readonly freedBytes: number
}

/** Which packs hold garbage (a block no ref reaches, a second copy, bytes no log line names), and what to copy out. */
function planSweep(layout: StoreLayout, reach: Reach): Sweep {
  const doomed: string[] = []
  const copy: Sweep['copy'] = []
  let garbageBytes = 0
  let storeBytes = 0
  let freedBytes = 0
  for (const p of layout.packs) {
    storeBytes += p.packBytes + p.idxBytes
    // a clone or reference pack is the data file's bytes: kept whole while a block of it is live, never
    // copied out (that would make the second copy its mode avoids), deleted whole when none is
    if (isFilePack(p.id)) {
      if (p.keys.some((k) => reach.has(k))) continue
      doomed.push(p.id)
      freedBytes += p.packBytes + p.idxBytes
      continue
    }
    let live = 0
    const keepHere: Sweep['copy'] = []
    for (let i = 0; i < p.keys.length; i++) {
      const at = layout.blocks.get(p.keys[i])!
      const counted = at.pack === p.id && at.offset === p.offsets[i]
      if (counted && reach.has(p.keys[i])) {
        live += p.lengths[i]
        keepHere.push({ key: p.keys[i], pack: p.id, offset: p.offsets[i], length: p.lengths[i] })
      } else if (counted) garbageBytes += p.lengths[i]
    }
    if (live === p.packBytes && keepHere.length === p.keys.length) continue
    doomed.push(p.id)
    copy.push(...keepHere)
    freedBytes += p.packBytes + p.idxBytes
  }
  // the kept blocks move into the new pack, with a log line each
  let offset = 0
  for (const b of copy) {
    freedBytes -= b.length + `${b.key} ${offset} ${b.length}\n`.length
    offset += b.length
  }
  const now = Date.now()
  const orphans = layout.orphans.filter((o) => o.id.endsWith(GC_SUFFIX) || now - o.mtimeMs > ORPHAN_AGE_MS).map((o) => o.id)
  for (const o of layout.orphans) {
    storeBytes += o.bytes
    if (orphans.includes(o.id)) freedBytes += o.bytes
  }
  return { doomed, copy, orphans, garbageBytes, storeBytes, freedBytes }
}

/**
 * Copies the kept blocks of the doomed packs into one new pack (each read checked against its CID),
 * flushes it, writes and flushes its log, records the doomed packs in the journal, then deletes their
 * logs and packs, and the orphans.
 */
async function sweep(
  dataset: Dataset,
  packsDir: string,
  layout: StoreLayout,
  plan: Sweep,
  onProgress: GcOptions['onProgress'],
): Promise<void> {
  if (plan.copy.length > 0) {
    const id = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}${GC_SUFFIX}`
    const packFile = join(packsDir, id + '.pack')
    const idxFile = join(packsDir, id + '.idx')
    let lines = ''
    let copied = 0
    const fd = openOrThrow(packFile)
    try {
      let offset = 0
      for (const b of plan.copy) {
        const cid: CID = cidFromText(b.key)
        // read through the store: checked against the CID, so a damaged block is never carried over
        const bytes = await dataset.store.get(cid)
        let written = 0
        while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written, offset + written)
        lines += `${b.key} ${offset} ${bytes.length}\n`
        offset += bytes.length
        onProgress?.({ phase: 'copy', blocks: ++copied })
      }
      fsyncSync(fd)
    } catch (e) {
      closeSync(fd)
      await unlink(packFile).catch(() => {})
      throw e instanceof CairnError ? e : ioError('write', packFile, e)
    }
    closeSync(fd)
    // the log last: until it is whole, the old packs still hold every block
    const ifd = openOrThrow(idxFile)
    try {
      const text = Buffer.from(lines, 'latin1')
      let written = 0
      while (written < text.length) written += writeSync(ifd, text, written, text.length - written, written)
      fsyncSync(ifd)
    } catch (e) {
      throw ioError('write', idxFile, e)
    } finally {
      closeSync(ifd)
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
export async function du(options: { readonly dir?: string } = {}): Promise<DuResult> {
  return withDataset(options.dir, async (dataset) => {
    const layout = readLayout(join(dataset.store.root, 'packs'))
    let bytes = 0
    for (const b of layout.blocks.values()) bytes += b.length
    let diskBytes = 0
    for (const p of layout.packs) diskBytes += p.packBytes + p.idxBytes
    for (const o of layout.orphans) diskBytes += o.bytes
    const part = (r: Reach): DuPart => ({ blocks: r.keys.size, bytes: r.bytes })
    const head = await dataset.refs.head()
    const headReach = new Reach(dataset.store, layout.blocks)
    if (head) await headReach.release(head)
    const tagReach = new Reach(dataset.store, layout.blocks)
    for (const t of await dataset.refs.tags()) await tagReach.release(t.cid)
    const all = await markKept(dataset, layout, Infinity, true)
    return {
      store: { packs: layout.packs.length, diskBytes, blocks: layout.blocks.size, bytes },
      head: part(headReach),
      tags: part(tagReach),
      history: part(all),
      unreachable: { blocks: layout.blocks.size - all.keys.size, bytes: bytes - all.bytes },
    }
  })
}
