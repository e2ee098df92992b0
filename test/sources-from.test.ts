// diff and verify take the same sources as clone (--from): two releases on a gateway are compared, and a
// folder is checked against a release, with no local dataset at all. The gateway is `cairn serve` on
// loopback, started and stopped here.
import { cp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { build, diff, serve, verify } from '../src/index.js'
import { FIXED_DATE, makeDataset, seededBytes, tempDir, thrown, type TempDataset } from './helpers/dataset.js'

describe('--from a gateway, without a local dataset', () => {
  let ds: TempDataset
  let v1: string
  let v2: string
  let gateway: { url: string; close(): Promise<void> }
  let elsewhere: string

  beforeAll(async () => {
    ds = await makeDataset({ 'a.bin': seededBytes(3_000_000, 'a'), 'rows.jsonl': '{"id":1}\n{"id":2}\n', 'keep.txt': 'same' })
    v1 = (await build({ dir: ds.dir, date: FIXED_DATE })).version.toString()
    await ds.write({ 'rows.jsonl': '{"id":1}\n{"id":3}\n', 'new.txt': 'added' })
    v2 = (await build({ dir: ds.dir, date: FIXED_DATE })).version.toString()
    gateway = await serve({ dir: ds.dir, port: 0 })
    elsewhere = await tempDir('cairn-from-')
  })
  afterAll(async () => {
    await gateway.close()
    await ds.cleanup()
    await rm(elsewhere, { recursive: true, force: true })
  })

  it('diff compares two releases by CID through the gateway', async () => {
    const result = await diff({ dir: elsewhere, a: v1, b: v2, from: [gateway.url] })
    const changes = result.shards.map((s) => `${s.status} ${s.path}`).sort()
    expect(changes).toEqual(['added new.txt', 'modified rows.jsonl'])
  })

  it('verify checks a copied folder against a release fetched from the gateway', async () => {
    const copy = join(elsewhere, 'copy')
    await cp(ds.dir, copy, { recursive: true, filter: (src) => !src.includes('.cairn') })
    const ok = await verify({ ref: v2, dir: copy, dataset: elsewhere, from: [gateway.url] })
    expect(ok.ok).toBe(true)
    const older = await verify({ ref: v1, dir: copy, dataset: elsewhere, from: [gateway.url] })
    expect(older.ok).toBe(false)
    expect(older.extra).toEqual(['new.txt'])
    expect(older.modified.map((m) => m.path)).toEqual(['rows.jsonl'])
  })

  it('a CID the gateway lacks is an error naming it, never a partial result', async () => {
    const missing = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
    const e = (await thrown(() => diff({ dir: elsewhere, a: missing, b: v2, from: [gateway.url] }))) as Error
    expect(e.message).toContain(missing)
  })
})
