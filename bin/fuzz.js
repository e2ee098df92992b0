#!/usr/bin/env node
// `npm run fuzz -- --cases N --seed S`: the fuzz suite of test/fuzz.test.ts with as many cases as asked
// (the suite itself runs 300 with seed 18). Builds dist/ first, as `npm test` does.
import { spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: { cases: { type: 'string', default: '2000' }, seed: { type: 'string', default: String(Date.now() % 1e6) } },
})
for (const [name, value] of Object.entries(values)) {
  if (!/^\d+$/.test(value)) {
    console.error(`--${name} must be a whole number, not ${JSON.stringify(value)}`)
    process.exit(2)
  }
}
console.error(`fuzz: ${values.cases} cases, seed ${values.seed}`)
const build = spawnSync('npm', ['run', 'build'], { stdio: ['ignore', 'inherit', 'inherit'] })
if (build.status !== 0) process.exit(build.status ?? 1)
const run = spawnSync('npx', ['vitest', 'run', 'test/fuzz.test.ts'], {
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, CAIRN_FUZZ_CASES: values.cases, CAIRN_FUZZ_SEED: values.seed },
})
process.exit(run.status ?? 1)
