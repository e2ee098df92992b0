/**
 * The `kubo:` target against a STAND-IN FOR KUBO (test/helpers/kubo-standin.ts): a loopback server
 * implementing `POST /api/v0/dag/import` as Kubo documents it, which really parses the streamed
 * multipart body and CAR and hash-checks every block. No real Kubo runs here (none runs offline).
 */
import { createHash } from 'node:crypto'
import { readFile, readdir, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { build, CairnError, pack, publish, published, type BlockSource, type PublishProgress } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { createKuboTarget } from '../src/targets/index.js'
import * as dagJson from '@ipld/dag-json'
import { CID } from '../src/cid.js'
import { walkDag } from '../src/dag.js'
import { cairn, parseJson } from './helpers/cli.js'
import { FIXED_DATE, jsonl, makeDataset, seededBytes, tempDir, thrown, type TempDataset } from './helpers/dataset.js'
import { startKuboStandin, type KuboStandin } from './helpers/kubo-standin.js'

const MiB = 1024 * 1024
/** Short retries so failing tests stay fast. */
const FAST = { CAIRN_RETRY_DELAY_MS: '1', CAIRN_RETRIES: '3' }

let ds: TempDataset
let version: CID
let expected: Map<string, Uint8Array>
let standin: KuboStandin

beforeAll(async () => {
  ds = await makeDataset({
    'train/big.bin': seededBytes(3 * MiB + 12345, 'kubo-big'),
    'train/rows.jsonl': jsonl([
      { id: 1, text: 'a' },
      { id: 2, text: 'b' },
    ]),
    'README.md': '# test\n',
  })
  version = (await build({ dir: ds.dir, message: 'for kubo', date: FIXED_DATE })).version
  const { store } = await openDataset(ds.dir)
  expected = new Map()
  for await (const b of walkDag(store, version)) expected.set(b.cid.toString(), b.bytes)
  await store.close()
})
afterAll(async () => ds?.cleanup())

beforeEach(async () => {
  standin = await startKuboStandin()
})
afterEach(async () => standin?.close())

const to = (): string => `kubo:${standin.url}`
/** The dag/import requests (the target also asks block/stat and pin/add). */
const imports = (): KuboStandin['requests'] => standin.requests.filter((r) => r.path === '/api/v0/dag/import')

describe('kubo: target against the Kubo stand-in', () => {
  it('streams the whole version as one CAR: every block arrives, hash-checked, and the root is pinned', async () => {
    const progress: PublishProgress[] = []
    const receipt = await publish({ dir: ds.dir, to: to(), env: FAST, onProgress: (p) => progress.push(p) })
    expect([...standin.blocks.keys()].sort()).toEqual([...expected.keys()].sort())
    for (const [cid, bytes] of expected) expect(Buffer.from(standin.blocks.get(cid) as Uint8Array).equals(Buffer.from(bytes))).toBe(true)
    // the release is pinned without its parent: card, index and tree recursively, the version directly
    const manifest = dagJson.decode<{ card: CID; index: CID; tree: CID }>(expected.get(version.toString()) as Uint8Array)
    expect([...standin.pinned].sort()).toEqual([manifest.card, manifest.index, manifest.tree].map(String).sort())
    expect([...standin.direct]).toEqual([version.toString()])
    expect(imports()).toHaveLength(1)
    expect(imports()[0]).toMatchObject({ method: 'POST', path: '/api/v0/dag/import', query: { 'pin-roots': 'false', stats: 'true' } })
    expect(imports()[0].authorization).toBeUndefined()

    // the CAR sent is byte for byte what `pack` writes: its CID and size say so
    const out = await tempDir('cairn-kubo-pack-')
    try {
      await pack({ dir: ds.dir, output: join(out, 'v.car') })
      const car = await readFile(join(out, 'v.car'))
      const carCid = CID.createV1(
        0x0202,
        (await import('multiformats/hashes/digest')).create(0x12, createHash('sha256').update(car).digest()),
      )
      expect(receipt.shards).toEqual([{ cid: carCid, size: car.length }])
    } finally {
      await rm(out, { recursive: true, force: true })
    }
    expect(receipt).toMatchObject({
      target: to(),
      newBlocks: expected.size,
      details: { pinned: true, attempts: 1, stats: { BlockCount: expected.size } },
    })
    expect(receipt.root.equals(version)).toBe(true)
    expect(progress.at(-1)).toMatchObject({ shards: 1 })
    expect(await published({ dir: ds.dir, ref: version.toString() })).toEqual([JSON.parse(JSON.stringify(receipt), reviveLinks)])
  })

  it('streams: the stand-in receives CAR bytes before the client has read the last block from its source', async () => {
    const order = [...expected.keys()] // walk order = CAR order
    const last = CID.parse(order[order.length - 1])
    let seenBeforeLast = -1
    let lastReads = 0
    const source: BlockSource = {
      get: async (cid) => {
        // the first read plans the publish (which blocks the node lacks); the second one sends it
        if (cid.equals(last) && ++lastReads === 2) {
          // a client holding the whole CAR before sending would deadlock here: nothing would arrive
          for (let waited = 0; (imports()[0]?.bytes ?? 0) < 1024 * 1024 && waited < 10_000; waited += 10) await sleep(10)
          seenBeforeLast = imports()[0]?.bytes ?? 0
        }
        return expected.get(cid.toString()) as Uint8Array
      },
    }
    const receipt = await createKuboTarget({ url: standin.url }).publish({ root: version, source, totalBytes: 0 })
    expect(seenBeforeLast).toBeGreaterThanOrEqual(1024 * 1024)
    expect(receipt.shards[0].size).toBeGreaterThan(3 * MiB)
    expect(standin.blocks.size).toBe(expected.size)
  })

  it('re-publishing the same version is harmless', async () => {
    const a = await publish({ dir: ds.dir, to: to(), env: FAST })
    const b = await publish({ dir: ds.dir, to: to(), env: FAST })
    expect(a.newBlocks).toBe(expected.size)
    // the node already holds every block (it says so when asked): nothing is sent again, the pins are renewed
    expect(b).toMatchObject({ newBlocks: 0, newBytes: 0, shards: [], details: { alreadyOnNode: expected.size } })
    expect(imports()).toHaveLength(1)
    expect(standin.blocks.size).toBe(expected.size)
    expect(standin.pinned.size).toBe(3)
    expect(standin.direct.size).toBe(1)
    const receipts = await published({ dir: ds.dir, ref: version.toString() })
    expect(receipts.filter((r) => r.target === to())).toHaveLength(1)
  })

  it('retries after HTTP 500s, then succeeds (with a progress line per retry)', async () => {
    standin.next({ kind: 'status', status: 500, message: 'flatfs: too many open files' }, { kind: 'status', status: 503 })
    const messages: string[] = []
    const receipt = await publish({ dir: ds.dir, to: to(), env: FAST, onProgress: (p) => p.message && messages.push(p.message) })
    expect(imports().map((r) => r.behaviour)).toEqual(['status', 'status', 'ok'])
    expect(messages.filter((m) => m.startsWith('retrying'))).toEqual(['retrying after HTTP 500 (1/3)', 'retrying after HTTP 503 (2/3)'])
    expect(receipt.details).toMatchObject({ attempts: 3 })
    expect(standin.blocks.size).toBe(expected.size)
  })

  it('retries after the connection is reset midway through the CAR', async () => {
    standin.next({ kind: 'reset', afterBytes: 256 * 1024 })
    const receipt = await publish({ dir: ds.dir, to: to(), env: FAST })
    expect(imports().map((r) => r.behaviour)).toEqual(['reset', 'ok'])
    expect(imports()[0].bytes).toBeGreaterThanOrEqual(256 * 1024)
    expect(receipt.details).toMatchObject({ attempts: 2 })
    expect(standin.direct.has(version.toString())).toBe(true)
  })

  it('times out a request that gets no answer, retries, and gives up with PUBLISH_FAILED naming the target and the last error', async () => {
    standin.next({ kind: 'hang' }, { kind: 'hang' }, { kind: 'hang' })
    const started = Date.now()
    const e = await thrown(() => publish({ dir: ds.dir, to: to(), env: { ...FAST, CAIRN_RETRIES: '2', CAIRN_KUBO_TIMEOUT_MS: '300' } }))
    expect(e).toBeInstanceOf(CairnError)
    expect(e).toMatchObject({ code: 'PUBLISH_FAILED', subject: to() })
    expect((e as Error).message).toBe(
      `Publishing ${version} to ${to()} failed after 3 attempts: ETIMEDOUT: no answer from ${to()} within 300 ms`,
    )
    expect(imports()).toHaveLength(3)
    expect(Date.now() - started).toBeLessThan(10_000)
    expect((await published({ dir: ds.dir, ref: version.toString() })).filter((r) => r.target === to())).toEqual([])
  })

  it("gives up after 5xx answers that never stop, with Kubo's last message", async () => {
    standin.next(...Array.from({ length: 4 }, () => ({ kind: 'status' as const, status: 502, message: 'bad gateway upstream' })))
    const e = await thrown(() => publish({ dir: ds.dir, to: to(), env: FAST }))
    expect(e).toMatchObject({ code: 'PUBLISH_FAILED' })
    expect((e as Error).message).toBe(
      `Publishing ${version} to ${to()} failed after 4 attempts: ${to()} answered HTTP 502: bad gateway upstream`,
    )
  })

  it('retries a refused connection, then gives up', async () => {
    const port = await freePort()
    const e = await thrown(() => publish({ dir: ds.dir, to: `kubo:http://127.0.0.1:${port}`, env: { ...FAST, CAIRN_RETRIES: '1' } }))
    expect(e).toMatchObject({ code: 'PUBLISH_FAILED', subject: `kubo:http://127.0.0.1:${port}` })
    expect((e as Error).message).toMatch(/failed after 2 attempts: .*ECONNREFUSED/)
  })

  it("a pin error is PUBLISH_FAILED at once, with Kubo's message", async () => {
    standin.next({ kind: 'pinRefused', message: 'pin: context deadline exceeded' })
    const e = await thrown(() => publish({ dir: ds.dir, to: to(), env: FAST }))
    expect(e).toMatchObject({
      code: 'PUBLISH_FAILED',
      message: `${to()} imported ${version} but could not pin it: pin: context deadline exceeded`,
    })
    expect(imports()).toHaveLength(1)
  })

  it.each([
    ['after reading the body', false],
    ['before reading the body (answer, then close)', true],
  ])("HTTP 400 %s is PUBLISH_FAILED, with Kubo's message", async (_, early) => {
    // A real Kubo answers every attempt alike. Answering early, it drops the connection 200 ms after its
    // answer (as Go's net/http does); a client whose loop was busy that long (a loaded CI machine) reads
    // only the reset, which the kernel delivers in place of the unread answer, and tries again.
    const refusal = { kind: 'status', status: 400, message: 'unrecognized option "pin-roots"', early } as const
    standin.next(...Array.from({ length: Number(FAST.CAIRN_RETRIES) + 1 }, () => refusal))
    const e = await thrown(() => publish({ dir: ds.dir, to: to(), env: FAST }))
    expect(e).toMatchObject({ code: 'PUBLISH_FAILED', message: `${to()} refused the import (HTTP 400): unrecognized option "pin-roots"` })
    // read in time, the answer ends it at once
    if (!early) expect(imports()).toHaveLength(1)
  })

  it('a root other than the version is PUBLISH_FAILED', async () => {
    const other = 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e'
    standin.next({ kind: 'wrongRoot', root: other })
    const e = await thrown(() => publish({ dir: ds.dir, to: to(), env: FAST }))
    expect(e).toMatchObject({ code: 'PUBLISH_FAILED', message: `${to()} reported root ${other} (expected ${version} alone)` })
  })

  it('a block missing from the store is MISSING_BLOCK, not retried', async () => {
    const leaves = [...expected.keys()].filter((k) => k.startsWith('bafkrei'))
    const lost = CID.parse(leaves[1])
    const source: BlockSource = {
      get: async (cid) => {
        if (cid.equals(lost)) throw new CairnError('MISSING_BLOCK', `Block ${cid} is not in the store`, { subject: cid.toString() })
        return expected.get(cid.toString()) as Uint8Array
      },
    }
    const target = createKuboTarget({ url: standin.url, retry: { retries: 3, minDelayMs: 1 } })
    const e = await thrown(() => target.publish({ root: version, source, totalBytes: 0 }))
    expect(e).toMatchObject({ code: 'MISSING_BLOCK', subject: lost.toString() })
    expect(imports().length).toBeLessThanOrEqual(1)
    expect(standin.pinned.size).toBe(0)
  })

  it('a URL that is not http(s) is USAGE', () => {
    expect(() => createKuboTarget({ url: 'ftp://127.0.0.1:5001' })).toThrow(expect.objectContaining({ code: 'USAGE' }))
    expect(() => createKuboTarget({ url: 'not a url' })).toThrow(expect.objectContaining({ code: 'USAGE' }))
    expect(createKuboTarget({ url: 'http://127.0.0.1:5001/api/v0/' }).address).toBe('kubo:http://127.0.0.1:5001')
  })
})

describe('kubo: credentials (CAIRN_KUBO_AUTH) are sent, never shown or kept', () => {
  const SECRET = 'cluster-user:s3cret-Passw0rd-xyz'
  const HEADER = `Basic ${Buffer.from(SECRET).toString('base64')}`

  it('sends user:password as Basic auth, and neither the secret nor its encoding reaches the receipt', async () => {
    standin.requireAuthorization(HEADER)
    const receipt = await publish({ dir: ds.dir, to: to(), env: { ...FAST, CAIRN_KUBO_AUTH: SECRET } })
    expect(imports().map((r) => r.authorization)).toEqual([HEADER])
    const files = await readdir(join(ds.dir, '.cairn', 'published', version.toString()))
    for (const f of files) {
      const text = await readFile(join(ds.dir, '.cairn', 'published', version.toString(), f), 'utf8')
      expect(text).not.toContain('s3cret')
      expect(text).not.toContain(HEADER.slice(6))
    }
    expect(JSON.stringify(receipt)).not.toContain('s3cret')
  })

  it('credentials in the URL are used as Basic auth and left out of the address', async () => {
    standin.requireAuthorization(HEADER)
    const url = new URL(standin.url)
    url.username = 'cluster-user'
    url.password = 's3cret-Passw0rd-xyz'
    const receipt = await publish({ dir: ds.dir, to: `kubo:${url}`, env: FAST })
    expect(receipt.target).toBe(to())
    expect(JSON.stringify(receipt)).not.toContain('s3cret')
  })

  it.each([
    ['a bare token', 'tok-123456', 'Bearer tok-123456'],
    ['a whole Bearer value', 'Bearer abc.def', 'Bearer abc.def'],
    ['a whole Basic value', 'Basic dXNlcjpwYXNz', 'Basic dXNlcjpwYXNz'],
  ])('sends %s as given', async (_, value, header) => {
    await publish({ dir: ds.dir, to: to(), env: { ...FAST, CAIRN_KUBO_AUTH: value } })
    expect(imports().map((r) => r.authorization)).toEqual([header])
  })

  it('401 is AUTH naming the variable, not the secret, at once', async () => {
    standin.requireAuthorization('Bearer the-right-one')
    const e = await thrown(() => publish({ dir: ds.dir, to: to(), env: { ...FAST, CAIRN_KUBO_AUTH: SECRET } }))
    expect(e).toMatchObject({ code: 'AUTH' })
    expect((e as CairnError).hint).toContain('CAIRN_KUBO_AUTH')
    expect(JSON.stringify({ m: (e as Error).message, h: (e as CairnError).hint })).not.toContain('s3cret')
    // refused at the first calls (asking about blocks, a few at once), not retried, and no CAR is sent
    expect(standin.requests.length).toBeLessThanOrEqual(32)
    expect(standin.requests.every((r) => r.path === '/api/v0/block/stat')).toBe(true)
    expect(imports()).toHaveLength(0)
  })

  it('cairn publish --json (in-process) neither prints nor records the secret', async () => {
    standin.requireAuthorization(HEADER)
    const r = await cairn(['publish', '-C', ds.dir, '--to', to(), '--json'], { env: { ...FAST, CAIRN_KUBO_AUTH: SECRET } })
    expect(r.exitCode, r.stderr + r.stdout).toBe(0)
    expect(r.stdout + r.stderr).not.toContain('s3cret')
    expect(r.stdout + r.stderr).not.toContain(HEADER.slice(6))
    const json = parseJson<{ target: string; root: { '/': string } }>(r)
    expect(json).toMatchObject({ target: to(), root: { '/': version.toString() } })
    const failed = await cairn(['publish', '-C', ds.dir, '--to', to(), '--json'], {
      env: { ...FAST, CAIRN_KUBO_AUTH: 'wrong:s3cret-wrong' },
    })
    expect(failed.exitCode).toBe(8)
    expect(failed.stdout + failed.stderr).not.toContain('s3cret')
  })
})

/** JSON.parse reviver turning `{"/": "<cid>"}` back into CIDs. */
function reviveLinks(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value)
    if (keys.length === 1 && keys[0] === '/' && typeof (value as { '/': unknown })['/'] === 'string')
      return CID.parse((value as { '/': string })['/'])
  }
  return value
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
