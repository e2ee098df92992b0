/**
 * `verify --car`: check every block of a CAR file against its CID and check that the DAG under each
 * root is complete, streaming, with memory bounded by the number of blocks (CID strings and link lists),
 * never by their bytes.
 */
import { open } from 'node:fs/promises'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { CairnError, ioError, isCairnError } from '../errors.js'
import { hashPool } from '../util/hash-pool.js'
import { versionLinks } from '../release/links.js'
import { blockLinks, checkBlock, checkBlockOnThread, HASH_CODES } from './block.js'

/** One thing wrong with a CAR file, in the order it was found. */
export interface CarProblem {
  /**
   * `corrupt`: a block does not match its CID or does not decode, or a section of the file is malformed;
   * `missing`: a block reachable from a checked root is not in the file;
   * `truncated`: the file ends inside a section.
   */
  readonly kind: 'corrupt' | 'missing' | 'truncated'
  /** The CID the problem is about, when there is one. */
  readonly cid?: string
  /** A sentence naming what was found and what was expected. */
  readonly message: string
}

/** What {@link verifyCar} found. */
export interface CarReport {
  /** True exactly when {@link CarReport.problems} is empty. */
  readonly ok: boolean
  /** The roots in the CAR header (for a CARv2, the header of the CARv1 inside). */
  readonly roots: readonly CID[]
  /** The roots whose DAG was checked for completeness: `options.root` if given, else {@link CarReport.roots}. */
  readonly checkedRoots: readonly CID[]
  /** Blocks (sections) read, corrupt ones included. */
  readonly blocks: number
  /**
   * Bytes of the CAR read, header and framing included: the file size for a whole or truncated CARv1,
   * the end of the data for a CARv2 (its index is not read), the start of the malformed section when one
   * stopped the reading.
   */
  readonly bytes: number
  /** Everything wrong, first found first: problems of the stream in file order, then missing blocks. */
  readonly problems: readonly CarProblem[]
  /**
   * When the (first) checked root is a cairn version: how much of its history the CAR holds. A release
   * CAR holds none (`versions` 0, `next` the parent); each ancestor found is checked as a release too.
   */
  readonly history?: HistoryReport
}

/** The history a CAR holds beside the release of its root (src/release/links.ts). */
export interface HistoryReport {
  /** Ancestors whose release was checked, complete or not. */
  readonly versions: number
  /** The first ancestor not in the CAR (history not included from there); absent when the chain reaches a first version. */
  readonly next?: string
}

/** Progress of {@link verifyCar}, counted as in {@link CarReport}. */
export interface CarProgress {
  readonly blocks: number
  readonly bytes: number
}

/** Options of {@link verifyCar}. */
export interface VerifyCarOptions {
  /** Check the DAG under this CID instead of under the header's roots (e.g. a complete sub-DAG). */
  readonly root?: CID
  /** Called at most about every 100 ms while reading, and once at the end. */
  readonly onProgress?: (progress: CarProgress) => void
  /** How messages name the CAR when `input` is a stream (default `CAR stream`); a path names itself. */
  readonly name?: string
  /** Bytes per read when `input` is a path (default 4 MiB); tests make it small so that sections straddle reads. */
  readonly readBytes?: number
}

/**
 * go-car's defaults: a header or section claiming more is taken as damage rather than buffered. IPFS
 * blocks are at most 2 MiB (trustless-gateway spec), so 8 MiB leaves room for other producers.
 */
const MAX_HEADER_BYTES = 32 << 20
const MAX_SECTION_BYTES = 8 << 20
/** Large reads: a batch then holds several 1 MiB blocks, hashed at once on the hashing threads. */
const READ_CHUNK_BYTES = 4 << 20
/** Bytes of blocks handed to the hashing threads and not settled yet: reading stops while more are. */
const MAX_HASHING_BYTES = 8 << 20
const PROGRESS_INTERVAL_MS = 100

