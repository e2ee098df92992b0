/**
 * `clone` and `cat`: from `cairn serve`, a CAR, a `dir:` folder and a loopback gateway serving the
 * gateway-conformance fixtures; misbehaving gateways; resume; include/exclude; hostile paths; and the
 * clone being a dataset where `verify` and `diff` work at once.
 */
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CarWriter } from '@ipld/car/writer'
import { createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  build,
  cat,
  CID,
  clone,
  diff,
  isCairnError,
  pack,
  serve,
  verify,
  type CairnError,
  type CloneProgress,
  type ServeHandle,
} from '../src/index.js'
import { resolvePath } from '../src/cat.js'
import { openSources } from '../src/sources/index.js'
import { cidFor, DAG_JSON, RAW } from '../src/cid.js'
import { validateWith } from '../src/schemas.js'
import { toJsonValue } from '../commands/_base.js'
import { FIXED_DATE, listFiles, makeDataset, seededBytes, tempDir, thrown, type TempDataset } from './helpers/dataset.js'
import { carsSource, fixture, fixtureGateway, testGateway, type Misbehaviour, type TestGateway } from './helpers/gateways.js'
import type { GatewayOptions } from '../src/sources/gateway.js'

const MiB = 1024 * 1024

/** The files of the test release: small and multi-block, nested, tabular and not. */
const FILES = {
  'README.md': '# clone test\n',
  'train/a.jsonl': '{"id":1,"text":"one"}\n{"id":2,"text":"two"}\n',
  'train/b.jsonl': '{"id":3,"text":"three"}\n',
  'train/big.bin': seededBytes(2 * MiB + 12345, 'big'),
  'eval/c.csv': 'id,score\n1,0.5\n2,0.25\n',
  'eval/deep/d.txt': 'deep file\n',
  'docs/notes.txt': 'notes\n',
}

let ds: TempDataset
let v1: CID
let v2: CID
let car1: string
let car2: string
let work: string

beforeAll(async () => {
  ds = await makeDataset(FILES)
  v1 = (await build({ dir: ds.dir, message: 'first', date: FIXED_DATE })).version
  await ds.write({ 'train/b.jsonl': '{"id":3,"text":"three!"}\n', 'docs/more.txt': 'more\n' })
  v2 = (await build({ dir: ds.dir, message: 'second', date: new Date('2025-02-01T00:00:00Z') })).version
  work = await tempDir('cairn-clone-test-')
  car1 = join(work, 'v1.car')
  car2 = join(work, 'v2.car')
  await pack({ dir: ds.dir, ref: v1.toString(), output: car1 })
  await pack({ dir: ds.dir, ref: v2.toString(), output: car2 })
})

afterAll(async () => {
  await ds?.cleanup()
  if (work) await rm(work, { recursive: true, force: true })
})

const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

async function fresh(name: string): Promise<string> {
  const dir = join(await tempDir('cairn-clone-'), name)
  closers.push(() => rm(join(dir, '..'), { recursive: true, force: true }))
  return dir
}

async function startServe(): Promise<ServeHandle> {
  const handle = await serve({ dir: ds.dir, port: 0 })
  closers.push(() => handle.close())
  return handle
}

async function gateway(paths: readonly string[], options: Parameters<typeof fixtureGateway>[1] = {}): Promise<TestGateway> {
  const gw = await fixtureGateway(paths, options)
  closers.push(() => gw.close())
  return gw
}

/** Data files of a clone (everything but `.cairn/`), relative, sorted. */
async function dataFiles(dir: string): Promise<string[]> {
  const all = await listFiles(dir).catch(() => [] as string[])
  return all
    .map((f) => f.slice(dir.length + 1))
    .filter((f) => !f.startsWith('.cairn/'))
    .sort()
}

async function expectVerified(dir: string, version: CID): Promise<void> {
  const report = await verify({ dataset: dir, dir })
  expect(report.version.toString()).toBe(version.toString())
  expect({ missing: report.missing, extra: report.extra, modified: report.modified, card: report.card }).toEqual({
    missing: [],
    extra: [],
    modified: [],
    card: 'same',
  })
  expect(report.ok).toBe(true)
}

