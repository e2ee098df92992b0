/**
 * The gateway's standard paths, plain bytes and operations, against a real release (test/helpers/release.ts):
 * IPLD pathing through the version's fields and UnixFS names (HAMT included) for every format, CARs
 * on paths that @ipld/car and ipfs-unixfs-exporter check on their own, ranges, headers, the release
 * page's JSON, CORS, the request log, bounded concurrency, slow clients and bad input.
 */
import { request } from 'node:http'
import { connect } from 'node:net'
import { CarBlockIterator } from '@ipld/car/iterator'
import { exporter } from 'ipfs-unixfs-exporter'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CID, serve, type RequestEntry, type ServeHandle } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { checkBlock } from '../src/car/block.js'
import { isLoopback } from '../src/serve.js'
import { hamtName, makeRelease, type Release } from './helpers/release.js'

let rel: Release
let server: ServeHandle
const log: RequestEntry[] = []

beforeAll(async () => {
  rel = await makeRelease()
  server = await serve({ dir: rel.ds.dir, port: 0, onRequest: (e) => log.push(e) })
}, 120_000)

afterAll(async () => {
  await server?.close()
  await rel?.ds.cleanup()
})

const get = (path: string, init?: RequestInit): Promise<Response> => fetch(server.url + path, { redirect: 'manual', ...init })

/** Every block of a CAR response, each checked against its CID, as a map for an exporter. */
async function carBlocks(res: Response): Promise<{ roots: string[]; order: string[]; blocks: Map<string, Uint8Array> }> {
  const it = await CarBlockIterator.fromBytes(new Uint8Array(await res.arrayBuffer()))
  const blocks = new Map<string, Uint8Array>()
  const order: string[] = []
  for await (const b of it) {
    await checkBlock(CID.asCID(b.cid) as CID, b.bytes)
    blocks.set(b.cid.toString(), b.bytes)
    order.push(b.cid.toString())
  }
  return { roots: (await it.getRoots()).map(String), order, blocks }
}

/** ipfs-unixfs-exporter (an independent implementation) walks `path` from the CAR's root over its blocks only. */
async function exportFromCar(car: { roots: string[]; blocks: Map<string, Uint8Array> }, path: string): Promise<Uint8Array> {
  const blockstore = {
    // this exporter's blockstore yields a block's bytes
    get: async function* (cid: CID) {
      const b = car.blocks.get(cid.toString())
      if (b === undefined) throw new Error(`block ${cid} not in the CAR`)
      yield b
    },
  }
  const entry = await exporter(`${car.roots[0]}/${path}`, blockstore as never)
  const parts: Uint8Array[] = []
  for await (const chunk of entry.content()) parts.push(chunk as Uint8Array)
  return Buffer.concat(parts)
}

