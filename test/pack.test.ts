/**
 * `pack`: the CAR is read back with independent readers (`@ipld/car`, `ipfs-unixfs-exporter`,
 * multiformats' sha2-256) and must hold exactly the version's DAG, depth-first, once each block.
 */
import { createWriteStream } from 'node:fs'
import { open, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { once } from 'node:events'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CarBlockIterator, CarReader } from '@ipld/car'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { exporter, type UnixFSEntry } from 'ipfs-unixfs-exporter'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { build, CairnError, ls, pack, show, type ShardEntry } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { writeCar } from '../src/pack.js'
import { FIXED_DATE, jsonl, makeDataset, seededBytes, tempDir, thrown, type FileSpec, type TempDataset } from './helpers/dataset.js'

const MiB = 1024 * 1024

const files: FileSpec = {
  'hello.txt': 'hello world',
  'empty.txt': '',
  'big/multi.bin': seededBytes(2 * MiB + 777, 'multi'),
  'big/exactly-two-chunks.bin': seededBytes(2 * MiB, 'two'),
  'big/one-chunk.bin': seededBytes(MiB, 'one'),
  'data/rows.jsonl': jsonl([{ id: 1 }, { id: 2 }]),
  'data/table.csv': 'a,b\n1,2\n',
  // the same bytes twice: their block must appear once in the CAR
  'dup/one.txt': 'same content',
  'dup/two.txt': 'same content',
  'a/b/c/deep.txt': 'deep',
}

let ds: TempDataset
let out: string
let carFile: string
let car: Uint8Array
let version: CID
/** The CAR's blocks in file order. */
let blocks: { cid: CID; bytes: Uint8Array }[]

/** An in-memory blockstore over the CAR's blocks, in the shape ipfs-unixfs-exporter reads. */
function blockstore(): { get(cid: CID): Generator<Uint8Array> } {
  const byCid = new Map(blocks.map((b) => [b.cid.toString(), b.bytes]))
  return {
    *get(cid: CID): Generator<Uint8Array> {
      const bytes = byCid.get(cid.toString())
      if (!bytes) throw new Error(`block ${cid} is not in the CAR`)
      yield bytes
    },
  }
}

async function contentOf(entry: UnixFSEntry): Promise<Buffer> {
  if (entry.type !== 'file' && entry.type !== 'raw') throw new Error(`${entry.path} is a ${entry.type}, expected a file`)
  const parts: Uint8Array[] = []
  for await (const part of entry.content()) parts.push(part)
  return Buffer.concat(parts)
}

beforeAll(async () => {
  ds = await makeDataset(files)
  out = await tempDir('cairn-pack-out-')
  await build({ dir: ds.dir, message: 'pack me', date: FIXED_DATE })
  carFile = join(out, 'v.car')
  const result = await pack({ dir: ds.dir, output: carFile })
  version = result.root
  car = await readFile(carFile)
  blocks = []
  for await (const b of await CarBlockIterator.fromBytes(car)) blocks.push({ cid: CID.asCID(b.cid) as CID, bytes: b.bytes })
  expect(result.blocks).toBe(blocks.length)
})

afterAll(async () => {
  await ds?.cleanup()
  if (out) await rm(out, { recursive: true, force: true })
})

