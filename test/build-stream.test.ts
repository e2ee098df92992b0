// build and status as a streaming merge of the walk, the stat cache and the parent's index (#19): the
// result never depends on frame, group or window sizes, and a killed build's work is used by the next.
import { spawn } from 'node:child_process'
import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { build, status } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { buildTuning } from '../src/build.js'
import { openPartialCaches } from '../src/store/stat-cache.js'
import { DEFAULT_IGNORES, parseIgnoreRules } from '../src/worktree/ignore.js'
import ignore from 'ignore'
import { FIXED_DATE, makeDataset, tempDir, type TempDataset } from './helpers/dataset.js'
import { repoRoot } from './helpers/tmp.js'

const made: TempDataset[] = []
afterAll(async () => {
  for (const d of made) await d.cleanup()
})

/** Waits until the clock is past the racy window, so a build caches every file. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30))

/** File `i`'s path: spread over folders of three depths, so folders open and close in every pattern. */
const pathOf = (i: number): string => [`f${i}.txt`, `a/f${i}.txt`, `a/b/f${i}.txt`, `c/d/e/f${i}.txt`, `c/f${i}.txt`][i % 5]

function filesOf(ids: Iterable<number>, variant: (i: number) => number): Record<string, string> {
  return Object.fromEntries([...ids].map((i) => [pathOf(i), `file ${i}, variant ${variant(i)}`]))
}

async function withTuning<T>(tuning: typeof buildTuning, fn: () => Promise<T>): Promise<T> {
  Object.assign(buildTuning, tuning)
  try {
    return await fn()
  } finally {
    for (const k of Object.keys(buildTuning) as (keyof typeof buildTuning)[]) delete buildTuning[k]
  }
}

/** The index and tree a cold build with default sizes makes of `files`. */
async function coldRoots(files: Record<string, string>): Promise<{ index: string; tree: string }> {
  const ds = await makeDataset(files)
  made.push(ds)
  const r = await build({ dir: ds.dir, date: FIXED_DATE })
  return { index: r.manifest.index.toString(), tree: r.manifest.tree.toString() }
}

const tuning = fc.record({
  frameBytes: fc.integer({ min: 1, max: 400 }),
  groupFiles: fc.integer({ min: 1, max: 5 }),
  window: fc.integer({ min: 1, max: 3 }),
})

