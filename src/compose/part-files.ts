/**
 * The files of one part of a composition, in path order, each with the facts a build would have
 * made for it: its shard entry (from the part's index) and its DAG size (the `Tsize` of its link in
 * the part's tree). The tree is walked as the index leads, one open directory per level, so only
 * index and directory blocks are read, never a file's. The two must describe the same files: a
 * part whose tree and index disagree is refused.
 */
import type { CID } from '../cid.js'
import { listDirectory } from '../cat.js'
import { CairnError } from '../errors.js'
import { comparePaths, type BranchEntry, type IndexNode, type ShardEntry } from '../manifest.js'
import { readIndexNode } from '../shard-index/prolly.js'
import type { BlockSource } from '../store/blocks.js'

/** One file of a part, at its place in the composition. */
export interface PartFile {
  /** The entry as the composed index holds it: its path under the part's prefix. */
  readonly entry: ShardEntry
  /** The path inside the part (without the prefix). */
  readonly partPath: string
  /** Bytes of every block of the file's DAG, as the part's tree records it. */
  readonly dagSize: number
}

/** Index nodes read ahead of the walk (they come from gateways too: one round trip each otherwise). */
const READ_AHEAD = 8

/**
 * Every entry under the index `root`, in path order, reading up to {@link READ_AHEAD} nodes ahead.
 * Throws `INVALID_MANIFEST` when the entries are not in strictly increasing path order across nodes
 * (each node checks its own).
 */
export async function* indexEntries(source: BlockSource, root: CID): AsyncGenerator<ShardEntry> {
  const queue: { cid: CID; node?: Promise<IndexNode> }[] = [{ cid: root }]
  let previous: string | undefined
  try {
    while (queue.length > 0) {
      for (let i = 0; i < Math.min(READ_AHEAD, queue.length); i++) queue[i].node ??= quiet(readIndexNode(source, queue[i].cid))
      const next = queue.shift() as { cid: CID; node: Promise<IndexNode> }
      const node = await next.node
      if (node.level > 0) {
        queue.unshift(...(node.entries as readonly BranchEntry[]).map((b) => ({ cid: b.node })))
        continue
      }
      for (const e of node.entries as readonly ShardEntry[]) {
        if (previous !== undefined && comparePaths(previous, e.path) >= 0) {
          throw new CairnError('INVALID_MANIFEST', `index ${root}: paths out of order at ${JSON.stringify(e.path)} (node ${next.cid})`, {
            subject: root.toString(),
          })
        }
        previous = e.path
        yield e
      }
    }
  } finally {
    // reads started ahead and never awaited must not reject unhandled
    for (const q of queue) void q.node?.catch(() => {})
  }
}

/** A read started ahead: its rejection is handled where it is awaited (or dropped if never awaited). */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {})
  return p
}

/** A directory of the part's tree being walked: its links not yet matched by a file of the index. */
interface OpenDirectory {
  /** Its path inside the part ('' for the root). */
  readonly path: string
  readonly cid: CID
  readonly links: Map<string, { readonly cid: CID; readonly tsize: number }>
}

/**
 * The files of the part whose index is `index` and tree `tree`, each placed under `prefix` (none:
 * ''); `shards` is the number of files its version declares. Throws `INVALID_MANIFEST` naming the
 * path where the tree and the index disagree (a file of one missing from the other, another CID, a
 * `Tsize` that is not a byte count), or when they hold another number of files, and whatever the
 * source or {@link listDirectory} throws (`MISSING_BLOCK`, `CORRUPT_BLOCK`, `BAD_PATH`).
 */
export async function* partFiles(source: BlockSource, index: CID, tree: CID, prefix: string, shards: number): AsyncGenerator<PartFile> {
  const disagree = (path: string, why: string): CairnError =>
    new CairnError('INVALID_MANIFEST', `index ${index} and tree ${tree} disagree at ${JSON.stringify(path)}: ${why}`, {
      subject: path,
      hint: 'the part was not made by `cairn build`, or is damaged; build and publish it again',
    })
  // no folder of the tree can hold more entries than the part has files: a bound on what a listing holds
  const open: OpenDirectory[] = [await openDirectory(source, '', tree, shards, disagree)]
  let count = 0
  const close = (): void => {
    const dir = open.pop() as OpenDirectory
    const [extra] = dir.links.keys()
    if (extra !== undefined) throw disagree(join(dir.path, extra), 'the tree has it, the index does not')
  }
  for await (const entry of indexEntries(source, index)) {
    const path = entry.path
    // leave the directories this path is not in
    while (open.length > 1 && !path.startsWith(open[open.length - 1].path + '/')) close()
    // enter the directories it is in, below those still open
    const top = open[open.length - 1]
    const segments = path.slice(top.path === '' ? 0 : top.path.length + 1).split('/')
    for (let i = 0; i < segments.length - 1; i++) {
      const parent = open[open.length - 1]
      const name = segments[i]
      const link = parent.links.get(name)
      const dirPath = join(parent.path, name)
      if (!link) throw disagree(dirPath, 'the index has files in this folder, the tree does not have it')
      parent.links.delete(name)
      open.push(await openDirectory(source, dirPath, link.cid, shards, disagree))
    }
    const parent = open[open.length - 1]
    const name = segments[segments.length - 1]
    const link = parent.links.get(name)
    if (!link) throw disagree(path, 'the index has it, the tree does not')
    if (!link.cid.equals(entry.cid)) throw disagree(path, `the index says ${entry.cid}, the tree ${link.cid}`)
    parent.links.delete(name)
    if (++count > shards) throw disagree(path, `the index has more files than the version's totals say (${shards})`)
    const placed = prefix === '' ? entry : { ...entry, path: `${prefix}/${path}` }
    yield { entry: placed, partPath: path, dagSize: link.tsize }
  }
  while (open.length > 0) close()
  if (count !== shards) {
    throw new CairnError('INVALID_MANIFEST', `index ${index} holds ${count} files, its version's totals say ${shards}`, {
      subject: index.toString(),
      hint: 'the part was not made by `cairn build`, or is damaged; build and publish it again',
    })
  }
}

async function openDirectory(
  source: BlockSource,
  path: string,
  cid: CID,
  most: number,
  disagree: (path: string, why: string) => CairnError,
): Promise<OpenDirectory> {
  const links = new Map<string, { cid: CID; tsize: number }>()
  for await (const e of listDirectory(source, cid)) {
    if (links.size >= most) throw disagree(join(path, e.name), `directory ${cid} lists more entries than the part has files (${most})`)
    const tsize = e.tsize
    if (tsize === undefined || !Number.isSafeInteger(tsize) || tsize < 0) {
      throw disagree(join(path, e.name), `its link in directory ${cid} records no usable size (Tsize ${String(tsize)})`)
    }
    links.set(e.name, { cid: e.cid, tsize })
  }
  return { path, cid, links }
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`
}
