/**
 * `build`: turns the dataset folder into a new version. Files are imported as UnixFS (the profile),
 * format readers give rows and schemas and validate rows against the card, then the shard index, the
 * tree, the card block and the version manifest are stored, and HEAD moves last. Any failure before
 * that leaves HEAD and the refs as they were (blocks already written are whole and merely unused).
 */
import { createHash } from 'node:crypto'
import { lstatSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import * as dagJson from '@ipld/dag-json'
import { equals as equalBytes } from 'multiformats/bytes'
import { minimatch } from 'minimatch'
import type { ValidateFunction } from 'ajv'
import { checkBlock } from './car/block.js'
import { cidFor, DAG_JSON, type CID, type Link } from './cid.js'
import { CARD_FILE, readCard, withDataset } from './dataset.js'
import { assertBuildable } from './release/clone-record.js'
import { CairnError, ioError, isCairnError } from './errors.js'
import { readerFor } from './formats/index.js'
import type { FormatReader, Row } from './formats/interface.js'
import { IndexBuilder, walkEntries, type BuiltIndex } from './shard-index/prolly.js'
import {
  checkShardPath,
  comparePaths,
  decodeManifest,
  encodeManifest,
  type Card,
  type ShardEntry,
  type ShardRule,
  type Totals,
  type VersionManifest,
} from './manifest.js'
import { changedSince, identityOfStamp, walkFiles, type SkippedEntry, type WalkedFile } from './scan.js'
import { compileUserSchema } from './schemas.js'
import type { BlockStore } from './store/blocks.js'
import { withLock } from './store/lock.js'
import { openPartialCaches, openStatCache, StatCacheWriter, type CachedHead, type FileFacts } from './store/stat-cache.js'
import {
  CHUNK_SIZE,
  GROUP_FILES,
  identityOf,
  ImportGrouper,
  importFiles,
  sameIdentity,
  type BlockSink,
  type FileIdentity,
} from './unixfs/file.js'
import { TreeBuilder } from './unixfs/tree.js'
import { KeySet } from './rows/keys.js'
import { RowProblems } from './rows/problems.js'
import { readVersion, storeVersion } from './version.js'
import { loadIgnoreRules, type IgnoreRules } from './worktree/ignore.js'
import { checkBuildLineage, type SourceCheck } from './lineage/check.js'
import { hashPool, type HashPool } from './util/hash-pool.js'
import { buildFiles, type BuildFile } from './build/files.js'
import { diffWalk, type WalkChange } from './build/walk-diff.js'
import { editIndex } from './shard-index/edit.js'
import { editTree } from './unixfs/tree-edit.js'

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
      const sealed = openStatCache(store.root, rulesKey, buildTuning)
      const partials = openPartialCaches(store.root, rulesKey, 2, { ...buildTuning, prune: true })
      // with nothing cached every file will be read: the threads boot while the folder is walked
      if (!sealed && partials.length === 0) hashPool(options.jobs ?? smallFileJobs()).warm()
      // a file modified in the same clock tick as its lstat could change again unseen: don't cache it
      // (the time is taken before the scan, since a scan of many files lasts many ticks)
      const racyAfter = BigInt(Date.now() - 10) * 1_000_000n
      const ignore = await loadIgnoreRules(dataset.root)
      const skipped: SkippedEntry[] = []
      const walker = walkFiles(dataset.root, { ignore }, skipped)
      const put: BlockSink = (b) => store.put(b.cid, b.bytes, b.from)
      const rules = new RowRules(card)
      const problems = new RowProblems(options.maxErrors)
      const info = sealed?.info
      // while the store holds every block it held when the cache was sealed, the cache's CIDs need no
      // look-up (and the store's index of every block is not even read)
      const intact = info?.store !== undefined && store.holdsAll(info.store)
      const parent = (await dataset.refs.head()) ?? null
      const lineage = await checkBuildLineage(card, {
        store,
        head: parent,
        from: options.from,
        hasPath: (p) => isShardFile(dataset.root, p, ignore),
      })
      const cardBytes = dagJson.encode(card)
      const cardCid = cidFor<Card>(DAG_JSON, cardBytes)

      // The scan against the sealed cache, path by path: no file is read, no entry made. The changes
      // found (a bounded number) are replayed into the merge below, or edited into the parent's index
      // and tree when they are all there is.
      const lock = sealed?.cursor()
      const diff = lock ? diffWalk(walker, lock, buildTuning.changeLimit ?? CHANGE_LIMIT) : undefined
      const matched = diff?.matched ?? 0
      const matchedBytes = diff?.matchedBytes ?? 0
      // Nothing changed since the build that sealed the cache: the same paths and stamps, HEAD still the
      // version that build left, the same card. No file is read, nor the store's index of blocks.
      const whole = info !== undefined && diff?.complete === true && diff.changes.length === 0 && !lock?.damaged && matched === info.count
      if (whole && parent && !options.allowEmpty && intact && info.roots && info.head?.cid.equals(parent)) {
        const manifest = await readParent(store, parent, info.head)
        if (manifest.index.equals(info.roots.index) && manifest.tree.equals(info.roots.tree) && manifest.card.equals(cardCid)) {
          lock?.close()
          progress({ phase: 'commit', files: matched, totalFiles: matched, bytes: matchedBytes, totalBytes: matchedBytes })
          const changes = { added: 0, removed: 0, modified: 0 }
          return { version: parent as Link<VersionManifest>, manifest, unchanged: true, changes, skipped, lineage }
        }
      }
      const parentManifest = parent ? await readParent(store, parent, info?.head) : undefined

      // Files flow in path order, through a window of imports, into the index, the tree, the cache and
      // the change count: memory holds the window and the open nodes, not every entry.
      const writer = new StatCacheWriter(store.root, rulesKey, buildTuning)
      let cacheOut = writer
      let sealedWriter = false
      try {
        const imports = new Imports(options.jobs, store, rules, problems, racyAfter, (read, bytes, path) =>
          progress({
            phase: 'import',
            files: read,
            totalFiles: Math.max(read, info?.count ?? 0),
            bytes,
            totalBytes: Math.max(bytes, info?.bytes ?? 0),
            path,
          }),
        )
        /** Reads the files the caches do not know, in a window of imports; `onEntry` gets every file in order. */
        const importAll = async (
          files: AsyncIterable<BuildFile>,
          onEntry: (file: BuildFile, e: ImportedEntry) => Promise<void> | undefined,
        ): Promise<void> => {
          for await (const { group, read } of orderedWindow(groupFiles(files), buildTuning.window ?? imports.window, (g) =>
            imports.run(g),
          )) {
            for (let n = 0; n < group.length; n++) {
              const file = group[n]
              const hit = file.hit
              const done = onEntry(file, read[n] ?? { entry: hit!.entry, dagSize: hit!.dagSize, stamp: file.stamp, cacheable: true })
              if (done) await done
            }
          }
        }
        const partialCursors = partials.map((p) => p.cursor())
        let count = 0
        let bytes = 0
        let index: BuiltIndex
        let tree: CID
        let counted: ChangeSummary | undefined
        let cacheComplete = true
        const changed = diff?.changes ?? []
        const editable =
          diff?.complete === true &&
          !lock!.damaged &&
          intact &&
          parentManifest !== undefined &&
          info?.roots !== undefined &&
          info.roots.index.equals(parentManifest.index) &&
          info.roots.tree.equals(parentManifest.tree) &&
          matched + changed.filter((c) => c.knownCid).length === info.count &&
          !rules.anyWholeRule()
        buildTuning.onPlan?.(editable ? 'edit' : 'merge')
        if (editable) {
          // A few changes: only the changed files are read, and the parent's index and tree are edited
          // (the leaves and folders no change touches are kept by their links), as is the stat cache.
          const read: ImportedEntry[] = []
          const files = buildFiles({
            scanned: changed.flatMap((c) => (c.file ? [c.file] : [])),
            sealedIntact: false,
            partials: partialCursors,
            store,
            mustRead: () => false,
          })
          await importAll(files, (_, e) => {
            read.push(e)
            if (e.cacheable && problems.count === 0) writer.add(e)
            return undefined
          })
          problems.throwIfAny()
          let k = 0
          const edits = changed.map((c) => ({ change: c, e: c.file ? read[k++] : undefined }))
          const counts = { added: 0, removed: 0, modified: 0 }
          count = matched
          bytes = matchedBytes
          for (const { change, e } of edits) {
            if (!e) counts.removed++
            else if (!change.knownCid) counts.added++
            else if (!equalBytes(change.knownCid, cidV1Bytes(e.entry.cid))) counts.modified++
            if (e) {
              count++
              bytes += e.entry.size
            }
          }
          counted = counts
          progress({ phase: 'commit', files: count, totalFiles: count, bytes, totalBytes: bytes })
          index = await editIndex(
            store,
            parentManifest.index,
            edits.map(({ change, e }) => ({ path: change.path, entry: e?.entry })),
            put,
          )
          tree = (
            await editTree(
              store,
              parentManifest.tree,
              edits.map(({ change, e }) => ({ path: change.path, cid: e?.entry.cid, dagSize: e?.dagSize ?? 0 })),
              put,
            )
          ).cid
          // the records read are in `writer` (a partial cache, for a build killed midway); the whole cache goes to another
          cacheOut = new StatCacheWriter(store.root, rulesKey, buildTuning)
          cacheComplete = sealed!.copyTo(
            cacheOut,
            edits.map(({ change, e }) => ({ path: change.path, facts: e?.cacheable ? e : undefined })),
            comparePaths,
          )
        } else {
          // when the sealed cache holds exactly the parent's entries (it names the parent's index), its
          // records tell the changes without reading the parent's index
          const fromCache = info?.roots !== undefined && parentManifest !== undefined && info.roots.index.equals(parentManifest.index)
          const counter: Changes = !parentManifest
            ? new AllAdded()
            : fromCache
              ? new CachedChanges(info.count)
              : new ChangeCounter(store, parentManifest.index)
          const files = buildFiles({
            replay:
              lock && lock.passed > 0 ? { cursor: sealed!.cursor(), count: lock.passed, root: dataset.root, changes: changed } : undefined,
            scanned: lock === undefined ? walker : unreplayed(changed, lock.passed, diff?.complete ? undefined : diff?.pending, walker),
            sealed: lock,
            sealedIntact: intact,
            partials: partialCursors,
            store,
            mustRead: (p) => rules.wholeRule(p),
          })
          const indexBuilder = new IndexBuilder(put)
          const treeBuilder = new TreeBuilder(put)
          await importAll(files, async (file, e) => {
            count++
            bytes += e.entry.size
            const added = indexBuilder.add(e.entry)
            if (added) await added
            const seen = counter.see(e.entry, file)
            if (seen) await seen
            // once a row is invalid nothing is committed: no fact is kept for the next build either
            if (e.cacheable && problems.count === 0) writer.add(e)
            const placed = treeBuilder.add(e.entry.path, e.entry.cid, e.dagSize)
            if (placed) await placed
          })
          // every invalid row of every shard at once, before anything is committed
          problems.throwIfAny()
          tree = (await treeBuilder.finish()).cid
          progress({ phase: 'commit', files: count, totalFiles: count, bytes, totalBytes: bytes })
          index = await indexBuilder.finish()
          if (!parentManifest?.index.equals(index.root)) {
            counted = lock?.damaged ? await countChanges(store, parentManifest?.index, index.root) : await counter.finish()
          }
        }
        const changes: ChangeSummary = parentManifest?.index.equals(index.root) ? { added: 0, removed: 0, modified: 0 } : counted!
        const seal = (head: CachedHead): void => {
          const roots = cacheComplete && cacheOut.size === count ? { index: index.root, tree, totals: index.totals } : undefined
          if (cacheOut !== writer) writer.close()
          cacheOut.seal({ roots, head, store: store.marks() })
          sealedWriter = true
        }
        const same =
          parentManifest !== undefined &&
          parentManifest.index.equals(index.root) &&
          parentManifest.card.equals(cardCid) &&
          parentManifest.tree.equals(tree)
        if (same && !options.allowEmpty) {
          seal({ cid: parent as CID, bytes: encodeManifest<'cairn.version'>(parentManifest).bytes })
          return { version: parent as Link<VersionManifest>, manifest: parentManifest, unchanged: true, changes, skipped, lineage }
        }
        await store.put(cardCid, cardBytes)
        const { block, manifest } = await storeVersion(store, {
          name: card.name,
          parent: parent as Link<VersionManifest> | null,
          date: options.date,
          message: options.message,
          card: cardCid,
          index: index.root,
          tree,
          totals: index.totals,
        })
        if (!options.keepHead) await dataset.refs.setHead(block.cid, { op: 'build', message: options.message })
        seal(block)
        return { version: block.cid, manifest, unchanged: false, changes, skipped, lineage }
      } finally {
        // a build that fails keeps what it learned (a partial cache) for the next one
        if (!sealedWriter) {
          writer.close()
          if (cacheOut !== writer) cacheOut.close()
        }
        lock?.close()
      }
    }),
  )
}

