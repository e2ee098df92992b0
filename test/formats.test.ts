import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises'
import { createWriteStream } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  Bool,
  DateDay,
  Dictionary,
  Field as ArrowField,
  FixedSizeBinary,
  Int32,
  Int64,
  LargeUtf8,
  List,
  Map_,
  Null,
  RecordBatch,
  Schema,
  Struct,
  Table,
  TimestampMillisecond,
  Utf8,
  makeData,
  tableFromArrays,
  tableFromJSON,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { CairnError } from '../src/errors.js'
import * as arrow from '../src/formats/arrow.js'
import * as csv from '../src/formats/csv.js'
import { readerFor, readers } from '../src/formats/index.js'
import type { Field, FormatReader, Row } from '../src/formats/interface.js'
import * as jsonl from '../src/formats/jsonl.js'
import * as parquet from '../src/formats/parquet.js'

let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-formats-'))
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Writes a fixture into the temp dir and returns its path. */
async function fixture(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, content)
  return path
}

async function collect(iterable: AsyncIterable<Row>): Promise<Row[]> {
  const out: Row[] = []
  for await (const row of iterable) out.push(row)
  return out
}

async function failure(promise: Promise<unknown>): Promise<CairnError> {
  try {
    await promise
  } catch (e) {
    expect(e).toBeInstanceOf(CairnError)
    return e as CairnError
  }
  throw new Error('expected a failure')
}

/** Node's own message for a line JSON.parse rejects (it differs between Node versions). */
function parseMessage(text: string): string {
  try {
    JSON.parse(text)
  } catch (e) {
    return (e as Error).message
  }
  throw new Error(`${text} parses`)
}

const f = (name: string, type: string, nullable = false): Field => ({ name, type, nullable })

describe('readerFor', () => {
  it.each([
    ['data/a.parquet', 'parquet'],
    ['data/A.PARQUET', 'parquet'],
    ['x.arrow', 'arrow'],
    ['x.feather', 'arrow'],
    ['x.ipc', 'arrow'],
    ['x.arrows', 'arrow'],
    ['x.jsonl', 'jsonl'],
    ['x.NDJSON', 'jsonl'],
    ['x.csv', 'csv'],
    ['x.tsv', 'csv'],
    ['x.json', undefined],
    ['x.parquet.gz', undefined],
    ['README', undefined],
    ['.jsonl', undefined],
  ])('%s → %s', (path, expected) => {
    expect(readerFor(path)?.name).toBe(expected)
  })

  it('lists each reader once with disjoint extensions', () => {
    expect(readers.map((r) => r.name)).toEqual(['parquet', 'arrow', 'jsonl', 'csv'])
    const all = readers.flatMap((r) => r.extensions)
    expect(new Set(all).size).toBe(all.length)
  })
})

