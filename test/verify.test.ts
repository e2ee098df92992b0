/**
 * `verify`: a folder against a version (modified, missing and extra files, the card) and a packed CAR
 * (one-byte corruption of every block, truncation at every boundary and inside every section).
 */
import { utimesSync } from 'node:fs'
import { cp, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CarIndexer } from '@ipld/car'
import { build, CairnError, ls, pack, verify, type CarReport, type ShardEntry } from '../src/index.js'
import {
  DEFAULT_CARD,
  FIXED_DATE,
  jsonl,
  makeDataset,
  seededBytes,
  tempDir,
  thrown,
  type FileSpec,
  type TempDataset,
} from './helpers/dataset.js'

const MiB = 1024 * 1024
const BIG = 3 * MiB + 4321

const files: FileSpec = {
  'big.bin': seededBytes(BIG, 'big'),
  'small.txt': 'small file',
  'empty.txt': '',
  'data/rows.jsonl': jsonl([{ id: 1 }, { id: 2 }]),
  'data/deeper/table.csv': 'a,b\n1,2\n',
}

let ds: TempDataset
let scratch: string
let entries: ShardEntry[]

beforeAll(async () => {
  ds = await makeDataset(files)
  scratch = await tempDir('cairn-verify-')
  await build({ dir: ds.dir, message: 'v1', date: FIXED_DATE })
  entries = []
  for await (const e of ls({ dir: ds.dir })) entries.push(e)
})

afterAll(async () => {
  await ds?.cleanup()
  if (scratch) await rm(scratch, { recursive: true, force: true })
})

/** Verifies the dataset folder against HEAD, naming the dataset explicitly (the cwd is not one). */
function verifyFolder(dir = ds.dir): ReturnType<typeof verify> {
  return verify({ dataset: ds.dir, dir })
}

/** Runs `fn` with `path` (relative to the dataset) temporarily rewritten by `change`. */
async function withChanged(path: string, change: (bytes: Buffer) => Buffer, fn: () => Promise<void>): Promise<void> {
  const abs = join(ds.dir, path)
  const original = await readFile(abs)
  await writeFile(abs, change(Buffer.from(original)))
  try {
    await fn()
  } finally {
    await writeFile(abs, original)
  }
}