describe('build as a streaming merge', () => {
  it('gives the same roots and change counts whatever the frame, group and window sizes, cold and after edits (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 0, max: 39 }), { minLength: 1, maxLength: 16 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 59 }), { maxLength: 8 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 39 }), { maxLength: 6 }),
        tuning,
        async (initial, touched, removed, sizes) => {
          const before = new Set(initial)
          const ds = await makeDataset(filesOf(before, () => 0))
          made.push(ds)
          await settle()
          const first = await withTuning(sizes, () => build({ dir: ds.dir, date: FIXED_DATE }))
          expect({ index: first.manifest.index.toString(), tree: first.manifest.tree.toString() }).toEqual(
            await coldRoots(filesOf(before, () => 0)),
          )
          // edits: touched paths get new bytes (added when new), removed ones go
          const after = new Set(before)
          for (const i of touched) after.add(i)
          const gone = removed.filter((i) => before.has(i) && !touched.includes(i))
          for (const i of gone) after.delete(i)
          await ds.write(filesOf(touched, () => 1))
          for (const i of gone) await rm(join(ds.dir, pathOf(i)))
          const expected = {
            added: [...after].filter((i) => !before.has(i)).length,
            removed: [...before].filter((i) => !after.has(i)).length,
            modified: touched.filter((i) => before.has(i)).length,
          }
          await settle()
          const seen = await withTuning(sizes, () => status({ dir: ds.dir }))
          // every file's bytes name its number: no rename
          expect(seen.counts).toEqual({ ...expected, renamed: 0 })
          const second = await withTuning(sizes, () => build({ dir: ds.dir, date: FIXED_DATE }))
          const variant = (i: number): number => (touched.includes(i) ? 1 : 0)
          if (after.size > 0) {
            expect({ index: second.manifest.index.toString(), tree: second.manifest.tree.toString() }).toEqual(
              await coldRoots(filesOf(after, variant)),
            )
          }
          expect(second.changes).toEqual(expected)
          // and nothing changed since: unchanged, no file read
          let read = 0
          const third = await withTuning(sizes, () =>
            build({ dir: ds.dir, date: FIXED_DATE, onProgress: (p) => void (p.phase === 'import' && read++) }),
          )
          expect(third.unchanged).toBe(true)
          expect(read).toBe(0)
          expect((await withTuning(sizes, () => status({ dir: ds.dir }))).clean).toBe(true)
        },
      ),
      { numRuns: 20, seed: 19 },
    )
  }, 240_000)

  it('a build killed midway leaves the store whole, and the next build reads only what the killed one had not stored', async () => {
    const n = 1500
    const ds = await makeDataset({ 'seed.txt': 'first version' })
    made.push(ds)
    await settle()
    const first = await build({ dir: ds.dir, date: FIXED_DATE })
    const files = Object.fromEntries(
      Array.from({ length: n }, (_, i) => [`d${i % 7}/f${String(i).padStart(5, '0')}.txt`, `file ${i} `.repeat(50)]),
    )
    await ds.write(files)
    await settle()

    const script = join(await tempDir('cairn-kill-'), 'child-build.ts')
    await writeFile(
      script,
      [
        `import { build } from ${JSON.stringify(join(repoRoot, 'src', 'index.ts'))}`,
        `import { buildTuning } from ${JSON.stringify(join(repoRoot, 'src', 'build.ts'))}`,
        // small frames and groups: the partial cache grows file by file
        `Object.assign(buildTuning, { frameBytes: 256, groupFiles: 2, window: 1 })`,
        `await build({ dir: ${JSON.stringify(ds.dir)}, jobs: 1, onProgress: (p) => {`,
        `  if (p.phase === 'import') process.stdout.write('imported ' + p.files + '\\n')`,
        `} })`,
        `process.stdout.write('done\\n')`,
      ].join('\n'),
    )
    const viteNode = join(repoRoot, 'node_modules', 'vite-node', 'vite-node.mjs')
    const child = spawn(process.execPath, [viteNode, '--root', repoRoot, script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_, signal) => res(signal)))
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const done = [...out.matchAll(/imported (\d+)/g)].map((m) => Number(m[1]))
      if (done.some((k) => k >= n / 3)) child.kill('SIGKILL')
    })
    const signal = await exited
    expect(out, `the child did not start importing: ${err}`).toMatch(/imported \d+/)
    expect(signal).toBe('SIGKILL')
    expect(out).not.toContain('done')

    // HEAD is the first version; every indexed block is whole (the store's get hashes each)
    const { store, refs } = await openDataset(ds.dir)
    expect((await refs.head())?.toString()).toBe(first.version.toString())
    for (const cid of await store.cids()) await store.get(cid)
    await store.close()

    // the partial cache the killed build left: its whole frames hold facts of files it stored
    const noRules = (await import('node:crypto')).createHash('sha256').update('[]').digest('hex')
    const [partial] = openPartialCaches(join(ds.dir, '.cairn'), noRules)
    expect(partial).toBeDefined()
    let kept = 0
    for (const c = partial.cursor(); c.current; c.advance()) kept++
    expect(kept).toBeGreaterThan(0)

    let read = 0
    const second = await build({ dir: ds.dir, date: FIXED_DATE, onProgress: (p) => void (p.phase === 'import' && read++) })
    expect(second.manifest.parent?.toString()).toBe(first.version.toString())
    expect(second.changes).toEqual({ added: n, removed: 0, modified: 0 })
    expect(read).toBe(n - kept)
    // the same roots as a build of the same files from scratch; no partial cache is left
    const fresh = await makeDataset({ ...files, 'seed.txt': 'first version' })
    made.push(fresh)
    const cold = await build({ dir: fresh.dir, date: FIXED_DATE })
    expect(second.manifest.index.toString()).toBe(cold.manifest.index.toString())
    expect(second.manifest.tree.toString()).toBe(cold.manifest.tree.toString())
    expect((await readdir(join(ds.dir, '.cairn'))).filter((f) => f.endsWith('.partial'))).toEqual([])
    expect(await readFile(join(ds.dir, '.cairn', 'stat-cache'))).toBeDefined()
  }, 240_000)

  it('the default ignore rules (no .cairnignore of its own) answer as the ignore package does, and forget nothing they need', () => {
    const oracle = ignore().add([...DEFAULT_IGNORES])
    const mine = parseIgnoreRules('# only a comment\n\n')
    const theirs = parseIgnoreRules('*.tmp\n')
    const names = ['a.car', 'a.cars', 'car', '.car', 'x.CAR', 'd.car/f.txt', 'd/e.car', 'd/e/f.bin', 'a b.car', 'é.car', 'x.car.txt']
    for (const path of names) {
      for (const folder of [false, true]) {
        const asked = folder ? path + '/' : path
        expect(mine.ignores(path, folder), asked).toBe(oracle.ignores(asked))
        expect(theirs.ignores(path, folder), asked).toBe(oracle.ignores(asked) || /\.tmp$/.test(path))
      }
    }
    // the matcher of a folder's own rules is renewed every few thousand paths: the answers stay right
    for (let i = 0; i < 10_000; i++) expect(theirs.ignores(`d${i % 7}/f${i}.${i % 3 ? 'tmp' : 'bin'}`, false)).toBe(i % 3 !== 0)
  })
})