/**
 * Verifies a CAR file (v1, or v2 with a v1 inside): reads it once, as a stream, hashes every block
 * against its CID ({@link checkBlock}), reads every block's
 * links ({@link blockLinks}), and once the stream ends walks the DAG from each checked root: every
 * reachable CID must be in the file (identity-hash CIDs carry their bytes and need no block). Blocks that
 * no root reaches are allowed. Reading goes on after a corrupt block, so that all of them are reported;
 * after a malformed section or the end of a truncated file it cannot, and the DAG walk then reports what
 * the lost part left missing (at most one missing block per root: the first in depth-first link order).
 *
 * Damage inside the file is reported, not thrown: look at {@link CarReport.ok} and
 * {@link CarReport.problems}.
 *
 * @param input A file path, or the CAR bytes as an async iterable (a chunk must not be reused by its
 *   producer once yielded).
 * @throws {CairnError} `BAD_CAR` when the input is not a CAR file (empty, a text file, random bytes, a
 *   malformed header, a version other than 1 or 2); `IO` when the file cannot be read (a stream's own
 *   errors are wrapped likewise).
 */
export async function verifyCar(input: string | AsyncIterable<Uint8Array>, options: VerifyCarOptions = {}): Promise<CarReport> {
  const name = typeof input === 'string' ? input : (options.name ?? 'CAR stream')
  const path = typeof input === 'string'
  const source = path ? readReused(input, options.readBytes ?? READ_CHUNK_BYTES) : input
  const reader = new CarSectionReader(source, name, path)
  // a stream's chunks are fresh memory anyway: its blocks are checked as they always were
  const pool = path ? hashPool() : undefined
  const problems: CarProblem[] = []
  // Keyed by canonical CID bytes (latin1 string, CIDv0 as CIDv1); a link list holds the links as written.
  const blocks = new Map<string, readonly string[] | typeof CORRUPT>()
  // a version's parent, kept apart from its links: a release does not hold it (src/release/links.ts)
  const parents = new Map<string, string>()
  let count = 0
  let lastProgress = performance.now()
  const progress = (): void => options.onProgress?.({ blocks: count, bytes: reader.position })

  try {
    const roots = await reader.readHeader()
    try {
      // Blocks are hashed together and their results taken in file order, so the report is the same as
      // one block at a time. A block hashed on a thread was copied there, its CID and links taken out
      // of the reader's buffers, so reading goes on while the threads hash; any other block still points
      // into those buffers and is settled before the next read, which may reuse them.
      // `hashing`: the block's bytes, when it is hashed on a thread; 0 when it points into the buffers
      const checking: { cid: CID; check: Promise<void>; links: () => readonly string[]; hashing: number; parent?: string }[] = []
      let hashing = 0 // bytes of `checking` on the threads
      let pointing = 0 // blocks of `checking` that point into the reader's buffers
      const settle = async (): Promise<void> => {
        const { cid, check, links, hashing: bytes, parent } = checking.shift() as (typeof checking)[number]
        hashing -= bytes
        if (bytes === 0) pointing--
        const key = canonicalKey(keyOf(cid))
        try {
          await check
          const known = blocks.get(key)
          if (known === undefined || known === CORRUPT) {
            blocks.set(key, !parent ? links() : links().filter((l) => l !== parent))
            if (parent !== undefined) parents.set(key, parent)
          }
        } catch (e) {
          if (!isCairnError(e, 'CORRUPT_BLOCK')) throw e
          problems.push({ kind: 'corrupt', cid: cid.toString(), message: e.message })
          if (!blocks.has(key)) blocks.set(key, CORRUPT)
        }
      }
      try {
        for (let batch = await reader.next(); batch.length > 0; batch = await reader.next()) {
          for (const { cid, bytes } of batch) {
            count++
            const onThread = pool && checkBlockOnThread(pool, cid, bytes)
            if (onThread !== undefined) {
              const { cid: owned, check } = onThread
              check.catch(() => {}) // taken in turn by settle
              // decoded now, used only if the hash matches: the same report as decoding after the check
              checking.push({ cid: owned, check, links: linksNow(owned, bytes), hashing: bytes.length, parent: parentKey(owned, bytes) })
              hashing += bytes.length
            } else {
              const check = checkBlock(cid, bytes)
              check.catch(() => {})
              checking.push({ cid, check, links: () => linksOf(cid, bytes), hashing: 0, parent: parentKey(cid, bytes) })
              pointing++
            }
          }
          while (pointing > 0 || hashing > MAX_HASHING_BYTES) await settle()
          if (options.onProgress !== undefined && performance.now() - lastProgress >= PROGRESS_INTERVAL_MS) {
            lastProgress = performance.now()
            progress()
          }
        }
      } finally {
        // the blocks read before a damaged section are still checked and reported
        while (checking.length > 0) await settle()
      }
    } catch (e) {
      if (!(e instanceof StreamDamage)) throw e
      problems.push({
        kind: e.kind,
        message:
          e.kind === 'truncated'
            ? `CAR file ${name} is truncated after ${count} blocks (${e.message})`
            : `CAR file ${name} is malformed after ${count} blocks (${e.message})`,
      })
    }
    progress()

    const checkedRoots = options.root !== undefined ? [options.root] : roots
    for (const root of checkedRoots) {
      const problem = walk(root, blocks, name)
      if (problem !== undefined) problems.push(problem)
    }
    const history = checkedRoots.length > 0 ? checkHistory(checkedRoots[0], blocks, parents, name, problems) : undefined
    return {
      ok: problems.length === 0,
      roots,
      checkedRoots,
      blocks: count,
      bytes: reader.position,
      problems,
      ...(history ? { history } : {}),
    }
  } finally {
    await reader.close()
  }
}

