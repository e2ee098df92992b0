/**
 * The UnixFS tree of a release: nested directories (see {@link buildDirectory}) over files already
 * imported, built in one pass over paths in byte order. Only the chain of directories the current
 * path lies in is open at any time; a directory is built and reduced to one entry of its parent as
 * soon as the input leaves it.
 */
import { CairnError } from '../errors.js'
import type { CID } from '../cid.js'
import { buildDirectory, compareUtf8, invalidNameReason, type DirEntry } from './directory.js'
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
  /** Path of the directory relative to the root ('' for the root). */
  readonly path: string
  readonly name: string
  readonly entries: DirEntry[]
}

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
  const open: OpenDirectory[] = [{ path: '', name: '', entries: [] }]
  let previousPath: string | undefined
  for await (const file of files) {
    const segments = splitPath(file.path)
    if (previousPath !== undefined) {
      const order = compareUtf8(previousPath, file.path)
      if (order >= 0) {
        throw new CairnError(
          'BAD_PATH',
          order === 0
            ? `Duplicate path ${JSON.stringify(file.path)} in the tree`
            : `Paths out of order: ${JSON.stringify(file.path)} after ${JSON.stringify(previousPath)} (expected byte-wise ascending order)`,
          { subject: file.path },
        )
      }
    }
    previousPath = file.path
    // open[i + 1] is the directory named segments[i]; keep the chain this path shares
    let shared = 0
    while (shared + 1 < open.length && shared < segments.length - 1 && open[shared + 1].name === segments[shared]) shared++
    while (open.length > shared + 1) await closeTop(open, sink)
    for (let i = shared; i < segments.length - 1; i++) {
      const parent = open[open.length - 1]
      open.push({ path: parent.path === '' ? segments[i] : `${parent.path}/${segments[i]}`, name: segments[i], entries: [] })
    }
    open[open.length - 1].entries.push({ name: segments[segments.length - 1], cid: file.cid, dagSize: file.dagSize })
  }
  while (open.length > 1) await closeTop(open, sink)
  const root = buildDirectory(open[0].entries, '.')
  for (const block of root.blocks) await sink(block)
  return { cid: root.cid, dagSize: root.dagSize }
}

/** Builds the innermost open directory, passes its blocks on, and adds it to its parent. */
async function closeTop(open: OpenDirectory[], sink: BlockSink): Promise<void> {
  const dir = open.pop() as OpenDirectory
  const built = buildDirectory(dir.entries, dir.path)
  for (const block of built.blocks) await sink(block)
  open[open.length - 1].entries.push({ name: dir.name, cid: built.cid, dagSize: built.dagSize })
}

function splitPath(path: string): string[] {
  const segments = path.split('/')
  for (const segment of segments) {
    const reason = invalidNameReason(segment)
    if (reason !== undefined) {
      throw new CairnError(
        'BAD_PATH',
        `Invalid path ${JSON.stringify(path)}: segment ${JSON.stringify(segment)} is not acceptable (${reason})`,
        {
          subject: path,
          hint: 'paths are relative and /-separated, without empty, "." or ".." segments and without NUL',
        },
      )
    }
  }
  return segments
}
