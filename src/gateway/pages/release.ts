/**
 * What the release page shows, gathered from verified blocks: the card, totals, the files (first
 * {@link MAX_FILES}), each distinct schema, the first rows of a few tabular shards, the history and
 * what changed against the parent. The same value is the page's JSON (`Accept: application/json`).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CID } from '../../cid.js'
import { diffVersions, type DiffResult } from '../../diff.js'
import { isCairnError } from '../../errors.js'
import { readerFor } from '../../formats/index.js'
import { walkEntries } from '../../shard-index/prolly.js'
import { decodeManifest, type Card, type SchemaBlock, type Totals, type VersionManifest } from '../../manifest.js'
import type { BlockSource } from '../../store/blocks.js'
import { exportToFile } from '../../unixfs/export.js'
import { readCardBlock, readVersion } from '../../version.js'

/** Files listed on a page; the totals count them all. */
export const MAX_FILES = 1000
/** Tabular shards previewed, their rows, and the largest shard previewed (bytes). */
export const PREVIEW_SHARDS = 6
export const PREVIEW_ROWS = 30
export const PREVIEW_MAX_BYTES = 64 * 1024 * 1024
/** Versions of the history shown. */
export const HISTORY = 20
/** Rows are compared against the parent only when at most this many tabular shards of at most this many bytes (both sides) changed. */
export const ROW_DIFF_SHARDS = 10
export const ROW_DIFF_MAX_BYTES = 64 * 1024 * 1024

/** One file of the table. */
export interface FileRow {
  readonly path: string
  readonly size: number
  readonly format: string
  readonly rows?: number
  readonly cid: string
  readonly schema?: string
}

/** The first rows of one shard. */
export interface Preview {
  readonly path: string
  readonly format: string
  readonly columns: readonly string[]
  /** Cell values as text (JSON for anything but strings). */
  readonly rows: readonly (readonly string[])[]
  /** Why there is no preview, when there is none. */
  readonly skipped?: string
}

/** The release page's content. */
export interface ReleaseView {
  readonly version: string
  readonly name: string
  readonly created: string
  readonly message: string
  readonly parent: string | null
  readonly profile: string
  readonly tree: string
  readonly card: Card
  readonly totals: Totals
  readonly files: readonly FileRow[]
  /** True when the version has more files than {@link MAX_FILES}. */
  readonly filesTruncated: boolean
  readonly schemas: readonly { readonly cid: string; readonly format: string; readonly fields: SchemaBlock['fields'] }[]
  readonly previews: readonly Preview[]
  readonly history: readonly { readonly cid: string; readonly created: string; readonly message: string; readonly totals: Totals }[]
  /** Against the parent; absent for a first version, or when the parent's blocks are not here (`diffSkipped` says why). */
  readonly diff?: {
    readonly parent: string
    readonly counts: DiffResult['counts']
    readonly shards: readonly {
      readonly status: string
      readonly path: string
      readonly from?: string
      readonly rows?: { readonly added: number; readonly removed: number; readonly changed: number; readonly unchanged: number }
    }[]
    readonly card: readonly { readonly path: string; readonly kind: string }[]
  }
  readonly diffSkipped?: string
}

/** Gathers the page of version `cid`. Throws what the source throws for the version's own blocks. */
export async function releaseView(source: BlockSource, cid: CID): Promise<ReleaseView> {
  const v = await readVersion(source, cid)
  const card = await readCardBlock(source, v.card)
  const files: FileRow[] = []
  const schemaCids = new Map<string, CID>()
  let filesTruncated = false
  const tabular: { path: string; cid: CID; size: number; format: string }[] = []
  for await (const e of walkEntries(source, v.index)) {
    if (files.length >= MAX_FILES) {
      filesTruncated = true
      break
    }
    files.push({ path: e.path, size: e.size, format: e.format, rows: e.rows, cid: e.cid.toString(), schema: e.schema?.toString() })
    if (e.schema) schemaCids.set(e.schema.toString(), e.schema)
    if (e.format !== 'bytes' && tabular.length < PREVIEW_SHARDS) tabular.push({ path: e.path, cid: e.cid, size: e.size, format: e.format })
  }
  const schemas = []
  for (const [text, s] of schemaCids) {
    const block = decodeManifest('cairn.schema', s, await source.get(s))
    schemas.push({ cid: text, format: block.format, fields: block.fields })
  }
  const previews: Preview[] = []
  for (const t of tabular) previews.push(await preview(source, t))
  return {
    version: cid.toString(),
    name: v.name,
    created: v.created,
    message: v.message,
    parent: v.parent?.toString() ?? null,
    profile: v.profile,
    tree: v.tree.toString(),
    card,
    totals: v.totals,
    files,
    filesTruncated,
    schemas,
    previews,
    history: await history(source, v),
    ...(await parentDiff(source, cid, v)),
  }
}

