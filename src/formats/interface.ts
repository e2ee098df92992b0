/**
 * The contract every shard format reader fits by shape (`src/formats/parquet.ts`, `arrow.ts`,
 * `jsonl.ts`, `csv.ts`). A reader streams one file from disk and reports its facts: row count and
 * schema. It never holds the whole file in memory.
 */

/** Formats cairn reads facts from. Any other file is `bytes` (size only). */
export type FormatName = 'parquet' | 'arrow' | 'jsonl' | 'csv' | 'bytes'

/** One column of a shard's schema, in the format's own type vocabulary. */
export interface Field {
  readonly name: string
  /** The format's type name, e.g. `Int64`, `Utf8` (Arrow), `INT64`/`STRING` (Parquet), `integer` (JSON). */
  readonly type: string
  readonly nullable: boolean
}

/** The schema of a shard: an ordered list of fields. */
export interface ShardSchema {
  readonly format: FormatName
  readonly fields: readonly Field[]
}

/** What a reader learned about a shard. */
export interface ShardFacts {
  readonly rows: number
  readonly schema: ShardSchema
}

/** One row as a plain object (column name → value). */
export type Row = Record<string, unknown>

export interface ReadOptions {
  /**
   * Called for every row of a text format (JSONL, CSV) with its 1-based line number; throwing from
   * it stops the read and the error propagates unchanged. Binary formats do not call it.
   */
  readonly onRow?: (row: Row, line: number) => void
  readonly signal?: AbortSignal
}

/** A format reader module. */
export interface FormatReader {
  readonly name: Exclude<FormatName, 'bytes'>
  /** Lower-case file name endings this reader claims, with the dot (e.g. `.parquet`). */
  readonly extensions: readonly string[]
  /** Streams the file once and returns its facts. Fails with `CairnError` `INVALID_SHARD` or `INVALID_ROW`. */
  facts(file: string, options?: ReadOptions): Promise<ShardFacts>
  /** Streams the file's rows in order. Fails like {@link FormatReader.facts}. */
  rows(file: string, options?: { readonly signal?: AbortSignal }): AsyncIterable<Row>
}
