/**
 * Lineage end to end: a source release A, a release B derived from it (a filter: part of its rows),
 * built with A checked through a gateway (`cairn serve` on loopback), published to a `dir:` target,
 * cloned from a second gateway; `cairn lineage` then walks from B to A through the gateways, and a
 * source no gateway holds is reported unreachable, not as an error. Bad lineage in a card is refused
 * at build with nothing committed.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { build, publish, serve, show, type ServeHandle } from '../src/index.js'
import { validateWith } from '../src/schemas.js'
import { renderLineage } from '../src/lineage/render.js'
import { walkLineage } from '../src/lineage/graph.js'
import { cairn, parseJson } from './helpers/cli.js'
import { FIXED_DATE, jsonl, makeDataset, tempDir, type TempDataset } from './helpers/dataset.js'

const rows = Array.from({ length: 20 }, (_, i) => ({ id: i, text: `row ${i}`, keep: i % 2 === 0 }))
const cardA = {
  cardVersion: 1,
  name: 'src-a',
  description: 'the source',
  license: 'CC0-1.0',
  shards: [{ glob: '*.jsonl', primaryKey: ['id'] }],
}

function cardB(release: string, extra: object = {}): object {
  return {
    cardVersion: 1,
    name: 'filtered-b',
    description: 'the even rows of src-a',
    license: 'CC0-1.0',
    derivedFrom: [{ release: { '/': release }, role: 'filtered-from', select: ['train.jsonl'] }],
    provenance: { generator: 'keep-even.mjs', seed: 7 },
    shards: [{ glob: '*.jsonl', primaryKey: ['id'] }],
    ...extra,
  }
}

/** Writes `card` as cairn.json of `ds`. */
async function setCard(ds: TempDataset, card: object): Promise<void> {
  await writeFile(join(ds.dir, 'cairn.json'), JSON.stringify(card, null, 2))
}

