/**
 * Row-level diff of one modified tabular shard. Both versions of the shard are exported from the
 * block source into temporary files and read with the format's `rows()`. Rows are matched by the
 * card's primary key when it declares one for the shard, else by content (a multiset of row hashes).
 *
 * How: a first pass over each shard turns every row into one fixed-size record of hashes, kept in
 * typed arrays; each side's records are sorted in place (an MSD radix sort) and the two sorted sides
 * are merge-joined to count added / removed / changed / unchanged rows. A record is five 32-bit words:
 *
 * - with a primary key: 8 bytes of sha-256 over the key's canonical text, 8 bytes of sha-256 over
 *   the row's canonical text, and the row's ordinal (its 0-based position in the shard);
 * - by content: 16 bytes of sha-256 over the row's canonical text, and the row's ordinal.
 *
 * The hashed texts start with a random secret drawn for each diff, so rows cannot be made up to
 * collide. The samples (`limit` per kind: the first ones in file order) are picked by ordinal during
 * the merge, and fetched by second passes over the shards that stop after the last ordinal wanted.
 *
 * Memory bound: **20 bytes per row of each shard** — 40 bytes per row when both have n rows: two
 * shards of 20 M rows each take 800 MB (763 MiB), of 2.5 M rows each 100 MB. The records live in
 * chunks of 64 Ki records (1.25 MiB), so at most one partly used chunk per side and no reallocation
 * of the whole; the sort works in place (no second copy, a few KiB of bucket counters) and the merge
 * streams. On top: the `limit` sample rows of each kind, the format reader's buffers, and, only for
 * duplicate primary keys, 8 bytes per left-over row of the one key being merged. No row, key text or
 * hash string outlives its first-pass iteration. A shard holds at most 2^32 − 1 rows (the ordinal
 * is 32 bits); beyond that the diff is skipped.
 *
 * Exactness: rows whose canonical texts differ count as equal only if their hashes collide. By
 * content that takes 128 bits of sha-256 agreeing. By key, two different keys are confused when
 * their 64-bit key hashes agree: for n distinct keys the chance is about n² / 2^65 (1 in 90 000
 * for 20 M keys), and the effect is one changed row counted instead of an added and a removed one; a
 * changed row is counted as unchanged when its old and new 64-bit row hashes agree (2^-64 per
 * changed row).
 *
 * Duplicates: rows are matched as multisets. Identical rows (under one key, or by content) match
 * the first ones in file order first; by key, the old and new rows of one key left over after that
 * pair up in file order as changed rows; what remains is removed or added. With unique keys this is
 * plain matching by key, as before.
 */
import * as nodeCrypto from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { minimatch } from 'minimatch'
import type { CID } from '../cid.js'
import { readerFor } from '../formats/index.js'
import type { FormatReader, Row } from '../formats/interface.js'
import type { Card } from '../manifest.js'
import type { BlockSource } from '../store/blocks.js'
import { exportToFile } from '../unixfs/export.js'

/** A row whose key is on both sides with other values. */
export interface ChangedRow {
  /** The key's values, in the order of the primary key. */
  readonly key: readonly unknown[]
  /** Column name → value before and after, for the columns that differ only. */
  readonly columns: Record<string, { readonly before: unknown; readonly after: unknown }>
}

/** What the row diff of one shard found. */
export type RowDiff =
  | {
      readonly status: 'compared'
      /** `key`: matched by the primary key; `content`: by whole-row hashes. */
      readonly match: 'key' | 'content'
      readonly primaryKey?: readonly string[]
      readonly added: number
      readonly removed: number
      /** Key matching only: rows whose key is on both sides with other values. */
      readonly changed: number
      readonly unchanged: number
      /** Up to `limit` samples of each kind. */
      readonly samples: { readonly added: readonly Row[]; readonly removed: readonly Row[]; readonly changed: readonly ChangedRow[] }
    }
  | { readonly status: 'skipped'; readonly reason: string }

/** Options of {@link diffRows}. */
export interface DiffRowsOptions {
  /** The dataset card of the new version (its `shards[].primaryKey`). */
  readonly card?: Card
  /** Samples kept of each kind (default 5). */
  readonly limit?: number
}

