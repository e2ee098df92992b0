/**
 * A file case: one synthetic dataset folder measured with the peer (ipfs-car pack), the limits
 * (sha256 on all cores, copy, stat of every file) and every cairn operation on it, in this order:
 * build cold → rebuild unchanged → pack → verify folder → verify CAR → build after changing one
 * shard → diff (cold version vs the last changed one) → clone from serve (when the library has it).
 * The changed shard is restored at the end, so the folder is pristine again for the next run.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeFiles, generateFiles, isPristine, markDirty, markPristine, writeDatasetFile } from '../lib/data.mjs'
import { failed, measure, measureProcess, notApplicable } from '../lib/measure.mjs'
import { peerMissing, removeWork } from '../lib/ops/vcs-peers.mjs'
import { runChild } from '../lib/proc.mjs'

const SERVER = fileURLToPath(new URL('../lib/server.mjs', import.meta.url))
const SLOW_SERVER = fileURLToPath(new URL('../lib/slow-server.mjs', import.meta.url))
const MB = 1e6
const MiB = 2 ** 20

/** `c`: `{ name, title, spec: { count, size, perDir } }`. */
export async function runFilesCase(ctx, c) {
  const root = join(ctx.dataDir, c.dataName)
  const out = join(ctx.outDir, c.dataName)
  // (a peer's leftovers may hold read-only folders: removeWork gives write access back first)
  removeWork(out)
  mkdirSync(out, { recursive: true })
  const files = describeFiles(c.spec)
  const bytes = c.spec.count * c.spec.size

  if (!isPristine(root, c.spec, ctx.seed)) {
    ctx.log(`  generating ${c.title} in ${root} …`)
    const t = performance.now()
    generateFiles(root, c.name, c.spec, ctx.seed)
    const init = await runChild('cairn.init', { lib: ctx.lib, dir: root, name: `bench-${c.name}` }, { workDir: ctx.workDir })
    if (init.error) throw new Error(`cairn init of ${root} failed: ${init.error}`)
    markPristine(root, c.spec, ctx.seed)
    ctx.log(`  generated ${(bytes / 2 ** 20).toFixed(0)} MiB in ${((performance.now() - t) / 1000).toFixed(1)} s`)
  }

  const base = { case: c.name, bytes }
  const lib = { lib: ctx.lib }

  // the peer and the limits first, on the pristine folder (ipfs-car skips hidden entries: .cairn/)
  const carPeer = join(out, 'ipfs-car.car')
  await measure(ctx, {
    ...base,
    tool: 'ipfs-car',
    op: 'pack',
    childOp: 'ipfs-car.pack',
    before: () => rmSync(carPeer, { force: true }),
    params: () => ({ ipfsCar: ctx.ipfsCar, dir: root, output: carPeer }),
  })
  if (c.name.startsWith('small')) await vcsPeers(ctx, c, base, root, out, files.length)
  await measure(ctx, {
    ...base,
    tool: 'limit',
    op: 'sha256 all cores',
    childOp: 'limit.sha256',
    params: () => ({ dir: root }),
    check: sameAcrossRuns((i) => i.digestXor, 'digest'),
  })
  const copyDest = join(out, 'copy')
  await measure(ctx, {
    ...base,
    tool: 'limit',
    op: 'copy files',
    childOp: 'limit.copy',
    before: () => rmSync(copyDest, { recursive: true, force: true }),
    params: () => ({ dir: root, dest: copyDest }),
  })
  rmSync(copyDest, { recursive: true, force: true })
  await measure(ctx, {
    ...base,
    bytes: undefined,
    tool: 'limit',
    op: 'stat every file',
    childOp: 'limit.stat',
    params: () => ({ dir: root }),
    check: (i) => (i.files !== files.length ? `${i.files} files, expected ${files.length}` : undefined),
  })

  const cold = await measure(ctx, {
    ...base,
    tool: 'cairn',
    op: 'build cold',
    childOp: 'cairn.build',
    before: () => rmSync(join(root, '.cairn'), { recursive: true, force: true }),
    params: () => ({ ...lib, dir: root, fresh: true }),
    check: both(
      sameAcrossRuns((i) => i.version, 'version CID'),
      (i) => (i.shards !== files.length ? `${i.shards} shards, expected ${files.length}` : undefined),
    ),
    // the CLI must build the library's version (the same files, date and message)
    cli: { cwd: root, pre: () => [['init']], argv: () => buildArgv, check: (out, i, rec) => expectVersion(out, rec.info?.version, false) },
  })
  const v1 = cold.info?.version
  const skip = (op, reason = 'build cold failed') => notApplicable(ctx, { ...base, tool: 'cairn', op }, reason)
  if (!v1) {
    for (const op of [
      'rebuild unchanged',
      'pack',
      'verify folder',
      'verify CAR',
      'build, 1 shard changed',
      'diff 2 versions',
      'clone from serve',
    ])
      skip(op)
    return
  }

  await measure(ctx, {
    ...base,
    tool: 'cairn',
    op: 'rebuild unchanged',
    childOp: 'cairn.build',
    params: () => ({ ...lib, dir: root }),
    check: (i) => (!i.unchanged ? 'made a new version' : i.version !== v1 ? `HEAD ${i.version}, expected ${v1}` : undefined),
    cli: { cwd: root, argv: () => buildArgv, check: (out) => expectVersion(out, v1, true) },
  })

  if (c.startup) await startup(ctx, base, root)

  const car = join(out, 'cairn.car')
  const packed = await measure(ctx, {
    ...base,
    tool: 'cairn',
    op: 'pack',
    childOp: 'cairn.pack',
    before: () => rmSync(car, { force: true }),
    params: () => ({ ...lib, dir: root, ref: v1, output: car }),
    cli: {
      cwd: root,
      argv: () => ['pack', v1, '-o', car, '--json'],
      check: (out) => (jsonOf(out)?.root?.['/'] !== v1 ? 'wrong root' : undefined),
    },
    check: both(
      sameAcrossRuns((i) => `${i.carBytes}`, 'CAR size'),
      (i) => (i.root !== v1 ? `root ${i.root}, expected ${v1}` : undefined),
    ),
  })

  await measure(ctx, {
    ...base,
    tool: 'cairn',
    op: 'verify folder',
    childOp: 'cairn.verifyFolder',
    params: () => ({ ...lib, dir: root, ref: v1 }),
    cli: { cwd: root, argv: () => ['verify', v1, '--json'], check: (out) => (jsonOf(out)?.ok !== true ? 'not ok' : undefined) },
    check: (i) =>
      !i.ok
        ? `not ok: ${i.missing} missing, ${i.extra} extra, ${i.modified} modified, card ${i.card}`
        : i.checked !== files.length
          ? `checked ${i.checked} files`
          : undefined,
  })

  if (packed.info) {
    await measure(ctx, {
      ...base,
      tool: 'cairn',
      op: 'verify CAR',
      childOp: 'cairn.verifyCar',
      params: () => ({ ...lib, car }),
      cli: { cwd: root, argv: () => ['verify', '--car', car, '--json'], check: (out) => (jsonOf(out)?.ok !== true ? 'not ok' : undefined) },
      bytesOf: (i) => i.carBytes,
      note: 'MB/s of CAR bytes',
      check: (i) => (!i.ok ? `${i.problems} problems` : undefined),
    })
  } else skip('verify CAR', 'pack failed')

  // one shard gets new bytes of the same size before each run: every run is a real one-shard change
  markDirty(root)
  const changed = await measure(ctx, {
    ...base,
    tool: 'cairn',
    op: 'build, 1 shard changed',
    childOp: 'cairn.build',
    before: (i) => writeDatasetFile(root, c.name, ctx.seed, files[Math.floor(files.length / 2)], i + 1),
    params: () => ({ ...lib, dir: root }),
    cli: {
      cwd: root,
      argv: () => ['build', '-m', 'bench', '--json'],
      check: (out) => (jsonOf(out)?.changes?.modified !== 1 ? `changes ${JSON.stringify(jsonOf(out)?.changes)}` : undefined),
    },
    check: (i) =>
      i.unchanged
        ? 'saw no change'
        : i.changes.modified !== 1 || i.changes.added + i.changes.removed !== 0
          ? `changes ${JSON.stringify(i.changes)}`
          : undefined,
  })

  const v2 = changed.info?.version
  if (ctx.has('diff') && v2) {
    await measure(ctx, {
      ...base,
      bytes: undefined,
      tool: 'cairn',
      op: 'diff 2 versions',
      childOp: 'cairn.diff',
      params: () => ({ ...lib, dir: root, a: v1, b: v2 }),
      cli: {
        cwd: root,
        argv: () => ['diff', v1, v2, '--json'],
        check: (out) => (jsonOf(out)?.counts?.modified !== 1 ? `counts ${JSON.stringify(jsonOf(out)?.counts)}` : undefined),
      },
      check: (i) => (i.counts?.modified !== 1 || i.shards !== 1 ? `counts ${JSON.stringify(i.counts)}` : undefined),
    })
  } else skip('diff 2 versions', ctx.has('diff') ? 'build after a change failed' : 'the library has no diff')

  // releaseLinks is read from its module (src/release/links.ts): the library's entry exports verbs only
  if (ctx.has('publish') && v2) {
    await measure(ctx, {
      ...base,
      bytes: undefined,
      tool: 'cairn',
      op: 'publish v2 after v1 (1 shard changed)',
      childOp: 'cairn.publishChanged',
      params: () => ({ ...lib, dir: root, v1, v2, target: join(out, 'published') }),
      check: (i) =>
        i.sentBytes < i.newBlocksBytes ? `sent ${i.sentBytes} B, fewer than the ${i.newBlocksBytes} B of new blocks` : undefined,
    })
  } else skip('publish v2 after v1 (1 shard changed)', v2 ? 'the library has no publish' : 'build after a change failed')

  if (ctx.has('clone') && ctx.has('serve')) await cloneFromServe(ctx, base, root, out, v1, files.length, bytes, c.multiSource === true)
  else skip('clone from serve', `the library has no ${['clone', 'serve'].filter((f) => !ctx.has(f)).join(' or ')}`)

  writeDatasetFile(root, c.name, ctx.seed, files[Math.floor(files.length / 2)], 0)
  markPristine(root, c.spec, ctx.seed)
  rmSync(out, { recursive: true, force: true })
}

