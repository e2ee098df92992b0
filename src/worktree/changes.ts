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
import { walkEntries } from '../shard-index/prolly.js'
import { comparePaths, decodeManifest, type ShardEntry, type VersionManifest } from '../manifest.js'
import { scan, type FoundFiles, type SkippedEntry } from '../scan.js'
import { loadStatCache, type StatCache } from '../store/stat-cache.js'
import { importFile, importFiles, importGroups } from '../unixfs/file.js'
import { hashPool } from '../util/hash-pool.js'
import { mapLimit } from '../util/pool.js'
import { readVersion } from '../version.js'
import { checkBlock } from '../car/block.js'
import { loadIgnoreRules } from './ignore.js'

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

/** Files hashed per wave: memory holds a wave's CIDs, not one per file of the folder. */
const WAVE = 512

/**
 * Compares the folder of `dataset` with `version` (undefined: nothing built yet). Throws `USAGE` for a
 * bad `.cairnignore`, `MISSING_BLOCK` / `INVALID_MANIFEST` for the version, `IO`, `BAD_PATH` as scan.
 */
export async function worktreeChanges(
  dataset: Dataset,
  version: CID | undefined,
  options: { readonly jobs?: number } = {},
): Promise<WorktreeChanges> {
  const store = dataset.store
  const cardText = await readFile(join(dataset.root, CARD_FILE), 'utf8').catch(() => undefined)
  const cardValue = parseJson(cardText)
  const cache = await loadStatCache(store.root, rulesKey(cardValue))
  const { files, skipped } = await scan(dataset.root, { ignore: await loadIgnoreRules(dataset.root) })
  const manifest = version ? await versionOf(dataset, version, cache) : undefined
  // before the first version, a card is as new as every file
  const card: CardState =
    cardText === undefined
      ? 'missing'
      : manifest && cardValue !== undefined && cidOf(cardValue)?.equals(manifest.card)
        ? 'same'
        : 'modified'
  const base = { version, manifest, card, skipped, files: files.length }
  // nothing changed since the build that saved the cache: the same files, stamps and index (no file read)
  if (manifest && cache.roots?.index.equals(manifest.index) && sameFiles(files, cache)) return { ...base, changes: [], hashed: 0 }

  const changes: EntryChange[] = []
  const pool = hashPool(options.jobs)
  let hashed = 0
  // files whose stamp the cache does not know, and the version's entry at their path (if any), a wave at a time
  let waveFiles: number[] = []
  let waveEntries: (ShardEntry | undefined)[] = []
  const hashWave = async (): Promise<void> => {
    const at = waveFiles
    const entries = waveEntries
    waveFiles = []
    waveEntries = []
    const cids: CID[] = new Array<CID>(at.length)
    const groups = [...importGroups(at.length, (k) => files.size(at[k]))]
    await mapLimit(groups, 2 * pool.size + 2, async (group) => {
      const found = group.map((k) => files.at(at[k]))
      const imported = await importFiles(
        found.map((f) => ({ path: f.abs, label: f.path, expected: f.identity })),
        undefined,
        { pool },
      ).catch((e: unknown) => {
        if (!isCairnError(e, 'FILE_CHANGED')) throw e
        // touched since the scan: read each as it is now
        return Promise.all(found.map((f) => importFile(f.abs, undefined, { label: f.path, pool })))
      })
      group.forEach((k, n) => (cids[k] = imported[n].cid))
    })
    hashed += at.length
    for (let k = 0; k < at.length; k++) {
      const before = entries[k]
      if (before && before.cid.equals(cids[k])) continue
      changes.push({ path: files.path(at[k]), before, after: entryOf(files, at[k], cids[k]) })
    }
  }
  /** File `i` against the version's entry at its path (or none): decided now, or put in the wave. */
  const see = async (i: number, before: ShardEntry | undefined): Promise<void> => {
    const known = cache.get(files.path(i), i)
    if (known && files.sameStamp(i, cache.stamps, known.index)) {
      if (before && equalCid(before.cid, known.cid)) return
      changes.push({ path: files.path(i), before, after: entryOf(files, i, CID.decode(known.cid.slice())) })
      return
    }
    waveFiles.push(i)
    waveEntries.push(before)
    if (waveFiles.length >= WAVE) await hashWave()
  }
  let j = 0
  if (manifest) {
    for await (const entry of walkEntries(store, manifest.index)) {
      while (j < files.length && comparePaths(files.path(j), entry.path) < 0) await see(j++, undefined)
      if (j < files.length && files.path(j) === entry.path) await see(j++, entry)
      else changes.push({ path: entry.path, before: entry })
    }
  }
  while (j < files.length) await see(j++, undefined)
  await hashWave()
  changes.sort((a, b) => comparePaths(a.path, b.path))
  return { ...base, changes, hashed }
}

/** The stat cache's key: the card's row rules, as `build` computes it (a cache saved under other rules is not used). */
function rulesKey(card: unknown): string {
  const shards = card && typeof card === 'object' ? ((card as { shards?: unknown }).shards ?? []) : []
  return createHash('sha256').update(JSON.stringify(shards)).digest('hex')
}

/** The version's manifest, from the stat cache's copy of HEAD's block when it is that one (checked), else the store. */
async function versionOf(dataset: Dataset, version: CID, cache: StatCache): Promise<VersionManifest> {
  if (cache.head?.cid.equals(version)) {
    try {
      await checkBlock(version, cache.head.bytes)
      return decodeManifest('cairn.version', version, cache.head.bytes)
    } catch {
      // not usable: read it from the store
    }
  }
  return readVersion(dataset.store, version)
}

function sameFiles(files: FoundFiles, cache: StatCache): boolean {
  if (files.length !== cache.size) return false
  for (let i = 0; i < files.length; i++) if (files.path(i) !== cache.path(i) || !files.sameStamp(i, cache.stamps, i)) return false
  return true
}

/** A folder file as an entry: its format is the one its name says (its rows are not read). */
function entryOf(files: FoundFiles, i: number, cid: CID): ShardEntry {
  const path = files.path(i)
  return { path, cid, size: files.size(i), format: readerFor(path)?.name ?? 'bytes' }
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
