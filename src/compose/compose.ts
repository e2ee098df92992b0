/**
 * `compose`: one version whose shard index and tree are the union of several parts' (each part a
 * version built elsewhere, e.g. by one worker of a pool on its partition), made without fetching a
 * byte of their files: only the parts' version, card, index, schema and directory blocks are read,
 * each checked against its CID. The parts' files flow in path order through the same builders a
 * build uses, so the result is, CID for CID, the version one `build` over the union of the files
 * gives (the prolly index and the IPIP-499 tree are canonical). See docs/compose.md.
 */
import { join } from 'node:path'
import * as dagJson from '@ipld/dag-json'
import { cidFor, DAG_JSON, type CID, type Link } from '../cid.js'
import { readCard, STORE_DIR, withDataset, type Dataset } from '../dataset.js'
import { CairnError, isCairnError } from '../errors.js'
import { checkBuildLineage, type SourceCheck } from '../lineage/check.js'
import { checkShardPath, comparePaths, decodeManifest, PROFILE, type Card, type VersionManifest } from '../manifest.js'
import { absoluteSources, readCloneRecord, writeCloneRecord } from '../release/clone-record.js'
import { openSources, type SourceList } from '../sources/index.js'
import { IndexBuilder } from '../shard-index/prolly.js'
import type { BlockSource } from '../store/blocks.js'
import { withLock } from '../store/lock.js'
import { TreeBuilder } from '../unixfs/tree.js'
import { readCardBlock, readVersion, resolveRef, storeVersion } from '../version.js'
import { partFiles, type PartFile } from './part-files.js'
import { CardRules, RuleCheck } from './rules.js'

/** One part to compose: a version, optionally placed under a folder of the composition. */
export interface ComposePart {
  /** The part's version: a CID (or a ref of the composing dataset). */
  readonly ref: string
  /** A folder of the composition the part's files go under (`--at <prefix>=<cid>`); none: at the top. */
  readonly at?: string
}

/** What {@link compose} is told. */
export interface ComposeOptions {
  /** The composing dataset's folder or a folder inside it (default: the current folder). Its card is the version's card. */
  readonly dir?: string
  readonly parts: readonly ComposePart[]
  readonly message?: string
  /** The version's `created` time. Default: `SOURCE_DATE_EPOCH` (seconds) when set, else now. */
  readonly date?: Date
  /** Where the parts' blocks are, after the store (then the sources a clone recorded). */
  readonly from?: readonly string[]
  /** Make a new version even when the composition equals HEAD. */
  readonly allowEmpty?: boolean
  readonly onProgress?: (progress: ComposeProgress) => void
}

/** Progress of a compose: after the parts are read, every 1,000 files merged, and at the end. */
export interface ComposeProgress {
  readonly phase: 'parts' | 'merge' | 'commit'
  /** Files merged so far. */
  readonly files: number
  /** Files the parts' versions declare in all. */
  readonly totalFiles: number
}

/** One part as it went into the composition. */
export interface ComposedPart {
  readonly version: Link<VersionManifest>
  /** The folder its files went under ('' for the top). */
  readonly at: string
  /** The part's own totals (its version's). */
  readonly totals: VersionManifest['totals']
}

export interface ComposeResult {
  /** The composed version (HEAD now), or HEAD when nothing changed. */
  readonly version: Link<VersionManifest>
  readonly manifest: VersionManifest
  /** True when the composition equals HEAD and no version was made. */
  readonly unchanged: boolean
  readonly parts: readonly ComposedPart[]
  /** Each `derivedFrom` release of the card: verified, or recorded unverified and why (as `build`). */
  readonly lineage: readonly SourceCheck[]
}

/** Overlapping paths named in the error before the rest are only counted. */
const MAX_OVERLAPS_NAMED = 20

/**
 * Composes the parts into one version of the dataset at `dir` and moves HEAD to it. Its parent is
 * HEAD (none in a new dataset), its card the dataset's `cairn.json`; the folder's files are not read.
 *
 * @throws {CairnError} `USAGE` (no part, a bad `at`), `BAD_REF`, `NOT_A_DATASET`, `INVALID_CARD`,
 *   `PATHS_OVERLAP` naming the paths two parts both bring, `INCOMPATIBLE_PARTS` (another profile, or
 *   shards checked under other rules than the card's), `MISSING_BLOCK` / `FETCH_FAILED` /
 *   `CORRUPT_BLOCK` / `INVALID_MANIFEST` naming the part whose blocks could not be read or are bad,
 *   `LOCKED`, `IO`. HEAD and the refs are unchanged on any error.
 */
