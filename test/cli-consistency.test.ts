/**
 * The CLI as a user meets it, through the compiled `bin/run.js` in child processes: arguments come
 * from argv only (never from a piped stdin), help and "did you mean", one meaning per short flag,
 * flags that need another, pack and cat at a terminal or a closed pipe, refs where a dataset is at
 * hand, --json where a command reports something, the way out when cairn.json is lost, and which
 * modules a command loads.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { cp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Config } from '@oclif/core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { validateWith } from '../src/schemas.js'
import { binPath, ensureBuilt, spawnCairn, type SpawnResult } from './helpers/cli.js'
import { seededBytes } from './helpers/dataset.js'
import { repoRoot, tempDirs } from './helpers/tmp.js'

const tmp = tempDirs('cairn-cli-')
afterEach(() => tmp.cleanup())
beforeAll(() => ensureBuilt())

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env }
  delete e.SOURCE_DATE_EPOCH
  delete e.FORCE_COLOR
  return e
}

async function run(cwd: string, args: string[], exitCode = 0): Promise<SpawnResult> {
  const r = await spawnCairn(args, { cwd, env: env() })
  expect(r.exitCode, `cairn ${args.join(' ')}\n${r.stderr}`).toBe(exitCode)
  return r
}

const json = <T>(r: SpawnResult): T => JSON.parse(r.stdout.toString('utf8')) as T

let template: string | undefined
const templates = tempDirs('cairn-cli-template-')
afterAll(() => templates.cleanup())

/** A copy of a dataset with two versions (tagged v1 and v2) and a shard over the pipe buffer (3 MiB). */
async function twoVersions(): Promise<string> {
  template ??= await makeTwoVersions(await templates.make())
  const ds = join(await tmp.make(), 'ds')
  await cp(template, ds, { recursive: true })
  return ds
}

async function makeTwoVersions(ds: string): Promise<string> {
  await writeFile(join(ds, 'cairn.json'), JSON.stringify({ cardVersion: 1, name: 'cli-test', license: 'CC0-1.0' }))
  await writeFile(join(ds, 'a.txt'), 'first\n')
  await writeFile(join(ds, 'big.bin'), seededBytes(3 * 1024 * 1024, 'big'))
  await run(ds, ['init'])
  await run(ds, ['build', '-m', 'one', '--date', '2026-01-01T00:00:00Z'])
  await run(ds, ['tag', 'v1'])
  await writeFile(join(ds, 'a.txt'), 'second\n')
  await run(ds, ['build', '-m', 'two', '--date', '2026-01-02T00:00:00Z'])
  await run(ds, ['tag', 'v2'])
  return ds
}

/** Every command the compiled CLI has, with its args and flags, as oclif loads them. */
async function commands(): Promise<Config['commands']> {
  const config = await Config.load(repoRoot)
  return config.commands.filter((c) => !c.hidden)
}

/** Runs `node bin/run.js args` with `input` on a stdin pipe; kills it after `ms`. */
function withStdin(cwd: string, args: string[], input: string, ms = 30_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [binPath, ...args], { cwd, env: env(), stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      // serve prints where it listens and runs on: that is enough
      if (args[0] === 'serve' && out.includes('\n')) child.kill('SIGTERM')
    })
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    child.stdin.end(input)
    const timer = setTimeout(() => child.kill('SIGKILL'), ms)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })
}

async function allNames(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) out.push(e.name)
  return out
}

describe('arguments never come from stdin', () => {
  // was a bug: `echo oops | cairn tag` made a tag "oops", `echo x | cairn init` a dataset in ./x
  it('every command, run with text piped on stdin and no arguments, neither reads nor uses it', async () => {
    const ds = await twoVersions()
    const token = 'piped0stdin0token'
    const list = await commands()
    expect(list.length).toBeGreaterThanOrEqual(15)
    const ran: string[] = []
    for (const c of list) {
      if (c.id === 'help') continue
      const args = c.id === 'serve' ? ['serve', '--port', '0'] : c.id.split(':')
      const r = await withStdin(ds, args, `${token}\n`)
      expect(r.out, `cairn ${c.id} with "${token}" on stdin`).not.toContain(token)
      expect(await allNames(ds), `cairn ${c.id}: a file or folder named after stdin`).not.toContain(token)
      ran.push(c.id)
    }
    const tags = json<{ name: string }[]>(await run(ds, ['tag', '--json']))
    expect(tags.map((t) => t.name)).toEqual(['v1', 'v2'])
    // a command that requires an argument says it is missing instead
    const diff = await withStdin(ds, ['diff'], `${token}\n`)
    expect(diff.code).toBe(2)
    // its refs are optional since `diff --worktree`: without them it says what it needs, never reads stdin
    expect(diff.out).toMatch(/diff needs the old version/)
    expect(diff.out).not.toContain(token)
    expect(ran).toEqual(expect.arrayContaining(['build', 'cat', 'clone', 'diff', 'init', 'log', 'pack', 'serve', 'tag', 'verify']))
  }, 240_000)

  it('`echo x | cairn init` in an empty folder initialises that folder, not ./x', async () => {
    const dir = await tmp.make()
    const r = await withStdin(dir, ['init'], 'x\n')
    expect(r.code).toBe(0)
    expect(existsSync(join(dir, 'x'))).toBe(false)
    expect(existsSync(join(dir, '.cairn'))).toBe(true)
  })
})

