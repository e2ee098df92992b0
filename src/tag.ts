/** `tag`: names a version. */
import type { CID } from './cid.js'
import { openDataset, withDataset } from './dataset.js'
import { CairnError } from './errors.js'
import { withLock } from './store/lock.js'
import { readVersion, resolveRef } from './version.js'

export interface TagOptions {
  readonly dir?: string
  readonly name: string
  /** The version to tag (default `HEAD`). */
  readonly ref?: string
  /** Move an existing tag. */
  readonly force?: boolean
}

/**
 * Points tag `name` at the version `ref`, which must be a version in the store. Throws `USAGE` when
 * the tag exists and points elsewhere (unless `force`) or the name is invalid, `BAD_REF`,
 * `MISSING_BLOCK`, `INVALID_MANIFEST`.
 */
export async function tag(options: TagOptions): Promise<{ readonly name: string; readonly cid: CID }> {
  return withDataset(options.dir, (dataset) =>
    withLock(dataset.root, async () => {
      const cid = await resolveRef(dataset, options.ref)
      await readVersion(dataset.store, cid)
      const existing = await dataset.refs.tag(options.name)
      if (existing && !existing.equals(cid) && !options.force) {
        throw new CairnError('USAGE', `Tag ${options.name} already points at ${existing}`, {
          subject: options.name,
          hint: 'pass --force to move it',
        })
      }
      await dataset.refs.setTag(options.name, cid)
      return { name: options.name, cid }
    }),
  )
}

/** Every tag of the dataset with its version CID, sorted by name. */
export async function tags(options: { readonly dir?: string } = {}): Promise<{ name: string; cid: CID }[]> {
  return (await openDataset(options.dir)).refs.tags()
}
