/**
 * The `storacha` target against the real Storacha upload service (`@storacha/upload-api`) running on
 * loopback (test/helpers/storacha-loopback.ts), through the real `@storacha/client` over real sockets.
 * Storage is in memory; storage nodes check the SHA-256 of every PUT.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { CarBlockIterator } from '@ipld/car/iterator'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CID } from '../src/cid.js'
import { walkDag } from '../src/dag.js'
import { build, CairnError, init, isCairnError } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { login } from '../src/login.js'
import type { PublishProgress } from '../src/targets/interface.js'
import { AGENT_STATE_FILE, createStorachaTarget } from '../src/targets/storacha.js'
import { validateWith } from '../src/schemas.js'
import { ensureBuilt, spawnCairn } from './helpers/cli.js'
import { thrown } from './helpers/dataset.js'
import { startStorachaLoopback, type StorachaLoopback } from './helpers/storacha-loopback.js'
import { repoRoot, tempDirs } from './helpers/tmp.js'

const tmp = tempDirs('cairn-storacha-')
let service: StorachaLoopback
/** tiny-instruct built once through the library: its folder and version CID. */
let dataset: { dir: string; version: string; blocks: string[] }
/** The dataset's store, open for the whole file (closed after). */
let store: Awaited<ReturnType<typeof openDataset>>['store']

beforeAll(async () => {
  service = await startStorachaLoopback()
  const dir = await tmp.copyDataset('tiny-instruct')
  await init({ dir })
  const { version } = await build({ dir, message: 'first', date: new Date('2026-01-01T00:00:00Z') })
  store = (await openDataset(dir)).store
  const blocks: string[] = []
  for await (const block of walkDag(store, version)) blocks.push(block.cid.toString())
  dataset = { dir, version: version.toString(), blocks }
})

afterAll(async () => {
  await (store as { close?: () => Promise<void> } | undefined)?.close?.()
  await service?.close()
  await tmp.cleanup()
})

async function publishInput() {
  return { root: CID.parse(dataset.version), source: store, totalBytes: 0 }
}

/** Every block of a CAR, hash-checked, with the CAR's roots. */
async function readCar(bytes: Uint8Array): Promise<{ roots: string[]; blocks: string[] }> {
  const reader = await CarBlockIterator.fromBytes(bytes)
  const roots = (await reader.getRoots()).map(String)
  const blocks: string[] = []
  const { sha256 } = await import('multiformats/hashes/sha2')
  const { equals } = await import('multiformats/bytes')
  for await (const { cid, bytes: data } of reader) {
    expect(cid.multihash.code).toBe(0x12)
    expect(equals((await sha256.digest(data)).digest, cid.multihash.digest)).toBe(true)
    blocks.push(cid.toString())
  }
  return { roots, blocks }
}

const SECRET_FREE = (text: string, secrets: readonly string[]) => {
  for (const s of secrets) expect(text).not.toContain(s)
}

