/**
 * The shard index (`src/shard-index/prolly.ts`): a prolly tree whose root depends only on the set of
 * entries, whose nodes stay small, where one changed entry rewrites O(depth) nodes, and whose reader
 * rejects nodes that break the path rules or carry an unknown format version.
 */
import { createHash } from 'node:crypto'
import * as dagJson from '@ipld/dag-json'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { cidFor, CID, DAG_JSON, RAW } from '../src/cid.js'
import { CairnError } from '../src/errors.js'
import { buildIndex, isBoundary, MAX_NODE_BYTES, readIndexNode, walkEntries } from '../src/shard-index/prolly.js'
import { comparePaths, encodeManifest, type ShardEntry } from '../src/manifest.js'
import type { BlockSource } from '../src/store/blocks.js'
import type { Block } from '../src/unixfs/file.js'
import { thrown } from './helpers/dataset.js'

/** An in-memory block store that checks every block it hands out against its CID. */
class MemoryStore implements BlockSource {
  readonly blocks = new Map<string, Uint8Array>()
  readonly sink = (b: Block): void => {
    this.blocks.set(b.cid.toString(), b.bytes)
  }
  async get(cid: CID): Promise<Uint8Array> {
    const bytes = this.blocks.get(cid.toString())
    if (!bytes) throw new CairnError('MISSING_BLOCK', `no block ${cid}`)
    const digest = createHash('sha256').update(bytes).digest()
    if (!digest.equals(Buffer.from(cid.multihash.digest))) throw new CairnError('CORRUPT_BLOCK', `bad block ${cid}`)
    return bytes
  }
  put(value: unknown): CID {
    const bytes = dagJson.encode(value)
    const cid = cidFor(DAG_JSON, bytes)
    this.blocks.set(cid.toString(), bytes)
    return cid
  }
}

function entry(path: string, salt = ''): ShardEntry {
  return { path, cid: cidFor(RAW, Buffer.from(path + salt)), size: path.length, format: 'bytes' }
}

function sorted(entries: ShardEntry[]): ShardEntry[] {
  return [...entries].sort((a, b) => comparePaths(a.path, b.path))
}

/** A pool of CIDs the synthetic entries share (many shards with equal bytes): cheap to make and encode. */
const POOL = Array.from({ length: 1024 }, (_, i) => cidFor(RAW, Buffer.from(`content ${i}`)))

/** `n` synthetic entries, in path order. */
function synthetic(n: number): ShardEntry[] {
  const out: ShardEntry[] = []
  for (let i = 0; i < n; i++) {
    out.push({
      path: `split-${i % 7}/part-${String(i).padStart(6, '0')}.parquet`,
      cid: POOL[i % POOL.length],
      size: i,
      format: 'parquet',
      rows: i % 100,
    })
  }
  return sorted(out)
}

async function collect(store: BlockSource, root: CID): Promise<ShardEntry[]> {
  const out: ShardEntry[] = []
  for await (const e of walkEntries(store, root)) out.push(e)
  return out
}

/** The depth (levels) of the tree under `root`: the root's level plus one. */
async function depthOf(store: BlockSource, root: CID): Promise<number> {
  return (await readIndexNode(store, root)).level + 1
}

