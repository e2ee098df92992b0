/**
 * The shard format readers, and the choice of one by file name.
 */

import { extname } from 'node:path'
import type { FormatReader } from './interface.js'

export type { Field, FormatName, FormatReader, ReadOptions, Row, ShardFacts, ShardSchema } from './interface.js'

/**
 * A reader whose module loads on first use: the CLI then starts without importing apache-arrow or
 * hyparquet. `name` and `extensions` must equal the module's own (test/formats.test.ts checks).
 */
function lazy(name: FormatReader['name'], extensions: readonly string[], load: () => Promise<FormatReader>): FormatReader {
  return {
    name,
    extensions,
    facts: async (file, options) => (await load()).facts(file, options),
    rows: async function* (file, options) {
      yield* (await load()).rows(file, options)
    },
  }
}

/** Every format reader cairn has. Their `extensions` do not overlap. */
export const readers: readonly FormatReader[] = [
  lazy('parquet', ['.parquet'], () => import('./parquet.js')),
  lazy('arrow', ['.arrow', '.feather', '.ipc', '.arrows'], () => import('./arrow.js')),
  lazy('jsonl', ['.jsonl', '.ndjson'], () => import('./jsonl.js')),
  lazy('csv', ['.csv', '.tsv'], () => import('./csv.js')),
]

const byExtension = new Map(readers.flatMap((r) => r.extensions.map((ext) => [ext, r] as const)))

/**
 * The reader for a file, chosen by its lower-cased extension (`data/A.PARQUET` → Parquet), or
 * `undefined` when no reader claims it (the file is then `bytes`: size only). Looks at the name only;
 * never touches the file.
 */
export function readerFor(path: string): FormatReader | undefined {
  return byExtension.get(extname(path).toLowerCase())
}
