/**
 * The walk against the sealed stat cache, record for record and path by path: which files are as the
 * cache knows them (same path, same stamp) and which paths changed. Nothing is made per unchanged file;
 * the changes are kept, up to a bound, so that a build after a few changes can edit its parent's index
 * and tree instead of building them again (docs/streaming-build.md).
 */
import { comparePaths } from '../manifest.js'
import { sameStamp, type WalkedFile } from '../scan.js'
import type { StatCacheCursor } from '../store/stat-cache.js'

/** A path whose file differs from the cache's record: added, modified (a new stamp) or removed. */
export interface WalkChange {
  readonly path: string
  /** The file the walk found there; undefined when the cache's file is gone. */
  readonly file: WalkedFile | undefined
  /** A copy of the cache's CID bytes at this path; undefined for a path the cache lacks. */
  readonly knownCid: Uint8Array | undefined
}

export interface WalkDiff {
  /** Files whose path and stamp the cache has. */
  readonly matched: number
  /** Their bytes. */
  readonly matchedBytes: number
  /** The changes, in path order (all of them when `complete`). */
  readonly changes: readonly WalkChange[]
  /** True when both the walk and the cache's records ended within the bound on changes. */
  readonly complete: boolean
  /** When not complete: the walked file not yet compared (the rest of the walk follows it). */
  readonly pending: WalkedFile | undefined
}

/**
 * Walks `walker` and `cursor` together (both in canonical path order) until both end or more than
 * `limit` changes are found. The cursor is then at the first record not compared, and `cursor.passed`
 * records lie behind it; `pending` and the rest of `walker` are the files not compared.
 */
export function diffWalk(walker: Iterator<WalkedFile>, cursor: StatCacheCursor, limit: number): WalkDiff {
  const changes: WalkChange[] = []
  let matched = 0
  let matchedBytes = 0
  let next = walker.next()
  for (;;) {
    if (changes.length > limit) return { matched, matchedBytes, changes, complete: false, pending: next.done ? undefined : next.value }
    const f = next.done ? undefined : next.value
    const c = cursor.current
    if (f === undefined && c === undefined) return { matched, matchedBytes, changes, complete: true, pending: undefined }
    const order = f === undefined ? 1 : c === undefined ? -1 : f.path === c.path ? 0 : comparePaths(f.path, c.path)
    if (order === 0 && sameStamp(c!.stamp, f!.stamp)) {
      matched++
      matchedBytes += Number(f!.stamp[0])
    } else if (order <= 0) {
      changes.push({ path: f!.path, file: f, knownCid: order === 0 ? c!.cid.slice() : undefined })
    } else changes.push({ path: c!.path, file: undefined, knownCid: c!.cid.slice() })
    if (order >= 0) cursor.advance()
    if (order <= 0) next = walker.next()
  }
}
