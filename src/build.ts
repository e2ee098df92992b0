/**
 * `build`: turns the dataset folder into a new version. Files are imported as UnixFS (the profile),
 * format readers give rows and schemas and validate rows against the card, then the shard index, the
 * tree, the card block and the version manifest are stored, and HEAD moves last. Any failure before
 * that leaves HEAD and the refs as they were (blocks already written are whole and merely unused).
 */
import { createHash } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import * as dagJson from '@ipld/dag-json'
import { equals as equalBytes } from 'multiformats/bytes'
import { minimatch } from 'minimatch'
import type { ValidateFunction } from 'ajv'
import { checkBlock } from './car/block.js'
import { cidFor, DAG_JSON, type CID, type Link } from './cid.js'
import { readCard, withDataset } from './dataset.js'
import { assertBuildable } from './release/clone-record.js'
import { CairnError, ioError, isCairnError } from './errors.js'
import { readerFor } from './formats/index.js'
import type { FormatReader, Row } from './formats/interface.js'
import { IndexBuilder, walkEntries, type BuiltIndex } from './shard-index/prolly.js'
import {
  comparePaths,
  decodeManifest,
  encodeManifest,
  PROFILE,
  type Card,
  type ShardEntry,
  type ShardRule,
  type Totals,
  type VersionManifest,
} from './manifest.js'
import { scan, type FoundFiles, type SkippedEntry } from './scan.js'
import { compileUserSchema } from './schemas.js'
import type { BlockStore } from './store/blocks.js'
import { withLock } from './store/lock.js'
import { loadStatCache, StatCacheWriter, type CachedFile, type CachedHead, type FileFacts, type StatCache } from './store/stat-cache.js'
import { CHUNK_SIZE, identityOf, importFiles, importGroups, sameIdentity, type BlockSink, type FileIdentity } from './unixfs/file.js'
import { TreeBuilder } from './unixfs/tree.js'
import { KeySet } from './rows/keys.js'
import { RowProblems } from './rows/problems.js'
import { readVersion } from './version.js'
import { loadIgnoreRules } from './worktree/ignore.js'
import { checkBuildLineage, type SourceCheck } from './lineage/check.js'
import { hashPool } from './util/hash-pool.js'
import { mapOrdered } from './util/pool.js'

export interface BuildOptions {
  /** The dataset folder or a folder inside it (default: the current folder). */
  readonly dir?: string
  readonly message?: string
  /** The version's `created` time. Default: `SOURCE_DATE_EPOCH` (seconds) when set, else now. */
  readonly date?: Date
  /**
   * Threads that read and hash files (default: one per CPU when most bytes to read are in files over
   * 1 MiB, else one per CPU but one, at least one: the main thread lays out, indexes and writes each
   * small file; none, 0, for a few small files, which the main thread then reads itself). The result
   * does not depend on it.
   */
  readonly jobs?: number
  /** Make a new version even when nothing changed since HEAD. */
  readonly allowEmpty?: boolean
  /** Invalid rows reported (with file and line) before the rest are only counted (default 20). */
  readonly maxErrors?: number
  /** Where the card's `derivedFrom` releases are checked besides the store (docs/lineage.md). */
  readonly from?: readonly string[]
  /** Store the version but leave HEAD where it is (a first pass of `build --croissant`). */
  readonly keepHead?: boolean
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
  /** Each `derivedFrom` release of the card: verified, or recorded unverified and why. */
  readonly lineage: readonly SourceCheck[]
}

/**
 * Builds a version of the dataset and moves HEAD to it. Throws `NOT_A_DATASET`, `INVALID_CARD`,
 * `INVALID_ROW` (file, line, ajv's message), `INVALID_SHARD`, `FILE_CHANGED`, `BAD_PATH` or `IO`;
 * in every case HEAD and the refs are unchanged.
 */
