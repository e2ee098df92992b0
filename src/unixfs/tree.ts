/**
 * The UnixFS tree of a release: nested directories (see {@link buildDirectory}) over files already
 * imported, built in one pass over paths in byte order. Only the chain of directories the current
 * path lies in is open at any time; a directory is built and reduced to one entry of its parent as
 * soon as the input leaves it.
 */
import { CairnError } from '../errors.js'
import type { CID } from '../cid.js'
import { compareUtf8, DirectoryBuilder, invalidNameReason, validNameLength } from './directory.js'
import type { BlockSink } from './file.js'

/** One file of the tree. */
export interface TreeFile {
  /** Relative, `/`-separated, normalised path (no empty, `.` or `..` segment, no NUL). */
  readonly path: string
  readonly cid: CID
  /** Bytes of every block of the file's DAG. */
  readonly dagSize: number
}

/** The root of a built tree. */
export interface BuiltTree {
  readonly cid: CID
  /** Bytes of every block of the tree: directories and files. */
  readonly dagSize: number
}

interface OpenDirectory {
  /** The directory's name in its parent ('' for the root). */
  readonly name: string
  /** Bytes of the name in UTF-8. */
  readonly nameLength: number
  readonly entries: DirectoryBuilder
}

const SLASH = 0x2f

/**
 * Builds the UnixFS directory tree holding `files` and passes every directory block to `sink`
 * (awaited, children before parents, the root last). No files at all give the empty directory.
 * `files` must come sorted by the UTF-8 bytes of their paths, without duplicates: the order a
 * sorted shard index yields, which keeps every directory's contents contiguous.
 *
 * Fails with `BAD_PATH` when a path is not normalised, is out of order or repeated, or names both a
 * file and a directory, with `USAGE` when a `dagSize` is not a non-negative safe integer, and rejects
 * with whatever `files` or `sink` throws. Memory holds the entries of the open directories only (all
 * of them for one flat directory).
 */
export async function buildTree(files: Iterable<TreeFile> | AsyncIterable<TreeFile>, sink: BlockSink): Promise<BuiltTree> {
  const tree = new TreeBuilder(sink)
  for await (const file of files) {
    const added = tree.add(file.path, file.cid, file.dagSize)
    if (added) await added
  }
  return tree.finish()
}

/** {@link buildTree} one file at a time, for a caller that has its files one by one. */
export class TreeBuilder {
  // open[i + 1] is the directory named by segment i of the previous path: the chain it lies in
  private readonly open: OpenDirectory[] = [{ name: '', nameLength: 0, entries: new DirectoryBuilder('.') }]
  private previous: string | undefined

  constructor(private readonly sink: BlockSink) {}

  /**
   * Adds the next file (see {@link buildTree} for the order and the errors). Returns a promise only
   * when the path left directories, which were built and passed to the sink: most files are added
   * synchronously, without a promise each.
   */
  add(path: string, cid: CID, dagSize: number): Promise<void> | undefined {
    const open = this.open
    // the open directories this path lies in too: their names are checked already, and the path
    // shares its first `start` code units with the previous one
    let depth = 1
    let start = 0
    while (depth < open.length) {
      const name = open[depth].name
      if (path.charCodeAt(start + name.length) !== SLASH || !path.startsWith(name, start)) break
      start += name.length + 1
      depth++
    }
    // the rest of the path: new directories, then the file's name; each segment checked once
    let newDirectories: { readonly name: string; readonly nameLength: number; readonly end: number }[] | undefined
    let from = start
    for (let slash = path.indexOf('/', from); slash !== -1; slash = path.indexOf('/', from)) {
      const name = path.slice(from, slash)
      const nameLength = validNameLength(name)
      if (nameLength < 0) throw badSegment(path, name)
      ;(newDirectories ??= []).push({ name, nameLength, end: slash })
      from = slash + 1
    }
    const name = from === 0 ? path : path.slice(from)
    const nameLength = validNameLength(name)
    if (nameLength < 0) throw badSegment(path, name)
    if (this.previous !== undefined) {
      const order = compareUtf8(this.previous, path, start)
      if (order >= 0) {
        throw new CairnError(
          'BAD_PATH',
          order === 0
            ? `Duplicate path ${JSON.stringify(path)} in the tree`
            : `Paths out of order: ${JSON.stringify(path)} after ${JSON.stringify(this.previous)} (expected byte-wise ascending order)`,
          { subject: path },
        )
      }
    }
    this.previous = path
    const place = (): void => {
      if (newDirectories !== undefined) {
        for (const { name, nameLength, end } of newDirectories)
          open.push({ name, nameLength, entries: new DirectoryBuilder(path.slice(0, end)) })
      }
      open[open.length - 1].entries.add(name, nameLength, cid, dagSize)
    }
    if (open.length === depth) {
      place()
      return undefined
    }
    return (async () => {
      while (open.length > depth) await this.closeTop()
      place()
    })()
  }

  /** Builds the directories still open and the root; returns the root. */
  async finish(): Promise<BuiltTree> {
    while (this.open.length > 1) await this.closeTop()
    const root = this.open[0].entries.build()
    for (const block of root.blocks) await this.sink(block)
    return { cid: root.cid, dagSize: root.dagSize }
  }

  /** Builds the innermost open directory, passes its blocks on, and adds it to its parent. */
  private async closeTop(): Promise<void> {
    const dir = this.open.pop() as OpenDirectory
    const built = dir.entries.build()
    for (const block of built.blocks) await this.sink(block)
    this.open[this.open.length - 1].entries.add(dir.name, dir.nameLength, built.cid, built.dagSize)
  }
}

function badSegment(path: string, segment: string): CairnError {
  return new CairnError(
    'BAD_PATH',
    `Invalid path ${JSON.stringify(path)}: segment ${JSON.stringify(segment)} is not acceptable (${invalidNameReason(segment)})`,
    {
      subject: path,
      hint: 'paths are relative and /-separated, without empty, "." or ".." segments and without NUL',
    },
  )
}
