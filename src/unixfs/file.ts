/**
 * UnixFS files under the IPIP-499 `unixfs-v1-2025` profile: CIDv1, sha2-256, raw leaves of fixed
 * 1 MiB chunks, `balanced` layout with at most 1024 links per node; a file of at most one chunk is
 * a single raw block. Built incrementally: memory holds one chunk and at most 1024 links per level.
 */
import { open, stat, type FileHandle } from 'node:fs/promises'
import type { BigIntStats } from 'node:fs'
import { UnixFS } from 'ipfs-unixfs'
import * as Digest from 'multiformats/hashes/digest'
import { CID, cidFor, DAG_PB, RAW, SHA2_256 } from '../cid.js'
import { CairnError, ioError } from '../errors.js'
import { hashPool, type HashPool, type Hashed } from '../util/hash-pool.js'
import { quiet } from '../util/pool.js'
import { encodePbNode } from './pb-encode.js'

/** Fixed chunk size of the profile (1 MiB). */
export const CHUNK_SIZE = 1_048_576
/** Maximum links per file node of the profile. */
export const MAX_LINKS = 1024

/** A block: bytes and the CID they hash to. */
export interface Block {
  readonly cid: CID
  readonly bytes: Uint8Array
  /** For a raw leaf read from a file: where its bytes lie in it (a store in reflink or reference mode uses it). */
  readonly from?: LeafOrigin
}

/** Where a raw leaf's bytes lie: the file (absolute path), the offset, and the file as it was read. */
export interface LeafOrigin {
  readonly path: string
  readonly offset: number
  readonly identity: FileIdentity
}

/** Receives every block of a DAG as it is made, children before parents. */
export type BlockSink = (block: Block) => void | Promise<void>

/** The result of importing one file. */
export interface ImportedFile {
  /** The file's root CID (raw for a file of at most one chunk, dag-pb otherwise). */
  readonly cid: CID
  /** Content bytes. */
  readonly size: number
  /** Bytes of every block of the DAG together (the `Tsize` a parent directory records). */
  readonly dagSize: number
}

interface PendingLink {
  readonly cid: CID
  /** Content bytes below the link (UnixFS blocksize). */
  readonly size: number
  /** Block bytes below the link, the node itself included (dag-pb Tsize). */
  readonly dagSize: number
}

/**
 * The synchronous core of the layout: feed it chunks of exactly {@link CHUNK_SIZE} bytes (the last
 * one may be shorter) and it returns the blocks that became complete. Level `i` of `levels` holds the
 * links waiting for their parent at height `i + 1`; a level is flushed into a node as soon as it holds
 * {@link MAX_LINKS} links, which is exactly the balanced layout of boxo and ipfs-unixfs-importer.
 */
export class FileLayout {
  private readonly levels: PendingLink[][] = [[]]
  private chunks = 0
  private bytes = 0

  /**
   * Adds one chunk; returns the new blocks (the leaf, and any parents it completed). `digest` is the
   * chunk's sha2-256 when the caller already has it (hashed off the main thread).
   */
  addChunk(chunk: Uint8Array, digest?: Uint8Array, from?: LeafOrigin): Block[] {
    const leaf: Block = { cid: digest ? rawCid(digest) : cidFor(RAW, chunk), bytes: chunk, from }
    this.chunks++
    this.bytes += chunk.length
    const out: Block[] = [leaf]
    this.push(0, { cid: leaf.cid, size: chunk.length, dagSize: chunk.length }, out)
    return out
  }

  /** Completes the DAG; returns the remaining blocks and the root. */
  finish(): { readonly blocks: Block[]; readonly file: ImportedFile } {
    const out: Block[] = []
    // an empty file is one empty raw leaf, as in every implementation of the profile
    if (this.chunks === 0) out.push(...this.addChunk(new Uint8Array(0)))
    for (let level = 0; ; level++) {
      const links = this.levels[level]
      const top = this.levels.slice(level + 1).every((l) => l.length === 0)
      if (top && links.length === 1) {
        const root = links[0]
        return { blocks: out, file: { cid: root.cid, size: root.size, dagSize: root.dagSize } }
      }
      if (links.length > 0) this.flush(level, out)
    }
  }

  private push(level: number, link: PendingLink, out: Block[]): void {
    if (this.levels.length === level) this.levels.push([])
    this.levels[level].push(link)
    if (this.levels[level].length === MAX_LINKS) this.flush(level, out)
  }

  /** Turns the links waiting at `level` into one node and passes its link up. */
  private flush(level: number, out: Block[]): void {
    const links = this.levels[level]
    this.levels[level] = []
    const data = new UnixFS({ type: 'file', blockSizes: links.map((l) => BigInt(l.size)) })
    // a file node's links have empty names, written as empty Name fields (as the importer and Kubo write them)
    const bytes = encodePbNode(
      {
        hashes: links.map((l) => l.cid),
        names: links.map(() => ''),
        nameLengths: links.map(() => 0),
        tsizes: links.map((l) => l.dagSize),
      },
      data.marshal(),
    )
    const cid = cidFor(DAG_PB, bytes)
    out.push({ cid, bytes })
    let size = 0
    let dagSize = bytes.length
    for (const l of links) {
      size += l.size
      dagSize += l.dagSize
    }
    this.push(level + 1, { cid, size, dagSize }, out)
  }
}

