#!/usr/bin/env node
/**
 * cairn's benchmark (not a test): `npm run bench [-- --quick] [-- --long] [-- --runs N] [-- --case a,b]`.
 *
 * Builds the library (`npm run build`), snapshots `dist/` so that every run of this bench measures
 * the same code even while it is being rebuilt, generates deterministic synthetic datasets under
 * `bench/tmp/`, runs every operation `--runs` times, each in a fresh process, and reports medians
 * side by side with ipfs-car and with the limits of the machine (bench/README.md says how to read it).
 * The table goes to stdout, progress to stderr, the JSON to bench/results/.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCloneCase } from './cases/clone.mjs'
import { runFilesCase } from './cases/files.mjs'
import { runIndexCase } from './cases/index.mjs'
import { runModesCase } from './cases/modes.mjs'
import { runScaleCase } from './cases/scale.mjs'
import { runMemoryCase } from './cases/memory.mjs'
import { HAS_GNU_TIME, runChild } from './lib/proc.mjs'
import { table, targetLines, targets } from './lib/report.mjs'

const BENCH = dirname(fileURLToPath(import.meta.url))
const REPO = dirname(BENCH)
const TMP = join(BENCH, 'tmp')
const MiB = 2 ** 20

/** Every case. `quick` replaces the sizes under --quick; `long` cases run only with --long or --case. */
const CASES = [
  {
    name: 'large',
    kind: 'files',
    spec: { count: 64, size: 16 * MiB, perDir: 64 },
    quick: { count: 16, size: 4 * MiB, perDir: 16 },
    // clone from 3 sources at once (one throttled, one stalling) beside the clone from one
    multiSource: true,
  },
  {
    name: 'small',
    kind: 'files',
    spec: { count: 10_000, size: 4096, perDir: 1000 },
    quick: { count: 1000, size: 4096, perDir: 100 },
    // node -e 0, cairn --version, cairn log, cairn status as whole processes, on this dataset
    startup: true,
  },
  // only the clone lines of `large` and `small` (one server, three sources), reported under those
  // cases' names; run only when named (`--case clone`)
  {
    name: 'clone',
    kind: 'clone',
    onDemand: true,
    spec: { count: 64, size: 16 * MiB, perDir: 64 },
    datasets: [
      { name: 'large', spec: { count: 64, size: 16 * MiB, perDir: 64 }, quick: { count: 16, size: 4 * MiB, perDir: 16 } },
      { name: 'small', spec: { count: 10_000, size: 4096, perDir: 1000 }, quick: { count: 1000, size: 4096, perDir: 100 } },
    ],
  },
  { name: 'index', kind: 'index', entries: 1_000_000, changed: 10, quick: { entries: 20_000 } },
  // the store's size after building 1 GiB in each store mode (copy, reflink, reference)
  { name: 'modes', kind: 'modes', spec: { count: 64, size: 16 * MiB, perDir: 64 }, quick: { count: 16, size: 4 * MiB, perDir: 16 } },
  {
    name: 'large-4g',
    kind: 'files',
    long: true,
    spec: { count: 64, size: 64 * MiB, perDir: 64 },
    quick: { count: 16, size: 16 * MiB, perDir: 16 },
  },
  {
    name: 'small-100k',
    kind: 'files',
    long: true,
    spec: { count: 100_000, size: 1024, perDir: 1000 },
    quick: { count: 5000, size: 1024, perDir: 500 },
  },
  // build and status at scale (#19): memory flat, rebuilds near the stat-every-file limit (cases/scale.mjs)
  {
    name: 'scale-10k',
    kind: 'scale',
    long: true,
    spec: { count: 10_000, size: 1024, perDir: 1000 },
    quick: { count: 1000, size: 1024, perDir: 100 },
  },
  {
    name: 'scale-1m',
    kind: 'scale',
    long: true,
    spec: { count: 1_000_000, size: 1024, perDir: 1000 },
    quick: { count: 20_000, size: 1024, perDir: 1000 },
    coldRuns: 1,
  },
  {
    // #19: memory flat at a million files (pack, verify, diff, clone, serve over the clone)
    name: 'small-1m',
    kind: 'files',
    long: true,
    spec: { count: 1_000_000, size: 1024, perDir: 1000 },
    quick: { count: 10_000, size: 1024, perDir: 1000 },
  },
  // #19: peak RSS < 256 MiB, whole CLI processes (cases/memory.mjs): a real folder of 10⁶ files, a synthetic 10⁷
  {
    name: 'mem-1m',
    kind: 'memory',
    long: true,
    spec: { count: 1_000_000, size: 1024, perDir: 1000 },
    quick: { count: 10_000, size: 1024, perDir: 1000 },
    fullDiff: true,
  },
  { name: 'mem-10m', kind: 'memory', long: true, entries: 10_000_000, quick: { entries: 20_000 } },
]

