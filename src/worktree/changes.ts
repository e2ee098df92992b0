/**
 * What the folder holds against a version, file by file: the same scan as `build` (with the ignore
 * rules), each file's CID taken from the stat cache when its stamp is unchanged and hashed otherwise
 * (nothing is written to the store), merged with the version's entries in path order. Used by
 * `status`, `diff --worktree` and `restore`.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagJson from '@ipld/dag-json'
import { CID, cidFor, DAG_JSON } from '../cid.js'
import { CARD_FILE, type Dataset } from '../dataset.js'
import type { EntryChange } from '../diff/index-walk.js'
import { isCairnError } from '../errors.js'
import { readerFor } from '../formats/index.js'
import { comparePaths, decodeManifest, type ShardEntry, type VersionManifest } from '../manifest.js'
import { identityOfStamp, sameStamp, walkFiles, type SkippedEntry, type Stamp, type WalkedFile } from '../scan.js'
import { openPartialCaches, openStatCache, type CachedHead, type StatCacheCursor } from '../store/stat-cache.js'
import type { HashPool } from '../util/hash-pool.js'
import { checkBlock } from '../car/block.js'
import { loadIgnoreRules, type IgnoreRules } from './ignore.js'

/** The folder's card against the version's: `missing` when the folder has no `cairn.json`. */
export type CardState = 'same' | 'modified' | 'missing'

/** What {@link worktreeChanges} found. */
export interface WorktreeChanges {
  /** The version compared with, or undefined when HEAD names none yet (every file is then added). */
  readonly version: CID | undefined
  readonly manifest: VersionManifest | undefined
  /** Paths whose file differs from the version's entry (added, removed, other CID), in path order. */
  readonly changes: readonly EntryChange[]
  readonly card: CardState
  readonly skipped: readonly SkippedEntry[]
  /** Files in the folder (after the ignore rules). */
  readonly files: number
  /** Files read and hashed (not found unchanged in the stat cache). */
  readonly hashed: number
}

/** Files hashed per wave: memory holds a wave's files, not one per file of the folder. */
const WAVE = 512

/** A file to hash, and the version's entry at its path (if any). */
interface Waiting {
  readonly path: string
  readonly abs: string
  readonly stamp: Stamp
  readonly before: ShardEntry | undefined
}

/**
 * Compares the folder of `dataset` with `version` (undefined: nothing built yet). Throws `USAGE` for a
 * bad `.cairnignore`, `MISSING_BLOCK` / `INVALID_MANIFEST` for the version, `IO`, `BAD_PATH` as scan.
 * Memory holds the changes, a wave of files to hash and the walk's open folders, not every file.
 */
export async function worktreeChanges(
  dataset: Dataset,
  version: CID | undefined,
  options: { readonly jobs?: number } = {},
): Promise<WorktreeChanges> {
  const store = dataset.store
  const cardText = await readFile(join(dataset.root, CARD_FILE), 'utf8').catch(() => undefined)
  const cardValue = parseJson(cardText)
  const key = rulesKey(cardValue)
  const sealed = openStatCache(store.root, key)
  const ignore = await loadIgnoreRules(dataset.root)
  const manifest = version ? await versionOf(dataset, version, sealed?.info?.head) : undefined
  // before the first version, a card is as new as every file
  const card: CardState =
    cardText === undefined
      ? 'missing'
      : manifest && cardValue !== undefined && cidOf(cardValue)?.equals(manifest.card)
        ? 'same'
        : 'modified'
  // the sealed cache holds exactly the version's entries: the folder is compared with its records alone
  const asVersion = manifest !== undefined && sealed?.info?.roots?.index.equals(manifest.index) === true
  if (asVersion) {
    const found = await againstCache(dataset, sealed!.cursor(), ignore, options.jobs)
    if (found) return { version, manifest, card, ...found }
  }
  const partials = [...(sealed ? [sealed] : []), ...openPartialCaches(store.root, key)].map((c) => c.cursor())
  return { version, manifest, card, ...(await againstIndex(dataset, manifest, partials, ignore, options.jobs)) }
}

type Found = Pick<WorktreeChanges, 'changes' | 'skipped' | 'files' | 'hashed'>

/**
 * The folder against a sealed cache that holds the version's entries: a file found unchanged in it
 * is the version's entry; another is hashed and compared with the record at its path; a record no
 * file took was removed. Undefined when the cache turns out damaged (the caller then reads the index).
 */
async function againstCache(
  dataset: Dataset,
  cursor: StatCacheCursor,
  ignore: IgnoreRules,
  jobs: number | undefined,
): Promise<Found | undefined> {
  const skipped: SkippedEntry[] = []
  const changes: EntryChange[] = []
  const hasher = new Hasher(jobs, changes)
  let files = 0
  try {
    for (const f of walkFiles(dataset.root, { ignore }, skipped)) {
      files++
      const known = cursor.seek(f.path, comparePaths, (c) => changes.push({ path: c.path, before: c.entry }))
      if (known) cursor.advance()
      if (known && sameStamp(known.stamp, f.stamp)) continue
      await hasher.add({ path: f.path, abs: f.abs, stamp: f.stamp, before: known?.entry })
    }
    for (let c = cursor.current; c !== undefined; c = cursor.current) {
      changes.push({ path: c.path, before: c.entry })
      cursor.advance()
    }
    if (cursor.damaged) return undefined
    await hasher.flush()
  } finally {
    cursor.close()
  }
  changes.sort((a, b) => comparePaths(a.path, b.path))
  return { changes, skipped, files, hashed: hasher.hashed }
}

