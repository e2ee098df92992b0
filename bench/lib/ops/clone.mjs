/**
 * `clone` of a version from a running `cairn serve` (bench/lib/server.mjs), or from several sources
 * at once (`urls`), into an empty folder: the client side of a transfer over loopback HTTP (trustless
 * gateway requests, every block checked).
 */
import { pathToFileURL } from 'node:url'

export const cloneOps = {
  'cairn.clone': {
    prepare: (p) => import(pathToFileURL(p.lib).href),
    async run(p, lib) {
      const r = await lib.clone({ cid: p.cid, dir: p.dest, from: p.urls ?? [p.url] })
      return {
        kind: r.kind,
        cid: r.cid.toString(),
        totalFiles: r.totalFiles,
        totalBytes: r.totalBytes,
        written: r.written,
        bytes: r.bytes,
        skipped: r.skipped,
        failures: r.failures.length,
        failed: [...new Set(r.failures.map((f) => f.source))],
        metadataBlocks: r.metadataBlocks,
      }
    },
  },
}
