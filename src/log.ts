/** `log`: the parent chain of a version, newest first. */
import type { CID } from './cid.js'
import { withDataset } from './dataset.js'
import type { ChangeCounts } from './diff.js'
import type { Totals } from './manifest.js'
import { readVersion, resolveRef } from './version.js'

export interface LogOptions {
  readonly dir?: string
  /** Where to start (default `HEAD`). */
  readonly ref?: string
  /** At most this many versions. */
  readonly limit?: number
  /** Also count the shards added, removed, modified and renamed since each version's parent ({@link LogEntry.stat}). */
  readonly stat?: boolean
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

/**
 * The history from `ref` back to the first version. Throws `BAD_REF`, `MISSING_BLOCK`, `INVALID_MANIFEST`
 * (with `stat`, also for a missing or invalid index node of a version or its parent).
 */
export async function log(options: LogOptions = {}): Promise<LogEntry[]> {
  return withDataset(options.dir, async (dataset) => {
    const tags = await dataset.refs.tags()
    // the diff machinery (sources, row readers) is loaded only when --stat asks for it
    const { diffVersions } = options.stat ? await import('./diff.js') : { diffVersions: undefined }
    const out: LogEntry[] = []
    let at: CID | null = await resolveRef(dataset, options.ref)
    while (at && out.length < (options.limit ?? Infinity)) {
      const v = await readVersion(dataset.store, at)
      const here: CID = at
      out.push({
        cid: here,
        parent: v.parent,
        created: v.created,
        message: v.message,
        totals: v.totals,
        tags: tags.filter((t) => t.cid.equals(here)).map((t) => t.name),
        stat: !options.stat
          ? undefined
          : v.parent
            ? (await diffVersions!(dataset.store, v.parent, here, { skipHistory: true, skipSchemas: true, skipCard: true })).counts
            : { added: v.totals.shards, removed: 0, modified: 0, renamed: 0 },
      })
      at = v.parent
    }
    return out
  })
}