describe('jsonl', () => {
  it('reads rows with CRLF, blank lines and a last line without newline', async () => {
    const file = await fixture('basic.jsonl', '{"id":1,"name":"a"}\r\n\r\n{"id":2,"name":null,"x":1.5}\n   \n{"id":3,"x":2}')
    const seen: [Row, number][] = []
    const facts = await jsonl.facts(file, { onRow: (row, line) => seen.push([row, line]) })
    expect(facts).toEqual({
      rows: 3,
      schema: { format: 'jsonl', fields: [f('id', 'integer'), f('name', 'string', true), f('x', 'number', true)] },
    })
    expect(seen.map(([, line]) => line)).toEqual([1, 3, 5])
    expect(await collect(jsonl.rows(file))).toEqual([
      { id: 1, name: 'a' },
      { id: 2, name: null, x: 1.5 },
      { id: 3, x: 2 },
    ])
  })

  it.each<[string, string[], Field[]]>([
    ['integer only', ['{"a":1}', '{"a":-2}', '{"a":3.0}'], [f('a', 'integer')]],
    ['integer + number → number', ['{"a":1}', '{"a":1.5}'], [f('a', 'number')]],
    ['mixed types sorted', ['{"a":"x"}', '{"a":1}', '{"a":true}'], [f('a', 'boolean|integer|string')]],
    ['number absorbs integer in a mix', ['{"a":1}', '{"a":0.5}', '{"a":"s"}'], [f('a', 'number|string')]],
    ['object and array', ['{"o":{"k":1},"l":[1]}'], [f('o', 'object'), f('l', 'array')]],
    ['null only', ['{"a":null}'], [f('a', 'null', true)]],
    ['missing in a later row', ['{"a":1,"b":2}', '{"a":1}'], [f('a', 'integer'), f('b', 'integer', true)]],
    ['missing in an earlier row', ['{"a":1}', '{"b":"x","a":2}'], [f('a', 'integer'), f('b', 'string', true)]],
    ['order of first appearance', ['{"z":1}', '{"a":1,"z":2}'], [f('z', 'integer'), f('a', 'integer', true)]],
    ['empty object rows', ['{}', '{}'], []],
  ])('infers the schema: %s', async (label, lines, fields) => {
    const file = await fixture(`schema-${label.replace(/\W+/g, '-')}.jsonl`, lines.join('\n') + '\n')
    const facts = await jsonl.facts(file)
    expect(facts.rows).toBe(lines.length)
    expect(facts.schema.fields).toEqual(fields)
  })

  it('reads an empty file as no rows', async () => {
    const file = await fixture('empty.jsonl', '')
    expect(await jsonl.facts(file)).toEqual({ rows: 0, schema: { format: 'jsonl', fields: [] } })
  })

  it('ignores a byte-order mark at the start', async () => {
    const file = await fixture('bom.jsonl', '\ufeff{"a":1}\n')
    expect(await collect(jsonl.rows(file))).toEqual([{ a: 1 }])
  })

  it.each<[string, string | Uint8Array, (file: string) => string]>([
    ['bad JSON', '{"a":1}\n\n{"a":}\n', (p) => `${p}:3: invalid JSON (${parseMessage('{"a":}')})`],
    ['bad JSON after CRLF', '{"a":1}\r\n{"a":1,}\r\n', (p) => `${p}:2: invalid JSON (${parseMessage('{"a":1,}')})`],
    ['truncated last line', '{"a":1}\n{"a":', (p) => `${p}:2: invalid JSON (${parseMessage('{"a":')})`],
    ['array row', '[1,2]\n', (p) => `${p}:1: expected a JSON object, found array`],
    ['number row', '{"a":1}\n42\n', (p) => `${p}:2: expected a JSON object, found integer`],
    ['null row', 'null\n', (p) => `${p}:1: expected a JSON object, found null`],
    ['string row', '"x"\n', (p) => `${p}:1: expected a JSON object, found string`],
    [
      'invalid UTF-8',
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d, 0x0a]),
      (p) => `${p}:1: invalid UTF-8 (expected UTF-8 encoded JSON)`,
    ],
  ])('rejects %s with INVALID_ROW naming file:line', async (label, content, message) => {
    const file = await fixture(`bad-${label.replace(/\W+/g, '-')}.jsonl`, content)
    const e = await failure(jsonl.facts(file))
    expect(e.code).toBe('INVALID_ROW')
    expect(e.message).toBe(message(file))
    expect(e.subject).toBe(file)
    const e2 = await failure(collect(jsonl.rows(file)))
    expect(e2.message).toBe(message(file))
  })

  it('reads ~200k lines in one pass and counts them', async () => {
    const file = join(dir, 'big.jsonl')
    const out = createWriteStream(file)
    const n = 200_000
    for (let i = 0; i < n; i++) {
      if (!out.write(`{"id":${i},"name":"row ${i}","v":${i % 7 === 0 ? 'null' : i / 4}}\n`)) await once(out, 'drain')
    }
    out.end()
    await once(out, 'finish')
    let last = 0
    const facts = await jsonl.facts(file, { onRow: (_row, line) => (last = line) })
    expect(facts.rows).toBe(n)
    expect(last).toBe(n)
    expect(facts.schema.fields).toEqual([f('id', 'integer'), f('name', 'string'), f('v', 'number', true)])
  })
})

