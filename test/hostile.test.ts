/**
 * Hostile input through the CLI (issue #18): every case runs `cairn` as a child process with a 256 MiB
 * heap (`--max-old-space-size=256`) against a hostile gateway or CAR on loopback, and must end with its
 * documented exit code and a one-line message: never an abort (134), never exit 70, nothing written
 * outside the target.
 */
import { spawn } from 'node:child_process'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { binPath, ensureBuilt } from './helpers/cli.js'
import { carOf, hostileDag, hostileGateway, rawBlock, type HostileMode } from './helpers/hostile-gateway.js'
import { tempDirs } from './helpers/tmp.js'

const tmp = tempDirs('cairn-hostile-')
const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0)) await close()
  await tmp.cleanup()
})
beforeAll(() => ensureBuilt())

interface Run {
  readonly exitCode: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: Buffer
  readonly stderr: string
}

/** `node --max-old-space-size=256 bin/run.js …`, stdin ignored. */
function cairn256(args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-old-space-size=256', binPath, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    let err = ''
    let outBytes = 0
    child.stdout.on('data', (d: Buffer) => {
      // cat of a hostile file may write some verified bytes first: keep only the start
      if (outBytes < 1 << 20) out.push(d)
      outBytes += d.length
    })
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')))
    child.on('error', reject)
    child.on('close', (exitCode, signal) => resolve({ exitCode, signal, stdout: Buffer.concat(out), stderr: err }))
  })
}

/** The documented refusal: the exit code, an `Error:` line (and perhaps a `Hint:` line), no stack, no abort. */
function expectRefusal(r: Run, exitCode: number, says: RegExp): void {
  const context = `exit ${r.exitCode} signal ${r.signal}\n${r.stderr.slice(0, 2000)}`
  expect(r.signal, context).toBeNull()
  expect(r.exitCode, context).toBe(exitCode)
  const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('warning: '))
  expect(lines.length, context).toBeGreaterThanOrEqual(1)
  expect(lines.length, context).toBeLessThanOrEqual(2)
  expect(lines[0], context).toMatch(/^Error: /)
  expect(lines[0], context).toMatch(says)
  expect(lines[0].length, context).toBeLessThan(1200)
  if (lines.length === 2) expect(lines[1]).toMatch(/^Hint: /)
  expect(r.stderr).not.toMatch(/Internal error|    at /)
}

const cases: readonly { mode: HostileMode; command: 'clone' | 'cat'; exitCode: number; says: RegExp }[] = [
  { mode: 'huge-section', command: 'clone', exitCode: 5, says: /more than 4194304/ },
  { mode: 'huge-section', command: 'cat', exitCode: 5, says: /more than 4194304/ },
  { mode: 'endless-body', command: 'clone', exitCode: 5, says: /more than 4194304 bytes for block/ },
  { mode: 'endless-body', command: 'cat', exitCode: 5, says: /more than 4194304 bytes for block/ },
  { mode: 'dag-bomb', command: 'clone', exitCode: 4, says: /paths outnumber its blocks/ },
  { mode: 'file-bomb', command: 'clone', exitCode: 4, says: /declares 1125899906842624 bytes, more than the limit/ },
  { mode: 'file-bomb', command: 'cat', exitCode: 4, says: /declares 1125899906842624 bytes, more than the limit/ },
  { mode: 'deep-directory', command: 'clone', exitCode: 4, says: /nests folders more than 1024 deep/ },
  { mode: 'deep-file', command: 'clone', exitCode: 4, says: /more than 128 levels deep/ },
  { mode: 'deep-file', command: 'cat', exitCode: 4, says: /more than 128 levels deep/ },
  { mode: 'long-names', command: 'clone', exitCode: 4, says: /10000 bytes long, more than a file system takes \(255\)/ },
  { mode: 'cairn-entries', command: 'clone', exitCode: 4, says: /entry named \.cairn at its top/ },
]