const CORRUPT = Symbol('corrupt')
const NO_LINKS: readonly string[] = Object.freeze([])

/** The parent of a version block as a map key (`''` for a first version), or undefined for any other block. */
function parentKey(cid: CID, bytes: Uint8Array): string | undefined {
  const version = versionLinks(cid, bytes)
  return version === undefined ? undefined : version.parent === null ? '' : keyOf(version.parent)
}

/**
 * The history a CAR holds beside the release of `root` (a version): each ancestor in the CAR is
 * walked as a release (its problems added to `problems`), up to the first one the CAR lacks, which is
 * not a problem (a release does not carry its parent). Undefined when `root` is not a version.
 */
function checkHistory(
  root: CID,
  blocks: ReadonlyMap<string, readonly string[] | typeof CORRUPT>,
  parents: ReadonlyMap<string, string>,
  name: string,
  problems: CarProblem[],
): HistoryReport | undefined {
  const rootKey = canonicalKey(keyOf(root))
  if (!blocks.has(rootKey) || !parents.has(rootKey)) return undefined
  let versions = 0
  const seen = new Set<string>()
  // '' is a first version's parent: the chain ends there
  for (let at = parents.get(rootKey); at; at = parents.get(canonicalKey(at))) {
    if (seen.has(canonicalKey(at))) break
    seen.add(canonicalKey(at))
    const cid = CID.decode(Buffer.from(at, 'latin1'))
    if (!blocks.has(canonicalKey(at))) return { versions, next: cid.toString() }
    versions++
    const problem = walk(cid, blocks, name)
    if (problem !== undefined) {
      problems.push({ ...problem, message: `${problem.message}, in the history (version ${cid})` })
      break
    }
  }
  return { versions }
}

/** A block's links as map keys. @throws {CairnError} `CORRUPT_BLOCK` as {@link blockLinks}. */
function linksOf(cid: CID, bytes: Uint8Array): readonly string[] {
  return cid.code === raw.code ? NO_LINKS : blockLinks(cid, bytes).map(keyOf)
}

/** {@link linksOf} read now, from bytes about to be overwritten, returned (or thrown) when asked. */
function linksNow(cid: CID, bytes: Uint8Array): () => readonly string[] {
  try {
    const links = linksOf(cid, bytes)
    return () => links
  } catch (e) {
    return () => {
      throw e
    }
  }
}

/**
 * A file's bytes, read into two buffers in turn: the next chunk is read while the caller works on this
 * one, and a chunk is overwritten once the one after it has been asked for. `createReadStream` reads
 * into a fresh buffer each time, and on some VMs (balloon free-page reporting) every fresh 4 KiB page
 * costs ~10 µs to fault in: more than reading it.
 */
