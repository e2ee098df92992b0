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
import { DirectoryBuilder, HAMT_FANOUT, utf8Length, validNameLength } from './directory.js'
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
  const entries = cid ? await readDirectory(source, cid, where) : new Map<string, Link>()
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
  for (const [name, edit] of files) {
    checkName(name, edit.path)
    if (edit.cid) entries.set(name, { cid: edit.cid, dagSize: edit.dagSize })
    else entries.delete(name)
  }
  for (const [name, list] of folders) {
    const path = where === '' ? name : `${where}/${name}`
    checkName(name, list[0].edit.path)
    if (files.get(name)?.cid) throw new CairnError('BAD_PATH', `${path} would be both a file and a folder`, { subject: path })
    const old = files.has(name) ? undefined : entries.get(name)
    const sub = await editDirectory(source, old?.cid, list, path, sink, depth + 1)
    if (sub) entries.set(name, sub)
    else entries.delete(name)
  }
  if (entries.size === 0) return undefined
  const builder = new DirectoryBuilder(where === '' ? '.' : where)
  for (const [name, link] of entries) builder.add(name, utf8Length(name), link.cid, link.dagSize)
  const dir = builder.build()
  for (const block of dir.blocks) await sink(block)
  return { cid: dir.cid, dagSize: dir.dagSize }
}

function checkName(name: string, path: string): void {
  if (validNameLength(name) < 0) throw new CairnError('BAD_PATH', `Invalid path ${JSON.stringify(path)}`, { subject: path })
}

/**
 * The entries of the directory `cid` of the parent's tree, plain or HAMT-sharded (every shard read).
 * Throws `CORRUPT_BLOCK` when a block is not a UnixFS directory or a HAMT link is malformed.
 */
async function readDirectory(source: BlockSource, cid: CID, where: string): Promise<Map<string, Link>> {
  const entries = new Map<string, Link>()
  const read = async (at: CID, shard: boolean): Promise<void> => {
    const { links, type } = await decodeDirectory(source, at, where)
    if (shard && type !== 'hamt-sharded-directory') throw corrupt(at, where, 'a HAMT shard that is not a shard')
    for (const link of links) {
      const name = link.Name ?? ''
      const dagSize = link.Tsize ?? 0
      if (type === 'directory') entries.set(name, { cid: link.Hash, dagSize })
      // a HAMT link: two hex digits of the slot, then the entry's name; the digits alone name a sub-shard
      else if (name.length === 2) await read(link.Hash, true)
      else if (name.length > 2) entries.set(name.slice(2), { cid: link.Hash, dagSize })
      else throw corrupt(at, where, `a HAMT link named ${JSON.stringify(name)}`)
    }
  }
  await read(cid, false)
  return entries
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
