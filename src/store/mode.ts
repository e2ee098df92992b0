/**
 * The store's mode (docs/store.md, "Store modes"): how a build stores the raw leaves of data files.
 * `copy` appends their bytes to a pack (a second copy of the data); `reflink` makes a pack that is a
 * copy-on-write clone of the data file (no second copy where the file system shares extents; a copy
 * where it does not); `reference` records where the bytes lie in the data file itself (Kubo's
 * filestore). The mode is a property of the store, kept in `.cairn/store.json` beside `storeVersion`,
 * set by `cairn init --store-mode` and changed by `cairn store mode`; it only decides how later
 * builds write: blocks already stored stay where they are, and every mode reads every kind of pack.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CairnError, ioError } from '../errors.js'
import { writeFileAtomic } from '../util/atomic.js'

/** The modes, in the order the CLI lists them. */
export const STORE_MODES = ['copy', 'reflink', 'reference'] as const

export type StoreMode = (typeof STORE_MODES)[number]

/** The mode of a store whose `store.json` names none (every store made before modes existed). */
export const DEFAULT_STORE_MODE: StoreMode = 'copy'

/** Throws `USAGE` unless `mode` is one of {@link STORE_MODES}. */
export function assertStoreMode(mode: unknown): asserts mode is StoreMode {
  if (!STORE_MODES.includes(mode as StoreMode))
    throw new CairnError('USAGE', `Unknown store mode ${JSON.stringify(mode)} (expected ${STORE_MODES.join(', ')})`, {
      subject: String(mode),
    })
}

/**
 * The mode recorded in `store.json` (already parsed), or the default. A store.json naming a mode this
 * cairn does not know is refused (`NOT_A_DATASET`): writing it as `copy` would silently break the
 * promise the user chose the mode for.
 */
export function modeOf(meta: { readonly storeMode?: unknown }, storeDir: string): StoreMode {
  if (meta.storeMode === undefined) return DEFAULT_STORE_MODE
  if (STORE_MODES.includes(meta.storeMode as StoreMode)) return meta.storeMode as StoreMode
  throw new CairnError(
    'NOT_A_DATASET',
    `${join(storeDir, 'store.json')} names store mode ${JSON.stringify(meta.storeMode)}, unknown to this cairn`,
    {
      subject: storeDir,
      hint: 'upgrade cairn',
    },
  )
}

/** Reads the mode of the store `storeDir` (`.cairn`). Throws `IO`, `NOT_A_DATASET`. */
export async function readStoreMode(storeDir: string): Promise<StoreMode> {
  const file = join(storeDir, 'store.json')
  let meta: { storeMode?: unknown }
  try {
    meta = JSON.parse(await readFile(file, 'utf8')) as { storeMode?: unknown }
  } catch (e) {
    throw ioError('read', file, e)
  }
  return modeOf(meta, storeDir)
}

/** Records `mode` in `store.json` (written whole to a temporary file, then renamed), keeping its other fields. */
export async function writeStoreMode(storeDir: string, mode: StoreMode): Promise<void> {
  assertStoreMode(mode)
  const file = join(storeDir, 'store.json')
  let meta: Record<string, unknown>
  try {
    meta = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
  } catch (e) {
    throw ioError('read', file, e)
  }
  // `copy` is the default: a store in copy mode keeps the store.json older cairns wrote
  const next = { ...meta, storeMode: mode === DEFAULT_STORE_MODE ? undefined : mode }
  try {
    await writeFileAtomic(file, JSON.stringify(next) + '\n')
  } catch (e) {
    throw ioError('write', file, e)
  }
}
