// The row diff at scale: two JSONL shards of 2 million rows each are compared with fixed-size hash
// records in typed arrays (20 bytes per row), not Maps of strings; the counts are exact, the samples
// are the first rows of each kind in file order, and memory stays far below what Maps would take.
// Then duplicates (keys and rows), against a plain reference implementation.
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { diffRowFiles, type RowDiff } from '../src/diff/rows.js'
// the JSONL module itself, not the lazy registry entry: one async generator less per row
import * as jsonl from '../src/formats/jsonl.js'
import type { FormatReader } from '../src/formats/interface.js'

const N = 2_000_000
/** Old rows: ids 0 … N−1 with v = id % 7. */
const oldRow = (id: number): string => `{"id":${id},"v":${id % 7}}\n`
/**
 * New rows: ids ≡ 1 (mod 1000) are gone, ids ≡ 2 (mod 1000) have v = 99, ids N … N+K−1 are new
 * (inserted after the first 1000 lines, so that the second pass for samples stops early).
 */
const REMOVED = N / 1000
const CHANGED = N / 1000
const K = 3_000
/**
 * The new shard lists the ids in another order: each block of 1000 ids reversed (so the samples,
 * the first rows of each kind, are near the start of both shards and the second passes stop early).
 */
const newId = (i: number): number => i - (i % 1000) + 999 - (i % 1000)
const newRow = (id: number): string => (id % 1000 === 1 ? '' : `{"id":${id},"v":${id % 1000 === 2 ? 99 : id % 7}}\n`)

async function writeLines(file: string, count: number, line: (i: number) => string): Promise<void> {
  const out = createWriteStream(file)
  let buf = ''
  for (let i = 0; i < count; i++) {
    buf += line(i)
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain')
      buf = ''
    }
  }
  out.end(buf)
  await once(out, 'finish')
}

/** `global.gc`, made available without a command-line flag. */
function gc(): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

/** Runs `fn`, sampling heapUsed + arrayBuffers every 10 ms; returns its result and the peak growth in bytes. */
async function peakGrowth<T>(collect: () => void, fn: () => Promise<T>): Promise<{ result: T; heap: number; buffers: number; ms: number }> {
  collect()
  const base = process.memoryUsage()
  let heap = 0
  let buffers = 0
  const sample = (): void => {
    const now = process.memoryUsage()
    heap = Math.max(heap, now.heapUsed - base.heapUsed)
    buffers = Math.max(buffers, now.arrayBuffers - base.arrayBuffers)
  }
  const timer = setInterval(sample, 10)
  const t0 = performance.now()
  try {
    const result = await fn()
    sample()
    return { result, heap, buffers, ms: performance.now() - t0 }
  } finally {
    clearInterval(timer)
  }
}

const MiB = 1024 * 1024