describe('csv', () => {
  it('reads rows and infers column types', async () => {
    const file = await fixture('basic.csv', 'id,score,ok,name,blank,mixed\n1,1.5,true,a,,1\n-2,2,FALSE,"b, c",,x\n+3,1e3,true,,,2\n')
    const lines: number[] = []
    const facts = await csv.facts(file, { onRow: (_row, line) => lines.push(line) })
    expect(facts).toEqual({
      rows: 3,
      schema: {
        format: 'csv',
        fields: [
          f('id', 'integer'),
          f('score', 'number'),
          f('ok', 'boolean'),
          f('name', 'string', true),
          f('blank', 'string', true),
          f('mixed', 'string'),
        ],
      },
    })
    expect(lines).toEqual([2, 3, 4])
    expect(await collect(csv.rows(file))).toEqual([
      { id: '1', score: '1.5', ok: 'true', name: 'a', blank: '', mixed: '1' },
      { id: '-2', score: '2', ok: 'FALSE', name: 'b, c', blank: '', mixed: 'x' },
      { id: '+3', score: '1e3', ok: 'true', name: '', blank: '', mixed: '2' },
    ])
  })

  it.each<[string, string[], Field]>([
    ['integers with empties', ['1', '', '007'], f('c', 'integer', true)],
    ['numbers', ['1', '.5', '-2.5e-3'], f('c', 'number')],
    ['spaces make strings', [' 1', '2'], f('c', 'string')],
    ['NaN is a string', ['NaN', '1'], f('c', 'string')],
    ['booleans', ['True', 'false'], f('c', 'boolean')],
    ['booleans and integers', ['true', '1'], f('c', 'string')],
    ['all empty', ['', '""'], f('c', 'string', true)],
  ])('infers %s', async (label, values, field) => {
    const file = await fixture(`type-${label.replace(/\W+/g, '-')}.csv`, ['c', ...values].join('\n') + '\n')
    expect((await csv.facts(file)).schema.fields).toEqual([field])
  })

  it('counts physical lines across CRLF, empty lines and quoted newlines', async () => {
    const file = await fixture('lines.csv', 'a,b\r\n1,2\r\n\r\n3,"é\r\nü"\r\n5,6\r\n\r\n7,"p\r\n\r\nq"\r\n8,9')
    const seen: [Row, number][] = []
    const facts = await csv.facts(file, { onRow: (row, line) => seen.push([row, line]) })
    expect(facts.rows).toBe(5)
    expect(seen).toEqual([
      [{ a: '1', b: '2' }, 2],
      [{ a: '3', b: 'é\r\nü' }, 4],
      [{ a: '5', b: '6' }, 6],
      [{ a: '7', b: 'p\r\n\r\nq' }, 8],
      [{ a: '8', b: '9' }, 11],
    ])
  })

  it('accepts a file mixing LF and CRLF line endings', async () => {
    const file = await fixture('mixed.csv', 'a,b\n1,2\r\n3,4\n')
    expect(await collect(csv.rows(file))).toEqual([
      { a: '1', b: '2' },
      { a: '3', b: '4' },
    ])
  })

  it('reads an empty line of a one-column file as an empty value', async () => {
    const file = await fixture('one-column.csv', 'c\n1\n\n2\n')
    const lines: number[] = []
    expect(await csv.facts(file, { onRow: (_row, line) => lines.push(line) })).toEqual({
      rows: 3,
      schema: { format: 'csv', fields: [f('c', 'integer', true)] },
    })
    expect(lines).toEqual([2, 3, 4])
  })

  it('reads TSV with a tab delimiter and ignores a BOM', async () => {
    const file = await fixture('basic.tsv', '\ufeffa\tb\n1\tx,y\n')
    expect(await csv.facts(file)).toEqual({ rows: 1, schema: { format: 'csv', fields: [f('a', 'integer'), f('b', 'string')] } })
    expect(await collect(csv.rows(file))).toEqual([{ a: '1', b: 'x,y' }])
  })

  it.each([
    ['header only', 'a,b\n', { rows: 0, schema: { format: 'csv', fields: [f('a', 'string'), f('b', 'string')] } }],
    ['empty file', '', { rows: 0, schema: { format: 'csv', fields: [] } }],
  ])('reads %s', async (label, content, expected) => {
    const file = await fixture(`${label.replace(/\W+/g, '-')}.csv`, content)
    expect(await csv.facts(file)).toEqual(expected)
  })

  it.each<[string, string, string, (file: string) => string]>([
    ['too few fields', 'a,b,c\n1,2,3\n\n4,5\n', 'INVALID_ROW', (p) => `${p}:4: expected 3 fields (as in the header), found 2`],
    ['too many fields', 'a,b\n1,2\n3,4,5', 'INVALID_ROW', (p) => `${p}:3: expected 2 fields (as in the header), found 3`],
    [
      'ragged after a multi-line field',
      'a,b\r\n1,"x\r\ny",z\r\n',
      'INVALID_ROW',
      (p) => `${p}:2: expected 2 fields (as in the header), found 3`,
    ],
    [
      'unclosed quote',
      'a,b\n1,2\n3,"x\ny\n',
      'INVALID_ROW',
      (p) => `${p}:3: quoted field "b" not closed (expected a closing quote before the end of the file)`,
    ],
    [
      'text after closing quote',
      'a,b\n1,"x"y\n',
      'INVALID_ROW',
      (p) => `${p}:2: unexpected character after the closing quote of field "b" (expected a delimiter or the end of the line)`,
    ],
    [
      'quote in unquoted field',
      'a,b\n1,2\n3,x"y\n',
      'INVALID_ROW',
      (p) => `${p}:3: quote inside unquoted field "b" (expected quotes around the whole field, with inner quotes doubled)`,
    ],
    [
      'quote error in the header',
      'a,b"\n1,2\n',
      'INVALID_ROW',
      (p) => `${p}:1: quote inside unquoted field 2 (expected quotes around the whole field, with inner quotes doubled)`,
    ],
    [
      'empty line in a multi-column file is skipped, a lone value is not',
      'a,b\n\n1,2\n3\n',
      'INVALID_ROW',
      (p) => `${p}:4: expected 2 fields (as in the header), found 1`,
    ],
    ['duplicate header', '\na,b,a\n1,2,3\n', 'INVALID_SHARD', (p) => `${p}:2: duplicate column "a" in the header (expected unique names)`],
  ])('rejects %s', async (label, content, code, message) => {
    const file = await fixture(`bad-${label.replace(/\W+/g, '-')}.csv`, content)
    const e = await failure(csv.facts(file))
    expect([e.code, e.message]).toEqual([code, message(file)])
    expect(e.subject).toBe(file)
    const e2 = await failure(collect(csv.rows(file)))
    expect(e2.message).toBe(message(file))
  })
})

