/**
 * `publish` / `published`, the `dir:` target (docs/dir-target.md, format 1), target specs, byte sizes,
 * retries, and the two commands. The folder a `dir:` publish writes is read back with independent
 * readers (`@ipld/car`'s CarIndexer and CarBlockIterator, sha2-256 of the files).
 */
import { createHash } from 'node:crypto'
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CarBlockIterator } from '@ipld/car/iterator'
import { CarIndexer } from '@ipld/car/indexer'
import * as Digest from 'multiformats/hashes/digest'
import { build, CairnError, pack, publish, published, type BlockSource, type PublishProgress } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { parseByteSize, receiptPath } from '../src/publish.js'
import { DirSource } from '../src/sources/index.js'
import { createDirTarget, parseTarget } from '../src/targets/index.js'
import { isTransient, retry, HttpStatusError } from '../src/util/retry.js'
import { CID } from '../src/cid.js'
import { walkDag } from '../src/dag.js'
import { validateWith } from '../src/schemas.js'
import { cairn, parseJson, spawnCairn } from './helpers/cli.js'
import { FIXED_DATE, jsonl, makeDataset, seededBytes, tempDir, thrown, type TempDataset } from './helpers/dataset.js'

const MiB = 1024 * 1024

/** Every block of a version's DAG in walk (= pack) order. */
async function dagBlocks(dir: string, root: CID): Promise<{ cid: CID; bytes: Uint8Array }[]> {
  const { store } = await openDataset(dir)
  try {
    const out: { cid: CID; bytes: Uint8Array }[] = []
    for await (const b of walkDag(store, root)) out.push({ cid: b.cid, bytes: b.bytes })
    return out
  } finally {
    await store.close()
  }
}

/** What a `dir:` folder holds, read back independently: each CAR's blocks (hash-checked) and index. */
async function readFolder(folder: string): Promise<{
  cars: Map<string, { roots: string[]; blocks: { cid: string; offset: number; length: number }[]; size: number }>
  versions: Map<string, string[]>
  files: string[]
}> {
  const cars = new Map<string, { roots: string[]; blocks: { cid: string; offset: number; length: number }[]; size: number }>()
  const names = (await readdir(join(folder, 'cars'))).sort()
  for (const name of names.filter((n) => n.endsWith('.car'))) {
    const bytes = await readFile(join(folder, 'cars', name))
    // the file is named by its own CID
    const cid = CID.createV1(0x0202, Digest.create(0x12, createHash('sha256').update(bytes).digest()))
    expect(name).toBe(`${cid}.car`)
    const indexer = await CarIndexer.fromBytes(bytes)
    const blocks: { cid: string; offset: number; length: number }[] = []
    for await (const b of indexer) blocks.push({ cid: b.cid.toString(), offset: b.blockOffset, length: b.blockLength })
    // every block's bytes hash to its CID
    for await (const b of await CarBlockIterator.fromBytes(bytes)) {
      const digest = createHash('sha256').update(b.bytes).digest()
      expect(Buffer.from(b.cid.multihash.digest).equals(digest)).toBe(true)
    }
    // the .idx says exactly what the CAR holds, where
    const idx = await readFile(join(folder, 'cars', name.replace(/\.car$/, '.idx')), 'utf8')
    expect(idx).toBe(blocks.map((b) => `${b.cid} ${b.offset} ${b.length}\n`).join(''))
    cars.set(name, { roots: (await indexer.getRoots()).map(String), blocks, size: bytes.length })
  }
  const versions = new Map<string, string[]>()
  for (const v of await readdir(join(folder, 'versions'))) {
    versions.set(v, (await readFile(join(folder, 'versions', v), 'utf8')).split('\n').filter(Boolean))
  }
  return { cars, versions, files: names }
}