describe('standard paths', () => {
  it('/ipfs/<version>/tree/<path> serves the file bytes, for plain and deep paths and through the HAMT', async () => {
    for (const path of ['data/table.csv', 'deep/a/b/c/d/e.txt', hamtName(1234), 'html/<img src=x onerror=alert(1)>.txt']) {
      const res = await get(`/ipfs/${rel.v2}/tree/${path.split('/').map(encodeURIComponent).join('/')}`)
      expect(res.status, path).toBe(200)
      expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(rel.files[path]))).toBe(true)
    }
  })

  it('/ipfs/<version>/card is the card block; a field inside a block answers its value as JSON', async () => {
    const card = await get(`/ipfs/${rel.v2}/card`)
    expect(card.status).toBe(200)
    const dataset = await openDataset(rel.ds.dir)
    const { readVersion } = await import('../src/version.js')
    const v = await readVersion(dataset.store, rel.v2)
    const cardBytes = await dataset.store.get(v.card)
    await dataset.store.close()
    expect(Buffer.from(await card.arrayBuffer()).equals(Buffer.from(cardBytes))).toBe(true)
    const message = await get(`/ipfs/${rel.v2}/message`)
    expect(await message.json()).toBe('second <release>')
    const name = await get(`/ipfs/${rel.v2}/card/name`)
    expect(await name.json()).toBe('gateway-test')
  })

  it('a CAR on a path (dag-scope=block) holds the blocks that prove each step, and an independent exporter reads the file from them alone', async () => {
    const path = hamtName(42)
    const res = await get(`/ipfs/${rel.v2}/tree/${path}?format=car&dag-scope=block`)
    expect(res.status).toBe(200)
    const car = await carBlocks(res)
    expect(car.roots).toEqual([rel.v2.toString()])
    expect(car.order[0]).toBe(rel.v2.toString())
    // version, tree root, many/ (a HAMT: its root and the shard holding the name), the file
    expect(car.order.length).toBeGreaterThanOrEqual(4)
    const exported = await exportFromCar({ roots: [`${car.order[1]}`], blocks: car.blocks }, path)
    expect(Buffer.from(exported).equals(Buffer.from(rel.files[path]))).toBe(true)
  })

  it('dag-scope=entity of a multi-block file carries all of it; entity-bytes only the blocks of the range', async () => {
    const whole = await carBlocks(await get(`/ipfs/${rel.v2}/tree/blobs/big.bin?format=car&dag-scope=entity`))
    expect(whole.order.length).toBe(3 + 1 + 4) // version, tree, blobs/, file root + 4 leaves
    const tail = await carBlocks(await get(`/ipfs/${rel.v2}/tree/blobs/big.bin?format=car&dag-scope=entity&entity-bytes=-10:*`))
    expect(tail.order.length).toBe(3 + 1 + 1)
    const middle = await carBlocks(await get(`/ipfs/${rel.v2}/tree/blobs/big.bin?format=car&entity-bytes=1048570:1048580`))
    expect(middle.order.length).toBe(3 + 1 + 2)
    const treeRoot = whole.order[1]
    const file = await exportFromCar({ roots: [treeRoot], blocks: whole.blocks }, 'blobs/big.bin')
    expect(Buffer.from(file).equals(Buffer.from(rel.files['blobs/big.bin']))).toBe(true)
  })

  it('raw on a path is the block the path ends in', async () => {
    const res = await get(`/ipfs/${rel.v2}/tree/data/table.csv?format=raw`)
    expect(res.status).toBe(200)
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(rel.files['data/table.csv']))).toBe(true)
  })

  it('the shard-path shortcut redirects to the standard path, keeping the query', async () => {
    const res = await get(`/ipfs/${rel.v2}/data/table.csv?format=car`)
    expect(res.status).toBe(301)
    expect(res.headers.get('location')).toBe(`/ipfs/${rel.v2}/tree/data/table.csv?format=car`)
  })
})