/**
 * The walked files the replay of the sealed cache's first `replayed` records does not yield: the
 * changes too when nothing is replayed, then the file the diff stopped at and the rest of the walk
 * (none when the diff was complete).
 */
function* unreplayed(
  changes: readonly WalkChange[],
  replayed: number,
  pending: WalkedFile | undefined,
  rest: Iterator<WalkedFile>,
): Generator<WalkedFile> {
  if (replayed === 0) for (const c of changes) if (c.file) yield c.file
  if (pending === undefined) return
  yield pending
  for (let next = rest.next(); !next.done; next = rest.next()) yield next.value
}

/** Counts changes between two index roots, reading only the nodes that differ (after a damaged cache). */
async function countChanges(store: BlockStore, before: CID | undefined, after: CID): Promise<ChangeSummary> {
  const counts = { added: 0, removed: 0, modified: 0 }
  if (!before) {
    for await (const _ of walkEntries(store, after)) counts.added++
    return counts
  }
  const counter = new ChangeCounter(store, before)
  for await (const e of walkEntries(store, after)) await counter.see(e)
  return counter.finish()
}

/** A file of the new version, imported or found unchanged in the stat cache. */
interface ImportedEntry extends FileFacts {
  readonly cacheable: boolean
}

/** An import group's files and, for each one read, its entry (none for a cache hit). */
interface Imported {
  readonly group: readonly BuildFile[]
  readonly read: readonly (ImportedEntry | undefined)[]
}

