/**
 * JSON Lines shards (`.jsonl`, `.ndjson`): one JSON object per line, UTF-8.
 *
 * The file is streamed with `fs.createReadStream` and split on `\n` by hand, so at most one line (plus
 * the inferred schema) is in memory at a time, and line numbers are physical line numbers.
 */

import { createReadStream } from 'node:fs'
import { CairnError, ioError } from '../errors.js'
import type { Field, ReadOptions, Row, ShardFacts } from './interface.js'

/** The reader's name, as used in manifests. */
export const name = 'jsonl'

/** File name endings this reader claims. */
export const extensions: readonly string[] = ['.jsonl', '.ndjson']

const NEWLINE = 0x0a
const CR = 0x0d

/** The JSON type names {@link facts} reports (plus `null` for a field that was only ever null). */
type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | 'null'

/**
 * Streams a JSONL file once, calling `options.onRow` for every row, and returns its row count and
 * inferred schema.
 *
 * Schema: fields in order of first appearance. `type` is the JSON type seen for the field
 * (`string`, `integer`, `number`, `boolean`, `object`, `array`); a number is `integer` when its
 * value is integral (so `1.0` counts as `integer`), and `integer` together with `number` gives
 * `number`. Other mixes are the sorted names joined with `|` (`integer|string`). A field that was
 * only ever `null` has type `null`. `nullable` is true when the field was `null` or missing in at
 * least one row.
 *
 * Blank (empty or whitespace-only) lines are skipped but still counted for line numbers; `\r\n`
 * line endings and a last line without a newline are accepted; a UTF-8 byte-order mark on the first
 * line is ignored.
 *
 * @throws {CairnError} `INVALID_ROW` (`<file>:<line>: …`) for a line that is not valid UTF-8, not
 *   valid JSON, or not a JSON object; `IO` when the file cannot be read. An error thrown by
 *   `onRow` stops the read and propagates unchanged, as does the abort reason of `options.signal`.
 */
export async function facts(file: string, options: ReadOptions = {}): Promise<ShardFacts> {
  const schema = new SchemaBuilder()
  let rows = 0
  for await (const { row, line } of parsedLines(file, options.signal)) {
    rows++
    schema.add(row)
    options.onRow?.(row, line)
  }
  return { rows, schema: { format: 'jsonl', fields: schema.fields(rows) } }
}

/**
 * Streams a JSONL file's rows in file order, as parsed by `JSON.parse`.
 *
 * @throws {CairnError} like {@link facts}; the error surfaces when the bad line is reached, after
 *   the rows before it were yielded.
 */
export async function* rows(file: string, options: { readonly signal?: AbortSignal } = {}): AsyncIterable<Row> {
  for await (const { row } of parsedLines(file, options.signal)) yield row
}

async function* parsedLines(file: string, signal: AbortSignal | undefined): AsyncGenerator<{ row: Row; line: number }> {
  for await (const { text, line } of lines(file, signal)) {
    if (text.trim() === '') continue
    yield { row: parseRow(file, text, line), line }
  }
}

function parseRow(file: string, text: string, line: number): Row {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new CairnError('INVALID_ROW', `${file}:${line}: invalid JSON (${(e as Error).message})`, {
      subject: file,
      cause: e,
    })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CairnError('INVALID_ROW', `${file}:${line}: expected a JSON object, found ${jsonType(value)}`, {
      subject: file,
    })
  }
  return value as Row
}

/** Yields the file's physical lines (without `\n` / `\r\n`), numbered from 1. */
async function* lines(file: string, signal: AbortSignal | undefined): AsyncGenerator<{ text: string; line: number }> {
  // ignoreBOM keeps a BOM in the text, so only the one at the start of the file is dropped (below)
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
  const decode = (parts: Buffer[], line: number): string => {
    let bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts)
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1)
    let text: string
    try {
      text = decoder.decode(bytes)
    } catch (e) {
      throw new CairnError('INVALID_ROW', `${file}:${line}: invalid UTF-8 (expected UTF-8 encoded JSON)`, {
        subject: file,
        cause: e,
      })
    }
    return line === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  }

  const stream = createReadStream(file, { signal })
  const chunks = stream[Symbol.asyncIterator]()
  let pending: Buffer[] = []
  let line = 0
  try {
    for (;;) {
      let next: IteratorResult<Buffer>
      try {
        next = await chunks.next()
      } catch (e) {
        throw signal?.aborted ? signal.reason : ioError('read', file, e)
      }
      if (next.done) break
      const chunk = next.value
      let start = 0
      for (let nl = chunk.indexOf(NEWLINE); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
        pending.push(chunk.subarray(start, nl))
        line++
        const text = decode(pending, line)
        pending = []
        start = nl + 1
        yield { text, line }
        signal?.throwIfAborted()
      }
      if (start < chunk.length) pending.push(chunk.subarray(start))
    }
    if (pending.length > 0) {
      line++
      yield { text: decode(pending, line), line }
    }
  } finally {
    stream.destroy()
  }
}

function jsonType(value: unknown): JsonType {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  switch (typeof value) {
    case 'string':
      return 'string'
    case 'boolean':
      return 'boolean'
    case 'number':
      return Number.isInteger(value) ? 'integer' : 'number'
    default:
      return 'object'
  }
}

interface FieldStats {
  readonly types: Set<JsonType>
  /** Rows where the field was present and not null. */
  valued: number
}

/** Accumulates the schema row by row; memory is one entry per distinct field name. */
class SchemaBuilder {
  private readonly stats = new Map<string, FieldStats>()

  add(row: Row): void {
    for (const [key, value] of Object.entries(row)) {
      let stats = this.stats.get(key)
      if (stats === undefined) {
        stats = { types: new Set(), valued: 0 }
        this.stats.set(key, stats)
      }
      if (value === null) continue
      stats.types.add(jsonType(value))
      stats.valued++
    }
  }

  fields(rows: number): Field[] {
    return [...this.stats].map(([name, { types, valued }]) => ({
      name,
      type: typeName(types),
      nullable: valued < rows,
    }))
  }
}

function typeName(types: Set<JsonType>): string {
  if (types.size === 0) return 'null'
  const names = new Set(types)
  if (names.has('integer') && names.has('number')) names.delete('integer')
  return [...names].sort().join('|')
}