/**
 * Starts `cairn serve` over the dataset in a helper process (bench/lib/server.mjs, not measured) and
 * measures `clone` of version `cid` from it into an empty folder, in a fresh process each run.
 */
export async function cloneFromServe(ctx, base, root, out, cid, count, bytes, multiSource) {
  const spec = { ...base, tool: 'cairn', op: 'clone from serve' }
  let server
  try {
    server = await helper('cairn serve', [SERVER, ctx.lib, root], join(out, 'serve.url'))
    const url = server.url
    const dest = join(out, 'clone')
    await measure(ctx, {
      ...spec,
      childOp: 'cairn.clone',
      before: () => rmSync(dest, { recursive: true, force: true }),
      params: () => ({ lib: ctx.lib, cid, dest, url }),
      cli: {
        cwd: out,
        argv: () => ['clone', cid, dest, '--from', url, '--json'],
        check: (o) => (jsonOf(o)?.written !== count ? `wrote ${jsonOf(o)?.written}/${count} files` : undefined),
      },
      note: `from ${url}`,
      check: (i) =>
        i.written !== count || i.bytes !== bytes || i.failures > 0
          ? `wrote ${i.written}/${count} files, ${i.bytes}/${bytes} bytes, ${i.failures} source failures`
          : undefined,
    })
    rmSync(dest, { recursive: true, force: true })
    if (multiSource) await cloneFromThree(ctx, base, out, url, cid, count, bytes)
  } catch (e) {
    failed(ctx, spec, e instanceof Error ? e.message : String(e))
  } finally {
    await server?.stop()
  }
}

