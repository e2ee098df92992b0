/**
 * The README's exit-code table is the contract (issue #18): one case per row, each through the CLI as
 * a child process, each code with one meaning. Row 70 (a bug) must be unreachable from input: the
 * hostile and fuzz suites feed input and never see it; here only its mapping is checked.
 */
import { spawn } from 'node:child_process'
import { openSync, closeSync } from 'node:fs'
import { readFile, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPairSync } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeError } from '../commands/_errors.js'
import { binPath, ensureBuilt } from './helpers/cli.js'
import { startAnvil } from './helpers/anvil.js'
import { carOf, hostileGateway, rawBlock } from './helpers/hostile-gateway.js'
import { repoRoot, tempDirs } from './helpers/tmp.js'

const tmp = tempDirs('cairn-exit-')
let dataset: string
const closers: (() => Promise<void>)[] = []

interface Run {
  readonly exitCode: number | null
  readonly stdout: string
  readonly stderr: string
}

function run(args: readonly string[], cwd: string, options: { env?: NodeJS.ProcessEnv; stdout?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], {
      cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')))
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')))
    child.on('error', reject)
    child.on('close', (exitCode) => resolve({ exitCode, stdout: out, stderr: err }))
  })
}

async function expectExit(r: Promise<Run> | Run, code: number, says?: RegExp): Promise<Run> {
  const done = await r
  expect(done.exitCode, done.stderr).toBe(code)
  if (says !== undefined) expect(done.stderr + done.stdout).toMatch(says)
  expect(done.stderr).not.toMatch(/Internal error/)
  return done
}

beforeAll(async () => {
  ensureBuilt()
  dataset = await tmp.copyDataset()
  await expectExit(run(['init'], dataset), 0)
  await expectExit(run(['build', '-m', 'first'], dataset), 0)
}, 120_000)
afterAll(async () => {
  for (const close of closers.splice(0)) await close()
  await tmp.cleanup()
})

