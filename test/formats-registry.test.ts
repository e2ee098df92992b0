// The registry in src/formats/index.ts loads readers lazily; its names and extensions must be the
// modules' own.
import { describe, expect, it } from 'vitest'
import * as arrow from '../src/formats/arrow.js'
import * as csv from '../src/formats/csv.js'
import { readerFor, readers } from '../src/formats/index.js'
import * as jsonl from '../src/formats/jsonl.js'
import * as parquet from '../src/formats/parquet.js'

describe('format registry', () => {
  it.each([parquet, arrow, jsonl, csv].map((m) => [m.name, m] as const))('%s: lazy entry matches the module', (name, mod) => {
    const entry = readers.find((r) => r.name === name)
    expect(entry?.extensions).toEqual(mod.extensions)
  })

  it.each([
    ['data/A.PARQUET', 'parquet'],
    ['x.arrows', 'arrow'],
    ['t/part-0.jsonl', 'jsonl'],
    ['table.tsv', 'csv'],
    ['README.md', undefined],
  ])('readerFor(%s) is %s', (path, name) => {
    expect(readerFor(path)?.name).toBe(name)
  })
})
