/**
 * Releases (issue 13): a release is the version and its own DAG. Read back with independent readers
 * (`@ipld/car`, the codecs' own decoders), against the Kubo stand-in, and in clones made from a real
 * `cairn serve` on loopback.
 */
import { spawn } from 'node:child_process'
import { readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CarReader, CarWriter } from '@ipld/car'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { build, cat, clone, logHistory, pack, publish, serve, show, verify, type CairnError, type ServeHandle } from '../src/index.js'
import { readCloneRecord } from '../src/release/clone-record.js'
import { cairn } from './helpers/cli.js'
import { FIXED_DATE, jsonl, makeDataset, seededBytes, tempDir, thrown, type TempDataset } from './helpers/dataset.js'
import { startKuboStandin } from './helpers/kubo-standin.js'

const MiB = 1024 * 1024
/** ipfs-car's own CLI (an independent reader of CARs and UnixFS). */
const IPFS_CAR = join(dirname(createRequire(import.meta.url).resolve('ipfs-car/package.json')), 'bin.js')
const DELETED = 'train/part-007.jsonl'

let ds: TempDataset
let work: string
let v1: CID
let v2: CID
let v1Car: string
let v2Car: string
let fullCar: string

beforeAll(async () => {
  const files: Record<string, string | Uint8Array> = { 'big/model.bin': seededBytes(2 * MiB + 99, 'release-big'), 'README.md': '# r\n' }
  for (let i = 1; i <= 8; i++) files[`train/part-00${i}.jsonl`] = jsonl([{ id: i, secret: `row ${i}` }])
  ds = await makeDataset(files)
  v1 = (await build({ dir: ds.dir, message: 'v1', date: FIXED_DATE })).version
  // v2: a shard deleted (say, for PII), another changed
  await unlink(join(ds.dir, DELETED))
  await writeFile(join(ds.dir, 'train/part-001.jsonl'), jsonl([{ id: 1, secret: 'changed' }]))
  v2 = (await build({ dir: ds.dir, message: 'v2', date: FIXED_DATE })).version
  work = await tempDir('cairn-release-')
  v1Car = join(work, 'v1.car')
  v2Car = join(work, 'v2.car')
  fullCar = join(work, 'full.car')
  await pack({ dir: ds.dir, ref: v1.toString(), output: v1Car })
  await pack({ dir: ds.dir, ref: v2.toString(), output: v2Car })
  await pack({ dir: ds.dir, ref: v2.toString(), output: fullCar, history: Infinity })
}, 60_000)
afterAll(async () => {
  await ds?.cleanup()
  await rm(work, { recursive: true, force: true })
})

/** The CAR's root and blocks in file order, read with @ipld/car. */
async function readCar(file: string): Promise<{ roots: CID[]; blocks: { cid: CID; bytes: Uint8Array }[] }> {
  const reader = await CarReader.fromBytes(await readFile(file))
  const blocks: { cid: CID; bytes: Uint8Array }[] = []
  for await (const b of reader.blocks()) blocks.push({ cid: CID.parse(b.cid.toString()), bytes: b.bytes })
  return { roots: (await reader.getRoots()).map((r) => CID.parse(r.toString())), blocks }
}

/** Links as the codecs' own decoders give them (dag-json: every CID in the value, keys sorted; dag-pb: Links). */
function linksOf(cid: CID, bytes: Uint8Array, skipParent: boolean): CID[] {
  if (cid.code === 0x55) return []
  if (cid.code === dagPb.code) return dagPb.decode(bytes).Links.map((l) => CID.parse(l.Hash.toString()))
  const out: CID[] = []
  const visit = (v: unknown, key?: string): void => {
    const c = CID.asCID(v)
    if (c) {
      if (!(skipParent && key === 'parent')) out.push(CID.parse(c.toString()))
      return
    }
    if (Array.isArray(v)) v.forEach((x) => visit(x))
    else if (v && typeof v === 'object') for (const k of Object.keys(v).sort()) visit((v as Record<string, unknown>)[k], k)
  }
  visit(dagJson.decode(bytes))
  return out
}

