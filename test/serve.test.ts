/**
 * `serve`: the trustless gateway over a store (and `dir:` folders), checked request by request against
 * the trustless-gateway spec: formats and Accept negotiation, dag-scope, headers, status codes.
 */
import { CarBlockIterator } from '@ipld/car/iterator'
import * as dagPb from '@ipld/dag-pb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { build, CID, serve, type ServeHandle } from '../src/index.js'
import { CarBlockSource } from '../src/car/source.js'
import { openDataset } from '../src/dataset.js'
import { checkBlock } from '../src/car/block.js'
import { walkDag } from '../src/dag.js'
import { resolvePath } from '../src/cat.js'
import { FIXED_DATE, makeDataset, seededBytes, type TempDataset } from './helpers/dataset.js'
import { fixture } from './helpers/gateways.js'

const MiB = 1024 * 1024
const HAMT_ROOT = 'bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i'

let ds: TempDataset
let version: CID
let big: CID
let server: ServeHandle

beforeAll(async () => {
  ds = await makeDataset({ 'a.txt': 'alpha\n', 'sub/big.bin': seededBytes(3 * MiB, 'serve') })
  version = (await build({ dir: ds.dir, message: 'm', date: FIXED_DATE })).version
  // the HAMT fixture's blocks go into the same store, so both kinds of DAG are served
  const dataset = await openDataset(ds.dir)
  const car = await CarBlockSource.open(fixture('trustless_gateway_car', 'single-layer-hamt-with-multi-block-files.car'))
  for await (const b of walkDag(car, CID.parse(HAMT_ROOT))) await dataset.store.put(b.cid, b.bytes)
  await car.close()
  big = (await resolvePath(dataset.store, version, 'sub/big.bin')).cid
  await dataset.store.close()
  server = await serve({ dir: ds.dir, port: 0 })
})

afterAll(async () => {
  await server?.close()
  await ds?.cleanup()
})

async function readCar(res: Response): Promise<{ roots: string[]; cids: string[] }> {
  const bytes = new Uint8Array(await res.arrayBuffer())
  const it = await CarBlockIterator.fromBytes(bytes)
  const cids: string[] = []
  for await (const b of it) {
    await checkBlock(CID.asCID(b.cid) as CID, b.bytes)
    cids.push(b.cid.toString())
  }
  return { roots: (await it.getRoots()).map(String), cids }
}

const get = (path: string, init?: RequestInit): Promise<Response> => fetch(server.url + path, init)