export async function compose(options: ComposeOptions): Promise<ComposeResult> {
  if (options.parts.length === 0) throw new CairnError('USAGE', 'compose needs at least one part (a version CID)')
  const prefixes = options.parts.map((p) => normalPrefix(p.at))
  return withDataset(options.dir, (dataset) =>
    withLock(dataset.root, () =>
      withPartSource(dataset, options.from ?? [], async (source) => {
        const card = await readCard(dataset.root)
        const store = dataset.store
        const progress = options.onProgress ?? (() => {})
        const parts: Part[] = []
        for (let i = 0; i < options.parts.length; i++) {
          const ref = options.parts[i].ref
          const cid = await resolveRef(dataset, ref, source)
          parts.push(await openPart(source, cid, prefixes[i]))
        }
        const totalFiles = parts.reduce((n, p) => n + p.version.totals.shards, 0)
        progress({ phase: 'parts', files: 0, totalFiles })

        const put = (b: { cid: CID; bytes: Uint8Array }): Promise<void> => store.put(b.cid, b.bytes)
        const index = new IndexBuilder(put)
        const tree = new TreeBuilder(put)
        const rules = new RuleCheck(
          CardRules.of(card),
          parts.map((p) => ({ rules: CardRules.of(p.card), label: p.label })),
        )
        const schemas = new SchemaCopier(source, store)
        const named = namedPaths(card)
        const found = new Set<string>()
        const overlaps: { path: string; parts: string[] }[] = []
        let overlapCount = 0
        let files = 0

        const merge = new PartMerge(parts)
        await merge.start()
        for (let next = merge.pop(); next !== undefined; next = merge.pop()) {
          const { part, file } = next
          const path = file.entry.path
          // every other part at the same path: an overlap
          const others = await merge.takeSame(path)
          if (others.length > 0) {
            overlapCount++
            if (overlaps.length < MAX_OVERLAPS_NAMED) overlaps.push({ path, parts: [part, ...others].map((i) => parts[i].label) })
          }
          if (overlapCount > 0) continue
          await forPart(parts[part], async () => {
            rules.check(part, file.entry, file.partPath)
            await schemas.copy(file.entry.schema)
          })
          const added = index.add(file.entry)
          if (added) await added
          const placed = fileOrFolder(() => tree.add(path, file.entry.cid, file.dagSize))
          if (placed) await placed
          if (named.has(path)) found.add(path)
          if (++files % 1000 === 0) progress({ phase: 'merge', files, totalFiles })
        }
        if (overlapCount > 0) {
          const list = overlaps.map((o) => `${o.path} (${o.parts.join(', ')})`).join('; ')
          const more = overlapCount > overlaps.length ? `; and ${overlapCount - overlaps.length} more` : ''
          throw new CairnError(
            'PATHS_OVERLAP',
            `${overlapCount} path${overlapCount === 1 ? ' is' : 's are'} in more than one part: ${list}${more}`,
            {
              subject: overlaps[0].path,
              details: overlaps,
              hint: 'give each worker its own files, or place the parts apart with --at <folder>=<cid>',
            },
          )
        }
        progress({ phase: 'commit', files, totalFiles })
        const treeRoot = (await fileOrFolder(() => tree.finish())).cid
        const built = await index.finish()

        const parent = (await dataset.refs.head()) ?? null
        const lineage = await checkBuildLineage(card, { store, head: parent, from: options.from, hasPath: (p) => found.has(p) })
        const cardBytes = dagJson.encode(card)
        const cardCid = cidFor<Card>(DAG_JSON, cardBytes)
        const result = (version: Link<VersionManifest>, manifest: VersionManifest, unchanged: boolean): ComposeResult => ({
          version,
          manifest,
          unchanged,
          parts: parts.map((p) => ({ version: p.cid, at: p.at, totals: p.version.totals })),
          lineage,
        })
        if (parent && !options.allowEmpty) {
          const head = await readVersion(store, parent)
          if (head.index.equals(built.root) && head.tree.equals(treeRoot) && head.card.equals(cardCid)) {
            return result(parent as Link<VersionManifest>, head, true)
          }
        }
        await store.put(cardCid, cardBytes)
        const { block, manifest } = await storeVersion(store, {
          name: card.name,
          parent: parent as Link<VersionManifest> | null,
          date: options.date,
          message: options.message,
          card: cardCid,
          index: built.root,
          tree: treeRoot,
          totals: built.totals,
        })
        // recorded before HEAD moves: a folder whose HEAD is the composition always says it lacks the files
        await recordComposition(dataset.root, block.cid, options.from ?? [])
        await dataset.refs.setHead(block.cid, { op: 'compose', message: options.message })
        return result(block.cid, manifest, false)
      }),
    ),
  )
}

/**
 * The blocks of the parts: the store, then `from`, then the sources the folder recorded (a folder
 * composed before, or a clone). A folder's own files are never read: a composing folder holds none.
 */