describe('dir: target', () => {
  let ds: TempDataset
  let out: string
  let v1: CID
  let v2: CID

  beforeAll(async () => {
    ds = await makeDataset({
      'a.bin': seededBytes(3 * MiB + 100, 'dir-a'),
      'b.bin': seededBytes(2 * MiB + 7, 'dir-b'),
      'c.bin': seededBytes(2 * MiB, 'dir-c'),
      'rows.jsonl': jsonl([{ id: 1 }, { id: 2 }]),
      'small.txt': 'hello world',
    })
    v1 = (await build({ dir: ds.dir, message: 'v1', date: FIXED_DATE })).version
    await ds.write({ 'b.bin': seededBytes(2 * MiB + 7, 'dir-b-changed') })
    v2 = (await build({ dir: ds.dir, message: 'v2', date: FIXED_DATE })).version
    out = await tempDir('cairn-dir-target-')
  })
  afterAll(async () => {
    await ds?.cleanup()
    if (out) await rm(out, { recursive: true, force: true })
  })

  it('one big shard: the folder holds format 1 and a CAR byte-identical to `cairn pack`', async () => {
    const folder = join(out, 'single')
    const receipt = await publish({ dir: ds.dir, ref: v1.toString(), to: `dir:${folder}`, shardSize: 1024 * MiB })
    expect(JSON.parse(await readFile(join(folder, 'cairn-dir.json'), 'utf8'))).toEqual({ format: 'cairn-dir', v: 1 })
    const { cars, versions } = await readFolder(folder)
    expect(cars.size).toBe(1)
    const [[name, car]] = [...cars]
    expect(car.roots).toEqual([v1.toString()])
    await pack({ dir: ds.dir, ref: v1.toString(), output: join(out, 'v1.car') })
    expect((await readFile(join(folder, 'cars', name))).equals(await readFile(join(out, 'v1.car')))).toBe(true)
    expect(versions).toEqual(new Map([[v1.toString(), [name]]]))
    const blocks = await dagBlocks(ds.dir, v1)
    expect(receipt).toMatchObject({
      target: `dir:${folder}`,
      shards: [{ cid: CID.parse(name.slice(0, -4)), size: car.size, file: `cars/${name}` }],
      newBlocks: blocks.length,
      newBytes: blocks.reduce((n, b) => n + b.bytes.length, 0),
    })
  })

  it('cuts CARs at the shard size, in pack order; a block larger than the shard size gets a CAR of its own', async () => {
    for (const [label, shardSize] of [
      ['1.5 MiB', 1.5 * MiB],
      ['1 KiB (smaller than the 1 MiB leaves)', 1024],
    ] as const) {
      const folder = join(out, `sharded-${shardSize}`)
      const progress: PublishProgress[] = []
      const receipt = await publish({
        dir: ds.dir,
        ref: v1.toString(),
        to: `dir:${folder}`,
        shardSize,
        onProgress: (p) => progress.push(p),
      })
      const { cars, versions } = await readFolder(folder)
      const listed = versions.get(v1.toString()) as string[]
      expect(new Set(listed), label).toEqual(new Set(cars.keys()))
      // the CARs in the order listed, concatenated, hold the DAG in pack order, each block once
      const order = listed.flatMap((n) => (cars.get(n) as { blocks: { cid: string }[] }).blocks.map((b) => b.cid))
      expect(order, label).toEqual((await dagBlocks(ds.dir, v1)).map((b) => b.cid.toString()))
      for (const [n, car] of cars) {
        expect(car.roots, n).toEqual([v1.toString()])
        if (car.size > shardSize) expect(car.blocks, `${label}: ${n} passes the shard size, so it must hold one block`).toHaveLength(1)
      }
      expect(receipt.shards.map((s) => s.file)).toEqual(listed.map((n) => `cars/${n}`))
      // progress per shard
      const shardLines = progress.filter((p) => p.message?.startsWith('shard '))
      expect(shardLines.map((p) => p.shards)).toEqual(listed.map((_, i) => i + 1))
    }
  })

  it('a later version writes only the blocks the folder lacks, and lists old and new CARs', async () => {
    const folder = join(out, 'incremental')
    const first = await publish({ dir: ds.dir, ref: v1.toString(), to: `dir:${folder}`, shardSize: 2 * MiB })
    const before = await readFolder(folder)
    const second = await publish({ dir: ds.dir, ref: v2.toString(), to: `dir:${folder}`, shardSize: 2 * MiB })
    const after = await readFolder(folder)

    const old = new Set((await dagBlocks(ds.dir, v1)).map((b) => b.cid.toString()))
    const lacking = (await dagBlocks(ds.dir, v2)).filter((b) => !old.has(b.cid.toString()))
    // b.bin changed: its 3 leaves and its root, plus the index path, the tree and the version
    expect(lacking.length).toBeGreaterThanOrEqual(4)
    expect(lacking.length).toBeLessThan(first.newBlocks / 2)
    expect(second.newBlocks).toBe(lacking.length)
    expect(second.newBytes).toBe(lacking.reduce((n, b) => n + b.bytes.length, 0))

    const newCars = [...after.cars.keys()].filter((n) => !before.cars.has(n))
    const writtenBlocks = newCars.flatMap((n) => (after.cars.get(n) as { blocks: { cid: string }[] }).blocks.map((b) => b.cid))
    expect(writtenBlocks.sort()).toEqual(lacking.map((b) => b.cid.toString()).sort())
    for (const n of before.cars.keys()) expect(after.cars.get(n)).toEqual(before.cars.get(n))

    // versions/<v2> lists every CAR v2 needs, old and new, and together they hold all of v2
    const listed = after.versions.get(v2.toString()) as string[]
    expect(listed.filter((n) => before.cars.has(n)).length).toBeGreaterThan(0)
    expect(listed.filter((n) => !before.cars.has(n)).sort()).toEqual(newCars.sort())
    const held = new Set(listed.flatMap((n) => (after.cars.get(n) as { blocks: { cid: string }[] }).blocks.map((b) => b.cid)))
    for (const b of await dagBlocks(ds.dir, v2)) expect(held.has(b.cid.toString()), b.cid.toString()).toBe(true)
    expect(after.versions.get(v1.toString())).toEqual(before.versions.get(v1.toString()))
  })

  it('re-publishing the same version writes nothing and returns the same shards', async () => {
    const folder = join(out, 'again')
    const first = await publish({ dir: ds.dir, to: `dir:${folder}`, shardSize: 2 * MiB })
    const snapshot = async (): Promise<string[]> => {
      const rows: string[] = []
      for (const sub of ['cars', 'versions']) {
        for (const n of (await readdir(join(folder, sub))).sort()) rows.push(`${sub}/${n} ${(await stat(join(folder, sub, n))).mtimeMs}`)
      }
      return rows
    }
    const before = await snapshot()
    const second = await publish({ dir: ds.dir, to: `dir:${folder}`, shardSize: 2 * MiB })
    expect(await snapshot()).toEqual(before)
    expect(second.shards).toEqual(first.shards)
    expect(second).toMatchObject({ newBlocks: 0, newBytes: 0 })
    // one receipt per version and target: the latest
    const receipts = (await published({ dir: ds.dir, ref: 'HEAD' })).filter((r) => r.target === `dir:${folder}`)
    expect(receipts).toHaveLength(1)
    expect(receipts[0].publishedAt).toBe(second.publishedAt)
  })

  it('a publish that fails midway leaves no temporary file and no versions entry; the next one completes', async () => {
    const folder = join(out, 'interrupted')
    const blocks = await dagBlocks(ds.dir, v1)
    const byCid = new Map(blocks.map((b) => [b.cid.toString(), b.bytes]))
    let served = 0
    const failing: BlockSource = {
      async get(cid) {
        if (++served > blocks.length - 3)
          throw new CairnError('MISSING_BLOCK', `Block ${cid} is not in the store`, { subject: cid.toString() })
        return byCid.get(cid.toString()) as Uint8Array
      },
    }
    const target = createDirTarget({ path: folder })
    const e = await thrown(() => target.publish({ root: v1, source: failing, totalBytes: 0 }, { shardSize: 1.5 * MiB }))
    expect(e).toMatchObject({ code: 'MISSING_BLOCK' })
    const left = [...(await readdir(join(folder, 'cars'))), ...(await readdir(join(folder, 'versions')))]
    expect(left.filter((n) => n.endsWith('.tmp'))).toEqual([])
    expect(await readdir(join(folder, 'versions'))).toEqual([])
    const whole = await readFolder(folder)
    const kept = [...whole.cars.values()].reduce((n, c) => n + c.blocks.length, 0)
    expect(kept).toBeGreaterThan(0)

    const full: BlockSource = { get: async (cid) => byCid.get(cid.toString()) as Uint8Array }
    const receipt = await target.publish({ root: v1, source: full, totalBytes: 0 }, { shardSize: 1.5 * MiB })
    expect(receipt.newBlocks).toBe(blocks.length - kept)
    const after = await readFolder(folder)
    const held = new Set(
      (after.versions.get(v1.toString()) as string[]).flatMap((n) =>
        (after.cars.get(n) as { blocks: { cid: string }[] }).blocks.map((b) => b.cid),
      ),
    )
    expect(held).toEqual(new Set(byCid.keys()))
  })

  it('refuses a folder holding other files, and a cairn-dir.json of another version', async () => {
    const busy = join(out, 'busy')
    await rm(busy, { recursive: true, force: true })
    await import('node:fs/promises').then((fs) => fs.mkdir(busy, { recursive: true }))
    await writeFile(join(busy, 'notes.txt'), 'mine')
    expect(await thrown(() => publish({ dir: ds.dir, to: `dir:${busy}` }))).toMatchObject({ code: 'TARGET_NOT_EMPTY', subject: busy })

    const newer = join(out, 'newer')
    await import('node:fs/promises').then((fs) => fs.mkdir(newer, { recursive: true }))
    await writeFile(join(newer, 'cairn-dir.json'), '{"format": "cairn-dir", "v": 2}\n')
    const e = await thrown(() => publish({ dir: ds.dir, to: `dir:${newer}` }))
    expect(e).toMatchObject({ code: 'PUBLISH_FAILED' })
    expect((e as Error).message).toContain('(expected {"format": "cairn-dir", "v": 1})')
  })

  it('records receipts under .cairn/published/<version>/<sha256 of the target>.json, and lists them', async () => {
    const folder = join(out, 'receipts')
    const receipt = await publish({ dir: ds.dir, ref: v1.toString(), to: `dir:${folder}` })
    const file = join(ds.dir, '.cairn', receiptPath(v1, `dir:${folder}`))
    expect(file).toBe(
      join(ds.dir, '.cairn', 'published', v1.toString(), createHash('sha256').update(`dir:${folder}`).digest('hex') + '.json'),
    )
    const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
    expect(stored).toMatchObject({ receiptVersion: 1, target: `dir:${folder}`, root: { '/': v1.toString() } })
    const forV1 = await published({ dir: ds.dir, ref: v1.toString() })
    expect(forV1.find((r) => r.target === `dir:${folder}`)).toEqual(JSON.parse(JSON.stringify(receipt), revive))
    const all = await published({ dir: ds.dir })
    expect(all.length).toBeGreaterThan(forV1.length)
    expect(all.map((r) => r.publishedAt)).toEqual([...all.map((r) => r.publishedAt)].sort())

    await writeFile(file, JSON.stringify({ ...stored, receiptVersion: 9 }))
    expect(await thrown(() => published({ dir: ds.dir, ref: v1.toString() }))).toMatchObject({ code: 'INVALID_MANIFEST', subject: file })
    await writeFile(file, JSON.stringify(stored))
  })

  it('the folder reads back through DirSource (the dir: reader), every block of both versions', async () => {
    const folder = join(out, 'incremental') // written by the test above
    const source = await DirSource.open(folder)
    try {
      for (const v of [v1, v2]) {
        for (const b of await dagBlocks(ds.dir, v)) expect(Buffer.from(await source.get(b.cid)).equals(Buffer.from(b.bytes))).toBe(true)
      }
    } finally {
      await source.close()
    }
  })

  it('a relative dir: path is recorded as an absolute address', async () => {
    const target = createDirTarget({ path: 'some/relative' })
    expect(target.address).toBe(`dir:${join(process.cwd(), 'some/relative')}`)
  })
})

