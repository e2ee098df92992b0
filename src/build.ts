/**
 * `build`: turns the dataset folder into a new version. Files are imported as UnixFS (the profile),
 * format readers give rows and schemas and validate rows against the card, then the shard index, the
 * tree, the card block and the version manifest are stored, and HEAD moves last. Any failure before
 * that leaves HEAD and the refs as they were (blocks already written are whole and merely unused).
 */
import { createHash } from 'node:crypto'
import { stat } from 'node:fs/promises'
import * as dagJson from '@ipld/dag-json'
import { minimatch } from 'minimatch'
import type { ValidateFunction } from 'ajv'
import { cidFor, DAG_JSON, type CID, type Link } from './cid.js'
import { readCard, withDataset } from './dataset.js'
import { CairnError, ioError, isCairnError } from './errors.js'
import { readerFor } from './formats/index.js'
import type { Row } from './formats/interface.js'
import { buildIndex, walkEntries } from './index/prolly.js'
import { encodeManifest, PROFILE, type Card, type ShardEntry, type ShardRule, type Totals, type VersionManifest } from './manifest.js'
import { scan, type SkippedEntry } from './scan.js'
import { compileUserSchema } from './schemas.js'
import type { BlockStore } from './store/blocks.js'
import { withLock } from './store/lock.js'
import { loadStatCache, saveStatCache, type CachedFile } from './store/stat-cache.js'
import { identityOf, importFile, sameIdentity, type BlockSink, type FileIdentity } from './unixfs/file.js'
import { buildTree } from './unixfs/tree.js'
import { readVersion } from './version.js'
import { DEFAULT_JOBS, mapLimit } from './util/pool.js'

export interface BuildOptions {
  /** The dataset folder or a folder inside it (default: the current folder). */
  readonly dir?: string
  readonly message?: string
  /** The version's `created` time. Default: `SOURCE_DATE_EPOCH` (seconds) when set, else now. */
  readonly date?: Date
  /** Files imported at once (default: the number of CPUs). The result does not depend on it. */
  readonly jobs?: number
  /** Make a new version even when nothing changed since HEAD. */
  readonly allowEmpty?: boolean
  readonly onProgress?: (progress: BuildProgress) => void
}

/** Progress of a build, reported after each file. */
export interface BuildProgress {
  readonly phase: 'scan' | 'import' | 'commit'
  readonly files: number
  readonly totalFiles: number
  readonly bytes: number
  readonly totalBytes: number
  readonly path?: string
}

/** Shard paths that changed against the parent. */
export interface ChangeSummary {
  readonly added: number
  readonly removed: number
  readonly modified: number
}

export interface BuildResult {
  readonly version: Link<VersionManifest>
  readonly manifest: VersionManifest
  /** True when nothing changed since HEAD and no version was made (`version` is HEAD). */
  readonly unchanged: boolean
  readonly changes: ChangeSummary
  readonly skipped: readonly SkippedEntry[]
}

/**
 * Builds a version of the dataset and moves HEAD to it. Throws `NOT_A_DATASET`, `INVALID_CARD`,
 * `INVALID_ROW` (file, line, ajv's message), `INVALID_SHARD`, `FILE_CHANGED`, `BAD_PATH` or `IO`;
 * in every case HEAD and the refs are unchanged.
 */