describe('help, typos, short flags, flags that need another', () => {
  it('`cairn help` lists the commands and `cairn help build` shows build', async () => {
    const dir = await tmp.make()
    const all = (await run(dir, ['help'])).stdout.toString()
    for (const c of ['build', 'cat', 'clone', 'diff', 'pack', 'verify']) expect(all).toMatch(new RegExp(`^\\s+${c}\\s`, 'm'))
    const build = (await run(dir, ['help', 'build'])).stdout.toString()
    expect(build).toContain('$ cairn build')
    expect(build).toContain('--message')
  })

  it('a typo says "did you mean", exits 2 and runs nothing', async () => {
    const dir = await tmp.make()
    const r = await run(dir, ['buidl'], 2)
    expect(r.stderr).toContain('"buidl" is not a cairn command. Did you mean "build"?')
    expect(existsSync(join(dir, '.cairn'))).toBe(false)
    expect((await run(dir, ['tga'], 2)).stderr).toContain('Did you mean "tag"?')
    expect((await run(dir, ['xyzzy'], 2)).stderr).not.toContain('Did you mean')
  })

  // cairn's own commands (oclif's help command has its own -n, --nested-commands)
  it('each short flag has one meaning across all commands, and -f is --force', async () => {
    const meaning = new Map<string, Set<string>>()
    for (const c of (await commands()).filter((c) => c.id !== 'help')) {
      for (const [name, flag] of Object.entries(c.flags)) {
        if (!flag.char) continue
        meaning.set(flag.char, (meaning.get(flag.char) ?? new Set()).add(name))
      }
    }
    const clashes = [...meaning].filter(([, names]) => names.size > 1).map(([char, names]) => `-${char}: ${[...names].join(', ')}`)
    expect(clashes).toEqual([])
    expect([...(meaning.get('f') ?? [])]).toEqual(['force'])
  })

  it('a flag that needs another is refused, not ignored', async () => {
    const ds = await twoVersions()
    expect((await run(ds, ['verify', '--root', 'bafkqaaa'], 2)).stderr).toContain('--root: --car')
    expect((await run(ds, ['diff', 'v1', 'v2', '--limit', '1'], 2)).stderr).toContain('--limit: --rows')
    expect((await run(ds, ['verify', '--car', 'x.car', '--from', ds], 2)).stderr).toMatch(/cannot also be provided/)
    await run(ds, ['diff', 'v1', 'v2', '--rows', '--limit', '1'])
  })

  it('--version (answered before oclif loads) prints what oclif would', async () => {
    const config = await Config.load(repoRoot)
    const dir = await tmp.make()
    expect((await run(dir, ['--version'])).stdout.toString()).toBe(config.userAgent + '\n')
  })
})

describe('pack and cat at a terminal and into a closed pipe', () => {
  it('pack with stdout on a terminal refuses with a hint and writes nothing', () => {
    // script(1) gives the child a pseudo-terminal
    const r = spawnSync('script', ['-qec', `${process.execPath} ${binPath} pack`, '/dev/null'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    })
    // outside a dataset the terminal check comes first: the refusal does not depend on a dataset
    expect(r.status).toBe(2)
    expect(r.stdout).toContain('stdout is a terminal')
    expect(r.stdout).toContain('cairn pack -o release.car')
  })

  /** `cairn args | head -c 1`: the reader leaves after the first chunk. Resolves the exit code and stderr. */
  function intoClosedPipe(cwd: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [binPath, ...args], { cwd, env: env(), stdio: ['ignore', 'pipe', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      child.stdout.once('data', () => child.stdout.destroy())
      child.on('close', (code) => resolve({ code, stderr }))
    })
  }

  // was a bug: `cairn pack | head -c 100` ended with a stack trace and exit 1
  it('pack and cat exit 141, silently, every time', async () => {
    const ds = await twoVersions()
    for (let i = 0; i < 3; i++) {
      for (const args of [['pack'], ['pack', 'v1'], ['cat', 'HEAD:big.bin']]) {
        const r = await intoClosedPipe(ds, args)
        expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 141, stderr: '' })
      }
    }
    // a reader that reads it all gets exit 0: pack ends stdout, and oclif's flush writing after that
    // end meets EPIPE, which is no reader leaving (it made 141 of a complete `cairn pack | cat`)
    for (let i = 0; i < 5; i++) {
      const whole = await run(ds, ['pack'])
      expect(whole.stdout.length).toBeGreaterThan(3 * 1024 * 1024)
    }
  }, 120_000)
})