describe('target specs and sizes', () => {
  it.each([
    ['nowhere:/x', 'unknown target "nowhere"'],
    ['/just/a/path', 'unknown target "/just/a/path"'],
    ['dir:', 'dir: needs a folder'],
    ['kubo:', 'kubo: needs the RPC URL'],
  ])('%s is USAGE', async (spec, words) => {
    const e = await thrown(() => parseTarget(spec, {}))
    expect(e).toMatchObject({ code: 'USAGE' })
    expect((e as Error).message).toContain(words)
    expect((e as Error).message).toContain('expected dir:<path>, kubo:<rpc-url>, storacha[:<space-did>]')
  })

  it('dir: and kubo: specs make their targets; kubo: never shows credentials in its address', async () => {
    expect((await parseTarget('dir:/srv/cars', {})).address).toBe('dir:/srv/cars')
    expect((await parseTarget('kubo:http://127.0.0.1:5001', { CAIRN_KUBO_AUTH: 'u:p' })).address).toBe('kubo:http://127.0.0.1:5001')
    expect((await parseTarget('kubo:http://me:pw@127.0.0.1:5001/', {})).address).toBe('kubo:http://127.0.0.1:5001')
  })

  it('storacha specs reach the Storacha target module (loaded on demand), which asks for credentials', async () => {
    const empty = await tempDir('cairn-no-storacha-config-')
    try {
      const e = await thrown(() => parseTarget('storacha', { XDG_CONFIG_HOME: empty, HOME: empty }))
      expect(e).toBeInstanceOf(CairnError)
      expect((e as Error).message).not.toContain('unknown target')
      expect(['AUTH', 'USAGE']).toContain((e as CairnError).code)
    } finally {
      await rm(empty, { recursive: true, force: true })
    }
  })

  it.each([
    ['1048576', 1048576],
    ['100MiB', 100 * MiB],
    ['100 MiB', 100 * MiB],
    ['100m', 100 * MiB],
    ['1.5GiB', 1.5 * 1024 * MiB],
    ['500kB', 500_000],
    ['2MB', 2_000_000],
    ['64KiB', 65536],
    ['7b', 7],
  ])('parseByteSize(%s) = %d', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes)
  })

  it.each(['', 'ten', '-5', '0', '1 XB', '0.1b', '1e9'])('parseByteSize(%j) is USAGE', (text) => {
    expect(() => parseByteSize(text)).toThrow(expect.objectContaining({ code: 'USAGE' }))
  })
})

