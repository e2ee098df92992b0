/**
 * Reference packs (store mode `reference`, Kubo's "filestore"): a pack whose blocks are not copied
 * but lie in the dataset's data files. The pack `ref-<id>` is a virtual concatenation of data files:
 * `ref-<id>.pack` lists them, one line each, `<base> <size> <mtimeNs> <ino> <path>` (the path as a
 * JSON string, relative to the dataset folder), after a header line `cairn-reference-pack 1`; a block
 * of the file lies at `base + its offset in the file`. Its index log `ref-<id>.idx` has the usual lines
 * `<cid> <offset> <length>`, so an index entry keeps the shape (pack, offset, length) of every pack.
 * A file's line is written before the index lines of its blocks: a block is stored once its index line
 * is whole, as in a copy pack. Every read hashes the bytes against the CID: a data file edited, cut or
 * deleted since is reported as the file that broke ({@link ReferenceLoss}), never as data.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fstatSync, openSync, readSync, write } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { checkBlock } from '../car/block.js'
import { cidText, SHA2_256, type CID } from '../cid.js'
import { ioError } from '../errors.js'
import { checkShardPath } from '../manifest.js'
import type { LeafOrigin } from '../unixfs/file.js'
import { hashPool } from '../util/hash-pool.js'

/** Reference packs' names start with this; copy and clone packs' names never do. */
export const REFERENCE_PREFIX = 'ref-'

const HEADER = 'cairn-reference-pack 1\n'

/** A new pack is started after this many files, so that a reader loads at most this many paths per pack. */
const FILES_PER_PACK = 65_536

/** Blocks at least this large are read and hashed on a hashing thread (as the store reads its packs). */
const THREAD_READ_MIN = 64 * 1024

/** Whether a pack id names a reference pack. */
export function isReferencePack(id: string): boolean {
  return id.startsWith(REFERENCE_PREFIX)
}

/** A data file as a reference pack lists it. */
export interface ReferencedFile {
  /** Its place in the pack's virtual bytes. */
  readonly base: number
  readonly size: number
  readonly mtimeNs: bigint
  readonly ino: bigint
  /** Relative to the dataset folder, `/`-separated. */
  readonly path: string
}

/** Why a referenced block could not be read. */
export interface ReferenceLoss {
  /** The data file, relative to the dataset folder (undefined when the pack itself is damaged). */
  readonly path: string | undefined
  /** `deleted`: the file is gone; `changed`: its bytes there no longer hash to the CID; `unreadable`: another error. */
  readonly why: 'deleted' | 'changed' | 'unreadable'
  readonly detail: string
}

/** Appends data files and their blocks to reference packs of this process. */
export class ReferenceWriter {
  private pack: OpenPack | undefined
  private opening: Promise<OpenPack> | undefined

  /**
   * `packsDir` is `.cairn/packs`; `datasetRoot` the folder paths are relative to; a pack takes at most
   * `filesPerPack` files (tests make it small).
   */
  constructor(
    private readonly packsDir: string,
    private readonly datasetRoot: string,
    private readonly filesPerPack = FILES_PER_PACK,
  ) {}

  /**
   * Records that the block `cid` (`length` bytes) lies at `from`, and resolves with its place once its
   * index line is written. Returns undefined for a file outside the dataset folder (the caller copies it).
   */
  async put(cid: CID, length: number, from: LeafOrigin): Promise<{ pack: string; offset: number; length: number } | undefined> {
    const path = relativePath(this.datasetRoot, from.path)
    if (path === undefined) return undefined
    const pack = await this.open()
    // the pack filled up and closed while this put waited: the next one takes it
    if (pack !== this.pack) return this.put(cid, length, from)
    const key = `${from.path}\0${from.identity.ino}\0${from.identity.mtimeNs}\0${from.identity.size}`
    let base = pack.files.get(key)
    if (base === undefined) {
      if (pack.count >= this.filesPerPack) {
        // full: later files go to a new pack (the old one closes once what it gathered is written)
        if (this.pack === pack) {
          this.pack = undefined
          void pack.close()
        }
        return this.put(cid, length, from)
      }
      base = pack.size
      pack.size += from.identity.size
      pack.count++
      pack.files.set(key, base)
      // a build imports a file's blocks one after the other: the last few files are all it asks for again
      if (pack.files.size > 256) pack.files.delete(pack.files.keys().next().value!)
      pack.records += `${base} ${from.identity.size} ${from.identity.mtimeNs} ${from.identity.ino} ${JSON.stringify(path)}\n`
    }
    const offset = base + from.offset
    pack.lines += `${cidText(cid.version === 0 ? cid.toV1() : cid)} ${offset} ${length}\n`
    await pack.flush()
    return { pack: pack.name, offset, length }
  }

