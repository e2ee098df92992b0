/**
 * CSV shards (`.csv`, comma-separated) and TSV shards (`.tsv`, tab-separated): UTF-8 (invalid
 * sequences read as U+FFFD), RFC 4180 quoting for both, records ended by `\n` or `\r\n` (a lone `\r`
 * is not a line break). The first record is the header; every other record becomes a row object of
 * strings.
 *
 * Parsing is `csv-parse`'s streaming parser fed from `fs.createReadStream`, so memory is bounded by
 * one record plus the stream buffers. Line numbers are counted here from the bytes the parser
 * consumed, not taken from `csv-parse`'s `info.lines`, which counts a `\r\n` inside a quoted field
 * as two lines.
 */

import { createReadStream } from 'node:fs'
import { extname } from 'node:path'
import { Readable, pipeline } from 'node:stream'
import { CsvError, parse, type Info } from 'csv-parse'
import { CairnError, ioError } from '../errors.js'
import type { Field, ReadOptions, Row, ShardFacts } from './interface.js'

/** The reader's name, as used in manifests (TSV files are `csv` too). */
export const name = 'csv'

/** File name endings this reader claims; `.tsv` files are read with a tab delimiter. */
export const extensions: readonly string[] = ['.csv', '.tsv']

const NEWLINE = 0x0a
const INTEGER = /^[+-]?\d+$/
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/
const BOOLEAN = /^(?:true|false)$/i

/**
 * Streams a CSV/TSV file once, calling `options.onRow` for every record after the header, and
 * returns its row count and inferred schema.
 *
 * Schema: one field per header column, in header order. `type` is `integer` when every non-empty
 * value is an integer (`-12`, `+3`, `007`), `number` when every non-empty value is a decimal number
 * (`1.5`, `.5`, `1e-3`; no `NaN`/`Infinity`, no surrounding spaces), `boolean` when every non-empty
 * value is `true` or `false` (any letter case), and `string` otherwise or when the column has no
 * non-empty value. `nullable` is true when some value is the empty string.
 *
 * The line passed to `onRow` is the 1-based physical line on which the record starts. Empty lines
 * are skipped (and counted), except in a one-column file where an empty line is a record holding one
 * empty value. A UTF-8 byte-order mark is ignored; an empty file has 0 rows and no fields.
 *
 * @throws {CairnError} `INVALID_ROW` (`<file>:<line>: …`) for a record whose field count differs
 *   from the header's, or with broken quoting (the line is where the bad field starts);
 *   `INVALID_SHARD` (`<file>:<line>: …`) for a header with a duplicate column name; `IO` when the
 *   file cannot be read. An error thrown by `onRow` stops the read and propagates unchanged, as does
 *   the abort reason of `options.signal`.
 */
export async function facts(file: string, options: ReadOptions = {}): Promise<ShardFacts> {
  let columns: ColumnStats[] = []
  const onHeader = (names: readonly string[]): void => {
    columns = names.map((name) => ({ name, integer: true, number: true, boolean: true, values: 0, empty: 0 }))
  }
  let rows = 0
  for await (const { row, line } of records(file, options.signal, onHeader)) {
    rows++
    for (const column of columns) observe(column, row[column.name] as string)
    options.onRow?.(row, line)
  }
  return { rows, schema: { format: 'csv', fields: columns.map(toField) } }
}

/**
 * Streams a CSV/TSV file's rows in file order: one object per record, header names to string
 * values (no type conversion).
 *
 * @throws {CairnError} like {@link facts}; the error surfaces when the bad record is reached, after
 *   the rows before it were yielded.
 */
export async function* rows(file: string, options: { readonly signal?: AbortSignal } = {}): AsyncIterable<Row> {
  for await (const { row } of records(file, options.signal)) yield row
}

interface ColumnStats {
  readonly name: string
  integer: boolean
  number: boolean
  boolean: boolean
  /** Non-empty values seen. */
  values: number
  empty: number
}

function observe(column: ColumnStats, value: string): void {
  if (value === '') {
    column.empty++
    return
  }
  column.values++
  if (column.integer && !INTEGER.test(value)) column.integer = false
  if (column.number && !NUMBER.test(value)) column.number = false
  if (column.boolean && !BOOLEAN.test(value)) column.boolean = false
}

function toField(column: ColumnStats): Field {
  const type =
    column.values === 0 ? 'string' : column.integer ? 'integer' : column.number ? 'number' : column.boolean ? 'boolean' : 'string'
  return { name: column.name, type, nullable: column.empty > 0 }
}

