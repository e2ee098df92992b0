/**
 * `diff`: what changed between two versions. The two shard indexes are walked together and every
 * subtree whose CID is equal on both sides is skipped (src/diff/index-walk.ts), so the cost follows
 * the number of changes, not the size of the dataset. Shards are reported added, removed, modified
 * (same path, new CID) or renamed (same CID, new path), with their schema changes; the cards are
 * compared field by field; and the two parent chains tell whether the versions share history.
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { FallbackSource } from './car/source.js'
import { openSources } from './sources/index.js'
import { DAG_PB, RAW, tryParseCid, type CID, type Link } from './cid.js'
import { openDataset, type Dataset } from './dataset.js'
import { diffIndexes, type EntryChange } from './diff/index-walk.js'
import { diffRows, type RowDiff } from './diff/rows.js'
import { deepDiff, diffFields, type SchemaChange, type ValueChange } from './diff/values.js'
import { CairnError, isCairnError } from './errors.js'
import type { FormatName } from './formats/interface.js'
import { comparePaths, decodeManifest, type SchemaBlock, type ShardEntry, type Totals, type VersionManifest } from './manifest.js'
import type { BlockSource } from './store/blocks.js'
import { readCardBlock, readVersion, resolveRef } from './version.js'
import { lineageChanges, type LineageChange } from './lineage/diff.js'

export { diffIndexes, type DiffIndexesOptions, type EntryChange, type IndexDiff, type IndexDiffProgress } from './diff/index-walk.js'
export type { FieldChange, SchemaChange, ValueChange } from './diff/values.js'
export { diffRows, primaryKeyFor, type RowDiff, type ChangedRow, type DiffRowsOptions } from './diff/rows.js'

/** How far back each parent chain is followed to find a common ancestor. */
export const MAX_ANCESTORS = 1000

/** Options of {@link diff}: the two refs, where blocks come from, and what to compare beyond the index. */
export interface DiffOptions {
  /** The dataset folder or a folder inside it (default: the current folder). Not needed when both refs are CIDs and `from` holds them. */
  readonly dir?: string
  /** The old side: a CID, `HEAD`, `HEAD~n` or a tag. */
  readonly a: string
  /** The new side, as `a`. */
  readonly b: string
  /**
   * Where to read blocks the local store lacks, tried in order: trustless-gateway URLs, CAR files,
   * `dir:` folders, dataset folders (as `cairn clone --from` takes them). Every block is verified.
   */
  readonly from?: string | readonly string[]
  /** Index nodes fetched at once (default 16). */
  readonly concurrency?: number
  /** Also compare the rows of modified tabular shards ({@link ShardChange.rows}); reads those shards' bytes. */
  readonly rows?: boolean
  /** With `rows`: sample rows kept per kind and shard (default 5). */
  readonly limit?: number
  readonly onProgress?: (progress: DiffProgress) => void
}

/** Progress of a diff. */
export interface DiffProgress {
  readonly phase: 'versions' | 'index' | 'schemas' | 'rows'
  /** The shard whose rows are being compared (phase `rows`). */
  readonly path?: string
  /** Index nodes read so far. */
  readonly nodesRead: number
}

/** One side of a diff: the version and what it links to. */
export interface VersionSide {
  readonly cid: Link<VersionManifest>
  readonly created: string
  readonly message: string
  readonly parent: CID | null
  readonly totals: Totals
}

/** A shard entry's facts (its path is in the {@link ShardChange}). */
export interface ShardSide {
  readonly cid: CID
  readonly size: number
  readonly format: FormatName
  readonly rows?: number
  readonly schema?: Link<SchemaBlock>
}

/** How one shard changed between the two versions. */
export interface ShardChange {
  /**
   * `added` / `removed`: the path is on one side only (and no shard with the same CID took its place);
   * `modified`: the same path holds other bytes (or other facts); `renamed`: the same bytes (CID) moved
   * from {@link ShardChange.from} to {@link ShardChange.path}.
   */
  readonly status: 'added' | 'removed' | 'modified' | 'renamed'
  /** The shard's path: the new one, or for `removed` the old one. */
  readonly path: string
  /** `renamed` only: the old path. */
  readonly from?: string
  /** The shard in the old version (absent when added). */
  readonly before?: ShardSide
  /** The shard in the new version (absent when removed). */
  readonly after?: ShardSide
  /** `modified` only, when the shard's schema block changed: fields added, removed, retyped. */
  readonly schema?: SchemaChange
  /** `modified` tabular shards only, when rows were asked for: the row diff, or why it was skipped. */
  readonly rows?: RowDiff
}