/**
 * Imports a stream of byte chunks of any sizes (re-cut into 1 MiB chunks) and passes each block to
 * `sink`, awaiting it (backpressure). Rejects with whatever the source or the sink throws.
 */
export async function importBytes(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, sink?: BlockSink): Promise<ImportedFile> {
  const layout = new FileLayout()
  let pending = new Uint8Array(CHUNK_SIZE)
  let filled = 0
  const emit = async (blocks: Block[]): Promise<void> => {
    if (sink) for (const b of blocks) await sink(b)
  }
  for await (const piece of source) {
    let offset = 0
    while (offset < piece.length) {
      const n = Math.min(CHUNK_SIZE - filled, piece.length - offset)
      pending.set(piece.subarray(offset, offset + n), filled)
      filled += n
      offset += n
      if (filled === CHUNK_SIZE) {
        await emit(layout.addChunk(pending))
        // the sink may keep the chunk: never reuse its memory
        pending = new Uint8Array(CHUNK_SIZE)
        filled = 0
      }
    }
  }
  // a copy, so the leaf does not pin the whole 1 MiB buffer
  if (filled > 0) await emit(layout.addChunk(pending.slice(0, filled)))
  const { blocks, file } = layout.finish()
  await emit(blocks)
  return file
}

/** What {@link importFile} saw of the file, to detect a change while reading. */
export interface FileIdentity {
  readonly size: number
  readonly mtimeNs: bigint
  readonly ino: bigint
}

/** The identity of a file from its (bigint) stats. */
export function identityOf(st: BigIntStats): FileIdentity {
  return { size: Number(st.size), mtimeNs: st.mtimeNs, ino: st.ino }
}

/** True when two identities describe the same unchanged file. */
export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino
}

/** How {@link importFile} and {@link importFiles} read. */
export interface ImportOptions {
  /** Names the file in errors (default: its path). */
  readonly label?: string
  /** The file as the caller last saw it (saves a stat); a change since then is `FILE_CHANGED`. */
  readonly expected?: FileIdentity
  /** The hashing threads (default: the process's pool of one thread per CPU). */
  readonly pool?: HashPool
  /**
   * The sink keeps no reference to a block's bytes once its promise has resolved (the store's `put`
   * does not), so read buffers can be reused: less garbage, fewer allocations.
   */
  readonly reuseBuffers?: boolean
}

/** An imported file and the identity it had while it was read. */
export type ImportedFileAt = ImportedFile & { readonly identity: FileIdentity }

/**
 * Imports the file at `path`: read and hashed in 1 MiB chunks by the hashing threads, laid out here.
 * Fails with `FILE_CHANGED` when its size, mtime or inode differ between the start and the end of the
 * read (or the bytes read differ from the size), and with `IO` when it cannot be read.
 */
export async function importFile(path: string, sink?: BlockSink, options: ImportOptions = {}): Promise<ImportedFileAt> {
  const label = options.label ?? path
  let expected = options.expected
  if (!expected) {
    try {
      expected = identityOf(await stat(path, { bigint: true }))
    } catch (e) {
      throw ioError('read', label, e)
    }
  }
  if (expected.size <= CHUNK_SIZE) return (await importFiles([{ path, label, expected }], sink, options))[0]
  const pool = options.pool ?? hashPool()
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch (e) {
    throw ioError('read', label, e)
  }
  const size = expected.size
  const chunks = Math.ceil(size / CHUNK_SIZE)
  const ahead: Promise<Hashed>[] = []
  let consumed = 0
  try {
    const layout = new FileLayout()
    let total = 0
    // chunks are read and hashed ahead, on every thread of the pool; they enter the layout in order
    // at most `readAhead` chunks of this file, and at most the pool's places for all files at once
    const readAhead = Math.max(4, 2 * pool.size)
    const start = (i: number): void => {
      if (i >= chunks) return
      const read = pool.readAhead.take().then(() => {
        const r = pool.readRange(fh.fd, i * CHUNK_SIZE, Math.min(CHUNK_SIZE, size - i * CHUNK_SIZE))
        r.catch(() => pool.readAhead.give())
        return r
      })
      ahead.push(quiet(read))
    }
    for (let i = 0; i < readAhead; i++) start(i)
    for (let i = 0; i < chunks; i++) {
      let leaf: Hashed
      try {
        leaf = await ahead[i]
      } catch (e) {
        throw ioError('read', label, e)
      }
      start(i + readAhead)
      total += leaf.bytes.length
      const blocks = layout.addChunk(leaf.bytes, leaf.digest, { path, offset: i * CHUNK_SIZE, identity: expected })
      if (sink) for (const b of blocks) await sink(b)
      consumed++
      pool.readAhead.give()
      if (options.reuseBuffers || !sink) pool.release(leaf.bytes)
      if (leaf.bytes.length < CHUNK_SIZE) break // the file is shrinking: the identity check reports it
    }
    const { blocks, file } = layout.finish()
    if (sink) for (const b of blocks) await sink(b)
    let after: FileIdentity
    try {
      after = identityOf(await fh.stat({ bigint: true }))
    } catch (e) {
      throw ioError('read', label, e)
    }
    if (total !== size || !sameIdentity(expected, after)) throw fileChanged(label, expected, after, total)
    return { ...file, identity: expected }
  } finally {
    // never close the descriptor while a thread may still read it; give back the places of chunks read
    // but not laid out (a failed read gave its place back already)
    const settled = await Promise.allSettled(ahead)
    for (let i = consumed; i < settled.length; i++) if (settled[i].status === 'fulfilled') pool.readAhead.give()
    await fh.close()
  }
}