describe('one case per row of the README exit-code table', () => {
  it('the table lists exactly the codes tested here', async () => {
    const readme = await readFile(join(repoRoot, 'README.md'), 'utf8')
    const table = readme.slice(readme.indexOf('### Exit codes'), readme.indexOf('## What a version is'))
    const codes = [...table.matchAll(/^\| (\d+) +\|/gm)].map((m) => Number(m[1]))
    expect(codes).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 70, 141])
  })

  it('0 success: verify of the dataset as built', async () => {
    await expectExit(run(['verify'], dataset), 0, /^ok: /m)
  }, 60_000)

  it('1 differences: verify after a file changed', async () => {
    const copy = await tmp.copyDataset()
    await expectExit(run(['init'], copy), 0)
    await expectExit(run(['build', '-m', 'v'], copy), 0)
    const file = join(copy, 'test', 'part-000.jsonl')
    await writeFile(file, (await readFile(file, 'utf8')) + '{"changed": true}\n')
    await expectExit(run(['verify'], copy), 1, /modified +test\/part-000\.jsonl/)
  }, 120_000)

  it('2 usage or unknown ref: show of a ref that does not resolve', async () => {
    await expectExit(run(['show', 'no-such-tag'], dataset), 2, /no-such-tag/)
  }, 60_000)

  it('3 not a dataset: log in an empty folder', async () => {
    await expectExit(run(['log'], await tmp.make()), 3, /cairn init/)
  }, 60_000)

  it('4 bad input: a clone whose DAG names an entry by 10,000 characters (BAD_PATH)', async () => {
    const gw = await hostileGateway('long-names')
    closers.push(() => gw.close())
    await expectExit(run(['clone', gw.root.toString(), 'out', '--from', gw.url], await tmp.make()), 4, /more than a file system takes/)
  }, 60_000)

  it('5 integrity: a clone from a CAR whose block is corrupt (bad bytes from a file are 5, as from a gateway)', async () => {
    const leaf = await rawBlock(new TextEncoder().encode('the right bytes\n'))
    const car = carOf([leaf.cid], [{ cid: leaf.cid, bytes: new TextEncoder().encode('the wrong bytes\n') }])
    const path = join(await tmp.make(), 'corrupt.car')
    await writeFile(path, car)
    await expectExit(run(['clone', leaf.cid.toString(), 'out', '--from', path], await tmp.make()), 5, /does not match its CID/)
  }, 60_000)

  it('6 I/O: cat into a full disk (/dev/full)', async () => {
    const leaf = await rawBlock(new TextEncoder().encode('bytes that will not fit\n'))
    const path = join(await tmp.make(), 'ok.car')
    await writeFile(path, carOf([leaf.cid], [leaf]))
    const full = openSync('/dev/full', 'w')
    try {
      await expectExit(run(['cat', leaf.cid.toString(), '--from', path], await tmp.make(), { stdout: full }), 6, /ENOSPC/)
    } finally {
      closeSync(full)
    }
  }, 60_000)

  it('7 transport: every source unreachable (a closed port on loopback)', async () => {
    const gw = await hostileGateway('long-names')
    const url = gw.url
    await gw.close()
    await expectExit(run(['clone', gw.root.toString(), 'out', '--from', url, '--timeout', '5'], await tmp.make()), 7, /ECONNREFUSED/)
  }, 60_000)

  it('8 credentials: publish to Storacha with a proof but no agent key, naming the variable', async () => {
    const env = { ...process.env, STORACHA_PROOF: 'not-a-real-proof' }
    delete env.STORACHA_PRINCIPAL
    const r = await expectExit(run(['publish', '--to', 'storacha'], dataset, { env }), 8, /STORACHA_PRINCIPAL is not set/)
    expect(r.stderr + r.stdout).not.toContain('not-a-real-proof')
  }, 60_000)

  it('9 locked: build while another live process holds the dataset lock (it was 6, as if the disk failed)', async () => {
    const lock = join(dataset, '.cairn', 'lock')
    await writeFile(lock, `${process.pid}\n`)
    try {
      await expectExit(run(['build', '-m', 'again'], dataset), 9, new RegExp(`pid ${process.pid}`))
    } finally {
      await unlink(lock)
    }
  }, 60_000)

  it('10 anchor mismatch: a receipt whose block hash was edited no longer matches the chain (a real anvil)', async () => {
    const node = await startAnvil()
    closers.push(() => node.stop())
    const copy = await tmp.copyDataset()
    await expectExit(run(['init'], copy), 0)
    await expectExit(run(['build', '-m', 'v'], copy), 0)
    const env = { ...process.env, CAIRN_ETH_KEY: node.keys[0] }
    await expectExit(run(['anchor', 'deploy', '--chain', node.rpc], copy, { env }), 0)
    await expectExit(run(['anchor', '--chain', node.rpc], copy, { env }), 0)
    await expectExit(run(['verify', '--anchored', '--chain', node.rpc], copy), 0)
    const receipts = join(copy, '.cairn', 'anchors', 'receipts')
    const [version] = await readdir(receipts)
    const [name] = await readdir(join(receipts, version))
    const file = join(receipts, version, name)
    const receipt = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>
    await writeFile(file, JSON.stringify({ ...receipt, blockHash: `0x${'ab'.repeat(32)}` }))
    await expectExit(run(['verify', '--anchored', '--chain', node.rpc], copy), 10, /reorganised away/)
  }, 120_000)

  it('11 trust refused: verify --signed-by a key that signed nothing (NOT_SIGNED)', async () => {
    const { publicKey } = generateKeyPairSync('ed25519')
    const pem = join(await tmp.make(), 'stranger.pem')
    await writeFile(pem, publicKey.export({ type: 'spki', format: 'pem' }))
    await expectExit(run(['verify', '--signed-by', pem], dataset), 11, /NOT_SIGNED|not signed|no signature/i)
  }, 60_000)

  it('141 the reader of stdout went away: pack into a closed pipe stops quietly', async () => {
    const done = await new Promise<Run>((resolve, reject) => {
      const child = spawn(process.execPath, [binPath, 'pack'], { cwd: dataset, stdio: ['ignore', 'pipe', 'pipe'] })
      let err = ''
      child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')))
      // the reading end is closed before pack writes: its first write meets EPIPE, however small the CAR
      child.stdout.destroy()
      child.on('error', reject)
      child.on('close', (exitCode) => resolve({ exitCode, stdout: '', stderr: err }))
    })
    expect(done.exitCode, done.stderr).toBe(141)
    expect(done.stderr).not.toMatch(/Error|Internal/)
  }, 60_000)

  it('70 internal: only a thrown value that is not a CairnError maps to it (no input reaches it: hostile and fuzz suites)', () => {
    expect(describeError(new TypeError('a bug')).exitCode).toBe(70)
    expect(describeError(new TypeError('a bug')).json.error.code).toBe('INTERNAL')
  })
})