describe('cat and clone where a dataset is at hand', () => {
  it('cat takes refs (HEAD:path, a tag, HEAD~1), reads the local store without any --from, and -C works', async () => {
    const ds = await twoVersions()
    // no --from: before, cat went to the public gateways (and failed offline)
    expect((await run(ds, ['cat', 'HEAD:a.txt'])).stdout.toString()).toBe('second\n')
    expect((await run(ds, ['cat', 'v1:a.txt'])).stdout.toString()).toBe('first\n')
    expect((await run(ds, ['cat', 'HEAD~1:a.txt'])).stdout.toString()).toBe('first\n')
    const elsewhere = await tmp.make()
    expect((await run(elsewhere, ['cat', '-C', ds, 'v2:a.txt'])).stdout.toString()).toBe('second\n')
    // a CID (no ref) is read from the local store as well
    const ls = json<{ path: string; cid: { '/': string } }[]>(await run(ds, ['ls', 'v1', '--json']))
    const first = ls.find((e) => e.path === 'a.txt')!.cid['/']
    expect((await run(ds, ['cat', first])).stdout.toString()).toBe('first\n')
    const big = await run(ds, ['cat', 'v2:big.bin'])
    expect(big.stdout.equals(seededBytes(3 * 1024 * 1024, 'big'))).toBe(true)
    // a ref with no dataset at hand, an unknown ref
    expect((await run(elsewhere, ['cat', 'HEAD:a.txt'], 3)).stderr).toContain('no dataset is at hand')
    expect((await run(ds, ['cat', 'v9:a.txt'], 2)).stderr).toContain('Unknown ref "v9"')
  })

  it('cat -o writes the file whole and --json says what it wrote; --json without -o is refused', async () => {
    const ds = await twoVersions()
    const out = join(await tmp.make(), 'a.txt')
    const r = json<Record<string, unknown>>(await run(ds, ['cat', 'v1:a.txt', '-o', out, '--json']))
    expect(validateWith('cli/cat.schema.json', r)).toEqual([])
    expect(r).toMatchObject({ path: 'a.txt', size: 6, file: out })
    expect(await readFile(out, 'utf8')).toBe('first\n')
    const refused = await run(ds, ['cat', 'v1:a.txt', '--json'], 2)
    expect(json<{ error: { code: string } }>(refused).error.code).toBe('USAGE')
    // a failure leaves no file and no temporary file
    const missing = join(await tmp.make(), 'none.txt')
    await run(ds, ['cat', 'v1:nope.txt', '-o', missing], 2)
    expect(await readdir(join(missing, '..'))).toEqual([])
  })

  it('clone takes a ref of the dataset at hand and needs no --from', async () => {
    const ds = await twoVersions()
    const target = join(await tmp.make(), 'copy')
    const r = json<{ cid: { '/': string } }>(await run(ds, ['clone', 'v1', target, '--json']))
    const v1 = json<{ name: string; cid: { '/': string } }[]>(await run(ds, ['tag', '--json'])).find((t) => t.name === 'v1')!
    expect(r.cid).toEqual(v1.cid)
    expect(await readFile(join(target, 'a.txt'), 'utf8')).toBe('first\n')
    await run(target, ['verify'])
  })
})

describe('--json where a command reports something', () => {
  it('serve --json prints where it listens, at once, as JSON', async () => {
    const ds = await twoVersions()
    const child = spawn(process.execPath, [binPath, 'serve', '--port', '0', '--json'], { cwd: ds, stdio: ['ignore', 'pipe', 'pipe'] })
    const line = await new Promise<string>((resolve) => {
      let out = ''
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('\n')) resolve(out)
      })
    })
    const closed = new Promise((resolve) => child.on('close', resolve))
    child.kill('SIGTERM')
    await closed
    const value = JSON.parse(line) as { url: string; host: string; port: number }
    expect(validateWith('cli/serve.schema.json', value)).toEqual([])
    expect(value.url).toBe(`http://127.0.0.1:${value.port}`)
    expect(value.host).toBe('127.0.0.1')
  })
})