export async function build(options: BuildOptions = {}): Promise<BuildResult> {
  return withDataset(options.dir, (dataset) =>
    withLock(dataset.root, async () => {
      const card = await readCard(dataset.root)
      const progress = options.onProgress ?? (() => {})
      progress({ phase: 'scan', files: 0, totalFiles: 0, bytes: 0, totalBytes: 0 })
      // a file modified in the same clock tick as its lstat could change again unseen: don't cache it
      // (the time is taken before the scan, since a scan of many files lasts many ticks)
      const racyAfter = BigInt(Date.now() - 10) * 1_000_000n
      const { files, skipped } = await scan(dataset.root)
      const totalBytes = files.reduce((n, f) => n + f.size, 0)
      const store = dataset.store
      const put: BlockSink = (b) => store.put(b.cid, b.bytes)
      const rules = new RowRules(card)
      // the stat cache is valid only under the same row rules (validation happened under them)
      const rulesKey = createHash('sha256')
        .update(JSON.stringify(card.shards ?? []))
        .digest('hex')
      const cache = await loadStatCache(store.root, rulesKey)

      let doneFiles = 0
      let doneBytes = 0
      // cache hits are decided up front, synchronously: only changed files go through the pool
      const stored = await store.snapshot()
      const hits = files.map((f, i) => {
        const hit = cache.get(f.path, i)
        return hit && hit.stamp === f.stamp && stored.has(hit.cid) && (!hit.schema || stored.has(hit.schema)) ? hit : undefined
      })
      const entries = await mapLimit(files, options.jobs ?? DEFAULT_JOBS, async (f, i) => {
        const hit = hits[i]
        if (hit) {
          doneFiles++
          doneBytes += f.size
          return new CacheHit(hit)
        }
        const imported = await importFile(f.abs, put, f.path, f.identity)
        const entry = await describe(f.path, f.abs, imported.cid, imported.size, rules, store)
        // a format reader read the file a second time: it must still be the file that was hashed
        if (entry.format !== 'bytes') await assertUnchanged(f.abs, f.path, imported.identity)
        doneFiles++
        doneBytes += imported.size
        progress({ phase: 'import', files: doneFiles, totalFiles: files.length, bytes: doneBytes, totalBytes, path: f.path })
        return { entry, dagSize: imported.dagSize, stamp: f.stamp, cacheable: f.identity.mtimeNs < racyAfter, hit: false }
      })

      progress({ phase: 'commit', files: doneFiles, totalFiles: files.length, bytes: doneBytes, totalBytes })
      // every file as the cache knew it: the same entries give the same roots, already stored
      const known = cache.roots
      const reuse =
        known !== undefined &&
        entries.length === cache.size &&
        entries.every((e) => e.hit) &&
        (await store.has(known.index)) &&
        (await store.has(known.tree))
      const index = reuse
        ? { root: known.index, totals: known.totals }
        : await buildIndex(
            entries.map((e) => e.entry),
            put,
          )
      const tree = reuse
        ? { cid: known.tree }
        : await buildTree(
            entries.map((e) => ({ path: e.entry.path, cid: e.entry.cid, dagSize: e.dagSize })),
            put,
          )
      const cacheable = entries.filter((e) => e.cacheable)
      const saveCache = async (): Promise<void> => {
        if (reuse) return // the cache already says exactly this
        await saveStatCache(
          store.root,
          rulesKey,
          cacheable,
          cacheable.length === entries.length ? { index: index.root, tree: tree.cid, totals: index.totals } : undefined,
        )
      }
      const cardBytes = dagJson.encode(card)
      const cardCid = cidFor<Card>(DAG_JSON, cardBytes)
      await store.put(cardCid, cardBytes)

      const parent = (await dataset.refs.head()) ?? null
      const parentManifest = parent ? await readVersion(store, parent) : undefined
      const changes = parentManifest?.index.equals(index.root)
        ? { added: 0, removed: 0, modified: 0 }
        : await summarise(
            store,
            parentManifest?.index,
            entries.map((e) => e.entry),
          )
      const same =
        parentManifest !== undefined &&
        parentManifest.index.equals(index.root) &&
        parentManifest.card.equals(cardCid) &&
        parentManifest.tree.equals(tree.cid)
      if (same && !options.allowEmpty) {
        await saveCache()
        return { version: parent as Link<VersionManifest>, manifest: parentManifest, unchanged: true, changes, skipped }
      }

      const manifest: VersionManifest = {
        type: 'cairn.version',
        v: 1,
        name: card.name,
        parent: parent as Link<VersionManifest> | null,
        created: createdAt(options.date),
        message: options.message ?? '',
        profile: PROFILE,
        card: cardCid,
        index: index.root,
        tree: tree.cid,
        totals: index.totals,
      }
      const block = encodeManifest<'cairn.version'>(manifest)
      await store.put(block.cid, block.bytes)
      await dataset.refs.setHead(block.cid)
      await saveCache()
      return { version: block.cid, manifest, unchanged: false, changes, skipped }
    }),
  )
}

/** A file as the stat cache knew it. A class: an object literal with a getter costs ~1 µs to make. */
class CacheHit {
  readonly cacheable = true
  readonly hit = true
  constructor(private readonly cached: CachedFile) {}
  /** Parsed only if the index or tree is rebuilt. */
  get entry(): ShardEntry {
    return this.cached.entry
  }
  get dagSize(): number {
    return this.cached.dagSize
  }
  get stamp(): string {
    return this.cached.stamp
  }
}

