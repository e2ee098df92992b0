/**
 * The one CAR reader (CARv1, or CARv2 with a v1 inside) behind every path that reads a CAR: `verify
 * --car`, CAR files given as sources, gateway CAR responses. One set of rules (docs/hostile-input.md):
 * a v1 header is a dag-cbor map of exactly `version` and `roots`; a section's length is checked
 * against {@link MAX_SECTION_BYTES} and against the end of the input (when its size is known) before a
 * byte of it is buffered; a block over {@link MAX_BLOCK_BYTES} is damage; CIDs must be canonically
 * encoded. Memory is bounded by one section (plus the chunk being read), whatever the input claims.
 */
import { open, stat } from 'node:fs/promises'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { CairnError, ioError, isCairnError } from '../errors.js'

/**
 * Largest block accepted from any CAR, gateway or `dir:` folder. The trustless-gateway spec allows
 * 2 MiB blocks and cairn writes none over 1 MiB; a block claiming more is taken as damage.
 */
export const MAX_BLOCK_BYTES = 4 * 1024 * 1024
/** Longest CID accepted in a section (a sha2-512 CID is 68 bytes; identity CIDs inline small blocks). */
export const MAX_CID_BYTES = 1024
/** Longest section: a CID and a block. A length varint saying more is `BAD_CAR` at once. */
export const MAX_SECTION_BYTES = MAX_BLOCK_BYTES + MAX_CID_BYTES
/** Longest CAR header (a header is a list of roots: 4 MiB holds 100,000 of them). */
export const MAX_HEADER_BYTES = 4 * 1024 * 1024

/** One block as read from a CAR. */
export interface CarBlock {
  readonly cid: CID
  /** The block's bytes (not checked against the CID: callers hash them). */
  readonly bytes: Uint8Array
  /** Where the block's bytes start in the input. */
  readonly offset: number
}

/** Options of {@link readCarBlocks}. */
export interface ReadCarOptions {
  /** How messages name the CAR (a path, or `<gateway> (CAR of <cid>)`). */
  readonly name: string
  /** The input's length when known (a file's size, a Content-Length): a section claiming to run past it is refused at once. */
  readonly size?: number
  /** Called with the roots once the header is read. */
  readonly onRoots?: (roots: readonly CID[]) => void
  /** How an error of the input iterable itself becomes a thrown error (default: `IO` naming the CAR). */
  readonly sourceError?: (e: unknown) => Error
}

/**
 * The blocks of a CAR stream in order, each with its offset; the bytes of each are the caller's to keep.
 * Blocks are not hashed here.
 *
 * @throws {CairnError} `BAD_CAR` when the input is not a CAR, or at the first malformed or truncated
 *   section (the message names the byte offset; `details[0].kind` is `corrupt` or `truncated`);
 *   `IO` (or what `sourceError` makes) when the input fails.
 */
export async function* readCarBlocks(source: AsyncIterable<Uint8Array>, options: ReadCarOptions): AsyncGenerator<CarBlock> {
  const reader = new CarSectionReader(source, options.name, false, options.size, options.sourceError)
  let count = 0
  try {
    const roots = await reader.readHeader()
    options.onRoots?.(roots)
    for (;;) {
      let batch: Section[]
      try {
        batch = await reader.next()
      } catch (e) {
        if (!(e instanceof StreamDamage)) throw e
        throw new CairnError(
          'BAD_CAR',
          `CAR ${options.name} is ${e.kind === 'truncated' ? 'truncated' : 'malformed'} after ${count} blocks (${e.message})`,
          { subject: options.name, details: [{ kind: e.kind, offset: e.offset }] },
        )
      }
      if (batch.length === 0) return
      for (const s of batch) {
        count++
        yield { cid: s.cid, bytes: s.scratch ? Uint8Array.from(s.bytes) : s.bytes, offset: s.offset }
      }
    }
  } finally {
    await reader.close()
  }
}

/** The roots and blocks of the CAR file at `path`, read with {@link readCarBlocks}'s rules. */
export async function* readCarFile(
  path: string,
  options: Omit<ReadCarOptions, 'name' | 'size'> & { readonly name?: string } = {},
): AsyncGenerator<CarBlock> {
  yield* readCarBlocks(readFileChunks(path, 1 << 20), { ...options, name: options.name ?? path, size: await fileSize(path) })
}

/** The size of a regular file (undefined for a pipe). Throws `IO` when it cannot be read. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    const st = await stat(path)
    return st.isFile() ? st.size : undefined
  } catch (e) {
    throw ioError('read', path, e)
  }
}

/** A file's bytes in fresh chunks of `size` bytes. */
async function* readFileChunks(path: string, size: number): AsyncGenerator<Buffer> {
  let file
  try {
    file = await open(path, 'r')
  } catch (e) {
    throw ioError('open', path, e)
  }
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(size)
      const { bytesRead } = await file.read(buf, 0, size, null)
      if (bytesRead === 0) return
      yield buf.subarray(0, bytesRead)
    }
  } finally {
    await file.close()
  }
}