async function* readReused(path: string, size: number): AsyncGenerator<Buffer> {
  const file = await open(path, 'r')
  const buffers = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)]
  let turn = 0
  // from the file's own position, one read at a time: a named pipe (`<(curl …)`) cannot seek
  let reading = file.read(buffers[turn], 0, size, null)
  try {
    for (;;) {
      const { bytesRead } = await reading
      if (bytesRead === 0) return
      const chunk = buffers[turn].subarray(0, bytesRead)
      turn ^= 1
      reading = file.read(buffers[turn], 0, size, null)
      reading.catch(() => {}) // awaited on the next turn, or in finally
      yield chunk
    }
  } finally {
    // a read still running would write into a buffer of a closed file
    await reading.catch(() => {})
    await file.close()
  }
}

/**
 * Depth-first walk from `root`, in link order; returns the first problem. Corrupt blocks were reported
 * already and their links cannot be trusted, so the walk neither descends into them nor calls them missing.
 * Each root gets its own visited set: a walk stops at its first problem, so a block another root's walk
 * visited may have children nobody checked.
 */
function walk(root: CID, blocks: ReadonlyMap<string, readonly string[] | typeof CORRUPT>, name: string): CarProblem | undefined {
  const visited = new Set<string>()
  const rootKey = keyOf(root)
  const stack: string[] = [rootKey]
  const parents: (string | undefined)[] = [undefined]
  while (stack.length > 0) {
    const key = stack.pop() as string
    const parent = parents.pop()
    const canonical = canonicalKey(key)
    if (visited.has(canonical)) continue
    visited.add(canonical)
    let links = blocks.get(canonical)
    if (links === CORRUPT) continue
    if (links === undefined) {
      const cid = CID.decode(Buffer.from(key, 'latin1'))
      if (cid.multihash.code !== HASH_CODES.identity) {
        return parent === undefined
          ? { kind: 'missing', cid: cid.toString(), message: `Root ${cid} is not in CAR file ${name}` }
          : {
              kind: 'missing',
              cid: cid.toString(),
              message: `Block ${cid} is missing (linked from ${CID.decode(Buffer.from(parent, 'latin1'))})`,
            }
      }
      try {
        links = cid.code === raw.code ? NO_LINKS : blockLinks(cid, cid.multihash.digest).map(keyOf)
      } catch (e) {
        if (!isCairnError(e, 'CORRUPT_BLOCK')) throw e
        return { kind: 'corrupt', cid: cid.toString(), message: e.message }
      }
    }
    for (let i = links.length - 1; i >= 0; i--) {
      stack.push(links[i])
      parents.push(key)
    }
  }
  return undefined
}

/** A CID's bytes as a string: compact, and cheap to make and to hash as a map key. */
function keyOf(cid: CID): string {
  const bytes = cid.bytes
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1')
}

/** CIDv0 `Qm…` and CIDv1 dag-pb with the same multihash name the same block. */
function canonicalKey(key: string): string {
  return key.charCodeAt(0) === 0x12 && key.length === 34 ? '\x01\x70' + key : key
}

/** Damage found after the header: it ends the stream and becomes a {@link CarProblem}. */
class StreamDamage extends Error {
  constructor(
    readonly kind: 'corrupt' | 'truncated',
    message: string,
  ) {
    super(message)
  }
}

interface Section {
  readonly cid: CID
  readonly bytes: Uint8Array
}

const EMPTY = Buffer.alloc(0)

/**
 * Reads a CAR stream section by section. Sections that lie whole in a chunk are parsed synchronously,
 * without copying, and handed out in batches: one `await` per chunk rather than per block, because with
 * small blocks per-block promises cost more than the hashing. A section that spans chunks is copied once
 * into a reused scratch buffer (fresh buffers per block cost page faults). So a batch is only valid until
 * the next call to {@link CarSectionReader.next}. With `reused`, the source may overwrite a chunk once
 * the next is pulled, and the reader copies what it keeps of a chunk across a pull.
 */
