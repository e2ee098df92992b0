/**
 * Runs one operation `runs` times, each in a fresh child, and keeps what the report needs: the
 * median time (the op inside the child), CPU time and wall time (the whole process), the highest peak RSS of
 * the runs, the info of every run, and the result of the op's checks (a wrong answer is reported as a
 * failed check, whatever its speed).
 */
import { runChild, runNode } from './proc.mjs'

/** Median of numbers (the mean of the middle two for an even count). */
export function median(xs) {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * @param ctx `{ runs, workDir, log, results }`
 * @param spec `{ case, tool, op, childOp, params, bytes, runs?, before?(i), check?(info, i) → string | undefined, cli? }`
 *   `bytes` (or `bytesOf(info)`) is what the throughput is computed on; `check` returns a problem or nothing.
 *   `cli`: `{ cwd, argv(i), pre?(i), check?(stdout, i, record) }`: the same operation as a user types it, the
 *   CLI (`ctx.cli`, bin/run.js of the snapshot) as a whole process, run `runs` more times after the
 *   library's runs (each after `before(runs + i)` and the untimed commands `pre(i)`); its medians go to
 *   `record.cli` (`{ ms, cpuMs, rssMiB }`, ms being the whole process's wall time).
 */
export async function measure(ctx, spec) {
  const runs = spec.runs ?? ctx.runs
  const record = { case: spec.case, tool: spec.tool, op: spec.op, childOp: spec.childOp, runs: [], problems: [] }
  for (let i = 0; i < runs; i++) {
    if (spec.before) await spec.before(i)
    const r = await runChild(spec.childOp, spec.params(i), { workDir: ctx.workDir })
    record.runs.push(r)
    if (r.error) {
      record.error = r.error
      ctx.log(`  ${label(spec)}  run ${i + 1}/${runs}  ERROR ${r.error}${r.output ? `\n${indent(r.output)}` : ''}`)
      break
    }
    const problem = spec.check?.(r.info, i)
    if (problem) record.problems.push(`run ${i + 1}: ${problem}`)
    ctx.log(
      `  ${label(spec)}  run ${i + 1}/${runs}  ${(r.ms / 1000).toFixed(3)} s  (CPU ${(r.cpuMs / 1000).toFixed(3)} s, wall ${(r.wallMs / 1000).toFixed(3)} s, ${r.rssMiB.toFixed(0)} MiB)${problem ? `  CHECK FAILED: ${problem}` : ''}`,
    )
  }
  const ok = record.runs.filter((r) => !r.error)
  if (!record.error && ok.length > 0) {
    record.ms = median(ok.map((r) => r.ms))
    record.wallMs = median(ok.map((r) => r.wallMs))
    record.cpuMs = median(ok.map((r) => r.cpuMs))
    record.rssMiB = Math.max(...ok.map((r) => r.rssMiB))
    record.rssFrom = ok[0].rssFrom
    record.info = ok[ok.length - 1].info
    record.bytes = spec.bytesOf ? spec.bytesOf(record.info) : spec.bytes
    if (record.bytes) record.mbps = record.bytes / 1e6 / (record.ms / 1000)
  }
  if (spec.cli && !record.error && ctx.cli) await measureCli(ctx, spec, runs, record)
  if (spec.note) record.note = spec.note
  if (spec.excludeFromTargets) record.excludeFromTargets = true
  ctx.results.push(record)
  return record
}

/** The CLI runs of {@link measure}: `record.cli`, or `record.cliError` and a failed check. */
async function measureCli(ctx, spec, runs, record) {
  const cli = spec.cli
  const done = []
  for (let i = 0; i < runs; i++) {
    if (spec.before) await spec.before(runs + i)
    for (const pre of cli.pre?.(i) ?? []) {
      const r = await runNode([ctx.cli, ...pre], { cwd: cli.cwd, workDir: ctx.workDir })
      if (r.code !== 0) return cliFailed(ctx, spec, record, `cairn ${pre.join(' ')} exited ${r.code}`, r.output)
    }
    const argv = cli.argv(i)
    const r = await runNode([ctx.cli, ...argv], { cwd: cli.cwd, workDir: ctx.workDir })
    if (r.code !== 0) return cliFailed(ctx, spec, record, `cairn ${argv.join(' ')} exited ${r.code}`, r.output)
    const problem = cli.check?.(r.stdout, i, record)
    if (problem) record.problems.push(`CLI run ${i + 1}: ${problem}`)
    done.push(r)
    ctx.log(
      `  ${label(spec)}  CLI run ${i + 1}/${runs}  ${(r.wallMs / 1000).toFixed(3)} s  (CPU ${fmt(r.cpuMs)} s, ${r.rssMiB?.toFixed(0) ?? '?'} MiB)  cairn ${argv.join(' ')}${problem ? `  CHECK FAILED: ${problem}` : ''}`,
    )
  }
  record.cli = {
    ms: median(done.map((r) => r.wallMs)),
    cpuMs: median(done.filter((r) => r.cpuMs !== undefined).map((r) => r.cpuMs)),
    rssMiB: Math.max(...done.map((r) => r.rssMiB ?? 0)),
    runs: done.map(({ stdout, output, ...r }) => r),
  }
}

function cliFailed(ctx, spec, record, error, output) {
  record.cliError = error
  record.problems.push(`CLI: ${error}`)
  ctx.log(`  ${label(spec)}  CLI ERROR ${error}${output ? `\n${indent(output)}` : ''}`)
}

/**
 * A row that is a whole process and nothing else (`node -e 0`, `cairn --version`): `spec.argv` run
 * with node in `spec.cwd`, `spec.runs` times; time and wall are both its wall time.
 * `spec.check(stdout)` may return a problem.
 */
export async function measureProcess(ctx, spec) {
  const record = { case: spec.case, tool: spec.tool, op: spec.op, runs: [], problems: [], wholeProcess: true }
  for (let i = 0; i < spec.runs; i++) {
    const r = await runNode(spec.argv, { cwd: spec.cwd, workDir: ctx.workDir })
    if (r.code !== 0) {
      record.error = `exit code ${r.code}`
      record.runs.push({ error: record.error, wallMs: r.wallMs, output: r.output })
      ctx.log(`  ${label(spec)}  run ${i + 1}/${spec.runs}  ERROR ${record.error}\n${indent(r.output)}`)
      break
    }
    const problem = spec.check?.(r.stdout)
    if (problem) record.problems.push(`run ${i + 1}: ${problem}`)
    const { stdout, output, ...run } = r
    record.runs.push({ ms: r.wallMs, ...run })
    ctx.log(
      `  ${label(spec)}  run ${i + 1}/${spec.runs}  ${(r.wallMs / 1000).toFixed(3)} s  (CPU ${fmt(r.cpuMs)} s${r.rssMiB !== undefined ? `, ${r.rssMiB.toFixed(0)} MiB` : ''})${problem ? `  CHECK FAILED: ${problem}` : ''}`,
    )
  }
  if (!record.error) {
    record.ms = record.wallMs = median(record.runs.map((r) => r.wallMs))
    record.cpuMs = median(record.runs.filter((r) => r.cpuMs !== undefined).map((r) => r.cpuMs))
    record.rssMiB = Math.max(...record.runs.map((r) => r.rssMiB ?? 0))
    record.rssFrom = '/usr/bin/time -v'
  }
  if (spec.note) record.note = spec.note
  ctx.results.push(record)
  return record
}

const fmt = (ms) => (ms === undefined ? '?' : (ms / 1000).toFixed(3))

/** A row that was not measured, with the reason (e.g. the library has no `clone`). */
export function notApplicable(ctx, spec, reason) {
  const record = { case: spec.case, tool: spec.tool, op: spec.op, na: reason, runs: [], problems: [] }
  ctx.log(`  ${label(spec)}  n/a: ${reason}`)
  ctx.results.push(record)
  return record
}

/** A row that could not be measured because its setup failed (e.g. the server did not start). */
export function failed(ctx, spec, error) {
  const record = { case: spec.case, tool: spec.tool, op: spec.op, error, runs: [], problems: [] }
  ctx.log(`  ${label(spec)}  ERROR ${error}`)
  ctx.results.push(record)
  return record
}

const label = (s) => `${s.case} · ${s.tool} · ${s.op}`
const indent = (t) =>
  t
    .trim()
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n')