describe('the CAR', () => {
  it('has one root, the version CID (HEAD), and starts with the version block', async () => {
    const reader = await CarReader.fromBytes(car)
    const roots = await reader.getRoots()
    expect(roots.map(String)).toEqual([version.toString()])
    expect(version.toString()).toBe((await show({ dir: ds.dir })).cid.toString())
    expect(blocks[0].cid.toString()).toBe(version.toString())
    expect(reader.version).toBe(1)
  })

  it('holds every block once, and each block hashes to its CID (multiformats sha2-256)', async () => {
    const seen = new Set<string>()
    for (const { cid, bytes } of blocks) {
      expect(seen.has(cid.toString()), `duplicate ${cid}`).toBe(false)
      seen.add(cid.toString())
      expect(cid.version).toBe(1)
      expect(cid.multihash.code).toBe(sha256.code)
      const digest = await sha256.digest(bytes)
      expect(Buffer.from(digest.digest).equals(Buffer.from(cid.multihash.digest)), `block ${cid} does not hash to its CID`).toBe(true)
      expect(bytes.length).toBeLessThanOrEqual(MiB)
    }
  })

  it('is depth-first pre-order over the links, children in link order, and holds nothing else', () => {
    const byCid = new Map(blocks.map((b) => [b.cid.toString(), b.bytes]))
    const order: string[] = []
    const seen = new Set<string>()
    const visit = (cid: CID): void => {
      const key = cid.toString()
      if (seen.has(key)) return
      seen.add(key)
      order.push(key)
      const bytes = byCid.get(key)
      if (!bytes) throw new Error(`${key} is linked but not in the CAR`)
      for (const link of linksOf(cid, bytes)) visit(link)
    }
    visit(version)
    expect(blocks.map((b) => b.cid.toString())).toEqual(order)
  })

  it('rebuilds every shard byte for byte with ipfs-unixfs-exporter, from the CAR alone', async () => {
    const entries: ShardEntry[] = []
    for await (const e of ls({ dir: ds.dir })) entries.push(e)
    expect(entries.map((e) => e.path).sort()).toEqual(Object.keys(files).sort())
    const bs = blockstore()
    for (const e of entries) {
      const original = Buffer.from(files[e.path])
      const exported = await contentOf(await exporter(e.cid, bs))
      expect(exported.length, e.path).toBe(original.length)
      expect(exported.equals(original), `${e.path} differs`).toBe(true)
      expect(e.size).toBe(original.length)
    }
    const byPath = new Map(entries.map((e) => [e.path, e]))
    // the profile's layout: one raw block up to 1 MiB, a dag-pb root above it
    expect(byPath.get('hello.txt')?.cid.toString()).toBe('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e')
    expect(byPath.get('big/one-chunk.bin')?.cid.code).toBe(raw.code)
    expect(byPath.get('empty.txt')?.cid.code).toBe(raw.code)
    expect(byPath.get('big/multi.bin')?.cid.code).toBe(dagPb.code)
    expect(byPath.get('big/exactly-two-chunks.bin')?.cid.code).toBe(dagPb.code)
    expect(byPath.get('dup/one.txt')?.cid.toString()).toBe(byPath.get('dup/two.txt')?.cid.toString())
  })

  it('holds the tree: a UnixFS directory listing every shard path with the same file CIDs', async () => {
    const { manifest } = await show({ dir: ds.dir })
    const bs = blockstore()
    const found = new Map<string, string>()
    const walk = async (cid: CID, prefix: string): Promise<void> => {
      const entry = await exporter(cid, bs)
      if (entry.type === 'directory') {
        for await (const child of entry.entries()) await walk(child.cid, prefix === '' ? child.name : `${prefix}/${child.name}`)
      } else {
        found.set(prefix, cid.toString())
        const content = await contentOf(entry)
        expect(content.equals(Buffer.from(files[prefix])), `${prefix} in the tree differs`).toBe(true)
      }
    }
    await walk(manifest.tree, '')
    expect([...found.keys()].sort()).toEqual(Object.keys(files).sort())
    for await (const e of ls({ dir: ds.dir })) expect(found.get(e.path)).toBe(e.cid.toString())
  })

  it('writes the same bytes to a stream as to a file', async () => {
    const file = join(out, 'stream.car')
    const stream = createWriteStream(file)
    const result = await pack({ dir: ds.dir, output: stream })
    if (!stream.writableFinished) await once(stream, 'finish')
    expect(result.root.toString()).toBe(version.toString())
    expect((await readFile(file)).equals(Buffer.from(car))).toBe(true)
  })
})

