/**
 * `restore`: writes files of a version back into the dataset folder, from the store (and `from`
 * sources for blocks it lacks), every block verified against its CID. Each file is written to a
 * temporary name beside it and renamed over the old one once complete, so a file is always the old one
 * or the new one. Files with uncommitted changes (the folder against HEAD) are never overwritten or
 * removed unless `force`: the check runs before anything is written.
 */
import { randomBytes } from 'node:crypto'
import { lstat, mkdir, rename, rmdir, unlink } from 'node:fs/promises'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { FallbackSource } from '../car/source.js'
import type { CID, Link } from '../cid.js'
import { CARD_FILE, withDataset, type Dataset } from '../dataset.js'
import type { EntryChange } from '../diff/index-walk.js'
import { CairnError, ioError, isCairnError } from '../errors.js'
import { walkEntries } from '../shard-index/prolly.js'
import type { ShardEntry, VersionManifest } from '../manifest.js'
import { openSources } from '../sources/index.js'
import type { BlockSource } from '../store/blocks.js'
import { withLock } from '../store/lock.js'
import { exportToFile } from '../unixfs/export.js'
import { writeFileAtomic } from '../util/atomic.js'
import { readCardBlock, readVersion, resolveRef } from '../version.js'
import { worktreeChanges } from './changes.js'

export interface RestoreOptions {
  /** The dataset folder or a folder inside it (default: the current folder). */
  readonly dir?: string
  /** The version to restore from (a CID, HEAD, HEAD~n or a tag). */
  readonly ref: string
  /**
   * Files or folders to restore, as paths on disk (relative ones against `cwd`); `cairn.json` restores
   * the card. Default: the whole version, card included. Under the paths, the folder is made to hold
   * exactly the version's files: files the version lacks are removed (those that differ from HEAD, or
   * that HEAD lacks, only with `force`).
   */
  readonly paths?: readonly string[]
  /** What relative `paths` are relative to (default: the current folder). */
  readonly cwd?: string
  /** Overwrite or remove files with uncommitted changes. */
  readonly force?: boolean
  /** Sources for blocks the store lacks (gateway URLs, CAR files, `dir:` folders), every block verified. */
  readonly from?: readonly string[]
  readonly onProgress?: (p: { readonly files: number; readonly totalFiles: number; readonly path: string }) => void
}

/** What {@link restore} did. */
export interface RestoreResult {
  readonly version: Link<VersionManifest>
  /** Files written (their content differed or they were missing), in path order. */
  readonly restored: readonly string[]
  /** Files removed (the version does not have them). */
  readonly removed: readonly string[]
  /** Files of the version already as it has them. */
  readonly unchanged: number
  /** `cairn.json`: written, already the version's, or not asked for. */
  readonly card: 'restored' | 'same' | 'skipped'
}

/**
 * Restores files of version `ref` into the dataset folder. Takes the dataset's lock. Throws
 * `UNCOMMITTED_CHANGES` (listing the files) when a file to overwrite or remove differs from HEAD and
 * `force` is not set, before anything is written; `BAD_PATH` for a path outside the dataset or that
 * the version does not hold, or a folder on the way that is a symbolic link; `BAD_REF`,
 * `MISSING_BLOCK` / `CORRUPT_BLOCK` (the file being written is left as it was), `IO`.
 */
export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  return withDataset(options.dir, (dataset) =>
    withLock(dataset.root, async () => {
      const remote = options.from && options.from.length > 0 ? await openSources(options.from) : undefined
      try {
        const source: BlockSource = remote ? new FallbackSource([dataset.store, remote]) : dataset.store
        return await restoreIn(dataset, source, options)
      } finally {
        await remote?.close()
      }
    }),
  )
}

