/**
 * Arrow IPC shards: the file format (`.arrow`, `.feather` v2, `.ipc`) and the stream format
 * (`.arrows`), read with `apache-arrow` one record batch at a time.
 *
 * The format is sniffed from the first bytes, not the extension. A stream is read from
 * `fs.createReadStream`. A file is read through a `FileHandle` with positioned reads, because
 * `apache-arrow`'s async reader buffers a whole IPC *file* when given a byte stream.
 */

import { createReadStream } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { DataType, MapRow, RecordBatchReader, StructRow, Type, Vector, type Data, type RecordBatch, type Schema } from 'apache-arrow'
import { CairnError, isCairnError, ioError } from '../errors.js'
import type { Field, ReadOptions, Row, ShardFacts } from './interface.js'

/** The reader's name, as used in manifests. */
export const name = 'arrow'

/** File name endings this reader claims. */
export const extensions: readonly string[] = ['.arrow', '.feather', '.ipc', '.arrows']

const FILE_MAGIC = Buffer.from('ARROW1')
const CONTINUATION = 0xffffffff
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
const MIN_SAFE = -MAX_SAFE

/**
 * Streams an Arrow IPC file or stream once, batch by batch, and returns the sum of the batches'
 * `numRows` and the schema: one field per top-level column with `String(field.type)` as its type
 * (`Int64`, `Utf8`, `Dictionary<Int32, Utf8>`, `Timestamp<MILLISECOND>`, `List<Float64>`, …) and
 * `field.nullable`. `options.onRow` is not called (binary formats do not report rows).
 *
 * A stream must start with the continuation marker `0xFFFFFFFF` (Arrow ≥ 0.15); older streams and
 * Feather v1 files are rejected. A stream cut exactly at a message boundary cannot be told from a
 * complete one (its end-of-stream marker is optional) and reads as the batches before the cut.
 *
 * Limits: `apache-arrow` does not verify the flatbuffers it decodes, so a corrupt vector length in a
 * schema or batch header can make it allocate until the process runs out of memory, or spin in a
 * synchronous loop; only the checks listed below are made here.
 *
 * @throws {CairnError} `INVALID_SHARD` when the bytes are not Arrow IPC, a file lacks its closing
 *   `ARROW1` magic, a stream has no schema, a message cannot be decoded, or a record batch claims
 *   more rows than its column buffers hold; `IO` when the file cannot be read. Rejects with the
 *   abort reason of `options.signal` (checked between batches).
 */
export async function facts(file: string, options: ReadOptions = {}): Promise<ShardFacts> {
  const { signal } = options
  const ipc = await openIpc(file, signal)
  try {
    let rows = 0
    for await (const batch of ipc.batches()) rows += batch.numRows
    return { rows, schema: { format: 'arrow', fields: ipc.fields } }
  } finally {
    await ipc.close()
  }
}

/**
 * Streams an Arrow IPC file's rows in order, decoding one record batch at a time.
 *
 * Rows are `row.toJSON()` made plain, recursively: 64-bit integers (`bigint`) become a `number` when
 * within `Number.MAX_SAFE_INTEGER`, else their exact decimal string; list vectors become arrays;
 * struct and map values become plain objects. Dictionary values are decoded; timestamps and dates are
 * numbers (milliseconds since the epoch, as `apache-arrow` returns them); binary is `Uint8Array`;
 * other values (decimals, intervals) are left as `apache-arrow` returns them.
 *
 * @throws {CairnError} like {@link facts}; a bad batch surfaces after the rows before it were yielded.
 */
export async function* rows(file: string, options: { readonly signal?: AbortSignal } = {}): AsyncIterable<Row> {
  const ipc = await openIpc(file, options.signal)
  try {
    for await (const batch of ipc.batches()) {
      for (const row of batch) yield plain(row) as Row
    }
  } finally {
    await ipc.close()
  }
}

interface OpenIpc {
  readonly fields: Field[]
  /** Record batches in order; errors are already {@link CairnError}s or the abort reason. */
  batches(): AsyncIterable<RecordBatch>
  close(): Promise<void>
}