async function* records(
  file: string,
  signal: AbortSignal | undefined,
  onHeader?: (names: readonly string[]) => void,
): AsyncGenerator<{ row: Row; line: number }> {
  const lines = new LineIndex()
  // field counts are checked here, not by csv-parse, so that an empty line can be told apart from a
  // ragged record (and read as one empty value in a one-column file)
  const parser = parse({
    delimiter: extname(file).toLowerCase() === '.tsv' ? '\t' : ',',
    // fixed rather than auto-detected from the first line, so a file mixing both still parses
    record_delimiter: ['\r\n', '\n'],
    info: true,
    relax_column_count: true,
  })
  const input = Readable.from(chunks(file, signal, lines))
  // errors reach us through the parser's iterator; the callback only keeps pipeline from throwing
  pipeline(input, parser, () => {})
  let header: string[] | undefined
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: Info }>) {
      const end = lines.lineBefore(info.bytes)
      const line = end - newlinesIn(record)
      if (header === undefined) {
        if (record.length === 1 && record[0] === '') continue
        header = checkHeader(file, record, line)
        onHeader?.(header)
        continue
      }
      if (record.length !== header.length) {
        if (record.length === 1 && record[0] === '') continue
        throw new CairnError(
          'INVALID_ROW',
          `${file}:${line}: expected ${header.length} fields (as in the header), found ${record.length}`,
          {
            subject: file,
          },
        )
      }
      const names = header
      yield { row: Object.fromEntries(record.map((value, i) => [names[i], value])), line }
    }
  } catch (e) {
    if (e instanceof CsvError) throw rowError(file, e, lines, header)
    throw e
  } finally {
    parser.destroy()
    input.destroy()
  }
}

function checkHeader(file: string, names: string[], line: number): string[] {
  const seen = new Set<string>()
  for (const n of names) {
    if (seen.has(n)) {
      throw new CairnError(
        'INVALID_SHARD',
        `${file}:${line}: duplicate column ${JSON.stringify(n)} in the header (expected unique names)`,
        {
          subject: file,
        },
      )
    }
    seen.add(n)
  }
  return names
}

/** The file's bytes, with a leading UTF-8 BOM removed, recorded in `lines` before the parser sees them. */
async function* chunks(file: string, signal: AbortSignal | undefined, lines: LineIndex): AsyncGenerator<Buffer> {
  const stream = createReadStream(file, { signal })
  let first = true
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let bytes = chunk
      if (first) {
        first = false
        // a BOM split across chunks is not worth handling: the first chunk is 64 KiB
        if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3)
      }
      lines.add(bytes)
      yield bytes
    }
  } catch (e) {
    throw signal?.aborted ? signal.reason : ioError('read', file, e)
  } finally {
    stream.destroy()
  }
}

/** Words a csv-parse error; its own message counts lines its own way, so only its code is used. */
function rowError(file: string, e: CsvError, lines: LineIndex, header: readonly string[] | undefined): CairnError {
  const at = typeof e.bytes === 'number' ? lines.lineBefore(e.bytes) : undefined
  const where = at === undefined ? file : `${file}:${at}`
  const index = typeof e.index === 'number' ? e.index : undefined
  const column = index === undefined ? '' : header?.[index] !== undefined ? ` ${JSON.stringify(header[index])}` : ` ${index + 1}`
  let message: string
  switch (e.code) {
    case 'CSV_QUOTE_NOT_CLOSED':
      message = `quoted field${column} not closed (expected a closing quote before the end of the file)`
      break
    case 'CSV_INVALID_CLOSING_QUOTE':
      message = `unexpected character after the closing quote of field${column} (expected a delimiter or the end of the line)`
      break
    case 'INVALID_OPENING_QUOTE':
      message = `quote inside unquoted field${column} (expected quotes around the whole field, with inner quotes doubled)`
      break
    default:
      message = `invalid CSV (${e.message})`
  }
  return new CairnError('INVALID_ROW', `${where}: ${message}`, { subject: file, cause: e })
}

function newlinesIn(values: readonly string[]): number {
  let n = 0
  for (const v of values) for (let i = v.indexOf('\n'); i !== -1; i = v.indexOf('\n', i + 1)) n++
  return n
}

/**
 * Maps the parser's byte offsets to physical line numbers. Offsets are asked in increasing order, so
 * a cursor walks the buffered chunks once and drops them behind it.
 */
class LineIndex {
  private readonly chunks: Buffer[] = []
  /** Absolute offset of `chunks[0]`. */
  private chunkStart = 0
  /** Bytes before `pos` have been counted into `newlines`. */
  private pos = 0
  private newlines = 0

  add(chunk: Buffer): void {
    if (chunk.length > 0) this.chunks.push(chunk)
  }

  /** The 1-based line holding byte `offset - 1`, the last byte consumed when the parser reports `offset`. */
  lineBefore(offset: number): number {
    const target = offset - 1
    while (this.pos < target && this.chunks.length > 0) {
      const chunk = this.chunks[0]
      const from = this.pos - this.chunkStart
      const to = Math.min(chunk.length, target - this.chunkStart)
      for (let i = chunk.indexOf(NEWLINE, from); i !== -1 && i < to; i = chunk.indexOf(NEWLINE, i + 1)) this.newlines++
      this.pos = this.chunkStart + to
      if (to === chunk.length) {
        this.chunks.shift()
        this.chunkStart += chunk.length
      }
    }
    return this.newlines + 1
  }
}