class CarSectionReader {
  private readonly iterator: AsyncIterator<Uint8Array>
  private buf: Buffer = EMPTY
  /** Offset in `buf` of the next unread byte. */
  private pos = 0
  /** Offset in the stream of `buf[0]`. */
  private base = 0
  /** Bytes pulled from the source so far. */
  private pulled = 0
  /** Offset in the stream where the CARv1 data ends (a CARv2's index follows it). */
  private end = Number.POSITIVE_INFINITY
  private done = false
  private scratch: Buffer = EMPTY
  /** The last header read, to check how its roots are encoded. */
  private headerBytes: Buffer = EMPTY
  /** Damage found behind sections that were handed out first. */
  private damage: StreamDamage | undefined

  constructor(
    source: AsyncIterable<Uint8Array>,
    private readonly name: string,
    private readonly reused: boolean,
  ) {
    this.iterator = source[Symbol.asyncIterator]()
  }

  /** Offset in the stream of the next unread byte. */
  get position(): number {
    return this.base + this.pos
  }

  /** Reads the header (for a CARv2, both headers) and returns the roots. */
  async readHeader(): Promise<CID[]> {
    if (!(await this.fill(1))) throw this.badCar(`${this.name} is empty (0 bytes), not a CAR file`)
    const header = await this.readHeaderBlock()
    if (header.version === 1) return this.roots(header)
    if (header.version !== 2) {
      throw this.badCar(`Invalid CAR version in ${this.name}: ${String(header.version)} (expected 1 or 2)`)
    }
    if (Object.keys(header).length !== 1) throw this.badCar(`${this.name} is not a CAR file: invalid CARv2 pragma`)
    const V2_HEADER_BYTES = 40
    if (!(await this.fill(V2_HEADER_BYTES))) throw this.badCar(`${this.name} is not a CAR file: its CARv2 header is truncated`)
    const v2 = this.buf.subarray(this.pos, this.pos + V2_HEADER_BYTES)
    const dataOffset = Number(v2.readBigUInt64LE(16))
    const dataSize = Number(v2.readBigUInt64LE(24))
    this.pos += V2_HEADER_BYTES
    if (dataOffset < this.position || !Number.isSafeInteger(dataOffset + dataSize)) {
      throw this.badCar(`${this.name} is not a CAR file: its CARv2 data offset ${dataOffset} is out of range`)
    }
    await this.skipTo(dataOffset)
    if (!(await this.fill(1))) throw this.badCar(`${this.name} is not a CAR file: the CARv1 inside the CARv2 is missing`)
    const inner = await this.readHeaderBlock()
    if (inner.version !== 1) {
      throw this.badCar(`Invalid CAR version inside CARv2 ${this.name}: ${String(inner.version)} (expected 1)`)
    }
    this.end = dataOffset + dataSize
    if (this.position > this.end) throw this.badCar(`${this.name} is not a CAR file: its CARv1 header runs past the CARv2 data size`)
    return this.roots(inner)
  }

  /**
   * The next sections, at least one, or `[]` at the end of the data. Valid until the next call.
   *
   * @throws {StreamDamage} at a malformed section or when the stream ends inside one.
   */
  async next(): Promise<Section[]> {
    if (this.damage !== undefined) throw this.damage
    const batch: Section[] = []
    for (;;) {
      const buf = this.buf
      const limit = Math.min(buf.length, this.end - this.base)
      let pos = this.pos
      let need = 1
      let length = 0
      try {
        while (pos < limit) {
          const varint = readVarint(buf, pos, limit)
          if (varint === undefined) {
            need = limit - pos + 1
            break
          }
          length = this.checkLength(varint, this.base + pos)
          const prefix = (varint as [number, number])[1]
          need = prefix + length
          if (limit - pos < need) break
          batch.push(this.section(buf.subarray(pos + prefix, pos + need), this.base + pos))
          pos += need
        }
      } catch (e) {
        if (!(e instanceof StreamDamage) || batch.length === 0) throw e
        // The whole sections before the damage still get checked; the damage comes with the next call.
        this.damage = e
      }
      this.pos = pos
      if (batch.length > 0 || this.position >= this.end) return batch
      if (length > 0 && limit - pos < need) {
        // The section's length is known: copy just that section out of the chunks it spans.
        batch.push(await this.spanning(need, need - length))
        continue
      }
      // The buffer ends inside a section length: rare, so join it with the next chunk.
      await this.fill(need)
      const available = Math.min(this.buf.length, this.end - this.base) - this.pos
      if (available >= need) continue
      if (available === 0 && this.end === Number.POSITIVE_INFINITY) return batch
      if (this.buf.length - this.pos > available) throw this.pastEnd()
      const at = this.position
      this.pos += available
      throw new StreamDamage(
        'truncated',
        available === 0
          ? `its CARv2 header says the data ends at byte ${this.end}, the file ends at byte ${at}`
          : `the file ends inside the section length at byte ${at}`,
      )
    }
  }