/** The primary key the card declares for `path` (first matching rule with a key), if any. */
export function primaryKeyFor(card: Card | undefined, path: string): readonly string[] | undefined {
  const rule = (card?.shards ?? []).find((r) => r.primaryKey && minimatch(path, r.glob, { dot: true, matchBase: !r.glob.includes('/') }))
  return rule?.primaryKey
}

/**
 * Compares the rows of shard `path` between file CIDs `before` and `after`. Returns `skipped` with a
 * reason when the format has no row reader or a key column is missing on a side.
 *
 * @throws {CairnError} `MISSING_BLOCK` / `CORRUPT_BLOCK` for the shards' blocks, `INVALID_SHARD` when a
 *   shard cannot be read as its format, `IO` for the temporary files.
 */
export async function diffRows(
  source: BlockSource,
  path: string,
  before: CID,
  after: CID,
  options: DiffRowsOptions = {},
): Promise<RowDiff> {
  const reader = readerFor(path)
  if (!reader) return { status: 'skipped', reason: 'not a tabular format' }
  const limit = options.limit ?? 5
  const key = primaryKeyFor(options.card, path)
  const dir = await mkdtemp(join(tmpdir(), 'cairn-diff-'))
  try {
    const ext = path.slice(path.lastIndexOf('.'))
    const fileA = join(dir, `a${ext}`)
    const fileB = join(dir, `b${ext}`)
    await exportToFile(source, before, fileA)
    await exportToFile(source, after, fileB)
    return await diffRowFiles(reader, fileA, fileB, { primaryKey: key, limit })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** Options of {@link diffRowFiles}. */
export interface DiffRowFilesOptions {
  /** Match rows by these columns; without it (or with an empty list), by content. */
  readonly primaryKey?: readonly string[]
  /** Samples kept of each kind (default 5). */
  readonly limit?: number
}

/**
 * The row diff of two shard files of one format, already on disk: what {@link diffRows} does after
 * exporting the shards. Memory: see the module's documentation (20 bytes per row of each file).
 *
 * @throws {CairnError} like the reader's `rows()` (`INVALID_SHARD`, `INVALID_ROW`, `IO`).
 */
export async function diffRowFiles(
  reader: FormatReader,
  fileA: string,
  fileB: string,
  options: DiffRowFilesOptions = {},
): Promise<RowDiff> {
  const key = options.primaryKey && options.primaryKey.length > 0 ? options.primaryKey : undefined
  const limit = Math.max(0, Math.floor(options.limit ?? 5))
  // a secret prefix for the hashes: nobody can make up rows whose hashes collide for this diff
  const salt = nodeCrypto.randomBytes(16).toString('hex')
  const old = new Records()
  const skipA = await readRecords(reader, fileA, key, salt, old, 'old')
  if (skipA) return { status: 'skipped', reason: skipA }
  const now = new Records()
  const skipB = await readRecords(reader, fileB, key, salt, now, 'new')
  if (skipB) return { status: 'skipped', reason: skipB }
  await sortRecords(old)
  await sortRecords(now)
  const merged = await mergeRecords(old, now, key !== undefined, limit)
  old.clear()
  now.clear()

  // second passes: the sample rows, by ordinal, each pass stopping after the last one it needs
  const addedSamples: Row[] = []
  const changedAfter = new Map<number, Row>()
  const changedRows: ChangedRow[] = []
  const removedSamples: Row[] = []
  const addedOrds = merged.addedSamples.keys
  const changedOrds = merged.changedSamples.keys // ordinals in the new shard
  if (addedOrds.length > 0 || changedOrds.length > 0) {
    const isAdded = new Set(addedOrds)
    await rowsAt(reader, fileB, [...addedOrds, ...changedOrds], (row, ord) => {
      if (isAdded.has(ord)) addedSamples.push(plain(row) as Row)
      else changedAfter.set(ord, row)
    })
  }
  const removedOrds = merged.removedSamples.keys
  // ordinal in the old shard → ordinal in the new shard, of the changed samples
  const changedPairs = new Map(merged.changedSamples.values.map((a, i) => [a, changedOrds[i]]))
  if (removedOrds.length > 0 || changedPairs.size > 0) {
    const isRemoved = new Set(removedOrds)
    await rowsAt(reader, fileA, [...removedOrds, ...changedPairs.keys()], (row, ord) => {
      if (isRemoved.has(ord)) removedSamples.push(plain(row) as Row)
      else {
        const after = changedAfter.get(changedPairs.get(ord) as number) as Row
        changedRows.push(plain({ key: (key ?? []).map((c) => row[c]), columns: columnChanges(row, after) }) as ChangedRow)
      }
    })
  }
  const { added, removed, changed, unchanged } = merged
  const samples = { added: addedSamples, removed: removedSamples, changed: changedRows }
  return key
    ? { status: 'compared', match: 'key', primaryKey: key, added, removed, changed, unchanged, samples }
    : { status: 'compared', match: 'content', added, removed, changed: 0, unchanged, samples }
}

/** Calls `visit` with the rows of `file` at the given ordinals, in file order; stops after the last. */
async function rowsAt(
  reader: FormatReader,
  file: string,
  ordinals: readonly number[],
  visit: (row: Row, ordinal: number) => void,
): Promise<void> {
  const wanted = [...new Set(ordinals)].sort((x, y) => x - y)
  if (wanted.length === 0) return
  let next = 0
  let ord = 0
  for await (const row of reader.rows(file)) {
    if (ord === wanted[next]) {
      visit(row, ord)
      if (++next === wanted.length) break
    }
    ord++
  }
}

// ---------------------------------------------------------------------------------------------
// Records: five 32-bit words per row, in chunks

/** Words per record: hash words 0–3, then the ordinal; all five are the sort key, most significant first. */
const W = 5
const CHUNK_BITS = 16
/** Records per full chunk (64 Ki records = 1.25 MiB). */
const CHUNK = 1 << CHUNK_BITS
const CHUNK_MASK = CHUNK - 1
/** Records in the first chunk when it is created; it doubles until it is a full chunk. */
const FIRST_CHUNK = 1024
/** Rows per shard: the ordinal is one 32-bit word. */
const MAX_ROWS = 0xffffffff

/**
 * A growable array of records in chunks of {@link CHUNK} records (the first one starts small and
 * doubles), so a large side never needs one huge reallocation and wastes at most one chunk.
 */
class Records {
  chunks: Uint32Array[] = []
  length = 0

  push(w0: number, w1: number, w2: number, w3: number, ordinal: number): void {
    const i = this.length
    const c = i >>> CHUNK_BITS
    const o = (i & CHUNK_MASK) * W
    let chunk = this.chunks[c]
    if (chunk === undefined || o >= chunk.length) chunk = this.grow(c)
    chunk[o] = w0
    chunk[o + 1] = w1
    chunk[o + 2] = w2
    chunk[o + 3] = w3
    chunk[o + 4] = ordinal
    this.length = i + 1
  }

  /** Word `w` of record `i`. */
  word(i: number, w: number): number {
    return this.chunks[i >>> CHUNK_BITS][(i & CHUNK_MASK) * W + w]
  }

  clear(): void {
    this.chunks = []
    this.length = 0
  }

  private grow(c: number): Uint32Array {
    const old = this.chunks[c]
    let chunk: Uint32Array
    if (old === undefined) chunk = new Uint32Array((c === 0 ? FIRST_CHUNK : CHUNK) * W)
    else {
      chunk = new Uint32Array(Math.min(old.length * 2, CHUNK * W))
      chunk.set(old)
    }
    this.chunks[c] = chunk
    return chunk
  }
}

/**
 * First pass over a shard: one record per row into `out`. Returns why the diff is skipped (a key
 * column missing, too many rows), else `undefined`.
 */
async function readRecords(
  reader: FormatReader,
  file: string,
  key: readonly string[] | undefined,
  salt: string,
  out: Records,
  side: 'old' | 'new',
): Promise<string | undefined> {
  let ord = 0
  for await (const row of reader.rows(file)) {
    if (ord === MAX_ROWS) return `the ${side} shard has more than ${MAX_ROWS} rows`
    if (key) {
      if (key.some((k) => !(k in row))) return `the ${side} shard has rows without the key column(s) ${key.join(', ')}`
      const k = sha256(salt + keyText(row, key))
      const r = sha256(salt + canonical(row))
      out.push(word32(k, 0), word32(k, 4), word32(r, 0), word32(r, 4), ord)
    } else {
      const r = sha256(salt + canonical(row))
      out.push(word32(r, 0), word32(r, 4), word32(r, 8), word32(r, 12), ord)
    }
    ord++
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Sorting: in-place MSD radix sort (American flag sort) on all five words (the ordinal last, so
// the order is total and equal hashes come in file order), 8 bits per level

/** Ranges this short are finished by insertion sort. */
const SMALL = 32
/** 8-bit digits of a record. */
const DIGITS = W * 4

/** Per-level bucket counters (a level's buckets must survive the recursion into deeper levels). */
const counts = Array.from({ length: DIGITS }, () => new Float64Array(256))
const nexts = Array.from({ length: DIGITS }, () => new Float64Array(256))
const ends = Array.from({ length: DIGITS }, () => new Float64Array(256))
const held = new Uint32Array(W)

/** Sorts the records by words 0–4, ascending. Yields to the event loop now and then. */
async function sortRecords(recs: Records): Promise<void> {
  const n = recs.length
  if (n <= SMALL) {
    insertionSort(recs.chunks, 0, n, 0)
    return
  }
  // the first level here, so that the event loop gets a turn between its buckets
  partition(recs.chunks, 0, n, 0)
  const count = counts[0]
  const end = ends[0]
  const bounds = Array.from(end)
  const sizes = Array.from(count)
  let sinceYield = 0
  for (let b = 0; b < 256; b++) {
    const size = sizes[b]
    if (size > 1) sortRange(recs.chunks, bounds[b] - size, bounds[b], 1)
    sinceYield += size
    if (sinceYield >= 1 << 20) {
      sinceYield = 0
      await yieldTurn()
    }
  }
}

function sortRange(chunks: Uint32Array[], lo: number, hi: number, d: number): void {
  if (hi - lo <= SMALL) {
    insertionSort(chunks, lo, hi, d >>> 2)
    return
  }
  partition(chunks, lo, hi, d)
  if (d + 1 === DIGITS) return
  const count = counts[d]
  const end = ends[d]
  for (let b = 0; b < 256; b++) {
    const size = count[b]
    if (size > 1) sortRange(chunks, end[b] - size, end[b], d + 1)
  }
}

/** Permutes records `[lo, hi)` in place into 256 buckets by digit `d`; fills `counts[d]`, `ends[d]`. */
function partition(chunks: Uint32Array[], lo: number, hi: number, d: number): void {
  const w = d >>> 2
  const shift = 24 - ((d & 3) << 3)
  const count = counts[d]
  const next = nexts[d]
  const end = ends[d]
  count.fill(0)
  for (let i = lo; i < hi; i++) count[(chunks[i >>> CHUNK_BITS][(i & CHUNK_MASK) * W + w] >>> shift) & 0xff]++
  let at = lo
  for (let b = 0; b < 256; b++) {
    next[b] = at
    at += count[b]
    end[b] = at
  }
  // all in one bucket (equal digits, e.g. duplicate rows): nothing to move
  if (count[(chunks[lo >>> CHUNK_BITS][(lo & CHUNK_MASK) * W + w] >>> shift) & 0xff] === hi - lo) return
  for (let b = 0; b < 256; b++) {
    while (next[b] < end[b]) {
      const i = next[b]
      const ci = chunks[i >>> CHUNK_BITS]
      const oi = (i & CHUNK_MASK) * W
      let t = (ci[oi + w] >>> shift) & 0xff
      if (t === b) {
        next[b] = i + 1
        continue
      }
      // carry record i along its cycle until a record of bucket b comes back for slot i
      for (let k = 0; k < W; k++) held[k] = ci[oi + k]
      do {
        const j = next[t]++
        const cj = chunks[j >>> CHUNK_BITS]
        const oj = (j & CHUNK_MASK) * W
        for (let k = 0; k < W; k++) {
          const x = cj[oj + k]
          cj[oj + k] = held[k]
          held[k] = x
        }
        t = (held[w] >>> shift) & 0xff
      } while (t !== b)
      for (let k = 0; k < W; k++) ci[oi + k] = held[k]
      next[b] = i + 1
    }
  }
}

/** Sorts `[lo, hi)` by words `from`–4 (the words before are equal in the range). */
function insertionSort(chunks: Uint32Array[], lo: number, hi: number, from: number): void {
  for (let i = lo + 1; i < hi; i++) {
    const ci = chunks[i >>> CHUNK_BITS]
    const oi = (i & CHUNK_MASK) * W
    for (let k = 0; k < W; k++) held[k] = ci[oi + k]
    let j = i - 1
    for (; j >= lo; j--) {
      const cj = chunks[j >>> CHUNK_BITS]
      const oj = (j & CHUNK_MASK) * W
      let greater = false
      for (let k = from; k < W; k++) {
        const x = cj[oj + k]
        if (x !== held[k]) {
          greater = x > held[k]
          break
        }
      }
      if (!greater) break
      const cn = chunks[(j + 1) >>> CHUNK_BITS]
      const on = ((j + 1) & CHUNK_MASK) * W
      for (let k = 0; k < W; k++) cn[on + k] = cj[oj + k]
    }
    const cn = chunks[(j + 1) >>> CHUNK_BITS]
    const on = ((j + 1) & CHUNK_MASK) * W
    for (let k = 0; k < W; k++) cn[on + k] = held[k]
  }
}

function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

// ---------------------------------------------------------------------------------------------
// Merge-join of the two sorted sides

/** The `limit` smallest keys offered (each with a value), in ascending order. */
class Smallest {
  readonly keys: number[] = []
  readonly values: number[] = []
  constructor(private readonly limit: number) {}

  offer(key: number, value = 0): void {
    const n = this.keys.length
    if (this.limit === 0 || (n === this.limit && key >= this.keys[n - 1])) return
    let at = n
    while (at > 0 && this.keys[at - 1] > key) at--
    this.keys.splice(at, 0, key)
    this.values.splice(at, 0, value)
    if (this.keys.length > this.limit) {
      this.keys.pop()
      this.values.pop()
    }
  }
}

interface Merged {
  added: number
  removed: number
  changed: number
  unchanged: number
  /** Ordinals in the new shard. */
  readonly addedSamples: Smallest
  /** Ordinals in the old shard. */
  readonly removedSamples: Smallest
  /** Keys: ordinals in the new shard; values: the ordinals in the old shard they are paired with. */
  readonly changedSamples: Smallest
}

/**
 * The records of one side within a group (equal words 0–1) that are left over after matching the
 * records equal on words 2–3 with the other side's group: of a run of `a` equal records facing `b`
 * on the other side, the last `a − min(a, b)` by position, which are the last ones in file order
 * (the ordinal breaks ties in the sort).
 */
class Leftovers {
  private run: number
  private other: number
  private at = 0
  private left = 0

  constructor(
    private readonly own: Records,
    start: number,
    private readonly end: number,
    private readonly theirs: Records,
    theirStart: number,
    private readonly theirEnd: number,
  ) {
    this.run = start
    this.other = theirStart
  }

  /** The next left-over position, or −1. */
  next(): number {
    while (this.left === 0) {
      if (this.run >= this.end) return -1
      const { own, theirs } = this
      const p = this.run
      const h2 = own.word(p, 2)
      const h3 = own.word(p, 3)
      let pe = p + 1
      while (pe < this.end && own.word(pe, 2) === h2 && own.word(pe, 3) === h3) pe++
      let q = this.other
      while (q < this.theirEnd && (theirs.word(q, 2) < h2 || (theirs.word(q, 2) === h2 && theirs.word(q, 3) < h3))) q++
      let qe = q
      while (qe < this.theirEnd && theirs.word(qe, 2) === h2 && theirs.word(qe, 3) === h3) qe++
      const matched = Math.min(pe - p, qe - q)
      this.at = p + matched
      this.left = pe - p - matched
      this.run = pe
      this.other = qe
    }
    this.left--
    return this.at++
  }
}

/** The end of the group (records with equal words 0–1) that starts at `i`. */
function groupEnd(recs: Records, i: number): number {
  const h0 = recs.word(i, 0)
  const h1 = recs.word(i, 1)
  let j = i + 1
  while (j < recs.length && recs.word(j, 0) === h0 && recs.word(j, 1) === h1) j++
  return j
}

/**
 * Counts the rows of sorted sides `a` (old) and `b` (new). Groups are records with equal words 0–1
 * (the key hash; by content the first half of the row hash), matched by words 2–3 within a group.
 * With `byKey`, left-over old and new records of a group pair up as changed rows.
 */
async function mergeRecords(a: Records, b: Records, byKey: boolean, limit: number): Promise<Merged> {
  const m: Merged = {
    added: 0,
    removed: 0,
    changed: 0,
    unchanged: 0,
    addedSamples: new Smallest(limit),
    removedSamples: new Smallest(limit),
    changedSamples: new Smallest(limit),
  }
  const na = a.length
  const nb = b.length
  let i = 0
  let j = 0
  let sinceYield = 0
  while (i < na || j < nb) {
    let c: number
    if (i >= na) c = 1
    else if (j >= nb) c = -1
    else {
      const x0 = a.word(i, 0)
      const y0 = b.word(j, 0)
      if (x0 !== y0) c = x0 < y0 ? -1 : 1
      else {
        const x1 = a.word(i, 1)
        const y1 = b.word(j, 1)
        c = x1 === y1 ? 0 : x1 < y1 ? -1 : 1
      }
    }
    const i0 = i
    const j0 = j
    if (c < 0) {
      i = groupEnd(a, i)
      m.removed += i - i0
      for (let p = i0; p < i; p++) m.removedSamples.offer(a.word(p, 4))
    } else if (c > 0) {
      j = groupEnd(b, j)
      m.added += j - j0
      for (let q = j0; q < j; q++) m.addedSamples.offer(b.word(q, 4))
    } else {
      i = groupEnd(a, i)
      j = groupEnd(b, j)
      if (i - i0 === 1 && j - j0 === 1) {
        // the common case: one record on each side
        if (a.word(i0, 2) === b.word(j0, 2) && a.word(i0, 3) === b.word(j0, 3)) m.unchanged++
        else if (byKey) {
          m.changed++
          m.changedSamples.offer(b.word(j0, 4), a.word(i0, 4))
        } else {
          m.removed++
          m.added++
          m.removedSamples.offer(a.word(i0, 4))
          m.addedSamples.offer(b.word(j0, 4))
        }
      } else {
        const left = new Leftovers(a, i0, i, b, j0, j)
        const right = new Leftovers(b, j0, j, a, i0, i)
        let leftA = 0
        if (byKey) {
          // rows sharing a key (duplicate keys): the left-over old and new rows pair up in file order
          const olds: number[] = []
          const news: number[] = []
          for (let p = left.next(); p >= 0; p = left.next()) olds.push(a.word(p, 4))
          for (let q = right.next(); q >= 0; q = right.next()) news.push(b.word(q, 4))
          olds.sort((x, y) => x - y)
          news.sort((x, y) => x - y)
          const pairs = Math.min(olds.length, news.length)
          leftA = olds.length
          m.changed += pairs
          m.removed += olds.length - pairs
          m.added += news.length - pairs
          for (let k = 0; k < pairs; k++) m.changedSamples.offer(news[k], olds[k])
          for (let k = pairs; k < olds.length; k++) m.removedSamples.offer(olds[k])
          for (let k = pairs; k < news.length; k++) m.addedSamples.offer(news[k])
        } else {
          for (let p = left.next(); p >= 0; p = left.next()) {
            leftA++
            m.removed++
            m.removedSamples.offer(a.word(p, 4))
          }
          for (let q = right.next(); q >= 0; q = right.next()) {
            m.added++
            m.addedSamples.offer(b.word(q, 4))
          }
        }
        m.unchanged += i - i0 - leftA
      }
    }
    sinceYield += i - i0 + (j - j0)
    if (sinceYield >= 1 << 20) {
      sinceYield = 0
      await yieldTurn()
    }
  }
  return m
}

/**
 * A row made safe for JSON: bigints become numbers when exact, else decimal strings; bytes become
 * base64 strings; dates ISO strings.
 */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (value instanceof Date) return value.toISOString()
  if (Array.isArray(value)) return value.map(plain)
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  return value
}

function columnChanges(before: Row, after: Row): ChangedRow['columns'] {
  const out: Record<string, { before: unknown; after: unknown }> = {}
  for (const c of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (canonical(before[c]) !== canonical(after[c])) out[c] = { before: before[c], after: after[c] }
  }
  return out
}

function keyText(row: Row, key: readonly string[]): string {
  return canonical(key.map((k) => row[k]))
}

/**
 * sha-256 of the UTF-8 text as a `binary` (latin1) string, one character per byte: several times
 * cheaper than a `Buffer` per row. The one-shot `crypto.hash` where Node has it (20.12+), else a `Hash`.
 */
const sha256: (text: string) => string =
  typeof nodeCrypto.hash === 'function'
    ? (text) => nodeCrypto.hash('sha256', text, 'binary')
    : (text) => nodeCrypto.createHash('sha256').update(text).digest('binary')

/** The big-endian 32-bit word at byte `at` of a `binary` digest. */
function word32(digest: string, at: number): number {
  return (
    ((digest.charCodeAt(at) << 24) | (digest.charCodeAt(at + 1) << 16) | (digest.charCodeAt(at + 2) << 8) | digest.charCodeAt(at + 3)) >>> 0
  )
}

/** A canonical text of a value: object keys sorted, bigints, bytes and dates spelled out. */
function canonical(value: unknown): string {
  const flat = flatText(value)
  if (flat !== undefined) return flat
  return (
    JSON.stringify(value, (_k, v: unknown) => {
      if (typeof v === 'bigint') return `${v}n`
      if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') }
      if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)) {
        return Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, (v as Record<string, unknown>)[k]]),
        )
      }
      return v
    }) ?? 'undefined'
  )
}