describe('a hostile gateway: a clean refusal within 256 MiB of heap', () => {
  it.each(cases)(
    '$mode: $command exits $exitCode',
    async ({ mode, command, exitCode, says }) => {
      const gw = await hostileGateway(mode)
      closers.push(() => gw.close())
      const parent = await tmp.make()
      const args =
        command === 'clone'
          ? ['clone', gw.root.toString(), 'target', '--from', gw.url, '--timeout', '20']
          : ['cat', gw.root.toString(), '--from', gw.url, '--timeout', '20']
      const r = await cairn256(args, parent)
      expectRefusal(r, exitCode, says)
      // nothing outside the target; nothing unverified inside it
      const left = await readdir(parent)
      expect(left.filter((n) => n !== 'target')).toEqual([])
      if (left.includes('target')) {
        const inside = await readdir(join(parent, 'target'), { recursive: true })
        expect(inside.filter((n) => !n.startsWith('.cairn'))).toEqual([])
      }
      // an endless body was cut off near the block cap, not read on
      expect(gw.sent()).toBeLessThan(64 << 20)
    },
    120_000,
  )

  it('the DAG bomb from a CAR file is refused after a few levels; the hint names --max-entries, which sets the bound', async () => {
    const dag = await hostileDag('dag-bomb')
    const car = join(await tmp.make(), 'bomb.car')
    await writeFile(
      car,
      carOf(
        [dag.root],
        [...dag.blocks].map(([key, bytes]) => ({ cid: CID.parse(key), bytes })),
      ),
    )
    const parent = await tmp.make()
    const low = await cairn256(['clone', dag.root.toString(), 'a', '--from', car, '--max-entries', '2000'], parent)
    expectRefusal(low, 4, /paths outnumber its blocks/)
    expect(low.stderr).toMatch(/--max-entries/)
  }, 60_000)
})

describe('hostile CAR files: one reader, one rule, a clean refusal', () => {
  /** A CAR whose second section's length varint says 2^32 + 5, with a few bytes after it. */
  async function hugeVarintCar(): Promise<{ path: string; root: string; at: number }> {
    const leaf = await rawBlock(new TextEncoder().encode('a block before the damage\n'))
    const good = carOf([leaf.cid], [leaf])
    const length = 2 ** 32 + 5
    const prefix = new Uint8Array(varint.encodingLength(length))
    varint.encodeTo(length, prefix)
    const bytes = new Uint8Array([...good, ...prefix, ...new Uint8Array(64).fill(7)])
    const path = join(await tmp.make(), 'huge-varint.car')
    await writeFile(path, bytes)
    return { path, root: leaf.cid.toString(), at: good.length }
  }

  it.each(['clone', 'cat', 'verify'] as const)(
    'a section length of 2^32+5: %s exits 5 naming the offset (it aborted with exit 134)',
    async (command) => {
      const { path, root, at } = await hugeVarintCar()
      const parent = await tmp.make()
      const args =
        command === 'clone'
          ? ['clone', root, 'out', '--from', path]
          : command === 'cat'
            ? ['cat', root, '--from', path]
            : ['verify', '--car', path]
      const r = await cairn256(args, parent)
      if (command === 'verify') {
        // verify reports the damage as a problem of its input: exit 5, named in its report
        expect(r.exitCode, r.stderr).toBe(5)
        expect(r.stdout.toString()).toContain(`the section at byte ${at} claims 4294967301 bytes`)
      } else {
        expectRefusal(r, 5, new RegExp(`the section at byte ${at} claims 4294967301 bytes`))
      }
    },
    60_000,
  )

  it('a header with an extra key: refused alike by verify --car, clone and cat (two readers had two rules)', async () => {
    const leaf = await rawBlock(new TextEncoder().encode('hello\n'))
    const path = join(await tmp.make(), 'extra-key.car')
    await writeFile(path, carOf([leaf.cid], [leaf], { extra: 'key' }))
    const parent = await tmp.make()
    const verify = await cairn256(['verify', '--car', path], parent)
    expectRefusal(verify, 5, /unknown key "extra"/)
    expectRefusal(await cairn256(['clone', leaf.cid.toString(), 'out', '--from', path], parent), 5, /unknown key "extra"/)
    expectRefusal(await cairn256(['cat', leaf.cid.toString(), '--from', path], parent), 5, /unknown key "extra"/)
  }, 60_000)

  it('a dir: index line claiming a 4 GiB block is BAD_CAR (5), not a huge allocation', async () => {
    const leaf = await rawBlock(new TextEncoder().encode('hello\n'))
    const dir = await tmp.make()
    await writeFile(join(dir, 'cairn-dir.json'), JSON.stringify({ format: 'cairn-dir', v: 1 }) + '\n')
    await mkdir(join(dir, 'cars'))
    await writeFile(join(dir, 'cars', 'a.car'), carOf([leaf.cid], [leaf]))
    await writeFile(join(dir, 'cars', 'a.idx'), `${leaf.cid} 60 ${2 ** 32}\n`)
    const r = await cairn256(['cat', leaf.cid.toString(), '--from', `dir:${dir}`], await tmp.make())
    expectRefusal(r, 5, /a\.idx line 1/)
    expect(await readFile(join(dir, 'cars', 'a.idx'), 'utf8')).toContain(leaf.cid.toString())
  }, 60_000)
})
