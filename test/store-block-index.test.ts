// The store's block index on disk (src/store/block-index/): sorted runs made from the index logs, looked
// up by CID, checked against a plain Map of what the logs hold, whatever the buffer sizes.
import { spawn } from 'node:child_process'
import {
  appendFileSync,
  closeSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { create as digestOf } from 'multiformats/hashes/digest'
import { afterEach, describe, expect, it } from 'vitest'
import { cidFor, cidText, RAW } from '../src/cid.js'
import { BlockIndex, type BlockIndexOptions } from '../src/store/block-index/block-index.js'
import { readLog } from '../src/store/block-index/log.js'
import { BlockStore } from '../src/store/blocks.js'
import { SortedRun } from '../src/store/block-index/run.js'
import { build, gc, pack, verify } from '../src/index.js'
import { FIXED_DATE, jsonl, makeDataset, seededBytes } from './helpers/dataset.js'
import { repoRoot } from './helpers/tmp.js'

const made: string[] = []
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
})
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'cairn-bi-'))
  made.push(d)
  return d
}

/** CIDs of every shape the store may see: raw and dag-json sha2-256, a short identity CID (under 8 bytes), a sha2-512 one. */
const POOL: CID[] = Array.from({ length: 48 }, (_, i) => {
  const bytes = new TextEncoder().encode(`block ${i}`)
  if (i % 12 === 5) return CID.createV1(0x55, digestOf(0x00, new Uint8Array([i, 7])))
  if (i % 12 === 7) return CID.createV1(0x55, digestOf(0x13, new Uint8Array(64).fill(i)))
  return cidFor(i % 3 === 0 ? 0x0129 : RAW, bytes) as unknown as CID
})

type Op =
  | { op: 'append'; pack: number; entries: { cid: number; offset: number; length: number }[] }
  | { op: 'garbage'; pack: number; text: string }
  | { op: 'torn'; pack: number }
  | { op: 'delete'; pack: number }
  | { op: 'refresh'; which: number }
  | { op: 'reopen'; which: number; options: BlockIndexOptions }

const optionsArb: fc.Arbitrary<BlockIndexOptions> = fc.record({
  spillEntries: fc.integer({ min: 1, max: 9 }),
  logBufferBytes: fc.integer({ min: 1, max: 300 }),
  mergeBufferRecords: fc.integer({ min: 1, max: 5 }),
  residentAfterLookups: fc.integer({ min: 0, max: 60 }),
})
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('append' as const),
      pack: fc.integer({ min: 0, max: 3 }),
      entries: fc.array(
        fc.record({
          cid: fc.integer({ min: 0, max: POOL.length - 1 }),
          offset: fc.integer({ min: 0, max: 2 ** 40 }),
          length: fc.integer({ min: 0, max: 1 << 20 }),
        }),
        { minLength: 1, maxLength: 12 },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('garbage' as const),
      pack: fc.integer({ min: 0, max: 3 }),
      text: fc.constantFrom('garbage', 'bafy 1', 'x 1 2', ' 1 2', `${POOL[0]} -1 2`, `${POOL[1]} 1 NaN`, 'z'.repeat(5000)),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('torn' as const), pack: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('delete' as const), pack: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('refresh' as const), which: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const), which: fc.integer({ min: 0, max: 1 }), options: optionsArb }) },
)