describe('text formats: onRow', () => {
  it.each<[string, FormatReader, string]>([
    ['jsonl', jsonl as FormatReader, '{"a":1}\n{"a":2}\n{"a":3}\n{"a":4}\n{"a":5}\n'],
    ['csv', csv as FormatReader, 'a\n1\n2\n3\n4\n5\n'],
  ])('%s: an error thrown by onRow stops the read and propagates unchanged', async (ext, reader, content) => {
    const file = await fixture(`stop.${ext}`, content)
    const boom = new Error('stop here')
    let calls = 0
    const read = reader.facts(file, {
      onRow: () => {
        if (++calls === 3) throw boom
      },
    })
    await expect(read).rejects.toBe(boom)
    expect(calls).toBe(3)
  })
})

describe('parquet', () => {
  let file: string

  beforeAll(async () => {
    const bytes = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: [1n, 2n, 9007199254740993n, -4n], type: 'INT64', nullable: false },
        { name: 'name', data: ['a', null, 'c', 'd'], type: 'STRING' },
        { name: 'x', data: [1.5, 2, 3, null], type: 'DOUBLE' },
        { name: 'ok', data: [true, false, null, true], type: 'BOOLEAN' },
        { name: 'ts', data: [new Date(0), new Date(1000), null, new Date(2000)], type: 'TIMESTAMP' },
      ],
      rowGroupSize: 3,
    })
    file = await fixture('basic.parquet', new Uint8Array(bytes))
  })

  it('reads num_rows and the schema from the footer', async () => {
    let calls = 0
    expect(await parquet.facts(file, { onRow: () => calls++ })).toEqual({
      rows: 4,
      schema: {
        format: 'parquet',
        fields: [
          f('id', 'INT64'),
          f('name', 'STRING', true),
          f('x', 'DOUBLE', true),
          f('ok', 'BOOLEAN', true),
          f('ts', 'TIMESTAMP(MILLIS,UTC)', true),
        ],
      },
    })
    expect(calls).toBe(0)
  })

  it('streams rows across row groups, with bigints made safe', async () => {
    expect(await collect(parquet.rows(file))).toEqual([
      { id: 1, name: 'a', x: 1.5, ok: true, ts: new Date(0) },
      { id: 2, name: null, x: 2, ok: false, ts: new Date(1000) },
      { id: '9007199254740993', name: 'c', x: 3, ok: null, ts: null },
      { id: -4, name: 'd', x: null, ok: true, ts: new Date(2000) },
    ])
  })

  it('names logical, converted and group types', async () => {
    const bytes = parquetWriteBuffer({
      columnData: [
        { name: 'd', data: [1, 2] },
        { name: 'i8', data: [1, -2] },
        { name: 'ts', data: [1n, null] },
        { name: 'dec', data: [150, 225] },
        { name: 'fix', data: [new Uint8Array([1, 2, 3, 4]), new Uint8Array([5, 6, 7, 8])] },
        { name: 'u', data: [new Uint8Array(16), null] },
        { name: 'l', data: [[1n, 2n], []] },
        { name: 's', data: [{ a: 1 }, null] },
      ],
      schema: [
        { name: 'root', num_children: 8 },
        { name: 'd', type: 'INT32', repetition_type: 'REQUIRED', logical_type: { type: 'DATE' }, converted_type: 'DATE' },
        { name: 'i8', type: 'INT32', repetition_type: 'REQUIRED', logical_type: { type: 'INTEGER', bitWidth: 8, isSigned: true } },
        {
          name: 'ts',
          type: 'INT64',
          repetition_type: 'OPTIONAL',
          logical_type: { type: 'TIMESTAMP', unit: 'MICROS', isAdjustedToUTC: false },
        },
        { name: 'dec', type: 'INT32', repetition_type: 'REQUIRED', converted_type: 'DECIMAL', precision: 9, scale: 2 },
        { name: 'fix', type: 'FIXED_LEN_BYTE_ARRAY', type_length: 4, repetition_type: 'REQUIRED' },
        { name: 'u', type: 'FIXED_LEN_BYTE_ARRAY', type_length: 16, repetition_type: 'OPTIONAL', logical_type: { type: 'UUID' } },
        { name: 'l', repetition_type: 'OPTIONAL', converted_type: 'LIST', logical_type: { type: 'LIST' }, num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'INT64', repetition_type: 'REQUIRED' },
        { name: 's', repetition_type: 'OPTIONAL', num_children: 1 },
        { name: 'a', type: 'INT32', repetition_type: 'REQUIRED' },
      ],
    })
    const typed = await fixture('typed.parquet', new Uint8Array(bytes))
    expect((await parquet.facts(typed)).schema.fields).toEqual([
      f('d', 'DATE'),
      f('i8', 'INT_8'),
      f('ts', 'TIMESTAMP(MICROS,LOCAL)', true),
      f('dec', 'DECIMAL(9,2)'),
      f('fix', 'FIXED_LEN_BYTE_ARRAY(4)'),
      f('u', 'UUID', true),
      f('l', 'LIST', true),
      f('s', 'STRUCT', true),
    ])
    const rows = await collect(parquet.rows(typed))
    expect(rows.map((r) => [r.l, r.s])).toEqual([
      [[1, 2], { a: 1 }],
      [[], null],
    ])
  })

  it('never reads more than the magic and the footer for facts', async () => {
    // a file whose data pages are garbage still has readable facts: only the ends are read
    const bytes = new Uint8Array(await readFile(file))
    const footerStart = bytes.length - 8 - new DataView(bytes.buffer, bytes.byteOffset).getUint32(bytes.length - 8, true)
    const scrambled = bytes.slice()
    scrambled.fill(0x55, 4, footerStart)
    const path = await fixture('scrambled.parquet', scrambled)
    expect((await parquet.facts(path)).rows).toBe(4)
    const e = await failure(collect(parquet.rows(path)))
    expect(e.code).toBe('INVALID_SHARD')
    expect(e.message).toMatch(new RegExp(`^${escape(path)}: cannot decode rows 0–2 \\(.+\\)$`))
  })

  const notParquet = (p: string): string => `${p}: not a Parquet file (expected magic PAR1 at both ends)`
  it.each<[string, (good: Uint8Array) => Uint8Array, (file: string, bad: Uint8Array) => string]>([
    ['not Parquet', () => new TextEncoder().encode('id,name\n1,a\n2,b\n'), notParquet],
    ['empty', () => new Uint8Array(0), notParquet],
    ['too short', () => new TextEncoder().encode('PAR1PAR1'), notParquet],
    ['bad leading magic', (g) => Uint8Array.from(g, (b, i) => (i === 0 ? 0x51 : b)), notParquet],
    ['truncated', (g) => g.slice(0, g.length - 10), (p) => `${p}: truncated Parquet file (expected magic PAR1 at the end)`],
    ['truncated to the magic', (g) => g.slice(0, 4), notParquet],
    [
      'footer length too large',
      (g) => {
        const b = g.slice()
        new DataView(b.buffer).setUint32(b.length - 8, b.length, true)
        return b
      },
      (p, bad) => `${p}: truncated Parquet file (footer length ${bad.length} exceeds the ${bad.length - 12} bytes available)`,
    ],
  ])('rejects %s with INVALID_SHARD', async (label, corrupt, message) => {
    const bad = corrupt(new Uint8Array(await readFile(file)))
    const path = await fixture(`bad-${label.replace(/\W+/g, '-')}.parquet`, bad)
    for (const read of [() => parquet.facts(path), () => collect(parquet.rows(path))]) {
      const e = await failure(read())
      expect([e.code, e.message, e.subject]).toEqual(['INVALID_SHARD', message(path, bad), path])
    }
  })

  it('rejects a footer whose num_rows differs from its row groups', async () => {
    const bytes = parquetWriteBuffer({ columnData: [{ name: 'a', data: [1, 2, 3], type: 'INT32' }] })
    const { parquetMetadata } = await import('hyparquet')
    expect(parquetMetadata(bytes).num_rows).toBe(3n)
    // num_rows is the only field holding the zigzag varint 3 (0x06) right after its field header (0x16)
    const good = new Uint8Array(bytes)
    const footerStart = good.length - 8 - new DataView(bytes).getUint32(good.length - 8, true)
    const at = good.findIndex((b, i) => i > footerStart && good[i - 1] === 0x16 && b === 0x06)
    const bad = good.slice()
    bad[at] = 0x0a
    const path = await fixture('bad-num-rows.parquet', bad)
    const e = await failure(parquet.facts(path))
    expect([e.code, e.message]).toEqual([
      'INVALID_SHARD',
      `${path}: invalid Parquet footer (num_rows 5 does not match the row groups' total 3)`,
    ])
  })

  it('rejects a corrupt footer with INVALID_SHARD', async () => {
    const good = new Uint8Array(await readFile(file))
    const footerLength = new DataView(good.buffer, good.byteOffset).getUint32(good.length - 8, true)
    const bad = good.slice()
    bad.fill(0xff, bad.length - 8 - footerLength, bad.length - 8)
    const path = await fixture('bad-footer.parquet', bad)
    const e = await failure(parquet.facts(path))
    expect(e.code).toBe('INVALID_SHARD')
    expect(e.message.startsWith(`${path}: invalid Parquet`)).toBe(true)
  })
})