/** The keys of the last object {@link flatText} saw, and the same sorted: rows of a shard share them. */
let shapeKeys: readonly string[] = []
let shapeSorted: readonly string[] = []
/** Whether {@link shapeKeys} are sorted already: the object's own text is then canonical. */
let shapeInOrder = true

/**
 * {@link canonical} of a plain object or an array whose values are all strings, numbers, booleans,
 * `null` or `undefined` (most rows, every key of scalars), made without a replacer: the same text,
 * several times faster. `undefined` when the value is not of that kind.
 */
function flatText(value: unknown): string | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isScalar(value[i])) return undefined
    return JSON.stringify(value)
  }
  if (value === null || typeof value !== 'object') return undefined
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return undefined
  const keys = Object.keys(value)
  let same = keys.length === shapeKeys.length
  for (let i = 0; same && i < keys.length; i++) same = keys[i] === shapeKeys[i]
  if (!same) {
    // `__proto__` would set the prototype of the copy below instead of a property
    if (keys.includes('__proto__')) return undefined
    shapeKeys = keys
    shapeSorted = [...keys].sort()
    shapeInOrder = shapeSorted.every((k, i) => k === keys[i])
  }
  if (shapeInOrder) {
    for (let i = 0; i < keys.length; i++) if (!isScalar((value as Record<string, unknown>)[keys[i]])) return undefined
    return JSON.stringify(value)
  }
  const sorted: Record<string, unknown> = {}
  for (const k of shapeSorted) {
    const v = (value as Record<string, unknown>)[k]
    if (!isScalar(v)) return undefined
    sorted[k] = v
  }
  return JSON.stringify(sorted)
}

function isScalar(v: unknown): boolean {
  const t = typeof v
  return v === null || t === 'string' || t === 'number' || t === 'boolean' || t === 'undefined'
}
