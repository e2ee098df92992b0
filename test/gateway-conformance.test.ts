/**
 * The gateway-conformance fixtures (../shared/fixtures/gateway-conformance, made by Kubo) served by
 * path, with the status, content type and bytes the conformance suite's path-gateway tests expect
 * (tests/path_gateway_unixfs_test.go: ranges, missing blocks outside a range, percent-encoded names,
 * symlinks, listings, If-None-Match). Expected bytes come from ipfs-unixfs-exporter reading the CAR.
 */
import { CarBlockIterator } from '@ipld/car/iterator'
import { readFile } from 'node:fs/promises'
import { exporter } from 'ipfs-unixfs-exporter'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CID, serve, type ServeHandle } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { makeDataset, type TempDataset } from './helpers/dataset.js'
import { fixture } from './helpers/gateways.js'

const DIR_WITH_FILES = 'bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy'
const PERCENT = 'bafybeig675grnxcmshiuzdaz2xalm6ef4thxxds6o6ypakpghm5kghpc34'
const SYMLINK = 'QmWvY6FaqFMS89YAQ9NAPjVP4WZKA1qbHbicc9HeSKQTgt'
const MISSING_V0 = 'QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk'
const FIXTURES = [
  ['path_gateway_unixfs', 'dir-with-files.car'],
  ['path_gateway_unixfs', 'dir-with-percent-encoded-filename.car'],
  ['path_gateway_unixfs', 'symlink.car'],
  ['trustless_gateway_car', 'file-3k-and-3-blocks-missing-block.car'],
] as const

let ds: TempDataset
let server: ServeHandle
const blocks = new Map<string, Uint8Array>()

beforeAll(async () => {
  ds = await makeDataset({})
  const dataset = await openDataset(ds.dir)
  for (const [folder, name] of FIXTURES) {
    const it = await CarBlockIterator.fromBytes(await readFile(fixture(folder, name)))
    for await (const b of it) {
      await dataset.store.put(CID.asCID(b.cid) as CID, b.bytes)
      blocks.set(b.cid.toString(), b.bytes)
    }
  }
  await dataset.store.close()
  server = await serve({ dir: ds.dir, port: 0 })
})

afterAll(async () => {
  await server?.close()
  await ds?.cleanup()
})

/** A file's bytes as ipfs-unixfs-exporter reads them from the fixture blocks. */
async function expected(path: string): Promise<Buffer> {
  const store = {
    get: async function* (cid: CID) {
      const b = blocks.get(cid.toString())
      if (b === undefined) throw new Error(`no block ${cid}`)
      yield b
    },
  }
  const parts: Uint8Array[] = []
  for await (const c of (await exporter(path, store as never)).content()) parts.push(c as Uint8Array)
  return Buffer.concat(parts)
}

