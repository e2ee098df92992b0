/**
 * cairn's operations, each one call of the compiled library (`p.lib`: the snapshot of
 * `dist/src/index.js` this bench run measures). The library is imported before the clock starts.
 * Every op returns what the parent checks (the version CID, `unchanged`, `ok`, counts), so a fast
 * wrong answer cannot pass for a fast right one.
 */
import { statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'

/** The version date every bench build uses, so equal inputs give equal version CIDs. */
const DATE = new Date('2026-01-01T00:00:00Z')

const load = (p) => import(pathToFileURL(p.lib).href)
/** A module of the same snapshot that the library's entry does not export (`rel` under `dist/src/`). */
const internal = (p, rel) => import(pathToFileURL(join(dirname(p.lib), rel)).href)

export const cairnOps = {
  /** Which verbs the library has (diff, clone, serve are detected, not assumed). */
  'cairn.probe': {
    prepare: load,
    run: (p, lib) => ({
      exports: Object.keys(lib).sort(),
      functions: Object.keys(lib)
        .filter((k) => typeof lib[k] === 'function')
        .sort(),
    }),
  },

  'cairn.init': {
    prepare: load,
    async run(p, lib) {
      const r = await lib.init({ dir: p.dir, name: p.name })
      return { cardWritten: r.cardWritten }
    },
  },

  /** `p.fresh`: the parent removed `.cairn/`; `init` recreates it (kept out of the timing). */
  'cairn.build': {
    async prepare(p) {
      const lib = await load(p)
      if (p.fresh) await lib.init({ dir: p.dir })
      return lib
    },
    async run(p, lib) {
      const r = await lib.build({ dir: p.dir, message: p.message ?? 'bench', date: DATE })
      return {
        version: r.version.toString(),
        unchanged: r.unchanged,
        changes: r.changes,
        shards: r.manifest.totals.shards,
        bytes: r.manifest.totals.bytes,
      }
    },
  },

  /** `status` of the folder against HEAD: the counts of changed shards. */
  'cairn.status': {
    prepare: load,
    async run(p, lib) {
      const r = await lib.status({ dir: p.dir })
      return { ...r.counts, files: r.files, hashed: r.hashed }
    },
  },

  /**
   * `publish` of `p.v2` to a `dir:` target that already holds `p.v1` (published in `prepare`, untimed,
   * into a fresh folder): what leaves for the target is what it lacks. `newBlocksBytes` is computed
   * apart (in `prepare`), from the two releases' blocks (`releaseLinks` from the store): the bytes of
   * every block of v2's release that v1's release does not hold, i.e. the changed shard's blocks and
   * the new index, tree and version blocks.
   */
  'cairn.publishChanged': {
    async prepare(p) {
      const lib = await load(p)
      const { openDataset } = await internal(p, 'dataset.js')
      const { releaseLinks } = await internal(p, 'release/links.js')
      const { rmSync } = await import('node:fs')
      rmSync(p.target, { recursive: true, force: true })
      await lib.publish({ dir: p.dir, ref: p.v1, to: `dir:${p.target}` })
      // the expected floor, before the clock starts: the blocks of v2's release that v1's does not hold
      const ds = await openDataset(p.dir)
      const walk = async (root) => {
        const out = new Map()
        const stack = [lib.CID.parse(root)]
        while (stack.length > 0) {
          const cid = stack.pop()
          const key = cid.toString()
          if (out.has(key)) continue
          const bytes = await ds.store.get(cid)
          out.set(key, bytes.length)
          for (const l of releaseLinks(cid, bytes, 0)) stack.push(l.cid)
        }
        return out
      }
      const a = await walk(p.v1)
      const b = await walk(p.v2)
      await ds.store.close()
      let newBlocksBytes = 0
      for (const [k, n] of b) if (!a.has(k)) newBlocksBytes += n
      return { lib, newBlocksBytes }
    },
    async run(p, { lib, newBlocksBytes }) {
      const r = await lib.publish({ dir: p.dir, ref: p.v2, to: `dir:${p.target}` })
      return { sentBytes: r.newBytes, sentBlocks: r.newBlocks, carBytes: r.details?.carBytesWritten, newBlocksBytes }
    },
  },

  'cairn.pack': {
    prepare: load,
    async run(p, lib) {
      const r = await lib.pack({ dir: p.dir, ref: p.ref, output: p.output })
      return { root: r.root.toString(), blocks: r.blocks, blockBytes: r.bytes, carBytes: statSync(p.output).size }
    },
  },

  'cairn.verifyFolder': {
    prepare: load,
    async run(p, lib) {
      const r = await lib.verify({ dir: p.dir, dataset: p.dir, ref: p.ref })
      return {
        ok: r.ok,
        checked: r.checked,
        bytes: r.bytes,
        missing: r.missing.length,
        extra: r.extra.length,
        modified: r.modified.length,
        card: r.card,
      }
    },
  },

  'cairn.verifyCar': {
    prepare: load,
    async run(p, lib) {
      const r = await lib.verify({ car: p.car })
      return { ok: r.ok, blocks: r.blocks, bytes: r.bytes, problems: r.problems.length, carBytes: statSync(p.car).size }
    },
  },

  /**
   * Two versions of the dataset in `p.dir`, by CID. Through `diffVersions` with a block source that
   * counts reads (every block: versions, index nodes, schemas, cards, ancestors); `diff` when the
   * library has no `diffVersions` (src/diff.ts, not exported by the library's entry).
   */
  'cairn.diff': {
    async prepare(p) {
      const lib = await load(p)
      const { diffVersions } = await internal(p, 'diff.js').catch(() => ({}))
      const { openDataset } = await internal(p, 'dataset.js').catch(() => ({}))
      return { lib, diffVersions, openDataset }
    },
    async run(p, { lib, diffVersions, openDataset }) {
      if (typeof diffVersions !== 'function' || typeof openDataset !== 'function') {
        const r = await lib.diff({ dir: p.dir, a: p.a, b: p.b })
        return summariseDiff(r, undefined)
      }
      const dataset = await openDataset(p.dir)
      let blocksRead = 0
      const source = {
        get(cid) {
          blocksRead++
          return dataset.store.get(cid)
        },
      }
      try {
        const r = await diffVersions(source, lib.CID.parse(p.a), lib.CID.parse(p.b))
        return summariseDiff(r, blocksRead)
      } finally {
        await dataset.store.close?.()
      }
    },
  },
}

Object.assign(cairnOps, {
  /** The inclusion proof of one file (`p.path`) of version `p.version`, written to `p.output` and measured. */
  'cairn.prove': {
    prepare: load,
    async run(p, lib) {
      const r = await lib.prove({ dir: p.dir, ref: p.version, path: p.path, output: p.output })
      const check = await lib.verifyProof(p.output, lib.CID.parse(p.version), p.path)
      const { rmSync } = await import('node:fs')
      rmSync(p.output, { force: true })
      return { bytes: r.bytes, blocks: r.blocks, verified: check.ok === true && check.cid.equals(r.cid) }
    },
  },
})

function summariseDiff(r, blocksRead) {
  return {
    changed: r.changed,
    counts: r.counts,
    shards: r.shards.length,
    indexNodesRead: r.stats?.indexNodesRead,
    depth: r.stats?.depth,
    blocksRead,
  }
}