/** A file for {@link importFiles}: its path, its name in errors, and its identity when scanned. */
export interface FileToImport {
  readonly path: string
  readonly label: string
  readonly expected: FileIdentity
}

/**
 * Imports several files at once. Files of at most one chunk (one raw block each) are read by one
 * thread in one round trip: what makes many small files fast. Larger ones go through
 * {@link importFile} one after the other. Results are in the order of `files`.
 */
export async function importFiles(
  files: readonly FileToImport[],
  sink?: BlockSink,
  options: ImportOptions = {},
): Promise<ImportedFileAt[]> {
  const out: ImportedFileAt[] = []
  const small = files.filter((f) => f.expected.size <= CHUNK_SIZE)
  const pool = options.pool ?? hashPool()
  const read =
    small.length > 0
      ? await pool.readFiles(
          small.map((f) => f.path),
          small.map((f) => f.expected.size),
        )
      : undefined
  // the store's puts of one turn share one promise: each is awaited (and observed) once
  const stores = new Set<Promise<void>>()
  try {
    let next = 0
    for (const f of files) {
      if (f.expected.size > CHUNK_SIZE) {
        out.push(await importFile(f.path, sink, { ...options, label: f.label, expected: f.expected }))
        continue
      }
      const k = next++
      const error = read!.error(k)
      if (error) throw ioError('read', f.label, error)
      const bytes = read!.bytes(k)
      const { size, mtimeNs, ino } = f.expected
      if (bytes.length !== size || !read!.same(k, size, mtimeNs, ino))
        throw fileChanged(f.label, f.expected, read!.identity(k), bytes.length)
      const leaf: Block = { cid: rawCid(read!.digest(k)), bytes, from: { path: f.path, offset: 0, identity: f.expected } }
      if (sink) {
        const stored = sink(leaf)
        if (stored instanceof Promise && !stores.has(stored)) stores.add(quiet(stored))
      }
      out.push({ cid: leaf.cid, size: bytes.length, dagSize: bytes.length, identity: f.expected })
    }
    await Promise.all(stores)
  } catch (e) {
    await Promise.allSettled(stores) // no block write is left unobserved
    throw e
  }
  if (read && (options.reuseBuffers || !sink)) pool.release(read.buffer)
  return out
}

function fileChanged(label: string, before: FileIdentity, after: FileIdentity, read: number): CairnError {
  return new CairnError(
    'FILE_CHANGED',
    `${label} changed while it was being read (size ${before.size} → ${after.size}, read ${read} bytes)`,
    {
      subject: label,
      hint: 'stop whatever writes to the dataset, then build again; nothing was committed',
    },
  )
}

function rawCid(digest: Uint8Array): CID {
  return CID.createV1(RAW, Digest.create(SHA2_256, digest))
}

/** Small files read by a thread in one round trip, at most. */
export const GROUP_FILES = 64

/**
 * Cuts files into import groups, keeping their order: consecutive files of at most one chunk share a
 * group up to {@link CHUNK_SIZE} bytes or `most` files (one round trip to a thread); a larger file is a
 * group of its own. Feed it with {@link add}, then {@link end}: each returns the groups it closed.
 */
export class ImportGrouper<T> {
  private open: T[] = []
  private bytes = 0

  constructor(private readonly most: number = GROUP_FILES) {}

  /** Adds a file of `size` bytes to read (0 for one already known). */
  add(item: T, size: number): T[][] {
    const closed: T[][] = []
    if (size > CHUNK_SIZE) {
      closed.push(...this.end(), [item])
      return closed
    }
    if (this.open.length >= this.most || this.bytes + size > CHUNK_SIZE) closed.push(...this.end())
    this.open.push(item)
    this.bytes += size
    return closed
  }

  /** Closes the open group, if any. */
  end(): T[][] {
    const closed = this.open.length > 0 ? [this.open] : []
    this.open = []
    this.bytes = 0
    return closed
  }
}

/** Cuts files `0 … count-1` into import groups of their indices ({@link ImportGrouper}), lazily. */
export function* importGroups(count: number, sizeOf: (i: number) => number): Generator<number[]> {
  const grouper = new ImportGrouper<number>()
  for (let i = 0; i < count; i++) yield* grouper.add(i, sizeOf(i))
  yield* grouper.end()
}
