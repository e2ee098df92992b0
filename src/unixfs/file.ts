/**
 * UnixFS files under the IPIP-499 `unixfs-v1-2025` profile: CIDv1, sha2-256, raw leaves of fixed
 * 1 MiB chunks, `balanced` layout with at most 1024 links per node; a file of at most one chunk is
 * a single raw block. Built incrementally: memory holds one chunk and at most 1024 links per level.
 */
import { open, type FileHandle } from 'node:fs/promises'
import type { BigIntStats } from 'node:fs'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { webcrypto } from 'node:crypto'
import * as Digest from 'multiformats/hashes/digest'
import { CID, cidFor, DAG_PB, RAW, SHA2_256 } from '../cid.js'
import { CairnError, ioError } from '../errors.js'
import { quiet } from '../util/pool.js'

/** Fixed chunk size of the profile (1 MiB). */
export const CHUNK_SIZE = 1_048_576
/** Maximum links per file node of the profile. */
export const MAX_LINKS = 1024

/** A block: bytes and the CID they hash to. */
export interface Block {
  readonly cid: CID
  readonly bytes: Uint8Array
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
  addChunk(chunk: Uint8Array, digest?: Uint8Array): Block[] {
    const leaf: Block = { cid: digest ? rawCid(digest) : cidFor(RAW, chunk), bytes: chunk }
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
    const bytes = dagPb.encode({
      Data: data.marshal(),
      Links: links.map((l) => ({ Hash: l.cid, Name: '', Tsize: l.dagSize })),
    })
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

/**
 * Imports the file at `path`, reading it in 1 MiB sequential reads. Fails with `FILE_CHANGED` when
 * its size, mtime or inode differ between the start and the end of the read (or the bytes read
 * differ from the size), and with `IO` when it cannot be read. `label` names the file in errors.
 */
export async function importFile(
  path: string,
  sink?: BlockSink,
  label: string = path,
  expected?: FileIdentity,
): Promise<ImportedFile & { readonly identity: FileIdentity }> {
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch (e) {
    throw ioError('read', label, e)
  }
  try {
    // the caller's stat (from the scan) saves a system call per file; a change since then is caught below
    const before = expected ?? identityOf(await fh.stat({ bigint: true }))
    const layout = new FileLayout()
    let total = 0
    const chunks = Math.max(1, Math.ceil(before.size / CHUNK_SIZE))
    // Read ahead and hash on libuv's thread pool (WebCrypto) so that several cores hash one file;
    // chunks still enter the layout strictly in order.
    const start = (i: number): Promise<Leaf> => readLeaf(fh, i * CHUNK_SIZE, Math.min(CHUNK_SIZE, before.size - i * CHUNK_SIZE), label)
    const ahead: Promise<Leaf>[] = []
    for (let i = 0; i < Math.min(READ_AHEAD, chunks); i++) ahead.push(quiet(start(i)))
    for (let i = 0; i < chunks; i++) {
      const leaf = await ahead[i]
      delete ahead[i]
      if (i + READ_AHEAD < chunks) ahead.push(quiet(start(i + READ_AHEAD)))
      total += leaf.bytes.length
      const blocks = layout.addChunk(leaf.bytes, leaf.digest)
      if (sink) for (const b of blocks) await sink(b)
      if (leaf.short) break
    }
    const { blocks, file } = layout.finish()
    if (sink) for (const b of blocks) await sink(b)
    const after = identityOf(await fh.stat({ bigint: true }))
    if (total !== before.size || !sameIdentity(before, after)) {
      throw new CairnError(
        'FILE_CHANGED',
        `${label} changed while it was being read (size ${before.size} → ${after.size}, read ${total} bytes)`,
        {
          subject: label,
          hint: 'stop whatever writes to the dataset, then build again; nothing was committed',
        },
      )
    }
    return { ...file, identity: before }
  } finally {
    await fh.close()
  }
}

/** Chunks read and hashed ahead of the one being added to the layout. */
const READ_AHEAD = 4
/** Below this, hashing on the main thread costs less than a round trip to the thread pool. */
const POOL_HASH_MIN = 64 * 1024

interface Leaf {
  readonly bytes: Uint8Array
  readonly digest?: Uint8Array
  /** The file ended before the expected size: it is shrinking (the identity check reports it). */
  readonly short: boolean
}

async function readLeaf(fh: FileHandle, position: number, want: number, label: string): Promise<Leaf> {
  const buf = new Uint8Array(Math.max(0, want))
  const n = await readFull(fh, buf, position, label)
  const bytes = n === buf.length ? buf : buf.subarray(0, n)
  const digest = bytes.length >= POOL_HASH_MIN ? new Uint8Array(await webcrypto.subtle.digest('SHA-256', bytes)) : undefined
  return { bytes, digest, short: n < want }
}

function rawCid(digest: Uint8Array): CID {
  return CID.createV1(RAW, Digest.create(SHA2_256, digest))
}

async function readFull(fh: FileHandle, buf: Uint8Array, position: number, label: string): Promise<number> {
  let filled = 0
  while (filled < buf.length) {
    let n: number
    try {
      ;({ bytesRead: n } = await fh.read(buf, filled, buf.length - filled, position + filled))
    } catch (e) {
      throw ioError('read', label, e)
    }
    if (n === 0) break
    filled += n
  }
  return filled
}
