// diff: the index walk skips equal subtrees (instrumented on a million entries), and the ordinary
// cases of shards, cards, schemas, history, CAR sources and missing blocks.
import { mkdir, rm, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkBlock } from '../src/car/block.js'
import { CarBlockSource } from '../src/car/source.js'
import * as Digest from 'multiformats/hashes/digest'
import { CID, RAW } from '../src/cid.js'
import { CairnError, build, diff, log, isCairnError, pack, show, type ShardEntry } from '../src/index.js'
import { diffIndexes, diffVersions } from '../src/diff.js'
import { buildIndex, readIndexNode } from '../src/shard-index/prolly.js'
import type { BranchEntry } from '../src/manifest.js'
import type { BlockSource } from '../src/store/blocks.js'
import { validateWith } from '../src/schemas.js'
import { cairn, ensureBuilt, parseJson } from './helpers/cli.js'
import { FIXED_DATE, makeDataset, seededBytes, tempDir, type TempDataset } from './helpers/dataset.js'
import { exportFile } from '../src/unixfs/export.js'
import { openDataset } from '../src/dataset.js'

/** An in-memory block map that counts reads. */
class CountingSource implements BlockSource {
  reads = 0
  readonly blocks = new Map<string, Uint8Array>()
  async get(cid: CID): Promise<Uint8Array> {
    this.reads++
    const bytes = this.blocks.get(cid.toString())
    if (!bytes) throw new CairnError('MISSING_BLOCK', `Block ${cid} is not in the test map`, { subject: cid.toString() })
    await checkBlock(cid, bytes)
    return bytes
  }
}

/** A synthetic shard CID: no hashing (these shards have no blocks), distinct per `i` and `salt`. */
function fakeCid(i: number, salt: number): CID {
  const digest = new Uint8Array(32)
  new DataView(digest.buffer).setUint32(0, i)
  digest[4] = salt
  return CID.createV1(RAW, Digest.create(0x12, digest))
}

function entry(i: number, salt = 0): ShardEntry {
  return {
    path: `s/${String(i).padStart(7, '0')}.bin`,
    cid: fakeCid(i, salt),
    size: 100 + (i % 1000),
    format: 'bytes',
  }
}