export async function build(options: BuildOptions = {}): Promise<BuildResult> {
  return withDataset(options.dir, (dataset) =>
    withLock(dataset.root, async () => {
      await assertBuildable(dataset)
      const card = await readCard(dataset.root)

      const progress = options.onProgress ?? (() => {})
      progress({ phase: 'scan', files: 0, totalFiles: 0, bytes: 0, totalBytes: 0 })
      const store = dataset.store
      // the stat cache is valid only under the same row rules (validation happened under them)
      const rulesKey = createHash('sha256')
        .update(JSON.stringify(card.shards ?? []))
        .digest('hex')
      const cache = await loadStatCache(store.root, rulesKey)
      // with nothing cached every file will be read: the threads boot while the folder is scanned
      if (cache.size === 0) hashPool(options.jobs ?? smallFileJobs()).warm()
      // a file modified in the same clock tick as its lstat could change again unseen: don't cache it
      // (the time is taken before the scan, since a scan of many files lasts many ticks)
      const racyAfter = BigInt(Date.now() - 10) * 1_000_000n
      const { files, skipped } = await scan(dataset.root, { ignore: await loadIgnoreRules(dataset.root) })
      const totalBytes = files.totalBytes
      const put: BlockSink = (b) => store.put(b.cid, b.bytes)
      const rules = new RowRules(card)
      const problems = new RowProblems(options.maxErrors)
      // while the store holds every block it held when the cache was saved, the cache's CIDs need no
      // look-up (and the store's index of every block is not even read)
      const intact = cache.store !== undefined && store.holdsAll(cache.store)
      const parent = (await dataset.refs.head()) ?? null
      const lineage = await checkBuildLineage(card, { store, head: parent, from: options.from, hasPath: (p) => hasFile(files, p) })
      const cardBytes = dagJson.encode(card)
      const cardCid = cidFor<Card>(DAG_JSON, cardBytes)
      // Nothing changed since the build that saved the cache: the same paths and stamps, HEAD still the
      // version that build left, the same card. No file is read, nor the store's index of blocks.
      if (parent && !options.allowEmpty && intact && cache.roots && cache.head?.cid.equals(parent) && sameFiles(files, cache)) {
        const manifest = await readParent(store, parent, cache.head)
        if (manifest.index.equals(cache.roots.index) && manifest.tree.equals(cache.roots.tree) && manifest.card.equals(cardCid)) {
          progress({ phase: 'commit', files: files.length, totalFiles: files.length, bytes: totalBytes, totalBytes })
          const changes = { added: 0, removed: 0, modified: 0 }
          return { version: parent as Link<VersionManifest>, manifest, unchanged: true, changes, skipped, lineage }
        }
      }
      const stored = intact ? undefined : await store.snapshot()
      const inStore = (cid: CID | Uint8Array): boolean => stored === undefined || stored.has(cid)

      // Cache hits are decided up front, synchronously: only changed files go through the pool. A hit
      // is kept as its place in the cache (an entry is made when it is used), and the file's path
      // becomes the cache's equal string (held once, not twice). `knownAt` is where the cache has the
      // file's path, hit or not.
      const knownAt = new Int32Array(cache.size > 0 ? files.length : 0).fill(-1)
      const hits = new Uint8Array(knownAt.length)
      const isHit = (i: number): boolean => hits[i] === 1
      const hit = (i: number): CachedFile | undefined => (isHit(i) ? cache.at(knownAt[i]) : undefined)
      let cached = 0
      let known = 0
      for (let i = 0; i < knownAt.length; i++) {
        const found = cache.get(files.path(i), i)
        if (found === undefined) continue
        knownAt[i] = found.index
        known++
        // keys unique across a rule's shards are checked only by reading every shard of the rule
        if (rules.wholeRule(files.path(i))) continue
        if (files.sameStamp(i, cache.stamps, found.index) && inStore(found.cid) && (!found.schema || inStore(found.schema))) {
          hits[i] = 1
          files.sharePath(i, cache.path(found.index))
          cached++
        }
      }
      const parentManifest = parent ? await readParent(store, parent, cache.head) : undefined
      // every file as the cache knew it: the same entries give the same roots, already stored
      const cachedRoots = cache.roots
      const reuse =
        cachedRoots !== undefined &&
        cached === files.length &&
        files.length === cache.size &&
        inStore(cachedRoots.index) &&
        inStore(cachedRoots.tree)

      let index: BuiltIndex
      let tree: CID
      let changes: ChangeSummary = { added: 0, removed: 0, modified: 0 }
      const cacheable = new StatCacheWriter(rulesKey)
      if (reuse) {
        index = { root: cachedRoots.index, totals: cachedRoots.totals }
        tree = cachedRoots.tree
        if (!parentManifest?.index.equals(index.root)) {
          const counter = new ChangeCounter(store, parentManifest?.index)
          for (let i = 0; i < files.length; i++) await counter.see(hit(i)!.entry)
          changes = await counter.finish()
        }
        progress({ phase: 'commit', files: files.length, totalFiles: files.length, bytes: totalBytes, totalBytes })
      } else {
        // Files flow in path order, through a window of imports, into the index, the tree, the cache
        // and the change count: memory holds the window and the open nodes, not every entry.
        const pool = hashPool(options.jobs ?? defaultJobs(files, isHit))
        const indexBuilder = new IndexBuilder(put)
        // when the cache holds exactly the parent's entries (it names the parent's index), its places of
        // the paths tell the changes without reading the parent's index
        const counter: Changes =
          known > 0 && parentManifest && cachedRoots?.index.equals(parentManifest.index)
            ? new CachedChanges(cache, knownAt, isHit)
            : new ChangeCounter(store, parentManifest?.index)
        let doneFiles = 0
        let doneBytes = 0
        const groups = importGroups(files.length, (i) => (isHit(i) ? 0 : files.size(i)))
        // A group's files read here; those found in the cache are made into entries only when the index
        // takes them (below), one at a time: a window of groups of cached entries, all made at once and
        // all alive, had V8 allocate every later entry in the old generation (pretenuring).
        const importGroup = async (group: readonly number[]): Promise<Imported> => {
          const todo = group.filter((i) => !isHit(i)).map((i) => files.at(i))
          const batch = todo.map((f) => ({ path: f.abs, label: f.path, expected: f.identity }))
          const imported = batch.length > 0 ? await importFiles(batch, put, { pool, reuseBuffers: true }) : []
          const read: (ImportedEntry | undefined)[] = []
          let k = 0
          for (const i of group) {
            doneFiles++
            doneBytes += files.size(i)
            if (isHit(i)) {
              read.push(undefined)
              continue
            }
            const f = todo[k]
            const got = imported[k++]
            const reader = readerFor(f.path)
            let entry: ShardEntry = { path: f.path, cid: got.cid, size: got.size, format: 'bytes' }
            if (reader) {
              entry = await describe(reader, f.path, f.abs, got.cid, got.size, rules, store, problems)
              // a format reader read the file a second time: it must still be the file that was hashed
              await assertUnchanged(f.abs, f.path, got.identity)
            }
            // a file modified in the racy window could change again unseen: not cached
            read.push({ entry, dagSize: got.dagSize, stamp: files.stamp(i), cacheable: !files.changedSince(i, racyAfter) })
            // reported for each file read (a file found in the cache is merely counted)
            progress({ phase: 'import', files: doneFiles, totalFiles: files.length, bytes: doneBytes, totalBytes, path: files.path(i) })
          }
          return { group, read }
        }
        // Enough groups in flight to keep every thread busy while the main thread lays out and writes.
        // The index, the change count and the tree each take a file synchronously (no promise) unless
        // they must write or read a block.
        const treeBuilder = new TreeBuilder(put)
        for await (const { group, read } of mapOrdered(groups, 2 * pool.size + 2, importGroup)) {
          for (let n = 0; n < group.length; n++) {
            const i = group[n]
            let e = read[n]
            if (e === undefined) {
              const same = hit(i)!
              e = { entry: same.entry, dagSize: same.dagSize, stamp: files.stamp(i), cacheable: true }
            }
            const added = indexBuilder.add(e.entry)
            if (added) await added
            const seen = counter.see(e.entry, i)
            if (seen) await seen
            if (e.cacheable) cacheable.add(e)
            const placed = treeBuilder.add(e.entry.path, e.entry.cid, e.dagSize)
            if (placed) await placed
          }
        }
        // every invalid row of every shard at once, before anything is committed
        problems.throwIfAny()
        tree = (await treeBuilder.finish()).cid
        progress({ phase: 'commit', files: doneFiles, totalFiles: files.length, bytes: doneBytes, totalBytes })
        index = await indexBuilder.finish()
        if (!parentManifest?.index.equals(index.root)) changes = await counter.finish()
      }
      const saveCache = async (head: CachedHead): Promise<void> => {
        if (reuse) {
          // the cache already says exactly this
          if (intact && cache.head?.cid.equals(head.cid)) return
          for (let i = 0; i < files.length; i++) {
            const same = hit(i)!
            cacheable.add({ entry: same.entry, dagSize: same.dagSize, stamp: files.stamp(i) })
          }
        }
        const roots = cacheable.size === files.length ? { index: index.root, tree, totals: index.totals } : undefined
        await cacheable.save(store.root, { roots, head, store: store.marks() })
      }
      const same =
        parentManifest !== undefined &&
        parentManifest.index.equals(index.root) &&
        parentManifest.card.equals(cardCid) &&
        parentManifest.tree.equals(tree)
      if (same && !options.allowEmpty) {
        await saveCache({ cid: parent as CID, bytes: encodeManifest<'cairn.version'>(parentManifest).bytes })
        return { version: parent as Link<VersionManifest>, manifest: parentManifest, unchanged: true, changes, skipped, lineage }
      }
      await store.put(cardCid, cardBytes)

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
        tree,
        totals: index.totals,
      }
      const block = encodeManifest<'cairn.version'>(manifest)
      await store.put(block.cid, block.bytes)
      if (!options.keepHead) await dataset.refs.setHead(block.cid, { op: 'build', message: options.message })
      await saveCache(block)
      return { version: block.cid, manifest, unchanged: false, changes, skipped, lineage }
    }),
  )
}