describe('lineage: a filtered release, published, cloned, walked through gateways', () => {
  let a: TempDataset
  let b: TempDataset
  let a1: string
  let b1: string
  let gatewayA: ServeHandle
  let gatewayB: ServeHandle
  let published: string
  let cloned: string

  beforeAll(async () => {
    a = await makeDataset({ 'train.jsonl': jsonl(rows), 'test.jsonl': jsonl(rows.slice(0, 3)) }, { card: cardA })
    a1 = (await build({ dir: a.dir, date: FIXED_DATE, message: 'a1' })).version.toString()
    gatewayA = await serve({ dir: a.dir, port: 0 })
    b = await makeDataset({ 'train.jsonl': jsonl(rows.filter((r) => r.keep)) }, { card: cardB(a1) })
  })
  afterAll(async () => {
    await gatewayA?.close()
    await gatewayB?.close()
    await a?.cleanup()
    await b?.cleanup()
  })

  it('build checks the source through the gateway (--from) and says it is verified', async () => {
    const r = await cairn(['build', '-C', b.dir, '-m', 'b1', '--date', '2025-01-02T03:04:05Z', '--from', gatewayA.url, '--json'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const json = parseJson<{ version: { '/': string }; lineage: unknown[] }>(r)
    expect(validateWith('cli/build.schema.json', json)).toEqual([])
    expect(json.lineage).toEqual([{ release: { '/': a1 }, role: 'filtered-from', status: 'verified' }])
    b1 = json.version['/']
  })

  it('publishes and clones the derived release; lineage walks from the clone to the source through a gateway', async () => {
    published = await tempDir()
    await publish({ dir: b.dir, ref: b1, to: `dir:${published}` })
    gatewayB = await serve({ dirs: [published], port: 0, dir: undefined })
    cloned = join(await tempDir(), 'clone')
    const c = await cairn(['clone', b1, cloned, '--from', gatewayB.url])
    expect(c.exitCode, c.stderr).toBe(0)

    const r = await cairn(['lineage', '-C', cloned, '--from', gatewayA.url, '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    const graph = parseJson<{ nodes: { cid: { '/': string }; reachable: boolean; name?: string }[]; edges: unknown[] }>(r)
    expect(validateWith('cli/lineage.schema.json', graph)).toEqual([])
    expect(graph.nodes.map((n) => [n.cid['/'], n.reachable, n.name])).toEqual([
      [b1, true, 'filtered-b'],
      [a1, true, 'src-a'],
    ])
    expect(graph.edges).toEqual([
      { from: { '/': b1 }, to: { '/': a1 }, kind: 'derivedFrom', role: 'filtered-from', select: ['train.jsonl'] },
    ])
  })

  it('outside any dataset, a CID and gateways are enough', async () => {
    const r = await cairn(['lineage', b1, '--from', gatewayB.url, '--from', gatewayA.url])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toContain(`${b1} filtered-b`)
    expect(r.stdout).toContain(`filtered-from [train.jsonl]: ${a1} src-a`)
  })

  it('a source that no source holds is reported unreachable, and the walk still succeeds', async () => {
    const r = await cairn(['lineage', b1, '--from', gatewayB.url, '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    const graph = parseJson<{ nodes: { cid: { '/': string }; reachable: boolean; reason?: string }[] }>(r)
    const source = graph.nodes.find((n) => n.cid['/'] === a1)!
    expect(source.reachable).toBe(false)
    expect(source.reason).toMatch(/a1|not|none|404/i)
    const text = await cairn(['lineage', b1, '--from', gatewayB.url])
    expect(text.exitCode).toBe(0)
    expect(text.stdout).toContain(`${a1} (unreachable:`)
  })

  it('draws the graph as Graphviz DOT and Mermaid, and --depth stops the walk', async () => {
    const dot = await cairn(['lineage', '-C', b.dir, '--from', gatewayA.url, '--format', 'dot'])
    expect(dot.stdout).toMatch(/^digraph lineage \{/)
    expect(dot.stdout).toContain(`"${b1}" -> "${a1}" [label="filtered-from\\ntrain.jsonl"];`)
    const mermaid = await cairn(['lineage', '-C', b.dir, '--from', gatewayA.url, '--format', 'mermaid'])
    expect(mermaid.stdout.split('\n')[0]).toBe('flowchart BT')
    expect(mermaid.stdout).toContain('n0 -->|"filtered-from train.jsonl"| n1')
    const shallow = parseJson<{ nodes: unknown[]; truncated: boolean }>(
      await cairn(['lineage', '-C', b.dir, '--from', gatewayA.url, '--depth', '0', '--json']),
    )
    expect(shallow.nodes).toHaveLength(1)
    expect(shallow.truncated).toBe(true)
  })

  it('diff reports a lineage change', async () => {
    await setCard(b, cardB(a1, { derivedFrom: [{ release: { '/': a1 }, role: 'seed-data' }] }))
    const r2 = await cairn(['build', '-C', b.dir, '-m', 'b2', '--from', gatewayA.url, '--json'])
    expect(r2.exitCode, r2.stderr).toBe(0)
    const d = await cairn(['diff', '-C', b.dir, b1, 'HEAD', '--json'])
    const json = parseJson<{ lineage: unknown[] }>(d)
    expect(validateWith('cli/diff.schema.json', json)).toEqual([])
    expect(json.lineage).toEqual([
      { kind: 'changed', release: a1, before: { role: 'filtered-from', select: ['train.jsonl'] }, after: { role: 'seed-data' } },
    ])
    const text = await cairn(['diff', '-C', b.dir, b1, 'HEAD'])
    expect(text.stdout).toContain(`~ ${a1} filtered-from [train.jsonl] → seed-data`)
    await setCard(b, cardB(a1))
  })

  it('without --from, a source the store lacks is recorded unverified, saying so', async () => {
    const other = await makeDataset({ 'x.jsonl': jsonl(rows.slice(0, 2)) }, { card: cardB(a1) })
    try {
      const r = await cairn(['build', '-C', other.dir, '--json'])
      expect(r.exitCode, r.stderr).toBe(0)
      const json = parseJson<{ lineage: { status: string; reason: string }[] }>(r)
      expect(json.lineage[0].status).toBe('unverified')
      expect(json.lineage[0].reason).toMatch(/no source was given/)
      const human = await cairn(['build', '-C', other.dir, '--allow-empty'])
      expect(human.stderr).toMatch(/derived from .* \(filtered-from\): unverified/)
    } finally {
      await other.cleanup()
    }
  })

  describe('bad lineage is refused at build, nothing committed', () => {
    const refused = async (ds: TempDataset, card: object, from: string[], message: RegExp): Promise<void> => {
      await setCard(ds, card)
      const before = (await show({ dir: ds.dir }).catch(() => undefined))?.cid.toString()
      const r = await cairn(['build', '-C', ds.dir, '--allow-empty', ...from.flatMap((f) => ['--from', f]), '--json'])
      expect(r.exitCode, r.stdout).toBe(4)
      const error = parseJson<{ error: { code: string; message: string } }>(r).error
      expect(error.code).toBe('INVALID_CARD')
      expect(error.message).toMatch(message)
      expect((await show({ dir: ds.dir }).catch(() => undefined))?.cid.toString()).toBe(before)
    }

    it('a derivedFrom that is not a CID', async () => {
      await refused(b, cardB('not-a-cid'), [], /derivedFrom\[0\]\.release "not-a-cid" is not a CID/)
    })

    it('a selection that matches nothing in the source', async () => {
      const card = cardB(a1, { derivedFrom: [{ release: { '/': a1 }, role: 'filtered-from', select: ['images/*.png'] }] })
      await refused(b, card, [gatewayA.url], /select "images\/\*\.png" matches no shard of/)
    })

    it('a source that none of the sources given holds', async () => {
      const missing = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
      await refused(b, cardB(missing), [gatewayA.url], /is in none of the sources given/)
    })

    it('a CID that is not a cairn release (a file of one)', async () => {
      const file = (await cairn(['ls', '-C', a.dir, '--json'])).stdout
      const cid = (JSON.parse(file) as { cid: { '/': string } }[])[0].cid['/']
      await refused(b, cardB(cid), [gatewayA.url], /is not a cairn release/)
    })

    it("a release deriving from its own history, and a cycle through a source's lineage", async () => {
      // A claims to derive from its own HEAD
      await refused(a, { ...cardA, derivedFrom: [{ release: { '/': a1 }, role: 'seed-data' }] }, [], /own history/)
      // A claims to derive from B, which derives from A1: A's next release would derive from its own descendant
      await refused(a, { ...cardA, derivedFrom: [{ release: { '/': b1 }, role: 'seed-data' }] }, [gatewayB.url], /makes a cycle/)
      await setCard(a, cardA)
    })

    it('a prompt template named as a file that is not in the dataset, or as a link that is not a CID', async () => {
      await refused(b, cardB(a1, { provenance: { promptTemplate: { path: 'prompts/p.txt' } } }), [gatewayA.url], /promptTemplate\.path/)
      await refused(b, cardB(a1, { provenance: { promptTemplate: { '/': 'nope' } } }), [gatewayA.url], /promptTemplate "nope" is not a CID/)
      await setCard(b, cardB(a1))
    })
  })

  it('a prompt file of the dataset and model weights by digest are accepted and kept in the card', async () => {
    await b.write({ 'prompts/p.txt': 'Keep the even rows.' })
    const model = { name: 'filter-model', digest: `sha256:${'ab'.repeat(32)}` }
    await setCard(b, cardB(a1, { provenance: { generator: 'keep-even.mjs', model, promptTemplate: { path: 'prompts/p.txt' }, seed: 7 } }))
    const r = await cairn(['build', '-C', b.dir, '--from', gatewayA.url, '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    const { card } = await show({ dir: b.dir })
    expect(card.provenance?.model).toEqual(model)
    expect(card.provenance?.promptTemplate).toEqual({ path: 'prompts/p.txt' })
  })
})

describe('walkLineage and renderLineage', () => {
  it('walk the parent chain too, and show a release reached twice once', async () => {
    const ds = await makeDataset({ 'a.txt': 'one' })
    try {
      const v1 = (await build({ dir: ds.dir, date: FIXED_DATE })).version
      await ds.write({ 'a.txt': 'two' })
      const v2 = (await build({ dir: ds.dir, date: FIXED_DATE })).version
      const { BlockStore } = await import('../src/store/blocks.js')
      const store = new BlockStore(join(ds.dir, '.cairn'))
      try {
        const graph = await walkLineage(store, v2)
        expect(graph.nodes.map((n) => n.cid.toString())).toEqual([v2.toString(), v1.toString()])
        expect(graph.edges.map((e) => [e.from.toString(), e.to.toString(), e.kind])).toEqual([[v2.toString(), v1.toString(), 'parent']])
        const text = renderLineage(graph, 'text')
        expect(text.split('\n')[1]).toMatch(new RegExp(`^  parent: ${v1.toString()} test-data`))
      } finally {
        await store.close()
      }
    } finally {
      await ds.cleanup()
    }
  })
})

describe('renderLineage on a long history', () => {
  it('draws a chain of 20,000 versions without running out of stack', async () => {
    const { CID } = await import('../src/cid.js')
    const { sha256 } = await import('multiformats/hashes/sha2')
    const cids = await Promise.all(
      Array.from({ length: 20_000 }, async (_, i) => CID.createV1(0x0129, await sha256.digest(new TextEncoder().encode(String(i))))),
    )
    const nodes = cids.map((cid, depth) => ({ cid, depth, reachable: true, name: 'n', created: '2025-01-01T00:00:00Z' }))
    const edges = cids.slice(1).map((to, i) => ({ from: cids[i], to, kind: 'parent' as const }))
    const text = renderLineage({ root: cids[0], nodes, edges, truncated: false }, 'text')
    expect(text.split('\n')).toHaveLength(20_001)
  })
})

describe('build --from a source that is down', () => {
  it('is a network failure (exit 7), not a card error, and commits nothing', async () => {
    const { createServer } = await import('node:http')
    // a gateway that answers every request with 500
    const down = createServer((_req, res) => {
      res.statusCode = 500
      res.end('down')
    })
    await new Promise<void>((ok) => down.listen(0, '127.0.0.1', ok))
    const url = `http://127.0.0.1:${(down.address() as { port: number }).port}`
    const ds = await makeDataset(
      { 'x.jsonl': jsonl(rows.slice(0, 2)) },
      { card: cardB('bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy') },
    )
    try {
      const r = await cairn(['build', '-C', ds.dir, '--from', url, '--json'])
      expect(r.exitCode, r.stdout).toBe(7)
      expect(parseJson<{ error: { code: string } }>(r).error.code).toBe('FETCH_FAILED')
      expect(await show({ dir: ds.dir }).catch((e: Error) => e.message)).toMatch(/HEAD does not point/)
    } finally {
      await ds.cleanup()
      await new Promise<void>((ok) => down.close(() => ok()))
    }
  })
})
