/**
 * The store's packs as `gc` and `du` see them (docs/store.md): every `<id>.idx` log read line by line
 * (`<cid> <offset> <length>`, a torn last line ignored), each block's copy that counts (the first in
 * the logs' name order, i.e. the oldest pack), and the files on disk with their sizes.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ioError } from '../errors.js'

/** Where a block's counted copy lies. */
export interface BlockPlace {
  readonly pack: string
  readonly offset: number
  readonly length: number
}

/** One pack and what its index log lists. */
export interface PackInfo {
  readonly id: string
  /** Bytes of `<id>.pack` and `<id>.idx` on disk. */
  readonly packBytes: number
  readonly idxBytes: number
  /** Its index lines: block key (CIDv1 base32), offset, length. */
  readonly keys: string[]
  readonly offsets: number[]
  readonly lengths: number[]
}

/** The store's layout: packs with their logs, packs without one, and every block's counted copy. */
export interface StoreLayout {
  readonly packs: PackInfo[]
  /** `.pack` files without an `.idx` (a writer killed between the two creates, or gc killed midway). */
  readonly orphans: { readonly id: string; readonly bytes: number; readonly mtimeMs: number }[]
  readonly blocks: Map<string, BlockPlace>
}

/** Reads the layout of `packsDir` (`.cairn/packs`). Throws `IO`. */
export function readLayout(packsDir: string): StoreLayout {
  let names: string[]
  try {
    names = readdirSync(packsDir).sort()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { packs: [], orphans: [], blocks: new Map() }
    throw ioError('read', packsDir, e)
  }
  const idx = new Set(names.filter((n) => n.endsWith('.idx')).map((n) => n.slice(0, -4)))
  const packs: PackInfo[] = []
  const orphans: StoreLayout['orphans'] = []
  const blocks = new Map<string, BlockPlace>()
  for (const name of names) {
    if (!name.endsWith('.pack')) continue
    const id = name.slice(0, -5)
    const file = join(packsDir, name)
    let st
    try {
      st = statSync(file)
    } catch (e) {
      throw ioError('read', file, e)
    }
    if (!idx.has(id)) {
      orphans.push({ id, bytes: st.size, mtimeMs: st.mtimeMs })
      continue
    }
    const idxFile = join(packsDir, id + '.idx')
    let text: string
    try {
      text = readFileSync(idxFile, 'latin1')
    } catch (e) {
      throw ioError('read', idxFile, e)
    }
    const info: PackInfo = { id, packBytes: st.size, idxBytes: text.length, keys: [], offsets: [], lengths: [] }
    for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) {
      const [key, offset, length] = line.split(' ')
      const o = Number(offset)
      const l = Number(length)
      if (!key || !Number.isSafeInteger(o) || !Number.isSafeInteger(l) || o < 0 || l < 0) continue
      info.keys.push(key)
      info.offsets.push(o)
      info.lengths.push(l)
      if (!blocks.has(key)) blocks.set(key, { pack: id, offset: o, length: l })
    }
    packs.push(info)
  }
  return { packs, orphans, blocks }
}
