/** `tag`: names a version. */
import type { CID } from './cid.js'
import { withDataset } from './dataset.js'
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

/** A tag and what its version says of itself (when the store has the version block). */
export interface TagEntry {
  readonly name: string
  readonly cid: CID
  readonly created?: string
  readonly message?: string
}

/** Every tag of the dataset with its version CID, created time and message, sorted by name. */
export async function tags(options: { readonly dir?: string } = {}): Promise<TagEntry[]> {
  return withDataset(options.dir, async (dataset) => {
    const out: TagEntry[] = []
    for (const t of await dataset.refs.tags()) {
      // a tag of a version the store lacks (collected, or never fetched) is still listed
      const v = await readVersion(dataset.store, t.cid).catch(() => undefined)
      out.push(v ? { ...t, created: v.created, message: v.message } : t)
    }
    return out
  })
}

/**
 * Deletes tag `name` (the version and its blocks stay until `gc`). Throws `BAD_REF` when there is no
 * such tag, `IO`.
 */
export async function deleteTag(options: {
  readonly dir?: string
  readonly name: string
}): Promise<{ readonly name: string; readonly cid: CID }> {
  return withDataset(options.dir, (dataset) =>
    withLock(dataset.root, async () => {
      const cid = await dataset.refs.deleteTag(options.name)
      if (!cid) {
        throw new CairnError('BAD_REF', `No tag ${JSON.stringify(options.name)} to delete`, {
          subject: options.name,
          hint: 'list tags with `cairn tag`',
        })
      }
      return { name: options.name, cid }
    }),
  )
}
