/** `log`: the parent chain of a version, newest first. */
import type { CID } from './cid.js'
import { diffVersions, type ChangeCounts } from './diff.js'
import { isCairnError, type CairnError } from './errors.js'
import type { Totals } from './manifest.js'
import { withDatasetSource } from './release/source.js'
import type { SourceFailure } from './sources/index.js'
import { readVersion, resolveRef } from './version.js'

export interface LogOptions {
  readonly dir?: string
  /** Where to start (default `HEAD`). */
  readonly ref?: string
  /** At most this many versions. */
  readonly limit?: number
  /** Also count the shards added, removed, modified and renamed since each version's parent ({@link LogEntry.stat}). */
  readonly stat?: boolean
  /**
   * Where to fetch versions the store lacks (a clone holds its own version only), tried before the
   * sources a clone recorded. Every block is checked against its CID.
   */
  readonly from?: readonly string[]
  /** Hears of each failure of a source on a block. */
  readonly onFailure?: (failure: SourceFailure) => void
  /** Hears of each version as soon as it is read (before older ones are fetched). */
  readonly onEntry?: (entry: LogEntry) => void
}

/** One version in the history. */
export interface LogEntry {
  readonly cid: CID
  readonly parent: CID | null
  readonly created: string
  readonly message: string
  readonly totals: Totals
  /** Tags pointing at this version. */
  readonly tags: readonly string[]
  /**
   * With `stat`: shard changes since the parent, by the same index walk as `diff` (equal subtrees are
   * skipped). The first version counts every shard as added.
   */
  readonly stat?: ChangeCounts
}

/** The history, and where it stops short when an older version could not be read. */
export interface LogResult {
  readonly entries: readonly LogEntry[]
  /**
   * Set when the history goes on but a version could not be read (a clone without its history, a
   * source that failed): the error, naming the version. Entries before it are all there.
   */
  readonly incomplete?: CairnError
}

/**
 * The history from `ref` back to the first version, reading versions the dataset lacks from `from`
 * and the sources a clone recorded. Throws `BAD_REF`, and `MISSING_BLOCK`, `FETCH_FAILED` or
 * `INVALID_MANIFEST` when `ref` itself cannot be read; an older version that cannot be read ends the
 * history early ({@link LogResult.incomplete}).
 */
export async function logHistory(options: LogOptions = {}): Promise<LogResult> {
  return withDatasetSource(options.dir, { from: options.from, onFailure: options.onFailure }, async ({ dataset, source }) => {
    const tags = await dataset.refs.tags()
    const out: LogEntry[] = []
    let at: CID | null = await resolveRef(dataset, options.ref, source)
    while (at && out.length < (options.limit ?? Infinity)) {
      const here: CID = at
      let entry: LogEntry
      try {
        const v = await readVersion(source, here)
        entry = {
          cid: here,
          parent: v.parent,
          created: v.created,
          message: v.message,
          totals: v.totals,
          tags: tags.filter((t) => t.cid.equals(here)).map((t) => t.name),
          stat: !options.stat
            ? undefined
            : v.parent
              ? (await diffVersions(source, v.parent, here, { skipHistory: true, skipSchemas: true, skipCard: true })).counts
              : { added: v.totals.shards, removed: 0, modified: 0, renamed: 0 },
        }
      } catch (e) {
        const short = isCairnError(e, 'MISSING_BLOCK') || isCairnError(e, 'FETCH_FAILED') || isCairnError(e, 'INVALID_MANIFEST')
        if (out.length === 0 || !short) throw e
        return { entries: out, incomplete: e }
      }
      out.push(entry)
      options.onEntry?.(entry)
      at = entry.parent
    }
    return { entries: out }
  })
}

/**
 * The history from `ref` back to the first version (see {@link logHistory}). Throws as it does, and
 * also the error that ended the history early.
 */
export async function log(options: LogOptions = {}): Promise<LogEntry[]> {
  const result = await logHistory(options)
  if (result.incomplete) throw result.incomplete
  return [...result.entries]
}
