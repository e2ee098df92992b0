/**
 * Rows: every invalid row up to --max-errors with file and line, then the count; primaryKey
 * uniqueness within a shard (JSONL, CSV, Parquet) and across a rule's shards (`keyScope: "rule"`),
 * naming the key and both places; `init` checks row schemas against ajv's meta-schema and licences
 * against the SPDX list, every problem at once.
 */
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { build, CairnError, init } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { validateWith } from '../src/schemas.js'
import { cairn, ensureBuilt, parseJson } from './helpers/cli.js'
import { FIXED_DATE, jsonl, makeDataset, tempDir, thrown, type TempDataset } from './helpers/dataset.js'

const made: TempDataset[] = []
afterEach(async () => {
  await Promise.all(made.splice(0).map((d) => d.cleanup()))
})
beforeAll(() => ensureBuilt())

const rowSchema = { type: 'object', required: ['id', 't'], properties: { id: { type: 'integer' }, t: { type: 'string' } } }

async function ds(files: Record<string, string | Uint8Array>, shards: object[]): Promise<TempDataset> {
  const d = await makeDataset(files, { card: { cardVersion: 1, name: 'rows', shards } })
  made.push(d)
  return d
}

const errorOf = async (fn: () => Promise<unknown>): Promise<CairnError> => {
  const e = await thrown(fn)
  expect(e).toBeInstanceOf(CairnError)
  return e as CairnError
}

describe('invalid rows', () => {
  it('reports every invalid row with file and line, across shards, then the count; nothing is committed', async () => {
    const bad = jsonl([{ id: 1, t: 'a' }, { id: 'x', t: 'b' }, { id: 3 }, { id: 4, t: 'd' }, { id: 5, t: 7 }])
    const d = await ds({ 'a.jsonl': bad, 'b.jsonl': jsonl([{ t: 'no id' }]), 'c.csv': 'id,t\n1,a\nzz,b\n' }, [
      { glob: '*.{jsonl,csv}', rowSchema },
    ])
    const e = await errorOf(() => build({ dir: d.dir, date: FIXED_DATE }))
    expect(e.code).toBe('INVALID_ROW')
    expect((e.details as { at: string }[]).map((x) => x.at)).toEqual(['a.jsonl:2', 'a.jsonl:3', 'a.jsonl:5', 'b.jsonl:1', 'c.csv:3'])
    expect(e.message).toMatch(/^5 invalid rows in 3 shards:/)
    expect(e.message).toContain("a.jsonl:3: row does not match the card's row schema: must have required property 't'")
    expect(await (await openDataset(d.dir)).refs.head()).toBeUndefined()
    // past the limit, only counted
    const limited = await errorOf(() => build({ dir: d.dir, maxErrors: 2 }))
    expect(limited.details).toHaveLength(2)
    expect(limited.message).toContain('… and 3 more')
    const r = await cairn(['build', '-C', d.dir, '--max-errors', '1', '--json'])
    expect(r.exitCode).toBe(4)
    expect(validateWith('cli/error.schema.json', parseJson(r))).toEqual([])
    expect(parseJson<{ error: { details: unknown[] } }>(r).error.details).toHaveLength(1)
  })

  it('a line that is not JSON is one invalid row, and the other shards are still checked', async () => {
    const d = await ds({ 'a.jsonl': '{"id":1,"t":"a"}\nnot json\n', 'b.jsonl': jsonl([{ id: 'x', t: 'b' }]) }, [
      { glob: '*.jsonl', rowSchema },
    ])
    const e = await errorOf(() => build({ dir: d.dir }))
    expect((e.details as { at: string; message: string }[]).map((x) => x.at)).toEqual(['a.jsonl:2', 'b.jsonl:1'])
    expect(e.message).toContain('a.jsonl:2: invalid JSON')
  })
})