  /** Writes what is gathered and closes the pack. */
  async close(): Promise<void> {
    const pack = this.pack ?? (await this.opening?.catch(() => undefined))
    this.pack = undefined
    this.opening = undefined
    await pack?.close()
  }

  private async open(): Promise<OpenPack> {
    if (this.pack) return this.pack
    this.opening ??= (async () => {
      const name = `${REFERENCE_PREFIX}${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`
      const file = join(this.packsDir, name + '.pack')
      let data: FileHandle | undefined
      try {
        data = await open(file, 'wx')
        await data.write(HEADER)
        const index = await open(join(this.packsDir, name + '.idx'), 'a')
        this.pack = new OpenPack(name, file, data, index)
        return this.pack
      } catch (e) {
        await data?.close()
        throw ioError('create a reference pack in', this.packsDir, e)
      } finally {
        this.opening = undefined
      }
    })()
    return this.opening
  }
}

/** A reference pack being written: file lines and index lines gathered during one turn, written together. */
class OpenPack {
  size = 0
  count = 0
  readonly files = new Map<string, number>()
  records = ''
  lines = ''
  private flushing: Promise<void> | undefined
  private tail: Promise<void> = Promise.resolve()

  constructor(
    readonly name: string,
    private readonly file: string,
    private readonly data: FileHandle,
    private readonly index: FileHandle,
  ) {}

  /** Resolves once everything gathered up to now is written: file lines first, then index lines. */
  flush(): Promise<void> {
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.flushing = undefined
      const records = this.records
      const lines = this.lines
      this.records = ''
      this.lines = ''
      this.tail = this.tail.then(async () => {
        try {
          if (records) await appendAll(this.data.fd, records)
        } catch (e) {
          throw ioError('write the reference pack', this.file, e)
        }
        try {
          if (lines) await appendAll(this.index.fd, lines)
        } catch (e) {
          throw ioError('write the block index', this.file.replace(/\.pack$/, '.idx'), e)
        }
      })
      return this.tail
    })
    return this.flushing
  }

  async close(): Promise<void> {
    if (this.records || this.lines) await this.flush().catch(() => {})
    await this.tail.catch(() => {})
    await Promise.all([this.data.close(), this.index.close()])
  }
}

/** Reads blocks out of the data files reference packs name, checked against their CIDs. */
export class ReferenceReader {
  /** The files of the packs read lately (a pack lists at most {@link FILES_PER_PACK}). */
  private readonly loaded = new Map<string, ReferencedFile[]>()

  constructor(
    private readonly packsDir: string,
    private readonly datasetRoot: string,
  ) {}

