/**
 * The walks that emit every block once (pack's walkDag, the gateway's CAR scopes) give the same
 * blocks in the same order whatever the seen set's limits: checked against a plain depth-first walk
 * with an unbounded Set, on random DAGs full of shared blocks.
 */
import * as dagJson from '@ipld/dag-json'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { cidFor, DAG_JSON, RAW, type CID } from '../src/cid.js'
import { walkDag } from '../src/dag.js'
import { CairnError } from '../src/errors.js'
import { scopeBlocks } from '../src/gateway/trustless.js'
import { SeenSet } from '../src/walk/seen-set.js'
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