describe('arrow', () => {
  // Utf8, not the default dictionary: the IPC file format cannot hold a dictionary that changes between batches
  const part = (ids: bigint[], names: (string | null)[], xs: number[]): Table =>
    new Table({
      id: vectorFromArray(BigInt64Array.from(ids)),
      name: vectorFromArray(names, new Utf8()),
      x: vectorFromArray(Float64Array.from(xs)),
    })
  const table = part([1n, 2n, 9007199254740993n], ['a', null, 'c'], [1.5, 2, 3])
  const twoBatches = table.concat(part([4n], ['d'], [4]))
  const fields = [f('id', 'Int64'), f('name', 'Utf8', true), f('x', 'Float64')]
  const expectedRows = [
    { id: 1, name: 'a', x: 1.5 },
    { id: 2, name: null, x: 2 },
    { id: '9007199254740993', name: 'c', x: 3 },
    { id: 4, name: 'd', x: 4 },
  ]

  it.each([
    ['file.arrow', 'file'],
    ['file.feather', 'file'],
    ['file.ipc', 'file'],
    ['stream.arrows', 'stream'],
    ['file-in-stream-ext.arrows', 'file'],
    ['stream-in-file-ext.arrow', 'stream'],
  ] as const)('%s (%s format): facts and rows, batch by batch', async (name, format) => {
    expect(twoBatches.batches.length).toBe(2)
    const path = await fixture(name, tableToIPC(twoBatches, format))
    let calls = 0
    expect(await arrow.facts(path, { onRow: () => calls++ })).toEqual({ rows: 4, schema: { format: 'arrow', fields } })
    expect(calls).toBe(0)
    expect(await collect(arrow.rows(path))).toEqual(expectedRows)
  })

  it('makes nested values plain', async () => {
    const nested = tableFromJSON([
      { s: { a: 1, b: 'x' }, l: [1, 2] },
      { s: null, l: null },
    ])
    const path = await fixture('nested.arrow', tableToIPC(nested, 'file'))
    const facts = await arrow.facts(path)
    expect(facts.schema.fields).toEqual([f('s', 'Struct<{a:Float64, b:Dictionary<Int32, Utf8>}>', true), f('l', 'List<Float64>', true)])
    expect(await collect(arrow.rows(path))).toEqual([
      { s: { a: 1, b: 'x' }, l: [1, 2] },
      { s: null, l: null },
    ])
  })

  it.each(['file', 'stream'] as const)('reads many column types without false corruption errors (%s)', async (format) => {
    const n = 20
    const of = <T>(make: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => make(i))
    const many = new Table({
      bool: vectorFromArray(
        of((i) => (i % 3 === 0 ? null : i % 2 === 0)),
        new Bool(),
      ),
      nulls: vectorFromArray(
        of(() => null),
        new Null(),
      ),
      allNull: vectorFromArray(
        of(() => null),
        new Int32(),
      ),
      large: vectorFromArray(
        of((i) => `L${i}`),
        new LargeUtf8(),
      ),
      fixed: vectorFromArray(
        of((i) => new Uint8Array([i, i])),
        new FixedSizeBinary(2),
      ),
      day: vectorFromArray(
        of((i) => new Date(i * 86_400_000)),
        new DateDay(),
      ),
      ts: vectorFromArray(
        of((i) => i * 1000),
        new TimestampMillisecond(),
      ),
      dict: vectorFromArray(
        of((i) => ['x', 'y'][i % 2]),
        new Dictionary(new Utf8(), new Int32()),
      ),
      list: vectorFromArray(
        of((i) => (i % 4 === 0 ? null : [i, i + 1])),
        new List(new ArrowField('item', new Int32(), true)),
      ),
      struct: vectorFromArray(
        of((i) => (i % 5 === 0 ? null : { a: i, b: `b${i}` })),
        new Struct([new ArrowField('a', new Int32(), true), new ArrowField('b', new Utf8(), true)]),
      ),
      map: vectorFromArray(
        of((i) => new Map([[`k${i}`, i]])),
        new Map_(
          new ArrowField(
            'entries',
            new Struct<{ key: Utf8; value: Int32 }>([new ArrowField('key', new Utf8(), false), new ArrowField('value', new Int32(), true)]),
          ),
        ),
      ),
    })
    for (const [label, t] of [
      ['whole', many],
      ['sliced', many.slice(3, 17)],
    ] as const) {
      const path = await fixture(`many-${label}.${format === 'file' ? 'arrow' : 'arrows'}`, tableToIPC(t, format))
      expect((await arrow.facts(path)).rows).toBe(t.numRows)
      const rows = await collect(arrow.rows(path))
      expect(rows.length).toBe(t.numRows)
      expect(rows[1]).toMatchObject({ large: label === 'whole' ? 'L1' : 'L4', map: label === 'whole' ? { k1: 1 } : { k4: 4 } })
    }
  })

  it.each(['file', 'stream'] as const)('rejects a batch claiming more rows than its buffers hold (%s)', async (format) => {
    const schema = new Schema([new ArrowField('id', new Int64(), false)])
    const id = makeData({ type: new Int64(), length: 1000, nullCount: 0, data: BigInt64Array.of(1n, 2n, 3n) })
    const lying = new Table([
      new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: 1000, nullCount: 0, children: [id] })),
    ])
    const path = await fixture(`lying.${format === 'file' ? 'arrow' : 'arrows'}`, tableToIPC(lying, format))
    for (const read of [() => arrow.facts(path), () => collect(arrow.rows(path))]) {
      const e = await failure(read())
      expect([e.code, e.message]).toEqual([
        'INVALID_SHARD',
        `${path}: invalid Arrow IPC ${format} (record batch 0 has 1000 rows but column "id" holds 3)`,
      ])
    }
  })

  it('reads a stream with a schema and no batches as 0 rows', async () => {
    const path = await fixture('empty-table.arrows', tableToIPC(table.slice(0, 0), 'stream'))
    expect((await arrow.facts(path)).rows).toBe(0)
  })

  const notArrow = (p: string): string => `${p}: not Arrow IPC data (expected the file magic ARROW1 or a stream starting with 0xFFFFFFFF)`
  it.each<[string, string, () => Uint8Array, (p: string) => string | RegExp]>([
    ['not Arrow', 'text.arrow', () => new TextEncoder().encode('hello world, this is not arrow at all'), notArrow],
    ['empty', 'empty.arrow', () => new Uint8Array(0), notArrow],
    ['Parquet bytes', 'parquet.feather', () => new TextEncoder().encode('PAR1xxxxxxxxPAR1'), notArrow],
    ['Feather v1', 'v1.feather', () => new TextEncoder().encode('FEA1\0\0\0\0\0\0\0\0FEA1'), notArrow],
    [
      'truncated file',
      'trunc.arrow',
      () => tableToIPC(table, 'file').slice(0, -20),
      (p) => `${p}: truncated Arrow IPC file (expected magic ARROW1 at the end)`,
    ],
    [
      'end-of-stream only',
      'eos.arrows',
      () => new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
      (p) => `${p}: Arrow IPC stream has no schema message (expected one before any record batch)`,
    ],
    [
      'stream cut inside a batch',
      'cut.arrows',
      () => tableToIPC(table, 'stream').slice(0, -20),
      (p) =>
        new RegExp(`^${escape(p)}: invalid Arrow IPC stream \\(Expected to read \\d+ bytes for message body, but only read \\d+\\.\\)$`),
    ],
    [
      'stream with a huge metadata length',
      'huge.arrows',
      () => new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]),
      (p) => new RegExp(`^${escape(p)}: invalid Arrow IPC stream \\(.+\\)$`),
    ],
  ])('rejects %s with INVALID_SHARD', async (label, name, bytes, message) => {
    const path = await fixture(name, bytes())
    for (const read of [() => arrow.facts(path), () => collect(arrow.rows(path))]) {
      const e = await failure(read())
      expect(e.code).toBe('INVALID_SHARD')
      expect(e.subject).toBe(path)
      const expected = message(path)
      if (typeof expected === 'string') expect(e.message).toBe(expected)
      else expect(e.message).toMatch(expected)
    }
  })

  it('hints at Feather v1', async () => {
    const path = await fixture('v1-hint.feather', new TextEncoder().encode('FEA1\0\0\0\0\0\0\0\0FEA1'))
    const e = await failure(arrow.facts(path))
    expect(e.hint).toMatch(/Feather v1/)
  })
})

