// The stat cache saves re-reading unchanged files; it must never hide a change.
import { stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { build, CairnError, ls } from '../src/index.js'
import { FIXED_DATE, jsonl, makeDataset, thrown, type TempDataset } from './helpers/dataset.js'

async function cidOf(dir: string, path: string): Promise<string | undefined> {
  for await (const e of ls({ dir })) if (e.path === path) return e.cid.toString()
  return undefined
}

/** Waits until the clock is past the racy window, so the first build caches every file. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30))

describe('stat cache', () => {
  let ds: TempDataset
  afterEach(async () => ds?.cleanup())

  it('a rebuild with nothing changed is unchanged, and the cache keeps the same version', async () => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b/c.txt': 'gamma' })
    await settle()
    const first = await build({ dir: ds.dir, date: FIXED_DATE })
    const again = await build({ dir: ds.dir, date: FIXED_DATE })
    expect(again.unchanged).toBe(true)
    expect(again.version.toString()).toBe(first.version.toString())
  })

  it('a file rewritten with the same size and its mtime set back is still re-hashed (ctime changes)', async () => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b.txt': 'bravo' })
    await settle()
    await build({ dir: ds.dir, date: FIXED_DATE })
    const before = await cidOf(ds.dir, 'a.txt')
    const file = join(ds.dir, 'a.txt')
    const { atime, mtime } = await stat(file)
    await writeFile(file, 'ALPHA')
    await utimes(file, atime, mtime)
    const r = await build({ dir: ds.dir, date: FIXED_DATE })
    expect(r.unchanged).toBe(false)
    expect(r.changes.modified).toBe(1)
    expect(await cidOf(ds.dir, 'a.txt')).not.toBe(before)
  })

  it('new row rules in the card re-validate rows the cache had accepted', async () => {
    ds = await makeDataset({ 'rows.jsonl': jsonl([{ id: 1 }, { id: 'two' }]) })
    await settle()
    await build({ dir: ds.dir, date: FIXED_DATE })
    const card = {
      cardVersion: 1,
      name: 'test-data',
      shards: [{ glob: '**/*.jsonl', rowSchema: { type: 'object', properties: { id: { type: 'integer' } } } }],
    }
    await writeFile(join(ds.dir, 'cairn.json'), JSON.stringify(card))
    const e = await thrown(() => build({ dir: ds.dir, date: FIXED_DATE }))
    expect(e).toBeInstanceOf(CairnError)
    expect((e as CairnError).code).toBe('INVALID_ROW')
    expect((e as CairnError).message).toContain('rows.jsonl:2')
  })

  it('a file added or removed since the cache was written changes the version', async () => {
    ds = await makeDataset({ 'a.txt': 'alpha' })
    await settle()
    await build({ dir: ds.dir, date: FIXED_DATE })
    await ds.write({ 'z.txt': 'new' })
    const r = await build({ dir: ds.dir, date: FIXED_DATE })
    expect(r.changes.added).toBe(1)
  })
})
