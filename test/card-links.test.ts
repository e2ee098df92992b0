/**
 * A dataset card's links (`derivedFrom`, weights by CID) are references, not parts of the release: the
 * release boundary (`linksInRelease`, src/release/links.ts) leaves them out, and only it. A trustless
 * `dag-scope=all` request walks the whole DAG and gets the blocks they name when the store has them;
 * `pack`, `verify --car` and a publish to Kubo treat them as references. CARs are read back with
 * `@ipld/car`, not with cairn's reader.
 */
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CarReader } from '@ipld/car'
import * as dagJson from '@ipld/dag-json'
import { CID } from 'multiformats/cid'
import { build, pack, publish, serve } from '../src/index.js'
import { blockLinks } from '../src/car/block.js'
import { linksInRelease, releaseLinks } from '../src/release/links.js'
import { BlockStore } from '../src/store/blocks.js'
import { cairn, parseJson } from './helpers/cli.js'
import { FIXED_DATE, jsonl, makeDataset, tempDir, type TempDataset } from './helpers/dataset.js'
import { startKuboStandin } from './helpers/kubo-standin.js'

const rows = Array.from({ length: 12 }, (_, i) => ({ id: i, text: `row ${i}` }))

let a: TempDataset
let b: TempDataset
let work: string
let a1: CID
let b1: CID
let card: CID
/** The blocks of a1's release, from its CAR, by CID string. */
let sourceBlocks: Set<string>
/** Those of them that are not also blocks of b1's own release (the two share a row schema). */
let sourceOnly: string[]
let bCar: string

/** Roots and block CIDs of a CAR, read with @ipld/car. */
async function readCar(bytes: Uint8Array): Promise<{ roots: string[]; cids: string[] }> {
  const reader = await CarReader.fromBytes(bytes)
  const cids: string[] = []
  for await (const block of reader.blocks()) cids.push(block.cid.toString())
  return { roots: (await reader.getRoots()).map(String), cids }
}

beforeAll(async () => {
  work = await tempDir('cairn-card-links-')
  a = await makeDataset(
    { 'train.jsonl': jsonl(rows), 'test.jsonl': jsonl(rows.slice(0, 3)) },
    { card: { cardVersion: 1, name: 'src-a', license: 'CC0-1.0' } },
  )
  a1 = (await build({ dir: a.dir, date: FIXED_DATE, message: 'a1' })).version
  const aCar = join(work, 'a1.car')
  await pack({ dir: a.dir, ref: a1.toString(), output: aCar })
  b = await makeDataset(
    { 'train.jsonl': jsonl(rows.filter((r) => r.id % 2 === 0)) },
    {
      card: {
        cardVersion: 1,
        name: 'filtered-b',
        license: 'CC0-1.0',
        derivedFrom: [{ release: { '/': a1.toString() }, role: 'filtered-from', select: ['train.jsonl'] }],
      },
    },
  )
  // no --from: the source is recorded unverified, and b's store holds nothing of it
  b1 = (await build({ dir: b.dir, date: FIXED_DATE, message: 'b1' })).version
  const reader = await CarReader.fromBytes(await readFile(aCar))
  // then the store gets a1's release, as a store that also cloned the source would hold it
  const store = new BlockStore(join(b.dir, '.cairn'))
  sourceBlocks = new Set()
  try {
    for await (const block of reader.blocks()) {
      const cid = CID.decode(block.cid.bytes)
      sourceBlocks.add(cid.toString())
      await store.put(cid, block.bytes)
    }
  } finally {
    await store.close()
  }
  const version = dagJson.decode<{ card: CID }>(await getBlock(b1))
  card = CID.asCID(version.card) as CID
  bCar = join(work, 'b1.car')
  await pack({ dir: b.dir, ref: b1.toString(), output: bCar })
  const own = new Set((await readCar(await readFile(bCar))).cids)
  sourceOnly = [...sourceBlocks].filter((c) => !own.has(c))
  expect(sourceOnly).toContain(a1.toString())
}, 60_000)

afterAll(async () => {
  await a?.cleanup()
  await b?.cleanup()
  await rm(work, { recursive: true, force: true })
})

/** A block of b's store, read (and checked) by the store. */
async function getBlock(cid: CID): Promise<Uint8Array> {
  const store = new BlockStore(join(b.dir, '.cairn'))
  try {
    return await store.get(cid)
  } finally {
    await store.close()
  }
}

describe('the card rule sits at the release boundary', () => {
  it('blockLinks reports every link of a card; the release walk none of them', async () => {
    const bytes = await getBlock(card)
    expect(blockLinks(card, bytes).map(String)).toEqual([a1.toString()])
    expect(linksInRelease(card, bytes)).toEqual([])
    expect(releaseLinks(card, bytes, Infinity)).toEqual([])
  })

  it('dag-scope=all on a version whose card links to another release returns the linked blocks the store has', async () => {
    const server = await serve({ dir: b.dir, port: 0 })
    try {
      const res = await fetch(`${server.url}/ipfs/${b1}?format=car&dag-scope=all`)
      expect(res.status).toBe(200)
      const got = await readCar(new Uint8Array(await res.arrayBuffer()))
      expect(got.roots).toEqual([b1.toString()])
      const cids = new Set(got.cids)
      // every block of the source release, reached through the card's link
      expect(cids.has(a1.toString())).toBe(true)
      for (const c of sourceBlocks) expect(cids.has(c), c).toBe(true)
      expect(got.cids.length).toBe(cids.size) // each block once
    } finally {
      await server.close()
    }
  })

  it('pack leaves the source out, and verify --car treats the card link as a reference', async () => {
    const packed = await readCar(await readFile(bCar))
    expect(packed.cids).toContain(card.toString())
    expect(packed.cids).not.toContain(a1.toString())
    expect(sourceOnly.length).toBeGreaterThan(1)
    const r = await cairn(['verify', '--car', bCar, '--json'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(parseJson<{ ok: boolean; problems: unknown[] }>(r)).toMatchObject({ ok: true, problems: [] })
  })

  it('verify --car of the whole DAG (dag-scope=all) passes too, the source inside it', async () => {
    const server = await serve({ dir: b.dir, port: 0 })
    const file = join(work, 'all.car')
    try {
      const res = await fetch(`${server.url}/ipfs/${b1}?format=car&dag-scope=all`)
      await writeFile(file, new Uint8Array(await res.arrayBuffer()))
    } finally {
      await server.close()
    }
    const r = await cairn(['verify', '--car', file, '--json'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
  })

  it('a publish to Kubo pins the card directly: a recursive pin would walk into the source, which the node lacks', async () => {
    const standin = await startKuboStandin()
    try {
      await publish({ dir: b.dir, ref: b1.toString(), to: `kubo:${standin.url}` })
      expect(standin.direct.has(card.toString())).toBe(true)
      expect(standin.direct.has(b1.toString())).toBe(true)
      const sent = new Set(standin.blocks.keys())
      expect(sourceOnly.filter((c) => sent.has(c))).toEqual([])
    } finally {
      await standin.close()
    }
  })
})