describe('block index: sorted runs against a Map of the logs', () => {
  it('finds every block whose log line is whole, at one of its places, and nothing else, whatever the buffers, spills and merges', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), optionsArb, optionsArb, (ops, o0, o1) => {
        const root = tmp()
        const packsDir = join(root, 'packs')
        const runsDir = join(root, 'block-index')
        mkdirSync(packsDir)
        // the model: per pack, its whole lines' entries (a pack killed mid-line takes no more appends)
        const logs = new Map<number, { cid: number; offset: number; length: number }[]>()
        const closed = new Set<number>()
        // packs get fresh names once deleted: gc never reuses a pack's name
        const names = [0, 1, 2, 3].map((i) => `p${i}`)
        const indexes = [new BlockIndex(packsDir, runsDir, o0), new BlockIndex(packsDir, runsDir, o1)]
        const check = (index: BlockIndex): void => {
          POOL.forEach((cid, i) => {
            const places = new Set<string>()
            for (const [pack, entries] of logs)
              for (const e of entries) if (e.cid === i) places.add(`${names[pack]} ${e.offset} ${e.length}`)
            const at = index.get(cid.bytes)
            if (places.size === 0) expect(at, `${cid} should be absent`).toBeUndefined()
            else expect(places, `${cid}`).toContain(at && `${at.pack} ${at.offset} ${at.length}`)
          })
        }
        for (const op of ops) {
          if (op.op === 'refresh') {
            indexes[op.which].refresh()
            check(indexes[op.which])
          } else if (op.op === 'reopen') {
            indexes[op.which].close()
            indexes[op.which] = new BlockIndex(packsDir, runsDir, op.options)
          } else if (op.op === 'delete') {
            if (!logs.has(op.pack)) continue
            unlinkSync(join(packsDir, names[op.pack] + '.idx'))
            logs.delete(op.pack)
            closed.delete(op.pack)
            names[op.pack] += 'x'
          } else if (!closed.has(op.pack)) {
            const file = join(packsDir, names[op.pack] + '.idx')
            const entries = logs.get(op.pack) ?? []
            logs.set(op.pack, entries)
            if (op.op === 'append') {
              appendFileSync(file, op.entries.map((e) => `${cidText(POOL[e.cid])} ${e.offset} ${e.length}\n`).join(''))
              entries.push(...op.entries)
            } else if (op.op === 'garbage') appendFileSync(file, op.text + '\n')
            else {
              appendFileSync(file, `${cidText(POOL[0])} 12`)
              closed.add(op.pack)
            }
          }
        }
        for (const index of indexes) {
          index.refresh()
          check(index)
          index.close()
        }
        // a fresh look at what the runs left behind
        const last = new BlockIndex(packsDir, runsDir, { spillEntries: 1 << 20 })
        last.refresh()
        check(last)
        last.close()
      }),
      { seed: 19, numRuns: 60 },
    )
  })

  it('reads a log the same whatever its buffer size, skipping damaged lines and a torn last one', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: POOL.length - 1 }), fc.constantFrom('junk', '', 'q'.repeat(6000))), { maxLength: 30 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 200 }),
        (lines, torn, buffer) => {
          const file = join(tmp(), 'x.idx')
          const text =
            lines.map((l, i) => (typeof l === 'number' ? `${cidText(POOL[l])} ${i} ${l}` : l) + '\n').join('') +
            (torn ? `${cidText(POOL[1])} 1` : '')
          writeFileSync(file, text, 'latin1')
          const read = (bufferBytes: number): string[] => {
            const out: string[] = []
            const end = readLog(
              file,
              0,
              Infinity,
              (cid, offset, length, lineEnd) => out.push(`${cidText(CID.decode(cid.slice()))} ${offset} ${length} ${lineEnd}`),
              bufferBytes,
            )
            out.push(`end ${end}`)
            return out
          }
          const expected = lines.flatMap((l, i) => (typeof l === 'number' ? [`${cidText(POOL[l])} ${i} ${l}`] : []))
          const got = read(buffer)
          expect(got.slice(0, -1).map((s) => s.split(' ').slice(0, 3).join(' '))).toEqual(expected)
          expect(got).toEqual(read(1 << 20))
          expect(got[got.length - 1]).toBe(`end ${text.length - (torn ? `${cidText(POOL[1])} 1`.length : 0)}`)
        },
      ),
      { seed: 19, numRuns: 200 },
    )
  })

  it('opens a store whose log is longer than the longest string V8 can make, reading it a buffer at a time', async () => {
    const root = tmp()
    const packsDir = join(root, 'packs')
    mkdirSync(packsDir)
    const bytes = new TextEncoder().encode('past the hole')
    const cid = cidFor(RAW, bytes)
    writeFileSync(join(packsDir, 'big.pack'), bytes)
    // 550,000,000 bytes of a hole (no newline: one damaged "line"), then a whole line: reading the log into
    // one string, as the store did, fails with ERR_STRING_TOO_LONG past 536,870,888 characters
    const idx = join(packsDir, 'big.idx')
    const fd = openSync(idx, 'w')
    ftruncateSync(fd, 550_000_000)
    closeSync(fd)
    appendFileSync(idx, `\n${cidText(cid)} 0 ${bytes.length}\n`)
    const store = new BlockStore(root)
    expect(await store.get(cid)).toEqual(bytes)
    await store.close()
    // the first open wrote a run: the next one reads no log at all
    expect(readdirSync(join(root, 'block-index')).filter((n) => n.endsWith('.run'))).toHaveLength(1)
    const again = new BlockIndex(packsDir, join(root, 'block-index'))
    again.refresh()
    expect(again.memoryEntries).toBe(0)
    expect(again.get(cid.bytes)).toEqual({ pack: 'big', offset: 0, length: bytes.length })
    again.close()
  })
})

