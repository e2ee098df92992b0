/**
 * A helper process, not a measurement: `node bench/lib/server.mjs <lib> <dataset dir> <url file>`
 * starts cairn's `serve` on a free loopback port over the dataset's store, writes the gateway's URL to
 * `<url file>` and serves until SIGTERM (then closes cleanly). `clone from serve` fetches from it, so
 * the clone's process holds only the client side.
 */
import { renameSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

const [lib, dir, urlFile] = process.argv.slice(2)
const { serve } = await import(pathToFileURL(lib).href)
const handle = await serve({ dir, port: 0, host: '127.0.0.1' })
// written whole, then renamed: the parent never reads half a URL
writeFileSync(`${urlFile}.tmp`, handle.url)
renameSync(`${urlFile}.tmp`, urlFile)
process.once('SIGTERM', () => {
  // the server's own peak RSS (KiB on Linux), for the bench's `serve (over the clones)` row
  // and its CPU time (µs, user + system) beside it, for the memory case's row
  const peak = () => {
    const u = process.resourceUsage()
    writeFileSync(`${urlFile}.cpu`, String(u.userCPUTime + u.systemCPUTime))
    writeFileSync(`${urlFile}.rss`, String(u.maxRSS))
  }
  handle
    .close()
    .then(peak, peak)
    .then(
      () => process.exit(0),
      () => process.exit(1),
    )
})