async function withPartSource<T>(dataset: Dataset, from: readonly string[], fn: (source: BlockSource) => Promise<T>): Promise<T> {
  const recorded = (await readCloneRecord(join(dataset.root, STORE_DIR)).catch(() => undefined))?.sources ?? []
  const specs = [...from, ...recorded]
  let remote: Promise<SourceList> | undefined
  const source: BlockSource = {
    async get(cid) {
      // asked first without a look for other writers' packs (a miss would look again, per block)
      if (specs.length === 0 || (await dataset.store.has(cid))) return dataset.store.get(cid)
      remote ??= openSources(specs)
      return (await remote).get(cid)
    },
  }
  try {
    return await fn(source)
  } finally {
    await (await remote?.catch(() => undefined))?.close()
  }
}

/**
 * Records the composing folder as a clone of the composition that holds none of its files (its
 * store has the index and tree, not the files): a `build` there is refused (it would commit every file
 * as deleted) and says how to fetch them; `log`, `ls`, `diff`, `pack` fetch what the store lacks
 * from the sources recorded (the `--from` given here, then those recorded before).
 */
async function recordComposition(root: string, version: CID, from: readonly string[]): Promise<void> {
  const storeDir = join(root, STORE_DIR)
  const before = (await readCloneRecord(storeDir).catch(() => undefined))?.sources ?? []
  const sources = [...new Set([...absoluteSources(from), ...before])]
  await writeCloneRecord(storeDir, { cid: version, complete: true, sources, selections: [{ include: [], exclude: ['**'] }] })
}

/** A part being composed: its version and card, read and checked. */
interface Part {
  readonly cid: Link<VersionManifest>
  readonly at: string
  readonly label: string
  readonly version: VersionManifest
  readonly card: Card
  readonly source: BlockSource
}

/**
 * Runs a step of the tree; a path that is a file in one part and a folder in another (the tree
 * cannot hold both: a name twice in one folder) becomes `PATHS_OVERLAP`.
 */
function fileOrFolder<T>(step: () => T): T {
  const overlap = (e: unknown): unknown => {
    if (!isCairnError(e, 'BAD_PATH')) return e
    // the tree names the folder and the name in it that is both a file and a folder
    const m = /^Duplicate entry name ("(?:[^"\\]|\\.)*") in directory ("(?:[^"\\]|\\.)*")$/.exec(e.message)
    const path = m ? [JSON.parse(m[2]) as string, JSON.parse(m[1]) as string].filter((s) => s !== '.').join('/') : e.subject
    return new CairnError('PATHS_OVERLAP', `${JSON.stringify(path)} is a file in one part and a folder in another`, {
      subject: path,
      hint: 'place the parts apart with --at <folder>=<cid>, or rename the file',
      cause: e,
    })
  }
  try {
    const r = step()
    return (r instanceof Promise ? r.catch((e: unknown) => Promise.reject(overlap(e))) : r) as T
  } catch (e) {
    throw overlap(e)
  }
}

/** Reads a part's version and card; refuses another profile. Errors name the part. */
async function openPart(source: BlockSource, cid: Link<VersionManifest>, at: string): Promise<Part> {
  const label = at === '' ? cid.toString() : `${cid} (at ${at})`
  const part = { cid, at, label, source }
  return forPart(part, async () => {
    const bytes = await source.get(cid)
    let raw: unknown
    try {
      raw = dagJson.decode(bytes)
    } catch {
      raw = undefined
    }
    const profile = (raw as { type?: unknown; profile?: unknown } | undefined)?.profile
    if ((raw as { type?: unknown } | undefined)?.type === 'cairn.version' && profile !== PROFILE) {
      throw new CairnError(
        'INCOMPATIBLE_PARTS',
        `it was built with the profile ${JSON.stringify(profile)}; compose makes ${PROFILE} versions, whose CIDs another profile's files and folders do not share`,
        { subject: cid.toString(), hint: `rebuild the part with this cairn (profile ${PROFILE})` },
      )
    }
    const version = decodeManifest('cairn.version', cid, bytes)
    const card = await readCardBlock(source, version.card)
    return { ...part, version, card }
  })
}

/** Runs `fn` for `part`; a failure names the part (its code kept). */
async function forPart<T>(part: { readonly cid: CID; readonly label: string }, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    if (!isCairnError(e) || e.message.startsWith('part ')) throw e
    const missing = e.code === 'MISSING_BLOCK' || e.code === 'FETCH_FAILED'
    throw new CairnError(e.code, `part ${part.label}: ${e.message}`, {
      subject: part.cid.toString(),
      details: e.details,
      hint: missing
        ? "compose reads each part's version, card, index and folder blocks (never its files): give a source that holds them with --from (the dir: folder, gateway or CAR its worker published to)"
        : e.hint,
      cause: e,
    })
  }
}