describe('clone a cairn version', () => {
  it('from cairn serve: the clone is a dataset where verify and diff work at once', async () => {
    const server = await startServe()
    const dir = await fresh('from-serve')
    const progress: CloneProgress[] = []
    const result = await clone({ cid: v2.toString(), dir, from: [server.url], onProgress: (p) => progress.push(p) })
    expect(result).toMatchObject({ kind: 'version', dir, resumed: false, written: 8, skipped: 0, excluded: 0, failures: [] })
    expect(result.cid.toString()).toBe(v2.toString())
    expect(result.metadataBlocks).toBeGreaterThanOrEqual(4)
    expect(progress.some((p) => p.kind === 'files' && p.files === 8)).toBe(true)
    expect(validateWith('cli/clone.schema.json', toJsonValue(result))).toEqual([])
    expect(digest(await readFile(join(dir, 'train/big.bin')))).toBe(digest(FILES['train/big.bin']))
    await expectVerified(dir, v2)
    // diff in the clone: HEAD against the first version, whose blocks come from its CAR
    const d = await diff({ dir, a: v1.toString(), b: 'HEAD', from: car1 })
    expect(d.shards.map((s) => `${s.status} ${s.path}`)).toEqual(['added docs/more.txt', 'modified train/b.jsonl'])
    expect(d.commonAncestor?.toString()).toBe(v1.toString())
  })

  it('from a CAR file, and from a dataset folder (its store)', async () => {
    const dir = await fresh('from-car')
    const result = await clone({ cid: v1.toString(), dir, from: [car1] })
    expect(result.written).toBe(7)
    await expectVerified(dir, v1)
    const dir2 = await fresh('from-store')
    await clone({ cid: v1.toString(), dir: dir2, from: [ds.dir] })
    await expectVerified(dir2, v1)
  })

  it('with --store-blocks the clone can pack the version itself, byte-identical to the original CAR', async () => {
    const dir = await fresh('store-blocks')
    await clone({ cid: v1.toString(), dir, from: [car1], storeFileBlocks: true })
    const again = join(dir, '..', 'again.car')
    await pack({ dir, output: again })
    expect(digest(await readFile(again))).toBe(digest(await readFile(car1)))
  })

  it('from a dir: folder made by publish', async () => {
    const { publish } = await import('../src/index.js')
    const folder = join(work, 'published')
    await publish({ dir: ds.dir, ref: v1.toString(), to: `dir:${folder}`, shardSize: MiB })
    await publish({ dir: ds.dir, ref: v2.toString(), to: `dir:${folder}`, shardSize: MiB })
    const dir = await fresh('from-dir')
    const result = await clone({ cid: v2.toString(), dir, from: [`dir:${folder}`] })
    expect(result.failures).toEqual([])
    await expectVerified(dir, v2)
    // and cairn serve over the dir: folder alone
    const handle = await serve({ dirs: [folder], port: 0, dir: undefined })
    closers.push(() => handle.close())
    const dir2 = await fresh('from-serve-dir')
    await clone({ cid: v1.toString(), dir: dir2, from: [handle.url] })
    await expectVerified(dir2, v1)
  })

  it('include and exclude clone part of a release', async () => {
    const dir = await fresh('partial')
    const result = await clone({ cid: v2.toString(), dir, from: [car2], include: ['train/*', '*.txt'], exclude: ['big.bin'] })
    expect(await dataFiles(dir)).toEqual([
      'cairn.json',
      'docs/more.txt',
      'docs/notes.txt',
      'eval/deep/d.txt',
      'train/a.jsonl',
      'train/b.jsonl',
    ])
    expect(result).toMatchObject({ totalFiles: 5, written: 5, excluded: 3 })
    // verify checks the part the clone holds, and says which part
    const report = await verify({ dataset: dir, dir })
    expect(report).toMatchObject({
      ok: true,
      missing: [],
      partial: { selections: [{ include: ['train/*', '*.txt'], exclude: ['big.bin'] }], leftOut: 3 },
    })
    // a build there would commit the files never fetched as deleted: refused, saying how to fetch them
    expect(await thrown(() => build({ dir }))).toMatchObject({ code: 'NOT_A_DATASET', message: expect.stringContaining('partial clone') })
    // a pack needs a file the clone left out: which, and how to get it
    const e = await thrown(() => pack({ dir, output: join(dir, '..', 'partial.car') }))
    expect(e).toMatchObject({
      code: 'MISSING_BLOCK',
      message: expect.stringMatching(/(README\.md|eval\/c\.csv|train\/big\.bin) .* was left out of this partial clone/),
    })
    expect((e as CairnError).hint).toContain(`cairn clone ${v2}`)
    expect(await readdir(join(dir, '..'))).not.toContain('partial.car')
    // the rest later, into the same folder: resumed, the first five kept
    const rest = await clone({ cid: v2.toString(), dir, from: [car2] })
    expect(rest).toMatchObject({ resumed: true, skipped: 5, written: 3 })
    await expectVerified(dir, v2)
    expect((await verify({ dataset: dir, dir })).partial).toBeUndefined()
  })

  it('into a folder holding something else: TARGET_NOT_EMPTY, nothing touched', async () => {
    const dir = await fresh('occupied')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'mine.txt'), 'mine')
    const e = (await thrown(() => clone({ cid: v1.toString(), dir, from: [car1] }))) as CairnError
    expect(e.code).toBe('TARGET_NOT_EMPTY')
    expect(await readdir(dir)).toEqual(['mine.txt'])
    // a clone of another version is not "the same dataset" either
    const other = await fresh('other-version')
    await clone({ cid: v1.toString(), dir: other, from: [car1] })
    expect(((await thrown(() => clone({ cid: v2.toString(), dir: other, from: [car2] }))) as CairnError).code).toBe('TARGET_NOT_EMPTY')
  })

  it('resumes an interrupted clone: complete files are re-hashed and kept, damaged ones fetched again', async () => {
    const bigCid = (await entryCid(v1, 'train/big.bin')) as CID
    const secondLeaf = (await leavesOf(bigCid))[1]
    // the only source lacks one block of big.bin (the last file): the clone fails, the others are in place
    const src = await carsSource([car1])
    closers.push(() => src.close())
    const leaky = await testGateway(src, { missing: (cid) => cid.equals(secondLeaf) })
    closers.push(() => leaky.close())
    const dir = await fresh('resume')
    const e = (await thrown(() => clone({ cid: v1.toString(), dir, from: [leaky.url], jobs: 1 }))) as CairnError
    expect(e.code).toBe('FETCH_FAILED')
    expect(e.subject).toBe(secondLeaf.toString())
    expect(e.message).toContain(leaky.url)
    const before = await dataFiles(dir)
    expect(before).toEqual(['README.md', 'cairn.json', 'docs/notes.txt', 'eval/c.csv', 'eval/deep/d.txt', 'train/a.jsonl', 'train/b.jsonl'])
    // every file at a final path is whole and right
    for (const f of before.filter((f) => f !== 'cairn.json'))
      expect(digest(await readFile(join(dir, f)))).toBe(digest(FILES[f as keyof typeof FILES]))
    expect(await verify({ dataset: join(dir), dir }).catch((x: unknown) => x)).toHaveProperty('code', 'BAD_REF') // HEAD moves last
    await writeFile(join(dir, 'README.md'), '# tampered\n')
    // what a kill midway leaves: a partial file under the temporary name
    const partials = join(dir, '.cairn', 'clone-tmp')
    await mkdir(partials, { recursive: true })
    await writeFile(join(partials, `clone-${createHash('sha256').update('train/big.bin').digest('hex').slice(0, 32)}.part`), 'half a file')
    const again = await clone({ cid: v1.toString(), dir, from: [car1] })
    expect(again).toMatchObject({ resumed: true, skipped: 5, written: 2 })
    await expectVerified(dir, v1)
    expect(await readdir(join(dir, '.cairn'))).not.toContain('clone-tmp')
  })

  it('never writes through a symbolic link planted in a resumed clone', async () => {
    const dir = await fresh('symlinked')
    await clone({ cid: v1.toString(), dir, from: [car1], include: ['README.md'] })
    const outside = await fresh('outside')
    await mkdir(outside, { recursive: true })
    await symlink(outside, join(dir, 'train'))
    const e = (await thrown(() => clone({ cid: v1.toString(), dir, from: [car1] }))) as CairnError
    expect(e.code).toBe('TARGET_NOT_EMPTY')
    expect(await readdir(outside)).toEqual([])
  })

  it('without a folder, a version goes to its dataset name, unless that name is not one plain segment', async () => {
    const cwd = process.cwd()
    const here = await fresh('cwd')
    await mkdir(here, { recursive: true })
    process.chdir(here)
    try {
      const named = await clone({ cid: v1.toString(), from: [car1], include: ['README.md'] })
      expect(named.dir).toBe(join(here, 'test-data'))
      // a hand-made version named "../escaped": the CID names the folder instead
      const hostile = await writeCarOf(join(work, 'named.car'), 'ok.txt', '../escaped')
      const r = await clone({ cid: hostile.root.toString(), from: [hostile.path] })
      expect(r.dir).toBe(join(here, hostile.root.toString()))
      expect((await readdir(join(here, '..'))).sort()).toEqual(['cwd'])
    } finally {
      process.chdir(cwd)
    }
  })

  it('refuses a version whose shard index names a path outside the folder', async () => {
    // a hand-made hostile version: index entry "../escape.txt" (valid dag-json, broken path rule)
    const file = await writeCarOf(join(work, 'hostile.car'), '../escape.txt')
    const dir = await fresh('hostile')
    const e = (await thrown(() => clone({ cid: file.root.toString(), dir, from: [file.path] }))) as CairnError
    expect(['BAD_PATH', 'INVALID_MANIFEST']).toContain(e.code)
    expect(e.message).toMatch(/\.\.\/escape\.txt|path/)
    // the fresh target is removed again: nothing inside it, nothing outside
    expect(await readdir(join(dir, '..'))).toEqual([])
  })

  // the paths are checked as the index streams by, without holding them all
  it.each([
    { leaves: [['a/b', 'a/b.txt', 'a/b/c']], code: 'BAD_PATH', says: /"a\/b" is both a file and a folder \("a\/b\/c" is inside it\)/ },
    {
      leaves: [
        ['a/b', 'a/b-x'],
        ['a/b.txt', 'a/b/c'],
      ],
      code: 'BAD_PATH',
      says: /"a\/b" is both a file and a folder/,
    },
    { leaves: [['a', 'c'], ['b']], code: 'INVALID_MANIFEST', says: /lists "b" after "c"/ },
    {
      leaves: [
        ['a', 'b'],
        ['b', 'c'],
      ],
      code: 'INVALID_MANIFEST',
      says: /lists "b" after "b"/,
    },
  ])('refuses a shard index whose paths clash across entries and nodes: $leaves', async ({ leaves, code, says }) => {
    const file = await writeVersionCar(join(work, `clash-${leaves.flat().length}-${code}.car`), leaves)
    const dir = await fresh(`clash-${leaves.flat().join('-').replace(/[/.]/g, '_')}`)
    const e = (await thrown(() => clone({ cid: file.root.toString(), dir, from: [file.path] }))) as CairnError
    expect(e.code).toBe(code)
    expect(e.message).toMatch(says)
    expect(await readdir(join(dir, '..'))).toEqual([])
  })
})