describe('diffRowFiles on two shards of 2 million rows', () => {
  let dir: string
  let fileA: string
  let fileB: string
  const reader: FormatReader = jsonl as unknown as FormatReader
  const collect = gc()

  beforeAll(async () => {
    const t0 = performance.now()
    dir = await mkdtemp(join(tmpdir(), 'cairn-rows-scale-'))
    fileA = join(dir, 'a.jsonl')
    fileB = join(dir, 'b.jsonl')
    await writeLines(fileA, N, oldRow)
    await writeLines(fileB, N + K, (i) =>
      i < 1000 ? newRow(newId(i)) : i < 1000 + K ? `{"id":${N + i - 1000},"v":${(N + i - 1000) % 7}}\n` : newRow(newId(i - K)),
    )
    console.log(`wrote two JSONL shards of ${N} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  }, 120_000)
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('matches by key with exact counts, file-order samples and memory bounded by the records', async () => {
    // what the former Map<keyText, rowHash> took per entry, measured on 200 000 entries
    const mapBytes = await peakGrowth(collect, async () => {
      const map = new Map<string, string>()
      for (let i = 0; i < 200_000; i++)
        map.set(
          `[${i}]`,
          Buffer.from(String(i * 2654435761))
            .toString('base64')
            .padEnd(24, 'A'),
        )
      collect()
      const used = process.memoryUsage().heapUsed
      return { map, used }
    })
    const perEntry = mapBytes.heap / 200_000

    const cpu = process.cpuUsage()
    const { result, heap, buffers, ms } = await peakGrowth(collect, () =>
      diffRowFiles(reader, fileA, fileB, { primaryKey: ['id'], limit: 3 }),
    )
    const cpuUsed = process.cpuUsage(cpu)
    const cpuMs = (cpuUsed.user + cpuUsed.system) / 1000
    const rows = 2 * N + K - REMOVED
    const mapEstimate = perEntry * N
    console.log(
      `key diff of ${N} → ${N + K - REMOVED} rows: ${(ms / 1000).toFixed(1)} s (${(cpuMs / 1000).toFixed(1)} s CPU); peak growth: arrayBuffers ${(buffers / MiB).toFixed(1)} MiB ` +
        `(${(buffers / rows).toFixed(1)} B per row of both shards), heapUsed ${(heap / MiB).toFixed(1)} MiB; ` +
        `a Map of the old shard alone: ≈ ${perEntry.toFixed(0)} B per row, ${(mapEstimate / MiB).toFixed(0)} MiB`,
    )
    expect(result).toMatchObject({
      status: 'compared',
      match: 'key',
      primaryKey: ['id'],
      added: K,
      removed: REMOVED,
      changed: CHANGED,
      unchanged: N - REMOVED - CHANGED,
    })
    const samples = (result as Extract<RowDiff, { status: 'compared' }>).samples
    // the first of each kind in file order: added rows come last in the new shard, removed ones in
    // id order in the old one; changed ones are the first in the new shard's order, listed in the old one's
    expect(samples.added).toEqual([0, 1, 2].map((k) => ({ id: N + k, v: (N + k) % 7 })))
    expect(samples.removed).toEqual([1, 1001, 2001].map((id) => ({ id, v: id % 7 })))
    const firstChanged: number[] = []
    for (let i = 0; firstChanged.length < 3; i++) if (newId(i) % 1000 === 2) firstChanged.push(newId(i))
    expect(samples.changed).toEqual(
      firstChanged.sort((x, y) => x - y).map((id) => ({ key: [id], columns: { v: { before: id % 7, after: 99 } } })),
    )
    // 20 bytes per row and side in typed arrays (plus the reader's buffers), nothing per row on the heap
    expect(buffers).toBeLessThan(24 * rows + 16 * MiB)
    expect(heap).toBeLessThan(96 * MiB)
    expect(heap + buffers).toBeLessThan(mapEstimate / 2)
  }, 180_000)
})

/** The counts of a row diff by plain Maps of row texts: the reference for the multiset rules. */
function reference(
  a: readonly Record<string, unknown>[],
  b: readonly Record<string, unknown>[],
  key?: string,
): { added: number; removed: number; changed: number; unchanged: number } {
  const groups = new Map<string, { old: Map<string, number>; now: Map<string, number> }>()
  const add = (row: Record<string, unknown>, side: 'old' | 'now'): void => {
    const k = key ? JSON.stringify(row[key]) : ''
    let g = groups.get(k)
    if (!g) groups.set(k, (g = { old: new Map(), now: new Map() }))
    const text = JSON.stringify(row)
    g[side].set(text, (g[side].get(text) ?? 0) + 1)
  }
  for (const row of a) add(row, 'old')
  for (const row of b) add(row, 'now')
  let added = 0
  let removed = 0
  let changed = 0
  let unchanged = 0
  for (const { old, now } of groups.values()) {
    let leftOld = 0
    let leftNew = 0
    for (const [text, n] of old) {
      const same = Math.min(n, now.get(text) ?? 0)
      unchanged += same
      leftOld += n - same
    }
    for (const [text, n] of now) leftNew += n - Math.min(n, old.get(text) ?? 0)
    const pairs = key ? Math.min(leftOld, leftNew) : 0
    changed += pairs
    removed += leftOld - pairs
    added += leftNew - pairs
  }
  return { added, removed, changed, unchanged }
}

describe('diffRowFiles with duplicates', () => {
  let dir: string
  const reader: FormatReader = jsonl as unknown as FormatReader
  const write = async (name: string, rows: readonly Record<string, unknown>[]): Promise<string> => {
    const file = join(dir, name)
    await writeFile(file, rows.map((r) => JSON.stringify(r) + '\n').join(''))
    return file
  }
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-rows-dup-'))
  })
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('pairs the left-over rows of a duplicate key in file order', async () => {
    const a = await write('a.jsonl', [
      { id: 1, v: 1 },
      { id: 1, v: 2 },
      { id: 2, v: 0 },
      { id: 1, v: 3 },
      { id: 1, v: 2 },
    ])
    const b = await write('b.jsonl', [
      { id: 1, v: 2 },
      { id: 1, v: 9 },
      { id: 2, v: 0 },
      { id: 1, v: 2 },
      { id: 1, v: 2 },
    ])
    expect(await diffRowFiles(reader, a, b, { primaryKey: ['id'] })).toEqual({
      status: 'compared',
      match: 'key',
      primaryKey: ['id'],
      // key 1: v 2 twice on both sides (unchanged), then old v 1, v 3 against new v 9, v 2
      added: 0,
      removed: 0,
      changed: 2,
      unchanged: 3,
      samples: {
        added: [],
        removed: [],
        changed: [
          { key: [1], columns: { v: { before: 1, after: 9 } } },
          { key: [1], columns: { v: { before: 3, after: 2 } } },
        ],
      },
    })
    expect(await diffRowFiles(reader, a, b)).toMatchObject({
      match: 'content',
      // v 2 matches twice; the third new v 2 (the last in file order) is added
      added: 2,
      removed: 2,
      unchanged: 3,
      samples: {
        added: [
          { id: 1, v: 9 },
          { id: 1, v: 2 },
        ],
        removed: [
          { id: 1, v: 1 },
          { id: 1, v: 3 },
        ],
        changed: [],
      },
    })
  })

  it('counts like the reference on many rows with repeated keys and rows, and does not depend on the hash secret', async () => {
    // a small seeded generator: keys from 0 … 1999, values 0 … 2, so rows repeat a lot
    let seed = 42
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0
      return (seed >>> 8) % n
    }
    const rows = (count: number): Record<string, unknown>[] => Array.from({ length: count }, () => ({ id: random(2000), v: random(3) }))
    const oldRows = rows(30_000)
    const newRows = [...oldRows.filter(() => random(4) !== 0), ...rows(5_000)].map((r) => (random(10) === 0 ? { ...r, v: random(3) } : r))
    const a = await write('many-a.jsonl', oldRows)
    const b = await write('many-b.jsonl', newRows)
    for (const key of ['id', undefined]) {
      const first = await diffRowFiles(reader, a, b, { primaryKey: key ? [key] : undefined, limit: 4 })
      expect(first).toMatchObject({ status: 'compared', ...reference(oldRows, newRows, key) })
      // samples: rows of the right side, the first ones in file order
      const samples = (first as Extract<RowDiff, { status: 'compared' }>).samples
      expect(samples.added).toHaveLength(4)
      expect(samples.removed).toHaveLength(4)
      for (const row of samples.added) expect(newRows).toContainEqual(row)
      for (const row of samples.removed) expect(oldRows).toContainEqual(row)
      if (key) expect(samples.changed).toHaveLength(4)
      // another diff draws another secret, so the records sort in another order: same result
      expect(await diffRowFiles(reader, a, b, { primaryKey: key ? [key] : undefined, limit: 4 })).toEqual(first)
    }
  })
})