/** The k-way merge of the parts' files by path: a binary heap of the parts' next files. */
class PartMerge {
  private readonly streams: { part: number; it: AsyncIterator<PartFile>; head?: PartFile }[]
  private heap: number[] = []

  constructor(private readonly parts: readonly Part[]) {
    this.streams = parts.map((p, part) => ({
      part,
      it: partFiles(p.source, p.version.index, p.version.tree, p.at, p.version.totals.shards)[Symbol.asyncIterator](),
    }))
  }

  /** Reads every part's first file (at once). */
  async start(): Promise<void> {
    await Promise.all(this.streams.map((_, i) => this.advance(i)))
    for (let i = 0; i < this.streams.length; i++) if (this.streams[i].head) this.push(i)
  }

  /** The next file in path order and its part, without reading further; undefined at the end. */
  pop(): { part: number; file: PartFile } | undefined {
    const i = this.heap[0]
    if (i === undefined) return undefined
    const file = this.streams[i].head as PartFile
    this.removeTop()
    this.pending = i
    return { part: i, file }
  }

  private pending: number | undefined

  /**
   * Reads the next file of the part just popped, then takes every other part's file at `path`
   * (an overlap), reading their next ones; returns those parts.
   */
  async takeSame(path: string): Promise<number[]> {
    if (this.pending !== undefined) {
      const i = this.pending
      this.pending = undefined
      await this.advance(i)
      if (this.streams[i].head) this.push(i)
    }
    const same: number[] = []
    while (this.heap.length > 0 && (this.streams[this.heap[0]].head as PartFile).entry.path === path) {
      const j = this.heap[0]
      this.removeTop()
      same.push(j)
      await this.advance(j)
      if (this.streams[j].head) this.push(j)
    }
    return same
  }

  private async advance(i: number): Promise<void> {
    const s = this.streams[i]
    const r = await forPart(this.parts[i], () => s.it.next())
    s.head = r.done ? undefined : r.value
  }

  private less(a: number, b: number): boolean {
    const x = (this.streams[a].head as PartFile).entry.path
    const y = (this.streams[b].head as PartFile).entry.path
    const c = comparePaths(x, y)
    return c < 0 || (c === 0 && a < b)
  }

  private push(i: number): void {
    const h = this.heap
    h.push(i)
    for (let k = h.length - 1; k > 0;) {
      const up = (k - 1) >> 1
      if (!this.less(h[k], h[up])) break
      ;[h[k], h[up]] = [h[up], h[k]]
      k = up
    }
  }

  private removeTop(): void {
    const h = this.heap
    const last = h.pop() as number
    if (h.length === 0) return
    h[0] = last
    for (let k = 0; ;) {
      const l = 2 * k + 1
      const r = l + 1
      let m = k
      if (l < h.length && this.less(h[l], h[m])) m = l
      if (r < h.length && this.less(h[r], h[m])) m = r
      if (m === k) break
      ;[h[k], h[m]] = [h[m], h[k]]
      k = m
    }
  }
}

/**
 * Copies the schema blocks the composed index links to into the store (fetched and checked once;
 * a shard schema is shared by many shards, so the last few thousand are remembered).
 */
class SchemaCopier {
  private readonly done = new Set<string>()

  constructor(
    private readonly source: BlockSource,
    private readonly store: { has(cid: CID): Promise<boolean>; put(cid: CID, bytes: Uint8Array): Promise<void> },
  ) {}

  async copy(schema: CID | undefined): Promise<void> {
    if (schema === undefined) return
    const key = schema.toString()
    if (this.done.has(key)) return
    if (!(await this.store.has(schema))) {
      const bytes = await this.source.get(schema)
      decodeManifest('cairn.schema', schema, bytes)
      await this.store.put(schema, bytes)
    }
    if (this.done.size >= 4096) this.done.clear()
    this.done.add(key)
  }
}

/** The paths of the release the card names (its prompt file), which lineage checks ask about. */
function namedPaths(card: Card): Set<string> {
  const prompt = card.provenance?.promptTemplate
  return new Set(prompt !== undefined && typeof prompt === 'object' && 'path' in prompt ? [prompt.path] : [])
}

/** `at` as a folder path: normalised, without a trailing `/`; '' for none. Throws `USAGE`. */
function normalPrefix(at: string | undefined): string {
  if (at === undefined) return ''
  const prefix = at.replace(/\/+$/, '')
  try {
    checkShardPath(prefix, '--at folder')
  } catch (e) {
    throw new CairnError('USAGE', `--at ${JSON.stringify(at)}: ${(e as Error).message}`, {
      subject: at,
      hint: 'a relative folder of the composition, /-separated, e.g. --at shards/worker-3=<cid>',
    })
  }
  return prefix
}