describe('shape and determinism', () => {
  it('gives the same root whatever the order entries were found in (sorted first)', async () => {
    const entries = Array.from({ length: 3000 }, (_, i) => entry(`d${i % 13}/f${i}.bin`))
    const a = new MemoryStore()
    const b = new MemoryStore()
    const ra = await buildIndex(sorted(entries), a.sink)
    const shuffled = fc.sample(fc.shuffledSubarray(entries, { minLength: entries.length }), { seed: 7, numRuns: 1 })[0]
    expect(shuffled.map((e) => e.path)).not.toEqual(sorted(entries).map((e) => e.path))
    const rb = await buildIndex(sorted(shuffled), b.sink)
    expect(rb.root.toString()).toBe(ra.root.toString())
    expect([...b.blocks.keys()].sort()).toEqual([...a.blocks.keys()].sort())
  })

  it('rejects unsorted or duplicated entries with BAD_PATH', async () => {
    const store = new MemoryStore()
    const e1 = await thrown(() => buildIndex([entry('b'), entry('a')], store.sink))
    expect((e1 as CairnError).code).toBe('BAD_PATH')
    const e2 = await thrown(() => buildIndex([entry('a'), entry('a')], store.sink))
    expect((e2 as CairnError).code).toBe('BAD_PATH')
  })

  it('builds an empty index for no entries', async () => {
    const store = new MemoryStore()
    const { root, totals } = await buildIndex([], store.sink)
    expect(totals).toEqual({ shards: 0, bytes: 0, rows: 0 })
    expect(await collect(store, root)).toEqual([])
  })

  describe('100,000 entries', () => {
    let entries: ShardEntry[]
    let base: MemoryStore
    let built: Awaited<ReturnType<typeof buildIndex>>
    let depth: number

    beforeAll(async () => {
      entries = synthetic(100_000)
      base = new MemoryStore()
      built = await buildIndex(entries, base.sink)
      depth = await depthOf(base, built.root)
    })

    it('build a multi-level tree of nodes under 1 MiB, walked back in order, with the right totals', async () => {
      const { root, totals } = built
      expect(totals.shards).toBe(100_000)
      expect(totals.bytes).toBe((100_000 * 99_999) / 2)
      expect(totals.rows).toBe(entries.reduce((n, e) => n + (e.rows ?? 0), 0))

      expect(depth).toBeGreaterThanOrEqual(3)
      let largest = 0
      for (const bytes of base.blocks.values()) largest = Math.max(largest, bytes.length)
      expect(largest).toBeLessThan(1024 * 1024)
      expect(largest).toBeLessThanOrEqual(MAX_NODE_BYTES + 4096)
      // nodes are not degenerate: far fewer than one per entry
      expect(base.blocks.size).toBeLessThan(100_000 / 16)

      const walked = await collect(base, root)
      expect(walked.length).toBe(entries.length)
      for (let i = 0; i < entries.length; i += 997) {
        expect(walked[i].path).toBe(entries[i].path)
        expect(walked[i].cid.toString()).toBe(entries[i].cid.toString())
        expect(walked[i].size).toBe(entries[i].size)
      }
      for (let i = 1; i < walked.length; i++)
        if (comparePaths(walked[i - 1].path, walked[i].path) >= 0) throw new Error(`out of order at ${i}`)
    })

    it.each([0, 31_337, 99_999])('rewrite only O(depth) nodes when the CID of entry %i changes', async (at) => {
      const changed = entries.slice()
      changed[at] = { ...changed[at], cid: cidFor(RAW, Buffer.from('changed')) }
      const b = new MemoryStore()
      const rb = await buildIndex(changed, b.sink)
      expect(rb.root.toString()).not.toBe(built.root.toString())
      const differing = [...b.blocks.keys()].filter((k) => !base.blocks.has(k)).length
      expect(differing).toBeGreaterThanOrEqual(depth)
      expect(differing).toBeLessThanOrEqual(2 * depth + 2)
    })
  })

  it('rewrites only O(depth) nodes when one entry is added or removed', async () => {
    const entries = synthetic(30_000)
    const a = new MemoryStore()
    const ra = await buildIndex(entries, a.sink)
    const depth = await depthOf(a, ra.root)
    const removed = entries.filter((_, i) => i !== 12_345)
    const added = sorted([...entries, entry('split-3/part-031337.parquet.extra')])
    for (const variant of [removed, added]) {
      const b = new MemoryStore()
      await buildIndex(variant, b.sink)
      const differing = [...b.blocks.keys()].filter((k) => !a.blocks.has(k)).length
      expect(differing).toBeLessThanOrEqual(2 * depth + 2)
    }
  })
})