/** A file of the new version, imported or found unchanged in the stat cache. */
interface ImportedEntry extends FileFacts {
  readonly cacheable: boolean
}

/** An import group's files (their places in the scan) and, for each one read, its entry (none for a cache hit). */
interface Imported {
  readonly group: readonly number[]
  readonly read: readonly (ImportedEntry | undefined)[]
}

/**
 * Reads a shard's format facts and stores its schema block. Rows are checked where the card says so
 * (row schema, primary key); an invalid row is added to `problems` and the read goes on.
 */
async function describe(
  reader: FormatReader,
  path: string,
  abs: string,
  cid: CID,
  size: number,
  rules: RowRules,
  store: BlockStore,
  problems: RowProblems,
): Promise<ShardEntry> {
  const validate = reader.name === 'jsonl' || reader.name === 'csv' ? rules.validatorFor(path, reader.name === 'csv') : undefined
  const keys = rules.keysFor(path)
  const onRow =
    validate || keys
      ? (row: Row, line: number): void => {
          if (validate && !validate(row)) {
            const e = validate.errors?.[0]
            const where = e?.instancePath ? ` at ${e.instancePath}` : ''
            problems.add(path, `${path}:${line}`, `row does not match the card's row schema${where}: ${e?.message ?? 'invalid'}`)
          }
          keys?.check(row, path, `${path}:${line}`, problems)
        }
      : undefined
  let facts
  try {
    facts = await reader.facts(abs, { onRow })
  } catch (e) {
    // readers name the file they were given; the user knows it by its shard path
    if (isCairnError(e, 'INVALID_ROW')) {
      // a row the reader cannot parse ends this shard's read; the other shards go on
      const message = e.message.replaceAll(abs, path)
      const m = /^(.*?:\d+): ([\s\S]*)$/.exec(message)
      problems.add(path, m ? m[1] : path, m ? m[2] : message)
      return { path, cid, size, format: reader.name }
    }
    if (isCairnError(e)) {
      throw new CairnError(e.code, e.message.replaceAll(abs, path), {
        subject: e.subject?.replaceAll(abs, path),
        hint: e.hint,
        details: e.details,
        cause: e,
      })
    }
    throw new CairnError('INVALID_SHARD', `${path}: cannot read as ${reader.name}: ${(e as Error).message}`, { subject: path, cause: e })
  }
  // binary formats have no lines: their rows are read again for the keys, numbered from 1
  if (keys && reader.name !== 'jsonl' && reader.name !== 'csv') {
    let n = 0
    for await (const row of reader.rows(abs)) keys.check(row, path, `${path}:row ${++n}`, problems)
  }
  const schemaBlock = encodeManifest<'cairn.schema'>({ type: 'cairn.schema', v: 1, format: reader.name, fields: facts.schema.fields })
  await store.put(schemaBlock.cid, schemaBlock.bytes)
  return { path, cid, size, format: reader.name, rows: facts.rows, schema: schemaBlock.cid }
}

