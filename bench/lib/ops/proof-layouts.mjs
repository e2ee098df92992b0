/**
 * The proof of one file in a release of `p.entries` files, for one folder layout (`p.layout`): `flat`
 * (one folder: a HAMT), `1000x1000` or `100x100x100` (folders of folders). The release is made through
 * the library's own functions (`buildIndex`, `buildTree`, `encodeManifest`) into a real store, as the
 * `index` case does, and proved with `prove`; the proof CAR is read back with `@ipld/car` and split into
 * its tree part (the dag-pb blocks pathing reads), its index part (the prolly nodes from the root to the
 * entry), the version and the schema, each with its CAR framing.
 *
 * It also computes what the index part would be with other fanouts (16; 64 as a check), without
 * changing cairn: the index builder's rule is replayed here with another threshold (a node closes after
 * an entry whose `murmur3-32("<level>:<path>")` is under 2³²/fanout, or before it would pass 256 KiB),
 * each node encoded with the library's `encodeManifest`. The replay at 64 must give the library's own
 * index root, CID for CID, or the op fails: so the fanout-16 figure is what the builder would make.
 */
import { createHash } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { CarReader } from '@ipld/car'
import * as dagJson from '@ipld/dag-json'
import { murmur332 } from '@multiformats/murmur3'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import varint from 'varint'

const DATE = '2026-01-01T00:00:00.000Z'
const mod = (p, rel) => import(pathToFileURL(join(p.libDir, rel)).href)

/** The path of file `i` of `n` in a layout; zero-padded, so path order is number order. */
export function layoutPath(layout, i) {
  const name = `part-${String(i).padStart(7, '0')}.parquet`
  if (layout === 'flat') return `data/${name}`
  if (layout === '1000x1000') return `data/${String(Math.floor(i / 1000)).padStart(4, '0')}/${name}`
  if (layout === '100x100x100') {
    return `data/${String(Math.floor(i / 10_000)).padStart(2, '0')}/${String(Math.floor(i / 100) % 100).padStart(2, '0')}/${name}`
  }
  throw new Error(`unknown layout ${layout}`)
}

/** Bytes a block takes in a CARv1: the section's length varint, the CID, the bytes. */
const framed = (cid, bytes) => varint.encodingLength(cid.bytes.length + bytes.length) + cid.bytes.length + bytes.length

export const proofLayoutOps = {
  'index.proofLayout': {
    async prepare(p) {
      const [lib, ds, prolly, manifest, cid, tree] = await Promise.all([
        mod(p, 'index.js'),
        mod(p, 'dataset.js'),
        mod(p, 'shard-index/prolly.js'),
        mod(p, 'manifest.js'),
        mod(p, 'cid.js'),
        mod(p, 'unixfs/tree.js'),
      ])
      rmSync(p.dir, { recursive: true, force: true })
      await lib.init({ dir: p.dir, name: 'proof-layout' })
      return { lib, ds, prolly, manifest, cid, tree }
    },
    async run(p, { lib, ds, prolly, manifest, cid, tree }) {
      const dataset = await ds.openDataset(p.dir)
      const store = dataset.store
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
      const entries = Array.from({ length: p.entries }, (_, i) => {
        const digest = createHash('sha256').update(`cairn-bench\0${p.seed}\0proof\0${i}`).digest()
        return {
          path: layoutPath(p.layout, i),
          cid: CID.createV1(cid.RAW, Digest.create(cid.SHA2_256, digest)),
          size: (1 << 20) + ((i * 7919) % 65536),
          format: 'parquet',
          rows: 1000 + (i % 97),
          schema: schemaBlock.cid,
        }
      })
      const index = await prolly.buildIndex(entries, put)
      const built = await tree.buildTree(
        entries.map((e) => ({ path: e.path, cid: e.cid, dagSize: e.size })),
        put,
      )
      const cardBytes = dagJson.encode({ cardVersion: 1, name: 'proof-layout' })
      const cardCid = cid.cidFor(cid.DAG_JSON, cardBytes)
      await store.put(cardCid, cardBytes)
      const version = manifest.encodeManifest({
        type: 'cairn.version',
        v: 1,
        name: 'proof-layout',
        parent: null,
        created: DATE,
        message: `${p.entries} files, ${p.layout}`,
        profile: manifest.PROFILE,
        card: cardCid,
        index: index.root,
        tree: built.cid,
        totals: index.totals,
      })
      await put(version)
      await store.close?.()

      // a file in the middle: not the first or last of its folders, nor of the index
      const target = entries[Math.floor(p.entries / 2) + 123].path
      const output = join(p.dir, 'proof.car')
      const proved = await lib.prove({ dir: p.dir, ref: version.cid.toString(), path: target, output })
      const check = await lib.verifyProof(output, version.cid, target)
      if (!check.ok) throw new Error(`the proof of ${target} did not verify`)
      const parts = {
        tree: { blocks: 0, bytes: 0 },
        index: { blocks: 0, bytes: 0 },
        version: { blocks: 0, bytes: 0 },
        schema: { blocks: 0, bytes: 0 },
      }
      const reader = await CarReader.fromBytes(readFileSync(output))
      const treeBlocks = []
      const indexNodes = []
      for await (const { cid: c, bytes } of reader.blocks()) {
        let part
        if (c.code === 0x70 || c.code === 0x55) part = 'tree'
        else {
          const type = dagJson.decode(bytes).type
          part = type === 'cairn.version' ? 'version' : type === 'cairn.index' ? 'index' : 'schema'
          if (part === 'index') indexNodes.push({ bytes: bytes.length, entries: dagJson.decode(bytes).entries.length })
        }
        if (part === 'tree') treeBlocks.push(bytes.length)
        parts[part].blocks++
        parts[part].bytes += framed(c, bytes)
      }
      const header = proved.bytes - Object.values(parts).reduce((n, x) => n + x.bytes, 0)

      // the index part varies with the file (a node that holds more entries is more likely to hold
      // the one proved), so it is also given over SAMPLES files spread over the release
      const SAMPLES = 200
      const targets = [target, ...Array.from({ length: SAMPLES }, (_, k) => entries[Math.floor(((k + 0.5) * p.entries) / SAMPLES)].path)]
      const fanouts = {}
      for (const fanout of [64, 16]) {
        const replay = await replayIndex(entries, fanout, targets, manifest)
        if (fanout === 64 && !replay.root.equals(index.root)) {
          throw new Error(`the replayed builder made root ${replay.root}, the library ${index.root}: the fanout figures would not hold`)
        }
        const total = (t) => replay.paths.get(t).reduce((n, x) => n + x.bytes, 0)
        const sample = targets.slice(1).map(total)
        fanouts[fanout] = {
          bytes: total(target),
          nodes: replay.paths.get(target),
          levels: replay.paths.get(target).length,
          mean: Math.round(sample.reduce((a, b) => a + b, 0) / sample.length),
          min: Math.min(...sample),
          max: Math.max(...sample),
        }
      }
      if (fanouts[64].bytes !== parts.index.bytes) {
        throw new Error(`the replay's index path is ${fanouts[64].bytes} B, the proof's ${parts.index.bytes} B`)
      }
      rmSync(p.dir, { recursive: true, force: true })
      return {
        layout: p.layout,
        entries: p.entries,
        target,
        proofBytes: proved.bytes,
        proofBlocks: proved.blocks,
        header,
        parts,
        treeBlocks,
        indexNodes,
        fanouts,
      }
    },
  },
}

