/** `show`: one version with its card, totals, profile and links. */
import type { CID } from './cid.js'
import { withDatasetSource } from './release/source.js'
import type { Card, VersionManifest } from './manifest.js'
import { readCardBlock, readVersion, resolveRef } from './version.js'

export interface ShowOptions {
  readonly dir?: string
  readonly ref?: string
  /** Where to fetch a version the store lacks (tried before the sources a clone recorded); every block checked. */
  readonly from?: readonly string[]
}

export interface ShowResult {
  readonly cid: CID
  readonly manifest: VersionManifest
  readonly card: Card
}

/**
 * Reads the version `ref` and its card, from the store, a clone's recorded sources or `from`. Throws
 * `BAD_REF`, `MISSING_BLOCK`, `FETCH_FAILED`, `INVALID_MANIFEST`.
 */
export async function show(options: ShowOptions = {}): Promise<ShowResult> {
  return withDatasetSource(options.dir, { from: options.from }, async ({ dataset, source }) => {
    const cid = await resolveRef(dataset, options.ref, source)
    const manifest = await readVersion(source, cid)
    const card = await readCardBlock(source, manifest.card)
    return { cid, manifest, card }
  })
}
