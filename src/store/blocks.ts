/**
 * The local content-addressed block store in `.cairn/packs/` (docs/store.md). Blocks are appended to a
 * pack file of the writing process (`<id>.pack`); once a block's bytes are written, a line
 * `<cid> <offset> <length>` is appended to the pack's index log (`<id>.idx`), and only then does `put`
 * resolve. So a block is in the store exactly when its index line is whole, a killed writer leaves at
 * most unindexed bytes, and every read is hashed against the CID before it is used. Lookups by CID go
 * through sorted runs made from the logs (`block-index/`): no log is read whole.
 */
import { randomBytes } from 'node:crypto'
import { fstatSync, readdirSync, readSync, statSync, write, writev } from 'node:fs'
import { mkdir, open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { checkBlock, checkDigest } from '../car/block.js'
import { CID, cidBytesText, cidText, SHA2_256 } from '../cid.js'
import { CairnError, ioError, isCairnError } from '../errors.js'
import type { LeafOrigin } from '../unixfs/file.js'
import { hashPool } from '../util/hash-pool.js'
import { BlockIndex, type BlockIndexOptions, type Location } from './block-index/block-index.js'
import { FilePacks, isReferencePack } from './file-packs.js'
import { DEFAULT_STORE_MODE, type StoreMode } from './mode.js'

/** Anything blocks can be read from, verified: the store, a CAR file, a gateway. */
export interface BlockSource {
  /** The block's bytes, checked against `cid`. Throws `MISSING_BLOCK` or `CORRUPT_BLOCK`. */
  get(cid: CID): Promise<Uint8Array>
}

/** A block source that can also tell cheaply whether it has a block, and take new ones. */
export interface BlockStoreLike extends BlockSource {
  has(cid: CID): Promise<boolean>
  put(cid: CID, bytes: Uint8Array): Promise<void>
}

/** An index log of the store and its length at some moment: `[name, bytes]`. */
export type StoreMark = readonly [string, number]

/** The pack this process appends to. */
interface Writer {
  readonly name: string
  readonly data: FileHandle
  readonly index: FileHandle
  /** Bytes of the pack handed out so far (the next block's offset). */
  size: number
  /** Bytes of the index log appended so far. */
  logEnd: number
  /** Blocks gathered for the next write. */
  batch: Batch | undefined
  /** The last index append: appends are chained so their lines never interleave. */
  indexTail: Promise<void>
  readonly inflight: Set<Promise<void>>
}

/** Blocks written together, in order from `start`: their bytes in one `writev`, their index lines in one append. */
interface Batch {
  readonly start: number
  readonly chunks: Uint8Array[]
  /** The blocks' keys, one per chunk. */
  readonly keys: string[]
  /** The blocks' CIDs, one per chunk. */
  readonly cids: CID[]
  bytes: number
  readonly done: Promise<void>
  readonly resolve: () => void
  readonly reject: (e: unknown) => void
}

/** Blocks at least this large are read and checked on a hashing thread (smaller ones: a round trip costs more). */
const THREAD_READ_MIN = 64 * 1024

/** What a put of a block already stored returns. */
const DONE = Promise.resolve()

/** A batch is written once it holds this many bytes, or at the end of the event loop turn. */
const BATCH_BYTES = 1 << 20

function newBatch(start: number): Batch {
  let resolve!: () => void
  let reject!: (e: unknown) => void
  const done = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  // a failed batch is reported to each put that awaits it; never as an unhandled rejection
  done.catch(() => {})
  return { start, chunks: [], keys: [], cids: [], bytes: 0, done, resolve, reject }
}

/** The chunks still to write after `written` bytes of them went out. */
function remaining(chunks: readonly Uint8Array[], written: number): Uint8Array[] {
  const out: Uint8Array[] = []
  for (const c of chunks) {
    if (written >= c.length) {
      written -= c.length
      continue
    }
    out.push(written > 0 ? c.subarray(written) : c)
    written = 0
  }
  return out
}

/** The on-disk block store of one dataset. */
export class BlockStore implements BlockStoreLike {
  private readonly packsDir: string
  private readonly index: BlockIndex
  private readonly handles = new Map<string, Promise<FileHandle>>()
  private loaded: Promise<void> | undefined
  private writer: Promise<Writer> | undefined
  /** The writer once open (`writer` resolved), for the synchronous path of `put`. */
  private current: Writer | undefined
  /** True once the index logs have been read (see `put`). */
  private ready = false
  /** Blocks being written by this process: concurrent puts of the same block write it once. */
  private readonly pending = new Map<string, Promise<void>>()

  /** Packs backed by data files: reading reference packs, and writing leaves in reflink or reference mode. */
  private readonly files: FilePacks

  /**
   * `root` is the `.cairn` folder; `mode` says how a build's file leaves are stored (docs/store.md); the
   * other options tune the block index (tests force tiny buffers).
   */
  constructor(
    readonly root: string,
    options: BlockIndexOptions & { readonly mode?: StoreMode } = {},
  ) {
    this.packsDir = join(root, 'packs')
    this.files = new FilePacks(root, options.mode ?? DEFAULT_STORE_MODE)
    this.index = new BlockIndex(this.packsDir, join(root, 'block-index'), options)
  }

  /** How this store keeps the raw leaves of data files a build reads. */
  get mode(): StoreMode {
    return this.files.mode
  }

  /** Whether the store holds the block (as of the last look at other writers' packs). */
  async has(cid: CID): Promise<boolean> {
    return this.pending.has(key(cid)) || (await this.locate(cid, false)) !== undefined
  }

  /**
   * Stores a block (the caller made `bytes` from `cid`'s hash). A block already present is not written
   * again. `from`, for a raw leaf read from a data file, lets a store in reflink or reference mode keep
   * it in a clone of the file or as a reference to it instead of a copy.
   */
  put(cid: CID, bytes: Uint8Array, from?: LeafOrigin): Promise<void> {
    const k = key(cid)
    const inFlight = this.pending.get(k)
    if (inFlight) return inFlight
    if (from !== undefined && this.files.mode !== 'copy') return this.putFromFile(k, cid, bytes, from)
    // once the logs are read and the pack is open, a put is synchronous: it joins the open batch and
    // returns the batch's promise (no promise of its own, for each of 100,000 blocks)
    if (this.ready && this.current) return this.index.has(v1Bytes(cid)) ? DONE : this.append(this.current, k, cid, bytes)
    return this.putWhenOpen(k, cid, bytes)
  }

  /** A leaf kept in a file-backed pack, or copied when the pack declines it (as `put` would). */
  private putFromFile(k: string, cid: CID, bytes: Uint8Array, from: LeafOrigin): Promise<void> {
    const holder: { done?: Promise<void> } = {}
    const done = (async () => {
      // a block already stored is stored again only when it is a reference that broke (its data file
      // was edited or deleted since): this file has its bytes now
      const known = await this.locate(cid, false)
      if (known !== undefined && !(isReferencePack(known.pack) && !(await this.files.intact(cid, known)))) return
      const at = await this.files.put(cid, bytes.length, from)
      if (at) return this.index.note(v1Bytes(cid), at.pack, at.offset, at.length)
      if (this.pending.get(k) === holder.done) this.pending.delete(k)
      if (known !== undefined) await this.keepCopy(cid, bytes)
      else await this.put(cid, bytes)
    })()
    holder.done = done
    this.pending.set(k, done)
    const settle = (): void => {
      if (this.pending.get(k) === done) this.pending.delete(k)
    }
    done.then(settle, settle)
    return done
  }

  /** Stores a copy of a block whose place is a reference that broke (its bytes were fetched elsewhere). */
  private async keepCopy(cid: CID, bytes: Uint8Array): Promise<void> {
    const w = await this.openWriter()
    await this.append(w, key(cid), cid, bytes)
  }

  private async putWhenOpen(k: string, cid: CID, bytes: Uint8Array): Promise<void> {
    if ((await this.locate(cid, false)) !== undefined) return
    const w = await this.openWriter()
    // another put of the same block may have come first while this one waited
    const again = this.pending.get(k)
    if (again) return again
    if (this.index.has(v1Bytes(cid))) return
    return this.append(w, k, cid, bytes)
  }

  async get(cid: CID): Promise<Uint8Array> {
    const k = key(cid)
    await this.pending.get(k)
    const at = await this.locate(cid, true)
    if (!at) throw new CairnError('MISSING_BLOCK', `Block ${cid} is not in the store ${this.root}`, { subject: cid.toString() })
    if (isReferencePack(at.pack)) return this.files.read(cid, at, this, (bytes) => this.keepCopy(cid, bytes))
    const file = join(this.packsDir, at.pack + '.pack')
    let bytes: Uint8Array
    let checked = false
    try {
      const fh = await this.handle(at.pack)
      if (at.length >= THREAD_READ_MIN && cid.multihash.code === SHA2_256) {
        // large blocks are read and hashed on a hashing thread: no copy, and every core works
        const read = await hashPool().readRange(fh.fd, at.offset, at.length)
        bytes = read.bytes
        if (bytes.length === at.length) {
          checkDigest(cid, read.digest)
          checked = true
        }
      } else {
        // small blocks: a synchronous pread takes a few µs, a promise round trip to libuv several times that
        bytes = new Uint8Array(at.length)
        let read = 0
        while (read < at.length) {
          const bytesRead = readSync(fh.fd, bytes, read, at.length - read, at.offset + read)
          if (bytesRead === 0) break
          read += bytesRead
        }
        if (read < at.length) bytes = bytes.subarray(0, read)
      }
    } catch (e) {
      if (isCairnError(e)) throw e
      throw ioError('read block from', file, e)
    }
    // a pack cut short on disk gives fewer bytes, which checkBlock reports as corrupt
    if (!checked) await checkBlock(cid, bytes)
    return bytes
  }

  /**
   * A synchronous view of which blocks the store holds, as of now (for checking many CIDs at once).
   * Blocks being written by this process count as held. A CID may be given as its CIDv1 bytes, which
   * saves making the object.
   */
  async snapshot(): Promise<{ has(cid: CID | Uint8Array): boolean }> {
    this.loaded ??= this.refresh()
    await this.loaded
    return {
      has: (cid) => {
        const bytes = cid instanceof Uint8Array ? cid : v1Bytes(cid)
        return this.index.has(bytes) || (this.pending.size > 0 && this.pending.has(cidBytesText(bytes)))
      },
    }
  }

  /**
   * Every index log of the store and its length, now (after the writes this process has waited for).
   * Logs only grow and packs are never rewritten, so while {@link holdsAll} finds them all at least as
   * long, the store still holds every block it held at this moment.
   */
  marks(): StoreMark[] {
    try {
      return this.indexLogs().map((name) => [name, statSync(join(this.packsDir, name)).size] as const)
    } catch (e) {
      throw ioError('read', this.packsDir, e)
    }
  }

  /** True when every index log of `marks` is still there and at least as long (a few `stat`s, no log read). */
  holdsAll(marks: readonly StoreMark[]): boolean {
    try {
      return marks.every(
        ([name, bytes]) => name.endsWith('.idx') && !name.includes('/') && statSync(join(this.packsDir, name)).size >= bytes,
      )
    } catch {
      return false
    }
  }

  /** Where a block's bytes lie on disk (for inspection and tests), or undefined when it is not stored. */
  async locationOf(cid: CID): Promise<{ readonly file: string; readonly offset: number; readonly length: number } | undefined> {
    const at = await this.locate(cid, true)
    return at && { file: join(this.packsDir, at.pack + '.pack'), offset: at.offset, length: at.length }
  }

  /** Every block CID in the store, in no particular order (for tests and small stores: an array of them all). */
  async cids(): Promise<CID[]> {
    this.loaded = this.refresh()
    await this.loaded
    const seen = new Set<string>()
    const out: CID[] = []
    for (const bytes of this.index.keys()) {
      const text = cidBytesText(bytes)
      if (seen.has(text)) continue
      seen.add(text)
      out.push(CID.decode(bytes))
    }
    return out
  }

  /** Closes the files this store opened. The store can still be used afterwards (they reopen). */
  async close(): Promise<void> {
    const writer = this.writer
    this.writer = undefined
    this.current = undefined
    if (writer) {
      const w = await writer
      if (w.batch) this.flushBatch(w, w.batch)
      await Promise.allSettled([...w.inflight])
      await Promise.all([w.data.close(), w.index.close()])
    }
    await this.files.close()
    const handles = [...this.handles.values()]
    this.handles.clear()
    await Promise.all(handles.map(async (h) => (await h).close().catch(() => {})))
    this.index.close()
    this.loaded = undefined
  }

  /** Adds the block to the open batch; resolves once the batch is written and indexed. */
  private append(w: Writer, k: string, cid: CID, bytes: Uint8Array): Promise<void> {
    let batch = w.batch
    if (!batch) {
      batch = newBatch(w.size)
      w.batch = batch
      const b = batch
      // blocks put during this turn of the event loop share one write and one index append
      setImmediate(() => this.flushBatch(w, b))
    }
    w.size += bytes.length
    batch.chunks.push(bytes)
    batch.keys.push(k)
    batch.cids.push(cid)
    batch.bytes += bytes.length
    this.pending.set(k, batch.done)
    const done = batch.done
    if (batch.bytes >= BATCH_BYTES) this.flushBatch(w, batch)
    return done
  }

  /** Writes a batch's bytes at its place in the pack, then its index lines; resolves its puts. */
  private flushBatch(w: Writer, batch: Batch): void {
    if (w.batch !== batch) return
    w.batch = undefined
    const work = (async () => {
      const file = join(this.packsDir, w.name + '.pack')
      try {
        let position = batch.start
        let chunks = batch.chunks
        while (chunks.length > 0) {
          const bytesWritten = await writevAt(w.data.fd, chunks, position)
          position += bytesWritten
          chunks = remaining(chunks, bytesWritten)
        }
      } catch (e) {
        throw ioError('write blocks to', file, e)
      }
      let lines = ''
      let offset = batch.start
      batch.keys.forEach((k, i) => {
        lines += `${k} ${offset} ${batch.chunks[i].length}\n`
        offset += batch.chunks[i].length
      })
      // index appends go one at a time, so lines of two batches never interleave
      let lineFrom = 0
      w.indexTail = w.indexTail.then(async () => {
        lineFrom = w.logEnd
        try {
          await appendText(w.index.fd, lines)
          w.logEnd += lines.length
        } catch (e) {
          // part of the lines may be there: the log's end is where the next ones go
          w.logEnd = fstatSync(w.index.fd).size
          throw e
        }
      })
      await w.indexTail.catch((e: unknown) => {
        throw ioError('write the block index', join(this.packsDir, w.name + '.idx'), e)
      })
      offset = batch.start
      batch.cids.forEach((cid, i) => {
        this.index.added(v1Bytes(cid), w.name, offset, batch.chunks[i].length, lineFrom, lineFrom + lines.length)
        offset += batch.chunks[i].length
      })
    })()
    w.inflight.add(work)
    const settle = (): void => {
      w.inflight.delete(work)
      // written and indexed (or failed: a later put tries again)
      for (const k of batch.keys) if (this.pending.get(k) === batch.done) this.pending.delete(k)
    }
    work.then(
      () => {
        settle()
        batch.resolve()
      },
      (e: unknown) => {
        settle()
        batch.reject(e)
      },
    )
  }

  private openWriter(): Promise<Writer> {
    this.writer ??= (async () => {
      const name = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`
      try {
        await mkdir(this.packsDir, { recursive: true })
        const data = await open(join(this.packsDir, name + '.pack'), 'wx')
        const index = await open(join(this.packsDir, name + '.idx'), 'a')
        const w: Writer = {
          name,
          data,
          index,
          size: 0,
          logEnd: 0,
          batch: undefined,
          indexTail: Promise.resolve(),
          inflight: new Set<Promise<void>>(),
        }
        this.current = w
        return w
      } catch (e) {
        throw ioError('create a pack in', this.packsDir, e)
      }
    })()
    this.writer.catch(() => {
      this.writer = undefined
    })
    return this.writer
  }

  private handle(pack: string): Promise<FileHandle> {
    let h = this.handles.get(pack)
    if (!h) {
      h = open(join(this.packsDir, pack + '.pack'), 'r')
      h.catch(() => this.handles.delete(pack))
      this.handles.set(pack, h)
    }
    return h
  }

  private async locate(cid: CID, lookAgain: boolean): Promise<Location | undefined> {
    const k = v1Bytes(cid)
    this.loaded ??= this.refresh()
    await this.loaded
    let at = this.index.get(k)
    if (!at && lookAgain) {
      // another process may have written it since we last looked
      this.loaded = this.refresh()
      await this.loaded
      at = this.index.get(k)
    }
    return at
  }

  /**
   * Takes in what was appended to the index logs since the last look (the block index's runs hold the
   * rest). Synchronous: under load each thread-pool round trip of an async read cost a rebuild
   * milliseconds of waiting.
   */
  private async refresh(): Promise<void> {
    try {
      this.index.refresh()
    } catch (e) {
      throw ioError('read the block index of', this.root, e)
    }
    this.ready = true
  }

  /** The names of the index logs, in name order (none when there is no pack yet). */
  private indexLogs(): string[] {
    try {
      return readdirSync(this.packsDir)
        .filter((n) => n.endsWith('.idx'))
        .sort()
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw e
    }
  }
}

// The writes of the store go through the callback API: its requests cost the main thread less than
// the promise API's (no promise and no stat arrays per request), and a build makes hundreds of them.

/** Writes `chunks` at `position` of `fd`; resolves with the bytes written (possibly fewer). */
function writevAt(fd: number, chunks: readonly Uint8Array[], position: number): Promise<number> {
  return new Promise((resolve, reject) => writev(fd, chunks, position, (e, n) => (e ? reject(e) : resolve(n))))
}

/** Appends all of `text` (ASCII) to `fd`, opened for appending. */
async function appendText(fd: number, text: string): Promise<void> {
  let bytes = Buffer.from(text, 'latin1')
  while (bytes.length > 0) {
    const n = await new Promise<number>((resolve, reject) => write(fd, bytes, (e, written) => (e ? reject(e) : resolve(written))))
    bytes = bytes.subarray(n)
  }
}

/** The index key of a block: its CIDv1 in base32 (a CIDv0 and its CIDv1 are the same block). */
function key(cid: CID): string {
  return cidText(cid)
}

/** A block's CIDv1 bytes, its key in the block index (a CIDv0 and its CIDv1 are the same block). */
function v1Bytes(cid: CID): Uint8Array {
  return cid.version === 0 ? cid.toV1().bytes : cid.bytes
}

export { CID }
