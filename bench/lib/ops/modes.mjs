/**
 * The store-modes case's op: `init` in a store mode (untimed), then `build` (timed). The parent measures
 * the store's size afterwards (apparent bytes, allocated bytes, and what the file system lost in free
 * space, which is the only honest size of copy-on-write clones).
 */
import { pathToFileURL } from 'node:url'

const DATE = new Date('2026-01-01T00:00:00Z')

export const modesOps = {
  'modes.build': {
    async prepare(p) {
      const lib = await import(pathToFileURL(p.lib).href)
      await lib.init({ dir: p.dir, storeMode: p.storeMode })
      return lib
    },
    async run(p, lib) {
      const r = await lib.build({ dir: p.dir, message: 'bench', date: DATE })
      const mode = await lib.storeMode({ dir: p.dir })
      return { version: r.version.toString(), shards: r.manifest.totals.shards, mode: mode.mode, reflinks: mode.reflinks }
    },
  },
}