/** The card's row schemas, compiled once per rule, and its primary keys. */
class RowRules {
  private readonly compiled = new Map<string, ValidateFunction>()
  private readonly ruleKeys = new Map<ShardRule, KeySet>()
  constructor(private readonly card: Card) {}

  /** The rule giving `path` its primary key: the first matching rule with one (as `diff --rows` takes it). */
  private keyRule(path: string): ShardRule | undefined {
    return (this.card.shards ?? []).find((r) => r.primaryKey && minimatch(path, r.glob, { dot: true, matchBase: !r.glob.includes('/') }))
  }

  /** The key set a shard's rows are checked against: the shard's own, or its rule's when keys are unique across the rule. */
  keysFor(path: string): KeySet | undefined {
    const rule = this.keyRule(path)
    if (!rule?.primaryKey) return undefined
    if (rule.keyScope !== 'rule') return new KeySet(rule.primaryKey)
    let keys = this.ruleKeys.get(rule)
    if (!keys) this.ruleKeys.set(rule, (keys = new KeySet(rule.primaryKey)))
    return keys
  }

  /** True when `path`'s keys must be unique across its rule's shards (then every such shard is read). */
  wholeRule(path: string): boolean {
    return this.keyRule(path)?.keyScope === 'rule'
  }

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

/** Counts shards added, removed and modified against the parent, fed the new entries in path order. */
interface Changes {
  /** Counts `entry`, file `i` of the scan; a promise only when it must read a block. */
  see(entry: ShardEntry, i: number): Promise<void> | undefined
  finish(): Promise<ChangeSummary>
}

/** Changes against the parent's index: the parent's entries are read alongside, one index node at a time. */
class ChangeCounter implements Changes {
  private readonly before: AsyncIterator<ShardEntry> | undefined
  private next: ShardEntry | undefined
  private started = false
  private readonly counts = { added: 0, removed: 0, modified: 0 }