/**
 * Reads the files of a build that the cache does not know unchanged, group by group. The threads are
 * chosen at the first group past {@link INLINE_FILES} files or {@link INLINE_BYTES} bytes to read (a
 * few small files are read by the main thread: a thread's start costs more), as {@link defaultJobs} says.
 */
class Imports {
  private read = 0
  private readBytes = 0
  private done = 0
  private doneBytes = 0
  private pool: HashPool | undefined
  private readonly inline = hashPool(0)

  constructor(
    private readonly jobs: number | undefined,
    private readonly store: BlockStore,
    private readonly rules: RowRules,
    private readonly problems: RowProblems,
    private readonly racyAfter: bigint,
    private readonly progress: (files: number, bytes: number, path: string) => void,
  ) {
    if (jobs !== undefined) this.pool = hashPool(jobs)
  }

  /** Groups in flight: enough to keep every thread busy while the main thread lays out and writes. */
  get window(): number {
    return 2 * Math.max(this.jobs ?? availableParallelism(), 1) + 2
  }

  async run(group: readonly BuildFile[]): Promise<Imported> {
    const todo = group.filter((f) => f.hit === undefined)
    const read: (ImportedEntry | undefined)[] = []
    if (todo.length === 0) {
      for (const f of group) {
        this.done++
        this.doneBytes += Number(f.stamp[0])
        read.push(undefined)
      }
      return { group, read }
    }
    const batch = todo.map((f) => ({ path: f.abs, label: f.path, expected: identityOfStamp(f.stamp) }))
    const pool = this.poolFor(batch)
    const imported = await importFiles(batch, (b) => this.store.put(b.cid, b.bytes, b.from), { pool, reuseBuffers: true })
    let k = 0
    for (const f of group) {
      this.done++
      this.doneBytes += Number(f.stamp[0])
      if (f.hit !== undefined) {
        read.push(undefined)
        continue
      }
      const got = imported[k++]
      const reader = readerFor(f.path)
      let entry: ShardEntry = { path: f.path, cid: got.cid, size: got.size, format: 'bytes' }
      if (reader) {
        entry = await describe(reader, f.path, f.abs, got.cid, got.size, this.rules, this.store, this.problems)
        // a format reader read the file a second time: it must still be the file that was hashed
        await assertUnchanged(f.abs, f.path, got.identity)
      }
      // a file modified in the racy window could change again unseen: not cached
      read.push({ entry, dagSize: got.dagSize, stamp: f.stamp, cacheable: !changedSince(f.stamp, this.racyAfter) })
      // reported for each file read (a file found in the cache is merely counted)
      this.progress(this.done, this.doneBytes, f.path)
    }
    return { group, read }
  }