describe('a version of small files comes as one CAR of its tree', () => {
  // the tree lists folder `a` before `a.txt` and `a-b.txt` (name order), paths put `a/…` after both;
  // three files hold the same bytes (one block, sent once)
  const SMALL = {
    'a.txt': 'same bytes\n',
    'a-b.txt': 'other\n',
    'a/b.txt': 'same bytes\n',
    'a/c/d.txt': 'same bytes\n',
    'z.jsonl': '{"id":1}\n',
  }
  let small: TempDataset
  let version: CID
  let tree: CID
  let car: string
  beforeAll(async () => {
    small = await makeDataset(SMALL)
    const built = await build({ dir: small.dir, date: FIXED_DATE })
    version = built.version
    tree = built.manifest.tree
    car = join(work, 'small.car')
    await pack({ dir: small.dir, ref: version.toString(), output: car })
  })
  afterAll(async () => small?.cleanup())

  async function smallGateway(options: Parameters<typeof testGateway>[1] = {}): Promise<TestGateway> {
    const src = await carsSource([car])
    closers.push(() => src.close())
    const gw = await testGateway(src, options)
    closers.push(() => gw.close())
    return gw
  }

  it('a fresh clone of every file makes one CAR request, none per file, whatever the order of the tree', async () => {
    const gw = await smallGateway()
    const dir = await fresh('one-stream')
    const result = await clone({ cid: version.toString(), dir, from: [gw.url] })
    expect(result).toMatchObject({ written: 5, failures: [] })
    expect(gw.requests.filter((r) => r.includes('format=car'))).toEqual([expect.stringContaining(`/ipfs/${tree}?`)])
    const other = cidFor(RAW, new TextEncoder().encode(SMALL['a-b.txt']))
    expect(gw.requests.some((r) => r.startsWith(`/ipfs/${other}?`))).toBe(false)
    expect(await readFile(join(dir, 'a/c/d.txt'), 'utf8')).toBe('same bytes\n')
    await expectVerified(dir, version)
    // a filtered clone fetches each file it wants on its own
    const before = gw.requests.length
    await clone({ cid: version.toString(), dir: await fresh('one-stream-part'), from: [gw.url], include: ['a-b.txt'] })
    expect(gw.requests.slice(before).some((r) => r.startsWith(`/ipfs/${other}?`))).toBe(true)
  })

  it('a release with a file of several blocks is fetched a file at a time', async () => {
    const src = await carsSource([car1])
    closers.push(() => src.close())
    const gw = await testGateway(src)
    closers.push(() => gw.close())
    await clone({ cid: v1.toString(), dir: await fresh('per-file'), from: [gw.url] })
    const big = (await entryCid(v1, 'train/big.bin'))!
    expect(gw.requests.filter((r) => r.includes('format=car'))).toEqual([expect.stringContaining(`/ipfs/${big}?`)])
  })

  it('a CAR that sends more than 32 MiB nobody asked for is given up: the files come block by block', async () => {
    const junk = Array.from({ length: 33 }, (_, k) => {
      const bytes = seededBytes(MiB, `junk-${k}`)
      return { cid: cidFor(RAW, bytes), bytes }
    })
    const gw = await smallGateway({ extra: junk })
    const dir = await fresh('flooded')
    const result = await clone({ cid: version.toString(), dir, from: [gw.url] })
    expect(result.failures.map((f) => f.message)).toContainEqual(expect.stringMatching(/sent over 33554432 bytes of blocks not asked for/))
    await expectVerified(dir, version)
  })

  it.each(['truncate-car', 'wrong-bytes'] as const)(
    'a CAR that breaks (%s): what it did not bring comes from the next source',
    async (mode) => {
      const bad = await smallGateway({ misbehave: mode })
      const dir = await fresh(`small-${mode}`)
      // in order: the tree's CAR comes from the first source (spreading, whichever answered the
      // metadata fastest gets it, and the CAR file often does: test/clone-multi.test.ts spreads)
      const list = await openSources([bad.url, car])
      closers.push(() => list.close())
      const result = await clone({ cid: version.toString(), dir, source: list })
      expect(result.failures.length).toBeGreaterThan(0)
      expect(result.failures.every((f) => f.source === bad.url)).toBe(true)
      await expectVerified(dir, version)
    },
  )
})