async function preview(source: BlockSource, shard: { path: string; cid: CID; size: number; format: string }): Promise<Preview> {
  const empty = { path: shard.path, format: shard.format, columns: [], rows: [] }
  const reader = readerFor(shard.path)
  if (reader === undefined) return { ...empty, skipped: 'no reader for this file name' }
  if (shard.size > PREVIEW_MAX_BYTES) return { ...empty, skipped: `larger than ${PREVIEW_MAX_BYTES / 1048576} MiB` }
  const dir = await mkdtemp(join(tmpdir(), 'cairn-preview-'))
  try {
    const file = join(dir, 'shard' + shard.path.slice(shard.path.lastIndexOf('.')))
    await exportToFile(source, shard.cid, file)
    const columns: string[] = []
    const rows: Record<string, unknown>[] = []
    for await (const row of reader.rows(file)) {
      for (const k of Object.keys(row)) if (!columns.includes(k)) columns.push(k)
      rows.push(row)
      if (rows.length >= PREVIEW_ROWS) break
    }
    return { ...empty, columns, rows: rows.map((r) => columns.map((c) => cell(r[c]))) }
  } catch (e) {
    return { ...empty, skipped: `cannot be read: ${(e as Error).message}` }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

function cell(value: unknown): string {
  if (value === undefined || value === null) return ''
  if (typeof value === 'string') return value
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Date) return value.toISOString()
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value)
  } catch {
    return String(value)
  }
}

async function history(source: BlockSource, v: VersionManifest): Promise<ReleaseView['history']> {
  const out: { cid: string; created: string; message: string; totals: Totals }[] = []
  let at = v.parent
  while (at !== null && out.length < HISTORY) {
    let p: VersionManifest
    try {
      p = await readVersion(source, at)
    } catch (e) {
      if (isCairnError(e, 'MISSING_BLOCK')) break
      throw e
    }
    out.push({ cid: at.toString(), created: p.created, message: p.message, totals: p.totals })
    at = p.parent
  }
  return out
}

async function parentDiff(source: BlockSource, cid: CID, v: VersionManifest): Promise<Pick<ReleaseView, 'diff' | 'diffSkipped'>> {
  if (v.parent === null) return {}
  try {
    let d = await diffVersions(source, v.parent, cid, { skipHistory: true })
    // rows are read from both sides' shards: only when that is small enough for a page
    const modified = d.shards.filter((s) => s.status === 'modified' && s.after?.format !== 'bytes')
    const bytes = modified.reduce((n, s) => n + (s.before?.size ?? 0) + (s.after?.size ?? 0), 0)
    if (modified.length > 0 && modified.length <= ROW_DIFF_SHARDS && bytes <= ROW_DIFF_MAX_BYTES) {
      d = await diffVersions(source, v.parent, cid, { skipHistory: true, rows: true, limit: 0 })
    }
    return {
      diff: {
        parent: v.parent.toString(),
        counts: d.counts,
        shards: d.shards.slice(0, MAX_FILES).map((s) => ({
          status: s.status,
          path: s.path,
          from: s.from,
          rows:
            s.rows?.status === 'compared'
              ? { added: s.rows.added, removed: s.rows.removed, changed: s.rows.changed, unchanged: s.rows.unchanged }
              : undefined,
        })),
        card: d.card.map((c) => ({ path: c.path, kind: c.kind })),
      },
    }
  } catch (e) {
    if (isCairnError(e, 'MISSING_BLOCK')) return { diffSkipped: `the parent's blocks are not held here (${e.message})` }
    throw e
  }
}
