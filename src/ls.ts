/** `ls`: the shards of a version, in path order. */
import { openDataset } from './dataset.js'
import { walkEntries } from './index/prolly.js'
import type { ShardEntry } from './manifest.js'
import { readVersion, resolveRef } from './version.js'

export interface LsOptions {
  readonly dir?: string
  readonly ref?: string
}

/**
 * Streams the shard entries of the version `ref` in path order, reading the index one node at a time.
 * Throws `BAD_REF`, `MISSING_BLOCK`, `INVALID_MANIFEST`.
 */
export async function* ls(options: LsOptions = {}): AsyncGenerator<ShardEntry> {
  const dataset = await openDataset(options.dir)
  try {
    const version = await readVersion(dataset.store, await resolveRef(dataset, options.ref))
    yield* walkEntries(dataset.store, version.index)
  } finally {
    await dataset.store.close()
  }
}