describe('reading nodes', () => {
  const link = cidFor(RAW, Buffer.from('x'))
  const leaf = (paths: string[], v: number = 1): unknown => ({
    type: 'cairn.index',
    v,
    level: 0,
    entries: paths.map((path) => ({ path, cid: link, size: 1, format: 'bytes' })),
  })

  it('reads a well-formed hand-made node', async () => {
    const store = new MemoryStore()
    const cid = store.put(leaf(['a', 'b/c']))
    const node = await readIndexNode(store, cid)
    expect(node.entries.map((e) => e.path)).toEqual(['a', 'b/c'])
  })

  it.each([
    ['a ../ path', ['../x']],
    ['a .. segment inside', ['a/../x']],
    ['an absolute path', ['/etc/passwd']],
    ['a . segment', ['./x']],
    ['an empty segment', ['a//b']],
    ['a trailing slash', ['a/']],
    ['a backslash', ['a\\b']],
    ['a NUL', ['a\u0000b']],
    ['an empty path', ['']],
  ])('rejects a node with %s', async (_what, paths) => {
    const store = new MemoryStore()
    const cid = store.put(leaf(paths))
    const e = await thrown(() => readIndexNode(store, cid))
    expect(e).toBeInstanceOf(CairnError)
    expect(['BAD_PATH', 'INVALID_MANIFEST']).toContain((e as CairnError).code)
    expect((e as CairnError).message).toContain(cid.toString())
  })

  it.each([
    ['out of order', ['b', 'a']],
    ['duplicated', ['a', 'a']],
    ['in UTF-16 order but not UTF-8 byte order', ['\u{1F600}', '\uFF5E']],
  ])('rejects a node whose paths are %s', async (_what, paths) => {
    const store = new MemoryStore()
    const cid = store.put(leaf(paths))
    const e = await thrown(() => readIndexNode(store, cid))
    expect((e as CairnError).code).toBe('INVALID_MANIFEST')
    expect((e as CairnError).message).toContain(cid.toString())
  })

  it('rejects a node with v: 2, naming the version', async () => {
    const store = new MemoryStore()
    const cid = store.put(leaf(['a'], 2))
    const e = await thrown(() => readIndexNode(store, cid))
    expect((e as CairnError).code).toBe('INVALID_MANIFEST')
    expect((e as CairnError).message).toMatch(/version 2\b/)
    expect((e as CairnError).message).toContain(cid.toString())
  })

  it('rejects a block of another kind and a branch with CID strings instead of links', async () => {
    const store = new MemoryStore()
    const version = store.put({ type: 'cairn.version', v: 1 })
    expect(((await thrown(() => readIndexNode(store, version))) as CairnError).code).toBe('INVALID_MANIFEST')
    const branch = store.put({
      type: 'cairn.index',
      v: 1,
      level: 1,
      entries: [{ path: 'a', node: link.toString(), totals: { shards: 1, bytes: 1, rows: 0 } }],
    })
    expect(((await thrown(() => readIndexNode(store, branch))) as CairnError).code).toBe('INVALID_MANIFEST')
  })

  it('rejects a bad node met while walking a built tree', async () => {
    const store = new MemoryStore()
    const bad = store.put(leaf(['../escape']))
    const root = store.put({
      type: 'cairn.index',
      v: 1,
      level: 1,
      entries: [{ path: 'a', node: bad, totals: { shards: 1, bytes: 1, rows: 0 } }],
    })
    const e = await thrown(() => collect(store, root))
    expect(['BAD_PATH', 'INVALID_MANIFEST']).toContain((e as CairnError).code)
  })
})

