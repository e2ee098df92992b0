/**
 * Memory at scale (#19): pack, verify (a folder and --car), a one-file and a full diff, clone from a
 * loopback `cairn serve`, the server over that clone, and gc, each a whole CLI process under
 * `/usr/bin/time -v` (wall, CPU, peak RSS), against peak RSS < 256 MiB.
 * - `mem-1m`: a real folder of 10⁶ files (1 KiB, 1,000 a folder), history v0 (no files) → v1 (every
 *   file, `cairn build`) → v2 (one file changed). The builds are setup rows (build2's targets).
 * - `mem-10m`: a synthetic release of 10⁷ files made through the library (bench/lib/ops/synthetic.mjs);
 *   10⁷ real files would take most of the disk's inodes, so the operations that need the files on disk
 *   (verify of a folder, clone) are not run, and serve is measured over one whole trustless CAR of the
 *   release (what a clone asks for), streamed to nowhere.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeFiles, generateFiles, isPristine, markPristine, writeDatasetFile, markDirty } from '../lib/data.mjs'
import { failed, measure, measureProcess, notApplicable } from '../lib/measure.mjs'
import { runNode } from '../lib/proc.mjs'
import { helper } from './files.mjs'

const SERVER = fileURLToPath(new URL('../lib/server.mjs', import.meta.url))
const json = (stdout) => {
  try {
    return JSON.parse(stdout)
  } catch {
    return undefined
  }
}

/** `c`: `{ name, title, spec }` (a real folder) or `{ name, title, entries }` (synthetic). */
export async function runMemoryCase(ctx, c) {
  const dir = join(ctx.dataDir, c.dataName)
  const out = join(ctx.outDir, c.name)
  rmSync(out, { recursive: true, force: true })
  const base = { case: c.name, tool: 'cairn' }
  const run = (op, argv, check, cwd = dir) => measureProcess(ctx, { ...base, op, argv: [ctx.cli, ...argv], cwd, runs: 1, check })
  let v
  try {
    v = c.spec ? await realFolder(ctx, c, dir) : await synthetic(ctx, c, dir)
  } catch (e) {
    return failed(ctx, { ...base, op: 'setup' }, e instanceof Error ? e.message : String(e))
  }
  const files = c.spec ? c.spec.count : c.entries
  const gcDryRun = () =>
    run('gc (dry run)', ['gc', '--keep-history', '0', '--expire-head-log', '--json'], (o) =>
      json(o)?.keptBlocks === undefined ? `no result: ${o.slice(0, 300)}` : undefined,
    )
  // at 10⁷ the cheap rows first: the run may be cut short on a shared machine, and its log keeps each row
  if (!c.spec) {
    await run('diff, 1 file changed', ['diff', v.v1, v.v2, '--json'], (o) =>
      json(o)?.counts?.modified !== 1 ? `counts ${JSON.stringify(json(o)?.counts)}` : undefined,
    )
    await gcDryRun()
  }
  const car = join(ctx.outDir, `${c.name}.car`)
  if (c.spec) {
    await run('verify a folder', ['verify', v.v1, '--json'], (o) =>
      json(o)?.ok !== true || json(o)?.checked !== files ? `not ok: ${o.slice(0, 300)}` : undefined,
    )
  } else notApplicable(ctx, { ...base, op: 'verify a folder' }, `no folder of ${files.toLocaleString('en')} files on disk`)
  mkdirSync(out, { recursive: true })
  await run('pack', ['pack', v.v2, '-o', car, '--json'])
  await run('verify --car', ['verify', '--car', car, '--json'], (o) => (json(o)?.ok !== true ? `not ok: ${o.slice(0, 300)}` : undefined))
  const carBytes = existsSync(car) ? statSync(car).size : 0
  rmSync(car, { force: true })
  if (c.spec)
    await run('diff, 1 file changed', ['diff', v.v1, v.v2, '--json'], (o) =>
      json(o)?.counts?.modified !== 1 ? `counts ${JSON.stringify(json(o)?.counts)}` : undefined,
    )
  if (c.fullDiff)
    // its output is every file: only its start is kept (proc.mjs), where the versions and `changed` are
    await run(`diff, every file added`, ['diff', v.v0, v.v1, '--json'], (o) =>
      !/^\{\s*"a":/.test(o) || !/"changed": true/.test(o.slice(0, 4096)) ? `output ${o.slice(0, 300)}` : undefined,
    )
  else notApplicable(ctx, { ...base, op: 'diff, every file added' }, 'its result lists every file (the output grows with the changes)')
  await serveAndFetch(ctx, c, base, dir, out, v, files, carBytes)
  if (c.spec) await gcDryRun()
  await run('gc --now', ['gc', '--now', '--keep-history', '0', '--expire-head-log', '--json'], (o) =>
    json(o)?.done !== true || !(json(o)?.garbageBlocks > 0) ? `result ${o.slice(0, 300)}` : undefined,
  )
  rmSync(out, { recursive: true, force: true })
  // the store was changed by gc: the next run builds it again
  if (!ctx.keep) rmSync(join(dir, '.cairn'), { recursive: true, force: true })
  if (!c.spec && !ctx.keep) rmSync(dir, { recursive: true, force: true })
}

/** The folder's files (generated once, reused while pristine) and a fresh store: v0 empty, v1 every file, v2 one changed. */
async function realFolder(ctx, c, dir) {
  const files = describeFiles(c.spec)
  if (!isPristine(dir, c.spec, ctx.seed)) {
    ctx.log(`  generating ${c.title} in ${dir} …`)
    generateFiles(dir, c.name, c.spec, ctx.seed)
    markPristine(dir, c.spec, ctx.seed)
  }
  rmSync(join(dir, '.cairn'), { recursive: true, force: true })
  const cli = async (argv, op) => {
    const r = await runNode([ctx.cli, ...argv], { cwd: dir, workDir: ctx.workDir })
    if (r.code !== 0) throw new Error(`cairn ${argv.join(' ')} exited ${r.code}: ${r.output}`)
    if (op) {
      ctx.log(
        `  ${c.name} · cairn · ${op} (setup)  ${(r.wallMs / 1000).toFixed(1)} s (CPU ${(r.cpuMs / 1000).toFixed(1)} s, ${r.rssMiB?.toFixed(0)} MiB)`,
      )
      ctx.results.push({
        case: c.name,
        tool: 'cairn',
        op: `${op} (setup)`,
        runs: [],
        problems: [],
        ms: r.wallMs,
        wallMs: r.wallMs,
        cpuMs: r.cpuMs,
        rssMiB: r.rssMiB,
        excludeFromTargets: true,
      })
    }
    return json(r.stdout)
  }
  await cli(['init', '--name', c.name])
  // v0: the same dataset without its files (moved aside under a hidden name, which the scan skips)
  renameSync(join(dir, 'shards'), join(dir, '.shards'))
  let v0
  try {
    v0 = (await cli(['build', '-m', 'no files', '--date', '2026-01-01T00:00:00Z', '--json'])).version['/']
  } finally {
    renameSync(join(dir, '.shards'), join(dir, 'shards'))
  }
  const v1 = (await cli(['build', '-m', 'every file', '--date', '2026-01-02T00:00:00Z', '--json'], 'build cold')).version['/']
  markDirty(dir)
  const middle = files[files.length >> 1]
  writeDatasetFile(dir, c.name, ctx.seed, middle, 1)
  const v2 = (await cli(['build', '-m', 'one file', '--date', '2026-01-03T00:00:00Z', '--json'], 'build, 1 file changed')).version['/']
  // the folder is v1 again (verify checks it against v1); HEAD stays v2
  writeDatasetFile(dir, c.name, ctx.seed, middle, 0)
  markPristine(dir, c.spec, ctx.seed)
  return { v0, v1, v2 }
}

async function synthetic(ctx, c, dir) {
  rmSync(dir, { recursive: true, force: true })
  const r = await measure(ctx, {
    case: c.name,
    tool: 'cairn',
    op: `write a release of ${c.entries.toLocaleString('en')} files (setup)`,
    childOp: 'mem.synthetic',
    runs: 1,
    excludeFromTargets: true,
    params: () => ({ libDir: ctx.libDir, dir, entries: c.entries, seed: ctx.seed }),
  })
  if (!r.info) throw new Error(r.error ?? 'the synthetic release was not written')
  return r.info
}

/**
 * `cairn serve` over the store (a helper process: its own peak RSS and CPU are read when it stops), and
 * a clone of v2 from it (real folder), or one whole `dag-scope=all` CAR of v2 streamed to nowhere (synthetic).
 */
async function serveAndFetch(ctx, c, base, dir, out, v, files, carBytes) {
  const urlFile = join(out, 'serve.url')
  let server
  try {
    server = await helper('cairn serve', [SERVER, ctx.lib, dir], urlFile)
  } catch (e) {
    return failed(ctx, { ...base, op: 'serve' }, e instanceof Error ? e.message : String(e))
  }
  const t0 = performance.now()
  let note
  let fetchedMs
  try {
    if (c.spec) {
      const dest = join(out, 'clone')
      await measureProcess(ctx, {
        ...base,
        op: 'clone from serve',
        argv: [ctx.cli, 'clone', v.v2, dest, '--from', server.url, '--json'],
        cwd: out,
        runs: 1,
        check: (o) => (json(o)?.written !== files ? `wrote ${json(o)?.written}/${files} files` : undefined),
      })
      fetchedMs = performance.now() - t0
      rmSync(dest, { recursive: true, force: true })
      note = `the server's peak over a clone of ${files.toLocaleString('en')} files`
    } else {
      const res = await fetch(`${server.url}/ipfs/${v.v2}?format=car&dag-scope=all`, { headers: { accept: 'application/vnd.ipld.car' } })
      let bytes = 0
      for await (const chunk of res.body) bytes += chunk.length
      fetchedMs = performance.now() - t0
      note = `the server's peak over one CAR of the whole release (${bytes.toLocaleString('en')} B, HTTP ${res.status}; pack wrote ${carBytes.toLocaleString('en')} B) in ${((performance.now() - t0) / 1000).toFixed(1)} s`
      if (res.status !== 200 || bytes < carBytes / 2) note += ' CHECK FAILED'
    }
  } finally {
    await server.stop()
  }
  // the server's time is the clone's or the fetch's (not the removal of the clone's files after it)
  const wallMs = fetchedMs ?? performance.now() - t0
  const rssFile = `${urlFile}.rss`
  if (!existsSync(rssFile)) return failed(ctx, { ...base, op: 'serve' }, 'the server did not report its peak RSS')
  const rssMiB = Number(readFileSync(rssFile, 'utf8')) / 1024
  const cpuMs = Number(readFileSync(`${urlFile}.cpu`, 'utf8')) / 1000
  ctx.log(
    `  ${c.name} · cairn · serve  ${(wallMs / 1000).toFixed(1)} s (CPU ${(cpuMs / 1000).toFixed(1)} s, ${rssMiB.toFixed(0)} MiB)  ${note}`,
  )
  ctx.results.push({
    ...base,
    op: c.spec ? 'serve (over the clone)' : 'serve (one CAR of the release)',
    runs: [],
    problems: note.endsWith('CHECK FAILED') ? ['the CAR was short or not 200'] : [],
    ms: wallMs,
    wallMs,
    cpuMs,
    rssMiB,
    rssFrom: 'process.resourceUsage() of the server',
    note,
  })
}
