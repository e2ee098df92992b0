/**
 * Loopback gateways for clone tests: {@link testGateway} answers `?format=raw` and `?format=car` from
 * any block source (e.g. the gateway-conformance fixture CARs), and can misbehave on purpose (wrong
 * bytes, a truncated CAR with status 200, missing blocks, an HTML error page, a hang) so that tests
 * can check that clients name the CID and the source and move on. Every server listens on 127.0.0.1,
 * port 0, and is closed by the test that started it.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { CarWriter } from '@ipld/car/writer'
import { type BlockSource } from '../../src/index.js'
import { CarBlockSource, FallbackSource } from '../../src/car/source.js'
import { blockLinks } from '../../src/car/block.js'
import { CID } from '../../src/cid.js'
import { isCairnError } from '../../src/errors.js'

/** The gateway-conformance fixtures folder (read-only). */
export const FIXTURES = '/work/shared/fixtures/gateway-conformance'

/** A fixture CAR's path from its folder and name, e.g. `fixture('trustless_gateway_car', 'dir-with-duplicate-files.car')`. */
export function fixture(folder: string, name: string): string {
  return join(FIXTURES, folder, name)
}

/** How a {@link testGateway} misbehaves. */
export type Misbehaviour =
  /** Answers correctly. */
  | 'none'
  /** Flips one byte of every raw leaf block it sends (raw responses and inside CARs). */
  | 'wrong-bytes'
  /** Cuts the last 10 bytes off every CAR response (inside its last block), status 200; raw blocks are fine. */
  | 'truncate-car'
  /** Answers 200 with an HTML error page (as some proxies do). */
  | 'html'
  /** Accepts the request and never answers. */
  | 'hang'
  /** Sends headers and the CAR header, then stalls the body forever. */
  | 'stall'

/** Options of {@link testGateway}. */
export interface TestGatewayOptions {
  readonly misbehave?: Misbehaviour
  /** Blocks it pretends not to hold: 404 for raw, and CAR streams stop before them. */
  readonly missing?: (cid: CID) => boolean
  /** Blocks sent at the start of every CAR response, whatever was asked (blocks not in the DAG). */
  readonly extra?: readonly { readonly cid: CID; readonly bytes: Uint8Array }[]
}

/** A running test gateway. */
export interface TestGateway {
  readonly url: string
  /** Every request's path and query, in order. */
  readonly requests: string[]
  close(): Promise<void>
}

/** Starts a trustless gateway on 127.0.0.1 serving the blocks of `source`. */
export async function testGateway(source: BlockSource, options: TestGatewayOptions = {}): Promise<TestGateway> {
  const mode = options.misbehave ?? 'none'
  const missing = options.missing ?? (() => false)
  const requests: string[] = []
  const hanging = new Set<ServerResponse>()
  const get = async (cid: CID): Promise<Uint8Array | undefined> => {
    if (missing(cid)) return undefined
    try {
      const bytes = await source.get(cid)
      if (mode === 'wrong-bytes' && cid.code === 0x55 && bytes.length > 0) {
        const copy = Uint8Array.from(bytes)
        copy[copy.length >> 1] ^= 0xff
        return copy
      }
      return bytes
    } catch (e) {
      if (isCairnError(e, 'MISSING_BLOCK')) return undefined
      throw e
    }
  }
  const server = createServer((req, res) => {
    requests.push(req.url ?? '')
    void (async () => {
      if (mode === 'hang') {
        hanging.add(res)
        return
      }
      if (mode === 'html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
        res.end('<!doctype html><html><body><h1>502 Bad Gateway</h1><p>upstream timed out</p></body></html>')
        return
      }
      const url = new URL(req.url ?? '/', 'http://x')
      const m = /^\/ipfs\/([^/]+)$/.exec(url.pathname)
      let cid: CID
      try {
        if (m === null) throw new Error('no cid')
        cid = CID.parse(m[1])
      } catch {
        res.writeHead(400).end('bad request')
        return
      }
      const format = url.searchParams.get('format')
      const root = await get(cid)
      if (root === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
        return
      }
      if (format === 'raw') {
        res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw', 'content-length': root.length })
        res.end(root)
        return
      }
      if (format !== 'car') {
        res.writeHead(400).end('format?')
        return
      }
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=n' })
      const { writer, out } = CarWriter.create([cid])
      const held: Uint8Array[] = []
      const pump = (async () => {
        for await (const chunk of out) {
          if (mode === 'truncate-car') held.push(chunk)
          else if (!res.write(chunk)) await new Promise((r) => res.once('drain', r))
        }
        if (mode === 'truncate-car') {
          const whole = Buffer.concat(held)
          res.write(whole.subarray(0, whole.length - 10))
        }
      })()
      let sent = 0
      for (const b of options.extra ?? []) await writer.put(b)
      const seen = new Set<string>()
      const stack: CID[] = [cid]
      try {
        while (stack.length > 0) {
          const at = stack.pop() as CID
          if (seen.has(at.toString()) || at.multihash.code === 0) continue
          seen.add(at.toString())
          const bytes = await get(at)
          if (bytes === undefined) break // a missing block: the stream just ends (as real gateways do)
          if (mode === 'stall' && sent === 1) {
            hanging.add(res)
            await writer.close()
            await pump
            return
          }
          await writer.put({ cid: at, bytes })
          sent++
          const links = blockLinks(at, await source.get(at))
          for (let i = links.length - 1; i >= 0; i--) stack.push(links[i])
        }
      } finally {
        await writer.close().catch(() => {})
      }
      await pump
      if (mode === 'stall') return
      res.end()
    })().catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    async close() {
      for (const r of hanging) r.destroy()
      await new Promise<void>((done) => {
        server.close(() => done())
        server.closeAllConnections()
      })
    },
  }
}

/** A block source over several CAR files (closed with `close`). */
export async function carsSource(paths: readonly string[]): Promise<BlockSource & { close(): Promise<void> }> {
  const cars = await Promise.all(paths.map((p) => CarBlockSource.open(p)))
  const fallback = new FallbackSource(cars)
  return { get: (cid) => fallback.get(cid), close: async () => void (await Promise.all(cars.map((c) => c.close()))) }
}

/** A test gateway over fixture CARs; closing it closes the CARs too. */
export async function fixtureGateway(paths: readonly string[], options: TestGatewayOptions = {}): Promise<TestGateway> {
  const source = await carsSource(paths)
  const gw = await testGateway(source, options)
  return { ...gw, close: async () => (await gw.close(), await source.close()) }
}