describe('retry', () => {
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
  it.each([
    ['ECONNRESET', reset, true],
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), true],
    ['socket hang up', new Error('socket hang up'), true],
    ['fetch failed (cause reset)', new TypeError('fetch failed', { cause: reset }), true],
    ['HTTP 503', new HttpStatusError(503, 'unavailable'), true],
    ['HTTP 429', new HttpStatusError(429, 'slow down'), true],
    ['HTTP 400', new HttpStatusError(400, 'bad'), false],
    ['a CairnError', new CairnError('PUBLISH_FAILED', 'no', { cause: reset }), false],
    ['ENOENT', Object.assign(new Error('nope'), { code: 'ENOENT' }), false],
    ['a plain error', new Error('bug'), false],
  ])('isTransient(%s) is %s', (_, e, expected) => {
    expect(isTransient(e)).toBe(expected)
  })

  it('retries transient failures with growing delays, then gives up naming what and the last error', async () => {
    const delays: number[] = []
    let calls = 0
    const e = await thrown(() =>
      retry(
        async () => {
          calls++
          throw reset
        },
        { what: 'Publishing x to kubo:http://h', subject: 'kubo:http://h' },
        { retries: 3, minDelayMs: 2, random: () => 0.999, onRetry: (i) => delays.push(i.delayMs) },
      ),
    )
    expect(calls).toBe(4)
    expect(delays).toEqual([2, 4, 8])
    expect(e).toMatchObject({
      code: 'PUBLISH_FAILED',
      subject: 'kubo:http://h',
      message: 'Publishing x to kubo:http://h failed after 4 attempts: read ECONNRESET',
    })
    expect((e as Error).cause).toBe(reset)
  })

  it('rethrows a failure that is not transient at once, and returns what succeeds', async () => {
    let calls = 0
    const bad = new CairnError('AUTH', 'no')
    expect(await thrown(() => retry(async () => (calls++, Promise.reject(bad)), { what: 'x' }, { minDelayMs: 1 }))).toBe(bad)
    expect(calls).toBe(1)
    let n = 0
    expect(await retry(async (attempt) => (++n < 3 ? Promise.reject(reset) : attempt), { what: 'x' }, { minDelayMs: 1 })).toBe(3)
  })
})

