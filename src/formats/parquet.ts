/**
 * Parquet shards (`.parquet`), read with `hyparquet` through an {@link AsyncBuffer} over a file
 * handle: `facts` reads only the magic bytes and the footer metadata; `rows` decodes one row group
 * at a time.
 */

import { open, type FileHandle } from 'node:fs/promises'
import {
  parquetMetadata,
  parquetReadObjects,
  parquetSchema,
  type AsyncBuffer,
  type FileMetaData,
  type SchemaElement,
  type SchemaTree,
} from 'hyparquet'
import { CairnError, isCairnError, ioError } from '../errors.js'
import type { Field, ReadOptions, Row, ShardFacts } from './interface.js'

/** The reader's name, as used in manifests. */
export const name = 'parquet'

/** File name endings this reader claims. */
export const extensions: readonly string[] = ['.parquet']

const MAGIC = 0x31524150 // "PAR1" read as a little-endian uint32
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)
const MIN_SAFE = -MAX_SAFE

/**
 * Reads a Parquet file's footer and returns its row count (`num_rows`) and schema; the data pages are
 * not read, and `options.onRow` is not called (binary formats do not report rows).
 *
 * Schema: one field per top-level column. `type` comes from the logical type when present, else the
 * converted type, else the physical type: `STRING`, `ENUM`, `JSON`, `BSON`, `UUID`, `DATE`,
 * `FLOAT16`, `INTERVAL`, `DECIMAL(precision,scale)`, `INT_8` … `INT_64`, `UINT_8` … `UINT_64`,
 * `TIME(MILLIS|MICROS|NANOS,UTC|LOCAL)`, `TIMESTAMP(…)` likewise, or the physical `BOOLEAN`,
 * `INT32`, `INT64`, `INT96`, `FLOAT`, `DOUBLE`, `BYTE_ARRAY`, `FIXED_LEN_BYTE_ARRAY(length)`. A
 * logical type and its legacy converted type give the same name. Group columns are `LIST`, `MAP`
 * or `STRUCT`; a bare `repeated` column is `LIST`. `nullable` is true for `OPTIONAL` columns.
 *
 * @throws {CairnError} `INVALID_SHARD` when the file is not Parquet (no `PAR1` magic at both ends),
 *   is truncated, or its footer cannot be decoded or gives a `num_rows` other than the sum of its row
 *   groups'; `FILE_CHANGED` if the file shrinks while being read; `IO` when it cannot be opened or
 *   read. Rejects with the abort reason of `options.signal`.
 */
export async function facts(file: string, options: ReadOptions = {}): Promise<ShardFacts> {
  options.signal?.throwIfAborted()
  const handle = await openFile(file)
  try {
    const { metadata } = await readFooter(file, handle)
    return { rows: Number(metadata.num_rows), schema: { format: 'parquet', fields: fieldsOf(file, metadata) } }
  } finally {
    await handle.close()
  }
}

/**
 * Streams a Parquet file's rows in order, decoding one row group at a time (memory is bounded by the
 * largest row group, not the file).
 *
 * Values are `hyparquet`'s, with one change: 64-bit integers (`bigint`) become a `number` when
 * `Number.isSafeInteger` holds, else their exact decimal string, so every row is exact and
 * `JSON.stringify`-able, and a null struct is `null` (hyparquet gives `undefined`). Otherwise strings
 * are strings, timestamps and dates are `Date`s, binary is `Uint8Array`, UUIDs are strings, lists are
 * arrays and structs/maps are plain objects.
 *
 * Limits: `hyparquet` decodes a row group synchronously and does not bound run lengths in corrupt
 * pages: one corrupt byte in a data page can keep it busy indefinitely, beyond the reach of
 * `signal`. `facts` does not read pages and is not affected.
 *
 * @throws {CairnError} like {@link facts}, and `INVALID_SHARD` when a row group cannot be decoded
 *   (the rows of earlier row groups have been yielded by then). Stops with the abort reason of
 *   `options.signal` between row groups.
 */
export async function* rows(file: string, options: { readonly signal?: AbortSignal } = {}): AsyncIterable<Row> {
  const { signal } = options
  signal?.throwIfAborted()
  const handle = await openFile(file)
  try {
    const { metadata, buffer } = await readFooter(file, handle)
    let start = 0
    for (const group of metadata.row_groups) {
      const end = start + Number(group.num_rows)
      let batch: Row[]
      try {
        batch = await parquetReadObjects({ file: buffer, metadata, rowStart: start, rowEnd: end })
      } catch (e) {
        if (isCairnError(e)) throw e
        throw new CairnError('INVALID_SHARD', `${file}: cannot decode rows ${start}–${end - 1} (${(e as Error).message})`, {
          subject: file,
          cause: e,
        })
      }
      for (const row of batch) yield plainRow(row)
      start = end
      signal?.throwIfAborted()
    }
  } finally {
    await handle.close()
  }
}

async function openFile(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'r')
  } catch (e) {
    throw ioError('open', file, e)
  }
}

/**
 * An {@link AsyncBuffer} over an open file: `slice` reads exactly `[start, end)` from disk.
 *
 * @throws {CairnError} `INVALID_SHARD` for a range outside the file; `FILE_CHANGED` when the file
 *   ends before `end`; `IO` on a read error.
 */