  private poolFor(batch: readonly { readonly expected: FileIdentity }[]): HashPool {
    if (this.pool) return this.pool
    let bytes = 0
    let large = false
    for (const f of batch) {
      bytes += f.expected.size
      large ||= f.expected.size > CHUNK_SIZE
    }
    this.read += batch.length
    this.readBytes += bytes
    if (this.read <= INLINE_FILES && this.readBytes <= INLINE_BYTES) return this.inline
    this.pool = hashPool(large ? availableParallelism() : smallFileJobs())
    return this.pool
  }
}

/**
 * Cuts the build's files into import groups ({@link ImportGrouper}), keeping their order; a file found
 * in the cache costs no bytes. Lazy: a group is cut when it is asked for.
 */
async function* groupFiles(files: AsyncIterable<BuildFile>): AsyncGenerator<BuildFile[]> {
  const grouper = new ImportGrouper<BuildFile>(buildTuning.groupFiles ?? GROUP_FILES)
  for await (const f of files) yield* grouper.add(f, f.hit ? 0 : Number(f.stamp[0]))
  yield* grouper.end()
}

/**
 * Maps `items` through `fn` with at most `limit` calls in flight and yields the results in order (as
 * `mapOrdered`, for items that come asynchronously). Calls still in flight when the consumer stops
 * or one fails are awaited (none is left unobserved).
 */
