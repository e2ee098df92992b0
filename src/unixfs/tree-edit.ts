/**
 * A new UnixFS tree from its parent and a few edits: only the directories an edited path lies in are
 * read and built again; every other directory (and file) is kept by its link. Directories are built
 * by {@link DirectoryBuilder}, as a cold build builds them, so the root is the one a cold build of the
 * same files gives (plain or HAMT by the same size rule, the same HAMT layout).
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { DAG_PB, type CID } from '../cid.js'
import { CairnError } from '../errors.js'
import { MAX_DIRECTORY_DEPTH } from '../limits/index.js'
import type { BlockSource } from '../store/blocks.js'
import {
  buildSubShard,
  DirectoryBuilder,
  encodeShard,
  HAMT_FANOUT,
  hamtSlot,
  plainLinkSize,
  slotPrefix,
  utf8Length,
  validNameLength,
  type ShardLink,
} from './directory.js'
import type { BlockSink } from './file.js'
import type { BuiltTree } from './tree.js'

/** One edit of a tree: the file now at `path` (its root and DAG size), or its removal (`cid` undefined). */
export interface TreeEdit {
  readonly path: string
  readonly cid: CID | undefined
  readonly dagSize: number
}

/** A directory's entry: a file or a directory, by its link. */
interface Link {
  readonly cid: CID
  readonly dagSize: number
}

/** An edit below a directory: the rest of its path. */
interface Below {
  readonly rest: string
  readonly edit: TreeEdit
}

/**
 * Builds the tree of the parent's files (under `root`) with `edits` applied (at most one per path),
 * passing new directory blocks to `sink`, children first. A folder whose files are all removed
 * disappears, as in a cold build. Fails with `BAD_PATH` for an invalid path or one that would make a
 * file and a folder of one name, `CORRUPT_BLOCK` when a directory of the parent is not a UnixFS
 * directory, and with what the source throws.
 */
export async function editTree(source: BlockSource, root: CID, edits: readonly TreeEdit[], sink: BlockSink): Promise<BuiltTree> {
  const built = await editDirectory(
    source,
    root,
    edits.map((edit) => ({ rest: edit.path, edit })),
    '',
    sink,
    0,
  )
  if (built) return built
  const empty = new DirectoryBuilder('.').build()
  for (const block of empty.blocks) await sink(block)
  return { cid: empty.cid, dagSize: empty.dagSize }
}

async function editDirectory(
  source: BlockSource,
  cid: CID | undefined,
  below: readonly Below[],
  where: string,
  sink: BlockSink,
  depth: number,
): Promise<Link | undefined> {
  if (depth > MAX_DIRECTORY_DEPTH) throw new CairnError('BAD_PATH', `${where}: folders nested deeper than ${MAX_DIRECTORY_DEPTH}`)
  const shards = new Map<string, dagPb.PBLink[]>()
  const top = cid ? await decodeDirectory(source, cid, where) : undefined
  const hamt = top?.type === 'hamt-sharded-directory'
  if (cid && hamt) shards.set(cid.toString(), top!.links)
  // a plain folder is read whole (at most 256 KiB); a HAMT only along the paths of the names looked up
  const entries = !top ? new Map<string, Link>() : hamt ? undefined : plainEntries(top.links)
  const lookup = async (name: string): Promise<Link | undefined> =>
    entries ? entries.get(name) : hamtLookup(source, cid!, name, where, shards)
  // the edits grouped by their first segment: a file of this folder, or what lies in a subfolder
  const files = new Map<string, TreeEdit>()
  const folders = new Map<string, Below[]>()
  for (const b of below) {
    const slash = b.rest.indexOf('/')
    if (slash === -1) files.set(b.rest, b.edit)
    else {
      const name = b.rest.slice(0, slash)
      let list = folders.get(name)
      if (!list) folders.set(name, (list = []))
      list.push({ rest: b.rest.slice(slash + 1), edit: b.edit })
    }
  }
  // each changed name: its link now (undefined: gone)
  const changed = new Map<string, Link | undefined>()
  for (const [name, edit] of files) {
    checkName(name, edit.path)
    changed.set(name, edit.cid ? { cid: edit.cid, dagSize: edit.dagSize } : undefined)
  }
  for (const [name, list] of folders) {
    const path = where === '' ? name : `${where}/${name}`
    checkName(name, list[0].edit.path)
    if (files.get(name)?.cid) throw new CairnError('BAD_PATH', `${path} would be both a file and a folder`, { subject: path })
    const old = files.has(name) ? undefined : await lookup(name)
    changed.set(name, await editDirectory(source, old?.cid, list, path, sink, depth + 1))
  }
  if (hamt) {
    // still past the threshold when the plain block grows or keeps its size: then only the shards on
    // the changed names' paths are built again (the old plain size is past the threshold, and no
    // shard records by how much)
    let delta = 0
    for (const [name, now] of changed) {
      const before = await lookup(name)
      const length = utf8Length(name)
      delta += (now ? plainLinkSize(length, now.cid, now.dagSize) : 0) - (before ? plainLinkSize(length, before.cid, before.dagSize) : 0)
    }
    if (delta >= 0) {
      const edits = [...changed].map(([name, link]) => ({ name, link }))
      const root = await editShard(source, cid!, 0, edits, where, shards, sink)
      if (root.kind !== 'shard') throw corrupt(cid!, where, 'a HAMT that held fewer than two entries')
      return { cid: root.cid, dagSize: root.dagSize }
    }
  }
  const all = entries ?? (await hamtEntries(source, cid!, where, shards))
  for (const [name, link] of changed) {
    if (link) all.set(name, link)
    else all.delete(name)
  }
  if (all.size === 0) return undefined
  const builder = new DirectoryBuilder(where === '' ? '.' : where)
  for (const [name, link] of all) builder.add(name, utf8Length(name), link.cid, link.dagSize)
  const dir = builder.build()
  for (const block of dir.blocks) await sink(block)
  return { cid: dir.cid, dagSize: dir.dagSize }
}