  constructor(store: BlockStore, parentIndex: CID | undefined) {
    this.before = parentIndex && walkEntries(store, parentIndex)
  }

  see(entry: ShardEntry): Promise<void> | undefined {
    if (!this.before) {
      this.counts.added++
      return undefined
    }
    return this.seeInParent(entry)
  }

  private async seeInParent(entry: ShardEntry): Promise<void> {
    if (!this.started) await this.advance()
    while (this.next && comparePaths(this.next.path, entry.path) < 0) {
      this.counts.removed++
      await this.advance()
    }
    if (this.next?.path === entry.path) {
      if (!this.next.cid.equals(entry.cid)) this.counts.modified++
      await this.advance()
    } else this.counts.added++
  }

  async finish(): Promise<ChangeSummary> {
    if (this.before && !this.started) await this.advance()
    while (this.next) {
      this.counts.removed++
      await this.advance()
    }
    return { ...this.counts }
  }

  private async advance(): Promise<void> {
    this.started = true
    const r = await this.before!.next()
    this.next = r.done ? undefined : r.value
  }
}

/**
 * Changes against a stat cache that holds exactly the parent's entries (its roots are the parent's):
 * a file found unchanged in it is the parent's entry, a file read again is compared with the cache's
 * CID at its path, a path it lacks is added, and a path of it no file took was removed.
 */
class CachedChanges implements Changes {
  private readonly counts = { added: 0, removed: 0, modified: 0 }
  private matched = 0

