/**
 * Locks and temporary files (issue #18, part 5): the lock appears with its pid in one step and admits
 * one process at a time; a dead holder's lock is taken over; two clones into one folder do not fail
 * each other; temporary files carry the pid and the next command removes those of dead processes.
 */
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { isCairnError } from '../src/errors.js'
import { withLockFile } from '../src/store/lock.js'
import { removeStaleTemps } from '../src/util/atomic.js'
import { binPath, ensureBuilt } from './helpers/cli.js'
import { carOf, pbBlock, rawBlock } from './helpers/hostile-gateway.js'
import { repoRoot, tempDirs } from './helpers/tmp.js'
import { UnixFS } from 'ipfs-unixfs'

const tmp = tempDirs('cairn-locks-')
afterEach(() => tmp.cleanup())
beforeAll(() => ensureBuilt())

/** The pid of a process that has exited. */
function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['-e', ''], (e) => (e ? reject(e) : resolve(child.pid as number)))
  })
}

function runNode(args: readonly string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stderr }))
  })
}

describe('the lock', () => {
  it('admits one process at a time, and is never seen without its pid', async () => {
    const dir = await tmp.make()
    const lock = join(dir, 'lock')
    const log = join(dir, 'log')
    const script = join(dir, 'hold.mjs')
    const lockModule = pathToFileURL(join(repoRoot, 'dist', 'src', 'store', 'lock.js')).href
    await writeFile(
      script,
      `import { appendFileSync } from 'node:fs'
import { withLockFile } from ${JSON.stringify(lockModule)}
for (let taken = 0; taken < 3; ) {
  try {
    await withLockFile(${JSON.stringify(lock)}, async () => {
      appendFileSync(${JSON.stringify(log)}, 'in ' + process.pid + '\\n')
      await new Promise((r) => setTimeout(r, 20))
      appendFileSync(${JSON.stringify(log)}, 'out ' + process.pid + '\\n')
    })
    taken++
  } catch (e) {
    if (e.code !== 'LOCKED') throw e
    await new Promise((r) => setTimeout(r, 5))
  }
}
`,
    )
    // watch the lock's contents while six processes compete for it
    const seen = new Set<string>()
    let watching = true
    const watcher = (async () => {
      while (watching) {
        try {
          seen.add(await readFile(lock, 'utf8'))
        } catch {
          // not held at this moment
        }
        await new Promise((r) => setImmediate(r))
      }
    })()
    const runs = await Promise.all(Array.from({ length: 6 }, () => runNode([script], dir)))
    watching = false
    await watcher
    for (const r of runs) expect(r.code, r.stderr).toBe(0)
    const lines = (await readFile(log, 'utf8')).trim().split('\n')
    expect(lines.length).toBe(6 * 3 * 2)
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i]).toMatch(/^in \d+$/)
      expect(lines[i + 1]).toBe(lines[i].replace('in', 'out'))
    }
    for (const text of seen) expect(text).toMatch(/^\d+\n$/)
    expect(existsSync(lock)).toBe(false)
    expect(await readdir(dir)).toEqual(['hold.mjs', 'log'])
  }, 120_000)

  it("takes over a dead process's lock and its temporary files; refuses a live one's with LOCKED", async () => {
    const dir = await tmp.make()
    const lock = join(dir, 'lock')
    const dead = await deadPid()
    await writeFile(lock, `${dead}\n`)
    await writeFile(join(dir, `lock.${dead}.0123abcd.tmp`), `${dead}\n`)
    expect(await withLockFile(lock, async () => (await readFile(lock, 'utf8')).trim())).toBe(String(process.pid))
    expect(await readdir(dir)).toEqual([])
    // a live holder (this test's parent process stands in for one)
    await writeFile(lock, `${process.ppid}\n`)
    const e = await withLockFile(lock, async () => 'taken').catch((err: unknown) => err)
    expect(isCairnError(e, 'LOCKED')).toBe(true)
    expect((e as Error).message).toContain(`pid ${process.ppid}`)
    expect(await readFile(lock, 'utf8')).toBe(`${process.ppid}\n`)
  })
})