const get = (path: string, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(server.url + path, { headers, redirect: 'manual' })

describe('gateway-conformance path_gateway_unixfs', () => {
  it('a whole file: 200, text/plain, the bytes, the CID as a strong Etag, immutable caching', async () => {
    for (const name of ['hello.txt', 'ascii.txt', 'multiblock.txt']) {
      const res = await get(`/ipfs/${DIR_WITH_FILES}/${name}`)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toContain('text/plain')
      expect(res.headers.get('cache-control')).toBe('public, max-age=29030400, immutable')
      const body = Buffer.from(await res.arrayBuffer())
      expect(body.equals(await expected(`${DIR_WITH_FILES}/${name}`))).toBe(true)
      const etag = res.headers.get('etag') as string
      expect(etag).toMatch(/^"bafkrei\w+"|^"bafybei\w+"$/)
      expect(res.headers.get('x-ipfs-roots')?.split(',')[0]).toBe(DIR_WITH_FILES)
      for (const inm of [etag, `W/${etag}`, `"fakeEtag1", "fakeEtag2", ${etag}`, '*']) {
        expect((await get(`/ipfs/${DIR_WITH_FILES}/${name}`, { 'if-none-match': inm })).status, inm).toBe(304)
      }
    }
  })

  it('ranges: bytes=6-16 → 206 bytes 6-16/31; bytes=-3 → 28-30/31; a multi-range answers its first range', async () => {
    const ascii = await expected(`${DIR_WITH_FILES}/ascii.txt`)
    for (const [range, contentRange, slice] of [
      ['bytes=6-16', 'bytes 6-16/31', ascii.subarray(6, 17)],
      ['bytes=-3', 'bytes 28-30/31', ascii.subarray(28, 31)],
      ['bytes=6-16,0-4', 'bytes 6-16/31', ascii.subarray(6, 17)],
    ] as const) {
      const res = await get(`/ipfs/${DIR_WITH_FILES}/ascii.txt`, { range })
      expect(res.status).toBe(206)
      expect(res.headers.get('content-type')).toContain('text/plain')
      expect(res.headers.get('content-range')).toBe(contentRange)
      expect(Buffer.from(await res.arrayBuffer()).equals(slice)).toBe(true)
    }
  })

  it('a range succeeds when blocks outside it are missing (before and after)', async () => {
    const v1 = CID.createV1(0x70, CID.parse(MISSING_V0).multihash)
    for (const cid of [v1, CID.parse(MISSING_V0)]) {
      for (const [range, contentRange] of [
        ['bytes=997-1000', 'bytes 997-1000/3072'],
        ['bytes=2200-2201', 'bytes 2200-2201/3072'],
      ]) {
        const res = await get(`/ipfs/${cid}`, { range })
        expect(res.status, `${cid} ${range}`).toBe(206)
        // the type is sniffed (Go's rule) from the bytes served: the suite's text/plain holds for 997-1000;
        // bytes 2200-2201 of this random file hold a binary byte, so they are application/octet-stream here
        if (range === 'bytes=997-1000') expect(res.headers.get('content-type'), `${cid} ${range}`).toContain('text/plain')
        expect(res.headers.get('content-range')).toBe(contentRange)
        expect((await res.arrayBuffer()).byteLength).toBe(range === 'bytes=997-1000' ? 4 : 2)
      }
    }
  })

  it('a percent-encoded file name', async () => {
    const res = await get(`/ipfs/${PERCENT}/Portugal%252C+España=Peninsula%20Ibérica.txt`)
    expect(res.status).toBe(200)
    const body = Buffer.from(await res.arrayBuffer())
    expect(body.equals(await expected(`${PERCENT}/Portugal%2C+España=Peninsula Ibérica.txt`))).toBe(true)
  })

  it('symlinks: the listing shows both names, the link answers its target, raw answers the directory block', async () => {
    const listing = await (await get(`/ipfs/${SYMLINK}/`)).text()
    expect(listing).toContain('>foo<')
    expect(listing).toContain('>bar<')
    expect(await (await get(`/ipfs/${SYMLINK}/bar`)).text()).toBe('foo')
    expect(await (await get(`/ipfs/${SYMLINK}/foo`)).text()).toBe('content\n')
    const raw = await get(`/ipfs/${SYMLINK}?format=raw`)
    expect(raw.status).toBe(200)
    expect(Buffer.from(await raw.arrayBuffer()).equals(Buffer.from(blocks.get(SYMLINK) as Uint8Array))).toBe(true)
  })

  it('listings: "Index of", a redirect to the trailing slash, a DirIndex Etag, 404 for a name that is not there', async () => {
    const r = await get(`/ipfs/${DIR_WITH_FILES}`)
    expect(r.status).toBe(301)
    expect(r.headers.get('location')).toBe(`/ipfs/${DIR_WITH_FILES}/`)
    const res = await get(`/ipfs/${DIR_WITH_FILES}/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('etag')).toContain('"DirIndex-')
    const html = await res.text()
    expect(html).toContain('Index of')
    for (const name of ['ascii-copy.txt', 'ascii.txt', 'hello.txt', 'multiblock.txt']) expect(html).toContain(`>${name}<`)
    expect(html).not.toContain(`<a href="/ipfs/${DIR_WITH_FILES}/">..</a>`)
    expect((await get(`/ipfs/${DIR_WITH_FILES}/i-do-not-exist`)).status).toBe(404)
  })
})
