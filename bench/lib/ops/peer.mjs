/**
 * The peer: `ipfs-car pack <folder> --output <file.car>`, run as its own CLI (its `bin.js` parses
 * the same argv) inside the child. Its modules are loaded before the clock starts, as cairn's are, and
 * the op ends when the process has nothing left to do (ipfs-car does not hand back a promise).
 */
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

export const peerOps = {
  'ipfs-car.pack': {
    detached: true,
    async prepare(p) {
      // the module the `pack` command imports lazily: load it now so that only packing is timed
      await import(pathToFileURL(join(p.ipfsCar, 'cmd', 'pack.js')).href)
      return { bin: pathToFileURL(join(p.ipfsCar, 'bin.js')).href }
    },
    async run(p, ctx) {
      process.argv = [process.argv[0], join(p.ipfsCar, 'bin.js'), 'pack', p.dir, '--output', p.output]
      await import(ctx.bin)
    },
    after(p) {
      return { carBytes: statSync(p.output).size }
    },
  },
}
