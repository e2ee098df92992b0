/**
 * The child side of one measurement: `node bench/lib/child.mjs <op> <params.json> <result.json>`.
 *
 * Every measured operation runs in a fresh process, so its peak RSS is its own. The op's modules are
 * loaded and its untimed preparation done first (`prepare`); only `run` is timed, with
 * `performance.now()`, and its CPU time (user + system, all threads) with `process.cpuUsage()`. The
 * result file gets `{ ms, cpuMs, info, maxRssKiB }`, or `{ error }` (exit code 1).
 * The parent also times the whole process (wall) and reads the peak RSS from `/usr/bin/time -v`.
 */
import { writeFileSync, readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { cairnOps } from './ops/cairn.mjs'
import { cloneOps } from './ops/clone.mjs'
import { indexOps } from './ops/index.mjs'
import { limitOps } from './ops/limits.mjs'
import { peerOps } from './ops/peer.mjs'
import { proofLayoutOps } from './ops/proof-layouts.mjs'
import { vcsPeerOps } from './ops/vcs-peers.mjs'
import { modesOps } from './ops/modes.mjs'
import { syntheticOps } from './ops/synthetic.mjs'

const ops = {
  ...cairnOps,
  ...cloneOps,
  ...indexOps,
  ...limitOps,
  ...peerOps,
  ...proofLayoutOps,
  ...vcsPeerOps,
  ...modesOps,
  ...syntheticOps,
}
const [op, paramsFile, resultFile] = process.argv.slice(2)

/**
 * CPU time of the whole process (every thread: workers, libuv's pool) since `from`, in ms, plus that
 * of the child processes it waited for (a peer run as its own program): /proc's cutime and cstime.
 */
const cpuMs = (from) => {
  const d = process.cpuUsage(from.self)
  return (d.user + d.system) / 1000 + childrenCpuMs() - from.children
}
const cpuStart = () => ({ self: process.cpuUsage(), children: childrenCpuMs() })

/** CPU time of the waited-for child processes, in ms (0 where /proc cannot tell). */
function childrenCpuMs() {
  try {
    // fields after the command name (which may hold spaces), from field 3: cutime and cstime are 16 and 17
    const stat = readFileSync('/proc/self/stat', 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[16 - 3]) + Number(fields[17 - 3])
    return Number.isFinite(ticks) ? ticks * 10 : 0 // USER_HZ is 100 on Linux
  } catch {
    return 0
  }
}
const finish = (result) => writeFileSync(resultFile, JSON.stringify({ ...result, maxRssKiB: process.resourceUsage().maxRSS }))

try {
  const impl = ops[op]
  if (!impl) throw new Error(`unknown op ${JSON.stringify(op)} (known: ${Object.keys(ops).join(', ')})`)
  const params = JSON.parse(readFileSync(paramsFile, 'utf8'))
  const ctx = impl.prepare ? await impl.prepare(params) : undefined
  if (impl.detached) {
    // the op finishes when the event loop drains (a CLI that does not hand back its promise)
    const t0 = performance.now()
    const cpu0 = cpuStart()
    let done = false
    process.once('beforeExit', () => {
      if (done) return
      done = true
      const ms = performance.now() - t0
      finish({ ms, cpuMs: cpuMs(cpu0), info: impl.after ? impl.after(params, ctx) : {} })
    })
    await impl.run(params, ctx)
  } else {
    const t0 = performance.now()
    const cpu0 = cpuStart()
    const info = await impl.run(params, ctx)
    const ms = performance.now() - t0
    const cpu = cpuMs(cpu0)
    // checks that take time of their own (counting what a peer stored) run after the clock
    finish({ ms, cpuMs: cpu, info: { ...info, ...(impl.after ? await impl.after(params, ctx) : {}) } })
  }
} catch (e) {
  const error = e instanceof Error ? `${e.code ? `[${e.code}] ` : ''}${e.message}` : String(e)
  finish({ error, stack: e instanceof Error ? e.stack : undefined })
  process.exitCode = 1
}
