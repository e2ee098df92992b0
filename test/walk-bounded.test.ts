/**
 * The walks that emit every block once (pack's walkDag, the gateway's CAR scopes) give the same
 * blocks in the same order whatever the seen set's limits: checked against a plain depth-first walk
 * with an unbounded Set, on random DAGs full of shared blocks.
 */
import * as dagJson from '@ipld/dag-json'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CID, cidFor, DAG_JSON, RAW } from '../src/cid.js'
import { walkDag } from '../src/dag.js'
import { CairnError } from '../src/errors.js'
import { scopeBlocks } from '../src/gateway/trustless.js'
import { SeenSet } from '../src/walk/seen-set.js'
import { DfsCheck } from '../src/walk/dfs-check.js'
import { verifyCar } from '../src/car/verify.js'
import { carHeader, sectionPrefix } from '../src/car/write.js'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import type { BlockSource } from '../src/store/blocks.js'

/** A random DAG: leaves, then nodes linking to any earlier blocks (so blocks are shared). */
function dag(leaves: number, nodes: readonly (readonly number[])[]): { root: CID; source: BlockSource; blocks: Map<string, Uint8Array> } {
  const blocks = new Map<string, Uint8Array>()
  const cids: CID[] = []
  for (let i = 0; i < leaves; i++) {
    const bytes = Buffer.from(`leaf ${i % Math.max(1, leaves - 2)}`) // two leaves repeat an earlier one's bytes
    const cid = cidFor(RAW, bytes)
    blocks.set(cid.toString(), bytes)
    cids.push(cid)
  }
  for (const picks of nodes) {
    const bytes = dagJson.encode({ links: picks.map((p) => cids[p % cids.length]), n: cids.length })
    const cid = cidFor(DAG_JSON, bytes)
    blocks.set(cid.toString(), bytes)
    cids.push(cid)
  }
  const source: BlockSource = {
    get: async (cid) => {
      const b = blocks.get(cid.toString())
      if (!b) throw new CairnError('MISSING_BLOCK', `no ${cid}`)
      return b
    },
  }
  return { root: cids[cids.length - 1], source, blocks }
}

/** The oracle: depth-first, pre-order, children in order, each block once. */
function plainWalk(root: CID, blocks: Map<string, Uint8Array>): string[] {
  const out: string[] = []
  const seen = new Set<string>()
  const stack = [root]
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    if (seen.has(cid.toString())) continue
    seen.add(cid.toString())
    out.push(cid.toString())
    if (cid.code === RAW) continue
    const { links } = dagJson.decode(blocks.get(cid.toString()) as Uint8Array) as { links: CID[] }
    for (let i = links.length - 1; i >= 0; i--) stack.push(links[i])
  }
  return out
}

const dags = fc.record({
  leaves: fc.integer({ min: 1, max: 20 }),
  nodes: fc.array(fc.array(fc.nat(), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 30 }),
  memoryKeys: fc.integer({ min: 1, max: 4 }),
  pageKeys: fc.integer({ min: 1, max: 3 }),
})

describe('walks with a bounded seen set', () => {
  it('walkDag yields what a walk with an unbounded set yields, whatever the limits', async () => {
    await fc.assert(
      fc.asyncProperty(dags, async ({ leaves, nodes, memoryKeys, pageKeys }) => {
        const { root, source, blocks } = dag(leaves, nodes)
        const got: string[] = []
        for await (const b of walkDag(source, root, 0, { memoryKeys, pageKeys, fanIn: 2 })) got.push(b.cid.toString())
        const defaults: string[] = []
        for await (const b of walkDag(source, root)) defaults.push(b.cid.toString())
        expect(got).toEqual(plainWalk(root, blocks))
        expect(defaults).toEqual(got)
      }),
      { seed: 1919, numRuns: 150 },
    )
  })

  it("the gateway's dag-scope=all walk does too, and skips what the caller's set holds", async () => {
    await fc.assert(
      fc.asyncProperty(dags, async ({ leaves, nodes, memoryKeys, pageKeys }) => {
        const { root, source, blocks } = dag(leaves, nodes)
        const seen = new SeenSet({ memoryKeys, pageKeys, fanIn: 2 })
        try {
          const got: string[] = []
          for await (const b of scopeBlocks(source, root, 'all', seen)) got.push(b.cid.toString())
          expect(got).toEqual(plainWalk(root, blocks))
          expect(seen.size).toBe(got.length)
          // everything is in the set now: a second walk with it yields nothing
          const again: string[] = []
          for await (const b of scopeBlocks(source, root, 'all', seen)) again.push(b.cid.toString())
          expect(again).toEqual([])
        } finally {
          seen.close()
        }
      }),
      { seed: 1920, numRuns: 100 },
    )
  })
})

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-walk-test-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const latin1 = (cid: CID): string => Buffer.from(cid.bytes).toString('latin1')