/**
 * The folder against the version's index, read alongside the walk; a file's CID comes from a cache
 * (sealed or partial: a CID is a fact about bytes, whatever the store holds) when its stamp is
 * unchanged, and is hashed otherwise.
 */
async function againstIndex(
  dataset: Dataset,
  manifest: VersionManifest | undefined,
  caches: readonly StatCacheCursor[],
  ignore: IgnoreRules,
  jobs: number | undefined,
): Promise<Found> {
  const skipped: SkippedEntry[] = []
  const changes: EntryChange[] = []
  const hasher = new Hasher(jobs, changes)
  let files = 0
  const see = async (f: WalkedFile, before: ShardEntry | undefined): Promise<void> => {
    files++
    for (const c of caches) {
      const known = c.seek(f.path, comparePaths)
      if (known && sameStamp(known.stamp, f.stamp)) {
        if (before && equalCid(before.cid, known.cid)) return
        changes.push({ path: f.path, before, after: entryOf(f.path, Number(f.stamp[0]), CID.decode(known.cid.slice())) })
        return
      }
    }
    await hasher.add({ path: f.path, abs: f.abs, stamp: f.stamp, before })
  }
  const walker = walkFiles(dataset.root, { ignore }, skipped)
  let next = walker.next()
  try {
    if (manifest) {
      const { walkEntries } = await import('../shard-index/prolly.js')
      for await (const entry of walkEntries(dataset.store, manifest.index)) {
        while (!next.done && comparePaths(next.value.path, entry.path) < 0) {
          await see(next.value, undefined)
          next = walker.next()
        }
        if (!next.done && next.value.path === entry.path) {
          await see(next.value, entry)
          next = walker.next()
        } else changes.push({ path: entry.path, before: entry })
      }
    }
    for (; !next.done; next = walker.next()) await see(next.value, undefined)
    await hasher.flush()
  } finally {
    for (const c of caches) c.close()
  }
  changes.sort((a, b) => comparePaths(a.path, b.path))
  return { changes, skipped, files, hashed: hasher.hashed }
}

/**
 * Hashes files a wave at a time (nothing is written) and records those that differ from their entry.
 * The hashing machinery (its threads among it) is loaded with the first file to hash: a folder found
 * unchanged in the stat cache, the common case, never needs it.
 */
class Hasher {
  hashed = 0
  private wave: Waiting[] = []
  private pool: HashPool | undefined

  constructor(
    private readonly jobs: number | undefined,
    private readonly changes: EntryChange[],
  ) {}

  async add(file: Waiting): Promise<void> {
    this.wave.push(file)
    if (this.wave.length >= WAVE) await this.flush()
  }

  async flush(): Promise<void> {
    const at = this.wave
    this.wave = []
    if (at.length === 0) return
    const [{ importFile, importFiles, importGroups }, { mapLimit }] = await Promise.all([
      import('../unixfs/file.js'),
      import('../util/pool.js'),
    ])
    this.pool ??= (await import('../util/hash-pool.js')).hashPool(this.jobs)
    const pool = this.pool
    const cids: CID[] = new Array<CID>(at.length)
    const groups = [...importGroups(at.length, (k) => Number(at[k].stamp[0]))]
    await mapLimit(groups, 2 * pool.size + 2, async (group) => {
      const found = group.map((k) => at[k])
      const imported = await importFiles(
        found.map((f) => ({ path: f.abs, label: f.path, expected: identityOfStamp(f.stamp) })),
        undefined,
        { pool },
      ).catch((e: unknown) => {
        if (!isCairnError(e, 'FILE_CHANGED')) throw e
        // touched since the scan: read each as it is now
        return Promise.all(found.map((f) => importFile(f.abs, undefined, { label: f.path, pool })))
      })
      group.forEach((k, n) => (cids[k] = imported[n].cid))
    })
    this.hashed += at.length
    for (let k = 0; k < at.length; k++) {
      const { before, path, stamp } = at[k]
      if (before && before.cid.equals(cids[k])) continue
      this.changes.push({ path, before, after: entryOf(path, Number(stamp[0]), cids[k]) })
    }
  }
}

/** The stat cache's key: the card's row rules, as `build` computes it (a cache saved under other rules is not used). */
function rulesKey(card: unknown): string {
  const shards = card && typeof card === 'object' ? ((card as { shards?: unknown }).shards ?? []) : []
  return createHash('sha256').update(JSON.stringify(shards)).digest('hex')
}

/** The version's manifest, from the stat cache's copy of HEAD's block when it is that one (checked), else the store. */
async function versionOf(dataset: Dataset, version: CID, head: CachedHead | undefined): Promise<VersionManifest> {
  if (head?.cid.equals(version)) {
    try {
      await checkBlock(version, head.bytes)
      return decodeManifest('cairn.version', version, head.bytes)
    } catch {
      // not usable: read it from the store
    }
  }
  return (await import('../version.js')).readVersion(dataset.store, version)
}

/** A folder file as an entry: its format is the one its name says (its rows are not read). */
function entryOf(path: string, size: number, cid: CID): ShardEntry {
  return { path, cid, size, format: readerFor(path)?.name ?? 'bytes' }
}

function equalCid(cid: CID, bytes: Uint8Array): boolean {
  const v1 = cid.version === 0 ? cid.toV1().bytes : cid.bytes
  return Buffer.compare(v1, bytes) === 0
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/** The card block's CID for a parsed card, or undefined when dag-json cannot encode it. */
function cidOf(card: unknown): CID | undefined {
  try {
    return cidFor(DAG_JSON, dagJson.encode(card))
  } catch {
    return undefined
  }
}
