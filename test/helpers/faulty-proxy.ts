/**
 * A loopback HTTP proxy in front of a real gateway (`cairn serve`) that misbehaves as slow or broken
 * mirrors do: it never answers, stops sending after N bytes, sends at a fixed rate, or answers every
 * request with an error status. What it does send is the gateway's answer, byte for byte. It counts
 * requests and body bytes, so that tests can see which source did the work.
 */
import { createServer, request, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** How a {@link faultyProxy} misbehaves (none of them: a plain proxy). */
export interface ProxyFaults {
  /** Accept every request and never answer. */
  readonly hang?: boolean
  /** Forward until this many body bytes were sent in all, then send nothing more, to anyone (connections stay open). */
  readonly stallAfterBytes?: number
  /** Send bodies at this rate in all (bytes per second). */
  readonly bytesPerSecond?: number
  /** Answer every request with this HTTP status. */
  readonly status?: number
}

/** A running proxy. */
export interface FaultyProxy {
  readonly url: string
  /** Requests received. */
  readonly requests: () => number
  /** Body bytes sent. */
  readonly bytes: () => number
  close(): Promise<void>
}

/** Starts a proxy on 127.0.0.1 (port 0) to `upstream` (an `http://127.0.0.1:…` base URL). */
export async function faultyProxy(upstream: string, faults: ProxyFaults = {}): Promise<FaultyProxy> {
  let requests = 0
  let sent = 0
  let nextFree = 0
  const held = new Set<ServerResponse>()
  const stalled = (): boolean => faults.stallAfterBytes !== undefined && sent >= faults.stallAfterBytes
  const server = createServer((req, res) => {
    requests++
    if (faults.hang === true || stalled()) {
      held.add(res)
      return
    }
    if (faults.status !== undefined) {
      res.writeHead(faults.status, { 'content-type': 'text/plain' }).end(`status ${faults.status}\n`)
      return
    }
    const up = request(`${upstream}${req.url ?? '/'}`, { headers: { accept: req.headers.accept ?? '*/*' } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      void (async () => {
        for await (const chunk of answer as AsyncIterable<Buffer>) {
          for (let at = 0; at < chunk.length;) {
            if (res.destroyed) return void answer.destroy()
            if (stalled()) {
              answer.destroy()
              held.add(res)
              return
            }
            let piece = chunk.subarray(at, at + 16 * 1024)
            if (faults.stallAfterBytes !== undefined) piece = piece.subarray(0, faults.stallAfterBytes - sent)
            if (faults.bytesPerSecond !== undefined) {
              const now = performance.now()
              nextFree = Math.max(now, nextFree) + (piece.length / faults.bytesPerSecond) * 1000
              await new Promise((r) => setTimeout(r, nextFree - now))
            }
            at += piece.length
            sent += piece.length
            if (!res.write(piece)) await new Promise((r) => res.once('drain', r))
          }
        }
        res.end()
      })().catch(() => res.destroy())
    })
    up.on('error', () => res.destroy())
    up.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    bytes: () => sent,
    async close() {
      for (const r of held) r.destroy()
      await new Promise<void>((done) => {
        server.close(() => done())
        server.closeAllConnections()
      })
    },
  }
}