describe('round trip (fast-check, fixed seed)', () => {
  const segment = fc
    .string({ unit: fc.constantFrom('a', 'b', 'Z', '0', '-', '_', '.', ' ', 'é', '日', '\u{1F600}', '\uFF5E'), minLength: 1, maxLength: 5 })
    .filter((s) => s !== '.' && s !== '..')
  const path = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'))

  it('walks back exactly the sorted entries it was built from', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(path, { maxLength: 400 }), fc.nat(), async (paths, salt) => {
        const entries = sorted(paths.map((p) => entry(p, String(salt))))
        const store = new MemoryStore()
        const { root, totals } = await buildIndex(entries, store.sink)
        expect(totals.shards).toBe(entries.length)
        const walked = await collect(store, root)
        expect(walked.map((e) => e.path)).toEqual(entries.map((e) => e.path))
        expect(walked.map((e) => e.cid.toString())).toEqual(entries.map((e) => e.cid.toString()))
        // and the same set in another order gives the same root
        const again = await buildIndex(sorted([...entries].reverse()), new MemoryStore().sink)
        expect(again.root.toString()).toBe(root.toString())
      }),
      { seed: 20250102, numRuns: 150 },
    )
  })

  it('walks back many entries through a multi-level tree', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(path, { minLength: 2000, maxLength: 3000 }), async (paths) => {
        const entries = sorted(paths.map((p) => entry(p)))
        const store = new MemoryStore()
        const { root } = await buildIndex(entries, store.sink)
        expect(await depthOf(store, root)).toBeGreaterThan(1)
        expect((await collect(store, root)).map((e) => e.path)).toEqual(entries.map((e) => e.path))
      }),
      { seed: 42, numRuns: 5 },
    )
  })
})

describe('building one entry at a time', () => {
  /**
   * The index as docs/index.md defines it, cut level by level over whole lists: an independent
   * statement of the rules, which the streaming builder must match node for node.
   */
  function reference(entries: readonly ShardEntry[], sink: (b: Block) => void): CID {
    const cut = (level: number, items: readonly (ShardEntry | { path: string; node: CID; totals: unknown })[]) => {
      const out: { path: string; node: CID; totals: { shards: number; bytes: number; rows: number } }[] = []
      let start = 0
      let bytes = 0
      const est = (p: string): number => p.length * 3 + 200
      for (let i = 0; i < items.length; i++) {
        bytes += est(items[i].path)
        const last = i === items.length - 1
        if (last || isBoundary(level, items[i].path) || bytes + est(items[i + 1].path) > MAX_NODE_BYTES) {
          const slice = items.slice(start, i + 1)
          const block = encodeManifest<'cairn.index'>({ type: 'cairn.index', v: 1, level, entries: slice } as never)
          sink(block)
          const totals = { shards: 0, bytes: 0, rows: 0 }
          for (const it of slice) {
            const t = 'node' in it ? (it.totals as typeof totals) : { shards: 1, bytes: it.size, rows: it.rows ?? 0 }
            totals.shards += t.shards
            totals.bytes += t.bytes
            totals.rows += t.rows
          }
          out.push({ path: slice[0].path, node: block.cid, totals })
          start = i + 1
          bytes = 0
        }
      }
      return out
    }
    let level = 0
    let children = cut(0, entries)
    while (children.length > 1) children = cut(++level, children)
    return children[0].node
  }

  it('gives the nodes of the level-by-level definition, for any set of paths (property, fixed seed)', async () => {
    const segment = fc.stringMatching(/^[a-z0-9._-]{1,12}$/).filter((s) => s !== '.' && s !== '..')
    const longSegment = fc.stringMatching(/^[a-z]{200,400}$/)
    const path = fc
      .array(fc.oneof({ weight: 9, arbitrary: segment }, { weight: 1, arbitrary: longSegment }), { minLength: 1, maxLength: 3 })
      .map((s) => s.join('/'))
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(path, { minLength: 1, maxLength: 2000 }), async (paths) => {
        const entries = sorted(paths.map((p) => entry(p)))
        const a = new MemoryStore()
        const b = new MemoryStore()
        const built = await buildIndex(entries, a.sink)
        expect(built.root.toString()).toBe(reference(entries, b.sink).toString())
        for (const k of b.blocks.keys()) expect(a.blocks.has(k)).toBe(true)
      }),
      { seed: 64, numRuns: 60 },
    )
  })
})