describe('serve', () => {
  it('listens on loopback by default', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  })

  it('a raw block: content type, length, nosniff, Etag, verified bytes; HEAD without a body', async () => {
    const res = await get(`/ipfs/${version}?format=raw`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/vnd.ipld.raw')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('etag')).toBe(`"${version}.raw"`)
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${version}.bin"`)
    const bytes = new Uint8Array(await res.arrayBuffer())
    expect(Number(res.headers.get('content-length'))).toBe(bytes.length)
    await checkBlock(version, bytes)
    const head = await get(`/ipfs/${version}?format=raw`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe(String(bytes.length))
    expect((await head.arrayBuffer()).byteLength).toBe(0)
    const again = await get(`/ipfs/${version}?format=raw`, { headers: { 'if-none-match': `"${version}.raw"` } })
    expect(again.status).toBe(304)
  })

  it('Accept alone selects the format; format wins over Accept', async () => {
    expect((await get(`/ipfs/${version}`, { headers: { accept: 'application/vnd.ipld.raw' } })).headers.get('content-type')).toBe(
      'application/vnd.ipld.raw',
    )
    const car = await get(`/ipfs/${version}`, { headers: { accept: 'text/html; q=0.4, application/vnd.ipld.car; version=1; q=0.5' } })
    expect(car.headers.get('content-type')).toMatch(/^application\/vnd\.ipld\.car; version=1/)
    await car.arrayBuffer()
    const raw = await get(`/ipfs/${version}?format=raw`, { headers: { accept: 'application/vnd.ipld.car' } })
    expect(raw.headers.get('content-type')).toBe('application/vnd.ipld.raw')
    await raw.arrayBuffer()
  })

  it('a whole version as a CAR (dag-scope=all): exactly the blocks of pack, root in the header', async () => {
    const res = await get(`/ipfs/${version}?format=car&dag-scope=all`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/vnd.ipld.car; version=1; order=dfs; dups=n')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect(res.headers.get('etag')).toBe(`"${version}.car.all"`)
    const { roots, cids } = await readCar(res)
    expect(roots).toEqual([version.toString()])
    const dataset = await openDataset(ds.dir)
    const expected: string[] = []
    for await (const b of walkDag(dataset.store, version)) expected.push(b.cid.toString())
    await dataset.store.close()
    expect(cids).toEqual(expected)
  })

  it('dag-scope=block is the root alone; entity of a file is all its blocks, of a HAMT directory its shards only', async () => {
    expect((await readCar(await get(`/ipfs/${big}?format=car&dag-scope=block`))).cids).toEqual([big.toString()])
    const file = await readCar(await get(`/ipfs/${big}?format=car&dag-scope=entity`))
    expect(file.cids.length).toBe(4) // the root and three 1 MiB leaves
    const hamt = await readCar(await get(`/ipfs/${HAMT_ROOT}?format=car&dag-scope=entity`))
    expect(hamt.cids[0]).toBe(HAMT_ROOT)
    // every block sent is a HAMT node: no file block
    const car = await CarBlockSource.open(fixture('trustless_gateway_car', 'single-layer-hamt-with-multi-block-files.car'))
    for (const c of hamt.cids) {
      const node = dagPb.decode(await car.get(CID.parse(c)))
      expect(node.Links.length).toBeGreaterThan(0)
    }
    await car.close()
    const all = await readCar(await get(`/ipfs/${HAMT_ROOT}?format=car`))
    expect(all.cids.length).toBeGreaterThan(hamt.cids.length)
  })

  it('a CAR with a path: the blocks proving the path, then the file', async () => {
    const res = await get(`/ipfs/${HAMT_ROOT}/685.txt?format=car&dag-scope=entity`)
    expect(res.status).toBe(200)
    const { roots, cids } = await readCar(res)
    expect(roots).toEqual([HAMT_ROOT])
    expect(cids[0]).toBe(HAMT_ROOT)
    expect((await get(`/ipfs/${HAMT_ROOT}/nope.txt?format=car`)).status).toBe(404)
  })

  it('the identity-CID probe answers', async () => {
    const res = await get('/ipfs/bafkqaaa?format=raw')
    expect(res.status).toBe(200)
    expect((await res.arrayBuffer()).byteLength).toBe(0)
  })

  it.each([
    ['a bad CID', 400, '/ipfs/not-a-cid?format=raw', {}],
    ['an unsupported format', 400, `/ipfs/{v}?format=tar`, {}],
    ['a bad dag-scope', 400, `/ipfs/{v}?format=car&dag-scope=some`, {}],
    ['malformed entity-bytes', 400, `/ipfs/{v}?format=car&entity-bytes=0-10`, {}],
    ['entity-bytes ending before it starts', 400, `/ipfs/{v}?format=car&entity-bytes=10:2`, {}],
    ['a path through a raw block', 404, `/ipfs/{v}/tree/a.txt/more`, {}],
    ['a field the version lacks', 404, `/ipfs/{v}/card/nope?format=car`, {}],
    ['an unknown format', 400, `/ipfs/{v}?format=dag-json`, {}],
    ['only unsupported CAR versions', 406, `/ipfs/{v}`, { accept: 'application/vnd.ipld.car; version=2' }],
    ['a block it lacks (raw)', 404, '/ipfs/bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e?format=raw', {}],
    ['a block it lacks (car)', 404, '/ipfs/bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e?format=car', {}],
    ['another route', 404, '/ipns/example.com', {}],
  ] as const)('%s → %i', async (_what, status, path, headers) => {
    const res = await get(path.replace('{v}', version.toString()), { headers })
    expect(res.status).toBe(status)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    await res.arrayBuffer()
  })

  it('HEAD of a CAR checks the root exists; other methods are refused', async () => {
    expect((await get(`/ipfs/${version}?format=car`, { method: 'HEAD' })).status).toBe(200)
    expect((await get('/ipfs/bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e?format=car', { method: 'HEAD' })).status).toBe(404)
    const post = await get(`/ipfs/${version}?format=raw`, { method: 'POST' })
    expect(post.status).toBe(405)
    await post.arrayBuffer()
  })

  it('cairn serve (a child process) prints its URL, serves, and stops on SIGTERM', async () => {
    const { spawn } = await import('node:child_process')
    const { binPath, ensureBuilt } = await import('./helpers/cli.js')
    ensureBuilt()
    const child = spawn(process.execPath, [binPath, 'serve', '--port', '0', '-C', ds.dir], { stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = ''
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString()
          const line = out.split('\n')[0]
          if (out.includes('\n')) resolve(line.trim())
        })
        child.once('exit', () => reject(new Error(`serve exited early: ${out}`)))
      })
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      const res = await fetch(`${url}/ipfs/${version}?format=raw`)
      expect(res.status).toBe(200)
      await checkBlock(version, new Uint8Array(await res.arrayBuffer()))
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
  })

  it('a store missing a block cuts the CAR stream short after a 200 (clients see it incomplete)', async () => {
    const partial = await makeDataset({ 'x.bin': seededBytes(2 * MiB + 1, 'partial') })
    const v = (await build({ dir: partial.dir, message: 'm', date: FIXED_DATE })).version
    const dataset = await openDataset(partial.dir)
    const x = (await resolvePath(dataset.store, v, 'x.bin')).cid
    const leaves = dagPb.decode(await dataset.store.get(x)).Links.map((l) => l.Hash)
    await dataset.store.close()
    // serve a second dataset whose store lacks the last leaf: copy every block but that one
    const holey = await makeDataset({})
    const src = await openDataset(partial.dir)
    const dst = await openDataset(holey.dir)
    for await (const b of walkDag(src.store, v)) if (!b.cid.equals(leaves[2])) await dst.store.put(b.cid, b.bytes)
    await src.store.close()
    await dst.store.close()
    const s = await serve({ dir: holey.dir, port: 0 })
    try {
      const res = await fetch(`${s.url}/ipfs/${v}?format=car`)
      expect(res.status).toBe(200)
      await expect(readCar(res)).rejects.toThrow()
    } finally {
      await s.close()
      await partial.cleanup()
      await holey.cleanup()
    }
  })
})
