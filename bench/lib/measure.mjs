/**
 * Runs one operation `runs` times, each in a fresh child, and keeps what the report needs: the
 * median time (the op inside the child), CPU time and wall time (the whole process), the highest peak RSS of
 * the runs, the info of every run, and the result of the op's checks (a wrong answer is reported as a
 * failed check, whatever its speed).
 */
import { runChild } from './proc.mjs'

/** Median of numbers (the mean of the middle two for an even count). */
export function median(xs) {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * @param ctx `{ runs, workDir, log, results }`
 * @param spec `{ case, tool, op, childOp, params, bytes, runs?, before?(i), check?(info, i) → string | undefined }`
 *   `bytes` (or `bytesOf(info)`) is what the throughput is computed on; `check` returns a problem or nothing.
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
  if (spec.note) record.note = spec.note
  if (spec.excludeFromTargets) record.excludeFromTargets = true
  ctx.results.push(record)
  return record
}

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
