#!/usr/bin/env node
// `npm start`: the main job on the bundled example, on the embedded default (the local store: no
// service, no network). Copies datasets/tiny-instruct to a temporary folder, then runs the real CLI:
// init, build, log, ls, pack, verify (folder and CAR); then a second release and its diff; publish to a
// dir: folder, serve it on loopback, clone by CID from it and verify the clone; and prints a summary.
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const cli = join(root, 'bin', 'run.js')
const example = join(root, 'datasets', 'tiny-instruct')
const expected = JSON.parse(readFileSync(join(example, 'expected.json'), 'utf8'))
const work = mkdtempSync(join(tmpdir(), 'cairn-demo-'))
const data = join(work, 'tiny-instruct')
const env = { ...process.env, SOURCE_DATE_EPOCH: String(expected.sourceDateEpoch) }

function cairn(...args) {
  return cairnIn(data, ...args)
}

function cairnIn(cwd, ...args) {
  process.stdout.write(`\n$ cairn ${args.join(' ')}${cwd === data ? '' : `   # in ${cwd}`}\n`)
  const out = execFileSync(process.execPath, [cli, ...args], { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  process.stdout.write(out)
  return out
}

try {
  cpSync(example, data, { recursive: true, filter: (src) => !src.endsWith('expected.json') })
  console.log(`cairn demo: the example dataset copied to ${data}`)
  cairn('init')
  const version = cairn('build', '-m', expected.message).trim()
  cairn('log')
  cairn('ls')
  const car = join(work, 'tiny-instruct.car')
  cairn('pack', '-o', car)
  cairn('verify')
  cairn('verify', '--car', car)
  cairn('tag', 'v1')

  // a second release: rows edited, a shard added, one removed, the card's description changed
  process.stdout.write(`\n$ node datasets/tiny-instruct/generate-v2.mjs <copy>   # the deterministic edit\n`)
  execFileSync(process.execPath, [join(example, 'generate-v2.mjs'), data], { cwd: data, stdio: ['ignore', 'inherit', 'inherit'] })
  const version2 = cairn('build', '-m', 'tiny-instruct: second release').trim()
  cairn('log', '--stat')
  cairn('diff', 'v1', 'HEAD', '--rows', '--limit', '2')

  // publish v1 to a folder of CARs, serve that folder as a trustless gateway on loopback, and clone the
  // release by CID from it into another folder: every block is verified on the way in
  const cars = join(work, 'published-cars')
  cairn('publish', 'v1', '--to', `dir:${cars}`)
  process.stdout.write(`\n$ cairn serve --port 0 --dir-target ${cars} &\n`)
  const server = spawn(process.execPath, [cli, 'serve', '--port', '0', '--dir-target', cars], {
    cwd: work,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const url = await new Promise((resolve, reject) => {
    server.stdout.once('data', (d) => resolve(String(d).trim().split('\n')[0]))
    server.once('exit', (code) => reject(new Error(`cairn serve exited (${code})`)))
  })
  process.stdout.write(`${url}\n`)
  const clone = join(work, 'clone')
  try {
    cairn('clone', version, clone, '--from', url)
  } finally {
    server.kill('SIGTERM')
  }
  cairnIn(clone, 'verify')

  const shown = JSON.parse(execFileSync(process.execPath, [cli, 'show', 'v1', '--json'], { cwd: data, env, encoding: 'utf8' }))
  const t = shown.manifest.totals
  console.log('\nSummary')
  console.log(`  release      ${version}`)
  console.log(`  expected     ${expected.version} (${version === expected.version ? 'identical: the build is reproducible' : 'DIFFERENT'})`)
  console.log(`  contents     ${t.shards} shards, ${t.bytes} bytes, ${t.rows} rows`)
  console.log(`  tree         ${shown.manifest.tree['/']} (browsable on any IPFS gateway once published)`)
  console.log(`  CAR          ${car} (${statSync(car).size} bytes), verified block by block`)
  console.log(`  clone        ${clone}: cloned by CID from ${url}, verified`)
  console.log(`  next release ${version2} (diffed against v1 above)`)
  if (version !== expected.version) process.exitCode = 1
} finally {
  if (!process.env.CAIRN_DEMO_KEEP) rmSync(work, { recursive: true, force: true })
}