/**
 * The row of the clone from three sources, in the order given: the slow ones first, the worst case
 * for trying sources in order (bench/lib/report.mjs names it too).
 */
const THREE_SOURCES = 'clone from 3 sources (1 MB/s, stalls at 10 MiB, serve)'

/**
 * Clone of `cid` from three sources at once: a proxy to the `cairn serve` at `url` throttled to
 * 1 MB/s, one that stalls after 10 MiB (bench/lib/slow-server.mjs, fresh for each run: it stalls in
 * every run) and the server itself. Its time is compared with `clone from serve` (a target).
 */
async function cloneFromThree(ctx, base, out, url, cid, count, bytes) {
  const spec = { ...base, tool: 'cairn', op: THREE_SOURCES }
  let slow = []
  const restart = async (i) => {
    await Promise.all(slow.map((s) => s.stop()))
    slow = []
    slow.push(await helper('slow server', [SLOW_SERVER, url, String(1 * MB), '0'], join(out, `throttled-${i}.url`)))
    slow.push(await helper('slow server', [SLOW_SERVER, url, '0', String(10 * MiB)], join(out, `stalling-${i}.url`)))
  }
  const dest = join(out, 'clone-3')
  try {
    await measure(ctx, {
      ...spec,
      childOp: 'cairn.clone',
      before: async (i) => {
        rmSync(dest, { recursive: true, force: true })
        await restart(i)
      },
      params: () => ({ lib: ctx.lib, cid, dest, urls: [...slow.map((s) => s.url), url] }),
      cli: {
        cwd: out,
        argv: () => ['clone', cid, dest, ...[...slow.map((s) => s.url), url].flatMap((u) => ['--from', u]), '--json'],
        check: (o) => (jsonOf(o)?.written !== count ? `wrote ${jsonOf(o)?.written}/${count} files` : undefined),
      },
      note: 'a proxy of the server at 1 MB/s, one that stalls after 10 MiB, the server; source failures in info.failures',
      check: (i) => (i.written !== count || i.bytes !== bytes ? `wrote ${i.written}/${count} files, ${i.bytes}/${bytes} bytes` : undefined),
    })
  } catch (e) {
    failed(ctx, spec, e instanceof Error ? e.message : String(e))
  } finally {
    await Promise.all(slow.map((s) => s.stop()))
    rmSync(dest, { recursive: true, force: true })
  }
}