  /** Stops reading; closes the file when the input was a path. */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true
      await this.iterator.return?.()
    }
  }

  private checkLength(varint: readonly [number, number] | null, at: number): number {
    if (varint === null) throw new StreamDamage('corrupt', `the section length at byte ${at} is not a valid varint`)
    const length = varint[0]
    if (length === 0) throw new StreamDamage('corrupt', `the section at byte ${at} has zero length`)
    if (length > MAX_SECTION_BYTES) {
      throw new StreamDamage(
        'corrupt',
        `the section at byte ${at} claims ${length} bytes, more than the ${MAX_SECTION_BYTES} cairn accepts`,
      )
    }
    return length
  }

  private section(bytes: Buffer, at: number): Section {
    let cid: CID
    let data: Uint8Array
    try {
      ;[cid, data] = CID.decodeFirst(bytes)
    } catch (e) {
      throw new StreamDamage('corrupt', `the section at byte ${at} does not start with a valid CID (${(e as Error).message})`)
    }
    // multiformats also accepts non-minimal varints and a CIDv0 written as `0x00 0x70 …`; a changed byte
    // must not turn one CID into another spelling of it that still passes.
    if (cid.bytes.length !== bytes.length - data.length) {
      throw new StreamDamage('corrupt', `the section at byte ${at} does not start with a canonically encoded CID`)
    }
    return { cid, bytes: data }
  }

  /** Reads a section of `need` bytes (its `prefix`-byte length included) that runs past `buf`. */
  private async spanning(need: number, prefix: number): Promise<Section> {
    const at = this.position
    if (at + need > this.end) throw this.pastEnd()
    if (this.scratch.length < need) this.scratch = Buffer.allocUnsafeSlow(Math.max(need, 2 * this.scratch.length))
    const scratch = this.scratch
    let have = this.buf.copy(scratch, 0, this.pos)
    for (;;) {
      const chunk = await this.pull()
      if (chunk === undefined) {
        this.base += this.buf.length
        this.buf = EMPTY
        this.pos = 0
        throw new StreamDamage('truncated', `the section at byte ${at} needs ${need} bytes, only ${have} remain`)
      }
      this.base = this.pulled - chunk.length
      this.buf = chunk
      this.pos = Math.min(chunk.length, need - have)
      have += chunk.copy(scratch, have, 0, this.pos)
      if (have === need) return this.section(scratch.subarray(prefix, need), at)
    }
  }

  private pastEnd(): StreamDamage {
    return new StreamDamage('corrupt', `the section at byte ${this.position} runs past the end of the CARv2 data at byte ${this.end}`)
  }

  /** The next chunk of the source, or `undefined` at its end. */
  private async pull(): Promise<Buffer | undefined> {
    if (this.done) return undefined
    let result: IteratorResult<Uint8Array>
    try {
      result = await this.iterator.next()
    } catch (e) {
      this.done = true
      throw isCairnError(e) ? e : ioError('read', this.name, e)
    }
    if (result.done === true) {
      this.done = true
      return undefined
    }
    const chunk = result.value
    this.pulled += chunk.length
    return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)
  }

  /** Makes at least `n` unread bytes available in `buf`, joining chunks; false when the stream ends first. */
  private async fill(n: number): Promise<boolean> {
    const have = this.buf.length - this.pos
    if (have >= n) return true
    const parts: Buffer[] = have > 0 ? [this.buf.subarray(this.pos)] : []
    let total = have
    while (total < n) {
      // rare (a header or a varint split by a read): copy rather than join a chunk about to be overwritten
      if (this.reused && parts.length > 0) parts[parts.length - 1] = Buffer.from(parts[parts.length - 1])
      const chunk = await this.pull()
      if (chunk === undefined) break
      parts.push(chunk)
      total += chunk.length
    }
    this.base = this.pulled - total
    this.pos = 0
    this.buf = parts.length === 0 ? EMPTY : parts.length === 1 ? parts[0] : Buffer.concat(parts, total)
    return total >= n
  }

  private async skipTo(offset: number): Promise<void> {
    while (this.position < offset) {
      const skip = Math.min(offset - this.position, this.buf.length - this.pos)
      this.pos += skip
      if (this.position < offset && !(await this.fill(1))) {
        throw this.badCar(`${this.name} is not a CAR file: its CARv2 data offset ${offset} is past the end of the file`)
      }
    }
  }

  /** Reads a varint-prefixed dag-cbor header block. */
  private async readHeaderBlock(): Promise<Record<string, unknown>> {
    await this.fill(10)
    const varint = readVarint(this.buf, this.pos, this.buf.length)
    if (varint === undefined || varint === null) {
      throw this.badCar(`${this.name} is not a CAR file: it does not start with a valid header length`)
    }
    const [length, size] = varint
    if (length === 0) throw this.badCar(`${this.name} is not a CAR file: its header has zero length`)
    if (length > MAX_HEADER_BYTES) {
      throw this.badCar(`${this.name} is not a CAR file: its header would be ${length} bytes (at most ${MAX_HEADER_BYTES} expected)`)
    }
    if (!(await this.fill(size + length))) {
      throw this.badCar(
        `${this.name} is not a CAR file: its header would be ${length} bytes but the file ends after ${this.buf.length - this.pos - size}`,
      )
    }
    const bytes = this.buf.subarray(this.pos + size, this.pos + size + length)
    let header: unknown
    try {
      header = dagCbor.decode(bytes)
    } catch (e) {
      throw this.badCar(`${this.name} is not a CAR file: its header is not dag-cbor (${(e as Error).message})`, e)
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header) || CID.asCID(header) !== null) {
      throw this.badCar(`${this.name} is not a CAR file: its header is not a map`)
    }
    const version = (header as Record<string, unknown>).version
    if (typeof version !== 'number') throw this.badCar(`${this.name} is not a CAR file: its header has no version`)
    this.pos += size + length
    this.headerBytes = Buffer.from(bytes)
    return header as Record<string, unknown>
  }

  private roots(header: Record<string, unknown>): CID[] {
    const roots = header.roots
    if (!Array.isArray(roots)) throw this.badCar(`Invalid CAR header in ${this.name}: roots must be a list of CIDs`)
    return roots.map((root) => {
      const cid = CID.asCID(root)
      if (cid === null) throw this.badCar(`Invalid CAR header in ${this.name}: roots must be a list of CIDs`)
      // As for sections: refuse a root spelled non-canonically (the dag-cbor decoder lets it through).
      if (this.headerBytes.indexOf(dagCbor.encode(cid)) < 0) {
        throw this.badCar(`Invalid CAR header in ${this.name}: root ${cid} is not a canonically encoded CID`)
      }
      // A copy: the decoded CID is a view into the first chunk, which the report would keep alive.
      return CID.decode(Uint8Array.from(cid.bytes))
    })
  }

  private badCar(message: string, cause?: unknown): CairnError {
    return new CairnError('BAD_CAR', message, {
      subject: this.name,
      cause,
      hint: 'check that the file is a CAR (e.g. made by `ipfs dag export` or `ipfs-car pack`) and was copied whole',
    })
  }
}

/**
 * Decodes an unsigned LEB128 varint at `buf[pos]`, reading no further than `limit`: `[value, size]`,
 * `undefined` when more bytes are needed, `null` when it is longer than 9 bytes (the multiformats cap).
 */
function readVarint(buf: Uint8Array, pos: number, limit: number): [number, number] | null | undefined {
  let value = 0
  let factor = 1
  for (let i = 0; i < 9; i++) {
    if (pos + i >= limit) return undefined
    const byte = buf[pos + i]
    value += (byte & 0x7f) * factor
    if (byte < 0x80) return Number.isSafeInteger(value) ? [value, i + 1] : null
    factor *= 128
  }
  return null
}