describe('verify a folder', () => {
  it('is ok for the folder the version was built from', async () => {
    const r = await verifyFolder()
    expect(r).toMatchObject({ kind: 'folder', ok: true, missing: [], extra: [], modified: [], card: 'same' })
    expect(r.checked).toBe(Object.keys(files).length)
    expect(r.bytes).toBe(Object.values(files).reduce((n, c) => n + Buffer.byteLength(c), 0))
  })

  it('is ok for a copy of the folder elsewhere', async () => {
    const copy = join(scratch, 'copy')
    await cp(ds.dir, copy, { recursive: true, filter: (src) => !src.includes('.cairn') })
    try {
      const r = await verifyFolder(copy)
      expect(r.ok).toBe(true)
      expect(r.card).toBe('same')
    } finally {
      await rm(copy, { recursive: true, force: true })
    }
  })

  it.each([
    ['the first byte', 0],
    ['a middle byte (second chunk)', Math.floor(BIG / 2)],
    ['a byte on a chunk boundary', MiB],
    ['the last byte', BIG - 1],
  ])('names a multi-chunk file with %s flipped (same size) as modified', async (_what, offset) => {
    await withChanged(
      'big.bin',
      (b) => {
        b[offset] ^= 0x01
        return b
      },
      async () => {
        const r = await verifyFolder()
        expect(r.ok).toBe(false)
        expect(r.missing).toEqual([])
        expect(r.extra).toEqual([])
        expect(r.modified.map((m) => m.path)).toEqual(['big.bin'])
        const [m] = r.modified
        const expected = entries.find((e) => e.path === 'big.bin') as ShardEntry
        expect(m.expected.cid.toString()).toBe(expected.cid.toString())
        expect(m.expected.size).toBe(BIG)
        expect(m.actual.size).toBe(BIG)
        expect(m.actual.cid).toBeDefined()
        expect(m.actual.cid?.toString()).not.toBe(expected.cid.toString())
      },
    )
    expect((await verifyFolder()).ok).toBe(true)
  })

  it('names a one-chunk file with one byte changed as modified', async () => {
    await withChanged(
      'data/deeper/table.csv',
      (b) => Buffer.from(b.toString().replace('1', '9')),
      async () => {
        const r = await verifyFolder()
        expect(r.modified.map((m) => m.path)).toEqual(['data/deeper/table.csv'])
      },
    )
  })

  it('names a file whose size changed as modified, with both sizes', async () => {
    await withChanged(
      'small.txt',
      (b) => Buffer.concat([b, Buffer.from('!')]),
      async () => {
        const r = await verifyFolder()
        expect(r.ok).toBe(false)
        expect(r.modified).toHaveLength(1)
        expect(r.modified[0]).toMatchObject({ path: 'small.txt', expected: { size: 10 }, actual: { size: 11 } })
      },
    )
  })

  it('lists missing and extra files', async () => {
    await rm(join(ds.dir, 'data', 'rows.jsonl'))
    await rm(join(ds.dir, 'empty.txt'))
    await writeFile(join(ds.dir, 'data', 'new.txt'), 'not in the version')
    await writeFile(join(ds.dir, 'zz.txt'), 'nor this')
    try {
      const r = await verifyFolder()
      expect(r.ok).toBe(false)
      expect(r.missing).toEqual(['data/rows.jsonl', 'empty.txt'])
      expect(r.extra).toEqual(['data/new.txt', 'zz.txt'])
      expect(r.modified).toEqual([])
      expect(r.card).toBe('same')
    } finally {
      await writeFile(join(ds.dir, 'data', 'rows.jsonl'), files['data/rows.jsonl'])
      await writeFile(join(ds.dir, 'empty.txt'), '')
      await rm(join(ds.dir, 'data', 'new.txt'))
      await rm(join(ds.dir, 'zz.txt'))
    }
    expect((await verifyFolder()).ok).toBe(true)
  })

  it('walks a folder of many files alongside the index: every wave, missing, extra and modified file in path order', async () => {
    // more files than one hashing wave (512), names whose order a plain string sort gets wrong in a
    // tree ('a-b' < 'a/…' < 'a0' in bytes, and a folder sorts as its name followed by '/')
    const spec: FileSpec = {}
    for (let i = 0; i < 1300; i++) spec[`d${i % 7}/${i % 3 ? 'x' : 'y'}/f${String(i).padStart(4, '0')}.txt`] = `file ${i}`
    for (const name of ['a-b', 'a/b', 'a/c/d', 'a0', 'a.b', 'é/x', 'z']) spec[name] = `named ${name}`
    const many = await makeDataset(spec)
    try {
      await build({ dir: many.dir, message: 'many', date: FIXED_DATE })
      const paths = Object.keys(spec)
      const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))
      const missing = paths.filter((_, k) => k % 5 === 1)
      const modified = paths.filter((_, k) => k % 11 === 3)
      const resized = paths.filter((_, k) => k % 13 === 4 && k % 5 !== 1 && k % 11 !== 3)
      const extra = ['a/a', 'a-a', 'a/c/e', 'd3/x/f0000.txu', 'd3/xx', 'zz', 'é/y', '0']
      for (const p of missing) await rm(join(many.dir, p))
      for (const p of modified.filter((m) => !missing.includes(m)))
        await writeFile(join(many.dir, p), spec[p].toString().replace(/.$/, '#'))
      for (const p of resized) await writeFile(join(many.dir, p), spec[p] + '+')
      for (const p of extra) await writeFile(join(many.dir, p), 'extra')
      const r = await verify({ dataset: many.dir, dir: many.dir })
      expect(r.missing).toEqual([...missing].sort(byBytes))
      expect(r.extra).toEqual([...extra].sort(byBytes))
      expect(r.modified.map((m) => m.path)).toEqual([...modified.filter((m) => !missing.includes(m)), ...resized].sort(byBytes))
      expect(r.checked).toBe(paths.length - missing.length)
      expect(r.ok).toBe(false)
    } finally {
      await many.cleanup()
    }
  })

  it("reports an edited card as 'modified', and the same card reformatted as 'same'", async () => {
    const card = join(ds.dir, 'cairn.json')
    const original = await readFile(card)
    try {
      await writeFile(card, JSON.stringify({ ...DEFAULT_CARD, description: 'edited after the build' }))
      const r = await verifyFolder()
      expect(r.card).toBe('modified')
      expect(r.ok).toBe(false)
      expect(r.modified).toEqual([])
      // key order and whitespace are not content
      await writeFile(card, JSON.stringify({ license: DEFAULT_CARD.license, name: DEFAULT_CARD.name, cardVersion: 1 }))
      expect((await verifyFolder()).card).toBe('same')
    } finally {
      await writeFile(card, original)
    }
  })

  it("reports a missing card as 'missing'", async () => {
    const copy = join(scratch, 'nocard')
    await cp(ds.dir, copy, { recursive: true, filter: (src) => !src.includes('.cairn') && !src.endsWith('cairn.json') })
    try {
      const r = await verifyFolder(copy)
      expect(r.card).toBe('missing')
      expect(r.ok).toBe(false)
      expect(r.modified).toEqual([])
    } finally {
      await rm(copy, { recursive: true, force: true })
    }
  })
})

