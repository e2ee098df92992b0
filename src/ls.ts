/** `ls`: the shards of a version, in path order. */
import { openDatasetSource } from './release/source.js'
import { walkEntries } from './shard-index/prolly.js'
import type { ShardEntry } from './manifest.js'
import { readVersion, resolveRef } from './version.js'

export interface LsOptions {
  readonly dir?: string
  readonly ref?: string
  /** Where to fetch index nodes the store lacks (tried before the sources a clone recorded); every block checked. */
  readonly from?: readonly string[]
}

/**
 * Streams the shard entries of the version `ref` in path order, reading the index one node at a time.
 * Throws `BAD_REF`, `MISSING_BLOCK`, `FETCH_FAILED`, `INVALID_MANIFEST`.
 */
export async function* ls(options: LsOptions = {}): AsyncGenerator<ShardEntry> {
  const { dataset, source, close } = await openDatasetSource(options.dir, { from: options.from })
  try {
    const version = await readVersion(source, await resolveRef(dataset, options.ref, source))
    yield* walkEntries(source, version.index)
  } finally {
    await close()
  }
}
