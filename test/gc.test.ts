/**
 * `gc` and `du`: gc keeps exactly what the refs reach (the expected sets computed by walking the DAGs
 * with src/dag.ts, the walker pack uses, not gc's marker), every kept version still packs and verifies,
 * a gc killed midway leaves every kept block in the store and the next one finishes, and a gc while a
 * build runs is refused.
 */
import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, readdirSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { build, CairnError, du, gc, pack, reset, tag, verify } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { cidText } from '../src/cid.js'
import { walkDag } from '../src/dag.js'
import { readVersion } from '../src/version.js'
import { validateWith } from '../src/schemas.js'
import { binPath, cairn, ensureBuilt, parseJson } from './helpers/cli.js'
import { FIXED_DATE, jsonl, makeDataset, seededBytes, thrown, type TempDataset } from './helpers/dataset.js'

const MiB = 1024 * 1024
const made: TempDataset[] = []
afterEach(async () => {
  await Promise.all(made.splice(0).map((d) => d.cleanup()))
})
beforeAll(() => ensureBuilt())

/** Five versions: each changes one file and adds one, a large file stays throughout. HEAD is v5. */
async function fiveVersions(bigBytes = 3 * MiB): Promise<{ ds: TempDataset; v: string[] }> {
  const ds = await makeDataset({ 'big.bin': seededBytes(bigBytes, 'big'), 'rows.jsonl': jsonl([{ id: 0 }]) })
  made.push(ds)
  const v: string[] = []
  for (let i = 1; i <= 5; i++) {
    await ds.write({ 'rows.jsonl': jsonl([{ id: i }]), [`added-${i}.bin`]: seededBytes(MiB + i, `added-${i}`) })
    v.push((await build({ dir: ds.dir, message: `v${i}`, date: FIXED_DATE })).version.toString())
  }
  return { ds, v }
}

/** A version's release: its block and the DAGs of its links but the parent (walked with src/dag.ts). */
async function releaseOf(dir: string, version: string): Promise<Set<string>> {
  const dataset = await openDataset(dir)
  try {
    const cid = (await import('../src/index.js')).CID.parse(version)
    const v = await readVersion(dataset.store, cid)
    const out = new Set<string>([cidText(cid)])
    for (const root of [v.card, v.index, v.tree]) for await (const b of walkDag(dataset.store, root)) out.add(cidText(b.cid))
    return out
  } finally {
    await dataset.store.close()
  }
}

/** The blocks of the store now. */
async function storeBlocks(dir: string): Promise<Set<string>> {
  const dataset = await openDataset(dir)
  try {
    return new Set((await dataset.store.cids()).map((c) => cidText(c)))
  } finally {
    await dataset.store.close()
  }
}

/** Packs the version to a CAR outside the dataset and verifies the CAR (every block re-hashed, the DAG complete). */
async function packsAndVerifies(dir: string, ref: string): Promise<void> {
  const out = await makeDataset({}, { noInit: true })
  made.push(out)
  const car = join(out.dir, 'v.car')
  await pack({ dir, ref, output: car })
  const report = await verify({ car })
  expect(report.ok, JSON.stringify(report.problems)).toBe(true)
}

const union = (...sets: Set<string>[]) => new Set(sets.flatMap((s) => [...s]))

/** Every block of `keys` is in the store and reads back checked against its CID. */
async function expectReadable(dir: string, keys: Set<string>): Promise<void> {
  const dataset = await openDataset(dir)
  try {
    const { CID } = await import('../src/index.js')
    for (const k of keys) await dataset.store.get(CID.parse(k))
  } finally {
    await dataset.store.close()
  }
}