async function restoreIn(dataset: Dataset, source: BlockSource, options: RestoreOptions): Promise<RestoreResult> {
  const version = await resolveRef(dataset, options.ref)
  const manifest = await readVersion(source, version)
  const specs = (options.paths ?? []).map((p) => datasetPath(dataset.root, options.cwd ?? process.cwd(), p))
  const wanted = (path: string): boolean => specs.length === 0 || specs.some((s) => s === '' || path === s || path.startsWith(s + '/'))
  const cardWanted = specs.length === 0 || specs.includes(CARD_FILE) || specs.includes('')

  // the folder against HEAD: what has uncommitted changes, and what each changed file now holds
  const head = await dataset.refs.head()
  const status = await worktreeChanges(dataset, head)
  const dirty = new Map<string, EntryChange>()
  for (const c of status.changes) dirty.set(c.path, c)

  const target = new Map<string, ShardEntry>()
  for await (const e of walkEntries(source, manifest.index)) if (wanted(e.path)) target.set(e.path, e)
  const headEntries = new Map<string, ShardEntry>()
  if (status.manifest)
    for await (const e of walkEntries(dataset.store, status.manifest.index)) if (wanted(e.path)) headEntries.set(e.path, e)
  for (const s of specs) {
    if (s === '' || s === CARD_FILE) continue
    const found = [...target.keys(), ...headEntries.keys()].some((p) => p === s || p.startsWith(s + '/'))
    if (!found) throw new CairnError('BAD_PATH', `${s} is not a file or folder of ${version} (nor of HEAD)`, { subject: s })
  }

  const write: ShardEntry[] = []
  const remove: string[] = []
  const conflicts: string[] = []
  let unchanged = 0
  for (const [path, e] of target) {
    const change = dirty.get(path)
    // what the folder holds now: HEAD's file unless it changed
    const now = change ? change.after?.cid : headEntries.get(path)?.cid
    if (now?.equals(e.cid)) {
      unchanged++
      continue
    }
    // a file that is gone loses nothing when written back
    if (change?.after && !options.force) conflicts.push(path)
    write.push(e)
  }
  for (const [path] of headEntries) {
    if (target.has(path)) continue
    const change = dirty.get(path)
    if (change && !change.after) continue // already gone
    if (change && !options.force) conflicts.push(path)
    remove.push(path)
  }
  // files HEAD does not have (not built yet): the version lacks them too, so they go, but never unasked
  for (const [path, change] of dirty) {
    if (change.before || !change.after || !wanted(path) || target.has(path)) continue
    if (!options.force) conflicts.push(path)
    remove.push(path)
  }
  let card: RestoreResult['card'] = 'skipped'
  if (cardWanted) {
    card = status.card === 'same' && status.manifest?.card.equals(manifest.card) ? 'same' : 'restored'
    if (card === 'restored' && status.card !== 'same' && status.card !== 'missing' && !options.force) conflicts.push(CARD_FILE)
  }
  if (conflicts.length > 0) {
    conflicts.sort()
    const shown = conflicts.slice(0, 20).join(', ') + (conflicts.length > 20 ? `, … (${conflicts.length} in all)` : '')
    throw new CairnError('UNCOMMITTED_CHANGES', `Restoring ${options.ref} would overwrite uncommitted changes to ${shown}`, {
      subject: conflicts[0],
      details: conflicts,
      hint: 'build them first (`cairn build`), or pass --force to discard them; nothing was written',
    })
  }

  // removals first: a file the version has may take the place of a folder that empties
  for (const path of remove) {
    try {
      await unlink(join(dataset.root, path))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('remove', path, err)
    }
    await removeEmptyFolders(dataset.root, path)
  }
  const restored: string[] = []
  let done = 0
  for (const e of write) {
    await writeVerified(dataset.root, source, e)
    restored.push(e.path)
    options.onProgress?.({ files: ++done, totalFiles: write.length, path: e.path })
  }
  if (card === 'restored') {
    const value = await readCardBlock(source, manifest.card)
    const file = join(dataset.root, CARD_FILE)
    await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n').catch((err: unknown) => {
      throw ioError('write', file, err)
    })
  }
  return { version, restored, removed: remove.sort(), unchanged, card }
}

/** Removes the folders of `path` that are now empty, deepest first (never the dataset folder). */
async function removeEmptyFolders(root: string, path: string): Promise<void> {
  const parts = path.split('/').slice(0, -1)
  while (parts.length > 0) {
    try {
      await rmdir(join(root, ...parts))
    } catch {
      return // not empty (or not ours to remove)
    }
    parts.pop()
  }
}

/** `path` (on disk, relative to `cwd`) as a dataset path: `''` for the dataset folder itself. Throws `BAD_PATH` outside it. */
function datasetPath(root: string, cwd: string, path: string): string {
  const rel = relative(root, resolve(cwd, path))
  if (rel === '') return ''
  if (rel.startsWith('..') || isAbsolute(rel)) {
    throw new CairnError('BAD_PATH', `${path} is outside the dataset ${root}`, { subject: path })
  }
  return rel.split(sep).join('/')
}

/**
 * Writes shard `e` to its path: into a temporary name in the same folder, then renamed over the old
 * file. The folders on the way are created; one that exists as a symbolic link is refused (a write
 * must never leave the dataset). A block that is missing or fails its CID leaves the old file as it was.
 */
async function writeVerified(root: string, source: BlockSource, e: ShardEntry): Promise<void> {
  const file = join(root, e.path)
  const segments = e.path.split('/')
  let dir = root
  for (const segment of segments.slice(0, -1)) {
    dir = join(dir, segment)
    const st = await lstat(dir).catch(() => undefined)
    if (st?.isSymbolicLink()) {
      throw new CairnError('BAD_PATH', `${e.path}: ${relative(root, dir)} is a symbolic link; restore never writes through one`, {
        subject: e.path,
        hint: 'remove or rename the link, then restore again',
      })
    }
  }
  try {
    await mkdir(dirname(file), { recursive: true })
  } catch (err) {
    throw ioError('create the folder of', e.path, err)
  }
  // hidden, so a concurrent scan never takes it for a shard
  const tmp = join(dirname(file), `.${segments.at(-1)}.${randomBytes(6).toString('hex')}.cairn-restore`)
  try {
    const size = await exportToFile(source, e.cid, tmp)
    if (size !== e.size) {
      throw new CairnError('CORRUPT_BLOCK', `${e.path}: ${e.cid} holds ${size} bytes, the version records ${e.size}`, { subject: e.path })
    }
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    if (isCairnError(err)) throw err
    throw ioError('write', e.path, err)
  }
}

export type { CID }