describe('misbehaving gateways: the CID and the source are named, the next source is used', () => {
  // Bad bytes, a broken CAR or an HTML page are found when they arrive: those cases keep the default
  // timeouts (30 s, 15 s idle), so a slow answer on a loaded machine is never taken for a failure of
  // either gateway. A gateway that hangs or stalls is found out by a clock: only that clock is short
  // (the answer's for a hang, the body's for a stall), and the next source is then a CAR file, which no
  // gateway timeout applies to, so a loaded machine cannot make the good source fail either.
  const modes: readonly { mode: Misbehaviour; code: string; says: RegExp; timeouts?: GatewayOptions }[] = [
    { mode: 'wrong-bytes', code: 'CORRUPT_BLOCK', says: /wrong bytes/ },
    { mode: 'truncate-car', code: 'FETCH_FAILED', says: /the CAR ends or breaks after \d+ blocks/ },
    { mode: 'html', code: 'FETCH_FAILED', says: /text\/html/ },
    { mode: 'hang', code: 'FETCH_FAILED', says: /no answer within 300 ms/, timeouts: { timeoutMs: 300 } },
    { mode: 'stall', code: 'FETCH_FAILED', says: /no data for 300 ms/, timeouts: { idleTimeoutMs: 300 } },
  ]
  it.each(modes)('$mode', async ({ mode, code, says, timeouts }) => {
    const src = await carsSource([car1])
    closers.push(() => src.close())
    const bad = await testGateway(src, { misbehave: mode })
    closers.push(() => bad.close())
    const good = timeouts ? undefined : await testGateway(src)
    if (good) closers.push(() => good.close())
    const dir = await fresh(`bad-${mode}`)
    // sources tried in order, as cat and the other readers do (a clone from several spreads its
    // requests over them instead: test/clone-multi.test.ts)
    const list = await openSources([bad.url, good?.url ?? car1], timeouts ?? {})
    closers.push(() => list.close())
    const result = await clone({ cid: v1.toString(), dir, source: list })
    expect(result.failures.length).toBeGreaterThan(0)
    expect(validateWith('cli/clone.schema.json', toJsonValue(result))).toEqual([])
    const first = result.failures.find((f) => f.source === bad.url)!
    expect(first.code).toBe(code)
    expect(first.message).toMatch(says)
    expect(first.message).toContain(bad.url)
    expect(first.message).toContain(first.cid)
    expect(result.failures.every((f) => f.source === bad.url)).toBe(true)
    if (good) expect(good.requests.length).toBeGreaterThan(0)
    await expectVerified(dir, v1)
  })

  it('a gateway that is down (connection refused)', async () => {
    const src = await carsSource([car1])
    closers.push(() => src.close())
    const gone = await testGateway(src)
    await gone.close()
    const dir = await fresh('refused')
    const result = await clone({ cid: v1.toString(), dir, from: [gone.url, car1] })
    expect(result.failures[0]).toMatchObject({ source: gone.url, cid: v1.toString(), code: 'FETCH_FAILED' })
    expect(result.failures[0].message).toMatch(/ECONNREFUSED/)
    // tried after the others from then on: one failure, not one per block
    expect(result.failures.length).toBe(1)
    await expectVerified(dir, v1)
  })

  it('redirects are followed (public gateways redirect to subdomains), to another host too', async () => {
    const src = await carsSource([car1])
    closers.push(() => src.close())
    const good = await testGateway(src)
    closers.push(() => good.close())
    const hops: string[] = []
    const redirector = createServer((req, res) => {
      hops.push(req.url ?? '')
      res.writeHead(req.url?.startsWith('/hop/') ? 307 : 302, {
        location: req.url?.startsWith('/hop/') ? `${good.url}${req.url.slice(4)}` : `/hop${req.url ?? ''}`,
      })
      res.end()
    })
    await new Promise<void>((done) => redirector.listen(0, '127.0.0.1', done))
    closers.push(() => new Promise<void>((done) => redirector.close(() => done())))
    const url = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`
    const dir = await fresh('redirected')
    const result = await clone({ cid: v1.toString(), dir, from: [url] })
    expect(result.failures).toEqual([])
    expect(hops.some((h) => h.startsWith('/hop/ipfs/'))).toBe(true)
    expect(good.requests.length).toBeGreaterThan(0)
    await expectVerified(dir, v1)
  })

  it('blocks not in the DAG are ignored', async () => {
    // v2's release CAR does not hold v1 (a release carries no history): the gateway serves both CARs
    const src = await carsSource([car1, car2])
    closers.push(() => src.close())
    const extra = [{ cid: v2, bytes: await src.get(v2) }]
    const noisy = await testGateway(src, { extra })
    closers.push(() => noisy.close())
    const dir = await fresh('noisy')
    const result = await clone({ cid: v1.toString(), dir, from: [noisy.url] })
    expect(result.failures).toEqual([])
    await expectVerified(dir, v1)
  })

  it('a missing block in the CAR is fetched block by block from the next source', async () => {
    const src = await carsSource([car1])
    closers.push(() => src.close())
    const bigCid = (await entryCid(v1, 'train/big.bin'))!
    const secondLeaf = (await leavesOf(bigCid))[1]
    const holey = await testGateway(src, { missing: (cid) => cid.equals(secondLeaf) })
    closers.push(() => holey.close())
    const dir = await fresh('holey')
    // in order: the CAR of big.bin comes from the first source (test/clone-multi.test.ts spreads)
    const list = await openSources([holey.url, car1])
    closers.push(() => list.close())
    const result = await clone({ cid: v1.toString(), dir, source: list })
    expect(result.failures.map((f) => [f.cid, f.source])).toContainEqual([secondLeaf.toString(), holey.url])
    await expectVerified(dir, v1)
  })

  it('when every source fails, one with wrong bytes: CORRUPT_BLOCK (integrity, whichever source) naming the CID and each source, no unverified byte at a final path', async () => {
    const src = await carsSource([car1])
    closers.push(() => src.close())
    const bad1 = await testGateway(src, { misbehave: 'wrong-bytes' })
    const bad2 = await testGateway(src, { misbehave: 'html' })
    closers.push(
      () => bad1.close(),
      () => bad2.close(),
    )
    const dir = await fresh('all-bad')
    const e = (await thrown(() => clone({ cid: v1.toString(), dir, from: [bad1.url, bad2.url], jobs: 1 }))) as CairnError
    expect(e.code).toBe('CORRUPT_BLOCK')
    expect(e.message).toContain(bad1.url)
    expect(e.message).toContain(bad2.url)
    expect(e.subject).toMatch(/^bafk/)
    // every file at a final path is whole and right; raw leaves all came corrupted, so none was written
    expect(await dataFiles(dir)).toEqual(['cairn.json'])
  })
})

describe('clone plain UnixFS from a gateway serving the conformance fixtures', () => {
  const dirWithFiles = fixture('path_gateway_unixfs', 'dir-with-files.car')

  it('a directory with duplicate files and a multi-block file', async () => {
    const gw = await gateway([dirWithFiles])
    const dir = await fresh('unixfs-dir')
    const result = await clone({ cid: 'bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy', dir, from: [gw.url] })
    expect(result).toMatchObject({ kind: 'directory', written: 4, unsupported: [] })
    expect(await dataFiles(dir)).toEqual(['ascii-copy.txt', 'ascii.txt', 'hello.txt', 'multiblock.txt'])
    expect(await readFile(join(dir, 'hello.txt'), 'utf8')).toBe('hello world\n')
    expect(await readFile(join(dir, 'ascii.txt'), 'utf8')).toBe('hello application/vnd.ipld.car\n')
    expect((await readFile(join(dir, 'multiblock.txt'))).length).toBe(1026)
    expect(await readdir(dir)).not.toContain('.cairn-clone')
  })

  it('resumes an interrupted UnixFS clone, checking files on disk against the DAG without fetching their leaves', async () => {
    const dagRoot = CID.parse('bafybeidh6k2vzukelqtrjsmd4p52cpmltd2ufqrdtdg6yigi73in672fwu')
    const car = fixture('trustless_gateway_car', 'subdir-with-mixed-block-files.car')
    const full = await gateway([car])
    const dir = await fresh('unixfs-resume')
    await clone({ cid: dagRoot.toString(), dir, from: [full.url] })
    const files = await dataFiles(dir)
    // as if interrupted: the work folder is back and one file is gone
    await mkdir(join(dir, '.cairn-clone'))
    await writeFile(join(dir, '.cairn-clone', 'root'), `${dagRoot}\n`)
    await rm(join(dir, files[0]))
    const again = await clone({ cid: dagRoot.toString(), dir, from: [full.url] })
    expect(again).toMatchObject({ resumed: true, written: 1, skipped: files.length - 1 })
    expect(await dataFiles(dir)).toEqual(files)
  })

  it.each([
    [
      'trustless_gateway_car',
      'single-layer-hamt-with-multi-block-files.car',
      'bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i',
    ],
    ['trustless_gateway_car', 'subdir-with-mixed-block-files.car', 'bafybeidh6k2vzukelqtrjsmd4p52cpmltd2ufqrdtdg6yigi73in672fwu'],
    ['path_gateway_dag', 'dag-pb.car', 'bafybeiegxwlgmoh2cny7qlolykdf7aq7g6dlommarldrbm7c4hbckhfcke'],
    ['path_gateway_dag', 'gateway-json-cbor.car', 'bafybeiafyvqlazbbbtjnn6how5d6h6l6rxbqc4qgpbmteaiskjrffmyy4a'],
    ['path_gateway_unixfs', 'dir-with-percent-encoded-filename.car', 'bafybeig675grnxcmshiuzdaz2xalm6ef4thxxds6o6ypakpghm5kghpc34'],
  ])('%s/%s: every file equals what cat serves', async (folder, name, root) => {
    const gw = await gateway([fixture(folder, name)])
    const dir = await fresh('fixture')
    const result = await clone({ cid: root, dir, from: [gw.url] })
    const files = await dataFiles(dir)
    expect(files.length).toBe(result.written)
    expect(files.length).toBeGreaterThan(0)
    const src = await openSources([fixture(folder, name)])
    closers.push(() => src.close())
    // every file of the small fixtures; a sample of the HAMT's (each cat is a few requests)
    for (const f of files.filter((_, i) => files.length < 50 || i % 10 === 0)) {
      const out = collect()
      await cat({ cid: `${root}/${f}`, source: src, output: out.stream })
      expect(digest(out.bytes())).toBe(digest(await readFile(join(dir, f))))
    }
    if (name.includes('hamt')) expect(files.length).toBeGreaterThan(100)
    if (name === 'gateway-json-cbor.car') expect(files).toContain('ą/ę/file-źł.txt')
  })

  it('skips what is not a UnixFS file or directory: a symlink, a dag-cbor node', async () => {
    const gw = await gateway([
      fixture('path_gateway_unixfs', 'symlink.car'),
      fixture('trustless_gateway_car', 'dir-with-dag-cbor-with-links.car'),
    ])
    const a = await fresh('symlink')
    const r1 = await clone({ cid: 'QmWvY6FaqFMS89YAQ9NAPjVP4WZKA1qbHbicc9HeSKQTgt', dir: a, from: [gw.url] })
    expect(await dataFiles(a)).toEqual(['foo'])
    expect(r1.unsupported).toEqual([{ path: 'bar', reason: 'a symbolic link (not written)' }])
    const b = await fresh('dag-cbor')
    const r2 = await clone({ cid: 'bafybeia264q44a3kmfc2otctzu4egp2k235o3t7mslz2yjraymp4nv6asi', dir: b, from: [gw.url] })
    expect(r2.unsupported).toEqual([{ path: 'document', reason: 'not a UnixFS file or directory (codec 0x71)' }])
  })

  it('a single file CID (5 raw leaves of 256 B) is written to the given path; a second run keeps it', async () => {
    const gw = await gateway([dirWithFiles])
    const src = await openSources([dirWithFiles])
    closers.push(() => src.close())
    const { cid } = await resolvePath(src, CID.parse('bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy'), 'multiblock.txt')
    const target = join(await fresh('file'), 'multi.txt')
    const r = await clone({ cid: cid.toString(), dir: target, from: [gw.url] })
    expect(r).toMatchObject({ kind: 'file', dir: target, written: 1, totalBytes: 1026 })
    const out = collect()
    await cat({ cid: cid.toString(), source: src, output: out.stream })
    expect(digest(await readFile(target))).toBe(digest(out.bytes()))
    // its DAG is not cairn's profile (256 B chunks): a second run checks it leaf by leaf against the DAG's nodes
    const before = gw.requests.length
    expect(await clone({ cid: cid.toString(), dir: target, from: [gw.url] })).toMatchObject({ resumed: true, written: 0, skipped: 1 })
    expect(gw.requests.slice(before).every((r) => r.includes(cid.toString()))).toBe(true) // the root node only, no leaf
    // a changed byte is caught: the file is not the CID's, so the clone refuses to overwrite it
    const bytes = await readFile(target)
    bytes[600] ^= 1
    await writeFile(target, bytes)
    expect(((await thrown(() => clone({ cid: cid.toString(), dir: target, from: [gw.url] }))) as CairnError).code).toBe('TARGET_NOT_EMPTY')
  })

  it('a DAG with a missing block fails with FETCH_FAILED (a gateway 404 is no proof the block is absent) and leaves nothing at the final path', async () => {
    const gw = await gateway([fixture('trustless_gateway_car', 'file-3k-and-3-blocks-missing-block.car')])
    const target = join(await fresh('missing'), 'file.bin')
    const e = (await thrown(() =>
      clone({ cid: 'QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk', dir: target, from: [gw.url] }),
    )) as CairnError
    expect(e.code).toBe('FETCH_FAILED')
    expect(e.message).toContain(gw.url)
    expect(await readdir(join(target, '..'))).toEqual([])
  })

  it.each([
    ['outside-root.car', 'bafybeicaj7kvxpcv4neaqzwhrqqmdstu4dhrwfpknrgebq6nzcecfucvyu', '../foo'],
    ['inside-root.car', 'bafybeibfevfxlvxp5vxobr5oapczpf7resxnleb7tkqmdorc4gl5cdva3y', '../file'],
  ])('hostile %s: BAD_PATH, nothing written inside or outside the target', async (name, root, bad) => {
    const car = fixture('path_gateway_tar', name)
    for (const from of [car, (await gateway([car])).url]) {
      const parent = await fresh('tar')
      const dir = join(parent, 'inner', 'target')
      const e = (await thrown(() => clone({ cid: root, dir, from: [from] }))) as CairnError
      expect(isCairnError(e, 'BAD_PATH')).toBe(true)
      expect(e.message).toContain(JSON.stringify(bad))
      expect(await listFiles(join(parent, '..'))).toEqual([])
    }
  })
})

describe('the commands', () => {
  it('cairn clone --json validates against its schema; cairn cat writes the shard to stdout', async () => {
    const { cairn, parseJson } = await import('./helpers/cli.js')
    const dir = await fresh('cli')
    const r = await cairn(['clone', v1.toString(), dir, '--from', car1, '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    const json = parseJson<{ written: number; cid: { '/': string } }>(r)
    expect(validateWith('cli/clone.schema.json', json)).toEqual([])
    expect(json).toMatchObject({ written: 7, cid: { '/': v1.toString() } })
    const c = await cairn(['cat', `${v1}/eval/c.csv`, '--from', car1])
    expect(c.exitCode, c.stderr).toBe(0)
    expect(c.stdout).toBe(FILES['eval/c.csv'])
    const bad = await cairn(['clone', v1.toString(), dir, '--from', car1, '--json'])
    expect(bad.exitCode).toBe(0) // the same clone again: resumed, nothing fetched
    expect(parseJson<{ resumed: boolean; skipped: number }>(bad)).toMatchObject({ resumed: true, skipped: 7 })
  })
})

describe('cat', () => {
  it('streams a shard of a version, looked up in its index', async () => {
    const out = collect()
    const r = await cat({ cid: `${v2}/train/big.bin`, from: [car2], output: out.stream })
    expect(r.size).toBe(FILES['train/big.bin'].length)
    expect(digest(out.bytes())).toBe(digest(FILES['train/big.bin']))
  })

  it('resolves a name in a HAMT directory', async () => {
    const car = fixture('trustless_gateway_car', 'single-layer-hamt-with-multi-block-files.car')
    const src = await carsSource([car])
    closers.push(() => src.close())
    const gw = await testGateway(src)
    closers.push(() => gw.close())
    const out = collect()
    await cat({ cid: 'bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i/685.txt', from: [gw.url], output: out.stream })
    expect(out.bytes().length).toBeGreaterThan(0)
  })

  it('says what is wrong: no such shard, a version without a path', async () => {
    const out = collect()
    expect(((await thrown(() => cat({ cid: `${v2}/nope.txt`, from: [car2], output: out.stream }))) as CairnError).code).toBe('USAGE')
    expect(((await thrown(() => cat({ cid: `${v2}`, from: [car2], output: out.stream }))) as CairnError).message).toContain(
      'name one of its shards',
    )
  })
})

// ---------------------------------------------------------------------------------------------------

/** sha-256 of some bytes: vitest's deep equality on megabytes of Buffer is very slow. */
function digest(bytes: string | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

function collect(): { stream: Writable; bytes(): Buffer } {
  const chunks: Buffer[] = []
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(Buffer.from(chunk))
        cb()
      },
    }),
    bytes: () => Buffer.concat(chunks),
  }
}

async function entryCid(version: CID, path: string): Promise<CID | undefined> {
  const src = await openSources([car2, car1])
  try {
    return (await resolvePath(src, version, path)).cid
  } finally {
    await src.close()
  }
}

/** The raw leaves of a dag-pb file. */
async function leavesOf(root: CID): Promise<CID[]> {
  const src = await carsSource([car1])
  try {
    const dagPb = await import('@ipld/dag-pb')
    return dagPb.decode(await src.get(root)).Links.map((l) => l.Hash)
  } finally {
    await src.close()
  }
}

/** Writes a CAR holding a version whose only shard entry has `badPath`, with a valid card and tree. */
async function writeCarOf(path: string, badPath: string, name = 'hostile'): Promise<{ path: string; root: CID }> {
  return writeVersionCar(path, [[badPath]], name)
}

/**
 * A hand-made version whose shard index holds these leaves (one leaf: the root; more: under one
 * branch node, in the order given), every entry the same small file; the tree lists the first path's
 * last segment only (the index is refused before the tree matters).
 */
async function writeVersionCar(
  path: string,
  leaves: readonly (readonly string[])[],
  name = 'hostile',
): Promise<{ path: string; root: CID }> {
  const badPath = leaves[0][0]
  const content = new TextEncoder().encode('escaped\n')
  const fileCid = cidFor(0x55, content)
  const card = dagJson.encode({ cardVersion: 1, name: 'hostile' })
  const tree = dagPb.encode({
    Data: new UnixFS({ type: 'directory' }).marshal(),
    Links: [{ Hash: fileCid, Name: badPath.split('/').pop() as string, Tsize: content.length }],
  })
  const treeCid = cidFor(0x70, tree)
  const cardCid = cidFor(DAG_JSON, card)
  const leafBlocks = leaves.map((paths) => {
    const bytes = dagJson.encode({
      type: 'cairn.index',
      v: 1,
      level: 0,
      entries: paths.map((p) => ({ path: p, cid: fileCid, size: content.length, format: 'bytes' })),
    })
    return { paths, cid: cidFor(DAG_JSON, bytes), bytes }
  })
  const index =
    leafBlocks.length === 1
      ? leafBlocks[0].bytes
      : dagJson.encode({
          type: 'cairn.index',
          v: 1,
          level: 1,
          entries: leafBlocks.map((l) => ({
            path: l.paths[0],
            node: l.cid,
            totals: { shards: l.paths.length, bytes: content.length * l.paths.length, rows: 0 },
          })),
        })
  const indexCid = cidFor(DAG_JSON, index)
  const version = dagJson.encode({
    type: 'cairn.version',
    v: 1,
    name,
    parent: null,
    created: '2025-01-01T00:00:00.000Z',
    message: 'x',
    profile: 'unixfs-v1-2025',
    card: cardCid,
    index: indexCid,
    tree: treeCid,
    totals: { shards: 1, bytes: content.length, rows: 0 },
  })
  const root = cidFor(DAG_JSON, version)
  const { writer, out } = CarWriter.create([root])
  const done = pipeline(Readable.from(out), createWriteStream(path))
  for (const [cid, bytes] of [
    [root, version],
    [cardCid, card],
    [indexCid, index],
    ...(leafBlocks.length === 1 ? [] : leafBlocks.map((l) => [l.cid, l.bytes] as const)),
    [fileCid, content],
    [treeCid, tree],
  ] as const)
    await writer.put({ cid, bytes })
  await writer.close()
  await done
  return { path, root }
}