/** Reads a shard's format facts (validating rows where the card says so) and stores its schema block. */
async function describe(path: string, abs: string, cid: CID, size: number, rules: RowRules, store: BlockStore): Promise<ShardEntry> {
  const reader = readerFor(path)
  if (!reader) return { path, cid, size, format: 'bytes' }
  const validate = reader.name === 'jsonl' || reader.name === 'csv' ? rules.validatorFor(path, reader.name === 'csv') : undefined
  const onRow = validate
    ? (row: Row, line: number): void => {
        if (!validate(row)) {
          const e = validate.errors?.[0]
          const where = e?.instancePath ? ` at ${e.instancePath}` : ''
          throw new CairnError(
            'INVALID_ROW',
            `${path}:${line}: row does not match the card's row schema${where}: ${e?.message ?? 'invalid'}`,
            {
              subject: `${path}:${line}`,
              details: validate.errors ?? [],
              hint: 'fix the row or the rowSchema in cairn.json; nothing was committed',
            },
          )
        }
      }
    : undefined
  const facts = await reader.facts(abs, { onRow }).catch((e: unknown) => {
    // readers name the file they were given; the user knows it by its shard path
    if (isCairnError(e)) {
      throw new CairnError(e.code, e.message.replaceAll(abs, path), {
        subject: e.subject?.replaceAll(abs, path),
        hint: e.hint,
        details: e.details,
        cause: e,
      })
    }
    throw new CairnError('INVALID_SHARD', `${path}: cannot read as ${reader.name}: ${(e as Error).message}`, { subject: path, cause: e })
  })
  const schemaBlock = encodeManifest<'cairn.schema'>({ type: 'cairn.schema', v: 1, format: reader.name, fields: facts.schema.fields })
  await store.put(schemaBlock.cid, schemaBlock.bytes)
  return { path, cid, size, format: reader.name, rows: facts.rows, schema: schemaBlock.cid }
}

/** The card's row schemas, compiled once per rule. */
class RowRules {
  private readonly compiled = new Map<string, ValidateFunction>()
  constructor(private readonly card: Card) {}

  /** The validator of the first rule with a row schema whose glob matches `path`, if any. */
  validatorFor(path: string, coerceTypes: boolean): ValidateFunction | undefined {
    const rule = (this.card.shards ?? []).find((r: ShardRule) => minimatch(path, r.glob, { dot: true, matchBase: !r.glob.includes('/') }))
    if (!rule?.rowSchema) return undefined
    const key = `${rule.glob}\u0000${coerceTypes}`
    let v = this.compiled.get(key)
    if (!v) {
      try {
        v = compileUserSchema(rule.rowSchema, { coerceTypes })
      } catch (e) {
        throw new CairnError(
          'INVALID_CARD',
          `cairn.json: the rowSchema for ${JSON.stringify(rule.glob)} is not a valid JSON Schema: ${(e as Error).message}`,
          {
            subject: 'cairn.json',
          },
        )
      }
      this.compiled.set(key, v)
    }
    return v
  }
}

async function summarise(store: BlockStore, parentIndex: CID | undefined, entries: readonly ShardEntry[]): Promise<ChangeSummary> {
  if (!parentIndex) return { added: entries.length, removed: 0, modified: 0 }
  const before = new Map<string, string>()
  for await (const e of walkEntries(store, parentIndex)) before.set(e.path, e.cid.toString())
  let added = 0
  let modified = 0
  for (const e of entries) {
    const old = before.get(e.path)
    if (old === undefined) added++
    else if (old !== e.cid.toString()) modified++
    before.delete(e.path)
  }
  return { added, removed: before.size, modified }
}

async function assertUnchanged(abs: string, path: string, before: FileIdentity): Promise<void> {
  let now
  try {
    now = identityOf(await stat(abs, { bigint: true }))
  } catch (e) {
    throw ioError('read', path, e)
  }
  if (!sameIdentity(before, now)) {
    throw new CairnError('FILE_CHANGED', `${path} changed while it was being read (size ${before.size} → ${now.size})`, {
      subject: path,
      hint: 'stop whatever writes to the dataset, then build again; nothing was committed',
    })
  }
}

function createdAt(date: Date | undefined): string {
  if (date) return isoDate(date, 'the build date')
  const epoch = process.env.SOURCE_DATE_EPOCH
  if (epoch !== undefined && epoch !== '') {
    if (!/^\d+$/.test(epoch))
      throw new CairnError('USAGE', `SOURCE_DATE_EPOCH must be whole seconds since 1970 (found ${JSON.stringify(epoch)})`)
    return isoDate(new Date(Number(epoch) * 1000), 'SOURCE_DATE_EPOCH')
  }
  return new Date().toISOString()
}

/** ISO 8601 in UTC, for years 1970–9999 (the manifest's `created` format). Throws `USAGE` otherwise. */
function isoDate(date: Date, what: string): string {
  const year = date.getUTCFullYear()
  if (Number.isNaN(date.getTime()) || year < 1970 || year > 9999) {
    throw new CairnError(
      'USAGE',
      `${what} must be a time between 1970 and 9999 (found ${Number.isNaN(date.getTime()) ? 'an invalid date' : `year ${year}`})`,
    )
  }
  return date.toISOString()
}

/** The totals type, re-exported for callers of build. */
export type { Totals }
