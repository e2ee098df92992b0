/**
 * Row-level diff of one modified tabular shard. Both versions of the shard are exported from the
 * block source into temporary files and read with the format's `rows()`. Rows are matched by the
 * card's primary key when it declares one for the shard, else by content (a multiset of row hashes).
 *
 * Memory: one 16-byte hash (and, with a key, the key's text) per row of the old shard, plus at most
 * `limit` sample rows per kind; never the shards themselves.
 */
import { createHash } from 'node:crypto'
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
export async function diffRows(source: BlockSource, path: string, before: CID, after: CID, options: DiffRowsOptions = {}): Promise<RowDiff> {
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
    return key ? await byKey(reader, fileA, fileB, key, limit) : await byContent(reader, fileA, fileB, limit)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function byKey(reader: FormatReader, fileA: string, fileB: string, key: readonly string[], limit: number): Promise<RowDiff> {
  const old = new Map<string, string>()
  for await (const row of reader.rows(fileA)) {
    if (key.some((k) => !(k in row))) return { status: 'skipped', reason: `the old shard has rows without the key column(s) ${key.join(', ')}` }
    old.set(keyText(row, key), rowHash(row))
  }
  let added = 0
  let changed = 0
  let unchanged = 0
  const addedSamples: Row[] = []
  const changedSamples = new Map<string, Row>()
  for await (const row of reader.rows(fileB)) {
    if (key.some((k) => !(k in row))) return { status: 'skipped', reason: `the new shard has rows without the key column(s) ${key.join(', ')}` }
    const k = keyText(row, key)
    const h = old.get(k)
    if (h === undefined) {
      added++
      if (addedSamples.length < limit) addedSamples.push(plain(row) as Row)
    } else {
      old.delete(k)
      if (h === rowHash(row)) unchanged++
      else {
        changed++
        if (changedSamples.size < limit) changedSamples.set(k, row)
      }
    }
  }
  // what is left in `old` was removed; a second pass over the old shard fetches the sample rows
  const removed = old.size
  const removedSamples: Row[] = []
  const changedRows: ChangedRow[] = []
  if (removed > 0 || changedSamples.size > 0) {
    for await (const row of reader.rows(fileA)) {
      const k = keyText(row, key)
      const now = changedSamples.get(k)
      if (now) changedRows.push(plain({ key: key.map((c) => row[c]), columns: columnChanges(row, now) }) as ChangedRow)
      else if (removedSamples.length < limit && old.has(k)) removedSamples.push(plain(row) as Row)
    }
  }
  return {
    status: 'compared',
    match: 'key',
    primaryKey: key,
    added,
    removed,
    changed,
    unchanged,
    samples: { added: addedSamples, removed: removedSamples, changed: changedRows },
  }
}

async function byContent(reader: FormatReader, fileA: string, fileB: string, limit: number): Promise<RowDiff> {
  const counts = new Map<string, number>()
  for await (const row of reader.rows(fileA)) {
    const h = rowHash(row)
    counts.set(h, (counts.get(h) ?? 0) + 1)
  }
  let added = 0
  let unchanged = 0
  const addedSamples: Row[] = []
  for await (const row of reader.rows(fileB)) {
    const h = rowHash(row)
    const n = counts.get(h)
    if (n) {
      unchanged++
      if (n === 1) counts.delete(h)
      else counts.set(h, n - 1)
    } else {
      added++
      if (addedSamples.length < limit) addedSamples.push(plain(row) as Row)
    }
  }
  let removed = 0
  for (const n of counts.values()) removed += n
  const removedSamples: Row[] = []
  if (removed > 0) {
    for await (const row of reader.rows(fileA)) {
      if (removedSamples.length >= limit) break
      const h = rowHash(row)
      const n = counts.get(h)
      if (n) {
        removedSamples.push(plain(row) as Row)
        if (n === 1) counts.delete(h)
        else counts.set(h, n - 1)
      }
    }
  }
  return {
    status: 'compared',
    match: 'content',
    added,
    removed,
    changed: 0,
    unchanged,
    samples: { added: addedSamples, removed: removedSamples, changed: [] },
  }
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

/** 16 bytes of sha-256 over the row's canonical text, as base64 (24 characters). */
function rowHash(row: Row): string {
  return createHash('sha256').update(canonical(row)).digest().subarray(0, 16).toString('base64')
}

/** A canonical text of a value: object keys sorted, bigints, bytes and dates spelled out. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`
    if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') }
    if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
    }
    return v
  }) ?? 'undefined'
}