describe('diffIndexes on a million entries', () => {
  const N = 1_000_000
  const CHANGED = [3, 99_999, 123_456, 250_001, 400_000, 512_345, 600_606, 777_777, 888_888, 999_999]
  const source = new CountingSource()
  let rootA: CID
  let rootB: CID
  let depth = 0

  beforeAll(async () => {
    const t0 = performance.now()
    const entries: ShardEntry[] = Array.from({ length: N }, (_, i) => entry(i))
    let stored = 0
    const sink = async (b: { cid: CID; bytes: Uint8Array }): Promise<void> => {
      source.blocks.set(b.cid.toString(), b.bytes)
      // let vitest's worker answer its RPC: a build otherwise runs for a long time on microtasks only
      if (++stored % 200 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    rootA = (await buildIndex(entries, sink)).root
    for (const i of CHANGED) entries[i] = { ...entries[i], cid: fakeCid(i, 1), size: 7 }
    rootB = (await buildIndex(entries, sink)).root
    depth = (await readIndexNode(source, rootA)).level
    source.reads = 0
    console.log(
      `built two indexes of ${N} entries in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${source.blocks.size} blocks, depth ${depth}`,
    )
    // two builds of a million entries: tens of seconds on an idle machine, more on a loaded one
  }, 600_000)

  it('reads index blocks in proportion to changes × depth, not to the number of shards', async () => {
    const t0 = performance.now()
    const result = await diffIndexes(source, rootA, rootB)
    const ms = performance.now() - t0
    const bound = CHANGED.length * (depth + 1) * 2
    console.log(`1M-entry diff: ${source.reads} index blocks read (bound ${bound}), depth ${depth}, ${ms.toFixed(1)} ms`)
    expect(result.changes.map((c) => c.path)).toEqual(CHANGED.map((i) => entry(i).path))
    for (const c of result.changes) {
      expect(c.before?.size).not.toBe(7)
      expect(c.after?.size).toBe(7)
    }
    expect(result.nodesRead).toBe(source.reads)
    expect(result.depth).toBe(depth)
    expect(depth).toBeGreaterThanOrEqual(3)
    expect(source.reads).toBeLessThanOrEqual(bound)
  })

  it('reads nothing when the roots are equal', async () => {
    source.reads = 0
    const result = await diffIndexes(source, rootA, rootA)
    expect(result.changes).toEqual([])
    expect(source.reads).toBe(0)
  })
})

describe('diffIndexes on small indexes', () => {
  async function index(entries: ShardEntry[], source: CountingSource): Promise<CID> {
    return (await buildIndex(entries, (b) => void source.blocks.set(b.cid.toString(), b.bytes))).root
  }

  it('handles indexes of different heights, additions and removals', async () => {
    const source = new CountingSource()
    const big = Array.from({ length: 5000 }, (_, i) => entry(i))
    const small = [entry(10), entry(4000, 9), entry(6000)]
    const result = await diffIndexes(source, await index(big, source), await index(small, source))
    const byPath = new Map(result.changes.map((c) => [c.path, c]))
    expect(result.changes).toHaveLength(5000 - 1 + 1)
    expect(byPath.get(entry(10).path)).toBeUndefined()
    expect(byPath.get(entry(4000).path)?.after?.cid.toString()).toBe(entry(4000, 9).cid.toString())
    expect(byPath.get(entry(6000).path)?.before).toBeUndefined()
  })

  it('fails with MISSING_BLOCK naming the CID when an index node is missing, never a partial diff', async () => {
    const source = new CountingSource()
    const entries = Array.from({ length: 3000 }, (_, i) => entry(i))
    const a = await index(entries, source)
    entries[1500] = entry(1500, 9)
    const b = await index(entries, source)
    // remove the leaf of B that holds the changed entry
    let node = await readIndexNode(source, b)
    let leaf: CID = b
    while (node.level > 0) {
      const children = node.entries as readonly BranchEntry[]
      const child = [...children].reverse().find((c) => c.path <= entry(1500).path) as BranchEntry
      leaf = child.node
      node = await readIndexNode(source, leaf)
    }
    source.blocks.delete(leaf.toString())
    const error = await diffIndexes(source, a, b).catch((e: unknown) => e)
    expect(isCairnError(error, 'MISSING_BLOCK')).toBe(true)
    expect((error as CairnError).subject).toBe(leaf.toString())
    expect((error as CairnError).message).toContain(leaf.toString())
  })
})

describe('diff of built versions', () => {
  let ds: TempDataset
  let v1: string
  let v2: string
  const card1 = {
    cardVersion: 1,
    name: 'diff-test',
    description: 'first',
    license: 'CC0-1.0',
    shards: [{ glob: '**/*.jsonl', primaryKey: ['id'] }],
  }

  beforeAll(async () => {
    ds = await makeDataset(
      {
        'a/keep.bin': 'unchanged bytes',
        'a/old-name.bin': 'bytes that move',
        'b/gone.bin': 'removed later',
        'rows.jsonl': '{"id":1,"x":"a"}\n{"id":2,"x":"b"}\n',
      },
      { card: card1 },
    )
    v1 = (await build({ dir: ds.dir, message: 'v1', date: FIXED_DATE })).version.toString()
    await unlink(join(ds.dir, 'a/old-name.bin'))
    await rm(join(ds.dir, 'b'), { recursive: true })
    await ds.write({
      'c/new-name.bin': 'bytes that move',
      'c/added.bin': 'a new shard',
      'rows.jsonl': '{"id":1,"x":"a","y":true}\n{"id":2,"x":"b","y":null}\n{"id":3,"x":"c","y":false}\n',
      'cairn.json': JSON.stringify({ ...card1, description: 'second', authors: ['me'] }),
    })
    v2 = (await build({ dir: ds.dir, message: 'v2', date: FIXED_DATE })).version.toString()
  })
  afterAll(() => ds.cleanup())

  it('reports added, removed, modified and renamed shards with sizes and rows', async () => {
    const result = await diff({ dir: ds.dir, a: 'HEAD~1', b: 'HEAD' })
    expect(result.a.cid.toString()).toBe(v1)
    expect(result.b.cid.toString()).toBe(v2)
    expect(result.changed).toBe(true)
    expect(result.sharedHistory).toBe(true)
    expect(result.commonAncestor?.toString()).toBe(v1)
    expect(result.shards.map((s) => [s.status, s.path, s.from])).toEqual([
      ['removed', 'b/gone.bin', undefined],
      ['added', 'c/added.bin', undefined],
      ['renamed', 'c/new-name.bin', 'a/old-name.bin'],
      ['modified', 'rows.jsonl', undefined],
    ])
    expect(result.counts).toEqual({ added: 1, removed: 1, modified: 1, renamed: 1 })
    const rows = result.shards.find((s) => s.path === 'rows.jsonl')
    expect([rows?.before?.rows, rows?.after?.rows]).toEqual([2, 3])
    expect(result.totals.before.shards).toBe(4)
    expect(result.totals.after.shards).toBe(4)
  })

  it('reports the schema change of a JSONL shard gaining a field', async () => {
    const result = await diff({ dir: ds.dir, a: v1, b: v2 })
    const rows = result.shards.find((s) => s.path === 'rows.jsonl')
    expect(rows?.schema?.added.map((f) => f.name)).toEqual(['y'])
    expect(rows?.schema?.removed).toEqual([])
  })

  it("--rows: matches rows by the card's primary key and lists changed columns", async () => {
    const result = await diff({ dir: ds.dir, a: v1, b: v2, rows: true, limit: 1 })
    const rows = result.shards.find((s) => s.path === 'rows.jsonl')?.rows
    expect(rows).toEqual({
      status: 'compared',
      match: 'key',
      primaryKey: ['id'],
      added: 1,
      removed: 0,
      changed: 2,
      unchanged: 0,
      samples: {
        added: [{ id: 3, x: 'c', y: false }],
        removed: [],
        changed: [{ key: [1], columns: { y: { before: undefined, after: true } } }],
      },
    })
    // only modified tabular shards get a row diff
    expect(result.shards.filter((s) => s.rows).map((s) => s.path)).toEqual(['rows.jsonl'])
  })

  it('reports card changes field by field', async () => {
    const result = await diff({ dir: ds.dir, a: v1, b: v2 })
    expect(result.card).toEqual([
      { path: '/authors', kind: 'added', after: ['me'] },
      { path: '/description', kind: 'changed', before: 'first', after: 'second' },
    ])
  })

  it('reports nothing between a version and itself', async () => {
    const result = await diff({ dir: ds.dir, a: 'HEAD', b: v2 })
    expect(result.changed).toBe(false)
    expect(result.shards).toEqual([])
    expect(result.stats.indexNodesRead).toBe(0)
  })

  it('says what a CID is when it is not a version', async () => {
    const { manifest } = await show({ dir: ds.dir, ref: v1 })
    const cases: [string, RegExp][] = [
      [manifest.index.toString(), /is a cairn\.index, expected a cairn\.version/],
      [manifest.tree.toString(), /is a UnixFS directory, not a cairn version/],
      [(await show({ dir: ds.dir })).manifest.card.toString(), /not a cairn block, expected a cairn\.version/],
    ]
    for await (const e of (await import('../src/index.js')).ls({ dir: ds.dir, ref: v1 })) {
      if (e.path === 'a/keep.bin') cases.push([e.cid.toString(), /is a UnixFS file \(a raw block\), not a cairn version/])
    }
    for (const [cid, message] of cases) {
      const error = await diff({ dir: ds.dir, a: v1, b: cid }).catch((e: unknown) => e)
      expect(isCairnError(error, 'INVALID_MANIFEST')).toBe(true)
      expect((error as Error).message).toMatch(message)
    }
  })

  it('diffs unrelated datasets, reading the other one from a CAR file', async () => {
    const other = await makeDataset({ 'a/keep.bin': 'unchanged bytes', 'z.bin': 'other' }, { card: { cardVersion: 1, name: 'other' } })
    const dir = await tempDir()
    try {
      const built = await build({ dir: other.dir, message: 'other', date: FIXED_DATE })
      const car = join(dir, 'other.car')
      await pack({ dir: other.dir, output: car })
      // without the CAR the other version is not in this store
      const missing = await diff({ dir: ds.dir, a: v2, b: built.version.toString() }).catch((e: unknown) => e)
      expect(isCairnError(missing, 'MISSING_BLOCK')).toBe(true)
      const result = await diff({ dir: ds.dir, a: v2, b: built.version.toString(), from: car })
      expect(result.sharedHistory).toBe(false)
      expect(result.commonAncestor).toBeNull()
      expect(result.shards.find((s) => s.path === 'a/keep.bin')).toBeUndefined()
      expect(result.shards.find((s) => s.path === 'z.bin')?.status).toBe('added')
      expect(result.card.find((c) => c.path === '/name')).toEqual({ path: '/name', kind: 'changed', before: 'diff-test', after: 'other' })
      // a CAR alone is enough when both refs are CIDs
      const source = await CarBlockSource.open(car)
      try {
        expect(source.roots.map(String)).toEqual([built.version.toString()])
        const self = await diffVersions(source, built.version, built.version)
        expect(self.changed).toBe(false)
      } finally {
        await source.close()
      }
      await mkdir(join(dir, 'empty'))
      const alone = await diff({ dir: join(dir, 'empty'), a: built.version.toString(), b: built.version.toString(), from: car })
      expect(alone.sharedHistory).toBe(true)
    } finally {
      await other.cleanup()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('rejects a file that is not a CAR with BAD_CAR', async () => {
    const dir = await tempDir()
    try {
      const car = join(dir, 'not.car')
      await writeFile(car, 'hello, this is text\n')
      const error = await diff({ dir: ds.dir, a: v1, b: v2, from: car }).catch((e: unknown) => e)
      expect(isCairnError(error, 'BAD_CAR')).toBe(true)
      expect((error as Error).message).toContain(car)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('rejects a corrupt block in a CAR with CORRUPT_BLOCK', async () => {
    const dir = await tempDir()
    try {
      const car = join(dir, 'v2.car')
      await pack({ dir: ds.dir, ref: v2, output: car })
      const { readFile } = await import('node:fs/promises')
      const bytes = await readFile(car)
      const text = bytes.toString('latin1')
      const at = text.indexOf('cairn.version')
      bytes[at] = 'C'.charCodeAt(0)
      await writeFile(car, bytes)
      const source = await CarBlockSource.open(car)
      try {
        const error = await source.get(source.roots[0]).catch((e: unknown) => e)
        expect(isCairnError(error, 'CORRUPT_BLOCK')).toBe(true)
      } finally {
        await source.close()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('cairn diff and cairn log --stat (compiled commands)', () => {
  let ds: TempDataset
  beforeAll(async () => {
    ensureBuilt()
    ds = await makeDataset({ 'a.jsonl': '{"id":1}\n', 'b.bin': 'b' }, { card: { cardVersion: 1, name: 'cli', description: 'one' } })
    await build({ dir: ds.dir, message: 'v1', date: FIXED_DATE })
    await ds.write({
      'a.jsonl': '{"id":1,"n":2}\n{"id":2,"n":3}\n',
      'c.bin': 'c',
      'cairn.json': JSON.stringify({ cardVersion: 1, name: 'cli', description: 'two' }),
    })
    await build({ dir: ds.dir, message: 'v2', date: FIXED_DATE })
  })
  afterAll(() => ds.cleanup())

  it('prints a --stat-like summary, then schema, card and totals; exit code 0', async () => {
    const r = await cairn(['diff', 'HEAD~1', 'HEAD', '-C', ds.dir])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(/^M a\.jsonl  \d+ B → \d+ B  1 → 2 rows$/m)
    expect(r.stdout).toMatch(/^A c\.bin  1 B$/m)
    expect(r.stdout).toMatch(/\+ n: integer/)
    expect(r.stdout).toContain('/description: "one" → "two"')
    expect(r.stdout).toMatch(/Totals: 2 → 3 shards/)
  })

  it('--exit-code exits 1 when the versions differ, 0 when they do not', async () => {
    expect((await cairn(['diff', 'HEAD~1', 'HEAD', '-C', ds.dir, '--exit-code'])).exitCode).toBe(1)
    expect((await cairn(['diff', 'HEAD', 'HEAD', '-C', ds.dir, '--exit-code'])).exitCode).toBe(0)
  })

  it('--json (with --rows) validates against schemas/cli/diff.schema.json, CIDs as links', async () => {
    const r = await cairn(['diff', 'HEAD~1', 'HEAD', '-C', ds.dir, '--json', '--rows'])
    expect(r.exitCode).toBe(0)
    const json = parseJson<{ a: { cid: { '/': string } }; shards: unknown[] }>(r)
    expect(validateWith('cli/diff.schema.json', json)).toEqual([])
    expect(typeof json.a.cid['/']).toBe('string')
    expect(json.shards).toHaveLength(2)
    expect(JSON.stringify(json)).toContain('"match":"content"')
  })

  it('log({ stat: true }) counts changes since each parent', async () => {
    const entries = await log({ dir: ds.dir, stat: true })
    expect(entries.map((e) => e.stat)).toEqual([
      { added: 1, removed: 0, modified: 1, renamed: 0 },
      { added: 2, removed: 0, modified: 0, renamed: 0 },
    ])
    const r = await cairn(['log', '--stat', '-C', ds.dir])
    expect(r.stdout).toContain('Shards: 1 added, 0 removed, 1 modified, 0 renamed')
  })
})

describe('row diffs and the UnixFS exporter', () => {
  it('exports a multi-chunk file byte for byte from the store', async () => {
    const big = seededBytes(2 * 1024 * 1024 + 12345, 'export')
    const ds = await makeDataset({ 'big.bin': big })
    try {
      await build({ dir: ds.dir, date: FIXED_DATE })
      const { store } = await openDataset(ds.dir)
      const { ls } = await import('../src/index.js')
      for await (const e of ls({ dir: ds.dir })) {
        const parts: Uint8Array[] = []
        for await (const p of exportFile(store, e.cid)) parts.push(p)
        expect(e.cid.code).toBe(0x70)
        expect(Buffer.concat(parts).equals(big)).toBe(true)
      }
    } finally {
      await ds.cleanup()
    }
  })

  it('matches rows by content without a key, and skips a shard whose columns were retyped', async () => {
    const ds = await makeDataset({ 'a.jsonl': '{"n":1}\n{"n":1}\n{"n":2}\n', 'b.jsonl': '{"v":1}\n' })
    try {
      await build({ dir: ds.dir, date: FIXED_DATE })
      await ds.write({ 'a.jsonl': '{"n":1}\n{"n":3}\n{"n":2}\n{"n":4}\n', 'b.jsonl': '{"v":"one"}\n' })
      await build({ dir: ds.dir, date: FIXED_DATE })
      const result = await diff({ dir: ds.dir, a: 'HEAD~1', b: 'HEAD', rows: true })
      const a = result.shards.find((s) => s.path === 'a.jsonl')?.rows
      expect(a).toMatchObject({ status: 'compared', match: 'content', added: 2, removed: 1, changed: 0, unchanged: 2 })
      expect(a?.status === 'compared' && a.samples).toEqual({ added: [{ n: 3 }, { n: 4 }], removed: [{ n: 1 }], changed: [] })
      const b = result.shards.find((s) => s.path === 'b.jsonl')
      expect(b?.schema?.retyped.map((f) => [f.name, f.before.type, f.after.type])).toEqual([['v', 'integer', 'string']])
      expect(b?.rows).toEqual({ status: 'skipped', reason: 'the schema changed (retyped: v): rows cannot be compared' })
    } finally {
      await ds.cleanup()
    }
  })
})
