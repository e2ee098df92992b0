/**
 * Anchors against a real Ethereum node: anvil (foundry) on 127.0.0.1, a port of its own, stopped
 * after. Deploy, anchor v1 and v2, verify; a version never anchored; a snapshot reverted and blocks
 * re-mined so that an anchor disappears; two anchors of one version; another sender; an address with
 * no code; a contract that reverts and a transaction mined but reverted; no funds; an endpoint down
 * or answering garbage; malformed keys; another chain id; receipts edited by hand. Every failure must
 * leave no receipt, and no output may hold the key.
 */
import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { cp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createWalletClient, decodeEventLog, http, type Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as artifact from '../src/anchors/artifact.generated.js'
import { anchor, isCairnError } from '../src/index.js'
import { versionDigest } from '../src/anchors/digest.js'
import { CID } from '../src/cid.js'
import { validateWith } from '../src/schemas.js'
import { startAnvil, type Anvil } from './helpers/anvil.js'
import { binPath, cairn, ensureBuilt, parseJson, type CliResult } from './helpers/cli.js'
import { builtTemplate, thrown, type BuiltDataset } from './helpers/dataset.js'
import { tempDirs } from './helpers/tmp.js'

const tmp = tempDirs('cairn-anchor-')
const template = builtTemplate()
let node: Anvil
let key0: Hex
let key1: Hex
let ds: BuiltDataset
let v3: string
let contract: Hex
const outputs: string[] = []
const REVERT_CODE = '0x60006000fd' // PUSH1 0 PUSH1 0 REVERT

beforeAll(async () => {
  ensureBuilt()
  node = await startAnvil()
  ;[key0, key1] = node.keys as [Hex, Hex]
  ds = await template.copy(tmp)
}, 120_000)
afterAll(async () => {
  await node?.stop()
  await template.dispose()
  await tmp.cleanup()
})

/** Runs cairn in-process with the key of account 0 (unless told) and short retries; keeps every output. */
async function run(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const r = await cairn(args, { env: { CAIRN_ETH_KEY: key0, CAIRN_RETRIES: '2', CAIRN_RETRY_DELAY_MS: '10', ...env } })
  outputs.push(r.stdout, r.stderr, r.error?.message ?? '')
  return r
}

function expectSchema(name: string, value: unknown): void {
  expect(validateWith(`cli/${name}.schema.json`, value), JSON.stringify(value).slice(0, 300)).toEqual([])
}

interface ErrorJson {
  error: { code: string; message: string; hint?: string }
}
function expectError(r: CliResult, exitCode: number, code: string, message: RegExp): ErrorJson['error'] {
  const json = parseJson<ErrorJson>(r)
  expect(json.error, r.stdout).toBeDefined()
  expect(`${json.error.code}: ${json.error.message}`).toMatch(new RegExp(`^${code}: `))
  expect(json.error.message).toMatch(message)
  expect(r.exitCode).toBe(exitCode)
  expectSchema('error', json)
  return json.error
}

async function receiptFiles(dir: string): Promise<string[]> {
  const base = join(dir, '.cairn', 'anchors', 'receipts')
  const out: string[] = []
  for (const v of await readdir(base).catch(() => [] as string[])) for (const f of await readdir(join(base, v))) out.push(join(base, v, f))
  return out.sort()
}

interface ReceiptJson {
  version: { '/': string }
  chainId: number
  contract: Hex
  txHash: Hex
  blockNumber: number
  blockHash: Hex
  logIndex: number
  sender: Hex
  blockTime: string
  confirmations: number
  args: { dataset: Hex; version: Hex; parent: Hex; sequence: number }
}
interface AnchorJson {
  kind: 'anchor'
  ok: boolean
  reason?: string
  message: string
  anchors: { txHash: Hex; sender: Hex; blockNumber: number; blockTime: string; recorded: boolean; confirmations: number }[]
  earliest?: { txHash: Hex; sender: Hex; blockNumber: number; blockTime: string }
}

const addr = (key: Hex): Hex => privateKeyToAccount(key).address

/** Runs `node bin/run.js <args>` as a child process, stdin ignored. */
function spawnCli(args: readonly string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CAIRN_RETRIES: '2', CAIRN_RETRY_DELAY_MS: '10', ...env },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** A loopback HTTP server answering every request with `answer`, counting them. */
async function fakeRpc(
  answer: (res: import('node:http').ServerResponse) => void,
): Promise<{ url: string; count: () => number; close: () => Promise<void> }> {
  let n = 0
  const server: Server = createServer((req, res) => {
    n++
    req.resume()
    req.on('end', () => answer(res))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, count: () => n, close: () => new Promise((resolve) => server.close(() => resolve())) }
}

describe('anchor on a real chain (anvil on loopback)', () => {
  let r1: ReceiptJson
  let r2: ReceiptJson

  it('anchor deploy deploys the shipped contract and records its address for the chain', async () => {
    const r = await run(['anchor', 'deploy', '--chain', node.rpc, '-C', ds.dir, '--json'])
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const record = parseJson<{ address: Hex; chainId: number; deployer: Hex }>(r)
    expectSchema('anchor-deploy', record)
    expect(record.chainId).toBe(31337)
    expect(record.deployer).toBe(addr(key0))
    contract = record.address
    // the node holds exactly the runtime code solc-js made of the source
    expect(await node.client.getCode({ address: contract })).toBe(artifact.deployedBytecode)
    const saved = JSON.parse(await readFile(join(ds.dir, '.cairn', 'anchors', 'contracts', '31337.json'), 'utf8')) as { address: string }
    expect(saved.address).toBe(contract)
  })

  it('anchors v1, then v2 whose parent is v1; the receipts hold what the chain logged', async () => {
    const a = await run(['anchor', ds.v1, '--chain', node.rpc, '-C', ds.dir, '--json'])
    expect(a.exitCode, a.stdout + a.stderr).toBe(0)
    r1 = parseJson<ReceiptJson>(a)
    expectSchema('anchor', r1)
    const b = await run(['anchor', ds.v2, '--chain', node.rpc, '-C', ds.dir, '--json'])
    expect(b.exitCode, b.stdout + b.stderr).toBe(0)
    r2 = parseJson<ReceiptJson>(b)
    expectSchema('anchor', r2)
    expect(r1.args.version).toBe(versionDigest(CID.parse(ds.v1)))
    expect(r1.args.parent).toBe(`0x${'00'.repeat(32)}`)
    expect(r1.args.sequence).toBe(1)
    expect(r2.args.parent).toBe(r1.args.version)
    expect(r2.args.sequence).toBe(2)
    expect(r2.contract).toBe(contract)
    // the node's own view of the log, decoded by viem from the ABI
    const receipt = await node.client.getTransactionReceipt({ hash: r2.txHash })
    expect(receipt.blockHash).toBe(r2.blockHash)
    const log = receipt.logs[r2.logIndex]
    const decoded = decodeEventLog({ abi: artifact.abi, data: log.data, topics: log.topics })
    expect(decoded.args).toEqual({
      dataset: r2.args.dataset,
      version: r2.args.version,
      sender: addr(key0),
      parent: r1.args.version,
      sequence: 2n,
    })
    const block = await node.client.getBlock({ blockNumber: BigInt(r2.blockNumber) })
    expect(r2.blockTime).toBe(new Date(Number(block.timestamp) * 1000).toISOString())
    expect(await receiptFiles(ds.dir)).toHaveLength(2)
    const list = await run(['anchors', '-C', ds.dir, '--json'])
    expect(list.exitCode).toBe(0)
    expectSchema('anchors', parseJson(list))
    expect(parseJson<ReceiptJson[]>(list).map((x) => x.txHash)).toEqual([r1.txHash, r2.txHash])
    const human = await run(['anchors', 'HEAD', '-C', ds.dir])
    expect(human.stdout).toContain(r2.txHash)
    expect(human.stdout).not.toContain(r1.txHash)
  })

  it('verify --anchored: both versions ok, with the block time as public timestamp and the sender', async () => {
    for (const [v, rec] of [
      [ds.v1, r1],
      [ds.v2, r2],
    ] as const) {
      const r = await run(['verify', v, '--anchored', '--chain', node.rpc, '-C', ds.dir, '--json'])
      expect(r.exitCode, r.stdout).toBe(0)
      const report = parseJson<AnchorJson>(r)
      expectSchema('verify', report)
      expect(report.ok).toBe(true)
      expect(report.earliest).toMatchObject({
        txHash: rec.txHash,
        sender: addr(key0),
        blockTime: rec.blockTime,
        blockNumber: rec.blockNumber,
      })
      expect(report.anchors).toHaveLength(1)
      expect(report.anchors[0].recorded).toBe(true)
    }
    const human = await run(['verify', ds.v1, '--anchored', '--chain', node.rpc, '-C', ds.dir])
    expect(human.stdout).toMatch(new RegExp(`ok: ${ds.v1} anchored on chain 31337 at ${r1.blockTime}`))
  })

  it('a version never anchored: exit 1, "not anchored"', async () => {
    const built = await run(['build', '-C', ds.dir, '-m', 'third', '--allow-empty', '--json'])
    v3 = parseJson<{ version: { '/': string } }>(built).version['/']
    const r = await run(['verify', v3, '--anchored', '--chain', node.rpc, '-C', ds.dir, '--json'])
    expect(r.exitCode).toBe(1)
    const report = parseJson<AnchorJson>(r)
    expectSchema('verify', report)
    expect(report).toMatchObject({ ok: false, reason: 'not-anchored', anchors: [] })
    const human = await run(['verify', v3, '--anchored', '--chain', node.rpc, '-C', ds.dir])
    expect(human.stdout).toMatch(/FAILED: .* is not anchored on chain 31337/)
    const mixed = await run(['verify', v3, ds.dir, '--anchored', '--chain', node.rpc, '-C', ds.dir, '--json'])
    expectError(mixed, 2, 'USAGE', /takes no folder and no --car/)
    const noChain = await run(['verify', v3, '--anchored', '-C', ds.dir, '--json'])
    expect(noChain.exitCode).toBe(2)
  })

  it('the same version twice: refused without --again; with it two anchors, and the earliest counts', async () => {
    const refused = await run(['anchor', ds.v1, '--chain', node.rpc, '-C', ds.dir, '--json'])
    expectError(refused, 2, 'USAGE', /already anchored on chain 31337/)
    expect(await receiptFiles(ds.dir)).toHaveLength(2)
    const again = await run(['anchor', ds.v1, '--chain', node.rpc, '-C', ds.dir, '--again', '--json'])
    expect(again.exitCode).toBe(0)
    const second = parseJson<ReceiptJson>(again)
    expect(second.txHash).not.toBe(r1.txHash)
    expect(await receiptFiles(ds.dir)).toHaveLength(3)
    const report = parseJson<AnchorJson>(await run(['verify', ds.v1, '--anchored', '--chain', node.rpc, '-C', ds.dir, '--json']))
    expect(report.anchors.map((a) => a.txHash)).toEqual([r1.txHash, second.txHash])
    expect(report.earliest?.txHash).toBe(r1.txHash)
  })

  it('an anchor by another sender is reported as theirs; --sender counts only the one asked for', async () => {
    const other = await run(['anchor', ds.v2, '--chain', node.rpc, '-C', ds.dir, '--again', '--json'], { CAIRN_ETH_KEY: key1 })
    expect(other.exitCode, other.stdout).toBe(0)
    expect(parseJson<ReceiptJson>(other).sender).toBe(addr(key1))
    const all = parseJson<AnchorJson>(await run(['verify', ds.v2, '--anchored', '--chain', node.rpc, '-C', ds.dir, '--json']))
    expect(all.anchors.map((a) => a.sender)).toEqual([addr(key0), addr(key1)])
    const theirs = await run([
      'verify',
      ds.v2,
      '--anchored',
      '--chain',
      node.rpc,
      '-C',
      ds.dir,
      '--sender',
      addr(key1).toLowerCase(),
      '--json',
    ])
    expect(theirs.exitCode).toBe(0)
    expect(parseJson<AnchorJson>(theirs).earliest?.sender).toBe(addr(key1))
    const nobody = privateKeyToAccount(node.keys[5]).address
    const none = await run(['verify', ds.v2, '--anchored', '--chain', node.rpc, '-C', ds.dir, '--sender', nobody, '--json'])
    expect(none.exitCode).toBe(1)
    expect(parseJson<AnchorJson>(none)).toMatchObject({ ok: false, reason: 'other-sender' })
    expect(parseJson<AnchorJson>(none).message).toContain(`not anchored by ${nobody}`)
  })

  it('--calldata prints the call unsent; sent by another tool (a multisig, say), verify finds it by its logs', async () => {
    const before = await node.client.getBlockNumber()
    const r = await run(['anchor', v3, '--calldata', '--contract', contract, '-C', ds.dir, '--json'], { CAIRN_ETH_KEY: undefined })
    expect(r.exitCode, r.stdout).toBe(0)
    const call = parseJson<{ data: Hex; to: Hex; args: { version: Hex; sequence: number } }>(r)
    expectSchema('anchor', call)
    expect(call.args.version).toBe(versionDigest(CID.parse(v3)))
    expect(call.args.sequence).toBe(3)
    expect(await node.client.getBlockNumber()).toBe(before)
    const human = await run(['anchor', v3, '--calldata', '-C', ds.dir])
    expect(human.stdout).toContain(call.data)
    // the data sent as is by a wallet cairn did not write
    const account = privateKeyToAccount(node.keys[2])
    const wallet = createWalletClient({ account, transport: http(node.rpc), chain: null })
    const hash = await wallet.sendTransaction({ to: call.to, data: call.data, chain: null })
    expect((await node.client.waitForTransactionReceipt({ hash })).status).toBe('success')
    const report = await run(['verify', v3, '--anchored', '--chain', node.rpc, '-C', ds.dir, '--json'])
    expect(report.exitCode).toBe(0)
    expect(parseJson<AnchorJson>(report).earliest).toMatchObject({ txHash: hash, sender: account.address })
    expect(parseJson<AnchorJson>(report).anchors[0].recorded).toBe(false)
    // and by CID alone, outside any dataset, given the contract
    const outside = await tmp.make()
    const bare = await run(['verify', v3, '--anchored', '--chain', node.rpc, '--contract', contract, '-C', outside, '--json'])
    expect(bare.exitCode, bare.stdout).toBe(0)
    expect(parseJson<AnchorJson>(bare).earliest?.txHash).toBe(hash)
  })

  it('waits for the confirmations asked for; verify asking for more than there are exits 1', async () => {
    const copy = await template.copy(tmp)
    await cp(join(ds.dir, '.cairn', 'anchors', 'contracts'), join(copy.dir, '.cairn', 'anchors', 'contracts'), { recursive: true })
    let mining = true
    const miner = (async () => {
      while (mining) {
        await new Promise((resolve) => setTimeout(resolve, 150))
        await node.client.mine({ blocks: 1 })
      }
    })()
    try {
      const result = await anchor({
        dir: copy.dir,
        ref: copy.v1,
        chain: node.rpc,
        confirmations: 3,
        pollingIntervalMs: 50,
        env: { CAIRN_ETH_KEY: key0 },
      })
      expect(result.confirmations).toBeGreaterThanOrEqual(3)
    } finally {
      mining = false
      await miner
    }
    const r = await run(['verify', copy.v1, '--anchored', '--chain', node.rpc, '-C', copy.dir, '--confirmations', '100000', '--json'])
    expect(r.exitCode).toBe(1)
    expect(parseJson<AnchorJson>(r)).toMatchObject({ ok: false, reason: 'unconfirmed' })
  })

  it('a snapshot reverted and the blocks mined again: verify with the receipt exits 10, without it "not anchored"', async () => {
    const copy = join(await tmp.make(), 'd')
    await cp(ds.dir, copy, { recursive: true })
    const snapshot = await node.client.snapshot()
    const a = await run(['anchor', v3, '--chain', node.rpc, '-C', copy, '--again', '--json'])
    expect(a.exitCode, a.stdout).toBe(0)
    const rec = parseJson<ReceiptJson>(a)
    await node.client.revert({ id: snapshot })
    await node.client.mine({ blocks: 3 })
    const r = await run(['verify', v3, '--anchored', '--chain', node.rpc, '-C', copy, '--json'])
    expectError(
      r,
      10,
      'ANCHOR_MISMATCH',
      new RegExp(`block ${rec.blockNumber} is now 0x[0-9a-f]{64}, not ${rec.blockHash}: the recorded block was reorganised away`),
    )
    const human = await run(['verify', v3, '--anchored', '--chain', node.rpc, '-C', copy])
    expect(human.exitCode).toBe(10)
    expect(human.stderr).toMatch(/does not match chain 31337/)
    // the chain's own logs no longer hold it: only the multisig's anchor of v3 remains
    await rm(join(copy, '.cairn', 'anchors', 'receipts', v3), { recursive: true })
    const report = parseJson<AnchorJson>(await run(['verify', v3, '--anchored', '--chain', node.rpc, '-C', copy, '--json']))
    expect(report.anchors.map((x) => x.txHash)).not.toContain(rec.txHash)
  })

  it('anvil_reorg replaces the block of an anchor: verify notices (exit 10)', async () => {
    const copy = await template.copy(tmp)
    await cp(join(ds.dir, '.cairn', 'anchors', 'contracts'), join(copy.dir, '.cairn', 'anchors', 'contracts'), { recursive: true })
    const a = await run(['anchor', copy.v1, '--chain', node.rpc, '-C', copy.dir, '--again', '--json'])
    expect(a.exitCode, a.stdout).toBe(0)
    const rec = parseJson<ReceiptJson>(a)
    await node.client.mine({ blocks: 1 })
    // re-mine the last 2 blocks without the anchor's transaction
    await node.client.request({ method: 'anvil_reorg', params: [2, []] } as never)
    const r = await run(['verify', copy.v1, '--anchored', '--chain', node.rpc, '-C', copy.dir, '--json'])
    expectError(r, 10, 'ANCHOR_MISMATCH', /reorganised away|no such transaction/)
    expect(rec.blockNumber).toBeGreaterThan(0)
  })
})

describe('anchor failures: each a clear message, no receipt, no key', () => {
  async function freshCopy(): Promise<BuiltDataset> {
    const copy = await template.copy(tmp)
    await cp(join(ds.dir, '.cairn', 'anchors', 'contracts'), join(copy.dir, '.cairn', 'anchors', 'contracts'), { recursive: true })
    return copy
  }

  it('an address with no code: exit 2, nothing sent', async () => {
    const copy = await freshCopy()
    const nonce = await node.client.getTransactionCount({ address: addr(key0) })
    const r = await run([
      'anchor',
      '--chain',
      node.rpc,
      '-C',
      copy.dir,
      '--contract',
      '0x000000000000000000000000000000000000dEaD',
      '--json',
    ])
    expectError(r, 2, 'USAGE', /There is no contract at 0x000000000000000000000000000000000000dEaD on chain 31337/)
    const v = await run([
      'verify',
      ds.v1,
      '--anchored',
      '--chain',
      node.rpc,
      '-C',
      copy.dir,
      '--contract',
      '0x000000000000000000000000000000000000dEaD',
      '--json',
    ])
    expectError(v, 2, 'USAGE', /There is no contract at 0x000000000000000000000000000000000000dEaD on chain 31337/)
    expect(await node.client.getTransactionCount({ address: addr(key0) })).toBe(nonce)
    expect(await receiptFiles(copy.dir)).toEqual([])
  })

  it('a contract that reverts: exit 7, "reverted", nothing sent', async () => {
    const copy = await freshCopy()
    const bad = '0x00000000000000000000000000000000000bad01' as Hex
    await node.client.setCode({ address: bad, bytecode: REVERT_CODE })
    const r = await run(['anchor', '--chain', node.rpc, '-C', copy.dir, '--contract', bad, '--json'])
    expectError(r, 7, 'ANCHOR_FAILED', /the contract reverted the call/)
    expect(await receiptFiles(copy.dir)).toEqual([])
  })

  it('a transaction mined but reverted: ANCHOR_FAILED, no receipt', async () => {
    const copy = await freshCopy()
    const turncoat = '0x00000000000000000000000000000000000bad02' as Hex
    await node.client.setCode({ address: turncoat, bytecode: artifact.deployedBytecode })
    await node.client.setAutomine(false)
    try {
      const e = await thrown(() =>
        anchor({
          dir: copy.dir,
          chain: node.rpc,
          contract: turncoat,
          pollingIntervalMs: 50,
          env: { CAIRN_ETH_KEY: key0 },
          // once the transaction is in the pool, the contract starts reverting and the block is mined
          onProgress: (p) => {
            if (p.stage === 'sent')
              void node.client.setCode({ address: turncoat, bytecode: REVERT_CODE }).then(() => node.client.mine({ blocks: 1 }))
          },
        }),
      )
      expect(isCairnError(e, 'ANCHOR_FAILED'), String(e)).toBe(true)
      expect((e as Error).message).toMatch(/was mined in block \d+ but reverted: nothing was anchored and no receipt was recorded/)
    } finally {
      await node.client.setAutomine(true)
    }
    expect(await receiptFiles(copy.dir)).toEqual([])
  })

  it('an account without funds: exit 7 naming the account, no receipt', async () => {
    const copy = await freshCopy()
    const poor = generatePrivateKey()
    const r = await run(['anchor', '--chain', node.rpc, '-C', copy.dir, '--json'], { CAIRN_ETH_KEY: poor })
    expectError(r, 7, 'ANCHOR_FAILED', new RegExp(`the account ${addr(poor)} has not enough ETH`))
    expect(await receiptFiles(copy.dir)).toEqual([])
    expect(r.stdout + r.stderr).not.toContain(poor.slice(2))
  })

  it.each([
    ['not hex', 'this-is-not-a-key-at-all-but-it-is-long-enough-to-look-like-one!!', /holds characters that are not hex/],
    ['too short', '0x1234', /has 4 hex digits/],
    ['zero', `0x${'0'.repeat(64)}`, /zero or not below/],
  ])('a malformed CAIRN_ETH_KEY (%s): exit 8, the value never shown, nothing sent', async (_, key, message) => {
    const copy = await freshCopy()
    const r = await run(['anchor', '--chain', node.rpc, '-C', copy.dir, '--json'], { CAIRN_ETH_KEY: key })
    expectError(r, 8, 'AUTH', message)
    expect(r.stdout + r.stderr).not.toContain(key)
    const none = await run(['anchor', '--chain', node.rpc, '-C', copy.dir, '--json'], { CAIRN_ETH_KEY: undefined })
    expectError(none, 8, 'AUTH', /CAIRN_ETH_KEY is not set/)
    expect(await receiptFiles(copy.dir)).toEqual([])
  })

  it('a keystore file signs as its key does', async () => {
    const { Keystore } = await import('ox')
    const copy = await freshCopy()
    const [k, opts] = Keystore.scrypt({ password: 'secret-pw', n: 1024, r: 8, p: 1 })
    const file = join(copy.dir, '..', 'key.json')
    await writeFile(file, JSON.stringify(Keystore.encrypt(node.keys[3], k, opts)))
    const r = await run(['anchor', '--chain', node.rpc, '-C', copy.dir, '--keystore', file, '--json'], {
      CAIRN_ETH_KEY: undefined,
      CAIRN_ETH_KEYSTORE_PASSWORD: 'secret-pw',
    })
    expect(r.exitCode, r.stdout).toBe(0)
    expect(parseJson<ReceiptJson>(r).sender).toBe(addr(node.keys[3]))
    const wrong = await run(['anchor', '--chain', node.rpc, '-C', copy.dir, '--keystore', file, '--again', '--json'], {
      CAIRN_ETH_KEY: undefined,
      CAIRN_ETH_KEYSTORE_PASSWORD: 'nope',
    })
    expectError(wrong, 8, 'AUTH', /Wrong password for the keystore/)
    expect(wrong.stdout).not.toContain('secret-pw')
  })

  it('another chain id: anchor --chain-id refuses (exit 2); receipts of chain 31337 against chain 999 exit 10', async () => {
    const copy = await freshCopy()
    const r = await run(['anchor', '--chain', node.rpc, '-C', copy.dir, '--chain-id', '8453', '--json'])
    expectError(r, 2, 'USAGE', /is chain 31337, not chain 8453/)
    const other = await startAnvil({ chainId: 999 })
    try {
      const v = await run(['verify', ds.v1, '--anchored', '--chain', other.rpc, '-C', ds.dir, '--json'])
      expectError(v, 10, 'ANCHOR_MISMATCH', /are on chain 31337, but http:\/\/127\.0\.0\.1:\d+ is chain 999/)
      const none = await run(['anchor', '--chain', other.rpc, '-C', copy.dir, '--json'])
      expectError(none, 2, 'USAGE', /No anchor contract is recorded for chain 999/)
    } finally {
      await other.stop()
    }
    expect(await receiptFiles(copy.dir)).toEqual([])
  })

  it('receipts edited by hand: another block hash or another transaction exit 10; an unreadable one exits 5', async () => {
    const copy = join(await tmp.make(), 'd')
    await cp(ds.dir, copy, { recursive: true })
    const [v1File] = (await receiptFiles(copy)).filter((f) => f.includes(ds.v1))
    const [v2File] = (await receiptFiles(copy)).filter((f) => f.includes(ds.v2))
    const original = await readFile(v1File, 'utf8')
    const rec = JSON.parse(original) as ReceiptJson
    const v2rec = JSON.parse(await readFile(v2File, 'utf8')) as ReceiptJson
    const verifyV1 = () => run(['verify', ds.v1, '--anchored', '--chain', node.rpc, '-C', copy, '--json'])

    await writeFile(v1File, JSON.stringify({ ...rec, blockHash: `0x${'ab'.repeat(32)}` }))
    expectError(await verifyV1(), 10, 'ANCHOR_MISMATCH', /the recorded block was reorganised away/)

    await writeFile(
      v1File,
      JSON.stringify({
        ...rec,
        txHash: v2rec.txHash,
        blockNumber: v2rec.blockNumber,
        blockHash: v2rec.blockHash,
        logIndex: v2rec.logIndex,
      }),
    )
    expectError(await verifyV1(), 10, 'ANCHOR_MISMATCH', /the chain logged digest 0x[0-9a-f]{64}, not/)

    await writeFile(v1File, JSON.stringify({ ...rec, sender: addr(key1) }))
    expectError(await verifyV1(), 10, 'ANCHOR_MISMATCH', /the sender is/)

    await writeFile(v1File, JSON.stringify({ ...rec, args: { ...rec.args, version: v2rec.args.version } }))
    expectError(await verifyV1(), 5, 'INVALID_MANIFEST', /is not the digest of/)

    await writeFile(v1File, original.slice(0, 40))
    expectError(await verifyV1(), 5, 'INVALID_MANIFEST', /is not JSON/)
    expectError(await run(['anchors', '-C', copy, '--json']), 5, 'INVALID_MANIFEST', /is not JSON/)

    await writeFile(v1File, ' '.repeat(1024 * 1024))
    expectError(await run(['anchors', '-C', copy, '--json']), 5, 'INVALID_MANIFEST', /is 1048576 bytes: not a record cairn wrote/)

    await writeFile(v1File, JSON.stringify({ ...rec, blockNumber: 'twelve' }))
    expectError(await run(['anchors', '-C', copy, '--json']), 5, 'INVALID_MANIFEST', /is not an anchor receipt: \/blockNumber/)
  })

  it('an endpoint that is down: retried, then exit 7', async () => {
    const copy = await freshCopy()
    const down = await fakeRpc((res) => res.writeHead(503).end('busy'))
    try {
      const r = await run(['anchor', '--chain', down.url, '-C', copy.dir, '--json'])
      expectError(r, 7, 'ANCHOR_FAILED', /is failing \(HTTP 503\) after 3 attempts/)
      expect(down.count()).toBe(3)
    } finally {
      await down.close()
    }
    // nothing listening at all
    const gone = await fakeRpc(() => {})
    await gone.close()
    const r = await run(['verify', ds.v1, '--anchored', '--chain', gone.url, '-C', ds.dir, '--json'])
    expectError(r, 7, 'ANCHOR_FAILED', /is unreachable after 3 attempts/)
    expect(await receiptFiles(copy.dir)).toEqual([])
  })

  it.each([
    [
      'HTML',
      (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'),
      /answered something that is not JSON/,
    ],
    [
      'a chain id that is not one',
      (res: import('node:http').ServerResponse) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":"banana"}'),
      /answered something that is not Ethereum JSON-RPC \(Cannot convert banana/,
    ],
    [
      '12 MiB of JSON-looking bytes (over the 10 MiB cap of viem)',
      (res: import('node:http').ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('{"jsonrpc":"2.0","id":1,"result":"0x' + '1'.repeat(12 * 1024 * 1024) + '"}')
      },
      /not a usable JSON-RPC answer \(HTTP response body exceeded the size limit/,
    ],
    [
      'JSON without a result',
      (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end('[1,2,3]'),
      /answered something that is not JSON-RPC \(Invalid JSON-RPC response/,
    ],
  ])('an endpoint answering garbage (%s): exit 7, never 70', async (_, answer, message) => {
    const copy = await freshCopy()
    const garbage = await fakeRpc(answer)
    try {
      // hosted endpoints carry an API key in the path: messages show the origin only
      const url = `${garbage.url}/v2/SECRET-API-KEY-123`
      const r = await run(['anchor', '--chain', url, '-C', copy.dir, '--json'])
      expectError(r, 7, 'ANCHOR_FAILED', message)
      const v = await run(['verify', ds.v1, '--anchored', '--chain', url, '-C', ds.dir, '--json'])
      expectError(v, 7, 'ANCHOR_FAILED', message)
      expect(r.stdout + r.stderr + v.stdout + v.stderr).not.toContain('SECRET-API-KEY')
    } finally {
      await garbage.close()
    }
    expect(await receiptFiles(copy.dir)).toEqual([])
  })

  it('anchor deploy --help and anchor --help list their examples', async () => {
    for (const command of [['anchor', 'deploy'], ['anchor']]) {
      const r = await cairn([...command, '--help'])
      expect(r.exitCode).toBe(0)
      expect(r.stdout.split('\nEXAMPLES\n')[1]).toContain(`cairn ${command.join(' ')}`)
    }
  })

  it('end to end as processes (node bin/run.js): verify exits 0, a mismatch 10, a bad key 8; stderr never holds the key', async () => {
    const copy = join(await tmp.make(), 'd')
    await cp(ds.dir, copy, { recursive: true })
    const ok = await spawnCli(['verify', ds.v2, '--anchored', '--chain', node.rpc, '-C', copy], { CAIRN_ETH_KEY: key0 })
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toMatch(/^ok: /m)
    const [v1File] = (await receiptFiles(copy)).filter((f) => f.includes(ds.v1))
    const rec = JSON.parse(await readFile(v1File, 'utf8')) as ReceiptJson
    await writeFile(v1File, JSON.stringify({ ...rec, blockHash: `0x${'ef'.repeat(32)}` }))
    const bad = await spawnCli(['verify', ds.v1, '--anchored', '--chain', node.rpc, '-C', copy], { CAIRN_ETH_KEY: key0 })
    expect(bad.code).toBe(10)
    expect(bad.stderr).toMatch(/^Error: The anchor receipt 0x[0-9a-f]{64} of .* does not match chain 31337/m)
    const key = `0x${'g'.repeat(64)}`
    const auth = await spawnCli(['anchor', '--chain', node.rpc, '-C', copy], { CAIRN_ETH_KEY: key })
    expect(auth.code).toBe(8)
    for (const out of [ok, bad, auth]) {
      outputs.push(out.stdout, out.stderr)
      expect(out.stderr + out.stdout).not.toContain('g'.repeat(16))
    }
  })

  it('no output and no file of the store holds a key', async () => {
    const all = outputs.join('\n').toLowerCase()
    for (const key of node.keys) expect(all).not.toContain(key.slice(2).toLowerCase())
    const files = await receiptFiles(ds.dir)
    expect(files.length).toBeGreaterThan(3)
    for (const f of files) {
      const text = (await readFile(f, 'utf8')).toLowerCase()
      for (const key of node.keys) expect(text).not.toContain(key.slice(2).toLowerCase())
      expect(text).not.toContain('127.0.0.1')
    }
  })
})