  constructor(
    private readonly cache: StatCache,
    /** Where the cache has file `i`'s path, or -1. */
    private readonly knownAt: Int32Array,
    private readonly isHit: (i: number) => boolean,
  ) {}

  see(entry: ShardEntry, i: number): undefined {
    const k = this.knownAt[i]
    if (k < 0) this.counts.added++
    else {
      this.matched++
      if (!this.isHit(i) && !equalBytes(this.cache.at(k).cid, entry.cid.bytes)) this.counts.modified++
    }
    return undefined
  }

  async finish(): Promise<ChangeSummary> {
    return { ...this.counts, removed: this.cache.size - this.matched }
  }
}

/**
 * Hashing threads of a build unless told, for the files it must read (those not found in the cache).
 * A few small ones: none, the main thread reads them itself, for a thread's start costs more (tens of
 * ms and ~10 MiB, against ~30 µs per small file). Mostly files larger than a chunk: one per CPU,
 * hashing is the work. Mostly small files: one per CPU but one, for the main thread lays out, indexes
 * and writes each small file, and on 2 CPUs a second hashing thread only took CPU from it (10,000
 * files of 4 KiB: 0.71-0.79 s with one thread, 0.73-0.86 s with two; 1 GiB in 64 files: 0.92-0.97 s
 * with two, 1.07-1.25 s with one).
 */
function defaultJobs(files: FoundFiles, isHit: (i: number) => boolean): number {
  let large = 0
  let bytes = 0
  let count = 0
  for (let i = 0; i < files.length; i++) {
    if (isHit(i)) continue
    const size = files.size(i)
    count++
    bytes += size
    if (size > CHUNK_SIZE) large += size
  }
  if (count <= INLINE_FILES && bytes <= INLINE_BYTES) return 0
  return large > bytes / 2 ? availableParallelism() : smallFileJobs()
}

/** At most this many files, and bytes, to read are read on the main thread (see {@link defaultJobs}). */
const INLINE_FILES = 64
const INLINE_BYTES = 4 * CHUNK_SIZE

/** Hashing threads for small files: one per CPU but one (see {@link defaultJobs}). */
function smallFileJobs(): number {
  return Math.max(1, availableParallelism() - 1)
}

/** True when the scan found a file at `path`. */
function hasFile(files: FoundFiles, path: string): boolean {
  for (let i = 0; i < files.length; i++) if (files.path(i) === path) return true
  return false
}

/** True when the scan found exactly the files of the cache, in the same order, with the same stamps. */
function sameFiles(files: FoundFiles, cache: StatCache): boolean {
  if (files.length !== cache.size) return false
  for (let i = 0; i < files.length; i++) {
    if (files.path(i) !== cache.path(i) || !files.sameStamp(i, cache.stamps, i)) return false
  }
  return true
}

/**
 * The parent version's manifest: from the stat cache when it kept HEAD's block (checked against the CID,
 * as any block read), else from the store.
 */
async function readParent(store: BlockStore, parent: CID, cached: CachedHead | undefined): Promise<VersionManifest> {
  if (cached?.cid.equals(parent)) {
    try {
      await checkBlock(parent, cached.bytes)
      return decodeManifest('cairn.version', parent, cached.bytes)
    } catch {
      // a cache that does not match is merely not used
    }
  }
  return readVersion(store, parent)
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

/** A version's `created` time: `date`, else `SOURCE_DATE_EPOCH`, else now (ISO 8601). Throws `USAGE`. */
export function createdAt(date: Date | undefined): string {
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
