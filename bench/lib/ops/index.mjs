/**
 * The wide index: two versions of `p.entries` shard entries that differ in `p.changed` of them, made
 * through the library's own index functions (`buildIndex` of `src/shard-index/prolly.ts`, `encodeManifest`)
 * into a real dataset store, so no million files are needed on disk. The diff itself is measured by
 * `cairn.diff` in a fresh process; this setup reports how long each 1M-entry index took to build.
 *
 * Entries look like a Parquet dataset's: `data/NNNN/part-NNNNNNN.parquet`, a raw CID from the entry's
 * number, a size near 1 MiB, a row count, one shared schema block. The changed entries are spread
 * evenly and keep their path (new CID, size and rows): `modified` shards.
 */
import { createHash } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

const DATE = '2026-01-01T00:00:00.000Z'
const mod = (p, rel) => import(pathToFileURL(join(p.libDir, rel)).href)

export const indexOps = {
  'index.setup': {
    async prepare(p) {
      const [lib, ds, prolly, manifest, cid, tree] = await Promise.all([
        mod(p, 'index.js'),
        mod(p, 'dataset.js'),
        mod(p, 'shard-index/prolly.js'),
        mod(p, 'manifest.js'),
        mod(p, 'cid.js'),
        mod(p, 'unixfs/tree.js'),
      ])
      await lib.init({ dir: p.dir, name: 'wide-index' })
      const dataset = await ds.openDataset(p.dir)
      return { lib, prolly, manifest, cid, tree, store: dataset.store }
    },
    async run(p, { prolly, manifest, cid, tree, store }) {
      const put = (b) => store.put(b.cid, b.bytes)
      const schemaBlock = manifest.encodeManifest({
        type: 'cairn.schema',
        v: 1,
        format: 'parquet',
        fields: [
          { name: 'id', type: 'INT64', nullable: false },
          { name: 'prompt', type: 'STRING', nullable: true },
          { name: 'response', type: 'STRING', nullable: true },
        ],
      })
      await put(schemaBlock)
      const entry = (i, variant) => {
        // stands for the sha256 of the shard's bytes (the diff never reads shard bytes)
        const digest = createHash('sha256').update(`cairn-bench\0${p.seed}\0index\0${i}\0${variant}`).digest()
        return {
          path: `data/${String(Math.floor(i / 1000)).padStart(4, '0')}/part-${String(i).padStart(7, '0')}.parquet`,
          cid: CID.createV1(cid.RAW, Digest.create(cid.SHA2_256, digest)),
          size: (1 << 20) + ((i * 7919 + variant * 104729) % 65536),
          format: 'parquet',
          rows: 1000 + ((i + variant) % 97),
          schema: schemaBlock.cid,
        }
      }
      let t = performance.now()
      const a = Array.from({ length: p.entries }, (_, i) => entry(i, 0))
      const genMs = performance.now() - t
      const b = a.slice()
      const changedAt = []
      for (let k = 0; k < p.changed; k++) {
        const i = Math.floor(((k + 0.5) * p.entries) / p.changed)
        b[i] = entry(i, 1)
        changedAt.push(b[i].path)
      }

      t = performance.now()
      const indexA = await prolly.buildIndex(a, put)
      const buildAms = performance.now() - t
      t = performance.now()
      const indexB = await prolly.buildIndex(b, put)
      const buildBms = performance.now() - t

      const card = { cardVersion: 1, name: 'wide-index' }
      const cardBytes = dagJson.encode(card)
      const cardCid = cid.cidFor(cid.DAG_JSON, cardBytes)
      await store.put(cardCid, cardBytes)
      // A's tree: the diff never reads it, so an empty UnixFS directory stands in; B gets the real
      // tree of its files (1,000 folders of 1,000 names), which a proof of one of its files walks
      const treeBytes = dagPb.encode({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [] })
      const treeCid = cid.cidFor(cid.DAG_PB, treeBytes)
      await store.put(treeCid, treeBytes)
      t = performance.now()
      const treeB = await tree.buildTree(
        b.map((e) => ({ path: e.path, cid: e.cid, dagSize: e.size })),
        put,
      )
      const treeBms = performance.now() - t
      const version = async (index, parent, message, treeOf = treeCid) => {
        const block = manifest.encodeManifest({
          type: 'cairn.version',
          v: 1,
          name: 'wide-index',
          parent,
          created: DATE,
          message,
          profile: manifest.PROFILE,
          card: cardCid,
          index: index.root,
          tree: treeOf,
          totals: index.totals,
        })
        await put(block)
        return block.cid
      }
      const va = await version(indexA, null, `${p.entries} entries`)
      const vb = await version(indexB, va, `${p.changed} entries changed`, treeB.cid)
      await store.close?.()
      return {
        entries: p.entries,
        changed: p.changed,
        changedAt,
        genMs,
        buildAms,
        buildBms,
        treeBms,
        indexA: indexA.root.toString(),
        indexB: indexB.root.toString(),
        versionA: va.toString(),
        versionB: vb.toString(),
      }
    },
  },
}