/**
 * The index builder of src/shard-index/prolly.ts replayed with `2³²/fanout` as the boundary threshold.
 * Returns its root and, for each of `targets`, the nodes on its path (bytes framed in a CAR, entries),
 * root first.
 */
async function replayIndex(entries, fanout, targets, manifest) {
  const threshold = Math.floor(0x1_0000_0000 / fanout)
  const MAX_NODE_BYTES = 256 * 1024
  const estimate = (item) => item.path.length * 3 + 200
  const encoder = new TextEncoder()
  const boundary = (level, path) => {
    const h = murmur332.encode(encoder.encode(`${level}:${path}`))
    return ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0 < threshold
  }
  const wanted = new Set(targets)
  const leafOf = new Map() // target path → its leaf
  const parentOf = new Map() // node CID → the node holding its branch entry
  const sum = (items) => {
    let shards = 0
    let bytes = 0
    let rows = 0
    for (const it of items) {
      if ('node' in it) {
        shards += it.totals.shards
        bytes += it.totals.bytes
        rows += it.totals.rows
      } else {
        shards++
        bytes += it.size
        rows += it.rows ?? 0
      }
    }
    return { shards, bytes, rows }
  }
  const levels = []
  const close = (level) => {
    const l = levels[level]
    const items = l.items
    l.items = []
    l.bytes = 0
    const block = manifest.encodeManifest({ type: 'cairn.index', v: 1, level, entries: items })
    const node = { cid: block.cid, bytes: framed(block.cid, block.bytes), entries: items.length }
    for (const it of items) {
      if (level === 0) {
        if (wanted.has(it.path)) leafOf.set(it.path, node)
      } else parentOf.set(it.node.toString(), node)
    }
    push(level + 1, { path: items[0].path, node: block.cid, totals: sum(items) })
  }
  const push = (level, item) => {
    if (levels.length === level) levels.push({ items: [], bytes: 0, received: 0, first: item })
    const l = levels[level]
    if (l.items.length > 0 && l.bytes + estimate(item) > MAX_NODE_BYTES) close(level)
    l.items.push(item)
    l.bytes += estimate(item)
    l.received++
    if (boundary(level, item.path)) close(level)
  }
  for (const e of entries) push(0, e)
  let root
  for (let level = 0; ; level++) {
    const l = levels[level]
    if (level > 0 && l.received === 1) {
      root = l.first.node
      break
    }
    if (l.items.length > 0) close(level)
  }
  const paths = new Map()
  for (const t of targets) {
    const path = []
    // a node closed over the root alone (when it was a boundary) is not part of the index
    for (let n = leafOf.get(t); n; n = n.cid.equals(root) ? undefined : parentOf.get(n.cid.toString())) path.unshift(n)
    paths.set(
      t,
      path.map(({ bytes, entries }) => ({ bytes, entries })),
    )
  }
  return { root, paths }
}
