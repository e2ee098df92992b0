/**
 * `verify`: checks a folder against a version (every missing, extra and modified file, and the card),
 * or checks a CAR file (every block against its CID, the DAG under the root complete).
 */
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import * as dagJson from '@ipld/dag-json'
import { FallbackSource } from './car/source.js'
import { cidFor, DAG_JSON, tryParseCid, type CID } from './cid.js'
import { openSources } from './sources/index.js'
import type { BlockSource } from './store/blocks.js'
import { verifyCar, type CarReport } from './car/verify.js'
import { CARD_FILE, openDataset, type Dataset } from './dataset.js'
import { CairnError, isCairnError } from './errors.js'
import { walkEntries } from './shard-index/prolly.js'
import { comparePaths, type ShardEntry } from './manifest.js'
import { identityOfStamp, walkFiles, type SkippedEntry, type WalkedFile } from './scan.js'
import { importFile, importFiles, importGroups } from './unixfs/file.js'
import { hashPool } from './util/hash-pool.js'
import { mapLimit } from './util/pool.js'
import { readVersion, resolveRef } from './version.js'
import { loadIgnoreRules } from './worktree/ignore.js'
import type { SignaturesReport } from './signing/check.js'
import { partOfClone, type PartialClone } from './release/partial.js'
import type { Selection } from './release/clone-record.js'

export interface VerifyFolderOptions {
  /** The version to check against (default `HEAD`). */
  readonly ref?: string
  /** The folder to check (default: the dataset's own folder). */
  readonly dir?: string
  /** Where the version's blocks and refs come from (default: the dataset holding the current folder, else `dir`). */
  readonly dataset?: string
  /**
   * Where to read the version's blocks when the local store lacks them: gateway URLs, CAR files,
   * `dir:` folders, dataset folders, tried in order, every block verified. With `from` and a CID as
   * `ref`, no local dataset is needed (then `dir` is required).
   */
  readonly from?: readonly string[]
  /** Threads that read and hash files (default: the number of CPUs). */
  readonly jobs?: number
  readonly onProgress?: (p: {
    readonly files: number
    readonly totalFiles: number
    readonly bytes: number
    readonly totalBytes: number
  }) => void
}

export interface VerifyCarOptions {
  /** A CAR file to check instead of a folder. */
  readonly car: string
  /** The root whose DAG must be complete (default: every root in the CAR header). */
  readonly root?: CID
  readonly onProgress?: (p: { readonly blocks: number; readonly bytes: number }) => void
}

/** A modified file: what the version says and what the folder holds. */
export interface ModifiedFile {
  readonly path: string
  readonly expected: { readonly cid: CID; readonly size: number }
  readonly actual: { readonly cid?: CID; readonly size: number }
}

/** The result of checking a folder. `ok` only when the folder holds exactly the version's files. */
export interface FolderReport {
  readonly kind: 'folder'
  readonly ok: boolean
  readonly version: CID
  readonly dir: string
  readonly checked: number
  readonly bytes: number
  readonly missing: readonly string[]
  readonly extra: readonly string[]
  readonly modified: readonly ModifiedFile[]
  /** The folder's `cairn.json` against the version's card: absent folders' cards count as missing. */
  readonly card: 'same' | 'modified' | 'missing'
  /**
   * In a partial clone of the version checked: the part it holds (each run's globs) and how many
   * files it left out, which are not counted as missing. `ok` then says the part is whole.
   */
  readonly partial?: { readonly selections: readonly Selection[]; readonly leftOut: number }
}

export type VerifyReport = (FolderReport | (CarReport & { readonly kind: 'car' })) & {
  /** With `--signed-by`: who signed the version (src/signing/check.ts). */
  readonly signatures?: SignaturesReport
}

/**
 * Verifies a folder against a version, or a CAR file when `car` is given. Differences are reported,
 * not thrown; throws only when the check cannot run (`NOT_A_DATASET`, `BAD_REF`, `MISSING_BLOCK`,
 * `BAD_CAR`, `IO`).
 */
export async function verify(options: VerifyCarOptions): Promise<CarReport & { readonly kind: 'car' }>
export async function verify(options?: VerifyFolderOptions): Promise<FolderReport>
export async function verify(options: VerifyFolderOptions | VerifyCarOptions = {}): Promise<VerifyReport> {
  if ('car' in options) {
    const report = await verifyCar(resolve(options.car), { root: options.root, onProgress: options.onProgress })
    return { kind: 'car', ...report }
  }
  return verifyFolder(options)
}

async function verifyFolder(options: VerifyFolderOptions): Promise<FolderReport> {
  const from = options.from ?? []
  const cid = tryParseCid(options.ref ?? '')
  let dataset: Dataset | undefined
  try {
    dataset = await findDataset(options)
  } catch (e) {
    // a CID and a source need no local dataset
    if (!(isCairnError(e, 'NOT_A_DATASET') && from.length > 0 && cid)) throw e
  }
  const remote = from.length > 0 ? await openSources(from) : undefined
  try {
    const source: BlockSource =
      dataset && remote ? new FallbackSource([dataset.store, remote]) : ((dataset?.store ?? remote) as BlockSource)
    const version = cid ?? (await resolveRef(dataset as Dataset, options.ref))
    const dir = options.dir ?? dataset?.root
    if (dir === undefined) throw new CairnError('USAGE', 'verify needs the folder to check when there is no local dataset')
    const part = dataset ? await partOfClone(dataset, version, resolve(dir)) : undefined
    return await checkFolder(source, version, resolve(dir), options, part)
  } finally {
    await remote?.close()
    await dataset?.store.close()
  }
}