/** A CAR of `order` (CID texts) from `blocks`, rooted at `root`. */
function car(root: CID, order: readonly string[], blocks: Map<string, Uint8Array>, all: Map<string, CID>): Buffer {
  const parts: Uint8Array[] = [carHeader([root])]
  for (const k of order) {
    const bytes = blocks.get(k) as Uint8Array
    parts.push(sectionPrefix(all.get(k) as CID, bytes.length), bytes)
  }
  return Buffer.concat(parts)
}

async function* chunks(bytes: Buffer): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += 7) yield bytes.subarray(i, i + 7)
}

describe('verify --car in order (bounded) and in general (every link kept) agree', () => {
  const layouts = fc.record({
    leaves: fc.integer({ min: 1, max: 12 }),
    nodes: fc.array(fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 15 }),
    memoryKeys: fc.integer({ min: 1, max: 3 }),
    // 0: depth-first as pack writes it; 1: reversed; 2: the last block dropped; 3: a block twice
    layout: fc.integer({ min: 0, max: 3 }),
  })

  it('gives the report a stream (always the general check) gives, whatever the layout and limits', async () => {
    let n = 0
    await fc.assert(
      fc.asyncProperty(layouts, async ({ leaves, nodes, memoryKeys, layout }) => {
        const { root, blocks } = dag(leaves, nodes)
        const all = new Map<string, CID>()
        for (const k of blocks.keys()) all.set(k, CID.parse(k))
        const dfs = plainWalk(root, blocks)
        const order = layout === 0 ? dfs : layout === 1 ? [...dfs].reverse() : layout === 2 ? dfs.slice(0, -1) : [...dfs, dfs[0]]
        const bytes = car(root, order, blocks, all)
        const file = join(dir, `c${n++}.car`)
        await writeFile(file, bytes)
        const fromFile = await verifyCar(file, { seenLimits: { memoryKeys, pageKeys: 1, fanIn: 2 }, name: 'x' })
        const fromStream = await verifyCar(chunks(bytes), { name: file })
        expect(fromFile).toEqual(fromStream)
        if (layout === 0) expect(fromFile.ok).toBe(true)
      }),
      { seed: 1921, numRuns: 120 },
    )
  })

  it('DfsCheck accepts exactly a depth-first pre-order without duplicates', () => {
    fc.assert(
      fc.property(layouts, ({ leaves, nodes, memoryKeys }) => {
        const { root, blocks } = dag(leaves, nodes)
        const linksOf = (k: string): string[] => {
          const cid = CID.parse(k)
          if (cid.code === RAW) return []
          return (dagJson.decode(blocks.get(k) as Uint8Array) as { links: CID[] }).links.map(latin1)
        }
        const order = plainWalk(root, blocks)
        const check = new DfsCheck(latin1(root), { memoryKeys, pageKeys: 1, fanIn: 2 })
        try {
          for (const k of order) expect(check.push(latin1(CID.parse(k)), linksOf(k))).toBe(true)
          expect(check.complete()).toBe(true)
        } finally {
          check.close()
        }
        if (order.length > 1) {
          // the same blocks in another order: refused at the first block out of place
          const swapped = [order[0], ...order.slice(1).reverse()]
          if (swapped.join() !== order.join()) {
            const other = new DfsCheck(latin1(root), { memoryKeys })
            try {
              expect(swapped.every((k) => other.push(latin1(CID.parse(k)), linksOf(k))) && other.complete()).toBe(false)
            } finally {
              other.close()
            }
          }
          // one block short: not complete
          const short = new DfsCheck(latin1(root), { memoryKeys })
          try {
            for (const k of order.slice(0, -1)) short.push(latin1(CID.parse(k)), linksOf(k))
            expect(short.complete()).toBe(false)
          } finally {
            short.close()
          }
        }
      }),
      { seed: 1922, numRuns: 150 },
    )
  })
})