describe('plain bytes', () => {
  const csv = (): string => `/ipfs/${rel.v2}/tree/data/table.csv`
  const big = (): string => `/ipfs/${rel.v2}/tree/blobs/big.bin`

  it('GET and HEAD: length, type by format, ETag, immutable caching, Accept-Ranges', async () => {
    for (const [path, type] of [
      ['data/train.parquet', 'application/vnd.apache.parquet'],
      ['data/points.arrow', 'application/vnd.apache.arrow.file'],
      ['data/rows.jsonl', 'application/jsonl'],
      ['data/table.csv', 'text/csv; charset=utf-8'],
    ] as const) {
      const head = await get(`/ipfs/${rel.v2}/tree/${path}`, { method: 'HEAD' })
      expect(head.status).toBe(200)
      expect(head.headers.get('content-type')).toBe(type)
      expect(Number(head.headers.get('content-length'))).toBe(rel.files[path].length)
      expect(head.headers.get('accept-ranges')).toBe('bytes')
      expect(head.headers.get('cache-control')).toBe('public, max-age=29030400, immutable')
      expect(head.headers.get('etag')).toMatch(/^"baf[a-z0-9]+"$/)
      expect(head.headers.get('access-control-allow-origin')).toBe('*')
    }
    const etag = (await get(csv(), { method: 'HEAD' })).headers.get('etag') as string
    expect((await get(csv(), { headers: { 'if-none-match': `W/${etag}` } })).status).toBe(304)
  })

  it('Range → 206 with the right bytes, across a block boundary, a suffix and an open end; 416 past the end', async () => {
    const bytes = Buffer.from(rel.files['blobs/big.bin'])
    const cases: [string, number, number][] = [
      ['bytes=0-9', 0, 10],
      ['bytes=1048570-1048590', 1048570, 1048591],
      ['bytes=-100', bytes.length - 100, bytes.length],
      [`bytes=${bytes.length - 5}-`, bytes.length - 5, bytes.length],
      ['bytes=3145700-99999999', 3145700, bytes.length],
      ['bytes=5-9, 20-30', 5, 10],
    ]
    for (const [range, from, to] of cases) {
      const res = await get(big(), { headers: { range } })
      expect(res.status, range).toBe(206)
      expect(res.headers.get('content-range')).toBe(`bytes ${from}-${to - 1}/${bytes.length}`)
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(from, to)), range).toBe(true)
    }
    const past = await get(big(), { headers: { range: `bytes=${bytes.length}-` } })
    expect(past.status).toBe(416)
    expect(past.headers.get('content-range')).toBe(`bytes */${bytes.length}`)
    for (const malformed of ['bytes=abc', 'items=0-1', 'bytes=9-2']) {
      const res = await get(csv(), { headers: { range: malformed } })
      expect(res.status, malformed).toBe(200)
      expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(rel.files['data/table.csv']))).toBe(true)
    }
  })

  it('a directory without its slash redirects; with it, a listing (HAMT included) that escapes names', async () => {
    const r = await get(`/ipfs/${rel.v2}/tree/html`)
    expect(r.status).toBe(301)
    expect(r.headers.get('location')).toBe(`/ipfs/${rel.v2}/tree/html/`)
    const html = await (await get(`/ipfs/${rel.v2}/tree/html/`)).text()
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;.txt')
    expect(html).not.toContain('<img')
    const hamt = await get(`/ipfs/${rel.v2}/tree/many/`, { headers: { accept: 'application/json' } })
    const list = (await hamt.json()) as { entries: { name: string }[] }
    expect(list.entries.length).toBe(3500)
  })

  it('a file whose blocks are missing: 404 before any byte; found missing midway: the response is cut short', async () => {
    const { makeDataset } = await import('./helpers/dataset.js')
    const { walkDag } = await import('../src/dag.js')
    const holey = await makeDataset({})
    const src = await openDataset(rel.ds.dir)
    const dst = await openDataset(holey.dir)
    const { resolveIpldPath } = await import('../src/gateway/paths.js')
    const file = (await resolveIpldPath(src.store, rel.v2, ['tree', 'blobs', 'big.bin'])).cid
    const dagPb = await import('@ipld/dag-pb')
    const leaves = dagPb.decode(await src.store.get(file)).Links.map((l) => l.Hash)
    for await (const b of walkDag(src.store, rel.v2)) if (!b.cid.equals(leaves[2])) await dst.store.put(b.cid, b.bytes)
    await src.store.close()
    await dst.store.close()
    const s = await serve({ dir: holey.dir, port: 0 })
    try {
      expect((await fetch(`${s.url}/ipfs/${leaves[2]}`)).status).toBe(404)
      const res = await fetch(`${s.url}/ipfs/${rel.v2}/tree/blobs/big.bin`)
      expect(res.status).toBe(200)
      await expect(res.arrayBuffer()).rejects.toThrow()
      // a range before the missing block is served whole
      const early = await fetch(`${s.url}/ipfs/${rel.v2}/tree/blobs/big.bin`, { headers: { range: 'bytes=0-99' } })
      expect(early.status).toBe(206)
      expect((await early.arrayBuffer()).byteLength).toBe(100)
    } finally {
      await s.close()
      await holey.cleanup()
    }
  })
})