async function* orderedWindow<T, R>(items: AsyncIterable<T>, limit: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const window: Promise<R>[] = []
  try {
    for await (const item of items) {
      const p = fn(item)
      p.catch(() => {}) // observed below, in turn
      window.push(p)
      if (window.length >= Math.max(1, limit)) yield await (window.shift() as Promise<R>)
    }
    while (window.length > 0) yield await (window.shift() as Promise<R>)
  } finally {
    await Promise.allSettled(window)
  }
}

/**
 * Sizes a test may force small (the property tests build with tiny frames, groups and windows): the
 * result never depends on them.
 */
export const buildTuning: {
  frameBytes?: number
  groupFiles?: number
  window?: number
  changeLimit?: number
  /** Told which way the index and tree were made: edited from the parent's, or built from every file. */
  onPlan?: (plan: 'edit' | 'merge') => void
} = {}

/**
 * Changes (files added, modified or removed since the sealed cache) a build keeps in memory to edit
 * its parent's index and tree; past this many it builds them again from all the files (and reads at
 * least this many files, which costs more than the walk it then replays).
 */
const CHANGE_LIMIT = 16_384

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

  /** True when some rule's keys must be unique across its shards (then a build reads all of them). */
  anyWholeRule(): boolean {
    return (this.card.shards ?? []).some((r) => r.primaryKey && r.keyScope === 'rule')
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
  /** Counts `entry`, of build file `file`; a promise only when it must read a block. */
  see(entry: ShardEntry, file?: BuildFile): Promise<void> | undefined
  finish(): Promise<ChangeSummary>
}