/** An independent depth-first walk over a block map: the expected CAR order. */
function dfs(root: CID, byCid: Map<string, Uint8Array>, skipParent: boolean): string[] {
  const order: string[] = []
  const seen = new Set<string>()
  const stack = [root]
  while (stack.length > 0) {
    const cid = stack.pop() as CID
    const key = cid.toString()
    if (seen.has(key)) continue
    seen.add(key)
    order.push(key)
    const bytes = byCid.get(key)
    if (!bytes) throw new Error(`${key} is not in the CAR`)
    stack.push(...linksOf(cid, bytes, skipParent).reverse())
  }
  return order
}

async function fileCid(version: CID, path: string): Promise<CID> {
  for await (const e of (await import('../src/index.js')).ls({ dir: ds.dir, ref: version.toString() })) if (e.path === path) return e.cid
  throw new Error(`${path} not in ${version}`)
}

const sink = (): Writable & { bytes: () => Buffer } => {
  const parts: Buffer[] = []
  const w = new Writable({
    write(chunk: Buffer, _e, cb) {
      parts.push(chunk)
      cb()
    },
  }) as Writable & { bytes: () => Buffer }
  w.bytes = () => Buffer.concat(parts)
  return w
}

describe('a release is the version and its own DAG', () => {
  it("v2's CAR holds v2's release only: no block of the deleted shard, no parent; pack --history holds both", async () => {
    const release = await readCar(v2Car)
    const old = await readCar(v1Car)
    expect(release.roots.map(String)).toEqual([v2.toString()])
    const byCid = new Map(release.blocks.map((b) => [b.cid.toString(), b.bytes]))
    // exactly the release: the walk that skips `parent`, in CAR order
    expect(release.blocks.map((b) => b.cid.toString())).toEqual(dfs(v2, byCid, true))
    const deleted = await fileCid(v1, DELETED)
    expect(old.blocks.some((b) => b.cid.equals(deleted))).toBe(true)
    expect(byCid.has(deleted.toString())).toBe(false)
    expect(byCid.has(v1.toString())).toBe(false)
    // the parent stays a link in the manifest: history is still a Merkle chain
    expect(CID.asCID(dagJson.decode<{ parent: unknown }>(byCid.get(v2.toString()) as Uint8Array).parent)?.equals(v1)).toBe(true)

    // the deleted shard cannot be read from v2's CAR; it can from v1's (earlier releases keep it)
    const e = await thrown(() => cat({ cid: `${v1}/${DELETED}`, from: [v2Car], output: sink() }))
    expect(e).toMatchObject({ code: 'MISSING_BLOCK', message: expect.stringContaining(v1.toString()) })
    const out = sink()
    await cat({ cid: `${v1}/${DELETED}`, from: [v1Car], output: out })
    expect(out.bytes().toString()).toContain('row 7')

    // --history all: the whole DAG, depth-first as any full export walks it
    const full = await readCar(fullCar)
    const all = new Map(full.blocks.map((b) => [b.cid.toString(), b.bytes]))
    expect(full.blocks.map((b) => b.cid.toString())).toEqual(dfs(v2, all, false))
    for (const b of [...old.blocks, ...release.blocks]) expect(all.has(b.cid.toString())).toBe(true)
    expect(all.has(deleted.toString())).toBe(true)
    // --history 1 is the same here (v1 is the first version)
    const one = join(work, 'one.car')
    await pack({ dir: ds.dir, ref: v2.toString(), output: one, history: 1 })
    expect((await readFile(one)).equals(await readFile(fullCar))).toBe(true)
  })

  it('verify --car: a release CAR is complete and says history is not included; a CAR with history has it checked', async () => {
    const release = await verify({ car: v2Car })
    expect(release).toMatchObject({ ok: true, problems: [], history: { versions: 0, next: v1.toString() } })
    const withHistory = await verify({ car: fullCar })
    expect(withHistory).toMatchObject({ ok: true, history: { versions: 1 } })
    expect(withHistory.history?.next).toBeUndefined()
    expect((await verify({ car: v1Car })).history).toEqual({ versions: 0 })
    const cli = await cairn(['verify', '--car', v2Car])
    expect(cli.exitCode).toBe(0)
    expect(cli.stdout).toContain(`history: not included (the parent ${v1} is not in the CAR`)
  })

  it('ipfs-car unpacks a release CAR given the tree CID pack prints: the files, without cairn.json', async () => {
    const out = join(work, 'unpacked')
    const packed = await pack({ dir: ds.dir, ref: v2.toString(), output: join(work, 'again.car') })
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, [IPFS_CAR, 'unpack', v2Car, '--root', packed.tree.toString(), '--output', out], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child.on('error', reject)
      child.on('close', (c) => resolve(c ?? -1))
    })
    expect(code).toBe(0)
    const files = (await readdir(join(out, 'train'))).sort()
    expect(files).toEqual([
      'part-001.jsonl',
      'part-002.jsonl',
      'part-003.jsonl',
      'part-004.jsonl',
      'part-005.jsonl',
      'part-006.jsonl',
      'part-008.jsonl',
    ])
    expect(await readdir(out)).not.toContain('cairn.json')
    expect((await readFile(join(out, 'big/model.bin'))).equals(seededBytes(2 * MiB + 99, 'release-big'))).toBe(true)
  })

  it('a trustless request with dag-scope=all still gets the whole DAG, parent included', async () => {
    const server = await serve({ dir: ds.dir, port: 0 })
    try {
      const res = await fetch(`${server.url}/ipfs/${v2}?format=car&dag-scope=all`)
      expect(res.status).toBe(200)
      const file = join(work, 'scope-all.car')
      await writeFile(file, Buffer.from(await res.arrayBuffer()))
      const got = await readCar(file)
      expect(got.blocks.some((b) => b.cid.equals(v1))).toBe(true)
    } finally {
      await server.close()
    }
  })
})

