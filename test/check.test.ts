/**
 * `cairn check`: two `dir:` targets (one missing a file's blocks), a running `cairn serve`, a Kubo
 * stand-in and a gateway that is not there, each asked about every block of a release.
 */
import { readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { build, check, ls, publish, serve, type ServeHandle } from '../src/index.js'
import { validateWith } from '../src/schemas.js'
import { toJsonValue } from '../commands/_base.js'
import { cairn } from './helpers/cli.js'
import { FIXED_DATE, jsonl, makeDataset, seededBytes, tempDir, type TempDataset } from './helpers/dataset.js'
import { startKuboStandin, type KuboStandin } from './helpers/kubo-standin.js'

const MiB = 1024 * 1024
let ds: TempDataset
let work: string
let whole: string
let holey: string
let server: ServeHandle
let standin: KuboStandin
let bigLeaf: string

beforeAll(async () => {
  ds = await makeDataset({
    'big/model.bin': seededBytes(3 * MiB + 5, 'check-big'),
    'train/a.jsonl': jsonl([{ id: 1 }]),
    'train/b.jsonl': jsonl([{ id: 2 }]),
  })
  await build({ dir: ds.dir, date: FIXED_DATE })
  work = await tempDir('cairn-check-')
  whole = join(work, 'whole')
  holey = join(work, 'holey')
  await publish({ dir: ds.dir, to: `dir:${whole}` })
  // one CAR per 1 MiB block: then one CAR of the big file's can go
  await publish({ dir: ds.dir, to: `dir:${holey}`, shardSize: MiB })
  let big = ''
  for await (const e of ls({ dir: ds.dir })) if (e.path === 'big/model.bin') big = e.cid.toString()
  expect(big).not.toBe('')
  const cars = join(holey, 'cars')
  for (const name of (await readdir(cars)).filter((n) => n.endsWith('.idx'))) {
    const lines = (await readFile(join(cars, name), 'utf8')).trim().split('\n')
    // a CAR holding one leaf of the big file and nothing else
    if (lines.length === 1 && !lines[0].startsWith(big)) {
      const [cid, , length] = lines[0].split(' ')
      if (Number(length) === MiB) {
        bigLeaf = cid
        await rm(join(cars, name))
        await rm(join(cars, name.replace(/\.idx$/, '.car')))
        break
      }
    }
  }
  expect(bigLeaf).toBeDefined()
  server = await serve({ dir: ds.dir, port: 0 })
  standin = await startKuboStandin()
}, 60_000)
afterAll(async () => {
  await server?.close()
  await standin?.close()
  await ds?.cleanup()
  await rm(work, { recursive: true, force: true })
})

describe('cairn check', () => {
  it('two dir: targets and a serve: the table names the target and the shard that lacks blocks', async () => {
    const report = await check({ dir: ds.dir, to: [`dir:${whole}`, `dir:${holey}`], from: [server.url] })
    expect(report.ok).toBe(false)
    expect(report.shards).toBe(3)
    const [c, a, b] = report.places // sources first, then targets
    expect(a).toMatchObject({ place: `dir:${whole}`, complete: true, missingBlocks: 0, shards: [] })
    expect(b).toMatchObject({
      place: `dir:${holey}`,
      complete: false,
      missingBlocks: 1,
      unreachableBlocks: 0,
      shards: [{ path: 'big/model.bin', blocks: 5, missing: 1, unreachable: 0, status: 'missing' }],
      missingExamples: [bigLeaf],
    })
    expect(c).toMatchObject({ place: server.url, complete: true })
    expect(validateWith('cli/check.schema.json', toJsonValue(report))).toEqual([])

    const cli = await cairn(['check', '-C', ds.dir, '--to', `dir:${whole}`, '--to', `dir:${holey}`, '--from', server.url])
    expect(cli.exitCode).toBe(1)
    expect(cli.stdout).toMatch(new RegExp(`dir:${holey}\\s+big/model\\.bin\\s+5\\s+1\\s+0`))
    expect(cli.stdout).toContain(`dir:${whole}: complete`)
    expect(cli.stdout).toContain(`dir:${holey}: INCOMPLETE: 1 missing`)
  })

  it('exit 0 when every place holds the whole release; --json validates', async () => {
    const cli = await cairn(['check', '-C', ds.dir, '--to', `dir:${whole}`, '--from', server.url, '--json'])
    expect(cli.exitCode).toBe(0)
    const json = JSON.parse(cli.stdout) as { ok: boolean }
    expect(json.ok).toBe(true)
    expect(validateWith('cli/check.schema.json', json)).toEqual([])
  })

  it('a Kubo node is asked with block/stat; an empty node lacks everything, a published one holds it', async () => {
    const before = await check({ dir: ds.dir, to: [`kubo:${standin.url}`] })
    expect(before.places[0]).toMatchObject({ complete: false, missingBlocks: before.blocks, unreachableBlocks: 0 })
    await publish({ dir: ds.dir, to: `kubo:${standin.url}` })
    const after = await check({ dir: ds.dir, to: [`kubo:${standin.url}`] })
    expect(after.places[0]).toMatchObject({ complete: true })
  })

  it('a gateway that is not there is unreachable (not missing), and says why', async () => {
    const gone = await serve({ dir: ds.dir, port: 0 })
    await gone.close()
    const report = await check({ dir: ds.dir, from: [gone.url] })
    expect(report.ok).toBe(false)
    expect(report.places[0]).toMatchObject({ complete: false, missingBlocks: 0, unreachableBlocks: report.blocks })
    expect(report.places[0].error).toMatch(/ECONNREFUSED/)
    expect(report.places[0].shards.every((s) => s.status === 'unreachable')).toBe(true)
  })

  it('no place to check is a usage error', async () => {
    const cli = await cairn(['check', '-C', ds.dir])
    expect(cli.exitCode).toBe(2)
  })
})