/** A HAMT shard after edits: a shard still, one entry (which its parent links to directly), or nothing. */
type EditedShard =
  | { readonly kind: 'shard'; readonly cid: CID; readonly dagSize: number }
  | { readonly kind: 'entry'; readonly name: string; readonly link: Link }
  | { readonly kind: 'empty' }

/**
 * Applies `edits` (names whose slot path goes through this shard, each with its link now or undefined)
 * to the HAMT shard `cid` at `depth`, building again this shard and the sub-shards the edits reach, as
 * {@link buildSubShard} would build them from all their entries: a sub-shard left with one entry
 * becomes a direct link, a slot that gains a second entry becomes a sub-shard.
 */
async function editShard(
  source: BlockSource,
  cid: CID,
  depth: number,
  edits: readonly { readonly name: string; readonly link: Link | undefined }[],
  where: string,
  shards: Map<string, dagPb.PBLink[]>,
  sink: BlockSink,
): Promise<EditedShard> {
  const links = await shardLinks(source, cid, where, shards)
  const bySlot = new Map<number, (typeof edits)[number][]>()
  for (const e of edits) {
    const slot = hamtSlot(e.name, depth)
    let list = bySlot.get(slot)
    if (!list) bySlot.set(slot, (list = []))
    list.push(e)
  }
  const out: ShardLink[] = []
  let entriesHere = 0
  const place = async (slot: number, link: dagPb.PBLink | undefined): Promise<void> => {
    const slotEdits = bySlot.get(slot)
    if (!slotEdits) {
      if (link) out.push(keep(slot, link, cid, where))
      return
    }
    const name = link?.Name ?? ''
    let result: EditedShard
    if (link && name.length === 2) {
      result = await editShard(source, link.Hash, depth + 1, slotEdits, where, shards, sink)
    } else {
      // an entry (or nothing) at this slot, and the edits that fall here
      const here = new Map<string, Link>()
      if (link) here.set(name.slice(2), { cid: link.Hash, dagSize: link.Tsize ?? 0 })
      for (const e of slotEdits) {
        if (e.link) here.set(e.name, e.link)
        else here.delete(e.name)
      }
      if (here.size === 0) result = { kind: 'empty' }
      else if (here.size === 1) {
        const [[only, l]] = [...here]
        result = { kind: 'entry', name: only, link: l }
      } else {
        const sub = buildSubShard(
          [...here].map(([n, l]) => ({ name: n, cid: l.cid, dagSize: l.dagSize })),
          depth + 1,
        )
        for (const block of sub.blocks) await sink(block)
        result = { kind: 'shard', cid: sub.cid, dagSize: sub.dagSize }
      }
    }
    const prefix = slotPrefix(slot)
    if (result.kind === 'shard') out.push({ slot, name: prefix, nameLength: 2, cid: result.cid, tsize: result.dagSize })
    else if (result.kind === 'entry') {
      out.push({
        slot,
        name: prefix + result.name,
        nameLength: 2 + utf8Length(result.name),
        cid: result.link.cid,
        tsize: result.link.dagSize,
      })
    }
  }
  const seen = new Set<number>()
  for (const link of links) {
    const slot = parseInt((link.Name ?? '').slice(0, 2), 16)
    if (!(slot >= 0 && slot < HAMT_FANOUT) || seen.has(slot)) throw corrupt(cid, where, `a HAMT link named ${JSON.stringify(link.Name)}`)
    seen.add(slot)
    await place(slot, link)
  }
  for (const slot of bySlot.keys()) if (!seen.has(slot)) await place(slot, undefined)
  out.sort((a, b) => a.slot - b.slot)
  for (const l of out) entriesHere += l.nameLength === 2 ? 2 : 1
  // below the root, a shard with one entry is that entry's link in its parent; with none, nothing
  if (depth > 0 && entriesHere <= 1) {
    if (out.length === 0) return { kind: 'empty' }
    return { kind: 'entry', name: out[0].name.slice(2), link: { cid: out[0].cid, dagSize: out[0].tsize } }
  }
  const { block, dagSize } = encodeShard(out)
  await sink(block)
  return { kind: 'shard', cid: block.cid, dagSize }
}

