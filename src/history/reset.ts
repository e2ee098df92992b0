/**
 * `reset`: moves HEAD to another version, leaving the folder's files as they are (the next build
 * then makes a version whose parent is that one). Every move is recorded in the HEAD log, so
 * `reset --undo` moves HEAD back and `reset --list` shows the moves.
 */
import type { CID, Link } from '../cid.js'
import { withDataset } from '../dataset.js'
import { CairnError } from '../errors.js'
import type { VersionManifest } from '../manifest.js'
import { withLock } from '../store/lock.js'
import { readVersion, resolveRef } from '../version.js'
import { readHeadLog, type HeadMove } from './reflog.js'

export interface ResetOptions {
  readonly dir?: string
  /** The version HEAD moves to: a CID, HEAD~n or a tag. Without it, `undo` must be set. */
  readonly ref?: string
  /** Move HEAD back to where the last move of HEAD took it from. */
  readonly undo?: boolean
}

/** A move of HEAD that {@link reset} made. */
export interface ResetResult {
  readonly from: Link<VersionManifest> | null
  readonly to: Link<VersionManifest>
}

/**
 * Moves HEAD to `ref` (a version that must be in the store, checked), or with `undo` back to where the
 * last recorded move came from. Takes the dataset's lock. Throws `USAGE` (neither or both of `ref` and
 * `undo`; nothing to undo; HEAD moved since the last recorded move), `BAD_REF`, `MISSING_BLOCK`,
 * `INVALID_MANIFEST`, `IO`; HEAD is unchanged then.
 */
export async function reset(options: ResetOptions): Promise<ResetResult> {
  if ((options.ref === undefined) === !options.undo) {
    throw new CairnError('USAGE', 'reset takes a version to move HEAD to, or --undo (not both)', {
      hint: 'cairn reset HEAD~1, cairn reset v1, cairn reset --undo',
    })
  }
  return withDataset(options.dir, (dataset) =>
    withLock(dataset.root, async () => {
      const from = (await dataset.refs.head()) ?? null
      let to: CID
      let message: string
      if (options.undo) {
        const last = (await readHeadLog(dataset.store.root)).at(-1)
        if (!last || !last.from) throw new CairnError('USAGE', 'Nothing to undo: the HEAD log has no move from an earlier version')
        if (!from?.equals(last.to)) {
          throw new CairnError('USAGE', `HEAD (${from}) is not where the last recorded move took it (${last.to})`, {
            hint: 'see the moves with `cairn reset --list` and reset to the version you want',
          })
        }
        to = last.from
        message = `undo ${last.op}${last.message ? ` (${last.message})` : ''}`
      } else {
        to = await resolveRef(dataset, options.ref)
        message = `to ${options.ref}`
      }
      // a version whose block the store lacks or that is not a version never becomes HEAD
      await readVersion(dataset.store, to)
      await dataset.refs.setHead(to, { op: 'reset', message })
      return { from: from as Link<VersionManifest> | null, to: to as Link<VersionManifest> }
    }),
  )
}

/** Every recorded move of HEAD, newest first. */
export async function headLog(options: { readonly dir?: string; readonly limit?: number } = {}): Promise<HeadMove[]> {
  return withDataset(options.dir, async (dataset) => (await readHeadLog(dataset.store.root)).reverse().slice(0, options.limit))
}
