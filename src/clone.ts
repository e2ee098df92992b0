/**
 * `clone`: fetch a release by CID from any sources (gateways, CAR files, `dir:` folders, stores),
 * verify every block, and write the files atomically: each file goes to a temporary name and is renamed
 * into place only once every block of it matched its CID and its size matched. A cairn version becomes
 * a dataset folder (`cairn.json`, `.cairn/` with the version's metadata blocks, HEAD at the version);
 * any other UnixFS file or directory (HAMT included) is written as it is. See docs/clone.md.
 */
import { createHash } from 'node:crypto'
import { createWriteStream, lstatSync, renameSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import { lstat, mkdir, open, readdir, readFile, rename, rm, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join, resolve, sep } from 'node:path'
import { Minimatch } from 'minimatch'
import { decodeUnixFs, kindOf, listDirectory } from './cat.js'
import { CID, DAG_PB, RAW, tryParseCid } from './cid.js'
import { CARD_FILE, init, openDataset, STORE_DIR } from './dataset.js'
import { CairnError, ioError, isCairnError } from './errors.js'
import { readIndexNode } from './shard-index/prolly.js'
import { checkShardPath, comparePaths, type BranchEntry, type IndexNode, type ShardEntry } from './manifest.js'
import { checkBlock } from './car/block.js'
import {
  DEFAULT_GATEWAYS,
  MAX_BLOCK_BYTES,
  openSources,
  type GatewayOptions,
  type SourceFailure,
  type SourceList,
} from './sources/index.js'
import type { BlockSource, BlockStoreLike } from './store/blocks.js'
import { invalidNameReason } from './unixfs/directory.js'
import { exportFile } from './unixfs/export.js'
import { importFile } from './unixfs/file.js'
import { forEachLimit, mapLimit, quiet } from './util/pool.js'
import { readCardBlock, readVersion } from './version.js'
import { writeFileAtomic } from './util/atomic.js'
import { checkPathLength, clip, limitExceeded, limitsOf, MAX_DIRECTORY_DEPTH, type DagLimits } from './limits/index.js'
import { HeldLocks, isLockFileName } from './store/lock.js'
import { cloneByName, keepSourceSignatures, type ClonedName } from './names/clone.js'
import { looksLikeName } from './names/name.js'
import { finishCloneRecord, startCloneRecord } from './release/clone-record.js'
import { fetchHistory } from './release/history.js'

/** Files of at most this size (one block under cairn's profile) are written in one synchronous call (see `writeFiles`). */
const SMALL_FILE = 1 << 20

/** Files fetched at once when `jobs` is not given. */
export const DEFAULT_CLONE_JOBS = 8

/** Inside a cloned dataset's `.cairn/`: `{"cid": "…", "complete": bool}`, what marks the folder as a clone of that version. */
export const CLONE_RECORD = 'clone.json'
/** Inside a folder a UnixFS directory is cloned into, while the clone runs: the root CID and partial files. */
export const UNIXFS_CLONE_DIR = '.cairn-clone'
/** Inside a clone target while a clone writes to it: the lock, with the clone's pid. */
export const CLONE_LOCK = '.cairn-clone.lock'
/** Inside a cloned dataset's `.cairn/`: files being fetched. */
const CLONE_TMP = 'clone-tmp'

/** Options of {@link clone}. */
export interface CloneOptions {
  /** A cairn version CID, or any UnixFS file or directory CID. */
  readonly cid: string
  /**
   * Where to write: the folder (default: the version's dataset name, or the CID for UnixFS). For a
   * UnixFS file, the file path (an existing folder gets `<folder>/<cid>`).
   */
  readonly dir?: string
  /** Sources in the order tried (default {@link DEFAULT_GATEWAYS}); ignored when `source` is given. */
  readonly from?: readonly string[]
  /** An already opened source list (the caller closes it). */
  readonly source?: SourceList
  /** Files fetched at once (default {@link DEFAULT_CLONE_JOBS}). */
  readonly jobs?: number
  /** Clone only files whose path matches one of these globs (minimatch, `dot: true`; a glob without `/` matches the base name). */
  readonly include?: readonly string[]
  /** Skip files whose path matches one of these globs (applied after `include`). */
  readonly exclude?: readonly string[]
  /**
   * Also put every block of every file into the clone's store (cairn versions only), so that `pack`,
   * `serve` and `publish` work in the clone without the original. Default false: the store then holds
   * the version's metadata only and the files are the data's only copy.
   */
  readonly storeFileBlocks?: boolean
  /** Gateway timeouts. */
  readonly sourceOptions?: GatewayOptions
  /** Bounds on the DAG's entries and file sizes (defaults: {@link DEFAULT_LIMITS}). */
  readonly limits?: DagLimits
  /** Cloning by IPNS name: accept a value that is not a descendant of the one last seen. */
  readonly allowFork?: boolean
  /** Ancestors whose releases are fetched into the store too (cairn versions): 0 (default) none, `Infinity` all. */
  readonly history?: number
  readonly onProgress?: (progress: CloneProgress) => void
}

/** Progress of a clone: metadata blocks fetched, files written, or one source failing on one CID. */
export type CloneProgress =
  | { readonly kind: 'metadata'; readonly blocks: number }
  | {
      readonly kind: 'files'
      readonly files: number
      readonly totalFiles: number
      readonly bytes: number
      /** Bytes of the selected files where known (always, for a cairn version). */
      readonly totalBytes: number
      /** Files found complete on disk and not fetched again. */
      readonly skipped: number
    }
  | { readonly kind: 'failure'; readonly failure: SourceFailure }

/** An entry that was not written, and why. */
export interface SkippedEntry {
  /** The entry's path relative to the target. */
  readonly path: string
  /** Why it was not written. */
  readonly reason: string
}

/** What {@link clone} did. */
export interface CloneResult {
  /** A cairn version, a UnixFS directory or a UnixFS file. */
  readonly kind: 'version' | 'directory' | 'file'
  /** The root cloned. */
  readonly cid: CID
  /** The absolute folder written (for a UnixFS file: the file). */
  readonly dir: string
  /** True when the target held a partial (or complete) clone of the same CID, which was resumed. */
  readonly resumed: boolean
  /** Files selected (after include/exclude). */
  readonly totalFiles: number
  /** Their bytes, where known. */
  readonly totalBytes: number
  /** Files fetched and written by this run. */
  readonly written: number
  /** Files already complete on disk (re-hashed, matching), not fetched again. */
  readonly skipped: number
  /** Files left out by include/exclude. */
  readonly excluded: number
  /** Bytes fetched and written by this run. */
  readonly bytes: number
  /** Metadata blocks (version, card, index, schemas, tree) stored in `.cairn/` (cairn versions). */
  readonly metadataBlocks: number
  /** Entries not written: symbolic links and nodes that are not UnixFS files or directories. */
  readonly unsupported: readonly SkippedEntry[]
  /** Each time a source failed on a CID and the next one was tried (at most 1000). */
  readonly failures: readonly SourceFailure[]
  /** Signature bundles of the version brought from the sources into the clone's store. */
  readonly signatures?: number
  /** When cloned by IPNS name: the name and the record followed. */
  readonly name?: ClonedName
}

/** One file to write: its path relative to the target and its UnixFS root. */
interface FileJob {
  readonly path: string
  readonly cid: CID
  /** Content bytes, when known beforehand. */
  readonly size?: number
}

/**
 * Clones `cid` into a folder.
 *
 * - A **cairn version**: fetches the version, card and shard index (every block verified), stores
 *   them with the schema blocks and the tree's directory nodes in a new `.cairn/` store, writes
 *   `cairn.json` from the card block, then fetches the files, `jobs` at a time, and finally points HEAD
 *   at the version. The folder is a dataset at once: `verify` and `diff` work in it.
 * - A **UnixFS directory** (plain or HAMT): lists it (every name checked) and writes the tree; empty
 *   folders are created, symbolic links and non-UnixFS nodes are skipped and listed in `unsupported`.
 * - A **UnixFS file**: writes it.
 *
 * Every path is checked before anything is written: an entry naming `..`, `.`, an absolute path, a name
 * with `/`, NUL, a backslash or a control character, or a path that would leave the target, fails the
 * clone with `BAD_PATH` and nothing is written. Existing folders on the way are never followed when they
 * are symbolic links. No byte reaches a final path unverified: files are renamed into place only when
 * complete.
 *
 * Re-running a clone into the same folder resumes it: files already there are re-hashed against their
 * CID and kept when they match (files whose DAG was not built with cairn's profile cannot be
 * recomputed and are fetched again).
 *
 * @throws {CairnError} `USAGE` for a CID that does not parse or a root that is neither a cairn version
 *   nor UnixFS; `TARGET_NOT_EMPTY` when the target holds anything but a clone of the same CID;
 *   `BAD_PATH`; `FETCH_FAILED` naming the CID and each source's failure; `INVALID_MANIFEST`,
 *   `CORRUPT_BLOCK`; `IO`.
 */
export async function clone(options: CloneOptions): Promise<CloneResult> {
  const from = options.from ?? DEFAULT_GATEWAYS
  if (looksLikeName(options.cid)) return cloneByName(options.cid, from, options.allowFork === true, (cid) => clone({ ...options, cid }))
  const result = await cloneCid(options)
  if (result.kind !== 'version' || options.source !== undefined) return result
  const signatures = await keepSourceSignatures(from, result.cid, result.dir, options.sourceOptions?.timeoutMs)
  return signatures > 0 ? { ...result, signatures } : result
}

async function cloneCid(options: CloneOptions): Promise<CloneResult> {
  const root = tryParseCid(options.cid.replace(/^\/ipfs\//, '').replace(/^ipfs:\/\//, ''))
  if (root === undefined) throw new CairnError('USAGE', `${JSON.stringify(options.cid)} is not a CID`, { subject: options.cid })
  const onFailure = (failure: SourceFailure): void => options.onProgress?.({ kind: 'failure', failure })
  // several sources are asked at once, each request of whichever answers first (docs/multi-source.md)
  const list =
    options.source ?? (await openSources(options.from ?? DEFAULT_GATEWAYS, { ...options.sourceOptions, onFailure, spread: true }))
  const failuresBefore = list.failures.length
  // the clone target's lock (and a version's dataset lock), taken where each kind knows its target
  const locks = new HeldLocks()
  try {
    const kind = await kindOf(list, root)
    let result: Omit<CloneResult, 'failures'>
    if (kind === 'version') result = await cloneVersion(root, list, options, locks)
    else if (kind === 'directory' || kind === 'hamt') result = await cloneDirectory(root, list, options, locks)
    else if (kind === 'file') result = await cloneFile(root, list, options, locks)
    else
      throw new CairnError(
        'USAGE',
        `${root} is neither a cairn version nor a UnixFS file or directory (it is a ${kind === 'symlink' ? 'UnixFS symlink' : `block of codec 0x${root.code.toString(16)}`})`,
        { subject: root.toString() },
      )
    return { ...result, failures: list.failures.slice(failuresBefore) }
  } finally {
    await locks.release()
    if (options.source === undefined) await list.close()
  }
}

// ---------------------------------------------------------------------------------------------------
// cairn versions
// ---------------------------------------------------------------------------------------------------

async function cloneVersion(root: CID, list: SourceList, options: CloneOptions, locks: HeldLocks): Promise<Omit<CloneResult, 'failures'>> {
  const jobs = Math.max(1, options.jobs ?? DEFAULT_CLONE_JOBS)
  // the version and card come first (the folder's name and cairn.json); kept until the store exists
  const early = new Map<string, { cid: CID; bytes: Uint8Array }>()
  const remember: BlockSource = {
    async get(cid) {
      const bytes = await list.get(cid)
      early.set(cid.toString(), { cid, bytes })
      return bytes
    },
  }
  const version = await readVersion(remember, root)
  const card = await readCardBlock(remember, version.card)
  const target = resolve(options.dir ?? defaultFolderName(version.name, root))
  const storeDir = join(target, STORE_DIR)
  const existed = (await lstat(target).catch(() => undefined)) !== undefined
  await lockTarget(target, locks)
  const resumed = await prepareTarget(target, async (entries) => {
    if (!entries.includes(STORE_DIR)) return false
    const record = await readJson<{ cid?: unknown }>(join(storeDir, CLONE_RECORD))
    return record?.cid === root.toString()
  })
  // a release found invalid before any file is written leaves no trace of a fresh clone
  const undo = async (): Promise<void> => {
    if (resumed) return
    if (!existed) await rm(target, { recursive: true, force: true }).catch(() => {})
    else for (const name of [STORE_DIR, CARD_FILE]) await rm(join(target, name), { recursive: true, force: true }).catch(() => {})
  }
  // cairn.json is rewritten on every run: it is the card block's, whatever happened to it since
  await writeAtomic(join(target, CARD_FILE), JSON.stringify(card, null, 2) + '\n', target)
  if (!resumed) await init({ dir: target })
  // a build or tag in the folder waits for the clone: it is a dataset from here on
  await locks.take(join(storeDir, 'lock'))
  const record = await startCloneRecord(storeDir, root, {
    sources: options.source ? undefined : (options.from ?? DEFAULT_GATEWAYS),
    include: options.include,
    exclude: options.exclude,
  })
  const dataset = await openDataset(target)
  const store = dataset.store
  try {
    let metadataBlocks = 0
    const keep = async (cid: CID, bytes: Uint8Array): Promise<void> => {
      if (await store.has(cid)) return
      await store.put(cid, bytes)
      metadataBlocks++
      options.onProgress?.({ kind: 'metadata', blocks: metadataBlocks })
    }
    for (const { cid, bytes } of early.values()) await keep(cid, bytes)
    // metadata goes through the store: kept for the clone, and read from it again on a resume
    const through: BlockSource = {
      async get(cid) {
        if (await store.has(cid)) {
          try {
            return await store.get(cid)
          } catch (e) {
            if (!isCairnError(e, 'CORRUPT_BLOCK')) throw e
          }
        }
        const bytes = await list.get(cid)
        await keep(cid, bytes)
        return bytes
      },
    }
    // two walks of the index, so that memory does not grow with the file count: the first checks
    // every path and stores the metadata before anything is written, the second (from the store)
    // feeds the files to the writers
    let plan: VersionPlan
    try {
      plan = await planVersion(through, root, version.index, version.tree, target, options, jobs * 2)
    } catch (e) {
      if (isCairnError(e, 'BAD_PATH') || isCairnError(e, 'INVALID_MANIFEST') || isCairnError(e, 'CORRUPT_BLOCK')) {
        await store.close()
        await undo()
      }
      throw e
    }
    const tmpDir = join(storeDir, CLONE_TMP)
    try {
      await mkdir(tmpDir, { recursive: true })
    } catch (e) {
      throw ioError('create', tmpDir, e)
    }
    // A fresh clone of every file of a version of small files reads the whole tree: one CAR stream of
    // it serves all the files (in the order they are written, about the tree's), rather than a request
    // per file. A resumed or a filtered clone fetches each file it still needs on its own, and so does
    // one with a file of several blocks: the stream would bring its blocks faster than they are written
    // while the next files wait (and a request per large file costs little).
    const whole = !resumed && (options.include?.length ?? 0) === 0 && (options.exclude?.length ?? 0) === 0 && plan.largest <= SMALL_FILE
    const shared = whole ? list.session(version.tree, plan.treeNodes, through) : undefined
    let written
    try {
      written = await writeFiles(
        target,
        tmpDir,
        selectedEntries(through, version.index, options),
        plan.selected,
        list,
        jobs,
        options,
        options.storeFileBlocks ? store : undefined,
        'profile',
        undefined,
        shared,
      )
    } finally {
      await shared?.close()
    }
    const historyBlocks = await fetchHistory(store, list, version.parent, options.history ?? 0)
    await dataset.refs.setHead(root, { op: 'clone' })
    await finishCloneRecord(storeDir, record)
    await rm(tmpDir, { recursive: true, force: true }).catch(() => {})
    return {
      kind: 'version',
      cid: root,
      dir: target,
      resumed,
      totalFiles: plan.selected.files,
      totalBytes: plan.selected.bytes,
      excluded: plan.files - plan.selected.files,
      metadataBlocks: metadataBlocks + historyBlocks,
      unsupported: [],
      ...written,
    }
  } finally {
    await store.close()
  }
}

/**
 * The folder a version is cloned into when none is given: its dataset name when that is one plain,
 * visible path segment (the name comes from the manifest: `../x` or `/etc` must not choose where to
 * write), else the CID.
 */
function defaultFolderName(name: string, root: CID): string {
  const plain = invalidNameReason(name) === undefined && !/^[.~]|[\\:\u0000-\u001f\u007f]/.test(name) && name.length <= 200
  return plain ? name : root.toString()
}

/** What the first walk of a version's index found. */
interface VersionPlan {
  /** Shard entries in the index. */
  readonly files: number
  /** Those selected by include/exclude, and their bytes. */
  readonly selected: Totals
  /** The size of the largest file selected. */
  readonly largest: number
  /** Every node of the tree read (its folders, HAMT shards included). */
  readonly treeNodes: readonly CID[]
}

/** A count of files and their bytes. */
interface Totals {
  readonly files: number
  readonly bytes: number
}

/**
 * The first walk of a version's index: checks every shard path (see {@link checkPaths}) with memory
 * bounded by the number of folders, not files, and reads (so that `source` stores them) every index
 * node, schema block and directory node of the tree.
 *
 * Paths must come in strictly increasing order across the whole index (each node checks its own), so
 * a path listed twice is refused, and the paths under a file `f` (`f/…`) could only come right after
 * it, among the others that begin with `f`: the check keeps just that chain of earlier paths.
 */
async function planVersion(
  source: BlockSource,
  root: CID,
  index: CID,
  tree: CID,
  target: string,
  options: CloneOptions,
  concurrency: number,
): Promise<VersionPlan> {
  const pick = selector(options)
  const folders = new Set<string>()
  const schemas = new Map<string, CID>()
  let files = 0
  let selected = 0
  let bytes = 0
  let largest = 0
  let previous: string | undefined
  // earlier paths that every path since begins with, each a prefix of the next
  const chain: string[] = []
  for await (const leaf of indexLeaves(source, index, concurrency)) {
    for (const e of leaf) {
      if (previous !== undefined && comparePaths(previous, e.path) >= 0) {
        throw new CairnError(
          'INVALID_MANIFEST',
          `Version ${root}: the shard index lists ${JSON.stringify(e.path)} after ${JSON.stringify(previous)}`,
          {
            subject: e.path,
          },
        )
      }
      previous = e.path
      if (e.path === CARD_FILE || e.path.split('/')[0] === STORE_DIR) {
        throw new CairnError(
          'BAD_PATH',
          `Version ${root} has a shard at ${JSON.stringify(e.path)}, which would overwrite the dataset's own files; refusing it`,
          { subject: e.path },
        )
      }
      safeJoin(target, e.path)
      while (chain.length > 0 && !e.path.startsWith(chain[chain.length - 1])) chain.pop()
      const file = chain.find((f) => e.path[f.length] === '/')
      if (file !== undefined) throw bothFileAndFolder(file, e.path)
      chain.push(e.path)
      for (let i = e.path.indexOf('/'); i >= 0; i = e.path.indexOf('/', i + 1)) folders.add(e.path.slice(0, i))
      if (e.schema !== undefined) schemas.set(e.schema.toString(), e.schema)
      files++
      if (pick(e.path)) {
        selected++
        bytes += e.size
        largest = Math.max(largest, e.size)
      }
    }
  }
  await mapLimit([...schemas.values()], concurrency, (cid) => source.get(cid))
  const treeNodes: CID[] = []
  const recorded: BlockSource = {
    get: (cid) => {
      treeNodes.push(cid)
      return source.get(cid)
    },
  }
  await fetchTreeNodes(recorded, tree, folders, concurrency)
  return { files, selected: { files: selected, bytes }, largest, treeNodes }
}

/** The second walk: the entries include/exclude select, in path order, as files to write. */
async function* selectedEntries(source: BlockSource, index: CID, options: CloneOptions): AsyncGenerator<FileJob> {
  const pick = selector(options)
  for await (const leaf of indexLeaves(source, index, 2)) {
    for (const e of leaf) if (pick(e.path)) yield { path: e.path, cid: e.cid, size: e.size }
  }
}

/**
 * The leaves of the shard index under `root`, in path order, reading the next `ahead` nodes of the
 * walk while one is used: memory holds the nodes on the way down and those read ahead.
 */
async function* indexLeaves(source: BlockSource, root: CID, ahead: number): AsyncGenerator<readonly ShardEntry[]> {
  // the nodes still to visit, in path order; the first `ahead` are being read
  const queue: { cid: CID; node?: Promise<IndexNode> }[] = [{ cid: root }]
  while (queue.length > 0) {
    for (let i = 0; i < Math.min(ahead, queue.length); i++) queue[i].node ??= quiet(readIndexNode(source, queue[i].cid))
    const node = await (queue.shift() as { node: Promise<IndexNode> }).node
    if (node.level === 0) yield node.entries as readonly ShardEntry[]
    else queue.unshift(...(node.entries as readonly BranchEntry[]).map((b) => ({ cid: b.node })))
  }
}

/**
 * Reads every directory node of the tree (HAMT shards included): its root and the `folders` the
 * shard paths make. Files are not read.
 */
async function fetchTreeNodes(source: BlockSource, tree: CID, folders: ReadonlySet<string>, concurrency: number): Promise<void> {
  let level: { path: string; cid: CID }[] = [{ path: '', cid: tree }]
  while (level.length > 0) {
    const next = await mapLimit(level, concurrency, async (dir) => {
      const subdirs: { path: string; cid: CID }[] = []
      for await (const e of listDirectory(source, dir.cid)) {
        const path = dir.path === '' ? e.name : `${dir.path}/${e.name}`
        if (folders.has(path)) subdirs.push({ path, cid: e.cid })
      }
      return subdirs
    })
    level = next.flat()
  }
}

// ---------------------------------------------------------------------------------------------------
// UnixFS directories and files
// ---------------------------------------------------------------------------------------------------

async function cloneDirectory(
  root: CID,
  list: SourceList,
  options: CloneOptions,
  locks: HeldLocks,
): Promise<Omit<CloneResult, 'failures'>> {
  const jobs = Math.max(1, options.jobs ?? DEFAULT_CLONE_JOBS)
  const target = resolve(options.dir ?? root.toString())
  const work = join(target, UNIXFS_CLONE_DIR)
  // list the whole tree first: a hostile name fails the clone before anything is written
  const files: FileJob[] = []
  const dirs: string[] = []
  const unsupported: SkippedEntry[] = []
  // bounded work on any DAG: entries in all, folders reached again by another path, depth, path lengths
  const bounds = new TreeBounds(root, target, options)
  let level: { path: string; cid: CID }[] = [{ path: '', cid: root }]
  for (let depth = 1; level.length > 0; depth++) {
    bounds.enterLevel(depth, level[0].path)
    const next = await mapLimit(level, jobs * 2, async (dir) => {
      const found: { path: string; cid: CID }[] = []
      const entries: { path: string; cid: CID }[] = []
      for await (const e of listDirectory(list, dir.cid)) {
        if (dir.path === '' && RESERVED_TOP_NAMES.includes(e.name)) {
          throw new CairnError(
            'BAD_PATH',
            `Directory ${root} has an entry named ${e.name} at its top, which cairn uses in a folder it writes; refusing it`,
            { subject: e.name },
          )
        }
        const path = dir.path === '' ? e.name : `${dir.path}/${e.name}`
        bounds.entry(path)
        entries.push({ path, cid: e.cid })
      }
      await mapLimit(entries, 8, async (e) => {
        const kind = e.cid.code === RAW ? 'file' : e.cid.code === DAG_PB ? await kindOf(list, e.cid) : 'other'
        if (kind === 'file')
          files.push({ path: e.path, cid: e.cid, size: e.cid.code === DAG_PB ? await unixFsSize(list, e.cid) : undefined })
        else if (kind === 'directory' || kind === 'hamt') {
          bounds.folder(e.path, e.cid)
          dirs.push(e.path)
          found.push(e)
        } else
          unsupported.push({
            path: e.path,
            reason:
              kind === 'symlink' ? 'a symbolic link (not written)' : `not a UnixFS file or directory (codec 0x${e.cid.code.toString(16)})`,
          })
      })
      return found
    })
    level = next.flat()
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  dirs.sort()
  checkPaths(
    target,
    files.map((f) => f.path),
    dirs,
  )
  await lockTarget(target, locks)
  const resumed = await prepareTarget(target, async (entries) => {
    if (!entries.includes(UNIXFS_CLONE_DIR)) return false
    return (await readFile(join(work, 'root'), 'utf8').catch(() => '')).trim() === root.toString()
  })
  if (!resumed) {
    try {
      await mkdir(work, { recursive: true })
      await writeFile(join(work, 'root'), root.toString() + '\n')
    } catch (e) {
      throw ioError('write in', target, e)
    }
  }
  const selected = select(files, options)
  const filtered = (options.include?.length ?? 0) > 0 || (options.exclude?.length ?? 0) > 0
  if (!filtered) for (const d of dirs) await ensureDirs(target, `${d}/x`, new Set())
  const written = await writeFiles(target, work, selected, totalsOf(selected), list, jobs, options, undefined, 'dag')
  await rm(work, { recursive: true, force: true }).catch(() => {})
  return {
    kind: 'directory',
    cid: root,
    dir: target,
    resumed,
    totalFiles: selected.length,
    totalBytes: selected.reduce((n, f) => n + (f.size ?? 0), 0),
    excluded: files.length - selected.length,
    metadataBlocks: 0,
    unsupported: unsupported.sort((a, b) => (a.path < b.path ? -1 : 1)),
    ...written,
  }
}

async function cloneFile(root: CID, list: SourceList, options: CloneOptions, locks: HeldLocks): Promise<Omit<CloneResult, 'failures'>> {
  let target = resolve(options.dir ?? root.toString())
  const st = await lstat(target).catch(() => undefined)
  if (st?.isDirectory()) target = join(target, root.toString())
  const size = root.code === DAG_PB ? await unixFsSize(list, root) : undefined
  const parent = dirname(target)
  try {
    await mkdir(parent, { recursive: true })
  } catch (e) {
    throw ioError('create', parent, e)
  }
  checkPathLength(target)
  await locks.take(join(parent, `.${basename(target)}.cairn-lock`))
  const existing = await lstat(target).catch(() => undefined)
  let resumed = false
  if (existing !== undefined) {
    if (!existing.isFile() || !(await matchesDag(list, target, root))) {
      throw new CairnError('TARGET_NOT_EMPTY', `${target} already exists and is not the file ${root}`, {
        subject: target,
        hint: 'remove it or clone somewhere else',
      })
    }
    resumed = true
  }
  let written = { written: 0, skipped: 1, bytes: 0 }
  if (!resumed)
    written = await writeFiles(
      parent,
      parent,
      [{ path: basename(target), cid: root, size }],
      { files: 1, bytes: size ?? 0 },
      list,
      1,
      options,
      undefined,
      'dag',
      `.${basename(target)}.cairn-part`,
    )
  return {
    kind: 'file',
    cid: root,
    dir: target,
    resumed,
    totalFiles: 1,
    totalBytes: size ?? written.bytes,
    excluded: 0,
    metadataBlocks: 0,
    unsupported: [],
    ...written,
  }
}

/** The content size a dag-pb UnixFS file root records. */
async function unixFsSize(source: BlockSource, cid: CID): Promise<number | undefined> {
  const { data } = decodeUnixFs(cid, await source.get(cid))
  const size = Number(data.fileSize())
  return Number.isSafeInteger(size) ? size : undefined
}

// ---------------------------------------------------------------------------------------------------
// Shared: the target folder, paths, filters, writing files
// ---------------------------------------------------------------------------------------------------

/**
 * Makes sure `target` is a folder that is missing, empty, or (per `isSameClone`) a clone of the same
 * CID. Returns true for the last case. Throws `TARGET_NOT_EMPTY` otherwise.
 */
async function prepareTarget(target: string, isSameClone: (entries: string[]) => Promise<boolean>): Promise<boolean> {
  let entries: string[]
  try {
    entries = await readdir(target)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === 'ENOTDIR') throw new CairnError('TARGET_NOT_EMPTY', `${target} is a file, not a folder`, { subject: target })
    if (code !== 'ENOENT') throw ioError('read folder', target, e)
    try {
      await mkdir(target, { recursive: true })
    } catch (e2) {
      throw ioError('create', target, e2)
    }
    return false
  }
  // the clone's own lock, taken before this look
  entries = entries.filter((name) => !isLockFileName(name, CLONE_LOCK))
  if (entries.length === 0) return false
  if (await isSameClone(entries)) return true
  throw new CairnError(
    'TARGET_NOT_EMPTY',
    `${target} is not empty and is not a clone of this CID (it holds ${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''})`,
    {
      subject: target,
      hint: 'clone into a new or empty folder; a folder holding an interrupted clone of the same CID is resumed',
    },
  )
}

/**
 * Checks every relative path before anything is written: normalised (no `..`, `.`, empty segment, no
 * leading `/`, NUL, backslash or control character), inside `target` once resolved, and no file on the
 * way to another path (a file cannot also be a folder).
 */
function checkPaths(target: string, files: readonly string[], dirs: readonly string[] = []): void {
  const fileSet = new Set(files)
  for (const path of [...files, ...dirs]) {
    safeJoin(target, path)
    for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
      if (fileSet.has(path.slice(0, i))) throw bothFileAndFolder(path.slice(0, i), path)
    }
  }
}

function bothFileAndFolder(file: string, inside: string): CairnError {
  return new CairnError('BAD_PATH', `${JSON.stringify(file)} is both a file and a folder (${JSON.stringify(inside)} is inside it)`, {
    subject: inside,
  })
}

/** `target/path`, refusing any path that is not normalised or that resolves outside `target`. */
function safeJoin(target: string, path: string): string {
  checkShardPath(path, 'path')
  const abs = resolve(target, ...path.split('/'))
  checkPathLength(abs)
  if (!abs.startsWith(target + sep)) {
    throw new CairnError('BAD_PATH', `Path ${JSON.stringify(path)} resolves to ${abs}, outside ${target}; refusing to write it`, {
      subject: path,
    })
  }
  return abs
}

/**
 * Creates the folders on the way to `path` inside `target`, one at a time, refusing to go through
 * anything that is not a real folder (a symbolic link planted in a resumed clone could point anywhere).
 */
async function ensureDirs(target: string, path: string, made: Set<string>): Promise<void> {
  const segments = path.split('/').slice(0, -1)
  let at = target
  for (const segment of segments) {
    at = join(at, segment)
    if (made.has(at)) continue
    try {
      await mkdir(at)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create', at, e)
    }
    const st = await lstat(at)
    if (!st.isDirectory() || st.isSymbolicLink()) {
      throw new CairnError(
        'TARGET_NOT_EMPTY',
        `${at} is ${st.isSymbolicLink() ? 'a symbolic link' : 'a file'} where the clone needs a folder; refusing to write through it`,
        {
          subject: at,
        },
      )
    }
    made.add(at)
  }
}

/** Whether include/exclude select a path (each glob compiled once). */
function selector(options: CloneOptions): (path: string) => boolean {
  const compile = (glob: string): Minimatch => new Minimatch(glob, { dot: true, matchBase: !glob.includes('/') })
  const include = (options.include ?? []).map(compile)
  const exclude = (options.exclude ?? []).map(compile)
  return (path) => (include.length === 0 || include.some((m) => m.match(path))) && !exclude.some((m) => m.match(path))
}

function select<T extends { readonly path: string }>(items: readonly T[], options: CloneOptions): T[] {
  const pick = selector(options)
  return items.filter((i) => pick(i.path))
}

/** True when the file at `path` is the UnixFS file `cid` under cairn's profile. */
async function matchesOnDisk(path: string, cid: CID): Promise<boolean> {
  try {
    return (await importFile(path)).cid.equals(cid)
  } catch (e) {
    if (isCairnError(e, 'IO') || isCairnError(e, 'FILE_CHANGED')) return false
    throw e
  }
}

/**
 * True when the file at `path` holds exactly the UnixFS file `cid`, checked against its DAG without
 * fetching its leaves: the file's dag-pb nodes are read from `source` (verified), and each raw leaf's
 * byte range on disk is hashed against the leaf's CID. DAGs with dag-pb leaves (old CIDv0 files) are
 * not checked this way: false.
 */
async function matchesDag(source: BlockSource, path: string, cid: CID): Promise<boolean> {
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch {
    return false
  }
  try {
    const size = (await fh.stat()).size
    let offset = 0
    const readRange = async (length: number): Promise<Uint8Array | undefined> => {
      if (offset + length > size) return undefined
      const buf = Buffer.allocUnsafe(length)
      let filled = 0
      while (filled < length) {
        const { bytesRead } = await fh.read(buf, filled, length - filled, offset + filled)
        if (bytesRead === 0) return undefined
        filled += bytesRead
      }
      offset += length
      return buf
    }
    const leafMatches = async (leaf: CID, length: number): Promise<boolean> => {
      const bytes = await readRange(length)
      if (bytes === undefined) return false
      try {
        await checkBlock(leaf, bytes)
        return true
      } catch {
        return false
      }
    }
    const walk = async (node: CID): Promise<boolean> => {
      if (node.code !== DAG_PB) return false
      const { node: pb, data } = decodeUnixFs(node, await source.get(node))
      if (data.type !== 'file' && data.type !== 'raw') return false
      if (data.data !== undefined && data.data.length > 0) {
        const inline = await readRange(data.data.length)
        if (inline === undefined || !Buffer.from(inline).equals(Buffer.from(data.data))) return false
      }
      if (pb.Links.length !== data.blockSizes.length && pb.Links.length > 0) return false
      for (let i = 0; i < pb.Links.length; i++) {
        const link = pb.Links[i].Hash
        const ok = link.code === RAW ? await leafMatches(link, Number(data.blockSizes[i])) : await walk(link)
        if (!ok) return false
      }
      return true
    }
    const ok = cid.code === RAW ? size <= MAX_BLOCK_BYTES && (await leafMatches(cid, size)) : await walk(cid)
    return ok && offset === size
  } finally {
    await fh.close()
  }
}

/**
 * Writes every job, `jobs` at a time: a file already on disk that re-hashes to its CID is kept, any
 * other is fetched to a temporary file in `tmpDir`, checked, and renamed into place.
 */
async function writeFiles(
  target: string,
  tmpDir: string,
  files: Iterable<FileJob> | AsyncIterable<FileJob>,
  totals: Totals,
  list: SourceList,
  jobs: number,
  options: CloneOptions,
  sink: BlockStoreLike | undefined,
  check: 'profile' | 'dag',
  tmpName?: string,
  /** Where every file's blocks come from (a session the caller closes), instead of a session per file. */
  shared?: BlockSource,
): Promise<{ written: number; skipped: number; bytes: number }> {
  // cairn's own DAGs re-hash offline; any other DAG is checked leaf by leaf against its nodes
  const onDisk = (path: string, cid: CID): Promise<boolean> =>
    check === 'profile' ? matchesOnDisk(path, cid) : matchesDag(list, path, cid)
  let written = 0
  let skipped = 0
  let bytes = 0
  const made = new Set<string>()
  const report = (): void =>
    options.onProgress?.({ kind: 'files', files: written + skipped, totalFiles: totals.files, bytes, totalBytes: totals.bytes, skipped })
  await forEachLimit(files, jobs, async (job) => {
    const final = safeJoin(target, job.path)
    await ensureDirs(target, job.path, made)
    const existing = lstatSync(final, { throwIfNoEntry: false })
    if (existing?.isDirectory()) {
      throw new CairnError('TARGET_NOT_EMPTY', `${final} is a folder where the clone has a file`, { subject: final })
    }
    if (existing?.isFile() && (job.size === undefined || existing.size === job.size) && (await onDisk(final, job.cid))) {
      skipped++
      report()
      return
    }
    const tmp = join(tmpDir, tmpName ?? `clone-${createHash('sha256').update(job.path).digest('hex').slice(0, 32)}.part`)
    const own = shared === undefined ? list.session(job.cid) : undefined
    const session = shared ?? own!
    const source: BlockSource = sink
      ? {
          async get(cid) {
            const b = await session.get(cid)
            await sink.put(cid, b)
            return b
          },
        }
      : session
    let size = 0
    // a file of one chunk or less is gathered and written with two synchronous calls: a write stream
    // and its thread-pool round trips (open, write, close, rename) cost more than the write itself
    const small = job.size !== undefined && job.size <= SMALL_FILE
    const out = small ? undefined : createWriteStream(tmp)
    const pieces: Uint8Array[] = []
    try {
      for await (const piece of exportFile(source, job.cid, options.limits)) {
        size += piece.length
        bytes += piece.length
        if (!out) pieces.push(piece)
        else if (!out.write(piece)) await once(out, 'drain')
        report()
      }
      if (job.size !== undefined && size !== job.size) {
        throw new CairnError('CORRUPT_BLOCK', `${job.path}: the DAG of ${job.cid} holds ${size} bytes, the listing says ${job.size}`, {
          subject: job.path,
        })
      }
      if (out) {
        out.end()
        await once(out, 'finish')
      } else writeFileSync(tmp, pieces.length === 1 ? pieces[0] : Buffer.concat(pieces))
      if (small) renameSync(tmp, final)
      else await rename(tmp, final)
    } catch (e) {
      out?.destroy()
      await unlink(tmp).catch(() => {})
      if (isCairnError(e)) throw e
      throw ioError('write', final, e)
    } finally {
      await own?.close()
    }
    written++
    report()
  })
  return { written, skipped, bytes }
}

/** Names a UnixFS directory may not have at its top: what a cairn folder or a clone in progress holds. */
const RESERVED_TOP_NAMES: readonly string[] = [UNIXFS_CLONE_DIR, CLONE_LOCK, STORE_DIR, CARD_FILE]

/** Creates `target` if need be and takes its clone lock (a folder that cannot be made is reported by prepareTarget). */
async function lockTarget(target: string, locks: HeldLocks): Promise<void> {
  checkPathLength(target)
  try {
    await mkdir(target, { recursive: true })
  } catch {
    return
  }
  await locks.take(join(target, CLONE_LOCK))
}

/**
 * The bounds of listing a UnixFS tree (docs/hostile-input.md): every path is checked against the file
 * system's lengths as it is listed, folders nest at most {@link MAX_DIRECTORY_DEPTH} deep, the tree
 * lists at most `maxEntries` entries, and a folder reached again by another path counts against a
 * budget of a thousandth of that: a DAG whose paths outnumber its blocks (each folder linking the next
 * twice) is refused after a few levels, before its paths fill memory.
 */
class TreeBounds {
  private readonly limits: Required<DagLimits>
  private entries = 0
  private repeats = 0
  private readonly folders = new Map<string, string>()

  constructor(
    private readonly root: CID,
    private readonly target: string,
    options: CloneOptions,
  ) {
    this.limits = limitsOf(options.limits)
  }

  enterLevel(depth: number, somePath: string): void {
    if (depth > MAX_DIRECTORY_DEPTH) {
      throw new CairnError(
        'BAD_PATH',
        `Directory ${this.root} nests folders more than ${MAX_DIRECTORY_DEPTH} deep (at ${JSON.stringify(clip(somePath))})`,
        {
          subject: clip(somePath),
          hint: 'no file system path holds that many folders; this DAG may have been made to exhaust the reader',
        },
      )
    }
  }

  entry(path: string): void {
    if (++this.entries > this.limits.maxEntries) {
      throw limitExceeded(
        `Directory ${this.root} lists more than ${this.limits.maxEntries} entries`,
        this.root.toString(),
        'raise the limit with --max-entries if this tree is what you meant to clone',
      )
    }
    checkPathLength(join(this.target, path))
  }

  /** A folder of the tree: the second and later paths to one folder block count as repeats. */
  folder(path: string, cid: CID): void {
    const key = cid.toString()
    const first = this.folders.get(key)
    if (first === undefined) {
      this.folders.set(key, path)
      return
    }
    if (cid.code === DAG_PB && Buffer.from(cid.multihash.bytes).equals(EMPTY_DIRECTORY.multihash.bytes)) return
    if (++this.repeats > Math.max(1, Math.floor(this.limits.maxEntries / 1000))) {
      throw limitExceeded(
        `Directory ${this.root} reaches the same folders by more paths than it has folders (${cid} is at ${JSON.stringify(clip(first))} and ${JSON.stringify(clip(path))}, and ${this.repeats} more such paths): its paths outnumber its blocks`,
        cid.toString(),
        'raise the limit with --max-entries (a thousandth of it bounds the folders reached twice) if this tree is what you meant to clone',
      )
    }
  }
}

/** The plain UnixFS directory without entries: many folders share it. */
const EMPTY_DIRECTORY = CID.parse('bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354')

async function writeAtomic(file: string, text: string, tmpDir: string): Promise<void> {
  await writeFileAtomic(file, text, { tmpDir }).catch((e: unknown) => {
    throw ioError('write', file, e)
  })
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T
  } catch {
    return undefined
  }
}

function totalsOf(files: readonly FileJob[]): Totals {
  return { files: files.length, bytes: files.reduce((n, f) => n + (f.size ?? 0), 0) }
}