describe('publish sends only what the target lacks', () => {
  it('kubo: v1 then v2: the second import holds only the new blocks; v2 alone pins without its parent', async () => {
    const standin = await startKuboStandin()
    try {
      const to = `kubo:${standin.url}`
      const first = await publish({ dir: ds.dir, ref: v1.toString(), to })
      const v1Blocks = new Set((await readCar(v1Car)).blocks.map((b) => b.cid.toString()))
      expect(first.newBlocks).toBe(v1Blocks.size)
      const before = new Set(standin.blocks.keys())
      const askedBefore = standin.requests.filter((r) => r.path === '/api/v0/block/stat').length
      const second = await publish({ dir: ds.dir, ref: v2.toString(), to })
      const release = (await readCar(v2Car)).blocks.map((b) => b.cid.toString())
      const fresh = release.filter((c) => !v1Blocks.has(c))
      expect(second.newBlocks).toBe(fresh.length)
      expect(second.details).toMatchObject({ known: expect.any(Number) })
      expect((second.details as { known: number }).known).toBeGreaterThan(0)
      const imports = standin.requests.filter((r) => r.path === '/api/v0/dag/import')
      expect(imports).toHaveLength(2)
      expect(imports[1].blocks).toBe(fresh.length)
      expect([...standin.blocks.keys()].filter((k) => !before.has(k)).sort()).toEqual([...fresh].sort())
      // blocks known from the receipt of v1 were not even asked about: only the new ones were
      const asked = standin.requests.filter((r) => r.path === '/api/v0/block/stat').length - askedBefore
      expect(asked).toBe(fresh.length)
      expect(standin.direct.has(v2.toString())).toBe(true)
    } finally {
      await standin.close()
    }
    // a node that never saw v1: v2's release alone is imported and pinned (nothing waits on the parent)
    const alone = await startKuboStandin()
    try {
      const receipt = await publish({ dir: ds.dir, ref: v2.toString(), to: `kubo:${alone.url}` })
      expect(alone.blocks.has(v1.toString())).toBe(false)
      expect(alone.direct.has(v2.toString())).toBe(true)
      const manifest = dagJson.decode<{ card: CID; index: CID; tree: CID }>(alone.blocks.get(v2.toString()) as Uint8Array)
      expect([...alone.pinned].sort()).toEqual([manifest.card, manifest.index, manifest.tree].map(String).sort())
      expect(receipt.details).toMatchObject({ pins: { direct: [v2.toString()] } })
    } finally {
      await alone.close()
    }
  })

  it('kubo: a node that lost what an earlier publish put there (receipts stale) gets every block it lacks; --history pins each ancestor', async () => {
    const standin = await startKuboStandin()
    try {
      const to = `kubo:${standin.url}`
      await publish({ dir: ds.dir, ref: v1.toString(), to })
      // the node collects everything (unpinned, garbage-collected): the receipt of v1 no longer holds
      standin.blocks.clear()
      standin.pinned.clear()
      standin.direct.clear()
      const messages: string[] = []
      const receipt = await publish({
        dir: ds.dir,
        ref: v2.toString(),
        to,
        onProgress: (p) => void (p.message && messages.push(p.message)),
      })
      expect(messages.some((m) => m.includes('no longer holds blocks an earlier publish put there'))).toBe(true)
      const release = (await readCar(v2Car)).blocks.map((b) => b.cid.toString())
      expect([...standin.blocks.keys()].sort()).toEqual([...release].sort())
      expect(receipt.newBlocks).toBe(release.length)
      expect(standin.direct.has(v2.toString())).toBe(true)
    } finally {
      await standin.close()
    }
    const full = await startKuboStandin()
    try {
      await publish({ dir: ds.dir, ref: v2.toString(), to: `kubo:${full.url}`, history: Infinity })
      const all = (await readCar(fullCar)).blocks.map((b) => b.cid.toString())
      expect([...full.blocks.keys()].sort()).toEqual([...all].sort())
      // each ancestor is pinned as a release too: its card, index and tree recursively, the version directly
      expect([...full.direct].sort()).toEqual([v1.toString(), v2.toString()].sort())
      const m1 = dagJson.decode<{ card: CID; index: CID; tree: CID }>(full.blocks.get(v1.toString()) as Uint8Array)
      for (const c of [m1.card, m1.index, m1.tree]) expect(full.pinned.has(c.toString())).toBe(true)
    } finally {
      await full.close()
    }
  })

  it('kubo: a pin the node refuses is PUBLISH_FAILED with its message, and no receipt is recorded', async () => {
    const standin = await startKuboStandin()
    const d = await makeDataset({ 'a.txt': 'pin me' })
    try {
      await build({ dir: d.dir, date: FIXED_DATE })
      standin.next({ kind: 'pinRefused', message: 'pin: disk quota exceeded' })
      const e = await thrown(() => publish({ dir: d.dir, to: `kubo:${standin.url}` }))
      expect(e).toMatchObject({ code: 'PUBLISH_FAILED', message: expect.stringContaining('could not pin it: pin: disk quota exceeded') })
      expect(await readdir(join(d.dir, '.cairn')).then((n) => n.includes('published'))).toBe(false)
    } finally {
      await standin.close()
      await d.cleanup()
    }
  })
})