describe('two clones into one folder at once', () => {
  it('never fail each other (it was ENOENT): one writes, the other ends 9 (LOCKED) while it does, or 3 once it is done; the folder ends whole', async () => {
    const files = await Promise.all(Array.from({ length: 40 }, (_, i) => rawBlock(new TextEncoder().encode(`file ${i}\n`.repeat(200)))))
    const dirNode = await pbBlock(
      new UnixFS({ type: 'directory' }),
      files.map((f, i) => ({ name: `f${String(i).padStart(2, '0')}.txt`, cid: f.cid, size: f.bytes.length })),
    )
    const car = join(await tmp.make(), 'dir.car')
    await writeFile(car, carOf([dirNode.cid], [dirNode, ...files]))
    for (let trial = 0; trial < 4; trial++) {
      const parent = await tmp.make()
      const args = [binPath, 'clone', dirNode.cid.toString(), 'same', '--from', car, '--jobs', '2']
      const runs = await Promise.all([runNode(args, parent), runNode(args, parent)])
      // 3: the other had already finished (a finished UnixFS clone leaves no marker, so it is "not empty")
      for (const r of runs) expect([0, 3, 9], r.stderr).toContain(r.code)
      expect(runs.filter((r) => r.code === 0).length).toBe(1)
      for (const r of runs.filter((x) => x.code === 9)) expect(r.stderr).toMatch(/^Error: Another cairn process \(pid \d+\) is writing to/)
      for (const r of runs.filter((x) => x.code === 3)) expect(r.stderr).toMatch(/is not empty and is not a clone of this CID/)
      const names = (await readdir(join(parent, 'same'))).sort()
      expect(names).toEqual(files.map((_, i) => `f${String(i).padStart(2, '0')}.txt`))
      expect(await readdir(parent)).toEqual(['same'])
    }
  }, 180_000)
})

describe('temporary files carry the pid; the next command removes those of dead processes', () => {
  it('removeStaleTemps: dead pids go, live pids and other files stay', async () => {
    const dir = await tmp.make()
    const dead = await deadPid()
    const names = [`.out.car.${dead}.0123456789ab.tmp`, `.out.car.${process.pid}.0123456789ab.tmp`, 'keep.tmp', 'out.car']
    for (const n of names) await writeFile(join(dir, n), 'x')
    expect(await removeStaleTemps(dir)).toBe(1)
    expect((await readdir(dir)).sort()).toEqual(names.slice(1).sort())
  })

  it('pack -o and publish --to dir: clean what killed runs left beside their output', async () => {
    const ds = await tmp.copyDataset()
    expect((await runNode([binPath, 'init'], ds)).code).toBe(0)
    expect((await runNode([binPath, 'build', '-m', 'v'], ds)).code).toBe(0)
    const out = await tmp.make()
    const dead = await deadPid()
    const stale = join(out, `.v.car.${dead}.00112233aabb.tmp`)
    await writeFile(stale, 'half a CAR')
    expect((await runNode([binPath, 'pack', '-o', join(out, 'v.car')], ds)).code).toBe(0)
    expect(await readdir(out)).toEqual(['v.car'])

    const target = await tmp.make()
    expect((await runNode([binPath, 'publish', '--to', `dir:${target}`], ds)).code).toBe(0)
    const staleCar = join(target, 'cars', `.car.${dead}.00112233aabb.tmp`)
    await writeFile(staleCar, 'half a CAR')
    await mkdir(join(target, 'versions'), { recursive: true })
    expect((await runNode([binPath, 'publish', '--to', `dir:${target}`], ds)).code).toBe(0)
    expect((await readdir(join(target, 'cars'))).filter((n) => n.endsWith('.tmp'))).toEqual([])
  }, 180_000)
})