/** Files hashed per wave when verifying a folder. */
const WAVE = 512

async function checkFolder(
  source: BlockSource,
  version: CID,
  dir: string,
  options: VerifyFolderOptions,
  part?: PartialClone,
): Promise<FolderReport> {
  let leftOut = 0
  const manifest = await readVersion(source, version)
  // ignored files are not extra; a file the version holds is checked whatever the rules say
  const ignored = await loadIgnoreRules(dir)
  const missing: string[] = []
  const extra: string[] = []
  const modified: ModifiedFile[] = []
  const pool = hashPool(options.jobs)
  // progress counts the version's shards (missing ones too) against its totals
  const totalFiles = manifest.totals.shards
  const totalBytes = manifest.totals.bytes
  let done = 0
  let checked = 0
  let bytes = 0
  const report = (entry: ShardEntry, actual: { cid?: CID; size: number }): void => {
    done++
    checked++
    bytes += actual.size
    options.onProgress?.({ files: done, totalFiles, bytes, totalBytes })
    if (!actual.cid?.equals(entry.cid)) modified.push({ path: entry.path, expected: { cid: entry.cid, size: entry.size }, actual })
  }
  // Files of the right size are hashed a wave at a time, many small ones per round trip: memory holds
  // a wave, while the version's entries are read alongside the folder's walk (both in path order), one
  // index node and one folder listing at a time: nothing is held per file of the folder.
  let waveEntries: ShardEntry[] = []
  let waveFiles: WalkedFile[] = []
  const hashWave = async (): Promise<void> => {
    const entries = waveEntries
    const at = waveFiles
    waveEntries = []
    waveFiles = []
    const groups = [...importGroups(at.length, (k) => Number(at[k].stamp[0]))]
    await mapLimit(groups, 2 * pool.size + 2, async (group) => {
      const found = group.map((k) => ({ ...at[k], identity: identityOfStamp(at[k].stamp) }))
      const imported = await importFiles(
        found.map((file) => ({ path: file.abs, label: file.path, expected: file.identity })),
        undefined,
        { pool },
      ).catch((e: unknown) => {
        if (!isCairnError(e, 'FILE_CHANGED')) throw e
        // touched since the scan (a verify checks content, not stamps): read each as it is now
        return Promise.all(found.map((file) => importFile(file.abs, undefined, { label: file.path, pool })))
      })
      group.forEach((k, n) => report(entries[k], { cid: imported[n].cid, size: imported[n].size }))
    })
  }
  const skipped: SkippedEntry[] = []
  const walk = walkFiles(dir, {}, skipped)
  let file = walk.next().value
  const extraFile = (f: WalkedFile): void => {
    if (!ignored.ignores(f.path, false)) extra.push(f.path)
  }
  for await (const entry of walkEntries(source, manifest.index)) {
    while (file && comparePaths(file.path, entry.path) < 0) {
      extraFile(file)
      file = walk.next().value
    }
    if (file && file.path === entry.path) {
      const size = Number(file.stamp[0])
      // a file of another size is modified without reading it
      if (size !== entry.size) report(entry, { size })
      else {
        waveEntries.push(entry)
        waveFiles.push(file)
        if (waveEntries.length >= WAVE) await hashWave()
      }
      file = walk.next().value
    } else {
      if (part && !part.held(entry.path)) leftOut++
      else missing.push(entry.path)
      options.onProgress?.({ files: ++done, totalFiles, bytes, totalBytes })
    }
  }
  for (; file; file = walk.next().value) extraFile(file)
  await hashWave()
  modified.sort((a, b) => comparePaths(a.path, b.path))
  const card = await compareCard(dir, manifest.card)
  return {
    kind: 'folder',
    ok: missing.length === 0 && extra.length === 0 && modified.length === 0 && card === 'same',
    version,
    dir,
    checked,
    bytes,
    missing,
    extra,
    modified,
    card,
    ...(part ? { partial: { selections: part.selections, leftOut } } : {}),
  }
}

async function findDataset(options: VerifyFolderOptions): Promise<Dataset> {
  try {
    return await openDataset(options.dataset ?? '.')
  } catch (e) {
    if (options.dataset === undefined && options.dir !== undefined && isCairnError(e, 'NOT_A_DATASET')) return openDataset(options.dir)
    throw e
  }
}

async function compareCard(dir: string, expected: CID): Promise<FolderReport['card']> {
  let text: string
  try {
    text = await readFile(join(dir, CARD_FILE), 'utf8')
  } catch {
    return 'missing'
  }
  try {
    return cidFor(DAG_JSON, dagJson.encode(JSON.parse(text))).equals(expected) ? 'same' : 'modified'
  } catch (e) {
    if (e instanceof SyntaxError) return 'modified'
    throw new CairnError('IO', `Cannot read ${join(dir, CARD_FILE)}: ${(e as Error).message}`)
  }
}