const USAGE = `usage: npm run bench -- [--runs N] [--quick] [--long] [--case NAME[,NAME…]] [--no-build] [--seed S]

  --runs N     runs per operation, medians reported (default 3)
  --quick      shrink every size for a smoke run (the targets are then indicative only)
  --long       add the long cases: ${CASES.filter((c) => c.long)
    .map((c) => c.name)
    .join(', ')}
  --case NAME  only these cases (repeatable or comma-separated): ${CASES.map((c) => c.name).join(', ')}
  --no-build   do not run \`npm run build\` (warns when dist/ is older than src/)
  --seed S     seed of the synthetic data (default 1)
  --report F   print the table and targets of a saved result (e.g. bench/results/latest.json); runs nothing`

function parseArgs(argv) {
  const o = { runs: 3, quick: false, long: false, cases: [], build: true, seed: '1' }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]
      if (v === undefined) fail(`${a} needs a value`)
      return v
    }
    const flag = a.split('=')[0]
    if (flag === '--runs') {
      o.runs = Number(value())
      if (!Number.isInteger(o.runs) || o.runs < 1) fail(`--runs must be a whole number ≥ 1`)
    } else if (flag === '--quick') o.quick = true
    else if (flag === '--long') o.long = true
    else if (flag === '--case') o.cases.push(...value().split(',').filter(Boolean))
    else if (flag === '--no-build') o.build = false
    else if (flag === '--seed') o.seed = value()
    else if (flag === '--report') o.report = value()
    else if (flag === '--help' || flag === '-h') {
      console.log(USAGE)
      process.exit(0)
    } else fail(`unknown argument ${a}`)
  }
  for (const c of o.cases) if (!CASES.some((k) => k.name === c)) fail(`unknown case ${c} (known: ${CASES.map((k) => k.name).join(', ')})`)
  return o
}

function fail(message) {
  console.error(`bench: ${message}\n\n${USAGE}`)
  process.exit(2)
}

const log = (line) => console.error(line)

/** `npm run build`, or with --no-build a check that dist/ is not older than src/. */
function buildLibrary(opts) {
  if (opts.build) {
    log('bench: npm run build …')
    const r = spawnSync('npm', ['run', 'build'], { cwd: REPO, stdio: ['ignore', 2, 2] })
    if (r.status !== 0) {
      if (!existsSync(join(REPO, 'dist/src/index.js'))) throw new Error('npm run build failed and there is no dist/src/index.js to measure')
      log('bench: WARNING: npm run build reported errors (tsc still emitted dist/): measuring what is there')
      return 'npm run build reported errors; dist/ as emitted'
    }
    return 'npm run build'
  }
  const stale = []
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (p.endsWith('.ts')) {
        const js = join(REPO, 'dist', relative(REPO, p).replace(/\.ts$/, '.js'))
        if (!existsSync(js) || statSync(js).mtimeMs < statSync(p).mtimeMs) stale.push(relative(REPO, p))
      }
    }
  }
  walk(join(REPO, 'src'))
  if (stale.length > 0)
    log(`bench: WARNING: dist/ is older than ${stale.length} source file(s) (${stale.slice(0, 5).join(', ')}…): run without --no-build`)
  return stale.length > 0 ? `--no-build; dist/ stale for ${stale.length} files` : '--no-build; dist/ fresh'
}

