/**
 * A synthetic release of `p.entries` files (10⁷ in the `mem-10m` case) written through the library
 * into a real dataset store, so that pack, verify --car, diff, serve and gc can be measured at a size
 * whose files would take most of the disk's inodes. Each file is a small raw block of its own
 * (`cairn-bench <seed> <i> <variant>\n`), stored; the shard index and the UnixFS tree are built by the
 * library's streaming builders (`IndexBuilder`, `TreeBuilder` through `buildIndex` / `buildTree` over a
 * stream of files; v1 and v2 are built side by side in one pass), so this setup holds no list of the files. History: v0 (no files) → v1 (every file)
 * → v2 (one file changed, the middle one); HEAD is v2.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import * as dagJson from '@ipld/dag-json'

const mod = (p, rel) => import(pathToFileURL(join(p.libDir, rel)).href)

/** File `i`'s path: 1,000 files a folder, as the real cases. */
export const syntheticPath = (i) => `shards/d${String(Math.floor(i / 1000)).padStart(5, '0')}/part-${String(i).padStart(8, '0')}.bin`

export const syntheticOps = {
  'mem.synthetic': {
    async prepare(p) {
      const [lib, ds, prolly, cid, tree, version] = await Promise.all([
        mod(p, 'index.js'),
        mod(p, 'dataset.js'),
        mod(p, 'shard-index/prolly.js'),
        mod(p, 'cid.js'),
        mod(p, 'unixfs/tree.js'),
        mod(p, 'version.js'),
      ])
      await lib.init({ dir: p.dir, name: 'synthetic' })
      const dataset = await ds.openDataset(p.dir)
      return { prolly, cid, tree, version, dataset }
    },
    async run(p, { prolly, cid, tree, version, dataset }) {
      const store = dataset.store
      const put = (b) => store.put(b.cid, b.bytes)
      const cardBytes = dagJson.encode(JSON.parse(readFileSync(join(p.dir, 'cairn.json'), 'utf8')))
      const card = cid.cidFor(cid.DAG_JSON, cardBytes)
      await store.put(card, cardBytes)
      const changed = p.entries >> 1
      const t0 = performance.now()
      const empty = async () => {
        const index = await prolly.buildIndex([], put)
        const built = await tree.buildTree([], put)
        return version.storeVersion(store, {
          name: 'synthetic',
          parent: null,
          date: new Date('2026-01-01T00:00:00Z'),
          message: 'no files',
          card,
          index: index.root,
          tree: built.cid,
          totals: index.totals,
        })
      }
      const v0 = (await empty()).block.cid
      // v1 and v2 in one pass: the same files, but the middle one, go to two index and two tree builders
      const sides = [0, 1].map(() => ({ index: new prolly.IndexBuilder(put), tree: new tree.TreeBuilder(put) }))
      let puts = []
      const add = async (side, path, bytes) => {
        const c = cid.cidFor(cid.RAW, bytes)
        // a put joins the store's open batch: awaited a batch at a time, not one by one
        puts.push(store.put(c, bytes))
        const a = side.index.add({ path, cid: c, size: bytes.length, format: 'bytes' })
        if (a) await a
        const b = side.tree.add(path, c, bytes.length)
        if (b) await b
      }
      for (let i = 0; i < p.entries; i++) {
        const path = syntheticPath(i)
        const bytes = Buffer.from(`cairn-bench ${p.seed} ${i} 0\n`)
        await add(sides[0], path, bytes)
        await add(sides[1], path, i === changed ? Buffer.from(`cairn-bench ${p.seed} ${i} 1\n`) : bytes)
        if (puts.length >= 8192) {
          await Promise.all(puts)
          puts = []
        }
      }
      await Promise.all(puts)
      const versions = []
      let parent = v0
      for (const [k, side] of sides.entries()) {
        const index = await side.index.finish()
        const built = await side.tree.finish()
        const { block } = await version.storeVersion(store, {
          name: 'synthetic',
          parent,
          date: new Date(`2026-01-0${k + 2}T00:00:00Z`),
          message: k === 0 ? `${p.entries} files` : '1 file changed',
          card,
          index: index.root,
          tree: built.cid,
          totals: index.totals,
        })
        versions.push(block.cid)
        parent = block.cid
      }
      const [v1, v2] = versions
      for (const v of [v0, v1, v2]) await dataset.refs.setHead(v)
      await store.close()
      return {
        entries: p.entries,
        changedPath: syntheticPath(changed),
        v0: v0.toString(),
        v1: v1.toString(),
        v2: v2.toString(),
        ms: performance.now() - t0,
      }
    },
  },
}