describe('pack of older versions and failures', () => {
  it('packs HEAD~1, whose CAR differs and whose root is the parent', async () => {
    const d = await makeDataset({ 'a.txt': 'one' })
    try {
      const first = await build({ dir: d.dir, date: FIXED_DATE })
      await d.write({ 'a.txt': 'two' })
      await build({ dir: d.dir, date: FIXED_DATE })
      const file = join(out, 'old.car')
      const r = await pack({ dir: d.dir, ref: 'HEAD~1', output: file })
      expect(r.root.toString()).toBe(first.version.toString())
      const reader = await CarReader.fromBytes(await readFile(file))
      expect((await reader.getRoots()).map(String)).toEqual([first.version.toString()])
      const rawCid = async (text: string): Promise<CID> => CID.createV1(raw.code, await sha256.digest(Buffer.from(text)))
      expect(await reader.has(await rawCid('one'))).toBe(true)
      expect(await reader.has(await rawCid('two'))).toBe(false)
    } finally {
      await d.cleanup()
    }
  })

  it('MISSING_BLOCK when the store lacks a block of the DAG, and nothing is left at the output path', async () => {
    const d = await makeDataset({ 'a.bin': seededBytes(3 * MiB, 'gone') })
    try {
      const r = await build({ dir: d.dir, date: FIXED_DATE })
      const { store } = await openDataset(d.dir)
      // drop the second chunk of the file
      const root = (await (async () => {
        for await (const e of ls({ dir: d.dir })) return e
      })()) as ShardEntry
      const node = dagPb.decode(await store.get(root.cid))
      await dropFromIndex(d.dir, node.Links[1].Hash as unknown as CID)
      const outDir = await tempDir('cairn-pack-missing-')
      try {
        const file = join(outDir, 'x.car')
        const e = await thrown(() => pack({ dir: d.dir, output: file }))
        expect(e).toBeInstanceOf(CairnError)
        expect((e as CairnError).code).toBe('MISSING_BLOCK')
        expect((e as CairnError).message).toContain(node.Links[1].Hash.toString())
        expect(await readdir(outDir)).toEqual([])
      } finally {
        await rm(outDir, { recursive: true, force: true })
      }
      expect(r.version).toBeDefined()
    } finally {
      await d.cleanup()
    }
  })

  it('CORRUPT_BLOCK when a block in the store no longer hashes to its CID', async () => {
    const d = await makeDataset({ 'a.txt': 'intact bytes', 'b.txt': 'other' })
    try {
      await build({ dir: d.dir, date: FIXED_DATE })
      const { store } = await openDataset(d.dir)
      const cid = CID.createV1(raw.code, await sha256.digest(Buffer.from('intact bytes')))
      const at = await store.locationOf(cid)
      expect(at?.length).toBe('damaged byte'.length)
      const fh = await open(at!.file, 'r+')
      await fh.write(Buffer.from('damaged byte'), 0, at!.length, at!.offset)
      await fh.close()
      const file = join(out, 'corrupt.car')
      const e = await thrown(() => pack({ dir: d.dir, output: file }))
      expect((e as CairnError).code).toBe('CORRUPT_BLOCK')
      expect((e as CairnError).message).toContain(cid.toString())
      await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' })
    } finally {
      await d.cleanup()
    }
  })

  it('packs a version without shards: the card, an empty index and an empty directory', async () => {
    const d = await makeDataset({})
    try {
      const r = await build({ dir: d.dir, date: FIXED_DATE })
      expect(r.manifest.totals).toEqual({ shards: 0, bytes: 0, rows: 0 })
      const file = join(out, 'empty.car')
      const packed = await pack({ dir: d.dir, output: file })
      const got: { cid: CID; bytes: Uint8Array }[] = []
      for await (const b of await CarBlockIterator.fromBytes(await readFile(file)))
        got.push({ cid: CID.asCID(b.cid) as CID, bytes: b.bytes })
      expect(got[0].cid.toString()).toBe(packed.root.toString())
      expect(got).toHaveLength(4)
      const tree = await exporter(r.manifest.tree, {
        *get(cid: CID) {
          const hit = got.find((b) => b.cid.equals(cid))
          if (!hit) throw new Error(`no ${cid}`)
          yield hit.bytes
        },
      })
      expect(tree.type).toBe('directory')
      if (tree.type === 'directory') {
        const names: string[] = []
        for await (const e of tree.entries()) names.push(e.name)
        expect(names).toEqual([])
      }
    } finally {
      await d.cleanup()
    }
  })

  it('BAD_REF for an unknown ref', async () => {
    const e = await thrown(() => pack({ dir: ds.dir, ref: 'no-such-tag', output: join(out, 'bad.car') }))
    expect((e as CairnError).code).toBe('BAD_REF')
  })
})

/** A block's links in its codec's order, decoded independently of cairn. */
function linksOf(cid: CID, bytes: Uint8Array): CID[] {
  if (cid.code === raw.code) return []
  if (cid.code === dagPb.code) return dagPb.decode(bytes).Links.map((l) => CID.asCID(l.Hash) as CID)
  if (cid.code === dagJson.code) {
    const links: CID[] = []
    const visit = (v: unknown): void => {
      if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return
      const link = CID.asCID(v)
      if (link) links.push(link)
      else if (Array.isArray(v)) v.forEach(visit)
      else {
        // dag-json orders map keys by their UTF-8 bytes
        const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
        for (const k of keys) visit((v as Record<string, unknown>)[k])
      }
    }
    visit(dagJson.decode(bytes))
    return links
  }
  throw new Error(`unexpected codec 0x${cid.code.toString(16)} in ${cid}`)
}

/** Removes a block from the store's index logs, as if it had never been stored. */
async function dropFromIndex(dir: string, cid: CID): Promise<void> {
  const packs = join(dir, '.cairn', 'packs')
  for (const name of (await readdir(packs)).filter((n) => n.endsWith('.idx'))) {
    const text = await readFile(join(packs, name), 'utf8')
    await writeFile(
      join(packs, name),
      text
        .split('\n')
        .filter((l) => !l.startsWith(cid.toString() + ' '))
        .join('\n'),
    )
  }
}

describe('writeCar into a stream its reader closes early', () => {
  it('rejects instead of waiting forever for a drain that cannot come', { timeout: 15_000 }, async () => {
    const dataset = await openDataset(ds.dir)
    try {
      const pass = new PassThrough({ highWaterMark: 1024 })
      const written = writeCar(dataset.store, version, pass)
      // the reader takes one chunk, then goes away (a cancelled upload)
      await once(pass, 'readable')
      pass.read()
      pass.destroy()
      const e = await written.then(
        () => undefined,
        (err: unknown) => err,
      )
      expect((e as NodeJS.ErrnoException)?.code).toBe('ERR_STREAM_PREMATURE_CLOSE')
    } finally {
      await dataset.store.close()
    }
  })
})
