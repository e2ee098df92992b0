/**
 * The files of a build, as a stream in path order: the scan merged with the stat caches (the store's
 * sealed cache and the partial caches of builds killed midway), each file with what a cache knows of
 * it. Memory holds one folder listing per level of the walk and one frame per cache, never every file.
 */
import type { CID } from '../cid.js'
import { CairnError } from '../errors.js'
import { comparePaths } from '../manifest.js'
import { sameStamp, type Stamp, type WalkedFile } from '../scan.js'
import type { BlockStoreLike } from '../store/blocks.js'
import type { CachedFile, StatCacheCursor } from '../store/stat-cache.js'
import { cidFromBytes } from '../cid.js'
import type { WalkChange } from './walk-diff.js'

/** A file of the build: where it is, its stamp, and the cache's facts when they hold for it. */
export interface BuildFile {
  readonly path: string
  readonly abs: string
  readonly stamp: Stamp
  /** The cached facts, when the stamp is unchanged and their blocks are stored: the file is not read. */
  readonly hit: CachedFile | undefined
  /** The sealed cache's record at this path, hit or not (for the change count). */
  readonly known: CachedFile | undefined
}

/** Where the build's files come from, and how a cache hit is accepted. */
export interface BuildFileSources {
  /**
   * Records replayed from the sealed cache: the first `count`, which the scan matched except at the
   * paths of `changes` (sorted; files added, modified or removed there, as {@link diffWalk} found them).
   */
  readonly replay?: {
    readonly cursor: StatCacheCursor
    readonly count: number
    readonly root: string
    readonly changes?: readonly WalkChange[]
  }
  /** The rest of the scan: the file that ended the exact match, if any, then the walk. */
  readonly scanned: Iterable<WalkedFile>
  /** The sealed cache's cursor, where the rest of the scan is looked up. */
  readonly sealed?: StatCacheCursor
  /** True when the sealed cache's blocks are known to be stored (no look-up needed). */
  readonly sealedIntact: boolean
  /** Cursors of partial caches, looked up for a file the sealed cache does not know unchanged. */
  readonly partials: readonly StatCacheCursor[]
  readonly store: BlockStoreLike
  /** True when `path` must be read whatever the cache says (keys unique across a rule's shards). */
  readonly mustRead: (path: string) => boolean
  /** Called with each sealed record that no file of the scan took (a removed path). */
  readonly onPassed?: (file: CachedFile) => void
}

/** The build's files in path order (see {@link BuildFile}). */
export async function* buildFiles(s: BuildFileSources): AsyncGenerator<BuildFile> {
  if (s.replay) {
    const { cursor, count, root } = s.replay
    const changes = s.replay.changes ?? []
    let k = 0
    const prefix = root.endsWith('/') ? root : root + '/'
    for (let n = 0; n < count; n++) {
      const c = cursor.current
      // the replayed prefix matched the scan record for record: a cursor that ends early is damage
      if (c === undefined) {
        throw new CairnError('IO', 'the stat cache changed while this build read it (nothing was committed)', {
          hint: 'build again; only cairn writes .cairn/stat-cache, under the store lock',
        })
      }
      // files added before this record
      for (; k < changes.length && comparePaths(changes[k].path, c.path) < 0; k++) {
        const f = changes[k].file
        if (f) yield await fromWalk(f, undefined, s)
      }
      if (k < changes.length && changes[k].path === c.path) {
        const f = changes[k++].file
        if (f) yield await fromWalk(f, c, s)
        else s.onPassed?.(c)
      } else {
        yield {
          path: c.path,
          abs: prefix + c.path,
          stamp: c.stamp,
          hit: (await usable(c, s.sealedIntact, s, c.path)) ? c : undefined,
          known: c,
        }
      }
      cursor.advance()
    }
    for (; k < changes.length; k++) {
      const f = changes[k].file
      if (f) yield await fromWalk(f, undefined, s)
    }
    cursor.close()
  }
  for (const f of s.scanned) {
    const known = s.sealed?.seek(f.path, comparePaths, s.onPassed)
    if (known) s.sealed!.advance()
    yield await fromWalk(f, known, s)
  }
  // the sealed records after the last file: removed paths
  if (s.sealed) {
    for (let c = s.sealed.current; c !== undefined; c = s.sealed.current) {
      s.onPassed?.(c)
      s.sealed.advance()
    }
  }
  for (const p of s.partials) p.close()
}

/** A walked file as a build file: a hit when `known` (the sealed record at its path) or a partial cache has its stamp. */
async function fromWalk(f: WalkedFile, known: CachedFile | undefined, s: BuildFileSources): Promise<BuildFile> {
  let hit = known && sameStamp(known.stamp, f.stamp) && (await usable(known, s.sealedIntact, s, f.path)) ? known : undefined
  for (let p = 0; hit === undefined && p < s.partials.length; p++) {
    const c = s.partials[p].seek(f.path, comparePaths)
    if (c && sameStamp(c.stamp, f.stamp) && (await usable(c, false, s, f.path))) hit = c
  }
  return { path: f.path, abs: f.abs, stamp: f.stamp, hit, known }
}

/** True when a cached file's facts may be used: not a file that must be read, and its blocks stored. */
async function usable(c: CachedFile, intact: boolean, s: BuildFileSources, path: string): Promise<boolean> {
  if (s.mustRead(path)) return false
  if (intact) return true
  if (!(await s.store.has(cid(c.cid)))) return false
  return c.schema === undefined || s.store.has(cid(c.schema))
}

function cid(bytes: Uint8Array): CID {
  return cidFromBytes(bytes)
}