describe('the way out when cairn.json is gone but .cairn/ is there', () => {
  // was a dead end: build said "run init", init said "already a dataset"
  it('build names the missing card, init writes back HEAD’s card, and the next build changes nothing', async () => {
    const ds = await twoVersions()
    const card = await readFile(join(ds, 'cairn.json'), 'utf8')
    const head = json<{ cid: { '/': string } }[]>(await run(ds, ['log', '--json', '-n', '1']))[0].cid
    await rm(join(ds, 'cairn.json'))
    const build = await run(ds, ['build'], 3)
    expect(build.stderr).toContain('cairn.json is missing')
    expect(build.stderr).toContain('cairn init')
    const init = json<{ restoredFrom: { '/': string }; cardWritten: boolean }>(await run(ds, ['init', '--json']))
    expect(validateWith('cli/init.schema.json', init)).toEqual([])
    expect(init.restoredFrom).toEqual(head)
    expect(JSON.parse(await readFile(join(ds, 'cairn.json'), 'utf8'))).toEqual(JSON.parse(card))
    const rebuilt = json<{ unchanged: boolean; version: { '/': string } }>(await run(ds, ['build', '--json']))
    expect(rebuilt).toMatchObject({ unchanged: true, version: head })
    expect(json<{ name: string }[]>(await run(ds, ['tag', '--json'])).map((t) => t.name)).toEqual(['v1', 'v2'])
    // with both there, init still refuses
    await run(ds, ['init'], 3)
  })
})

describe('a command loads only what it uses', () => {
  /** The files a run of `cairn args` loaded, ESM and CommonJS alike, one URL or path each. */
  async function filesLoaded(cwd: string, args: string[]): Promise<string[]> {
    const trace = join(await tmp.make(), 'trace.txt')
    const preload = join(repoRoot, 'test', 'fixtures', 'trace-modules', 'register.mjs')
    const r = spawnSync(process.execPath, ['--import', preload, binPath, ...args], {
      cwd,
      env: { ...env(), CAIRN_TRACE_MODULES: trace },
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    })
    expect(r.status, r.stderr).toBe(0)
    return (await readFile(trace, 'utf8')).split('\n').filter((line) => line !== '')
  }

  /** The node_modules packages among `files` (ajv's compiler as `ajv`, not its runtime helpers). */
  function packagesOf(files: string[]): Set<string> {
    const names = new Set<string>()
    for (const line of files) {
      // the precompiled schemas use a few of ajv's runtime helpers: only its compiler counts
      if (/node_modules\/ajv\/dist\/runtime\//.test(line)) continue
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(line)
      if (m) names.add(m[1])
    }
    return names
  }

  // bin/bundle.js keeps these out of the bundle (loaded from node_modules, by name, when a command needs them)
  const heavy = ['@storacha/client', 'apache-arrow', 'hyparquet', 'ajv', 'csv-parse', 'viem', '@sigstore/verify', 'ipns']

  it('--version loads nothing but bin/run.js; log, ls, show, tag, status and an unchanged build run from the bundle and load none of the heavy dependencies', async () => {
    const ds = await twoVersions()
    const version = await filesLoaded(ds, ['--version'])
    expect(version.filter((f) => !f.endsWith('/bin/run.js'))).toEqual([])
    for (const args of [['log'], ['ls'], ['show'], ['tag'], ['log', '--stat'], ['status'], ['build']]) {
      const files = await filesLoaded(ds, args)
      expect(
        files.some((f) => f.endsWith('/dist/cli/index.js')),
        'the trace sees the bundle',
      ).toBe(true)
      // oclif and the library come from the bundle, not from hundreds of files
      expect({ args, unbundled: files.filter((f) => /\/dist\/(src|commands)\//.test(f)) }).toEqual({ args, unbundled: [] })
      expect({ args, oclif: [...packagesOf(files)].filter((p) => p.startsWith('@oclif/')) }).toEqual({ args, oclif: [] })
      expect({ args, heavy: heavy.filter((p) => packagesOf(files).has(p)) }).toEqual({ args, heavy: [] })
    }
  }, 90_000)

  it('the bundle holds none of the heavy dependencies (they stay loadable by name)', async () => {
    const bundled = new Set<string>()
    for (const f of await readdir(join(repoRoot, 'dist', 'cli'))) {
      // esbuild heads each bundled module with a comment naming its path
      for (const m of (await readFile(join(repoRoot, 'dist', 'cli', f), 'utf8')).matchAll(
        /^\/\/ \S*node_modules\/((?:@[^/]+\/)?[^/\s]+)\//gm,
      )) {
        bundled.add(m[1])
      }
    }
    expect(bundled.has('@oclif/core'), 'the comments name bundled packages').toBe(true)
    expect(heavy.filter((p) => bundled.has(p))).toEqual([])
  })
})
