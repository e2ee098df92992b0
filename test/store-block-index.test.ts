// The store's block index on disk (src/store/block-index/): sorted runs made from the index logs, looked
// up by CID, checked against a plain Map of what the logs hold, whatever the buffer sizes.
import {
  appendFileSync,
  closeSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
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