const blockN = (i: number): { cid: CID; bytes: Uint8Array } => {
  const bytes = new TextEncoder().encode(`block number ${i}`)
  return { cid: cidFor(RAW, bytes) as unknown as CID, bytes }
}

/** Every whole line of every index log of the store, read with split (small test stores only): CID text → lines. */
function logLines(root: string): Map<string, number> {
  const count = new Map<string, number>()
  const packs = join(root, 'packs')
  for (const name of readdirSync(packs).filter((n) => n.endsWith('.idx'))) {
    const text = readFileSync(join(packs, name), 'latin1')
    for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n'))
      if (line) count.set(line.split(' ')[0], (count.get(line.split(' ')[0]) ?? 0) + 1)
  }
  return count
}

describe('block store over the block index', () => {
  it('finds what several store instances put, with tiny spills and buffers, like a Map of the puts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ which: fc.integer({ min: 0, max: 2 }), block: fc.integer({ min: 0, max: 99 }), close: fc.boolean() }), {
          minLength: 1,
          maxLength: 60,
        }),
        optionsArb,
        async (ops, options) => {
          const root = tmp()
          const stores = [0, 1, 2].map(() => new BlockStore(root, options))
          const model = new Set<string>()
          for (const op of ops) {
            const b = blockN(op.block)
            await stores[op.which].put(b.cid, b.bytes)
            model.add(cidText(b.cid))
            if (op.close) await stores[op.which].close()
          }
          for (const s of stores) await s.close()
          const fresh = new BlockStore(root, options)
          const view = await fresh.snapshot()
          for (let i = 0; i < 100; i++) {
            const b = blockN(i)
            expect(view.has(b.cid)).toBe(model.has(cidText(b.cid)))
            if (model.has(cidText(b.cid))) expect(await fresh.get(b.cid)).toEqual(b.bytes)
          }
          expect(new Set((await fresh.cids()).map((c) => cidText(c)))).toEqual(model)
          await fresh.close()
        },
      ),
      { seed: 19, numRuns: 25 },
    )
  })

  it('a writer spills to runs as it goes: each block written once, few runs, a bounded memory', async () => {
    const root = tmp()
    const store = new BlockStore(root, { spillEntries: 4, logBufferBytes: 50, mergeBufferRecords: 3 })
    for (let round = 0; round < 3; round++) for (let i = 0; i < 300; i++) await store.put(blockN(i).cid, blockN(i).bytes)
    await store.close()
    expect([...logLines(root).values()].every((n) => n === 1)).toBe(true)
    expect(logLines(root).size).toBe(300)
    const index = new BlockIndex(join(root, 'packs'), join(root, 'block-index'), { spillEntries: 4 })
    index.refresh()
    // 300 blocks in runs of 4 to 300 entries, merged four of a size at a time
    expect(index.runCount).toBeLessThanOrEqual(12)
    expect(index.memoryEntries).toBeLessThan(4)
    for (let i = 0; i < 300; i++) expect(index.has(blockN(i).cid.bytes)).toBe(true)
    index.close()
  })

  it('a writer killed at any moment (mid-block, mid-line, mid-run, mid-merge) leaves every whole line findable, and the next one reuses them', async () => {
    const root = tmp()
    const script = `
      const { BlockStore } = await import(${JSON.stringify(join(repoRoot, 'dist/src/store/blocks.js'))})
      const { cidFor, RAW } = await import(${JSON.stringify(join(repoRoot, 'dist/src/cid.js'))})
      const store = new BlockStore(process.argv[1], { spillEntries: 16, logBufferBytes: 64, mergeBufferRecords: 2 })
      for (let i = 0; ; i++) {
        const bytes = new TextEncoder().encode('block number ' + (i % 3000))
        await store.put(cidFor(RAW, bytes), bytes)
        if (i % 40 === 0) process.stdout.write('.')
      }`
    for (const dots of [3, 11, 29, 47]) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script, root], { stdio: ['ignore', 'pipe', 'inherit'] })
      await new Promise<void>((resolve) => {
        let seen = 0
        child.stdout.on('data', (d: Buffer) => {
          seen += d.length
          if (seen >= dots) {
            child.kill('SIGKILL')
            resolve()
          }
        })
      })
      await new Promise((resolve) => child.once('exit', resolve))
    }
    const lines = logLines(root)
    expect(lines.size).toBeGreaterThan(50)
    const store = new BlockStore(root)
    const view = await store.snapshot()
    for (let i = 0; i < 3000; i++) {
      const b = blockN(i)
      expect(view.has(b.cid), `block ${i}`).toBe(lines.has(cidText(b.cid)))
      if (lines.has(cidText(b.cid))) expect(await store.get(b.cid)).toEqual(b.bytes)
    }
    // the next writer stores only what is missing
    for (let i = 0; i < 3000; i++) await store.put(blockN(i).cid, blockN(i).bytes)
    await store.close()
    const after = logLines(root)
    for (const [cid, n] of lines) expect(after.get(cid)).toBe(n)
    expect(after.size).toBe(3000)
  }, 60_000)
})