/** Copies what the library needs at run time, so a rebuild by someone else mid-run changes nothing here. */
function snapshotLibrary() {
  const snap = join(TMP, 'snapshot')
  rmSync(snap, { recursive: true, force: true })
  mkdirSync(snap, { recursive: true })
  cpSync(join(REPO, 'dist'), join(snap, 'dist'), { recursive: true })
  cpSync(join(REPO, 'schemas'), join(snap, 'schemas'), { recursive: true })
  cpSync(join(REPO, 'package.json'), join(snap, 'package.json'))
  // the CLI as a user runs it: bin/run.js of the snapshot (its node_modules are the repository's, found upward)
  cpSync(join(REPO, 'bin'), join(snap, 'bin'), { recursive: true })
  return { lib: join(snap, 'dist/src/index.js'), libDir: join(snap, 'dist/src'), cli: join(snap, 'bin/run.js'), snap }
}

function git(args) {
  try {
    return execFileSync('git', ['--no-optional-locks', ...args], {
      cwd: REPO,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim()
  } catch {
    return undefined
  }
}

function environment() {
  const c = cpus()
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cores: availableParallelism(),
    cpu: c[0]?.model,
    memGiB: +(totalmem() / 2 ** 30).toFixed(1),
    loadavg: loadavg().map((x) => +x.toFixed(2)),
    rss: HAS_GNU_TIME ? '/usr/bin/time -v' : 'process.resourceUsage().maxRSS',
  }
}

function isoStamp(d) {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  if (opts.report) {
    const saved = JSON.parse(readFileSync(opts.report, 'utf8'))
    // the targets are evaluated again by this version of report.mjs, on the saved measurements
    saved.targets = targets(saved.results, { long: saved.cases.some((c) => c.long) })
    console.log(render(saved).join('\n'))
    return
  }
  const started = new Date()
  const selected = CASES.filter((c) => (opts.cases.length > 0 ? opts.cases.includes(c.name) : (!c.long || opts.long) && !c.onDemand)).map(
    (c) => {
      const k = opts.quick ? { ...c, ...(c.spec ? { spec: { ...c.spec, ...c.quick } } : c.quick) } : { ...c }
      k.dataName = `${opts.quick ? 'quick-' : ''}${c.name}`
      if (c.datasets)
        k.datasets = c.datasets.map((d) => ({
          ...d,
          spec: opts.quick ? { ...d.spec, ...d.quick } : d.spec,
          dataName: `${opts.quick ? 'quick-' : ''}${d.name}`,
        }))
      k.title = k.spec
        ? `${k.spec.count.toLocaleString('en')} files × ${size(k.spec.size)} = ${size(k.spec.count * k.spec.size)}`
        : k.kind === 'memory'
          ? `a synthetic release of ${k.entries.toLocaleString('en')} files`
          : `2 × ${k.entries.toLocaleString('en')} index entries, ${k.changed} changed`
      return k
    },
  )

  const distFrom = buildLibrary(opts)
  const { lib, libDir, cli, snap } = snapshotLibrary()
  const ctx = {
    runs: opts.runs,
    seed: opts.seed,
    lib,
    libDir,
    cli,
    hasCommand: (name) => existsSync(join(snap, 'dist', 'commands', `${name}.js`)),
    ipfsCar: join(REPO, 'node_modules/ipfs-car'),
    // CAIRN_BENCH_DATA: a folder with room for the long cases' data (default bench/tmp/data)
    dataDir: process.env.CAIRN_BENCH_DATA ?? join(TMP, 'data'),
    outDir: process.env.CAIRN_BENCH_DATA ? join(process.env.CAIRN_BENCH_DATA, 'out') : join(TMP, 'out'),
    workDir: join(TMP, 'work'),
    results: [],
    log,
  }
  const probe = await runChild('cairn.probe', { lib }, { workDir: ctx.workDir })
  if (probe.error) throw new Error(`cannot load the library ${lib}: ${probe.error}`)
  const functions = new Set(probe.info.functions)
  ctx.has = (name) => functions.has(name)
  if (!existsSync(join(ctx.ipfsCar, 'bin.js'))) throw new Error(`ipfs-car is not installed (${ctx.ipfsCar}): run npm install`)

  const env = environment()
  const code = {
    commit: git(['rev-parse', 'HEAD']),
    changedFiles: (git(['status', '--porcelain', '--', 'src']) ?? '').split('\n').filter(Boolean).length,
    dist: distFrom,
  }
  log(
    `bench: node ${env.node}, ${env.cores} cores (${env.cpu}), ${env.memGiB} GiB, load ${env.loadavg.join(' ')}; ${opts.runs} run(s) per operation${opts.quick ? ', QUICK sizes' : ''}`,
  )
  log(
    `bench: library ${code.commit?.slice(0, 12) ?? '?'}${code.changedFiles ? ` + ${code.changedFiles} uncommitted change(s) in src/` : ''}; has ${['diff', 'clone', 'serve'].map((f) => `${f} ${ctx.has(f) ? 'yes' : 'no'}`).join(', ')}`,
  )

  for (const c of selected) {
    log(`\n${c.name}: ${c.title}`)
    if (c.kind === 'files') await runFilesCase(ctx, c)
    else if (c.kind === 'clone') await runCloneCase(ctx, c)
    else if (c.kind === 'modes') await runModesCase(ctx, c)
    else if (c.kind === 'scale') await runScaleCase(ctx, c)
    else if (c.kind === 'memory') await runMemoryCase(ctx, c)
    else await runIndexCase(ctx, c)
  }
  rmSync(ctx.workDir, { recursive: true, force: true })

  const list = targets(ctx.results, { long: opts.long || opts.cases.some((n) => CASES.find((c) => c.name === n)?.long) })
  const finished = new Date()
  const report = {
    bench: 'cairn',
    format: 1,
    started: started.toISOString(),
    finished: finished.toISOString(),
    options: opts,
    environment: { ...env, loadavgEnd: loadavg().map((x) => +x.toFixed(2)) },
    code,
    library: { functions: [...functions].sort() },
    cases: selected.map(({ name, title, kind, spec, entries, changed, long }) => ({
      name,
      title,
      kind,
      spec,
      entries,
      changed,
      long: !!long,
    })),
    results: ctx.results.map((r) => ({ ...r, runs: r.runs.map(({ output, ...run }) => (run.error ? { ...run, output } : run)) })),
    targets: list,
  }
  console.log(render(report).join('\n'))
  const dir = join(BENCH, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${isoStamp(started)}${opts.quick ? '-quick' : ''}.json`)
  const text = JSON.stringify(report, null, 2) + '\n'
  writeFileSync(file, text)
  writeFileSync(join(dir, 'latest.json'), text)
  log(`\nbench: wrote ${relative(REPO, file)} and bench/results/latest.json`)
}

/** The text report (header, table, targets) of a report object, fresh or read back from JSON. */
function render(report) {
  const { options: opts, environment: env } = report
  return [
    `cairn bench ${isoStamp(new Date(report.started))}: ${opts.runs} run(s) per operation, medians; node ${env.node}, ${env.cores} cores, load ${env.loadavg.join(' ')} at start, ${env.loadavgEnd.join(' ')} at end`,
    `cases: ${report.cases.map((c) => `${c.name} (${c.title})`).join('; ')}`,
    `time = the operation inside a fresh process, modules loaded; CPU = its user+system time, all threads; wall = the whole process; ÷ = time over that case's ipfs-car pack / sha256 time; MB = 10^6 bytes; RSS = highest peak of the runs`,
    '',
    ...table(report.results),
    '',
    `TARGETS${opts.quick ? ' (--quick: sizes are shrunk, so these are indicative only)' : ''}`,
    ...targetLines(report.targets),
  ]
}

function size(bytes) {
  if (bytes >= 2 ** 30) return `${+(bytes / 2 ** 30).toFixed(2)} GiB`
  if (bytes >= 2 ** 20) return `${+(bytes / 2 ** 20).toFixed(2)} MiB`
  return `${+(bytes / 1024).toFixed(2)} KiB`
}

main().catch((e) => {
  console.error(`bench: ${e instanceof Error ? e.message : e}`)
  process.exitCode = 1
})