async function openIpc(file: string, signal: AbortSignal | undefined): Promise<OpenIpc> {
  signal?.throwIfAborted()
  let handle: FileHandle
  try {
    handle = await open(file, 'r')
  } catch (e) {
    throw ioError('open', file, e)
  }
  let kind: 'file' | 'stream'
  try {
    kind = await sniff(file, handle)
  } catch (e) {
    await handle.close()
    throw e
  }

  const fail = (e: unknown): unknown => {
    if (signal?.aborted) return signal.reason
    if (isCairnError(e)) return e
    if (e instanceof Error && typeof (e as NodeJS.ErrnoException).syscall === 'string') return ioError('read', file, e)
    const message = e instanceof Error ? e.message : String(e)
    return new CairnError('INVALID_SHARD', `${file}: invalid Arrow IPC ${kind} (${message})`, { subject: file, cause: e })
  }

  let close = (): Promise<void> => handle.close()
  let reader: RecordBatchReader
  let schema: Schema | undefined
  try {
    if (kind === 'file') {
      reader = await RecordBatchReader.from(handle)
    } else {
      await handle.close()
      const stream = createReadStream(file, { signal })
      close = async () => void stream.destroy()
      // as an async iterable, not as a Node stream: apache-arrow's Node stream adapter listens for
      // 'error' only once it starts reading, and would wait forever on an error emitted before
      reader = await RecordBatchReader.from(chunksOf(stream))
    }
    await reader.open()
    // the reader forgets its schema once it reaches the end, so keep it now
    schema = reader.schema as Schema | undefined
  } catch (e) {
    await close()
    throw fail(e)
  }
  if (!schema) {
    await close()
    throw new CairnError('INVALID_SHARD', `${file}: Arrow IPC ${kind} has no schema message (expected one before any record batch)`, {
      subject: file,
    })
  }
  const fields = schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable }))

  async function* batches(): AsyncGenerator<RecordBatch> {
    const it = (kind === 'file' ? fileBatches(reader) : reader)[Symbol.asyncIterator]()
    for (let index = 0; ; index++) {
      let next: IteratorResult<RecordBatch>
      try {
        next = await it.next()
      } catch (e) {
        throw fail(e)
      }
      if (next.done) return
      const short = shortColumn(next.value)
      if (short) {
        throw new CairnError(
          'INVALID_SHARD',
          `${file}: invalid Arrow IPC ${kind} (record batch ${index} has ${next.value.numRows} rows but column ${JSON.stringify(short.name)} holds ${short.held})`,
          { subject: file },
        )
      }
      yield next.value
      signal?.throwIfAborted()
    }
  }
  return { fields, batches, close }
}

async function* chunksOf(stream: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* stream
}

/**
 * A file's record batches, by index from its footer: the reader's own iterator re-reads the same
 * block forever when that block holds a message that is not a record batch.
 */
async function* fileBatches(reader: RecordBatchReader): AsyncGenerator<RecordBatch> {
  for (let i = 0; i < reader.numRecordBatches; i++) {
    const batch = (await reader.readRecordBatch(i)) as RecordBatch | null
    if (!batch) throw new Error(`block ${i} of the footer is not a record batch`)
    yield batch
  }
}

/** The first column whose buffers hold fewer values than the batch's row count claims, if any. */
function shortColumn(batch: RecordBatch): { name: string; held: number } | undefined {
  // apache-arrow trusts the count, and would read the missing values as nulls
  for (const [i, field] of batch.schema.fields.entries()) {
    const column = batch.data.children[i]
    const held = column === undefined ? 0 : capacity(column)
    if (held !== undefined && held < batch.numRows) return { name: field.name, held }
  }
  return undefined
}

/** Which IPC format the file holds, from its first 8 and last 6 bytes. */
async function sniff(file: string, handle: FileHandle): Promise<'file' | 'stream'> {
  let size: number
  const head = Buffer.alloc(8)
  const tail = Buffer.alloc(FILE_MAGIC.length)
  try {
    size = (await handle.stat()).size
    await handle.read(head, 0, Math.min(size, head.length), 0)
    if (size >= tail.length) await handle.read(tail, 0, tail.length, size - tail.length)
  } catch (e) {
    throw ioError('read', file, e)
  }
  if (size >= FILE_MAGIC.length && head.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) {
    // magic, padding to 8, footer length, magic
    if (size < 18 || !tail.equals(FILE_MAGIC)) {
      throw new CairnError('INVALID_SHARD', `${file}: truncated Arrow IPC file (expected magic ARROW1 at the end)`, { subject: file })
    }
    return 'file'
  }
  if (size >= 8 && head.readUInt32LE(0) === CONTINUATION) return 'stream'
  const feather1 = size >= 4 && head.subarray(0, 4).toString('latin1') === 'FEA1'
  throw new CairnError(
    'INVALID_SHARD',
    `${file}: not Arrow IPC data (expected the file magic ARROW1 or a stream starting with 0xFFFFFFFF)`,
    { subject: file, hint: feather1 ? 'this is a Feather v1 file; rewrite it as Feather v2 (Arrow IPC)' : undefined },
  )
}

/**
 * How many values a column's buffers hold, where the buffers tell (offsets, fixed-width values, bit
 * maps; struct columns by their smallest child); `undefined` where they do not.
 */
function capacity(data: Data): number | undefined {
  const { type } = data
  // all-null columns may come without a values buffer
  if (data.nullCount === data.length) return undefined
  if (DataType.isStruct(type)) {
    const held = data.children.map(capacity).filter((n): n is number => n !== undefined)
    return held.length === 0 ? undefined : Math.min(...held)
  }
  if (type.typeId === Type.Utf8View || type.typeId === Type.BinaryView || DataType.isFixedSizeList(type)) return undefined
  if (data.valueOffsets) return data.valueOffsets.length - 1 - data.offset
  const values: unknown = data.values
  if (!ArrayBuffer.isView(values)) return undefined
  const length = (values as Uint8Array).length
  if (DataType.isBool(type)) return length * 8 - data.offset
  return data.stride > 0 ? Math.floor(length / data.stride) - data.offset : undefined
}

function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value.toString()
  if (value === null || typeof value !== 'object') return value
  if (value instanceof Vector) return Array.from(value, plain)
  if (value instanceof StructRow || value instanceof MapRow) {
    const out: Row = {}
    for (const [key, v] of Object.entries(value.toJSON() as Record<string, unknown>)) out[key] = plain(v)
    return out
  }
  if (Array.isArray(value)) return value.map(plain)
  return value
}