  /** The block's bytes, or why they cannot be had. Throws `IO` only when the pack itself cannot be read. */
  async get(cid: CID, pack: string, offset: number, length: number): Promise<{ bytes: Uint8Array } | { lost: ReferenceLoss }> {
    const file = this.fileAt(pack, offset)
    if (!file || offset + length > file.base + file.size) {
      return { lost: { path: file?.path, why: 'unreadable', detail: `the reference pack ${pack} lists no data file at offset ${offset}` } }
    }
    const abs = join(this.datasetRoot, file.path)
    let fd: number
    try {
      fd = openSync(abs, 'r')
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') return { lost: { path: file.path, why: 'deleted', detail: `${file.path} was deleted` } }
      return { lost: { path: file.path, why: 'unreadable', detail: `${file.path} cannot be read (${code ?? String(e)})` } }
    }
    let bytes: Uint8Array
    let digest: Uint8Array | undefined
    let size: number
    try {
      size = fstatSync(fd).size
      const at = offset - file.base
      if (length >= THREAD_READ_MIN && cid.multihash.code === SHA2_256) {
        const read = await hashPool().readRange(fd, at, length)
        bytes = read.bytes
        digest = read.digest
      } else {
        bytes = new Uint8Array(length)
        let read = 0
        while (read < length) {
          const n = readSync(fd, bytes, read, length - read, at + read)
          if (n === 0) break
          read += n
        }
        bytes = bytes.subarray(0, read)
      }
    } catch (e) {
      return {
        lost: {
          path: file.path,
          why: 'unreadable',
          detail: `${file.path} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
        },
      }
    } finally {
      closeSync(fd)
    }
    let intact = bytes.length === length
    if (intact && digest) intact = equal(digest, cid.multihash.digest)
    else if (intact)
      intact = await checkBlock(cid, bytes).then(
        () => true,
        () => false,
      )
    if (!intact) {
      const was = size === file.size ? '' : ` (${file.size} bytes when built, ${size} now)`
      return { lost: { path: file.path, why: 'changed', detail: `${file.path} changed since it was built${was}` } }
    }
    return { bytes }
  }

  /** Forgets the packs' file lists (another process may have appended to them). */
  forget(): void {
    this.loaded.clear()
  }

  /** The files a pack lists, in order of their bases. Throws `IO` when the pack cannot be read. */
  files(pack: string): ReferencedFile[] {
    let files = this.loaded.get(pack)
    if (files === undefined) {
      files = readReferencePack(join(this.packsDir, pack + '.pack'))
      if (this.loaded.size >= 4) this.loaded.delete(this.loaded.keys().next().value!)
      this.loaded.set(pack, files)
    }
    return files
  }

  private fileAt(pack: string, offset: number): ReferencedFile | undefined {
    let files = this.files(pack)
    // the pack may have grown since it was loaded (this process or another appends to it)
    if (files.length === 0 || offset >= files[files.length - 1].base + files[files.length - 1].size) {
      this.loaded.delete(pack)
      files = this.files(pack)
    }
    return lastFileFrom(files, offset)
  }
}

/** The last of `files` (sorted by base) that starts at or before `offset`: the one that may hold it. */
export function lastFileFrom(files: readonly ReferencedFile[], offset: number): ReferencedFile | undefined {
  let lo = 0
  let hi = files.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (files[mid].base <= offset) lo = mid
    else hi = mid - 1
  }
  const f = files[lo]
  return f !== undefined && f.base <= offset ? f : undefined
}

/**
 * The files listed in a reference pack, in order. A torn last line, a damaged line or a path that is not
 * a normalised relative path (which could reach outside the dataset folder) is left out: its blocks are
 * then reported as lost, never read from elsewhere. A pack with another header lists nothing.
 */
export function readReferencePack(file: string): ReferencedFile[] {
  let text: string
  try {
    const fd = openSync(file, 'r')
    try {
      const buf = Buffer.allocUnsafe(fstatSync(fd).size)
      let read = 0
      while (read < buf.length) {
        const n = readSync(fd, buf, read, buf.length - read, read)
        if (n === 0) break
        read += n
      }
      text = buf.toString('utf8', 0, read)
    } finally {
      closeSync(fd)
    }
  } catch (e) {
    throw ioError('read', file, e)
  }
  if (!text.startsWith(HEADER)) return []
  const files: ReferencedFile[] = []
  const end = text.lastIndexOf('\n') + 1
  for (let at = HEADER.length; at < end;) {
    const nl = text.indexOf('\n', at)
    const f = parseLine(text.slice(at, nl))
    if (f && (files.length === 0 || f.base >= files[files.length - 1].base + files[files.length - 1].size)) files.push(f)
    at = nl + 1
  }
  return files
}

function parseLine(line: string): ReferencedFile | undefined {
  const m = /^(\d+) (\d+) (\d+) (\d+) (".*")$/.exec(line)
  if (!m) return undefined
  let path: unknown
  try {
    path = JSON.parse(m[5])
    checkShardPath(path as string)
  } catch {
    return undefined
  }
  const base = Number(m[1])
  const size = Number(m[2])
  if (!Number.isSafeInteger(base) || !Number.isSafeInteger(size)) return undefined
  return { base, size, mtimeNs: BigInt(m[3]), ino: BigInt(m[4]), path: path as string }
}

/** `abs` relative to `root` with `/` separators, or undefined when it is not inside it. */
function relativePath(root: string, abs: string): string | undefined {
  const prefix = root.endsWith('/') ? root : root + '/'
  if (!abs.startsWith(prefix)) return undefined
  const rel = abs.slice(prefix.length)
  try {
    checkShardPath(rel)
  } catch {
    return undefined
  }
  return rel
}

/** Appends all of `text` to `fd`, opened for appending. */
async function appendAll(fd: number, text: string): Promise<void> {
  let bytes = Buffer.from(text, 'utf8')
  while (bytes.length > 0) {
    const n = await new Promise<number>((resolve, reject) => write(fd, bytes, (e, written) => (e ? reject(e) : resolve(written))))
    bytes = bytes.subarray(n)
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