/** A link of a shard kept as it is. */
function keep(slot: number, link: dagPb.PBLink, cid: CID, where: string): ShardLink {
  const name = link.Name ?? ''
  if (name.length < 2) throw corrupt(cid, where, `a HAMT link named ${JSON.stringify(name)}`)
  return { slot, name, nameLength: utf8Length(name), cid: link.Hash, tsize: link.Tsize ?? 0 }
}

/** The entry `name` of the HAMT whose root shard is `root`, reading only the shards on its slot path. */
async function hamtLookup(
  source: BlockSource,
  root: CID,
  name: string,
  where: string,
  shards: Map<string, dagPb.PBLink[]>,
): Promise<Link | undefined> {
  let at = root
  for (let depth = 0; depth <= MAX_HAMT_DEPTH; depth++) {
    const prefix = slotPrefix(hamtSlot(name, depth))
    const link = (await shardLinks(source, at, where, shards)).find((l) => (l.Name ?? '').startsWith(prefix))
    if (!link) return undefined
    if (link.Name === prefix) {
      at = link.Hash
      continue
    }
    return link.Name === prefix + name ? { cid: link.Hash, dagSize: link.Tsize ?? 0 } : undefined
  }
  throw corrupt(root, where, `a HAMT deeper than ${MAX_HAMT_DEPTH} levels`)
}

/** A HAMT deeper than this is damage (64 bits of hash per 8 levels; past them the hash is rehashed). */
const MAX_HAMT_DEPTH = 64

async function shardLinks(source: BlockSource, cid: CID, where: string, shards: Map<string, dagPb.PBLink[]>): Promise<dagPb.PBLink[]> {
  const key = cid.toString()
  let links = shards.get(key)
  if (!links) {
    const node = await decodeDirectory(source, cid, where)
    if (node.type !== 'hamt-sharded-directory') throw corrupt(cid, where, 'a HAMT shard that is not a shard')
    shards.set(key, (links = node.links))
  }
  return links
}

/** The entries of a plain directory's links. */
function plainEntries(links: readonly dagPb.PBLink[]): Map<string, Link> {
  const entries = new Map<string, Link>()
  for (const link of links) entries.set(link.Name ?? '', { cid: link.Hash, dagSize: link.Tsize ?? 0 })
  return entries
}

/** Every entry of the HAMT whose root shard is `root` (every shard read). */
async function hamtEntries(source: BlockSource, root: CID, where: string, shards: Map<string, dagPb.PBLink[]>): Promise<Map<string, Link>> {
  const entries = new Map<string, Link>()
  const read = async (at: CID, depth: number): Promise<void> => {
    if (depth > MAX_HAMT_DEPTH) throw corrupt(root, where, `a HAMT deeper than ${MAX_HAMT_DEPTH} levels`)
    for (const link of await shardLinks(source, at, where, shards)) {
      const name = link.Name ?? ''
      // two hex digits of the slot, then the entry's name; the digits alone name a sub-shard
      if (name.length === 2) await read(link.Hash, depth + 1)
      else if (name.length > 2) entries.set(name.slice(2), { cid: link.Hash, dagSize: link.Tsize ?? 0 })
      else throw corrupt(at, where, `a HAMT link named ${JSON.stringify(name)}`)
    }
  }
  await read(root, 0)
  return entries
}

function checkName(name: string, path: string): void {
  if (validNameLength(name) < 0) throw new CairnError('BAD_PATH', `Invalid path ${JSON.stringify(path)}`, { subject: path })
}

async function decodeDirectory(source: BlockSource, cid: CID, where: string): Promise<{ links: dagPb.PBLink[]; type: string }> {
  if (cid.code !== DAG_PB) throw corrupt(cid, where, 'not a dag-pb block')
  let node: dagPb.PBNode
  let data: UnixFS
  try {
    node = dagPb.decode(await source.get(cid))
    data = UnixFS.unmarshal(node.Data ?? new Uint8Array())
  } catch (e) {
    if (e instanceof CairnError) throw e
    throw corrupt(cid, where, (e as Error).message)
  }
  if (data.type !== 'directory' && data.type !== 'hamt-sharded-directory') throw corrupt(cid, where, `a UnixFS ${data.type}`)
  if (data.type === 'hamt-sharded-directory' && data.fanout !== BigInt(HAMT_FANOUT)) throw corrupt(cid, where, `HAMT fanout ${data.fanout}`)
  return { links: node.Links, type: data.type }
}

function corrupt(cid: CID, where: string, what: string): CairnError {
  return new CairnError(
    'CORRUPT_BLOCK',
    `${cid} (folder ${JSON.stringify(where || '.')} of the parent's tree) is not a UnixFS directory: ${what}`,
    {
      subject: cid.toString(),
    },
  )
}