/** Shard counts by status. */
export interface ChangeCounts {
  readonly added: number
  readonly removed: number
  readonly modified: number
  readonly renamed: number
}

/** Everything {@link diff} found. */
export interface DiffResult {
  readonly a: VersionSide
  readonly b: VersionSide
  /** True when the shards or the card differ (message, date and parent are not compared). */
  readonly changed: boolean
  /** True when the parent chains meet within {@link MAX_ANCESTORS} versions (one may be the other's ancestor). */
  readonly sharedHistory: boolean
  /** The nearest version both chains reach, or null. */
  readonly commonAncestor: CID | null
  /** Shard changes in path order. */
  readonly shards: readonly ShardChange[]
  readonly counts: ChangeCounts
  /** Field-by-field changes of the dataset card (JSON pointers). */
  readonly card: readonly ValueChange[]
  /** Changes of the card's `derivedFrom` entries (sources added, removed, or with another role or selection). */
  readonly lineage: readonly LineageChange[]
  readonly totals: { readonly before: Totals; readonly after: Totals }
  /** What the walk cost: index nodes read on both sides, and the taller index's height. */
  readonly stats: { readonly indexNodesRead: number; readonly depth: number }
}

/**
 * Compares the versions `a` (old) and `b` (new). Blocks come from the dataset's store and, when
 * `from` is given, from that CAR file for blocks the store lacks; only the index nodes on the paths of
 * changed shards are read. Versions without shared history are compared all the same
 * (`sharedHistory: false`).
 *
 * @throws {CairnError} `BAD_REF` for a ref that does not resolve; `INVALID_MANIFEST` when a CID is not
 *   a version (saying what it is instead: another cairn block, a UnixFS file or directory);
 *   `MISSING_BLOCK` / `CORRUPT_BLOCK` naming the CID when a needed block is absent or damaged (never a
 *   partial diff); `NOT_A_DATASET` when a ref is not a CID and `dir` is not a dataset; `BAD_CAR` / `IO`
 *   for an unreadable CAR.
 */
export async function diff(options: DiffOptions): Promise<DiffResult> {
  const cidA = tryParseCid(options.a)
  const cidB = tryParseCid(options.b)
  let dataset: Dataset | undefined
  try {
    dataset = await openDataset(options.dir)
  } catch (e) {
    // two CIDs and a CAR need no dataset
    if (!(isCairnError(e, 'NOT_A_DATASET') && options.from !== undefined && options.from.length > 0 && cidA && cidB)) throw e
  }
  const from = typeof options.from === 'string' ? [options.from] : (options.from ?? [])
  const remote = from.length > 0 ? await openSources(from) : undefined
  try {
    const sources: BlockSource[] = []
    if (dataset) sources.push(dataset.store)
    if (remote) sources.push(remote)
    const source = sources.length === 1 ? sources[0] : new FallbackSource(sources)
    const a = cidA ?? (await resolveRef(dataset as Dataset, options.a))
    const b = cidB ?? (await resolveRef(dataset as Dataset, options.b))
    return await diffVersions(source, a, b, {
      concurrency: options.concurrency,
      onProgress: options.onProgress,
      rows: options.rows,
      limit: options.limit,
    })
  } finally {
    await remote?.close()
    await dataset?.store.close()
  }
}

/** Options of {@link diffVersions}. */
export interface DiffVersionsOptions {
  readonly concurrency?: number
  readonly onProgress?: (progress: DiffProgress) => void
  /** Skip the ancestry check (then `sharedHistory` is false and `commonAncestor` null). */
  readonly skipHistory?: boolean
  /** Skip reading schema blocks (then no {@link ShardChange.schema}). */
  readonly skipSchemas?: boolean
  /** Skip reading the cards (then `card` is empty even if they differ). */
  readonly skipCard?: boolean
  /** Compare the rows of modified tabular shards (see {@link DiffOptions.rows}). */
  readonly rows?: boolean
  /** Sample rows per kind and shard (default 5). */
  readonly limit?: number
}

