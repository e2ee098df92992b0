/**
 * The parent side of one measurement: spawns `child.mjs` for an op in a fresh Node process, under
 * `/usr/bin/time -v` when it exists (its "Maximum resident set size" is the peak RSS), else the
 * child's own `process.resourceUsage().maxRSS`. Times the whole process too (wall).
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url))
const TIME = '/usr/bin/time'
export const HAS_GNU_TIME = existsSync(TIME)
let counter = 0

/**
 * Runs `op` with `params` in a child. Resolves to `{ ms, cpuMs, wallMs, rssMiB, rssFrom, info }` or
 * `{ error, wallMs, output }`; never rejects for a failing child.
 */
export async function runChild(op, params, { workDir }) {
  mkdirSync(workDir, { recursive: true })
  const id = `${process.pid}-${++counter}`
  const paramsFile = join(workDir, `${id}.params.json`)
  const resultFile = join(workDir, `${id}.result.json`)
  const timeFile = join(workDir, `${id}.time.txt`)
  writeFileSync(paramsFile, JSON.stringify(params))
  const args = [CHILD, op, paramsFile, resultFile]
  const [cmd, argv] = HAS_GNU_TIME ? [TIME, ['-v', '-o', timeFile, process.execPath, ...args]] : [process.execPath, args]

  const t0 = process.hrtime.bigint()
  const { code, output } = await spawnCollect(cmd, argv)
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6

  let result
  try {
    result = JSON.parse(readFileSync(resultFile, 'utf8'))
  } catch {
    result = { error: `the child exited with ${code} and wrote no result` }
  }
  let rssKiB = result.maxRssKiB
  let rssFrom = 'resourceUsage'
  if (HAS_GNU_TIME && existsSync(timeFile)) {
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(readFileSync(timeFile, 'utf8'))
    if (m) {
      rssKiB = Number(m[1])
      rssFrom = '/usr/bin/time -v'
    }
  }
  for (const f of [paramsFile, resultFile, timeFile]) rmSync(f, { force: true })
  if (result.error !== undefined || code !== 0) {
    return { error: result.error ?? `exit code ${code}`, wallMs, output: output.slice(-2000) }
  }
  return { ms: result.ms, cpuMs: result.cpuMs, wallMs, rssMiB: rssKiB / 1024, rssFrom, info: result.info }
}

function spawnCollect(cmd, argv, cwd) {
  return new Promise((resolve) => {
    const child = spawn(cmd, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    // stdout whole, up to 1 MiB (a --json result the caller checks)
    let stdout = ''
    const keep = (d) => {
      output += d.toString()
      if (output.length > 8000) output = output.slice(-4000)
    }
    child.stdout.on('data', (d) => {
      if (stdout.length < 2 ** 20) stdout += d.toString()
      keep(d)
    })
    child.stderr.on('data', keep)
    child.on('error', (e) => resolve({ code: -1, output: output + String(e), stdout }))
    child.on('close', (code) => resolve({ code, output, stdout }))
  })
}

/**
 * Runs a whole command as a user types it, `node <args>` (e.g. the CLI `bin/run.js build …`, or
 * `-e 0`), in `cwd`, under `/usr/bin/time -v` when it exists. Resolves to `{ wallMs, cpuMs, rssMiB,
 * code, stdout, output }`: wall from spawn to exit, CPU (user + system) and peak RSS from time -v
 * (else `cpuMs` and `rssMiB` are undefined). Never rejects.
 */
export async function runNode(args, { cwd, workDir }) {
  mkdirSync(workDir, { recursive: true })
  const timeFile = join(workDir, `${process.pid}-${++counter}.time.txt`)
  const [cmd, argv] = HAS_GNU_TIME ? [TIME, ['-v', '-o', timeFile, process.execPath, ...args]] : [process.execPath, args]
  const t0 = process.hrtime.bigint()
  const { code, output, stdout } = await spawnCollect(cmd, argv, cwd)
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6
  let cpuMs
  let rssMiB
  if (HAS_GNU_TIME && existsSync(timeFile)) {
    const text = readFileSync(timeFile, 'utf8')
    const user = /User time \(seconds\): ([\d.]+)/.exec(text)
    const system = /System time \(seconds\): ([\d.]+)/.exec(text)
    const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(text)
    if (user && system) cpuMs = (Number(user[1]) + Number(system[1])) * 1000
    if (rss) rssMiB = Number(rss[1]) / 1024
    rmSync(timeFile, { force: true })
  }
  return { wallMs, cpuMs, rssMiB, code, stdout, output: output.slice(-2000) }
}
