/** `log`: the parent chain of a version, newest first. */
import type { CID } from './cid.js'
import { openDataset } from './dataset.js'
import type { Totals } from './manifest.js'
import { readVersion, resolveRef } from './version.js'

export interface LogOptions {
  readonly dir?: string
  /** Where to start (default `HEAD`). */
  readonly ref?: string
  /** At most this many versions. */
  readonly limit?: number
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
}

/** The history from `ref` back to the first version. Throws `BAD_REF`, `MISSING_BLOCK`, `INVALID_MANIFEST`. */
export async function log(options: LogOptions = {}): Promise<LogEntry[]> {
  const dataset = await openDataset(options.dir)
  const tags = await dataset.refs.tags()
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
    })
    at = v.parent
  }
  return out
}