describe('cairn publish / cairn published', () => {
  let ds: TempDataset
  let out: string
  beforeAll(async () => {
    ds = await makeDataset({ 'data/rows.jsonl': jsonl([{ id: 1 }]), 'blob.bin': seededBytes(MiB + 5, 'cli') })
    await build({ dir: ds.dir, message: 'cli', date: FIXED_DATE })
    out = await tempDir('cairn-publish-cli-')
  })
  afterAll(async () => {
    await ds?.cleanup()
    if (out) await rm(out, { recursive: true, force: true })
  })

  it('publish --json prints the receipt (valid against its schema); published --json lists it', async () => {
    const folder = join(out, 'cars')
    const r = await cairn(['publish', '-C', ds.dir, '--to', `dir:${folder}`, '--shard-size', '512KiB', '--json'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const receipt = parseJson<Record<string, unknown>>(r)
    expect(validateWith('cli/publish.schema.json', receipt)).toEqual([])
    expect(receipt).toMatchObject({ target: `dir:${folder}` })
    expect((receipt.shards as unknown[]).length).toBeGreaterThan(1)

    const l = await cairn(['published', '-C', ds.dir, '--json'])
    expect(l.exitCode, l.stdout + l.stderr).toBe(0)
    const list = parseJson<unknown[]>(l)
    expect(validateWith('cli/published.schema.json', list)).toEqual([])
    expect(list).toEqual([receipt])
    const none = await cairn(['published', '-C', ds.dir, 'HEAD', '--json'])
    expect(parseJson<unknown[]>(none)).toHaveLength(1)
  })

  it('human output names the version, the target and the shards', async () => {
    const folder = join(out, 'human')
    const r = await cairn(['publish', '-C', ds.dir, '--to', `dir:${folder}`])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`^bag\\w+ published to dir:${folder.replace(/[/.]/g, '\\$&')}\\n  1 CAR shard \\(`))
    const l = await cairn(['published', '-C', ds.dir])
    expect(l.stdout).toContain(`dir:${folder}`)
  })

  it('end to end: node bin/run.js publish --to dir:… then published', async () => {
    const folder = join(out, 'spawned')
    const r = await spawnCairn(['publish', '--to', `dir:${folder}`, '--shard-size', '100MiB'], { cwd: ds.dir })
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stderr).toBe('') // stderr is not a terminal: no progress
    const root = r.stdout.toString('utf8').split(' ')[0]
    expect(await readdir(join(folder, 'versions'))).toEqual([root])
    const l = await spawnCairn(['published', 'HEAD', '--json'], { cwd: ds.dir })
    expect(l.exitCode, l.stderr).toBe(0)
    expect((JSON.parse(l.stdout.toString('utf8')) as { target: string }[]).map((x) => x.target)).toContain(`dir:${folder}`)
  })

  it('a bad target or size is a usage error (exit 2)', async () => {
    const a = await cairn(['publish', '-C', ds.dir, '--to', 'ftp://x', '--json'])
    expect(a.exitCode).toBe(2)
    expect(parseJson<{ error: { code: string } }>(a).error.code).toBe('USAGE')
    const b = await cairn(['publish', '-C', ds.dir, '--to', `dir:${out}/x`, '--shard-size', 'lots'])
    expect(b.exitCode).toBe(2)
    expect(b.stderr).toContain('"lots" is not a size')
  })
})

function revive(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value)
    if (keys.length === 1 && keys[0] === '/') return CID.parse((value as { '/': string })['/'])
  }
  return value
}
