/**
 * What a reference-mode store lost when data files changed (docs/store.md, "Store modes"): which versions
 * a lost block fed, and `checkReferences`, which looks at every data file the store references and
 * reports those edited or deleted since, with the versions that lost blocks with them.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { basename, join } from 'node:path'
import { blockLinks } from '../car/block.js'
import { findEntry } from '../cat.js'
import { CID, cidTextBytes, DAG_PB, RAW } from '../cid.js'
import { withDataset } from '../dataset.js'
import { ioError } from '../errors.js'
import { readVersion } from '../version.js'
import type { BlockSource } from './blocks.js'
import { lastFileFrom, readReferencePack, ReferenceReader, isReferencePack, type ReferencedFile } from './reference-pack.js'
import { Refs } from './refs.js'

/** Versions looked at, at most, when naming those that lost a block (the refs' histories, newest first). */
const MAX_VERSIONS = 10_000

/**
 * The versions reachable from HEAD and the tags (with their history) whose file at `path` is, or holds,
 * the block `lost`. Reads version, index and file-node blocks from `store`, never raw leaves.
 */
export async function versionsUsing(storeDir: string, store: BlockSource, path: string, lost: CID): Promise<CID[]> {
  const refs = new Refs(storeDir)
  const starts: CID[] = []
  const head = await refs.head()
  if (head) starts.push(head)
  for (const t of await refs.tags()) starts.push(t.cid)
  const seen = new Set<string>()
  const out: CID[] = []
  const holds = new Map<string, boolean>()
  for (let at of starts) {
    for (;;) {
      const k = at.toString()
      if (seen.has(k) || seen.size >= MAX_VERSIONS) break
      seen.add(k)
      let version
      try {
        version = await readVersion(store, at)
      } catch {
        break
      }
      const entry = await findEntry(store, version.index, path).catch(() => undefined)
      if (entry) {
        const key = entry.cid.toString()
        let has = holds.get(key)
        if (has === undefined) {
          has = await dagHolds(store, entry.cid, lost)
          holds.set(key, has)
        }
        if (has) out.push(at)
      }
      if (!version.parent) break
      at = version.parent
    }
  }
  return out
}

/** Whether the UnixFS file DAG under `root` has the raw leaf `leaf` (reads its dag-pb nodes only). */
async function dagHolds(store: BlockSource, root: CID, leaf: CID): Promise<boolean> {
  if (root.equals(leaf)) return true
  if (root.code !== DAG_PB) return false
  const todo = [root]
  while (todo.length > 0) {
    const cid = todo.pop()!
    let links: CID[]
    try {
      links = blockLinks(cid, await store.get(cid))
    } catch {
      continue
    }
    for (const l of links) {
      if (l.equals(leaf)) return true
      if (l.code === DAG_PB) todo.push(l)
      else if (l.code !== RAW) continue
    }
  }
  return false
}

/** A data file a reference-mode store reads blocks from, found edited or deleted. */
export interface LostFile {
  /** Relative to the dataset folder. */
  readonly path: string
  readonly why: 'deleted' | 'changed' | 'unreadable'
  /** Blocks of the file the store can no longer read from it. */
  readonly blocks: number
  /** Versions (reachable from HEAD and the tags) that lost blocks with it, newest first per ref. */
  readonly versions: readonly CID[]
}

/** What {@link checkReferences} found. */
export interface ReferenceCheck {
  /** Data files referenced, and blocks in them. */
  readonly files: number
  readonly blocks: number
  /** Files edited or deleted since the build that referenced them, whose blocks no longer hash to their CIDs. */
  readonly lost: readonly LostFile[]
}

/**
 * Looks at every data file the store's reference packs name: a file whose size, mtime or inode differ
 * from when it was built has each of its blocks read and hashed; a block that no longer matches (or a file
 * gone) is lost. Reports each lost file with the versions that lost blocks. Reads only (a changed file
 * whose blocks still hash right is not lost: a `touch` loses nothing). Throws `NOT_A_DATASET`, `IO`.
 */
export async function checkReferences(options: { readonly dir?: string } = {}): Promise<ReferenceCheck> {
  return withDataset(options.dir, async (dataset) => {
    const packsDir = join(dataset.store.root, 'packs')
    let names: string[]
    try {
      names = readdirSync(packsDir)
        .filter((n) => n.endsWith('.idx') && isReferencePack(n.slice(0, -4)))
        .sort()
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { files: 0, blocks: 0, lost: [] }
      throw ioError('read', packsDir, e)
    }
    const reader = new ReferenceReader(packsDir, dataset.root)
    const lost = new Map<string, { why: LostFile['why']; blocks: number; first: CID }>()
    let files = 0
    let blocks = 0
    for (const name of names) {
      const pack = name.slice(0, -4)
      const listed = readReferencePack(join(packsDir, pack + '.pack'))
      files += listed.length
      const changed = new Set(listed.filter((f) => !unchanged(dataset.root, f)).map((f) => f.base))
      const lines = readLog(join(packsDir, name))
      blocks += lines.length
      for (const [cid, offset, length] of lines) {
        const file = fileAt(listed, offset)
        if (file && !changed.has(file.base)) continue
        const got = await reader.get(cid, pack, offset, length)
        if ('bytes' in got) continue
        // a reference superseded by a copy, or by a newer reference that still reads right, loses nothing
        const now = await dataset.store.locationOf(cid)
        const nowPack = now && basename(now.file, '.pack')
        if (now && (nowPack !== pack || now.offset !== offset)) {
          if (!isReferencePack(nowPack!)) continue
          if ('bytes' in (await reader.get(cid, nowPack!, now.offset, now.length))) continue
        }
        const path = got.lost.path ?? pack
        const l = lost.get(path)
        if (l) l.blocks++
        else lost.set(path, { why: got.lost.why, blocks: 1, first: cid })
      }
    }
    const out: LostFile[] = []
    for (const [path, l] of [...lost].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const versions = await versionsUsing(dataset.store.root, dataset.store, path, l.first)
      out.push({ path, why: l.why, blocks: l.blocks, versions })
    }
    return { files, blocks, lost: out }
  })
}

/** True when the file's size, mtime and inode are those it had when it was referenced. */
function unchanged(root: string, f: ReferencedFile): boolean {
  try {
    const st = statSync(join(root, f.path), { bigint: true })
    return Number(st.size) === f.size && st.mtimeNs === f.mtimeNs && st.ino === f.ino
  } catch {
    return false
  }
}

function fileAt(files: readonly ReferencedFile[], offset: number): ReferencedFile | undefined {
  const f = lastFileFrom(files, offset)
  return f !== undefined && offset < f.base + Math.max(1, f.size) ? f : undefined
}

/** The whole lines of an index log: CID, offset, length. */
function readLog(file: string): [CID, number, number][] {
  let text: string
  try {
    text = readFileSync(file, 'latin1')
  } catch (e) {
    throw ioError('read', file, e)
  }
  const out: [CID, number, number][] = []
  const scratch = new Uint8Array(128)
  for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) {
    const [key, o, l] = line.split(' ')
    const bytes = key ? cidTextBytes(line, 0, key.length, scratch) : undefined
    const offset = Number(o)
    const length = Number(l)
    if (bytes === undefined || !Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) continue
    try {
      out.push([CID.decode(bytes.slice()), offset, length])
    } catch {
      // not a CID: a damaged line, skipped as the store skips it
    }
  }
  return out
}