describe('storacha target: publishing to the real service on loopback', () => {
  it('streams the version as CAR shards; the service records the upload and holds exactly the bytes sent', async () => {
    const creds = await service.credentials()
    const env = { ...service.serviceEnv(), STORACHA_PRINCIPAL: creds.principal, STORACHA_PROOF: creds.proof }
    const target = await createStorachaTarget({ env, configDir: join(await tmp.make(), 'none') })
    expect(target.address).toBe(`storacha:${creds.space}`)

    const progress: PublishProgress[] = []
    const receipt = await target.publish(await publishInput(), { shardSize: 32 * 1024, onProgress: (p) => progress.push(p) })

    expect(receipt.target).toBe(`storacha:${creds.space}`)
    expect(receipt.root.toString()).toBe(dataset.version)
    expect(receipt.shards.length).toBeGreaterThan(1)
    expect(progress.map((p) => p.shards)).toEqual(receipt.shards.map((_, i) => i + 1))
    expect(progress.at(-1)?.bytes).toBe(receipt.shards.reduce((n, s) => n + s.size, 0))
    expect(receipt.newBytes).toBe(progress.at(-1)?.bytes)
    expect(receipt.newBlocks).toBe(dataset.blocks.length)

    // the upload table has the version with exactly the receipt's shards
    const upload = service.uploads().find((u) => u.root === dataset.version)
    expect(upload).toBeDefined()
    expect(upload?.space).toBe(creds.space)
    expect(upload?.shards).toEqual(receipt.shards.map((s) => s.cid?.toString()))

    // the stored blobs are the CARs the client sent: same hash (the shard CID), same size, and
    // together they hold exactly the version's blocks, in the order cairn walks them
    const walked: string[] = []
    for (const [i, shard] of receipt.shards.entries()) {
      const bytes = await service.blob(String(shard.cid))
      expect(bytes, `blob of shard ${i}`).toBeDefined()
      expect(bytes?.length).toBe(shard.size)
      expect(
        createHash('sha256')
          .update(bytes as Uint8Array)
          .digest()
          .equals(Buffer.from(shard.cid?.multihash.digest ?? [])),
      ).toBe(true)
      expect(shard.cid?.code).toBe(0x0202)
      const car = await readCar(bytes as Uint8Array)
      // the client puts the root in the last shard's header only
      expect(car.roots).toEqual(i === receipt.shards.length - 1 ? [dataset.version] : [])
      walked.push(...car.blocks)
    }
    expect(walked).toEqual(dataset.blocks)

    // the receipt holds no secret
    SECRET_FREE(JSON.stringify(receipt), [creds.principal, creds.proof])
  })

  it('streams: the first shard is stored long before the last block of the version is read from the store', async () => {
    // a version of ~70 blocks cut into ~35 shards: with backpressure, reading runs only a little ahead
    const files: Record<string, Uint8Array> = {}
    for (let i = 0; i < 64; i++) {
      const bytes = Buffer.alloc(16 * 1024, i)
      createHash('sha256').update(`s${i}`).digest().copy(bytes)
      files[`part-${String(i).padStart(2, '0')}.bin`] = bytes
    }
    const dir = await tmp.make()
    const { writeFile } = await import('node:fs/promises')
    await writeFile(join(dir, 'cairn.json'), JSON.stringify({ cardVersion: 1, name: 'streaming' }))
    for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes)
    await init({ dir })
    const { version } = await build({ dir, date: new Date('2026-01-01T00:00:00Z') })
    const big = (await openDataset(dir)).store
    try {
      let total = 0
      for await (const _ of walkDag(big, version)) total++
      const creds = await service.credentials()
      const env = { ...service.serviceEnv(), STORACHA_PRINCIPAL: creds.principal, STORACHA_PROOF: creds.proof }
      const target = await createStorachaTarget({ env })
      let read = 0
      let readAtFirstShard: number | undefined
      const counting = { get: (cid: CID) => (read++, big.get(cid)) }
      const receipt = await target.publish(
        { root: version, source: counting, totalBytes: 0 },
        { shardSize: 32 * 1024, onProgress: (p) => void (p.shards === 1 && (readAtFirstShard ??= read)) },
      )
      expect(receipt.shards.length).toBeGreaterThan(20)
      expect(read).toBe(total)
      expect(readAtFirstShard).toBeLessThan(total / 2)
    } finally {
      await big.close()
    }
  })

  it('a block missing from the store fails with MISSING_BLOCK (not a service error), and no upload is registered', async () => {
    const creds = await service.credentials()
    const env = { ...service.serviceEnv(), STORACHA_PRINCIPAL: creds.principal, STORACHA_PROOF: creds.proof }
    const target = await createStorachaTarget({ env, retryDelay: 1 })
    const lost = dataset.blocks.at(-1) as string
    const holey = {
      get: async (cid: CID) => {
        if (cid.toString() === lost) throw new CairnError('MISSING_BLOCK', `Block ${cid} is not in the store`, { subject: lost })
        return store.get(cid)
      },
    }
    const e = (await thrown(() =>
      target.publish({ root: CID.parse(dataset.version), source: holey, totalBytes: 0 }, { shardSize: 32 * 1024 }),
    )) as CairnError
    expect(isCairnError(e, 'MISSING_BLOCK'), String(e)).toBe(true)
    expect(e.subject).toBe(lost)
    expect(service.uploads().some((u) => u.space === creds.space)).toBe(false)
  })

  it('a shard size smaller than a block is a USAGE error naming the block', async () => {
    const creds = await service.credentials()
    const env = { ...service.serviceEnv(), STORACHA_PRINCIPAL: creds.principal, STORACHA_PROOF: creds.proof }
    const target = await createStorachaTarget({ env })
    const input = await publishInput()
    const e = (await thrown(() => target.publish(input, { shardSize: 4 * 1024 }))) as CairnError
    expect(isCairnError(e, 'USAGE'), String(e)).toBe(true)
    expect(e.message).toMatch(/shard size is smaller than block b/)
    expect(e.hint).toContain('2 MiB')
  })

  it('re-publishing the same version is harmless: the same shards, one upload', async () => {
    const creds = await service.credentials()
    const env = { ...service.serviceEnv(), STORACHA_PRINCIPAL: creds.principal, STORACHA_PROOF: creds.proof }
    const target = await createStorachaTarget({ env })
    const first = await target.publish(await publishInput(), { shardSize: 64 * 1024 })
    const again = await target.publish(await publishInput(), { shardSize: 64 * 1024 })
    expect(again.shards.map(String)).toEqual(first.shards.map(String))
    expect(again.shards.map((s) => s.cid?.toString())).toEqual(first.shards.map((s) => s.cid?.toString()))
    // the service may route a blob to a storage node that lacks it and ask for it again: newBytes says
    // what was really sent, never more than the version's CARs
    expect(again.newBytes).toBeLessThanOrEqual(again.shards.reduce((n, s) => n + s.size, 0))
    expect(service.uploads().filter((u) => u.space === creds.space && u.root === dataset.version)).toHaveLength(1)
  })

  it('the default shard size sends the small version as one CAR with the version as its root', async () => {
    const creds = await service.credentials()
    // options instead of the environment (which is empty here)
    const target = await createStorachaTarget({
      env: {},
      serviceUrl: service.url,
      serviceDid: service.did,
      receiptsUrl: service.receiptsUrl,
      principal: creds.principal,
      proof: creds.proof,
    })
    const receipt = await target.publish(await publishInput())
    expect(receipt.shards).toHaveLength(1)
    const car = await readCar((await service.blob(String(receipt.shards[0].cid))) as Uint8Array)
    expect(car.roots).toEqual([dataset.version])
    expect(car.blocks).toEqual(dataset.blocks)
  })

  it('a space without storage provider is refused: PUBLISH_FAILED carries the service message', async () => {
    const creds = await service.credentials({ provision: false })
    const env = { ...service.serviceEnv(), STORACHA_PRINCIPAL: creds.principal, STORACHA_PROOF: creds.proof }
    const target = await createStorachaTarget({ env, retryDelay: 1 })
    const input = await publishInput()
    const before = service.posts
    const e = (await thrown(() => target.publish(input))) as CairnError
    expect(isCairnError(e, 'PUBLISH_FAILED'), String(e)).toBe(true)
    expect(e.message).toContain('InsufficientStorage')
    expect(e.message).toContain(`${creds.space} has no storage provider`)
    expect(e.subject).toBe(`storacha:${creds.space}`)
    // a refusal is not retried
    expect(service.posts - before).toBe(1)
    expect(service.uploads().some((u) => u.space === creds.space)).toBe(false)
    SECRET_FREE(`${e.message} ${e.hint}`, [creds.principal, creds.proof])
  })

  it.each([
    ['HTTP 503', 503 as const, /retrying after HTTP 503 \(1\/5\)/],
    ['a reset connection', 'reset' as const, /retrying after .*(ECONNRESET|UND_ERR_SOCKET|other side closed|socket)/i],
  ])('retries a transient failure (%s) and then succeeds', async (_name, mode, expected) => {
    const creds = await service.credentials()
    const env = { ...service.serviceEnv(), STORACHA_PRINCIPAL: creds.principal, STORACHA_PROOF: creds.proof }
    const target = await createStorachaTarget({ env, retryDelay: 5 })
    // filecoin/offer (after each shard is stored) is a request the client does not retry itself
    service.failRequests({ can: 'filecoin/offer', count: 1, mode })
    const messages: string[] = []
    const receipt = await target.publish(await publishInput(), { onProgress: (p) => void (p.message && messages.push(p.message)) })
    expect(receipt.root.toString()).toBe(dataset.version)
    expect(
      messages.some((m) => expected.test(m)),
      messages.join('\n'),
    ).toBe(true)
    expect(service.uploads().some((u) => u.space === creds.space && u.root === dataset.version)).toBe(true)
  })

  it('a service that no longer takes new writes (Storacha since May 2026): a clear PUBLISH_FAILED saying so, not retried', async () => {
    const creds = await service.credentials()
    const env = { ...service.serviceEnv(), STORACHA_PRINCIPAL: creds.principal, STORACHA_PROOF: creds.proof }
    const target = await createStorachaTarget({ env, retryDelay: 5 })
    service.failRequests({ count: 1000, mode: 'writes-disabled' })
    const before = service.posts
    const e = (await thrown(async () => target.publish(await publishInput()))) as CairnError
    service.failRequests({ count: 0, mode: 503 })
    expect(isCairnError(e, 'PUBLISH_FAILED'), String(e)).toBe(true)
    expect(e.message).toContain('no longer accepts new uploads')
    expect(e.message).toContain('Filecoin Onchain Cloud')
    expect(e.hint).toMatch(/dir:|kubo:/)
    // cairn does not retry a refusal (the client itself tries a blob/add up to 4 times)
    expect(service.posts - before).toBeLessThanOrEqual(4)
    SECRET_FREE(`${e.message} ${e.hint}`, [creds.principal, creds.proof])
  })

  it('gives up after the configured retries with PUBLISH_FAILED naming the service and the last error', async () => {
    const creds = await service.credentials()
    const env = {
      ...service.serviceEnv(),
      STORACHA_PRINCIPAL: creds.principal,
      STORACHA_PROOF: creds.proof,
      CAIRN_RETRIES: '2',
      CAIRN_RETRY_DELAY_MS: '5',
    }
    const target = await createStorachaTarget({ env })
    const input = await publishInput()
    service.failRequests({ can: 'filecoin/offer', count: 1000, mode: 503 })
    try {
      const e = (await thrown(() => target.publish(input))) as CairnError
      expect(isCairnError(e, 'PUBLISH_FAILED'), String(e)).toBe(true)
      expect(e.message).toMatch(/failed after 3 attempts/)
      expect(e.message).toContain('503')
      expect(e.message).toContain(service.url)
      expect(e.subject).toBe(`storacha:${creds.space}`)
    } finally {
      service.failRequests({ count: 0, mode: 503 })
    }
  })
})