describe('all readers', () => {
  const cases: [string, FormatReader, () => Uint8Array | string][] = [
    ['a.jsonl', jsonl as FormatReader, () => '{"a":1}\n{"a":2}\n{"a":3}\n'],
    ['a.csv', csv as FormatReader, () => 'a\n1\n2\n3\n'],
    [
      'a.parquet',
      parquet as FormatReader,
      () => new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'a', data: [1, 2, 3], type: 'INT32' }], rowGroupSize: 1 })),
    ],
    ['a.arrows', arrow as FormatReader, () => tableToIPC(tableFromArrays({ a: new Int32Array([1, 2, 3]) }), 'stream')],
    ['a.arrow', arrow as FormatReader, () => tableToIPC(tableFromArrays({ a: new Int32Array([1, 2, 3]) }), 'file')],
  ]

  it.each(cases)('%s: a missing file is an IO error naming it', async (name, reader) => {
    const path = join(dir, 'missing', name)
    const e = await failure(reader.facts(path))
    expect(e.code).toBe('IO')
    expect(e.subject).toBe(path)
    expect(e.message).toMatch(new RegExp(`^Cannot (open|read) ${escape(path)}: ENOENT$`))
  })

  it.each(cases)('%s: an aborted signal rejects with its reason', async (name, reader, content) => {
    const path = await fixture(`abort-${name}`, content())
    const controller = new AbortController()
    const reason = new Error('cancelled')
    controller.abort(reason)
    await expect(reader.facts(path, { signal: controller.signal })).rejects.toBe(reason)
    await expect(collect(reader.rows(path, { signal: controller.signal }))).rejects.toBe(reason)
  })

  it.each(cases)('%s: stopping rows() early releases the file', async (name, reader, content) => {
    const path = await fixture(`early-${name}`, content())
    for (let i = 0; i < 50; i++) {
      for await (const row of reader.rows(path)) {
        expect(row).toBeTypeOf('object')
        break
      }
    }
    expect((await reader.facts(path)).rows).toBe(3)
  })
})

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