describe('a clone is a dataset like any other', () => {
  let server: ServeHandle | undefined
  let dir: string

  beforeAll(async () => {
    server = await serve({ dir: ds.dir, port: 0 })
    dir = join(work, 'clone')
    await clone({ cid: v2.toString(), dir, from: [server.url] })
  })
  afterAll(async () => server?.close())

  it('records its sources; log, show HEAD~1 fetch older versions from them', async () => {
    const record = await readCloneRecord(join(dir, '.cairn'))
    expect(record).toMatchObject({ complete: true, sources: [server?.url], selections: [] })
    const history = await logHistory({ dir })
    expect(history.incomplete).toBeUndefined()
    expect(history.entries.map((e) => e.cid.toString())).toEqual([v2.toString(), v1.toString()])
    expect((await show({ dir, ref: 'HEAD~1' })).cid.equals(v1)).toBe(true)
    const ls = await cairn(['ls', 'HEAD~1', '-C', dir])
    expect(ls.exitCode).toBe(0)
    expect(ls.stdout).toContain(DELETED)
  })

  it('pack, publish --to dir: and serve work in it (blocks read from the files it wrote, verified)', async () => {
    const out = join(work, 'from-clone.car')
    const result = await pack({ dir, output: out })
    expect(result.tree).toBeDefined()
    expect((await readFile(out)).equals(await readFile(v2Car))).toBe(true)
    const target = join(work, 'clone-target')
    const receipt = await publish({ dir, to: `dir:${target}` })
    expect(receipt.newBlocks).toBe((await readCar(v2Car)).blocks.length)
    // serve the clone, and clone it again from there
    const again = await serve({ dir, port: 0 })
    try {
      const second = join(work, 'clone-of-clone')
      await clone({ cid: v2.toString(), dir: second, from: [again.url] })
      expect(await verify({ dataset: second, dir: second })).toMatchObject({ ok: true })
    } finally {
      await again.close()
    }
    // a file changed in the clone is never served as the release's
    await writeFile(join(dir, 'big/model.bin'), 'tampered')
    const e = await thrown(() => pack({ dir, output: join(work, 'tampered.car') }))
    expect(e).toMatchObject({ code: 'MISSING_BLOCK', message: expect.stringContaining('big/model.bin') })
    expect(await readdir(work)).not.toContain('tampered.car')
    await writeFile(join(dir, 'big/model.bin'), seededBytes(2 * MiB + 99, 'release-big'))
  })

  it('with the source gone, log prints what it has and exits with the source-failure code', async () => {
    const own = join(work, 'clone-gone')
    const temporary = await serve({ dir: ds.dir, port: 0 })
    await clone({ cid: v2.toString(), dir: own, from: [temporary.url] })
    await temporary.close()
    const result = await cairn(['log', '-C', own])
    expect(result.exitCode).toBe(7)
    expect(result.stdout).toContain(`version ${v2}`)
    expect(result.stderr).toContain(v1.toString())
    expect(result.stderr).toContain(temporary.url)
  })

  it('pack --history in a clone whose sources lack the ancestors: MISSING_BLOCK naming the CID and the version', async () => {
    const own = join(work, 'clone-from-car')
    await clone({ cid: v2.toString(), dir: own, from: [v2Car] })
    const e = await thrown(() => pack({ dir: own, output: join(work, 'hist.car'), history: Infinity }))
    expect(e).toMatchObject({ code: 'MISSING_BLOCK', message: expect.stringContaining(`version ${v1}, an ancestor of ${v2}`) })
    expect(await readdir(work)).not.toContain('hist.car')
    // given a source that has them, it works
    await pack({ dir: own, output: join(work, 'hist.car'), history: Infinity, from: [v1Car] })
    expect((await readFile(join(work, 'hist.car'))).equals(await readFile(fullCar))).toBe(true)
  })

  it('clone --history fetches the ancestors into the store: log and pack --history need no source', async () => {
    const own = join(work, 'clone-history')
    const copy = join(work, 'copy-of-full.car')
    await writeFile(copy, await readFile(fullCar))
    await clone({ cid: v2.toString(), dir: own, from: [copy], history: Infinity })
    await rm(copy)
    const history = await logHistory({ dir: own })
    expect(history.entries.map((e) => e.cid.toString())).toEqual([v2.toString(), v1.toString()])
    await pack({ dir: own, output: join(work, 'hist2.car'), history: Infinity })
    expect((await readFile(join(work, 'hist2.car'))).equals(await readFile(fullCar))).toBe(true)
  })

  it('an incomplete clone says so, and build refuses to commit there', async () => {
    const own = join(work, 'clone-incomplete')
    // a source that holds the metadata but not the large file's leaves: the clone stops midway
    const partial = join(work, 'metadata-only.car')
    const { blocks } = await readCar(v2Car)
    const { writer, out } = CarWriter.create([v2])
    const written = (async () => {
      const parts: Uint8Array[] = []
      for await (const p of out) parts.push(p)
      await writeFile(partial, Buffer.concat(parts))
    })()
    for (const b of blocks) if (!(b.cid.code === 0x55 && b.bytes.length === MiB)) await writer.put(b)
    await writer.close()
    await written
    const e = await thrown(() => clone({ cid: v2.toString(), dir: own, from: [partial] }))
    expect(e).toMatchObject({ code: 'MISSING_BLOCK' })
    const log = await cairn(['log', '-C', own])
    expect(log.exitCode).toBe(2)
    expect(log.stderr).toContain(`incomplete clone of ${v2}: run \`cairn clone ${v2} ${own} --from`)
    const b = await thrown(() => build({ dir: own }))
    expect(b).toMatchObject({ code: 'NOT_A_DATASET', message: expect.stringContaining('incomplete clone') })
    expect((b as CairnError).hint).toContain('again to resume')
    // resumed from a source that has everything, it completes
    await clone({ cid: v2.toString(), dir: own, from: [v2Car] })
    expect((await logHistory({ dir: own, limit: 1 })).entries[0].cid.equals(v2)).toBe(true)
  })
})