/**
 * {@link diff} on two version CIDs read from any {@link BlockSource}: the library's core, used by
 * `diff` and `log --stat`. Fails as {@link diff} does.
 */
export async function diffVersions(source: BlockSource, a: CID, b: CID, options: DiffVersionsOptions = {}): Promise<DiffResult> {
  const progress = options.onProgress ?? (() => {})
  progress({ phase: 'versions', nodesRead: 0 })
  const [va, vb] = await Promise.all([readVersionOrExplain(source, a), readVersionOrExplain(source, b)])
  const indexDiff = await diffIndexes(source, va.index, vb.index, {
    concurrency: options.concurrency,
    onProgress: (p) => progress({ phase: 'index', nodesRead: p.nodesRead }),
  })
  const shards = classify(indexDiff.changes)
  if (!options.skipSchemas) {
    progress({ phase: 'schemas', nodesRead: indexDiff.nodesRead })
    const schemas = new SchemaCache(source)
    for (let i = 0; i < shards.length; i++) {
      const s = shards[i]
      if (s.status !== 'modified' || !s.before || !s.after) continue
      const x = s.before.schema
      const y = s.after.schema
      if (x === undefined && y === undefined) continue
      if (x !== undefined && y !== undefined && x.equals(y)) continue
      const change = diffFields(await schemas.fields(x), await schemas.fields(y))
      if (change) shards[i] = { ...s, schema: change }
    }
  }
  let card: ValueChange[] = []
  let lineage: LineageChange[] = []
  if (!options.skipCard && !va.card.equals(vb.card)) {
    const [ca, cb] = await Promise.all([readCardBlock(source, va.card), readCardBlock(source, vb.card)])
    card = deepDiff(ca, cb)
    lineage = lineageChanges(ca, cb)
  }
  if (options.rows) {
    const cardB = await readCardBlock(source, vb.card)
    for (let i = 0; i < shards.length; i++) {
      const s = shards[i]
      if (s.status !== 'modified' || !s.before || !s.after || s.after.format === 'bytes') continue
      progress({ phase: 'rows', nodesRead: indexDiff.nodesRead, path: s.path })
      let rows: RowDiff
      if (s.before.format !== s.after.format)
        rows = { status: 'skipped', reason: `the format changed (${s.before.format} → ${s.after.format})` }
      else if (s.schema && s.schema.retyped.length > 0) {
        rows = {
          status: 'skipped',
          reason: `the schema changed (retyped: ${s.schema.retyped.map((f) => f.name).join(', ')}): rows cannot be compared`,
        }
      } else rows = await diffRows(source, s.path, s.before.cid, s.after.cid, { card: cardB, limit: options.limit })
      shards[i] = { ...s, rows }
    }
  }
  const common = options.skipHistory ? null : await commonAncestor(source, a, b)
  const counts = { added: 0, removed: 0, modified: 0, renamed: 0 }
  for (const s of shards) counts[s.status]++
  return {
    a: sideOf(a, va),
    b: sideOf(b, vb),
    changed: shards.length > 0 || card.length > 0,
    sharedHistory: common !== null,
    commonAncestor: common,
    shards,
    counts,
    card,
    lineage,
    totals: { before: va.totals, after: vb.totals },
    stats: { indexNodesRead: indexDiff.nodesRead, depth: indexDiff.depth },
  }
}

function sideOf(cid: CID, v: VersionManifest): VersionSide {
  return { cid: cid as Link<VersionManifest>, created: v.created, message: v.message, parent: v.parent, totals: v.totals }
}

function shardSide(e: ShardEntry): ShardSide {
  return { cid: e.cid, size: e.size, format: e.format, rows: e.rows, schema: e.schema }
}

/**
 * Turns entry changes into shard changes: a removed path and an added path with the same CID become
 * one rename (paired in path order when several share a CID); the rest stay added, removed, modified.
 */
