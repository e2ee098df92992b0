/** `show`: one version with its card, totals, profile and links. */
import type { CID } from './cid.js'
import { withDataset } from './dataset.js'
import type { Card, VersionManifest } from './manifest.js'
import { readCardBlock, readVersion, resolveRef } from './version.js'

export interface ShowOptions {
  readonly dir?: string
  readonly ref?: string
}

export interface ShowResult {
  readonly cid: CID
  readonly manifest: VersionManifest
  readonly card: Card
}

/** Reads the version `ref` and its card. Throws `BAD_REF`, `MISSING_BLOCK`, `INVALID_MANIFEST`. */
export async function show(options: ShowOptions = {}): Promise<ShowResult> {
  return withDataset(options.dir, async (dataset) => {
    const cid = await resolveRef(dataset, options.ref)
    const manifest = await readVersion(dataset.store, cid)
    const card = await readCardBlock(dataset.store, manifest.card)
    return { cid, manifest, card }
  })
}