describe('gc over the block index', () => {
  it('after gc deletes packs, every kept block is found through the runs, and no run keeps a record of a deleted pack', async () => {
    const ds = await makeDataset({ 'big.bin': seededBytes(3 << 20, 'big'), 'rows.jsonl': jsonl([{ id: 0 }]) })
    try {
      for (let i = 1; i <= 3; i++) {
        await ds.write({ 'rows.jsonl': jsonl([{ id: i }]), [`added-${i}.bin`]: seededBytes((1 << 20) + i, `added-${i}`) })
        await build({ dir: ds.dir, message: `v${i}`, date: FIXED_DATE })
      }
      const packs = join(ds.dir, '.cairn', 'packs')
      const runsDir = join(ds.dir, '.cairn', 'block-index')
      // every log made into runs, as a store of millions of blocks has them
      const before = new BlockIndex(packs, runsDir, { spillEntries: 3 })
      before.refresh()
      expect(before.runCount).toBeGreaterThan(0)
      before.close()
      const result = await gc({ dir: ds.dir, now: true, keepHistory: 0, expireHeadLog: true })
      expect(result.packsDeleted).toBeGreaterThan(0)
      const out = join(tmp(), 'head.car')
      await pack({ dir: ds.dir, output: out })
      const report = await verify({ car: out })
      expect(report.ok, JSON.stringify(report.problems)).toBe(true)
      const after = new BlockIndex(packs, runsDir)
      after.refresh()
      after.close()
      const logs = new Set(
        readdirSync(packs)
          .filter((n) => n.endsWith('.idx'))
          .map((n) => n.slice(0, -4)),
      )
      for (const name of readdirSync(runsDir).filter((n) => n.endsWith('.run'))) {
        const run = SortedRun.open(join(runsDir, name))!
        for (const p of run.header.packs) expect(logs, `${name} names ${p}`).toContain(p)
        run.close()
      }
    } finally {
      await ds.cleanup()
    }
  })
})
