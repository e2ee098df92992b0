/**
 * A synthetic release of `p.entries` files (10⁷ in the `mem-10m` case) written through the library
 * into a real dataset store, so that pack, verify --car, diff, serve and gc can be measured at a size
 * whose files would take most of the disk's inodes. Each file is a small raw block of its own
 * (`cairn-bench <seed> <i> <variant>\n`), stored; the shard index and the UnixFS tree are built by the
 * library's streaming builders (`IndexBuilder`, `TreeBuilder` through `buildIndex` / `buildTree` over a
 * generator), so this setup holds no list of the files either. History: v0 (no files) → v1 (every file)
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
      const file = (i, variant) => {
        const bytes = Buffer.from(`cairn-bench ${p.seed} ${i} ${variant}\n`)
        return { path: syntheticPath(i), bytes, cid: cid.cidFor(cid.RAW, bytes) }
      }
      /** The files of v1 (variant 0) or v2 (the middle one changed), each block stored as it goes by. */
      async function* files(v2) {
        for (let i = 0; i < p.entries; i++) {
          const f = file(i, v2 && i === changed ? 1 : 0)
          if (!v2 || i === changed) await store.put(f.cid, f.bytes)
          yield f
        }
      }
      const entries = async function* (v2) {
        for await (const f of files(v2)) yield { path: f.path, cid: f.cid, size: f.bytes.length, format: 'bytes' }
      }
      const treeFiles = async function* (v2) {
        for (let i = 0; i < p.entries; i++) {
          const f = file(i, v2 && i === changed ? 1 : 0)
          yield { path: f.path, cid: f.cid, dagSize: f.bytes.length }
        }
      }
      const t0 = performance.now()
      const make = async (v2, parent, message, date) => {
        const index = await prolly.buildIndex(entries(v2), put)
        const built = await tree.buildTree(treeFiles(v2), put)
        const { block } = await version.storeVersion(store, {
          name: 'synthetic',
          parent,
          date: new Date(date),
          message,
          card,
          index: index.root,
          tree: built.cid,
          totals: index.totals,
        })
        return block.cid
      }
      const empty = async () => {
        const index = await prolly.buildIndex([], put)
        const built = await tree.buildTree([], put)
        const { block } = await version.storeVersion(store, {
          name: 'synthetic',
          parent: null,
          date: new Date('2026-01-01T00:00:00Z'),
          message: 'no files',
          card,
          index: index.root,
          tree: built.cid,
          totals: index.totals,
        })
        return block.cid
      }
      const v0 = await empty()
      await dataset.refs.setHead(v0)
      const v1 = await make(false, v0, `${p.entries} files`, '2026-01-02T00:00:00Z')
      await dataset.refs.setHead(v1)
      const v1ms = performance.now() - t0
      const v2 = await make(true, v1, '1 file changed', '2026-01-03T00:00:00Z')
      await dataset.refs.setHead(v2)
      await store.close()
      return {
        entries: p.entries,
        changedPath: syntheticPath(changed),
        v0: v0.toString(),
        v1: v1.toString(),
        v2: v2.toString(),
        v1ms,
        v2ms: performance.now() - t0 - v1ms,
      }
    },
  },
}