describe('storacha target: credentials', () => {
  let good: Awaited<ReturnType<StorachaLoopback['credentials']>>
  let other: Awaited<ReturnType<StorachaLoopback['credentials']>>
  let noUpload: Awaited<ReturnType<StorachaLoopback['credentials']>>
  let expired: Awaited<ReturnType<StorachaLoopback['credentials']>>
  beforeAll(async () => {
    good = await service.credentials()
    other = await service.credentials()
    noUpload = await service.credentials({ abilities: ['space/blob/add', 'space/index/add', 'filecoin/offer'] })
    expired = await service.credentials({ expiration: Math.floor(Date.now() / 1000) - 60 })
  })

  // each bad configuration with the variable the message must name
  const cases: [string, string, () => Record<string, string>, RegExp][] = [
    [
      'nothing set and no login state',
      'STORACHA_PRINCIPAL',
      () => ({}),
      /STORACHA_PRINCIPAL and STORACHA_PROOF are not set.*cairn login|no login state/,
    ],
    ['only the key', 'STORACHA_PROOF', () => ({ STORACHA_PRINCIPAL: good.principal }), /STORACHA_PROOF is not set/],
    ['only the delegation', 'STORACHA_PRINCIPAL', () => ({ STORACHA_PROOF: good.proof }), /STORACHA_PRINCIPAL is not set/],
    [
      'a malformed key',
      'STORACHA_PRINCIPAL',
      () => ({ STORACHA_PRINCIPAL: good.principal.slice(0, 20) + 'xx', STORACHA_PROOF: good.proof }),
      /STORACHA_PRINCIPAL is not an ed25519 private key/,
    ],
    [
      'a malformed delegation',
      'STORACHA_PROOF',
      () => ({ STORACHA_PRINCIPAL: good.principal, STORACHA_PROOF: 'bm90IGEgcHJvb2Y' + good.proof.slice(-10) }),
      /STORACHA_PROOF is not a base64 UCAN delegation/,
    ],
    [
      'a delegation to another agent',
      'STORACHA_PROOF',
      () => ({ STORACHA_PRINCIPAL: good.principal, STORACHA_PROOF: other.proof }),
      /STORACHA_PROOF delegates to did:key:.*not to the agent key in STORACHA_PRINCIPAL/,
    ],
    [
      'a delegation without upload/add',
      'STORACHA_PROOF',
      () => ({ STORACHA_PRINCIPAL: noUpload.principal, STORACHA_PROOF: noUpload.proof }),
      /does not grant upload\/add/,
    ],
    [
      'an expired delegation',
      'STORACHA_PROOF',
      () => ({ STORACHA_PRINCIPAL: expired.principal, STORACHA_PROOF: expired.proof }),
      /STORACHA_PROOF expired on/,
    ],
  ]
  it.each(cases)('%s → AUTH naming %s, never quoting a secret', async (_name, variable, vars, message) => {
    const configDir = join(await tmp.make(), 'no-login')
    const e = (await thrown(() => createStorachaTarget({ env: { ...service.serviceEnv(), ...vars() }, configDir }))) as CairnError
    expect(isCairnError(e, 'AUTH'), String(e)).toBe(true)
    expect(e.subject).toBe(variable)
    expect(e.message).toMatch(message)
    const secrets = [good, other, noUpload, expired].flatMap((c) => [c.principal, c.proof, c.principal.slice(0, 20)])
    SECRET_FREE(JSON.stringify({ message: e.message, hint: e.hint, subject: e.subject, details: e.details }), secrets)
  })

  it.each([
    ['STORACHA_SERVICE_URL', { STORACHA_SERVICE_URL: 'not a url' }],
    ['STORACHA_SERVICE_URL', { STORACHA_SERVICE_URL: 'ftp://user:secret@example.com/' }],
    ['STORACHA_SERVICE_DID', { STORACHA_SERVICE_URL: 'http://127.0.0.1:1', STORACHA_SERVICE_DID: 'up.storacha.network' }],
    ['STORACHA_RECEIPTS_URL', { STORACHA_RECEIPTS_URL: '/receipt/' }],
  ])('a malformed %s → USAGE naming it (a URL is never quoted back)', async (variable, vars) => {
    const e = (await thrown(() =>
      createStorachaTarget({ env: { STORACHA_PRINCIPAL: good.principal, STORACHA_PROOF: good.proof, ...vars } }),
    )) as CairnError
    expect(isCairnError(e, 'USAGE'), String(e)).toBe(true)
    expect(e.subject).toBe(variable)
    expect(e.message).not.toContain('secret')
  })

  it('storacha:<space> must be the delegated space', async () => {
    const env = { ...service.serviceEnv(), STORACHA_PRINCIPAL: good.principal, STORACHA_PROOF: good.proof }
    expect((await createStorachaTarget({ env, space: good.space })).address).toBe(`storacha:${good.space}`)
    const e = (await thrown(() => createStorachaTarget({ env, space: other.space }))) as CairnError
    expect(isCairnError(e, 'AUTH'), String(e)).toBe(true)
    expect(e.message).toContain(`delegates space ${good.space}, not ${other.space}`)
  })
})