/**
 * Starts a helper process (`node <args…> <url file>`, not measured) and waits for the URL it writes.
 * `stop()` ends it (SIGTERM, then SIGKILL after 10 s).
 */
export async function helper(what, args, urlFile) {
  rmSync(urlFile, { force: true })
  const child = spawn(process.execPath, [...args, urlFile], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-2000)))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  let gone = false
  void exited.then(() => (gone = true))
  const stop = async () => {
    if (!gone) child.kill('SIGTERM')
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))])
    if (!gone) child.kill('SIGKILL')
  }
  try {
    for (const start = Date.now(); ;) {
      if (existsSync(urlFile)) return { url: readFileSync(urlFile, 'utf8'), stop }
      if (gone) throw new Error(`${what} exited: ${stderr.trim() || 'no output'}`)
      if (Date.now() - start > 60_000) throw new Error(`${what} did not start within 60 s`)
      await new Promise((r) => setTimeout(r, 50))
    }
  } catch (e) {
    await stop()
    throw e
  }
  // the server's peak RSS over every clone it served (#19: it grew ~2 KiB per block served)
  const rssFile = `${urlFile}.rss`
  if (existsSync(rssFile)) {
    const rssMiB = Number(readFileSync(rssFile, 'utf8')) / 1024
    ctx.log(`  ${base.case} · cairn · serve (over the clones)  ${rssMiB.toFixed(0)} MiB`)
    ctx.results.push({
      case: base.case,
      tool: 'cairn',
      op: 'serve (over the clones)',
      runs: [],
      problems: [],
      rssMiB,
      rssFrom: 'process.resourceUsage().maxRSS of the server',
      note: `the server's peak over ${ctx.runs} clone(s) of ${count} files; time n/a`,
    })
  }
}

