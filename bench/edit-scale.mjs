#!/usr/bin/env node
/**
 * The edit of a build after one change, at sizes no real folder reaches here (issue #19: 10⁷ files would
 * take 10 M of the disk's inodes): a synthetic release of N files (shard entries and a UnixFS tree of
 * folders of 1,000 files, streamed through the library's IndexBuilder and TreeBuilder into a real store,
 * no file on disk), then, as whole processes under /usr/bin/time -v, what a one-change build does past
 * the walk: `editIndex` and `editTree` of the parent with one file modified. Checks the edited roots
 * against a second streaming build of all N entries with that change (the cold build's roots).
 *   node bench/edit-scale.mjs [--entries 1000000,10000000] [--dir D]
 * Needs `npm run build` first (runs dist/). Each size's folder is removed after it is measured.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = dirname(dirname(fileURLToPath(import.meta.url)))
const DIST = join(REPO, 'dist/src')
const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : dflt
}

/** Runs this script in `mode` under /usr/bin/time -v: wall ms, CPU ms, peak RSS MiB, its JSON output. */
function timed(mode, params) {
  const t0 = performance.now()
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, fileURLToPath(import.meta.url), '--child', mode, JSON.stringify(params)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 26,
  })
  const wall = performance.now() - t0
  const err = r.stderr.toString()
  if (r.status !== 0) throw new Error(`${mode} failed (${r.status}): ${err.slice(-3000)}`)
  const num = (re) => Number(re.exec(err)?.[1] ?? NaN)
  const cpu = (num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/)) * 1000
  return { wall, cpu, rss: num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024, out: JSON.parse(r.stdout.toString()) }
}

/** Entry `i` (variant 1: the changed file's new bytes). Paths sort as their numbers. */
function entryOf(cidMod, i, variant) {
  const digest = createHash('sha256').update(`cairn-edit-scale\0${i}\0${variant}`).digest()
  return {
    path: `data/${String(Math.floor(i / 1000)).padStart(5, '0')}/part-${String(i).padStart(8, '0')}.bin`,
    cid: CID.createV1(cidMod.RAW, Digest.create(cidMod.SHA2_256, digest)),
    size: 1024,
    format: 'bytes',
  }
}

async function child(mode, p) {
  const [cidMod, ds, prolly, tree, edit, treeEdit] = await Promise.all([
    import(join(DIST, 'cid.js')),
    import(join(DIST, 'dataset.js')),
    import(join(DIST, 'shard-index/prolly.js')),
    import(join(DIST, 'unixfs/tree.js')),
    import(join(DIST, 'shard-index/edit.js')),
    import(join(DIST, 'unixfs/tree-edit.js')),
  ])
  const dataset = await ds.openDataset(p.dir)
  const store = dataset.store
  const put = (b) => store.put(b.cid, b.bytes)
  let result
  if (mode === 'setup') {
    // the parent (no change) and, for the check, the cold build of the same entries with the change
    const roots = {}
    for (const changed of [undefined, p.changed]) {
      const ib = new prolly.IndexBuilder(put)
      const tb = new tree.TreeBuilder(put)
      for (let i = 0; i < p.entries; i++) {
        const e = entryOf(cidMod, i, i === changed ? 1 : 0)
        const a = ib.add(e)
        if (a) await a
        const t = tb.add(e.path, e.cid, e.size)
        if (t) await t
      }
      const index = await ib.finish()
      const root = await tb.finish()
      roots[changed === undefined ? 'parent' : 'cold'] = { index: index.root.toString(), tree: root.cid.toString() }
    }
    result = roots
  } else {
    const e = entryOf(cidMod, p.changed, 1)
    const index = await edit.editIndex(store, cidMod.cidFromText(p.index), [{ path: e.path, entry: e }], put)
    const t = await treeEdit.editTree(store, cidMod.cidFromText(p.tree), [{ path: e.path, cid: e.cid, dagSize: e.size }], put)
    result = { index: index.root.toString(), tree: t.cid.toString() }
  }
  await store.close()
  process.stdout.write(JSON.stringify(result))
}

if (args[0] === '--child') {
  await child(args[1], JSON.parse(args[2]))
} else {
  const sizes = opt('entries', '1000000,10000000').split(',').map(Number)
  const base = opt('dir', existsSync('/work/scratch') ? '/work/scratch/edit-scale' : join(tmpdir(), 'cairn-edit-scale'))
  const { init } = await import(join(DIST, 'index.js'))
  for (const entries of sizes) {
    const dir = join(base, String(entries))
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    await init({ dir, name: 'edit-scale' })
    const changed = Math.floor(entries / 2)
    const setup = timed('setup', { dir, entries, changed })
    console.log(`${entries} entries: setup (2 streaming builds) ${(setup.wall / 1000).toFixed(1)} s, ${setup.rss.toFixed(0)} MiB`)
    const runs = [1, 2, 3].map(() => timed('edit', { dir, changed, ...setup.out.parent }))
    const ok = runs.every((r) => r.out.index === setup.out.cold.index && r.out.tree === setup.out.cold.tree)
    const med = (k) => [...runs.map((r) => r[k])].sort((a, b) => a - b)[1]
    console.log(
      `${entries} entries: edit index + tree after 1 change: wall ${(med('wall') / 1000).toFixed(2)} s, CPU ${(med('cpu') / 1000).toFixed(2)} s, peak RSS ${Math.max(...runs.map((r) => r.rss)).toFixed(0)} MiB; roots ${ok ? 'equal' : 'DIFFER from'} the cold build's`,
    )
    writeFileSync(join(base, `result-${entries}.json`), JSON.stringify({ setup, runs }, null, 2))
    if (!args.includes('--keep')) rmSync(dir, { recursive: true, force: true })
    if (!ok) process.exitCode = 1
  }
}
