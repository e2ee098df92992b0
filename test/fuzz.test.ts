/**
 * Fuzzing in the suite (issue #18, part 6): a fixed seed and a few hundred cases in `npm test`;
 * `npm run fuzz -- --cases N --seed S` runs as many as asked (bin/fuzz.js). A failing case names its
 * seed CAR, mutation and index: `npm run fuzz -- --seed S --cases N` replays it.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { builtDataset, cairnJson } from './helpers/dataset.js'
import { FIXTURES } from './helpers/gateways.js'
import { tempDirs } from './helpers/tmp.js'
import { FuzzGateway, fixtureSeeds, generatedSeeds, prng, runCase, type SeedCar } from './fuzz/harness.js'
import { readFile } from 'node:fs/promises'

const CASES = Number(process.env.CAIRN_FUZZ_CASES ?? 300)
const SEED = Number(process.env.CAIRN_FUZZ_SEED ?? 18)
const tmp = tempDirs('cairn-fuzz-')
let seeds: SeedCar[] = []
let gateway: FuzzGateway

beforeAll(async () => {
  const { dir } = await builtDataset(tmp)
  const car = join(await tmp.make(), 'version.car')
  await cairnJson(['pack', '-C', dir, '-o', car])
  seeds = [...(await fixtureSeeds(join(FIXTURES, 'trustless_gateway_car'))), ...(await generatedSeeds())]
  seeds.push({ name: 'packed cairn version', bytes: new Uint8Array(await readFile(car)) })
  gateway = await FuzzGateway.start()
}, 120_000)
afterAll(async () => {
  await gateway?.close()
  await tmp.cleanup()
})

describe(`fuzz: ${CASES} cases, seed ${SEED}`, () => {
  it('every reader refuses damage with a CairnError, accepts only what the oracle accepts, and stays bounded', async () => {
    const dir = join(await tmp.make(), 'cases')
    await mkdir(dir)
    const failed: string[] = []
    const byMutation = new Map<string, number>()
    let slowest = 0
    for (let i = 0; i < CASES; i++) {
      const seed = seeds[i % seeds.length]
      const result = await runCase(seed, i, prng(SEED * 1_000_003 + i), dir, gateway)
      byMutation.set(result.mutation, (byMutation.get(result.mutation) ?? 0) + 1)
      slowest = Math.max(slowest, result.ms)
      for (const f of result.failures) failed.push(`case ${i} (${seed.name}, ${result.mutation}): ${f}`)
    }
    const rss = process.memoryUsage().rss
    console.log(
      `fuzz: ${CASES} cases, seed ${SEED}: ${[...byMutation].map(([m, n]) => `${m} ${n}`).join(', ')}; slowest case ${Math.round(slowest)} ms; rss ${Math.round(rss / 2 ** 20)} MiB`,
    )
    expect(failed.slice(0, 20)).toEqual([])
    expect(slowest).toBeLessThan(10_000)
    expect(rss).toBeLessThan(256 * 2 ** 20)
  }, 600_000)
})