describe('primaryKey', () => {
  it('is unique within a shard (JSONL, CSV and Parquet), naming the key and both places', async () => {
    const parquet = new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'id', data: [1n, 2n, 2n], type: 'INT64', nullable: false }] }))
    const d = await ds(
      {
        'a.jsonl': jsonl([{ id: 1 }, { id: 2 }, { id: 1 }]),
        // the same key in two shards is fine when keys are unique per shard
        'b.jsonl': jsonl([{ id: 1 }]),
        'c.csv': 'id,v\n7,a\n7,b\n8,c\n',
        'd.parquet': parquet,
        'e.jsonl': jsonl([{ id: 9 }, { other: 1 }]),
      },
      [{ glob: '*.{jsonl,csv,parquet}', primaryKey: ['id'] }],
    )
    const e = await errorOf(() => build({ dir: d.dir }))
    const details = e.details as { at: string; message: string }[]
    expect(details).toEqual([
      { at: 'a.jsonl:3', message: 'duplicate primaryKey (id=1): also at a.jsonl:1' },
      { at: 'c.csv:3', message: 'duplicate primaryKey (id="7"): also at c.csv:2' },
      { at: 'd.parquet:row 3', message: expect.stringMatching(/^duplicate primaryKey \(id=.*2.*\): also at d\.parquet:row 2$/) },
      { at: 'e.jsonl:2', message: 'no value for primaryKey column "id"' },
    ])
  })

  it('with keyScope "rule", is unique across every shard of the rule, also when only one shard changed', async () => {
    const d = await ds({ 'p/1.jsonl': jsonl([{ id: 1 }, { id: 2 }]), 'p/2.jsonl': jsonl([{ id: 3 }]) }, [
      { glob: 'p/*.jsonl', primaryKey: ['id'], keyScope: 'rule' },
    ])
    await build({ dir: d.dir, date: FIXED_DATE })
    // a later build reads p/1.jsonl again (its stat is unchanged) to see its keys
    await writeFile(join(d.dir, 'p/2.jsonl'), jsonl([{ id: 3 }, { id: 2 }]))
    const e = await errorOf(() => build({ dir: d.dir }))
    expect(e.details).toEqual([{ at: 'p/2.jsonl:2', message: 'duplicate primaryKey (id=2): also at p/1.jsonl:2' }])
  })
})

describe('init checks the card at once', () => {
  it('every bad row schema and an unknown licence, with a "did you mean"; nothing is written', async () => {
    const dir = await tempDir()
    made.push({
      dir,
      write: async () => {},
      cleanup: () => import('node:fs/promises').then((f) => f.rm(dir, { recursive: true, force: true })),
    })
    const e = await errorOf(() =>
      init({
        dir,
        license: 'Apache 2.0',
        shards: [
          { glob: '*.jsonl', rowSchema: { type: 'objekt' } },
          { glob: '*.csv', rowSchema: { properties: { a: { minimum: 'x' } } } },
        ],
      }),
    )
    expect(e.code).toBe('INVALID_CARD')
    expect(e.details).toEqual([
      { path: '/shards/0/rowSchema/type', message: expect.stringContaining('not a valid JSON Schema') },
      { path: '/shards/1/rowSchema/properties/a/minimum', message: 'not a valid JSON Schema: must be number' },
      { path: '/license', message: '"Apache 2.0" is not an SPDX licence identifier (did you mean Apache-2.0?)' },
    ])
    expect(await readdir(dir)).toEqual([])
    for (const [license, guess] of [
      ['MTI', 'MIT'],
      ['CC-BY-4', 'CC-BY-4.0'],
      ['MIT OR Apach-2.0', 'Apache-2.0'],
      ['CC0', 'CC0-1.0'],
    ]) {
      const r = await cairn(['init', dir, '--license', license, '--json'])
      expect(r.exitCode).toBe(4)
      expect(parseJson<{ error: { message: string } }>(r).error.message).toContain(`did you mean ${guess}?`)
    }
    for (const ok of ['MIT', '(Apache-2.0 OR MIT)', 'GPL-2.0-or-later WITH Classpath-exception-2.0', 'LicenseRef-internal', 'cc-by-4.0']) {
      const sub = join(dir, ok.replace(/[^A-Za-z0-9]/g, '_'))
      expect((await init({ dir: sub, license: ok })).card.license).toBe(ok)
    }
  })

  it('the CLI checks a cairn.json that is already there; the library keeps it as it is (clone)', async () => {
    const d = await makeDataset({}, { noInit: true, card: { cardVersion: 1, name: 'x', license: 'GPL3' } })
    made.push(d)
    const r = await cairn(['init', d.dir, '--json'])
    expect(r.exitCode).toBe(4)
    expect(parseJson<{ error: { message: string } }>(r).error.message).toContain('did you mean GPL-3.0')
    expect((await init({ dir: d.dir })).cardWritten).toBe(false)
  })
})
