#!/usr/bin/env node
/**
 * The store's block index at scale (issue #19, docs/store.md), as whole processes: a small real dataset
 * with two versions (one file changed), its store padded with N synthetic index lines (an old store: text
 * logs only, as cairn wrote them before the sorted runs), then
 *   - the first `cairn log` (it converts the logs into sorted runs),
 *   - `cairn log` and a one-file `cairn diff`, each --runs times (medians; RSS the highest),
 *   - opening the store alone (a BlockStore, one lookup) for its peak RSS,
 * under /usr/bin/time -v. `node bench/store-index.mjs [--blocks 10000,1000000] [--runs 3] [--dir D]`
 * (default dir /work/scratch/i19-store or $TMPDIR; each size's folder is removed after it is measured
 * unless --keep). Needs `npm run build` first (runs dist/).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = dirname(dirname(fileURLToPath(import.meta.url)))
const CLI = join(REPO, 'bin/run.js')
const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : dflt
}
const sizes = opt('blocks', '10000,1000000').split(',').map(Number)
const runs = Number(opt('runs', '3'))
const base = opt('dir', existsSync('/work/scratch') ? '/work/scratch/i19-store' : join(tmpdir(), 'cairn-store-index'))
const keep = args.includes('--keep')

/** Runs `argv` under /usr/bin/time -v: wall ms, CPU ms, peak RSS MiB, stdout. */
function timed(argv, cwd) {
  const t0 = performance.now()
  const r = spawnSync('/usr/bin/time', ['-v', ...argv], { cwd, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 })
  const wall = performance.now() - t0
  const err = r.stderr.toString()
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${err.slice(-2000)}`)
  const num = (re) => Number(re.exec(err)?.[1] ?? NaN)
  const cpu = (num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/)) * 1000
  return { wall, cpu, rss: num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024, stdout: r.stdout.toString() }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
function many(argv, cwd) {
  const all = Array.from({ length: runs }, () => timed(argv, cwd))
  return { wall: median(all.map((m) => m.wall)), cpu: median(all.map((m) => m.cpu)), rss: Math.max(...all.map((m) => m.rss)) }
}

/** N index lines of synthetic raw-block CIDs (random digests), a megabyte at a time; the CID text by the library's encoder. */
async function padStore(store, n) {
  const { cidBytesText } = await import(join(REPO, 'dist/src/cid.js'))
  const name = `zzpad-${n}`
  const fd = openSync(join(store, 'packs', `${name}.idx`), 'w')
  const cid = Buffer.from([1, 0x55, 0x12, 0x20, ...new Uint8Array(32)])
  const BATCH = 1 << 14
  let lines = []
  for (let i = 0; i < n; i += BATCH) {
    const digests = randomBytes(32 * BATCH)
    for (let j = 0; j < BATCH && i + j < n; j++) {
      digests.copy(cid, 4, 32 * j, 32 * j + 32)
      lines.push(`${cidBytesText(cid)} ${(i + j) * 1024} 1024\n`)
    }
    writeSync(fd, lines.join(''), null, 'latin1')
    lines = []
  }
  closeSync(fd)
  writeFileSync(join(store, 'packs', `${name}.pack`), '')
}

const du = (dir) => (existsSync(dir) ? readdirSync(dir).reduce((s, n) => s + statSync(join(dir, n)).size, 0) : 0)
const fmt = (m) => `${(m.wall / 1000).toFixed(2)} s wall, ${(m.cpu / 1000).toFixed(2)} s CPU, ${m.rss.toFixed(0)} MiB`

const openScript = `
  const { BlockStore } = await import(${JSON.stringify(join(REPO, 'dist/src/store/blocks.js'))})
  const { CID } = await import('multiformats/cid')
  const store = new BlockStore(process.argv[1])
  const view = await store.snapshot()
  const head = (await import('node:fs')).readFileSync(process.argv[1] + '/HEAD', 'utf8').trim()
  if (!view.has(CID.parse(head))) throw new Error('HEAD not found')
  await store.close()`

const results = []
for (const n of sizes) {
  const dir = join(base, `store-${n}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(join(dir, 'data'), { recursive: true })
  for (let i = 0; i < 20; i++) writeFileSync(join(dir, 'data', `f${i}.bin`), `file ${i}\n`.repeat(100))
  execFileSync(process.execPath, [CLI, 'init', '--name', 'pad'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] })
  execFileSync(process.execPath, [CLI, 'build', '-m', 'a', '--date', '2024-01-01T00:00:00Z'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] })
  writeFileSync(join(dir, 'data', 'f3.bin'), 'changed\n')
  execFileSync(process.execPath, [CLI, 'build', '-m', 'b', '--date', '2024-01-02T00:00:00Z'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] })
  const store = join(dir, '.cairn')
  process.stderr.write(`${n.toLocaleString('en')} blocks: writing the index log… `)
  const t0 = performance.now()
  await padStore(store, n)
  // the builds' own runs (if any) and the stat cache are not what is measured
  rmSync(join(store, 'block-index'), { recursive: true, force: true })
  process.stderr.write(`${((performance.now() - t0) / 1000).toFixed(1)} s, ${(du(join(store, 'packs')) / 2 ** 20).toFixed(0)} MiB of logs\n`)
  const first = timed([process.execPath, CLI, 'log', '--json'], dir)
  const runBytes = du(join(store, 'block-index'))
  const log = many([process.execPath, CLI, 'log', '--json'], dir)
  const diff = many([process.execPath, CLI, 'diff', 'HEAD~1', 'HEAD', '--json'], dir)
  const diffOut = JSON.parse(timed([process.execPath, CLI, 'diff', 'HEAD~1', 'HEAD', '--json'], dir).stdout)
  const open = many([process.execPath, '--input-type=module', '-e', openScript, store], REPO)
  const r = { blocks: n, first: { wall: first.wall, cpu: first.cpu, rss: first.rss }, log, diff, open, runMiB: runBytes / 2 ** 20, logMiB: du(join(store, 'packs')) / 2 ** 20, diffShards: diffOut.shards?.length }
  results.push(r)
  console.log(`${n.toLocaleString('en')} blocks (logs ${r.logMiB.toFixed(0)} MiB, runs ${r.runMiB.toFixed(0)} MiB)`)
  console.log(`  first log (converts the logs): ${fmt(first)}`)
  console.log(`  log:                           ${fmt(log)}`)
  console.log(`  diff, 1 file changed:          ${fmt(diff)}`)
  console.log(`  open the store + 1 lookup:     ${fmt(open)}`)
  if (!keep) rmSync(dir, { recursive: true, force: true })
}
if (results.length > 1) {
  const a = results[0]
  for (const b of results.slice(1)) {
    console.log(
      `${b.blocks.toLocaleString('en')} vs ${a.blocks.toLocaleString('en')}: log CPU ×${(b.log.cpu / a.log.cpu).toFixed(2)}, wall ×${(b.log.wall / a.log.wall).toFixed(2)}; diff CPU ×${(b.diff.cpu / a.diff.cpu).toFixed(2)}, wall ×${(b.diff.wall / a.diff.wall).toFixed(2)} (target ≤ 2)`,
    )
  }
}
mkdirSync(join(REPO, 'bench/results'), { recursive: true })
writeFileSync(join(REPO, `bench/results/store-index-${new Date().toISOString().replace(/[-:]|\.\d+/g, '')}.json`), JSON.stringify({ date: new Date().toISOString(), runs, results }, null, 2) + '\n')