export function classify(changes: readonly EntryChange[]): ShardChange[] {
  const removedByCid = new Map<string, EntryChange[]>()
  for (const c of changes) {
    if (c.before && !c.after) {
      const key = c.before.cid.toString()
      const list = removedByCid.get(key)
      if (list) list.push(c)
      else removedByCid.set(key, [c])
    }
  }
  const renamedFrom = new Set<EntryChange>()
  const out: ShardChange[] = []
  for (const c of changes) {
    if (c.before && c.after) {
      out.push({ status: 'modified', path: c.path, before: shardSide(c.before), after: shardSide(c.after) })
    } else if (c.after) {
      const old = removedByCid.get(c.after.cid.toString())?.shift()
      if (old?.before) {
        renamedFrom.add(old)
        out.push({ status: 'renamed', path: c.path, from: old.path, before: shardSide(old.before), after: shardSide(c.after) })
      } else {
        out.push({ status: 'added', path: c.path, after: shardSide(c.after) })
      }
    }
  }
  for (const c of changes) {
    if (c.before && !c.after && !renamedFrom.has(c)) out.push({ status: 'removed', path: c.path, before: shardSide(c.before) })
  }
  // renames are listed under their new path: keep the whole list in path order
  return out.sort((x, y) => comparePaths(x.path, y.path))
}

class SchemaCache {
  private readonly cache = new Map<string, readonly SchemaBlock['fields'][number][]>()
  constructor(private readonly source: BlockSource) {}

  async fields(cid: CID | undefined): Promise<readonly SchemaBlock['fields'][number][]> {
    if (cid === undefined) return []
    const key = cid.toString()
    let f = this.cache.get(key)
    if (!f) {
      f = decodeManifest('cairn.schema', cid, await this.source.get(cid)).fields
      this.cache.set(key, f)
    }
    return f
  }
}

/**
 * Reads version `cid`; when it is not one, says what it is: another cairn block (from
 * `decodeManifest`), or a UnixFS file or directory.
 */
async function readVersionOrExplain(source: BlockSource, cid: CID): Promise<VersionManifest> {
  if (cid.code === RAW) {
    throw new CairnError('INVALID_MANIFEST', `${cid} is a UnixFS file (a raw block), not a cairn version`, {
      subject: cid.toString(),
      hint: 'pass a version CID (`cairn log` lists them)',
    })
  }
  if (cid.code === DAG_PB) {
    let what = 'a UnixFS node (dag-pb)'
    const bytes = await source.get(cid)
    try {
      const node = dagPb.decode(bytes)
      if (node.Data) {
        const type = UnixFS.unmarshal(node.Data).type
        what = type === 'file' || type === 'raw' ? 'a UnixFS file' : type.includes('directory') ? 'a UnixFS directory' : `a UnixFS ${type}`
      }
    } catch {
      // not UnixFS: the generic description stands
    }
    throw new CairnError('INVALID_MANIFEST', `${cid} is ${what}, not a cairn version`, {
      subject: cid.toString(),
      hint: "pass a version CID (`cairn log` lists them); a version's `tree` is its UnixFS directory",
    })
  }
  return readVersion(source, cid)
}

/**
 * The nearest common ancestor of `a` and `b` (either may be the other's ancestor), following both
 * parent chains in turn, at most {@link MAX_ANCESTORS} steps each. A parent missing from the source
 * ends its chain (history that cannot be read counts as not shared).
 */
export async function commonAncestor(source: BlockSource, a: CID, b: CID): Promise<CID | null> {
  const seen = [new Set<string>([a.toString()]), new Set<string>([b.toString()])]
  if (a.equals(b)) return a
  const at: (CID | null)[] = [a, b]
  for (let step = 0; step < MAX_ANCESTORS && (at[0] || at[1]); step++) {
    for (const side of [0, 1]) {
      const cid = at[side]
      if (!cid) continue
      let parent: CID | null
      try {
        parent = (await readVersion(source, cid)).parent
      } catch (e) {
        if (!isCairnError(e, 'MISSING_BLOCK')) throw e
        parent = null
      }
      at[side] = parent
      if (!parent) continue
      const key = parent.toString()
      if (seen[1 - side].has(key)) return parent
      seen[side].add(key)
    }
  }
  return null
}
