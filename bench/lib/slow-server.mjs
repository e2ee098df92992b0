/**
 * A helper process, not a measurement: `node bench/lib/slow-server.mjs <upstream> <bytes/s> <stall after> <url file>`
 * starts a loopback HTTP proxy to `<upstream>` (a `cairn serve` URL) that sends response bodies at
 * `<bytes/s>` in all (0: as fast as they come) and, once it has sent `<stall after>` body bytes in all
 * (0: never), sends nothing more to anyone: connections stay open, new requests are accepted and never
 * answered. What it sends is the upstream's answer, byte for byte. It writes its URL to `<url file>`
 * and runs until SIGTERM. The bench's `clone from 3 sources` row puts a throttled one and a stalling
 * one beside the real server.
 */
import { createServer, request } from 'node:http'
import { renameSync, writeFileSync } from 'node:fs'

const [upstream, rateArg, stallArg, urlFile] = process.argv.slice(2)
const rate = Number(rateArg)
const stallAfter = Number(stallArg)
let sent = 0
let nextFree = 0
const held = new Set()
const stalled = () => stallAfter > 0 && sent >= stallAfter

const server = createServer((req, res) => {
  if (stalled()) return void held.add(res)
  const up = request(`${upstream}${req.url ?? '/'}`, { headers: { accept: req.headers.accept ?? '*/*' } }, (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers)
    ;(async () => {
      for await (const chunk of answer) {
        for (let at = 0; at < chunk.length;) {
          if (res.destroyed) return void answer.destroy()
          if (stalled()) {
            answer.destroy()
            held.add(res)
            return
          }
          let piece = chunk.subarray(at, at + 16 * 1024)
          if (stallAfter > 0) piece = piece.subarray(0, stallAfter - sent)
          if (rate > 0) {
            const now = performance.now()
            nextFree = Math.max(now, nextFree) + (piece.length / rate) * 1000
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
// a client that gave up on a held request closes it: forget it
server.on('request', (req, res) => res.once('close', () => held.delete(res)))
server.listen(0, '127.0.0.1', () => {
  writeFileSync(`${urlFile}.tmp`, `http://127.0.0.1:${server.address().port}`)
  renameSync(`${urlFile}.tmp`, urlFile)
})
process.once('SIGTERM', () => {
  for (const r of held) r.destroy()
  server.close(() => process.exit(0))
  server.closeAllConnections()
})