/** A check that the value is the same in every run (determinism: same inputs, same CIDs). */
function sameAcrossRuns(pick, what) {
  let first
  return (info, i) => {
    const v = pick(info)
    if (i === 0) first = v
    else if (v !== first) return `${what} ${v} differs from run 1 (${first})`
    return undefined
  }
}

function both(f, g) {
  return (info, i) => f(info, i) ?? g(info, i)
}

/** The CLI's build, as the library's op builds: the same date and message give the same version. */
const buildArgv = ['build', '-m', 'bench', '--date', '2026-01-01T00:00:00Z', '--json']

function jsonOf(stdout) {
  try {
    return JSON.parse(stdout)
  } catch {
    return undefined
  }
}

/** A problem unless stdout is build's JSON with `unchanged` as expected (and the version, when given). */
function expectVersion(stdout, version, unchanged) {
  const r = jsonOf(stdout)
  if (!r) return 'no JSON on stdout'
  if (r.unchanged !== unchanged) return unchanged ? 'made a new version' : 'said unchanged'
  if (version !== undefined && r.version?.['/'] !== version) return `version ${r.version?.['/']}, expected ${version}`
  return undefined
}

/**
 * Start-up as a user meets it, in the same run and on the same dataset (after its cold build): Node
 * doing nothing (`node -e 0`), then whole CLI processes: `cairn --version`, `cairn log`, and `cairn
 * status` when the CLI has it (n/a otherwise). More runs than the other rows: each is short.
 */
async function startup(ctx, base, root) {
  const runs = Math.max(10, ctx.runs * 3)
  const row = { ...base, bytes: undefined, runs, cwd: root }
  await measureProcess(ctx, { ...row, tool: 'node', op: 'node -e 0', argv: ['-e', '0'] })
  await measureProcess(ctx, {
    ...row,
    tool: 'cairn',
    op: 'cairn --version',
    argv: [ctx.cli, '--version'],
    check: (out) => (/^cairn\/\S+ \S+ node-v/.test(out) ? undefined : `printed ${JSON.stringify(out.slice(0, 80))}`),
  })
  await measureProcess(ctx, {
    ...row,
    tool: 'cairn',
    op: 'cairn log',
    argv: [ctx.cli, 'log'],
    check: (out) => (out.startsWith('version ') ? undefined : 'no version listed'),
  })
  if (ctx.hasCommand('status')) await measureProcess(ctx, { ...row, tool: 'cairn', op: 'cairn status', argv: [ctx.cli, 'status'] })
  else notApplicable(ctx, { ...base, tool: 'cairn', op: 'cairn status' }, 'the CLI has no status command')
}

/**
 * DataLad (`datalad save`) and `git lfs` (add + commit) on the same files, beside ipfs-car: what
 * dataset teams use today. One run each (DataLad takes about a minute at 10,000 files); a peer whose
 * programs are not installed gets a line saying so.
 */
async function vcsPeers(ctx, c, base, root, out, count) {
  for (const [tool, op, childOp] of [
    ['datalad', 'save', 'datalad.save'],
    ['git lfs', 'add + commit', 'git-lfs.add'],
  ]) {
    const missing = peerMissing(tool === 'datalad' ? 'datalad' : 'git-lfs')
    if (missing) {
      notApplicable(ctx, { ...base, tool, op }, missing)
      continue
    }
    const work = join(out, childOp)
    await measure(ctx, {
      ...base,
      tool,
      op,
      childOp,
      runs: 1,
      params: () => ({ dir: root, work }),
      check: (i) => (i.files !== count ? `${i.files} files stored, expected ${count}` : undefined),
    })
    removeWork(work)
  }
}
