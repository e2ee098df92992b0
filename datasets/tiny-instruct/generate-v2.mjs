#!/usr/bin/env node
// Deterministic second version of tiny-instruct, for diff demos and tests.
//
//   node datasets/tiny-instruct/generate-v2.mjs <dir>
//
// <dir> must hold version 1 (a copy of datasets/tiny-instruct, or the output of
// generate.mjs). Run it on a copy: it edits <dir> in place. It
//   - rewrites 3 responses, deletes 2 rows and adds 4 rows in test/part-000.jsonl,
//   - adds train/part-002.parquet (100 new rows),
//   - removes validation/part-000.arrow (and the validation/ folder if that leaves it empty),
//   - changes the card's description (nothing else in cairn.json).
// It refuses a folder that is not version 1, so it cannot be applied twice.

import { existsSync, readFileSync, readdirSync, rmSync, rmdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  DESCRIPTION,
  NAME,
  NEXT_INDEX,
  TEST_ROWS,
  cardBytes,
  isMainModule,
  jsonlBytes,
  makeRows,
  parquetBytes,
  wordCount,
  writeShard,
} from './generate.mjs'

const TEST_PATH = 'test/part-000.jsonl'
const VALIDATION_PATH = 'validation/part-000.arrow'
const NEW_TRAIN_PATH = 'train/part-002.parquet'

/** Rows whose response v2 rewords (prefix "Answer: "). */
export const CHANGED_IDS = ['ti-000960', 'ti-001000', 'ti-001040']
/** Rows v2 deletes from the test split. */
export const DELETED_IDS = ['ti-000975', 'ti-001025']
export const ADDED_TEST_ROWS = 4
export const NEW_TRAIN_ROWS = 100

export const DESCRIPTION_V2 =
  DESCRIPTION +
  ' Version 2: three test responses reworded, two test rows removed and four added, a third training shard, no validation split.'

function fail(message) {
  process.stderr.write(`generate-v2: ${message}\n`)
  process.exit(1)
}

function main() {
  const dir = process.argv[2]
  if (!dir) fail('usage: node datasets/tiny-instruct/generate-v2.mjs <dir>  (a copy of version 1; edited in place)')

  const cardPath = join(dir, 'cairn.json')
  if (!existsSync(cardPath)) fail(`${cardPath} not found (expected a copy of datasets/tiny-instruct)`)
  const card = JSON.parse(readFileSync(cardPath, 'utf8'))
  if (card.name !== NAME || card.description !== DESCRIPTION) {
    fail(`${cardPath} is not version 1 of ${NAME} (name ${JSON.stringify(card.name)}, description differs); refusing to edit it`)
  }
  if (!existsSync(join(dir, VALIDATION_PATH))) fail(`${join(dir, VALIDATION_PATH)} not found (expected version 1)`)
  if (existsSync(join(dir, NEW_TRAIN_PATH))) fail(`${join(dir, NEW_TRAIN_PATH)} already exists (expected version 1)`)

  // test split: reword, delete, add; rows stay sorted by id
  const text = readFileSync(join(dir, TEST_PATH), 'utf8')
  const rows = text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line))
  if (rows.length !== TEST_ROWS) fail(`${TEST_PATH} has ${rows.length} rows (expected ${TEST_ROWS})`)
  for (const id of [...CHANGED_IDS, ...DELETED_IDS]) {
    if (!rows.some((r) => r.id === id)) fail(`${TEST_PATH} has no row ${id}`)
  }
  const edited = rows
    .filter((r) => !DELETED_IDS.includes(r.id))
    .map((r) => {
      if (!CHANGED_IDS.includes(r.id)) return r
      const response = `Answer: ${r.response}`
      return { ...r, response, tokens: wordCount(response) }
    })
  const added = makeRows(NEXT_INDEX, ADDED_TEST_ROWS)
  const test = [...edited, ...added]
  writeShard(dir, TEST_PATH, jsonlBytes(test))

  // a new training shard, continuing the global row index after the added test rows
  const train = makeRows(NEXT_INDEX + ADDED_TEST_ROWS, NEW_TRAIN_ROWS)
  writeShard(dir, NEW_TRAIN_PATH, parquetBytes(train))

  // drop the validation split: this one file, then its folder only if now empty
  rmSync(join(dir, VALIDATION_PATH))
  const validationDir = join(dir, 'validation')
  if (readdirSync(validationDir).length === 0) rmdirSync(validationDir)

  card.description = DESCRIPTION_V2
  writeShard(dir, 'cairn.json', cardBytes(card))

  process.stdout.write(
    `${TEST_PATH}\t${test.length} rows (${CHANGED_IDS.length} changed, ${DELETED_IDS.length} deleted, ${added.length} added)\n` +
      `${NEW_TRAIN_PATH}\t${train.length} rows (new)\n` +
      `${VALIDATION_PATH}\tremoved\n` +
      `cairn.json\tdescription changed\n`,
  )
}

if (isMainModule(import.meta.url)) main()