function fileBuffer(file: string, handle: FileHandle, byteLength: number): AsyncBuffer {
  return {
    byteLength,
    async slice(start: number, end: number = byteLength): Promise<ArrayBuffer> {
      if (!(start >= 0 && start <= end && end <= byteLength)) {
        // only a corrupt footer points hyparquet outside the file
        throw new CairnError(
          'INVALID_SHARD',
          `${file}: invalid Parquet metadata (it points at bytes ${start}–${end} of a ${byteLength}-byte file)`,
          {
            subject: file,
          },
        )
      }
      const bytes = new Uint8Array(end - start)
      let done = 0
      while (done < bytes.length) {
        let bytesRead: number
        try {
          ;({ bytesRead } = await handle.read(bytes, done, bytes.length - done, start + done))
        } catch (e) {
          throw ioError('read', file, e)
        }
        if (bytesRead === 0) {
          throw new CairnError(
            'FILE_CHANGED',
            `${file}: file ended at byte ${start + done} (expected ${byteLength} bytes); it changed while being read`,
            {
              subject: file,
            },
          )
        }
        done += bytesRead
      }
      return bytes.buffer
    },
  }
}

/** Checks both magics and the footer length, then decodes exactly the footer's bytes. */
async function readFooter(file: string, handle: FileHandle): Promise<{ metadata: FileMetaData; buffer: AsyncBuffer }> {
  let size: number
  try {
    size = (await handle.stat()).size
  } catch (e) {
    throw ioError('stat', file, e)
  }
  const buffer = fileBuffer(file, handle, size)
  const invalid = (message: string, cause?: unknown): CairnError =>
    new CairnError('INVALID_SHARD', `${file}: ${message}`, { subject: file, cause })

  // smallest file: "PAR1", empty footer length, "PAR1"
  if (size < 12) throw invalid('not a Parquet file (expected magic PAR1 at both ends)')
  const head = new DataView(await buffer.slice(0, 4))
  const tail = new DataView(await buffer.slice(size - 8, size))
  if (head.getUint32(0, true) !== MAGIC) throw invalid('not a Parquet file (expected magic PAR1 at both ends)')
  if (tail.getUint32(4, true) !== MAGIC) throw invalid('truncated Parquet file (expected magic PAR1 at the end)')
  const footerLength = tail.getUint32(0, true)
  if (footerLength > size - 12) {
    throw invalid(`truncated Parquet file (footer length ${footerLength} exceeds the ${size - 12} bytes available)`)
  }
  const footer = await buffer.slice(size - 8 - footerLength, size)
  let metadata: FileMetaData
  try {
    metadata = parquetMetadata(footer)
  } catch (e) {
    throw invalid(`invalid Parquet footer (${(e as Error).message})`, e)
  }
  // thrift decodes whatever a corrupt footer holds; rows() relies on these counts
  let total = 0n
  for (const [i, group] of metadata.row_groups.entries()) {
    const n: unknown = group.num_rows
    if (typeof n !== 'bigint' || n < 0n) throw invalid(`invalid Parquet footer (row group ${i} has num_rows ${String(n)})`)
    total += n
  }
  if (metadata.num_rows !== total) {
    throw invalid(`invalid Parquet footer (num_rows ${String(metadata.num_rows)} does not match the row groups' total ${total})`)
  }
  if (total > MAX_SAFE) throw invalid(`unsupported Parquet file (${total} rows, more than ${MAX_SAFE})`)
  return { metadata, buffer }
}

function fieldsOf(file: string, metadata: FileMetaData): Field[] {
  let root: SchemaTree
  try {
    root = parquetSchema(metadata)
  } catch (e) {
    // a footer whose schema elements do not form a tree (bad num_children)
    throw new CairnError('INVALID_SHARD', `${file}: invalid Parquet schema (${(e as Error).message})`, { subject: file, cause: e })
  }
  return root.children.map(({ element, children }) => ({
    name: element.name,
    type: typeName(element, children.length > 0),
    nullable: element.repetition_type === 'OPTIONAL',
  }))
}

function typeName(element: SchemaElement, group: boolean): string {
  const logical = element.logical_type
  if (logical) {
    switch (logical.type) {
      case 'DECIMAL':
        return `DECIMAL(${logical.precision},${logical.scale})`
      case 'INTEGER':
        return `${logical.isSigned ? 'INT' : 'UINT'}_${logical.bitWidth}`
      case 'TIME':
      case 'TIMESTAMP':
        return `${logical.type}(${logical.unit},${logical.isAdjustedToUTC ? 'UTC' : 'LOCAL'})`
      default:
        return logical.type
    }
  }
  switch (element.converted_type) {
    case undefined:
      break
    case 'UTF8':
      return 'STRING'
    case 'MAP_KEY_VALUE':
      return 'MAP'
    case 'DECIMAL':
      return `DECIMAL(${element.precision},${element.scale ?? 0})`
    case 'TIME_MILLIS':
      return 'TIME(MILLIS,UTC)'
    case 'TIME_MICROS':
      return 'TIME(MICROS,UTC)'
    case 'TIMESTAMP_MILLIS':
      return 'TIMESTAMP(MILLIS,UTC)'
    case 'TIMESTAMP_MICROS':
      return 'TIMESTAMP(MICROS,UTC)'
    default:
      return element.converted_type
  }
  if (element.repetition_type === 'REPEATED') return 'LIST'
  if (group || element.type === undefined) return 'STRUCT'
  if (element.type === 'FIXED_LEN_BYTE_ARRAY') return `FIXED_LEN_BYTE_ARRAY(${element.type_length})`
  return element.type
}

function plainRow(row: Row): Row {
  const out: Row = {}
  for (const key of Object.keys(row)) out[key] = plain(row[key])
  return out
}

function plain(value: unknown): unknown {
  // hyparquet leaves a null struct as undefined
  if (value === undefined) return null
  if (typeof value === 'bigint') return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value.toString()
  if (Array.isArray(value)) return value.map(plain)
  if (value !== null && typeof value === 'object') {
    const proto: unknown = Object.getPrototypeOf(value)
    if (proto === Object.prototype || proto === null) return plainRow(value as Row)
  }
  return value
}
