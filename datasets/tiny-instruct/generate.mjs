#!/usr/bin/env node
// Deterministic generator of the tiny-instruct example dataset.
//
//   node datasets/tiny-instruct/generate.mjs [outDir]    (default: this folder)
//
// Writes train/part-000.parquet, train/part-001.parquet, validation/part-000.arrow,
// test/part-000.jsonl and cairn.json under outDir, overwriting only those files.
// The same script gives byte-identical files on every machine and Node.js version:
// one seeded PRNG (no Math.random, no clock), fixed templates, integer arithmetic,
// String(n) formatting (never toLocaleString), code-unit string comparison (never
// localeCompare), and writer options that embed no timestamp or library version.
// The bytes do depend on the writer libraries (hyparquet-writer, apache-arrow):
// regenerate with the versions pinned in package-lock.json.
//
// generate-v2.mjs imports the row and writer functions from this module.

import { mkdirSync, realpathSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { Field, Int32, RecordBatch, Schema, Struct, Table, Utf8, makeData, tableToIPC, vectorFromArray } from 'apache-arrow'

export const NAME = 'tiny-instruct'
export const SEED = 20261121
export const TRAIN_ROWS_PER_SHARD = 400
export const TRAIN_SHARDS = 2
export const VALIDATION_ROWS = 150
export const TEST_ROWS = 150
export const CATEGORIES = ['arithmetic', 'unit-conversion', 'string-reversal', 'sorting']

// Row index ranges: ids are global and follow the split order train, validation, test.
export const TRAIN_START = 0
export const VALIDATION_START = TRAIN_START + TRAIN_SHARDS * TRAIN_ROWS_PER_SHARD
export const TEST_START = VALIDATION_START + VALIDATION_ROWS
/** First row index not used by version 1 (generate-v2.mjs continues from here). */
export const NEXT_INDEX = TEST_START + TEST_ROWS

/** Fixed value of the Parquet footer's `created_by`: no library version, so it never drifts. */
export const PARQUET_CREATED_BY = 'cairn datasets/tiny-instruct/generate.mjs'

// ---------------------------------------------------------------------------
// PRNG: mulberry32 over a per-row seed. Each row has its own stream, derived from
// (SEED, row index), so a row does not depend on how many draws earlier rows made.

/** murmur3's 32-bit finaliser: a bijective mix of a 32-bit integer. */
function fmix32(h) {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A mulberry32 generator; `next()` returns an unsigned 32-bit integer. */
function mulberry32(seed) {
  let state = seed >>> 0
  return {
    next() {
      state = (state + 0x6d2b79f5) >>> 0
      let t = state
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return (t ^ (t >>> 14)) >>> 0
    },
  }
}

/** Integer draws only: no floating point anywhere in the generator. */
function makeRng(seed) {
  const g = mulberry32(seed)
  const rng = {
    /** Uniform-enough integer in [lo, hi] (modulo bias is irrelevant here; determinism is what counts). */
    int(lo, hi) {
      return lo + (g.next() % (hi - lo + 1))
    },
    pick(items) {
      return items[rng.int(0, items.length - 1)]
    },
    /** `count` distinct items, in draw order. */
    sample(items, count) {
      const pool = items.slice()
      const out = []
      for (let i = 0; i < count; i++) out.push(pool.splice(rng.int(0, pool.length - 1), 1)[0])
      return out
    },
  }
  return rng
}

function rowRng(index) {
  return makeRng(fmix32((SEED ^ fmix32(index + 1)) >>> 0))
}

// ---------------------------------------------------------------------------
// Templates. `{name}` placeholders are filled by `fill`; the same strings are
// listed in the card's provenance.promptTemplate.

export const TEMPLATES = {
  arithmetic: {
    binary: [
      { instruction: 'What is {a} {opWord} {b}?', input: '', response: '{a} {opWord} {b} is {result}.' },
      { instruction: 'Evaluate the arithmetic expression.', input: '{a} {op} {b}', response: '{a} {op} {b} = {result}' },
      { instruction: 'Compute {a} {op} {b} and give only the number.', input: '', response: '{result}' },
    ],
    mixed: [
      {
        instruction: 'Evaluate the expression, respecting the order of operations.',
        input: '{expression}',
        response: 'First {step1}, then {step2}.',
      },
      { instruction: 'What is {expression}? Show the steps.', input: '', response: 'First {step1}, then {step2}. The answer is {result}.' },
    ],
  },
  'unit-conversion': {
    quantity: [
      { instruction: 'Convert {value} {from} to {toPlural}.', input: '', response: '{value} {from} is {result} {to}.' },
      { instruction: 'How many {toPlural} are in {value} {from}?', input: '', response: 'There are {result} {to} in {value} {from}.' },
      { instruction: 'Convert the quantity to the requested unit.', input: '{value} {from} -> {toPlural}', response: '{result} {to}' },
    ],
    temperature: [
      { instruction: 'Convert {value} degrees {from} to degrees {to}.', input: '', response: '{value} degrees {from} is {result} degrees {to}.' },
      { instruction: 'Convert the temperature from {from} to {to}.', input: '{value} degrees {from}', response: '{result} degrees {to}' },
    ],
  },
  'string-reversal': {
    characters: [
      { instruction: 'Reverse the string "{text}".', input: '', response: '"{result}"' },
      { instruction: 'Write the input backwards, character by character.', input: '{text}', response: '{result}' },
      { instruction: 'Spell "{text}" backwards.', input: '', response: '"{text}" spelled backwards is "{result}".' },
    ],
    wordOrder: [
      { instruction: 'Reverse the order of the words.', input: '{text}', response: '{result}' },
      { instruction: 'Reverse the word order of: {text}', input: '', response: '{result}' },
    ],
    eachWord: [
      {
        instruction: 'Reverse the letters of each word but keep the words in their original order.',
        input: '{text}',
        response: '{result}',
      },
    ],
  },
  sorting: {
    numbers: [
      { instruction: 'Sort these numbers in {order} order: {list}.', input: '', response: '{result}' },
      { instruction: 'Arrange the numbers from {direction}.', input: '{list}', response: '{result}' },
      { instruction: 'Put the following list in {order} order.', input: '[{list}]', response: '[{result}]' },
    ],
    words: [
      { instruction: 'Sort these words in {order} order: {list}.', input: '', response: '{result}' },
      { instruction: 'Arrange the words in {order} order.', input: '{spaced}', response: '{spacedResult}' },
    ],
  },
}

function fill(template, vars) {
  return template.replace(/\{(\w+)\}/g, (_, key) => {
    if (!(key in vars)) throw new Error(`template placeholder {${key}} has no value`)
    return String(vars[key])
  })
}

function render(rng, templates, vars) {
  const t = rng.pick(templates)
  return { instruction: fill(t.instruction, vars), input: fill(t.input, vars), response: fill(t.response, vars) }
}

/** One line per template family, for the card: `category/family: "instruction" [input "…"] | …`. */
export function promptTemplateSummary() {
  const lines = []
  for (const [category, families] of Object.entries(TEMPLATES)) {
    for (const [family, templates] of Object.entries(families)) {
      const shown = templates.map((t) => (t.input ? `"${t.instruction}" + input "${t.input}"` : `"${t.instruction}"`))
      lines.push(`${category}/${family}: ${shown.join(' | ')}`)
    }
  }
  return lines.join('\n')
}

// ---------------------------------------------------------------------------
// Vocabulary: lowercase ASCII only, so reversal by UTF-16 code unit is reversal by character.

const SHORT_WORDS = ['cat', 'dog', 'sun', 'map', 'owl', 'key', 'cup', 'bee', 'fig', 'ink', 'jam', 'log', 'net', 'oak', 'pen', 'rug']
const WORDS = [
  'apple', 'river', 'stone', 'cloud', 'garden', 'window', 'silver', 'forest', 'candle', 'bridge', 'market', 'planet',
  'ladder', 'button', 'pepper', 'rocket', 'meadow', 'harbor', 'lantern', 'pencil', 'copper', 'marble', 'orchid', 'saddle',
  'tunnel', 'velvet', 'walnut', 'yellow', 'zephyr', 'anchor', 'basket', 'cactus', 'dragon', 'engine', 'falcon', 'glacier',
  'hammer', 'island', 'jacket', 'kettle', 'lemon', 'mirror', 'needle', 'oyster', 'parrot', 'quartz', 'ribbon', 'spider',
  'tomato', 'umbrella', 'violin', 'wizard', 'yogurt', 'zipper', 'bakery', 'banner', 'barrel', 'candy', 'canyon', 'carpet',
  'marsh', 'mango', 'maple', 'pebble', 'pillow', 'salmon', 'sandal', 'saturn',
]

// Unit pairs with exact integer factors: [singular, plural] of the larger unit, then of the smaller.
const UNITS = [
  { big: ['kilometer', 'kilometers'], small: ['meter', 'meters'], factor: 1000 },
  { big: ['meter', 'meters'], small: ['centimeter', 'centimeters'], factor: 100 },
  { big: ['kilogram', 'kilograms'], small: ['gram', 'grams'], factor: 1000 },
  { big: ['liter', 'liters'], small: ['milliliter', 'milliliters'], factor: 1000 },
  { big: ['hour', 'hours'], small: ['minute', 'minutes'], factor: 60 },
  { big: ['minute', 'minutes'], small: ['second', 'seconds'], factor: 60 },
  { big: ['day', 'days'], small: ['hour', 'hours'], factor: 24 },
  { big: ['week', 'weeks'], small: ['day', 'days'], factor: 7 },
  { big: ['foot', 'feet'], small: ['inch', 'inches'], factor: 12 },
  { big: ['yard', 'yards'], small: ['foot', 'feet'], factor: 3 },
]
const COMPOUND_UNITS = [
  { big: ['hour', 'hours'], small: ['second', 'seconds'], factor: 3600 },
  { big: ['kilometer', 'kilometers'], small: ['centimeter', 'centimeters'], factor: 100000 },
  { big: ['day', 'days'], small: ['minute', 'minutes'], factor: 1440 },
  { big: ['week', 'weeks'], small: ['hour', 'hours'], factor: 168 },
]
const DECIMAL_UNITS = UNITS.filter((u) => u.factor === 1000 || u.factor === 100)

/** English number agreement: only exactly "1" takes the singular. */
function unitName(names, valueText) {
  return valueText === '1' ? names[0] : names[1]
}

/** Exact decimal text of n / d for d a power of ten, by integer arithmetic (no float formatting). */
function divideExact(n, d) {
  const digits = String(d).length - 1
  const whole = Math.floor(n / d)
  const frac = String(n % d).padStart(digits, '0').replace(/0+$/, '')
  return frac ? `${whole}.${frac}` : String(whole)
}

// ---------------------------------------------------------------------------
// Category generators: (rng, difficulty) → { instruction, input, response }.

const OPS = {
  '+': { word: 'plus', apply: (a, b) => a + b },
  '-': { word: 'minus', apply: (a, b) => a - b },
  '*': { word: 'times', apply: (a, b) => a * b },
}

function arithmetic(rng, difficulty) {
  const T = TEMPLATES.arithmetic
  if (difficulty === 5) {
    const a = rng.int(2, 99)
    const b = rng.int(2, 30)
    const c = rng.int(2, 30)
    if (rng.int(0, 1) === 0) {
      // a + b * c: the product first
      const p = b * c
      const result = a + p
      return render(rng, T.mixed, {
        expression: `${a} + ${b} * ${c}`,
        step1: `${b} * ${c} = ${p}`,
        step2: `${a} + ${p} = ${result}`,
        result,
      })
    }
    // a * b - c
    const p = a * b
    const result = p - c
    return render(rng, T.mixed, {
      expression: `${a} * ${b} - ${c}`,
      step1: `${a} * ${b} = ${p}`,
      step2: `${p} - ${c} = ${result}`,
      result,
    })
  }
  let op, a, b
  if (difficulty === 1) {
    op = '+'
    a = rng.int(1, 9)
    b = rng.int(1, 9)
  } else if (difficulty === 2) {
    op = rng.pick(['+', '-'])
    a = rng.int(10, 99)
    b = rng.int(10, 99)
    if (op === '-' && b > a) [a, b] = [b, a]
  } else if (difficulty === 3) {
    op = rng.pick(['+', '-'])
    a = rng.int(100, 999)
    b = rng.int(100, 999) // a - b may be negative at this level
  } else {
    op = '*'
    a = rng.int(12, 99)
    b = rng.int(3, 99)
  }
  const result = OPS[op].apply(a, b)
  return render(rng, T.binary, { a, b, op, opWord: OPS[op].word, result })
}

function unitConversion(rng, difficulty) {
  const T = TEMPLATES['unit-conversion']
  if (difficulty === 4 && rng.int(0, 2) === 0) {
    // Celsius → Fahrenheit, with C a multiple of 5 so that F = C * 9 / 5 + 32 is an integer
    const c = 5 * rng.int(-8, 20)
    return render(rng, T.temperature, { value: c, from: 'Celsius', to: 'Fahrenheit', result: (c / 5) * 9 + 32 })
  }
  if (difficulty === 5 && rng.int(0, 3) === 0) {
    // Fahrenheit → Celsius, exact by construction
    const c = 5 * rng.int(-8, 20)
    return render(rng, T.temperature, { value: (c / 5) * 9 + 32, from: 'Fahrenheit', to: 'Celsius', result: c })
  }
  let unit, from, to, value, result
  if (difficulty <= 2) {
    // larger → smaller unit
    unit = rng.pick(UNITS)
    value = String(difficulty === 1 ? rng.int(1, 10) : rng.int(11, 250))
    result = String(Number(value) * unit.factor)
    from = unit.big
    to = unit.small
  } else if (difficulty === 3) {
    // smaller → larger unit, whole result
    unit = rng.pick(UNITS)
    const k = rng.int(2, 60)
    value = String(k * unit.factor)
    result = String(k)
    from = unit.small
    to = unit.big
  } else if (difficulty === 4) {
    // two-step factor, larger → smaller
    unit = rng.pick(COMPOUND_UNITS)
    value = String(rng.int(2, 40))
    result = String(Number(value) * unit.factor)
    from = unit.big
    to = unit.small
  } else {
    // smaller → larger with a decimal result, exact by integer arithmetic
    unit = rng.pick(DECIMAL_UNITS)
    let n = rng.int(1, 99999)
    if (n % unit.factor === 0) n += 1
    value = String(n)
    result = divideExact(n, unit.factor)
    from = unit.small
    to = unit.big
  }
  return render(rng, T.quantity, {
    value,
    from: unitName(from, value),
    to: unitName(to, result),
    toPlural: to[1],
    result,
  })
}

function reverseString(s) {
  return s.split('').reverse().join('')
}

function stringReversal(rng, difficulty) {
  const T = TEMPLATES['string-reversal']
  if (difficulty <= 3) {
    const text = difficulty === 1 ? rng.pick(SHORT_WORDS) : difficulty === 2 ? rng.pick(WORDS) : rng.sample(WORDS, 2).join(' ')
    return render(rng, T.characters, { text, result: reverseString(text) })
  }
  if (difficulty === 4) {
    const words = rng.sample(WORDS, rng.int(4, 6))
    return render(rng, T.wordOrder, { text: words.join(' '), result: words.slice().reverse().join(' ') })
  }
  const words = rng.sample(WORDS, rng.int(3, 5))
  return render(rng, T.eachWord, { text: words.join(' '), result: words.map(reverseString).join(' ') })
}

function compareCodeUnits(a, b) {
  return a < b ? -1 : a > b ? 1 : 0
}

function sorting(rng, difficulty) {
  const T = TEMPLATES.sorting
  if (difficulty <= 3) {
    const [count, lo, hi] = difficulty === 1 ? [3, 0, 20] : difficulty === 2 ? [5, 0, 99] : [7, -50, 150]
    const list = Array.from({ length: count }, () => rng.int(lo, hi))
    const ascending = difficulty === 1 || rng.int(0, 1) === 0
    const sorted = list.slice().sort((x, y) => (ascending ? x - y : y - x))
    return render(rng, T.numbers, {
      list: list.join(', '),
      order: ascending ? 'ascending' : 'descending',
      direction: ascending ? 'smallest to largest' : 'largest to smallest',
      result: sorted.join(', '),
    })
  }
  const words = rng.sample(WORDS, difficulty === 4 ? 5 : rng.int(6, 8))
  const alphabetical = difficulty === 4 || rng.int(0, 1) === 0
  const sorted = words.slice().sort((x, y) => (alphabetical ? compareCodeUnits(x, y) : compareCodeUnits(y, x)))
  return render(rng, T.words, {
    list: words.join(', '),
    spaced: words.join(' '),
    order: alphabetical ? 'alphabetical' : 'reverse alphabetical',
    result: sorted.join(', '),
    spacedResult: sorted.join(' '),
  })
}

const GENERATORS = {
  arithmetic,
  'unit-conversion': unitConversion,
  'string-reversal': stringReversal,
  sorting,
}

// ---------------------------------------------------------------------------
// Rows

/** Field order of every row, in every format. */
export const FIELDS = ['id', 'instruction', 'input', 'response', 'category', 'difficulty', 'tokens']

/** Word count of a text: maximal runs of non-whitespace. */
export function wordCount(text) {
  return text.split(/\s+/).filter((w) => w.length > 0).length
}

export function rowId(index) {
  return `ti-${String(index).padStart(6, '0')}`
}

/** The row at a global index: a pure function of (SEED, index). */
export function makeRow(index) {
  const rng = rowRng(index)
  const category = CATEGORIES[rng.int(0, CATEGORIES.length - 1)]
  const difficulty = rng.int(1, 5)
  const { instruction, input, response } = GENERATORS[category](rng, difficulty)
  return { id: rowId(index), instruction, input, response, category, difficulty, tokens: wordCount(response) }
}

export function makeRows(start, count) {
  return Array.from({ length: count }, (_, i) => makeRow(start + i))
}

// ---------------------------------------------------------------------------
// Writers: each returns the file's bytes, so callers decide where they go.

const PARQUET_SCHEMA = [
  { name: 'root', num_children: FIELDS.length },
  { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'instruction', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'input', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'response', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'category', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'difficulty', type: 'INT32', repetition_type: 'REQUIRED' },
  { name: 'tokens', type: 'INT32', repetition_type: 'REQUIRED' },
]

/**
 * Parquet bytes of `rows` (hyparquet-writer). Every option that affects the bytes is
 * spelled out rather than left to the library default, and `createdBy` replaces the
 * default so that the footer carries no library name or version.
 */
export function parquetBytes(rows) {
  const buffer = parquetWriteBuffer({
    columnData: FIELDS.map((name) => ({ name, data: rows.map((r) => r[name]) })),
    schema: PARQUET_SCHEMA,
    codec: 'SNAPPY',
    statistics: true,
    rowGroupSize: rows.length, // one row group per file
    pageSize: 1048576,
    createdBy: PARQUET_CREATED_BY,
  })
  return new Uint8Array(buffer)
}

/** Arrow IPC file-format bytes of `rows`: explicit non-nullable Utf8/Int32 fields, no custom metadata. */
export function arrowBytes(rows) {
  const types = { difficulty: new Int32(), tokens: new Int32() }
  const fields = FIELDS.map((name) => new Field(name, types[name] ?? new Utf8(), false))
  const children = fields.map((f) => vectorFromArray(rows.map((r) => r[f.name]), f.type).data[0])
  const data = makeData({ type: new Struct(fields), length: rows.length, nullCount: 0, children })
  const table = new Table([new RecordBatch(new Schema(fields), data)])
  return tableToIPC(table, 'file')
}

/** JSONL bytes: one object per line, keys in FIELDS order, `\n` endings and a final newline. */
export function jsonlBytes(rows) {
  const text = rows.map((r) => JSON.stringify(Object.fromEntries(FIELDS.map((k) => [k, r[k]])))).join('\n') + '\n'
  return new TextEncoder().encode(text)
}

// ---------------------------------------------------------------------------
// Card

export const DESCRIPTION =
  'Synthetic instruction/response pairs in four task families (arithmetic, unit conversion, string reversal, sorting), ' +
  'generated by rule-based templates from a fixed seed. Every response is computed, so it is correct by construction; ' +
  'a small bundled example for cairn.'

export function rowSchema() {
  return {
    type: 'object',
    required: FIELDS.slice(),
    properties: {
      id: { type: 'string', pattern: '^ti-[0-9]{6}$', description: 'Unique row id.' },
      instruction: { type: 'string', minLength: 1, description: 'The task, in English.' },
      input: { type: 'string', description: 'Optional input the instruction refers to; empty when the instruction is self-contained.' },
      response: { type: 'string', minLength: 1, description: 'The correct answer.' },
      category: { type: 'string', enum: CATEGORIES.slice(), description: 'Task family.' },
      difficulty: { type: 'integer', minimum: 1, maximum: 5, description: '1 (easiest) to 5.' },
      tokens: { type: 'integer', minimum: 1, description: 'Word count of the response (runs of non-whitespace).' },
    },
    additionalProperties: false,
  }
}

export function makeCard() {
  return {
    cardVersion: 1,
    name: NAME,
    description: DESCRIPTION,
    license: 'CC0-1.0',
    authors: ['cairn developers'],
    provenance: {
      generator: 'datasets/tiny-instruct/generate.mjs',
      model: 'template-v1 (no language model: rule-based templates)',
      promptTemplate: promptTemplateSummary(),
      seed: SEED,
      parameters: {
        trainRows: TRAIN_SHARDS * TRAIN_ROWS_PER_SHARD,
        validationRows: VALIDATION_ROWS,
        testRows: TEST_ROWS,
      },
    },
    shards: [
      { glob: '**/*.jsonl', primaryKey: ['id'], rowSchema: rowSchema() },
      { glob: '**/*.parquet', primaryKey: ['id'] },
      { glob: '**/*.arrow', primaryKey: ['id'] },
    ],
  }
}

export function cardBytes(card) {
  return new TextEncoder().encode(JSON.stringify(card, null, 2) + '\n')
}

// ---------------------------------------------------------------------------
// Files

/** Write `bytes` to `outDir/relPath`, creating parent folders; returns the byte count. */
export function writeShard(outDir, relPath, bytes) {
  const path = join(outDir, ...relPath.split('/'))
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, bytes)
  return bytes.byteLength
}

/** Version 1 of the dataset: relative path → { bytes, rows }. */
export function datasetV1() {
  const files = []
  for (let s = 0; s < TRAIN_SHARDS; s++) {
    const rows = makeRows(TRAIN_START + s * TRAIN_ROWS_PER_SHARD, TRAIN_ROWS_PER_SHARD)
    files.push({ path: `train/part-${String(s).padStart(3, '0')}.parquet`, bytes: parquetBytes(rows), rows: rows.length })
  }
  const validation = makeRows(VALIDATION_START, VALIDATION_ROWS)
  files.push({ path: 'validation/part-000.arrow', bytes: arrowBytes(validation), rows: validation.length })
  const test = makeRows(TEST_START, TEST_ROWS)
  files.push({ path: 'test/part-000.jsonl', bytes: jsonlBytes(test), rows: test.length })
  files.push({ path: 'cairn.json', bytes: cardBytes(makeCard()), rows: null })
  return files
}

function main() {
  const outDir = resolve(process.argv[2] ?? dirname(fileURLToPath(import.meta.url)))
  for (const f of datasetV1()) {
    const size = writeShard(outDir, f.path, f.bytes)
    process.stdout.write(`${f.path}\t${size} B${f.rows === null ? '' : `\t${f.rows} rows`}\n`)
  }
}

/** True when the module at `moduleUrl` is the script node was started with (not an import). */
export function isMainModule(moduleUrl) {
  if (!process.argv[1]) return false
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(moduleUrl))
  } catch {
    return false
  }
}

if (isMainModule(import.meta.url)) main()
