/**
 * The store's packs as `gc` and `du` see them (docs/store.md, docs/memory.md): the files on disk with
 * their sizes, and each `<id>.idx` log read a buffer at a time (`<cid> <offset> <length>`, a torn last
 * line or a damaged one skipped), never whole: a log of 10⁷ blocks is past V8's longest string.
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ioError } from '../errors.js'
import { LOG_BUFFER_BYTES, readLog, type LogEntry } from '../store/block-index/log.js'

/** One pack with an index log. */
export interface PackFile {
  readonly id: string
  /** Bytes of `<id>.pack` and `<id>.idx` on disk. */
  readonly packBytes: number
  readonly idxBytes: number
}

/** The store's packs, in name order (the oldest first), and the packs without a log. */
export interface StoreFiles {
  readonly packs: readonly PackFile[]
  /** `.pack` files without an `.idx` (a writer killed between the two creates, or gc killed midway). */
  readonly orphans: readonly { readonly id: string; readonly bytes: number; readonly mtimeMs: number }[]
}

/** Lists the packs of `packsDir` (`.cairn/packs`): a `stat` each, no log read. Throws `IO`. */
export function listPacks(packsDir: string): StoreFiles {
  let names: string[]
  try {
    names = readdirSync(packsDir).sort()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { packs: [], orphans: [] }
    throw ioError('read', packsDir, e)
  }
  const idx = new Set(names.filter((n) => n.endsWith('.idx')).map((n) => n.slice(0, -4)))
  const packs: PackFile[] = []
  const orphans: { id: string; bytes: number; mtimeMs: number }[] = []
  for (const name of names) {
    if (!name.endsWith('.pack')) continue
    const id = name.slice(0, -5)
    const file = join(packsDir, name)
    try {
      const st = statSync(file)
      if (!idx.has(id)) orphans.push({ id, bytes: st.size, mtimeMs: st.mtimeMs })
      else packs.push({ id, packBytes: st.size, idxBytes: statSync(join(packsDir, id + '.idx')).size })
    } catch (e) {
      throw ioError('read', file, e)
    }
  }
  return { packs, orphans }
}

/**
 * Calls `onEntry` for each whole, well-formed line of pack `id`'s log, in order, with the block's CIDv1
 * bytes (a view, valid during the call). Throws `IO`.
 */
export function readPackLog(packsDir: string, pack: PackFile, onEntry: LogEntry, bufferBytes = LOG_BUFFER_BYTES): void {
  const file = join(packsDir, pack.id + '.idx')
  try {
    readLog(file, 0, pack.idxBytes, onEntry, bufferBytes)
  } catch (e) {
    throw ioError('read', file, e)
  }
}