/** No parent: every shard is added. */
class AllAdded implements Changes {
  private added = 0
  see(): undefined {
    this.added++
    return undefined
  }
  async finish(): Promise<ChangeSummary> {
    return { added: this.added, removed: 0, modified: 0 }
  }
}

/** Changes against the parent's index: the parent's entries are read alongside, one index node at a time. */
class ChangeCounter implements Changes {
  private readonly before: AsyncIterator<ShardEntry>
  private next: ShardEntry | undefined
  private started = false
  private readonly counts = { added: 0, removed: 0, modified: 0 }

  constructor(store: BlockStore, parentIndex: CID) {
    this.before = walkEntries(store, parentIndex)
  }

  see(entry: ShardEntry): Promise<void> {
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
    if (!this.started) await this.advance()
    while (this.next) {
      this.counts.removed++
      await this.advance()
    }
    return { ...this.counts }
  }

  private async advance(): Promise<void> {
    this.started = true
    const r = await this.before.next()
    this.next = r.done ? undefined : r.value
  }
}

/**
 * Changes against a sealed stat cache that holds exactly the parent's entries (its roots are the
 * parent's): a file the cache knows at its path is the parent's entry, modified when its CID differs;
 * a path it lacks is added, and a record no file took was removed.
 */
class CachedChanges implements Changes {
  private readonly counts = { added: 0, removed: 0, modified: 0 }
  private matched = 0

  /** `size`: the records of the cache. */
  constructor(private readonly size: number) {}

  see(entry: ShardEntry, file?: BuildFile): undefined {
    const known = file?.known
    if (known === undefined) this.counts.added++
    else {
      this.matched++
      if (file!.hit === undefined && !equalBytes(known.cid, cidV1Bytes(entry.cid))) this.counts.modified++
    }
    return undefined
  }

  async finish(): Promise<ChangeSummary> {
    return { ...this.counts, removed: this.size - this.matched }
  }
}

function cidV1Bytes(cid: CID): Uint8Array {
  return cid.version === 0 ? cid.toV1().bytes : cid.bytes
}

/**
 * Hashing threads of a build unless told, for the files it must read (those not found in the cache).
 * A few small ones: none, the main thread reads them itself, for a thread's start costs more (tens of
 * ms and ~10 MiB, against ~30 µs per small file). Mostly files larger than a chunk: one per CPU,
 * hashing is the work. Mostly small files: one per CPU but one, for the main thread lays out, indexes
 * and writes each small file, and on 2 CPUs a second hashing thread only took CPU from it (10,000
 * files of 4 KiB: 0.71-0.79 s with one thread, 0.73-0.86 s with two; 1 GiB in 64 files: 0.92-0.97 s
 * with two, 1.07-1.25 s with one). The files come as a stream, so the choice is made at the first
 * group past the inline budget, by that group's files (see {@link Imports}).
 */
const INLINE_FILES = 64
const INLINE_BYTES = 4 * CHUNK_SIZE

/** Hashing threads for small files: one per CPU but one (see {@link INLINE_FILES}). */
function smallFileJobs(): number {
  return Math.max(1, availableParallelism() - 1)
}

/**
 * True when `path` names a shard of the folder: a normalised path to a regular file (never through a
 * link), with no hidden segment, not the card and not ignored. What the scan would find, for one path.
 */
function isShardFile(root: string, path: string, ignore: IgnoreRules): boolean {
  try {
    checkShardPath(path, 'path')
  } catch {
    return false
  }
  if (path === CARD_FILE) return false
  const segments = path.split('/')
  let at = root
  for (let i = 0; i < segments.length; i++) {
    const name = segments[i]
    if (name.startsWith('.')) return false
    at = join(at, name)
    const last = i === segments.length - 1
    if (ignore.ignores(segments.slice(0, i + 1).join('/'), !last)) return false
    try {
      const st = lstatSync(at)
      if (last ? !st.isFile() : !st.isDirectory()) return false
    } catch {
      return false
    }
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

/** The totals type, re-exported for callers of build. */
export type { Totals }