describe('storacha target: cairn login state', () => {
  /** Runs `login` while playing the user who clicks the emailed link. */
  async function loginAndConfirm(configDir: string, email: string) {
    const done = login({ email, configDir, env: service.serviceEnv() })
    let mail: unknown
    for (let i = 0; i < 100 && !mail; i++) {
      mail = await service.context.mail.take()
      if (!mail) await new Promise((r) => setTimeout(r, 50))
    }
    expect(mail, 'the service sent a confirmation email').toBeDefined()
    await service.context.grantAccess(mail as never)
    return done
  }

  it('login keeps the agent in a private folder; the target then publishes to the provisioned space', async () => {
    const configDir = join(await tmp.make(), 'cairn', 'storacha')
    const result = await loginAndConfirm(configDir, 'alice@example.com')
    expect(result.account).toBe('did:mailto:example.com:alice')
    expect(result.spaceCreated).toBe(true)
    expect(result.space).toMatch(/^did:key:z/)
    expect(result.stateDir).toBe(configDir)
    if (process.platform !== 'win32') {
      expect((await stat(configDir)).mode & 0o777).toBe(0o700)
      expect((await stat(join(configDir, AGENT_STATE_FILE))).mode & 0o777).toBe(0o600)
    }
    const state = JSON.parse(await readFile(join(configDir, AGENT_STATE_FILE), 'utf8')) as { format: string; v: number }
    expect([state.format, state.v]).toEqual(['cairn-storacha-agent', 1])

    // no STORACHA_PRINCIPAL / STORACHA_PROOF: the login state is used
    const target = await createStorachaTarget({ env: service.serviceEnv(), configDir })
    expect(target.address).toBe(`storacha:${result.space}`)
    const receipt = await target.publish(await publishInput(), { shardSize: 64 * 1024 })
    expect(service.uploads().some((u) => u.space === result.space && u.root === dataset.version)).toBe(true)
    expect(receipt.shards.length).toBeGreaterThan(0)
    expect((await createStorachaTarget({ env: service.serviceEnv(), configDir, space: result.space })).address).toBe(
      `storacha:${result.space}`,
    )

    // a second login with the same state reuses the session (no email) and the space
    let waited = false
    const again = await login({ email: 'alice@example.com', configDir, env: service.serviceEnv(), onWaiting: () => (waited = true) })
    expect(waited).toBe(false)
    expect(again.space).toBe(result.space)
    expect(again.spaceCreated).toBe(false)
  })

  it('refuses a login state other users can read, and one of an unknown format', async () => {
    if (process.platform === 'win32') return
    const configDir = join(await tmp.make(), 'state')
    await loginAndConfirm(configDir, 'bob@example.com')
    const file = join(configDir, AGENT_STATE_FILE)
    await chmod(file, 0o644)
    let e = (await thrown(() => createStorachaTarget({ env: service.serviceEnv(), configDir }))) as CairnError
    expect(isCairnError(e, 'AUTH'), String(e)).toBe(true)
    expect(e.message).toContain('readable by other users')
    expect(e.hint).toContain('chmod 600')
    await chmod(file, 0o600)
    const { writeFile } = await import('node:fs/promises')
    await writeFile(file, JSON.stringify({ format: 'cairn-storacha-agent', v: 99, agent: {} }), { mode: 0o600 })
    e = (await thrown(() => createStorachaTarget({ env: service.serviceEnv(), configDir }))) as CairnError
    expect(isCairnError(e, 'AUTH'), String(e)).toBe(true)
    expect(e.message).toMatch(/version 99 \(expected cairn-storacha-agent version 1\)/)
  })

  it('login refuses something that is not an email address, before touching the state folder', async () => {
    const configDir = join(await tmp.make(), 'never-written')
    const e = (await thrown(() => login({ email: 'not-an-email', configDir, env: service.serviceEnv() }))) as CairnError
    expect(isCairnError(e, 'USAGE'), String(e)).toBe(true)
    expect(existsSync(configDir)).toBe(false)
  })
})