describe('pages and operations', () => {
  it('/ lists versions and tags; the release page JSON has card, totals, files, schemas, previews, history and diff', async () => {
    const home = (await (await get('/', { headers: { accept: 'application/json' } })).json()) as { versions: { cid: string }[] }
    expect(home.versions.map((v) => v.cid)).toEqual([rel.v2.toString(), rel.v1.toString()])
    const view = (await (await get(`/ipfs/${rel.v2}/`, { headers: { accept: 'application/json' } })).json()) as {
      card: { description: string }
      totals: { shards: number }
      files: { path: string }[]
      previews: { path: string; rows: string[][] }[]
      schemas: unknown[]
      history: { cid: string }[]
      diff: {
        counts: { added: number; modified: number }
        shards: { path: string; rows?: { added: number; removed: number; changed: number } }[]
      }
    }
    expect(view.card.description).toContain('<script>')
    expect(view.totals.shards).toBe(3508)
    expect(view.files.length).toBe(1000)
    expect(view.schemas.length).toBeGreaterThan(0)
    expect(view.previews.find((p) => p.path === 'data/train.parquet')?.rows[0]).toEqual(['0', 'question 0 <i>?</i>'])
    expect(view.history.map((h) => h.cid)).toEqual([rel.v1.toString()])
    expect(view.diff.counts).toMatchObject({ added: 1, modified: 1 })
    expect(view.diff.shards.find((s) => s.path === 'data/table.csv')?.rows).toMatchObject({ added: 2, removed: 2 })
    const html = await (await get(`/ipfs/${rel.v2}/`, { headers: { accept: 'text/html' } })).text()
    expect(html).toContain('Rows &lt;script&gt;window.pwned = 1&lt;/script&gt; &amp; more')
    expect(html).not.toContain('<script>')
  })

  it('CORS on /ipfs/ (and a preflight); the request log has method, path, status, bytes and time', async () => {
    const pre = await get(`/ipfs/${rel.v2}/card`, { method: 'OPTIONS' })
    expect(pre.status).toBe(204)
    expect(pre.headers.get('access-control-allow-methods')).toContain('GET')
    log.length = 0
    await (await get(`/ipfs/${rel.v2}/tree/data/table.csv`, { headers: { range: 'bytes=0-3' } })).arrayBuffer()
    await new Promise((r) => setTimeout(r, 50))
    const e = log.find((l) => l.url.endsWith('table.csv'))
    expect(e).toMatchObject({ method: 'GET', status: 206, bytes: 4, aborted: false })
    expect(e?.ms).toBeGreaterThanOrEqual(0)
  })

  it('mounted handlers answer first (e.g. /ipns/ routes); /ipns/ is left alone otherwise', async () => {
    const s = await serve({
      dir: rel.ds.dir,
      port: 0,
      handlers: [(req, res, path) => (path.startsWith('/ipns/') ? (res.end('mounted'), true) : false)],
    })
    try {
      const res = await fetch(`${s.url}/ipns/k51example`)
      expect(await res.text()).toBe('mounted')
      expect(res.headers.get('access-control-allow-origin')).toBe('*')
    } finally {
      await s.close()
    }
  })

  it('.. and %2e%2e in a path are 400, sent raw (a fetch would normalise them away)', async () => {
    for (const path of [`/ipfs/${rel.v2}/tree/../card`, `/ipfs/${rel.v2}/tree/%2e%2e/card`, `/ipfs/${rel.v2}/tree/%2E./card`]) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(`${server.url}${path}`, { path }, (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        })
        req.on('error', reject)
        req.end()
      })
      expect(status, path).toBe(400)
    }
  })

  it('many concurrent range requests are bounded: all answered right; past the active and queued bounds, 503', async () => {
    const s = await serve({ dir: rel.ds.dir, port: 0, maxActive: 4, maxQueued: 50 })
    const bytes = Buffer.from(rel.files['blobs/big.bin'])
    try {
      const results = await Promise.all(
        Array.from({ length: 300 }, async (_, i) => {
          const from = (i * 15_731) % (bytes.length - 1000)
          const res = await fetch(`${s.url}/ipfs/${rel.v2}/tree/blobs/big.bin`, { headers: { range: `bytes=${from}-${from + 999}` } })
          if (res.status === 503) return 'refused'
          expect(res.status).toBe(206)
          expect(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(from, from + 1000))).toBe(true)
          return 'served'
        }),
      )
      expect(results.filter((r) => r === 'served').length).toBeGreaterThanOrEqual(54)
      // clients that never read hold the 4 active slots and fill the queue: the next request is refused
      const stalled = Array.from({ length: 54 }, () => {
        const socket = connect(s.port, '127.0.0.1', () =>
          socket.write(`GET /ipfs/${rel.v2}/tree/blobs/big.bin HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(8)),
        )
        socket.pause()
        socket.on('error', () => {})
        return socket
      })
      await new Promise((r) => setTimeout(r, 1000))
      const refused = await fetch(`${s.url}/ipfs/${rel.v2}/tree/data/table.csv`)
      expect(refused.status).toBe(503)
      expect(refused.headers.get('retry-after')).toBe('1')
      for (const socket of stalled) socket.destroy()
      // once the clients are gone their slots and places in the queue free up (on a new connection each time)
      let status = 0
      for (let i = 0; i < 50 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100))
        status = await new Promise<number>((resolve, reject) => {
          const req = request(`${s.url}/ipfs/${rel.v2}/tree/data/table.csv`, { agent: false }, (res) => {
            res.resume()
            resolve(res.statusCode ?? 0)
          })
          req.on('error', reject)
          req.end()
        })
      }
      expect(status).toBe(200)
    } finally {
      await s.close()
    }
  })

  it('a client that stops reading, or never finishes its request, is dropped after the idle timeout', async () => {
    const entries: RequestEntry[] = []
    const s = await serve({ dir: rel.ds.dir, port: 0, idleTimeoutMs: 500, onRequest: (e) => entries.push(e) })
    try {
      // eight pipelined 3 MiB responses to a reader that never reads: the writes stall, the socket idles
      const reader = connect(s.port, '127.0.0.1', () =>
        reader.write(`GET /ipfs/${rel.v2}/tree/blobs/big.bin HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(8)),
      )
      reader.pause()
      reader.on('error', () => {})
      const silent = await new Promise<number>((resolve) => {
        const socket = connect(s.port, '127.0.0.1', () => socket.write('GET /ipfs/'))
        const t0 = Date.now()
        socket.on('data', () => {})
        socket.on('close', () => resolve(Date.now() - t0))
        socket.on('error', () => {})
      })
      expect(silent).toBeLessThan(5_000)
      for (let i = 0; i < 100 && !entries.some((e) => e.aborted); i++) await new Promise((r) => setTimeout(r, 100))
      expect(entries.find((e) => e.aborted)).toMatchObject({ method: 'GET', status: 200, aborted: true })
      reader.destroy()
    } finally {
      await s.close()
    }
  })

  it('isLoopback: 127/8, ::1 and localhost only', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'].every(isLoopback)).toBe(true)
    expect(['0.0.0.0', '::', '192.168.1.2', '10.0.0.1', 'example.com'].some(isLoopback)).toBe(false)
  })
})

describe('cairn serve (the command)', () => {
  it('logs each request on stderr (method, path, status, bytes, time); --quiet logs none', async () => {
    const { spawn } = await import('node:child_process')
    const { binPath, ensureBuilt } = await import('./helpers/cli.js')
    ensureBuilt()
    for (const quiet of [false, true]) {
      const child = spawn(process.execPath, [binPath, 'serve', '--port', '0', '-C', rel.ds.dir, ...(quiet ? ['--quiet'] : [])], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      try {
        const url = await new Promise<string>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())))
        const res = await fetch(`${url}/ipfs/${rel.v2}/tree/data/table.csv`, { headers: { range: 'bytes=0-4' } })
        expect(res.status).toBe(206)
        await res.arrayBuffer()
        await new Promise((r) => setTimeout(r, 200))
      } finally {
        child.kill('SIGTERM')
      }
      expect(await exited).toBe(0)
      const line = new RegExp(`GET /ipfs/${rel.v2}/tree/data/table\\.csv 206 5 B \\d+ ms`)
      if (quiet) expect(stderr).not.toMatch(line)
      else expect(stderr).toMatch(line)
      expect(stderr).not.toContain('warning')
    }
  }, 60_000)
})