describe('gc', () => {
  it('keeps exactly what HEAD and the tags reach; every kept version still packs and verifies', async () => {
    const { ds, v } = await fiveVersions()
    await tag({ dir: ds.dir, name: 'two', ref: v[1] })
    await tag({ dir: ds.dir, name: 'four', ref: v[3] })
    // HEAD back to v3: v5 is then reached only by the HEAD log
    await reset({ dir: ds.dir, ref: v[2] })
    const before = await storeBlocks(ds.dir)
    // HEAD (v3) and the tags keep their whole history: the releases of v1…v4
    const kept = union(...(await Promise.all(v.slice(0, 4).map((c) => releaseOf(ds.dir, c)))))
    const v5only = [...(await releaseOf(ds.dir, v[4]))].filter((k) => !kept.has(k))
    expect(v5only.length).toBeGreaterThan(2)

    // the HEAD log keeps v5 (a reset can be undone) until told otherwise
    expect((await gc({ dir: ds.dir, now: true })).garbageBlocks).toBe(0)
    expect(await storeBlocks(ds.dir)).toEqual(before)

    const dry = await gc({ dir: ds.dir, expireHeadLog: true })
    expect(dry).toMatchObject({ done: false, garbageBlocks: v5only.length })
    expect(dry.freedBytes).toBeGreaterThan(MiB)
    expect(await storeBlocks(ds.dir)).toEqual(before) // a dry run deletes nothing
    const usage = await du({ dir: ds.dir })
    expect(usage.store.blocks).toBe(before.size)

    const done = await gc({ dir: ds.dir, now: true, expireHeadLog: true })
    expect(done).toMatchObject({ done: true, garbageBlocks: v5only.length, missing: 0 })
    expect(await storeBlocks(ds.dir)).toEqual(kept)
    for (const ref of ['HEAD', 'two', 'four', v[0]]) await packsAndVerifies(ds.dir, ref)
    expect(((await thrown(() => pack({ dir: ds.dir, ref: v[4], output: join(ds.dir, 'x.car') }))) as CairnError).code).toBe('MISSING_BLOCK')
    // a build after gc: the folder holds v5's files, HEAD is v3, so a new version, which packs whole
    const rebuilt = await build({ dir: ds.dir, message: 'after gc', date: FIXED_DATE })
    expect(rebuilt.unchanged).toBe(false)
    await packsAndVerifies(ds.dir, 'HEAD')
    // again: nothing left to collect
    expect((await gc({ dir: ds.dir, now: true, expireHeadLog: true })).garbageBlocks).toBe(0)
  })

  it('gives the same answers with tiny limits (its sets on disk, logs read 64 bytes at a time), and keeps exactly the reachable set', async () => {
    const { ds, v } = await fiveVersions(MiB)
    await tag({ dir: ds.dir, name: 'two', ref: v[1] })
    await reset({ dir: ds.dir, ref: v[2] })
    // a second copy of every block of the oldest pack, in a pack that sorts last: all of it is garbage
    const packsDir = join(ds.dir, '.cairn', 'packs')
    const oldest = readdirSync(packsDir)
      .filter((n) => n.endsWith('.idx'))
      .sort()[0]
      .slice(0, -4)
    copyFileSync(join(packsDir, oldest + '.pack'), join(packsDir, 'zz-copy.pack'))
    copyFileSync(join(packsDir, oldest + '.idx'), join(packsDir, 'zz-copy.idx'))
    const tiny = { seen: { memoryKeys: 1, pageKeys: 1, fanIn: 2 }, logBufferBytes: 64 }
    expect(await du({ dir: ds.dir, limits: tiny })).toEqual(await du({ dir: ds.dir }))
    for (const o of [{}, { keepHistory: 0 }, { expireHeadLog: true }]) {
      const plain = await gc({ dir: ds.dir, ...o })
      expect(plain.packsDeleted).toBeGreaterThan(0)
      expect(await gc({ dir: ds.dir, ...o, limits: tiny })).toEqual(plain)
    }
    const kept = union(...(await Promise.all(v.slice(0, 3).map((c) => releaseOf(ds.dir, c)))))
    const done = await gc({ dir: ds.dir, now: true, expireHeadLog: true, limits: tiny })
    expect(done).toMatchObject({ done: true, missing: 0, keptBlocks: kept.size })
    expect(await storeBlocks(ds.dir)).toEqual(kept)
    expect(existsSync(join(packsDir, 'zz-copy.idx'))).toBe(false)
    for (const ref of ['HEAD', 'two']) await packsAndVerifies(ds.dir, ref)
    expect(await gc({ dir: ds.dir, expireHeadLog: true, limits: tiny })).toMatchObject({ garbageBlocks: 0, packsDeleted: 0 })
  })

  it('--keep-history 0 keeps the releases of HEAD and the tags, and the version blocks and cards of their ancestors', async () => {
    const { ds, v } = await fiveVersions()
    await tag({ dir: ds.dir, name: 'two', ref: v[1] })
    const dataset = await openDataset(ds.dir)
    const cards = await Promise.all(
      v.map(async (c) => cidText((await readVersion(dataset.store, (await import('../src/index.js')).CID.parse(c))).card)),
    )
    await dataset.store.close()
    const expected = union(await releaseOf(ds.dir, v[4]), await releaseOf(ds.dir, v[1]), new Set(v.map((c) => c)), new Set(cards))
    const r = await gc({ dir: ds.dir, now: true, keepHistory: 0, expireHeadLog: true })
    expect(r.missing).toBe(0)
    expect(await storeBlocks(ds.dir)).toEqual(new Set([...expected].map((k) => k)))
    // log still works: every version block is kept
    const log = await cairn(['log', '-C', ds.dir, '--json'])
    expect(log.exitCode).toBe(0)
    expect(parseJson<unknown[]>(log)).toHaveLength(5)
    // the kept releases are whole: the folder verifies against HEAD, tag two restores and verifies
    expect((await verify({ dir: ds.dir })).ok).toBe(true)
    const restored = await cairn(['restore', 'two', '-C', ds.dir, '--force', '--json'])
    expect(restored.exitCode, restored.stdout).toBe(0)
    expect((await verify({ dir: ds.dir, ref: 'two' })).ok).toBe(true)
    // v3's rows.jsonl is in no kept release: gone, and restore says so (integrity, exit 5)
    const r3 = await cairn(['restore', v[2], join(ds.dir, 'rows.jsonl'), '-C', ds.dir, '--force', '--json'])
    expect(r3.exitCode, r3.stdout).toBe(5)
    expect(parseJson<{ error: { code: string } }>(r3).error.code).toBe('MISSING_BLOCK')
  })

  it('a gc killed midway leaves every kept block readable, and the next gc finishes', async () => {
    const { ds, v } = await fiveVersions(32 * MiB)
    await tag({ dir: ds.dir, name: 'two', ref: v[1] })
    const kept = union(await releaseOf(ds.dir, v[4]), await releaseOf(ds.dir, v[1]))
    const packsDir = join(ds.dir, '.cairn', 'packs')
    const packsBefore = readdirSync(packsDir).filter((n) => n.endsWith('.idx')).length
    // --keep-history 0: v1's pack holds garbage (v1's rows) and the 32 MiB file, which gc must copy out
    const child = spawn(process.execPath, [binPath, 'gc', '--now', '--keep-history', '0', '--expire-head-log', '-C', ds.dir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)))
    // kill it once its new pack exists and grows: the copy is under way
    for (let i = 0; i < 20_000; i++) {
      const gcPack = readdirSync(packsDir).find((n) => n.endsWith('-gc.pack'))
      if (gcPack && (await import('node:fs')).statSync(join(packsDir, gcPack)).size > MiB) break
      await new Promise((r) => setTimeout(r, 1))
    }
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')
    // midway: the new pack has no log yet, and every old pack is still there
    expect(readdirSync(packsDir).filter((n) => n.endsWith('.idx')).length).toBe(packsBefore)
    expect(readdirSync(packsDir).some((n) => n.endsWith('-gc.pack'))).toBe(true)
    // every kept block is still in the store and readable
    await expectReadable(ds.dir, kept)
    const after = await gc({ dir: ds.dir, now: true, keepHistory: 0, expireHeadLog: true })
    expect(after.done).toBe(true)
    // the killed gc's pack without a log is gone with the garbage
    const names = readdirSync(packsDir)
    for (const n of names.filter((x) => x.endsWith('.pack'))) expect(names).toContain(n.replace(/\.pack$/, '.idx'))
    const blocks = await storeBlocks(ds.dir)
    for (const k of kept) expect(blocks.has(k)).toBe(true)
    expect((await gc({ dir: ds.dir, keepHistory: 0, expireHeadLog: true })).garbageBlocks).toBe(0)
    expect((await verify({ dir: ds.dir })).ok).toBe(true)
  })

  it('a gc killed after its new pack is logged leaves a journal the next gc finishes', async () => {
    const { ds, v } = await fiveVersions()
    await tag({ dir: ds.dir, name: 'two', ref: v[1] })
    const packsDir = join(ds.dir, '.cairn', 'packs')
    // the state a kill between the journal and the deletions leaves: run gc in a child and stop it at the journal
    const child = spawn(process.execPath, [binPath, 'gc', '--now', '--expire-head-log', '--keep-history', '0', '-C', ds.dir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, signal) => resolve(signal)))
    const journal = join(ds.dir, '.cairn', 'gc-journal')
    let seen = false
    for (let i = 0; i < 20_000 && child.exitCode === null; i++) {
      if (existsSync(journal)) {
        child.kill('SIGKILL')
        seen = true
        break
      }
      await new Promise((r) => setImmediate(r))
    }
    const signal = await exited
    // whether the kill landed inside the deletions or after them, the store is consistent and a gc finishes the job
    if (seen && signal === 'SIGKILL') expect(existsSync(journal)).toBe(true)
    await expectReadable(ds.dir, union(await releaseOf(ds.dir, v[4]), await releaseOf(ds.dir, v[1])))
    await gc({ dir: ds.dir, now: true, keepHistory: 0, expireHeadLog: true })
    expect(existsSync(journal)).toBe(false)
    expect((await gc({ dir: ds.dir, keepHistory: 0, expireHeadLog: true })).garbageBlocks).toBe(0)
    const names = readdirSync(packsDir)
    for (const n of names.filter((x) => x.endsWith('.pack'))) expect(names).toContain(n.replace(/\.pack$/, '.idx'))
  })

  it('is refused while a build runs (the dataset lock), and deletes nothing', async () => {
    const { ds } = await fiveVersions()
    await writeFile(join(ds.dir, 'huge.bin'), seededBytes(64 * MiB, 'huge'))
    const child = spawn(process.execPath, [binPath, 'build', '-m', 'long', '-C', ds.dir], { stdio: ['ignore', 'ignore', 'pipe'] })
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    const lock = join(ds.dir, '.cairn', 'lock')
    while (!existsSync(lock) && child.exitCode === null) await new Promise((r) => setTimeout(r, 1))
    const before = await storeBlocks(ds.dir)
    const r = await cairn(['gc', '--now', '-C', ds.dir, '--json'])
    expect(await exited).toBe(0)
    expect(r.exitCode).not.toBe(0)
    // refused because of the build: the lock names its pid
    expect(parseJson<{ error: { message: string } }>(r).error.message).toContain(`Another cairn process (pid ${child.pid}) is writing`)
    for (const k of before) expect((await storeBlocks(ds.dir)).has(k)).toBe(true)
  })

  it('is refused in a clone that is not finished (its blocks are not reached by HEAD yet)', async () => {
    const { ds } = await fiveVersions(MiB)
    await writeFile(join(ds.dir, '.cairn', 'clone.json'), JSON.stringify({ cid: 'bafy', complete: false }) + '\n')
    const e = await thrown(() => gc({ dir: ds.dir, now: true }))
    expect((e as CairnError).code).toBe('USAGE')
    expect((e as CairnError).message).toContain('not finished')
    await writeFile(join(ds.dir, '.cairn', 'clone.json'), JSON.stringify({ cid: 'bafy', complete: true }) + '\n')
    expect((await gc({ dir: ds.dir })).done).toBe(false)
  })

  it('CLI: gc and du --json validate against their schemas', async () => {
    const { ds } = await fiveVersions(MiB)
    for (const [args, schema] of [
      [['gc'], 'gc'],
      [['gc', '--now', '--keep-history', '1'], 'gc'],
      [['du'], 'du'],
    ] as const) {
      const r = await cairn([...args, '-C', ds.dir, '--json'])
      expect(r.exitCode, r.stdout).toBe(0)
      expect(validateWith(`cli/${schema}.schema.json`, parseJson(r))).toEqual([])
    }
    const text = await cairn(['du', '-C', ds.dir])
    expect(text.stdout).toMatch(/^store\s+\d+ blocks/m)
  })
})