describe('cairn login / cairn publish --to storacha: the compiled CLI as a child process, configured only by environment variables', () => {
  const compiled = [
    join(repoRoot, 'dist', 'commands', 'publish.js'),
    join(repoRoot, 'dist', 'commands', 'login.js'),
    join(repoRoot, 'dist', 'src', 'targets', 'storacha.js'),
  ]
  beforeAll(() => ensureBuilt())

  /** A clean environment: no credential but those given, a private HOME. */
  async function cleanEnv(vars: Record<string, string> = {}): Promise<NodeJS.ProcessEnv> {
    const home = await tmp.make()
    return { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: join(home, '.config'), ...service.serviceEnv(), ...vars }
  }

  it('publish with STORACHA_PRINCIPAL / STORACHA_PROOF prints the receipt as JSON, without any secret', async (ctx) => {
    if (!compiled.every((f) => existsSync(f))) ctx.skip()
    const creds = await service.credentials()
    const env = await cleanEnv({ STORACHA_PRINCIPAL: creds.principal, STORACHA_PROOF: creds.proof })
    const r = await spawnCairn(['publish', '--to', 'storacha', '--shard-size', '64KiB', '--json'], { cwd: dataset.dir, env })
    expect(r.exitCode, r.stderr + r.stdout.toString()).toBe(0)
    const out = JSON.parse(r.stdout.toString('utf8')) as {
      target: string
      root: { '/': string }
      shards: { cid: { '/': string }; size: number }[]
    }
    expect(validateWith('cli/publish.schema.json', out)).toEqual([])
    expect(out.target).toBe(`storacha:${creds.space}`)
    expect(out.root['/']).toBe(dataset.version)
    const upload = service.uploads().find((u) => u.space === creds.space && u.root === dataset.version)
    expect(upload?.shards).toEqual(out.shards.map((s) => s.cid['/']))
    SECRET_FREE(r.stdout.toString('utf8') + r.stderr, [creds.principal, creds.proof])
    // the receipt recorded in the store holds no secret either
    const published = await spawnCairn(['published', '--json'], { cwd: dataset.dir, env })
    expect(published.exitCode, published.stderr).toBe(0)
    SECRET_FREE(published.stdout.toString('utf8'), [creds.principal, creds.proof])
  })

  it('publish without credentials exits 8 (AUTH) naming the variables', async (ctx) => {
    if (!compiled.every((f) => existsSync(f))) ctx.skip()
    const creds = await service.credentials()
    const missing = await spawnCairn(['publish', '--to', 'storacha', '--json'], { cwd: dataset.dir, env: await cleanEnv() })
    expect(missing.exitCode, missing.stderr).toBe(8)
    const error = JSON.parse(missing.stdout.toString('utf8')) as { error: { code: string; message: string; subject?: string } }
    expect(validateWith('cli/error.schema.json', error)).toEqual([])
    expect(error.error.code).toBe('AUTH')
    expect(error.error.message).toContain('STORACHA_PRINCIPAL')
    expect(error.error.message).toContain('STORACHA_PROOF')
    // a malformed key: named, never echoed
    const bad = await spawnCairn(['publish', '--to', 'storacha'], {
      cwd: dataset.dir,
      env: await cleanEnv({ STORACHA_PRINCIPAL: 'Mg' + creds.proof.slice(0, 30), STORACHA_PROOF: creds.proof }),
    })
    expect(bad.exitCode).toBe(8)
    expect(bad.stderr).toContain('STORACHA_PRINCIPAL is not an ed25519 private key')
    SECRET_FREE(bad.stderr + bad.stdout.toString('utf8'), [creds.proof, creds.proof.slice(0, 30)])
  })

  it('login by email (link clicked), then publish with the login state alone', async (ctx) => {
    if (!compiled.every((f) => existsSync(f))) ctx.skip()
    const env = await cleanEnv()
    const running = spawnCairn(['login', 'carol@example.com', '--json'], { cwd: dataset.dir, env })
    let mail: unknown
    for (let i = 0; i < 200 && !mail; i++) {
      mail = await service.context.mail.take()
      if (!mail) await new Promise((r) => setTimeout(r, 50))
    }
    expect(mail, 'the service sent a confirmation email').toBeDefined()
    await service.context.grantAccess(mail as never)
    const r = await running
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stderr).toContain('click the link in the email sent to carol@example.com')
    const result = JSON.parse(r.stdout.toString('utf8')) as { account: string; space: string; stateDir: string }
    expect(validateWith('cli/login.schema.json', result)).toEqual([])
    expect(result.account).toBe('did:mailto:example.com:carol')
    expect(result.stateDir).toBe(join(env.XDG_CONFIG_HOME as string, 'cairn', 'storacha'))
    expect((await stat(join(result.stateDir, AGENT_STATE_FILE))).mode & 0o077).toBe(0)

    const published = await spawnCairn(['publish', '--to', 'storacha', '--json'], { cwd: dataset.dir, env })
    expect(published.exitCode, published.stderr + published.stdout.toString('utf8')).toBe(0)
    expect((JSON.parse(published.stdout.toString('utf8')) as { target: string }).target).toBe(`storacha:${result.space}`)
    expect(service.uploads().some((u) => u.space === result.space && u.root === dataset.version)).toBe(true)
  })
})
