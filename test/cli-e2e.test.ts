/**
 * End to end: `node bin/run.js` as a child process in a copy of tiny-instruct, stdout and stderr
 * pipes (not terminals), exit codes as a shell sees them.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { validateWith } from '../src/schemas.js'
import { binPath, ensureBuilt, spawnCairn, type SpawnResult } from './helpers/cli.js'
import { cairnJson, flipBitInside } from './helpers/dataset.js'
import { tempDirs } from './helpers/tmp.js'

const tmp = tempDirs('cairn-e2e-')
afterEach(() => tmp.cleanup())
beforeAll(() => ensureBuilt())

const CID = /^b[a-z2-7]{20,}$/
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x1b\r]/

/** Environment of the child: the caller's, without SOURCE_DATE_EPOCH or forced colours. */
function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env }
  delete e.SOURCE_DATE_EPOCH
  delete e.FORCE_COLOR
  return e
}

/** Runs cairn in `cwd`, asserting its exit code and that stderr holds no progress escape codes. */
async function run(cwd: string, args: string[], exitCode = 0): Promise<SpawnResult> {
  const r = await spawnCairn(args, { cwd, env: env() })
  expect(r.exitCode, `cairn ${args.join(' ')}\n${r.stderr}`).toBe(exitCode)
  expect(r.stderr, `cairn ${args.join(' ')}: stderr`).not.toMatch(CONTROL)
  return r
}

function json<T>(r: SpawnResult): T {
  return JSON.parse(r.stdout.toString('utf8')) as T
}

describe('cairn as a child process', () => {
  it('init → build → ls --json → pack (stdout and -o) → verify → verify --car', async () => {
    const ds = await tmp.copyDataset()

    const init = await run(ds, ['init'])
    expect(init.stdout.toString()).toBe(`Initialised the store in ${ds} (kept its cairn.json)\n`)

    const build = await run(ds, ['build', '-m', 'first release'])
    const version = build.stdout.toString().trim()
    expect(version).toMatch(CID)
    // the summary, then the tree CID (what `ipfs-car unpack <car> --root <tree>` needs)
    expect(build.stderr).toMatch(/^\d+ shards, .* rows \(\+\d+ added, ~0 modified, -0 removed\)\ntree bafy\w+\n$/)

    const ls = json<{ path: string; rows?: number }[]>(await run(ds, ['ls', '--json']))
    expect(validateWith('cli/ls.schema.json', ls)).toEqual([])
    expect(ls.map((s) => s.path)).toEqual(
      expect.arrayContaining(['train/part-000.parquet', 'validation/part-000.arrow', 'test/part-000.jsonl']),
    )

    // the CAR on stdout; on stderr the root CID first (its own line), then the tree CID
    const piped = await run(ds, ['pack'])
    expect(piped.stderr).toMatch(new RegExp(`^${version}\\ntree bafy\\w+\\n$`))
    expect(piped.stdout.length).toBeGreaterThan(ls.length)
    const out = await tmp.make()
    const toFile = await run(ds, ['pack', '-o', join(out, 'file.car')])
    expect(toFile.stdout.toString()).toMatch(new RegExp(`^${version}  \\d+ blocks`))
    const fileBytes = await readFile(join(out, 'file.car'))
    expect(Buffer.compare(piped.stdout, fileBytes)).toBe(0)
    await writeFile(join(out, 'stdout.car'), piped.stdout)

    expect((await run(ds, ['verify'])).stdout.toString()).toMatch(new RegExp(`^ok: ${ls.length} files, .* match ${version}\\n$`))
    const car = json<{ ok: boolean; roots: { '/': string }[] }>(await run(ds, ['verify', '--car', join(out, 'stdout.car'), '--json']))
    expect(validateWith('cli/verify.schema.json', car)).toEqual([])
    expect(car).toMatchObject({ ok: true, roots: [{ '/': version }] })

    // a damaged CAR: exit 5, integrity of the input (folder differences, exit 1, are covered in commands.test.ts)
    await flipBitInside(join(out, 'file.car'), (await readFile(join(ds, 'train', 'part-000.parquet'))).subarray(0, 4096))
    expect((await run(out, ['verify', '--car', 'file.car'], 5)).stdout.toString()).toContain('FAILED: 1 problem(s)')
  })

  it('errors: exit codes, JSON on stdout under --json, human text on stderr', async () => {
    const empty = await tmp.make()
    const human = await run(empty, ['log'], 3)
    expect(human.stdout.length).toBe(0)
    expect(human.stderr).toMatch(/^Error: .* is not inside a cairn dataset .*\nHint: run `cairn init` in the dataset folder first\n$/)

    const r = await run(empty, ['log', '--json'], 3)
    const error = json<{ error: { code: string } }>(r)
    expect(validateWith('cli/error.schema.json', error)).toEqual([])
    expect(error.error.code).toBe('NOT_A_DATASET')

    await run(empty, ['verify', '--car', 'absent.car'], 6)
  })

  // was a bug: when the reader of stdout goes away (`cairn pack | head -c 10`), pack reports EPIPE as
  // "Internal error (a bug in cairn, please report it)" with a stack trace and exits 70.
  it('pack to a closed pipe exits quietly, not as an internal error', async () => {
    const ds = await tmp.copyDataset()
    await cairnJson(['init', ds])
    await cairnJson(['build', '-C', ds])
    const child = spawn(process.execPath, [binPath, 'pack'], { cwd: ds, env: env(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    // the CAR (over 100 KiB) does not fit the pipe buffer: pack is still writing when the reader leaves
    child.stdout.once('data', () => child.stdout.destroy())
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
    expect(stderr).not.toContain('Internal error')
    expect(code).not.toBe(70)
  })

  // -C names the dataset; other relative paths stay relative to the current folder (its --help says so)
  it('-C: a relative -o is relative to the current folder, not the -C folder', async () => {
    const ds = await tmp.copyDataset()
    const elsewhere = await tmp.make()
    await cairnJson(['init', ds])
    await cairnJson(['build', '-C', ds])
    await run(elsewhere, ['pack', '-C', ds, '-o', 'rel.car'])
    expect(existsSync(join(elsewhere, 'rel.car'))).toBe(true)
    expect(existsSync(join(ds, 'rel.car'))).toBe(false)
  })
})