/**
 * A file's bytes, read into two buffers in turn: the next chunk is read while the caller works on this
 * one, and a chunk is overwritten once the one after it has been asked for. `createReadStream` reads
 * into a fresh buffer each time, and on some VMs (balloon free-page reporting) every fresh 4 KiB page
 * costs ~10 µs to fault in: more than reading it.
 */
export async function* readReused(path: string, size: number): AsyncGenerator<Buffer> {
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

/** Damage found after the header: it ends the stream (verify reports it, other readers throw `BAD_CAR`). */
export class StreamDamage extends Error {
  constructor(
    readonly kind: 'corrupt' | 'truncated',
    message: string,
    /** The byte offset of the section at fault. */
    readonly offset: number,
  ) {
    super(message)
  }
}

/** One section: its CID, its block's bytes, where those start in the input. */
export interface Section {
  readonly cid: CID
  readonly bytes: Uint8Array
  readonly offset: number
  /** True when `bytes` lie in the reader's scratch buffer, which the next section overwrites. */
  readonly scratch: boolean
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
export class CarSectionReader {
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
    /** The input's length, when known: a section running past it is refused before it is read. */
    private readonly size?: number,
    private readonly sourceError: (e: unknown) => Error = (e) => ioError('read', name, e),
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
          const prefix = varint === null ? 0 : varint[1]
          length = this.checkLength(varint, this.base + pos)
          need = prefix + length
          if (limit - pos < need) break
          batch.push(this.section(buf.subarray(pos + prefix, pos + need), this.base + pos, prefix, false))
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
        at,
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

  /** The section length at byte `at`, checked before any byte of the section is buffered. */
  private checkLength(varint: readonly [number, number] | null, at: number): number {
    if (varint === null) throw new StreamDamage('corrupt', `the section length at byte ${at} is not a valid varint`, at)
    const [length, prefix] = varint
    if (length === 0) throw new StreamDamage('corrupt', `the section at byte ${at} has zero length`, at)
    if (length > MAX_SECTION_BYTES) {
      throw new StreamDamage(
        'corrupt',
        `the section at byte ${at} claims ${length} bytes, more than the ${MAX_SECTION_BYTES} cairn accepts (a block is at most ${MAX_BLOCK_BYTES})`,
        at,
      )
    }
    const end = Math.min(this.end, this.size ?? Number.POSITIVE_INFINITY)
    if (at + prefix + length > end && end === this.size) {
      throw new StreamDamage('truncated', `the section at byte ${at} needs ${prefix + length} bytes, only ${end - at} remain`, at)
    }
    return length
  }

  private section(bytes: Buffer, at: number, prefix: number, scratch: boolean): Section {
    let cid: CID
    let data: Uint8Array
    try {
      ;[cid, data] = CID.decodeFirst(bytes)
    } catch (e) {
      throw new StreamDamage('corrupt', `the section at byte ${at} does not start with a valid CID (${(e as Error).message})`, at)
    }
    // multiformats also accepts non-minimal varints and a CIDv0 written as `0x00 0x70 …`; a changed byte
    // must not turn one CID into another spelling of it that still passes.
    if (cid.bytes.length !== bytes.length - data.length) {
      throw new StreamDamage('corrupt', `the section at byte ${at} does not start with a canonically encoded CID`, at)
    }
    if (data.length > MAX_BLOCK_BYTES) {
      throw new StreamDamage(
        'corrupt',
        `the block of the section at byte ${at} is ${data.length} bytes, more than the ${MAX_BLOCK_BYTES} cairn accepts`,
        at,
      )
    }
    return { cid, bytes: data, offset: at + prefix + cid.bytes.length, scratch }
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
        throw new StreamDamage('truncated', `the section at byte ${at} needs ${need} bytes, only ${have} remain`, at)
      }
      this.base = this.pulled - chunk.length
      this.buf = chunk
      this.pos = Math.min(chunk.length, need - have)
      have += chunk.copy(scratch, have, 0, this.pos)
      if (have === need) return this.section(scratch.subarray(prefix, need), at, prefix, true)
    }
  }

  private pastEnd(): StreamDamage {
    return new StreamDamage(
      'corrupt',
      `the section at byte ${this.position} runs past the end of the CARv2 data at byte ${this.end}`,
      this.position,
    )
  }

  /** The next chunk of the source, or `undefined` at its end. */
  private async pull(): Promise<Buffer | undefined> {
    if (this.done) return undefined
    let result: IteratorResult<Uint8Array>
    try {
      result = await this.iterator.next()
    } catch (e) {
      this.done = true
      throw isCairnError(e) ? e : this.sourceError(e)
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
    // the CARv1 header schema is a struct of exactly these two fields (what @ipld/car and go-car read)
    const extra = Object.keys(header).find((k) => k !== 'version' && k !== 'roots')
    if (extra !== undefined) {
      throw this.badCar(
        `Invalid CAR header in ${this.name}: unknown key ${JSON.stringify(extra.slice(0, 64))} (a CARv1 header holds version and roots)`,
      )
    }
    if (!Number.isInteger(header.version)) throw this.badCar(`Invalid CAR header in ${this.name}: version must be an integer`)
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