describe('verify a CAR', () => {
  /** A small version: a few blocks of every kind (dag-json manifests, dag-pb directories and file root, raw). */
  let small: TempDataset
  let carFile: string
  let car: Buffer
  let sections: { cid: string; offset: number; blockOffset: number; blockLength: number }[]
  let root: string

  beforeAll(async () => {
    small = await makeDataset({
      'a.txt': 'alpha',
      'b/c.txt': 'gamma',
      'b/two-chunks.bin': seededBytes(MiB + 10, 'two'),
      'rows.jsonl': jsonl([{ x: 1 }]),
    })
    await build({ dir: small.dir, date: FIXED_DATE })
    carFile = join(scratch, 'small.car')
    root = (await pack({ dir: small.dir, output: carFile })).root.toString()
    car = await readFile(carFile)
    sections = []
    for await (const s of await CarIndexer.fromBytes(car)) {
      sections.push({ cid: s.cid.toString(), offset: s.offset, blockOffset: s.blockOffset, blockLength: s.blockLength })
    }
  })

  afterAll(async () => {
    await small?.cleanup()
  })

  async function verifyBytes(bytes: Uint8Array, name: string): Promise<CarReport | CairnError> {
    const file = join(scratch, name)
    await writeFile(file, bytes)
    try {
      return await verify({ car: file })
    } catch (e) {
      if (e instanceof CairnError) return e
      throw e
    } finally {
      await rm(file, { force: true })
    }
  }

  it('is ok for a packed version', async () => {
    const r = await verify({ car: carFile })
    expect(r.kind).toBe('car')
    expect(r.ok).toBe(true)
    expect(r.problems).toEqual([])
    expect(r.roots.map(String)).toEqual([root])
    expect(r.blocks).toBe(sections.length)
    expect(r.bytes).toBe(car.length)
    expect(sections.length).toBeGreaterThan(8)
  })

  it('is not ok when any one block has one byte flipped, and names that block’s CID', async () => {
    for (const s of sections) {
      const bad = Buffer.from(car)
      bad[s.blockOffset + Math.floor(s.blockLength / 2)] ^= 0x80
      const r = await verifyBytes(bad, 'flipped.car')
      expect(r, `flip in ${s.cid} threw`).not.toBeInstanceOf(CairnError)
      const report = r as CarReport
      expect(report.ok, `flip in ${s.cid} went unnoticed`).toBe(false)
      expect(report.problems.some((p) => p.kind === 'corrupt' && p.cid === s.cid)).toBe(true)
    }
  })

  it('is not ok when any one section’s CID has a digest byte flipped', async () => {
    for (const s of sections) {
      const bad = Buffer.from(car)
      bad[s.blockOffset - 1] ^= 0x01
      const r = await verifyBytes(bad, 'cid-flipped.car')
      expect(r).not.toBeInstanceOf(CairnError)
      const report = r as CarReport
      expect(report.ok).toBe(false)
      expect(report.problems.length).toBeGreaterThan(0)
      expect(report.problems.every((p) => typeof p.cid === 'string')).toBe(true)
      // the original block is now absent under its own CID
      expect(report.problems.some((p) => p.kind === 'missing' && p.cid === s.cid)).toBe(true)
    }
  })

  it('is never ok when truncated: at every section boundary, inside every section, inside the header', async () => {
    const cuts = new Set<number>([0, 1, 5, sections[0].offset - 1])
    for (const s of sections) {
      cuts.add(s.offset)
      cuts.add(s.offset + 1)
      cuts.add(s.blockOffset)
      cuts.add(s.blockOffset + Math.floor(s.blockLength / 2))
    }
    cuts.add(car.length - 1)
    for (const cut of [...cuts].filter((c) => c >= 0 && c < car.length).sort((a, b) => a - b)) {
      const r = await verifyBytes(car.subarray(0, cut), 'truncated.car')
      if (r instanceof CairnError) {
        // only a file cut inside its header may be rejected as not a CAR
        expect(cut, `cut at ${cut}: ${r.message}`).toBeLessThan(sections[0].offset)
        expect(r.code).toBe('BAD_CAR')
        continue
      }
      expect(r.ok, `cut at ${cut} of ${car.length} went unnoticed`).toBe(false)
      expect(r.problems.length).toBeGreaterThan(0)
      for (const p of r.problems) expect(['truncated', 'missing']).toContain(p.kind)
      expect(r.problems.some((p) => p.kind === 'missing')).toBe(true)
    }
  })

  it('throws IO for a CAR file that does not exist', async () => {
    const e = await thrown(() => verify({ car: join(scratch, 'nope.car') }))
    expect(e).toBeInstanceOf(CairnError)
    expect((e as CairnError).code).toBe('IO')
  })
})

describe('verify while files are touched', () => {
  it('a file touched after the scan but unchanged in content is not modified', async () => {
    const many: FileSpec = {}
    for (let i = 0; i < 150; i++) many[`f/${String(i).padStart(3, '0')}.txt`] = `file ${i}`
    const d = await makeDataset(many)
    try {
      await build({ dir: d.dir, date: FIXED_DATE })
      let touched = false
      const report = await verify({
        dir: d.dir,
        dataset: d.dir,
        onProgress: () => {
          if (touched) return
          touched = true
          // the last file is read after this (files are hashed 64 at a time, in order)
          const last = join(d.dir, 'f/149.txt')
          utimesSync(last, new Date('2002-02-02'), new Date('2002-02-02'))
        },
      })
      expect(touched).toBe(true)
      expect(report.ok).toBe(true)
    } finally {
      await d.cleanup()
    }
  })
})
