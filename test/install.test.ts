/**
 * The package as a user installs it (README "Install"): `npm pack` gives a tarball that `npm install`
 * puts into an empty folder, whose `cairn` runs; and the committed package-lock.json is what
 * `npm install` leaves. npm talks to no registry here: its registry is a closed loopback port, and it
 * runs with --offline. The tarball's dependencies are laid out beforehand as copies of the
 * repository's installed production packages (those package-lock.json does not mark dev), so a
 * runtime import of a dev-only package, or a file missing from the tarball, fails the test.
 */
import { execFile } from 'node:child_process'
import { cp, mkdir, readdir, readFile, realpath, symlink, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt } from './helpers/cli.js'
import { repoRoot, tempDirs } from './helpers/tmp.js'

const run = promisify(execFile)
const tmp = tempDirs('cairn-install-')
afterAll(() => tmp.cleanup())
beforeAll(() => ensureBuilt())

/** npm, offline, with a registry nobody answers on (loopback), no audit, no scripts of dependencies. */
function npm(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return run('npm', [...args, '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], {
    cwd,
    env: { ...process.env, npm_config_registry: 'http://127.0.0.1:9/', npm_config_update_notifier: 'false' },
    maxBuffer: 64 * 1024 * 1024,
  })
}

interface Lock {
  packages: Record<string, { version?: string; dev?: boolean; link?: boolean; bin?: Record<string, string> }>
}

describe('install', () => {
  it('npm pack gives a tarball that installs in an empty folder, and its cairn runs', async () => {
    const packDir = await tmp.make()
    const { stdout } = await npm(['pack', '--json', '--pack-destination', packDir], repoRoot)
    const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[]
    const files = packed.files.map((f) => f.path)
    expect(files).toEqual(
      expect.arrayContaining(['bin/run.js', 'dist/src/index.js', 'dist/commands/build.js', 'package.json', 'README.md']),
    )
    expect(files.filter((f) => f.startsWith('test/') || f.startsWith('src/') || f.endsWith('.test.js'))).toEqual([])

    // an empty project whose node_modules already holds cairn's production dependencies
    const project = await tmp.make()
    const lock = JSON.parse(await readFile(join(repoRoot, 'package-lock.json'), 'utf8')) as Lock
    const installed = await realpath(join(repoRoot, 'node_modules'))
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (!path.startsWith('node_modules/') || entry.dev || entry.link) continue
      const from = join(installed, path.slice('node_modules/'.length))
      const to = join(project, path)
      if (!existsSync(from)) continue
      if (!existsSync(to)) {
        await mkdir(join(to, '..'), { recursive: true })
        await cp(from, to, { recursive: true })
      }
      // the bin links npm would have made (npm reinstalls a package whose links are missing)
      const top = /^node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(path)?.[1]
      for (const [name, target] of top ? Object.entries(entry.bin ?? {}) : []) {
        await mkdir(join(project, 'node_modules', '.bin'), { recursive: true })
        const link = join(project, 'node_modules', '.bin', name)
        if (!existsSync(link)) await symlink(join('..', top!, target), link)
      }
    }
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'notebook', private: true }) + '\n')
    await npm(['install', join(packDir, packed.filename)], project)

    const bin = join(project, 'node_modules', '.bin', 'cairn')
    const version = (await run(bin, ['--version'], { cwd: project })).stdout
    expect(version).toMatch(/^cairn\/0\.\d+\.\d+ \S+ node-v\d+/)
    const manifest = JSON.parse(await readFile(join(project, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
    expect(Object.keys(manifest.dependencies)).toEqual(['cairn'])

    // the installed copy works as a whole: oclif finds its commands, the library loads, a build runs
    const help = (await run(bin, ['help'], { cwd: project })).stdout
    expect(help).toMatch(/^\s+build\s/m)
    const data = join(project, 'data')
    await mkdir(data)
    await writeFile(join(data, 'rows.jsonl'), '{"id":1}\n{"id":2}\n')
    await run(bin, ['init', '--name', 'notebook-data'], { cwd: data })
    const built = JSON.parse((await run(bin, ['build', '--json', '--date', '2026-01-01T00:00:00Z'], { cwd: data })).stdout) as {
      manifest: { totals: { rows: number } }
    }
    expect(built.manifest.totals.rows).toBe(2)
    // and as a library
    const lib = await run(process.execPath, ['--input-type=module', '-e', "import('cairn').then((m) => console.log(typeof m.build))"], {
      cwd: project,
    })
    expect(lib.stdout.trim()).toBe('function')
  }, 300_000)

  it('npm install leaves the committed package-lock.json as it is', async () => {
    const dir = await tmp.make()
    for (const f of ['package.json', 'package-lock.json']) await cp(join(repoRoot, f), join(dir, f))
    await npm(['install', '--package-lock-only'], dir)
    expect(await readFile(join(dir, 'package-lock.json'), 'utf8')).toBe(await readFile(join(repoRoot, 'package-lock.json'), 'utf8'))
    expect(await readdir(dir)).toEqual(['package-lock.json', 'package.json'])
  }, 120_000)
})
