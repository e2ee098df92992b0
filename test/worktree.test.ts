/**
 * `status`, `diff --worktree`, `restore`, `reset`, `tag -d` and `.cairnignore`: round trips on a
 * dataset with every kind of change. Oracles: `build` + `diff` (the index walk) for what status
 * reports, `verify` (which re-hashes the folder) for what restore writes, and git's own
 * `check-ignore` for the ignore rules.
 */
import { execFileSync } from 'node:child_process'
import { readFile, rename, rm, utimes, writeFile, mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  build,
  CairnError,
  ls,
  type CID,
  deleteTag,
  diff,
  headLog,
  reset,
  restore,
  status,
  tag,
  tags,
  verify,
  type ShardChange,
} from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { validateWith } from '../src/schemas.js'
import ignore from 'ignore'
import { DEFAULT_IGNORES, parseIgnoreRules } from '../src/worktree/ignore.js'
import { cairn, ensureBuilt, parseJson } from './helpers/cli.js'
import { FIXED_DATE, jsonl, makeDataset, seededBytes, thrown, type TempDataset } from './helpers/dataset.js'

const MiB = 1024 * 1024
const made: TempDataset[] = []
afterEach(async () => {
  await Promise.all(made.splice(0).map((d) => d.cleanup()))
})
beforeAll(() => ensureBuilt())

async function dataset(): Promise<TempDataset & { v1: string }> {
  const ds = await makeDataset({
    'a.jsonl': jsonl([
      { id: 1, t: 'x' },
      { id: 2, t: 'y' },
    ]),
    'b.txt': 'to be removed',
    'c.txt': 'to be renamed',
    'dir/d.bin': seededBytes(2 * MiB + 5, 'd'),
    'dir/touched.txt': 'same bytes, new stamp',
    'e.csv': 'id,v\n1,a\n',
  })
  made.push(ds)
  const v1 = (await build({ dir: ds.dir, message: 'v1', date: FIXED_DATE })).version.toString()
  return { ...ds, v1 }
}

/** Every kind of change: modified (small and multi-chunk), removed, renamed, added, touched only, card. */
async function change(dir: string): Promise<void> {
  await writeFile(
    join(dir, 'a.jsonl'),
    jsonl([
      { id: 1, t: 'x' },
      { id: 2, t: 'z' },
      { id: 3, t: 'w' },
    ]),
  )
  await rm(join(dir, 'b.txt'))
  await mkdir(join(dir, 'moved'))
  await rename(join(dir, 'c.txt'), join(dir, 'moved/c2.txt'))
  await writeFile(join(dir, 'new.txt'), 'added')
  const big = seededBytes(2 * MiB + 5, 'd')
  big[MiB + 3] ^= 1
  await writeFile(join(dir, 'dir/d.bin'), big)
  const later = new Date('2020-01-01T00:00:00Z')
  await utimes(join(dir, 'dir/touched.txt'), later, later)
  const card = JSON.parse(await readFile(join(dir, 'cairn.json'), 'utf8')) as Record<string, unknown>
  await writeFile(join(dir, 'cairn.json'), JSON.stringify({ ...card, description: 'changed' }))
}

const brief = (s: readonly ShardChange[]) => s.map((c) => ({ status: c.status, path: c.path, from: c.from }))

describe('status', () => {
  it('reports every kind of change exactly as build + diff then see it, and is clean after the build', async () => {
    const ds = await dataset()
    const clean = await status({ dir: ds.dir })
    // `hashed` may be above 0: build leaves files written in its last 10 ms out of the stat cache (racy
    // stamps, src/build.ts), and status then reads them; what they hold must still be the version's
    expect(clean).toMatchObject({ clean: true, shards: [], card: 'same' })
    await change(ds.dir)
    const s = await status({ dir: ds.dir })
    expect(s.clean).toBe(false)
    expect(s.card).toBe('modified')
    expect(brief(s.shards)).toEqual([
      { status: 'modified', path: 'a.jsonl', from: undefined },
      { status: 'removed', path: 'b.txt', from: undefined },
      { status: 'modified', path: 'dir/d.bin', from: undefined },
      { status: 'renamed', path: 'moved/c2.txt', from: 'c.txt' },
      { status: 'added', path: 'new.txt', from: undefined },
    ])
    expect(s.counts).toEqual({ added: 1, removed: 1, modified: 2, renamed: 1 })
    // the oracle: build the folder, and diff the two versions by their indexes (a file written in the
    // same clock tick as the build's scan is not cached: wait one)
    await new Promise((r) => setTimeout(r, 30))
    const v2 = await build({ dir: ds.dir, message: 'v2', date: FIXED_DATE })
    const d = await diff({ dir: ds.dir, a: ds.v1, b: v2.version.toString() })
    expect(brief(s.shards)).toEqual(brief(d.shards))
    for (const c of s.shards) {
      const other = d.shards.find((x) => x.path === c.path)!
      expect(c.after?.cid.toString()).toBe(other.after?.cid.toString())
      expect(c.before?.cid.toString()).toBe(other.before?.cid.toString())
    }
    // after the build nothing is read again: the stat cache says it all
    const after = await status({ dir: ds.dir })
    expect(after).toMatchObject({ clean: true, card: 'same' })
    // against another version: the same changes, from the other side
    const back = await status({ dir: ds.dir, ref: ds.v1 })
    expect(brief(back.shards)).toEqual(brief(d.shards))
  })

  it('--rows gives the row diff of a modified shard against the folder file', async () => {
    const ds = await dataset()
    await change(ds.dir)
    const s = await status({ dir: ds.dir, rows: true })
    const a = s.shards.find((c) => c.path === 'a.jsonl')!
    expect(a.rows).toMatchObject({ status: 'compared', added: 2, removed: 1 })
  })

  it('before the first build every file is added', async () => {
    const ds = await makeDataset({ 'x.txt': 'x' })
    made.push(ds)
    const s = await status({ dir: ds.dir })
    expect(s.version).toBeNull()
    expect(brief(s.shards)).toEqual([{ status: 'added', path: 'x.txt', from: undefined }])
  })

  it('CLI: --exit-code, --json against its schema, diff HEAD . and diff --worktree', async () => {
    const ds = await dataset()
    let r = await cairn(['status', '-C', ds.dir, '--exit-code'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toContain('nothing changed')
    await change(ds.dir)
    r = await cairn(['status', '-C', ds.dir, '--exit-code', '--json'])
    expect(r.exitCode).toBe(1)
    expect(validateWith('cli/status.schema.json', parseJson(r))).toEqual([])
    r = await cairn(['status', '-C', ds.dir])
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(/^R c\.txt → moved\/c2\.txt$/m)
    expect(r.stdout).toMatch(/^D b\.txt/m)
    expect(r.stdout).toMatch(/^M cairn\.json/m)
    for (const args of [
      ['diff', 'HEAD', '.'],
      ['diff', '--worktree'],
    ]) {
      const j = await cairn([...args, '-C', ds.dir, '--json', '--exit-code'])
      expect(j.exitCode).toBe(1)
      expect(validateWith('cli/diff.schema.json', parseJson(j))).toEqual([])
      expect((parseJson(j) as { counts: unknown }).counts).toEqual({ added: 1, removed: 1, modified: 2, renamed: 1 })
    }
  })
})

describe('restore', () => {
  it('round trip: restoring v1 after every kind of change gives exactly v1 (verify re-hashes the folder)', async () => {
    const ds = await dataset()
    await change(ds.dir)
    const v2 = (await build({ dir: ds.dir, message: 'v2', date: FIXED_DATE })).version.toString()
    const r = await restore({ dir: ds.dir, ref: ds.v1 })
    expect(r.restored).toEqual(['a.jsonl', 'b.txt', 'c.txt', 'dir/d.bin'])
    expect(r.removed).toEqual(['moved/c2.txt', 'new.txt'])
    expect(r.card).toBe('restored')
    expect(await verify({ dir: ds.dir, ref: ds.v1 })).toMatchObject({ ok: true, missing: [], extra: [], modified: [], card: 'same' })
    // HEAD did not move: the folder now shows the way back as changes
    const s = await status({ dir: ds.dir })
    expect(s.version?.toString()).toBe(v2)
    expect(s.counts).toEqual({ added: 1, removed: 1, modified: 2, renamed: 1 })
    // and forward again: the folder now differs from HEAD, so only with --force
    const refused = (await thrown(() => restore({ dir: ds.dir, ref: 'HEAD' }))) as CairnError
    expect(refused.code).toBe('UNCOMMITTED_CHANGES')
    expect(refused.details).toEqual(['a.jsonl', 'b.txt', 'c.txt', 'cairn.json', 'dir/d.bin'])
    const forward = await restore({ dir: ds.dir, ref: 'HEAD', force: true })
    expect(forward.removed).toEqual(['b.txt', 'c.txt'])
    expect(await verify({ dir: ds.dir, ref: v2 })).toMatchObject({ ok: true })
    expect((await status({ dir: ds.dir })).clean).toBe(true)
  })

  it('refuses to overwrite uncommitted changes before writing anything, unless --force', async () => {
    const ds = await dataset()
    await writeFile(join(ds.dir, 'a.jsonl'), 'my work\n')
    await rm(join(ds.dir, 'b.txt'))
    const e = await thrown(() => restore({ dir: ds.dir, ref: 'HEAD' }))
    expect(e).toBeInstanceOf(CairnError)
    expect((e as CairnError).code).toBe('UNCOMMITTED_CHANGES')
    expect((e as CairnError).details).toEqual(['a.jsonl'])
    // nothing was written: not even the file that was merely gone
    expect(await readFile(join(ds.dir, 'a.jsonl'), 'utf8')).toBe('my work\n')
    await expect(readFile(join(ds.dir, 'b.txt'))).rejects.toThrow()
    // a deleted file loses nothing when written back
    expect((await restore({ dir: ds.dir, ref: 'HEAD', paths: ['b.txt'], cwd: ds.dir })).restored).toEqual(['b.txt'])
    const r = await cairn(['restore', 'HEAD', '-C', ds.dir, '--json'])
    expect(r.exitCode).toBe(4)
    expect(validateWith('cli/error.schema.json', parseJson(r))).toEqual([])
    await restore({ dir: ds.dir, ref: 'HEAD', force: true })
    expect((await verify({ dir: ds.dir })).ok).toBe(true)
  })

  it('restores one path or folder; a path the version lacks or outside the dataset is refused', async () => {
    const ds = await dataset()
    await rm(join(ds.dir, 'dir'), { recursive: true })
    const r = await restore({ dir: ds.dir, ref: 'HEAD', paths: ['dir'], cwd: ds.dir })
    expect(r.restored).toEqual(['dir/d.bin', 'dir/touched.txt'])
    expect(r.card).toBe('skipped')
    expect(((await thrown(() => restore({ dir: ds.dir, ref: 'HEAD', paths: ['nope.txt'], cwd: ds.dir }))) as CairnError).code).toBe(
      'BAD_PATH',
    )
    expect(((await thrown(() => restore({ dir: ds.dir, ref: 'HEAD', paths: ['../x'], cwd: ds.dir }))) as CairnError).code).toBe('BAD_PATH')
  })

  it('verifies every block: a damaged block fails the restore and leaves the old file as it was', async () => {
    const ds = await dataset()
    let c: { cid: CID } | undefined
    for await (const e of ls({ dir: ds.dir })) if (e.path === 'c.txt') c = e
    const store = (await openDataset(ds.dir)).store
    const at = (await store.locationOf(c!.cid))!
    await store.close()
    const pack = await readFile(at.file)
    pack[at.offset] ^= 0xff
    await writeFile(at.file, pack)
    await writeFile(join(ds.dir, 'c.txt'), 'to be renamed') // unchanged bytes, new stamp: not a conflict
    await rm(join(ds.dir, 'c.txt'))
    const e = await thrown(() => restore({ dir: ds.dir, ref: 'HEAD', paths: ['c.txt'], cwd: ds.dir }))
    expect((e as CairnError).code).toBe('CORRUPT_BLOCK')
    await expect(readFile(join(ds.dir, 'c.txt'))).rejects.toThrow()
  })

  it('a file of the version takes back the place of a folder that holds only files to remove', async () => {
    const ds = await dataset()
    await rm(join(ds.dir, 'b.txt'))
    await mkdir(join(ds.dir, 'b.txt', 'inner'), { recursive: true })
    await writeFile(join(ds.dir, 'b.txt', 'inner', 'new.txt'), 'untracked')
    expect(((await thrown(() => restore({ dir: ds.dir, ref: 'HEAD' }))) as CairnError).details).toEqual(['b.txt/inner/new.txt'])
    const r = await restore({ dir: ds.dir, ref: 'HEAD', force: true })
    expect(r).toMatchObject({ restored: ['b.txt'], removed: ['b.txt/inner/new.txt'] })
    expect(await readFile(join(ds.dir, 'b.txt'), 'utf8')).toBe('to be removed')
    expect((await verify({ dir: ds.dir })).ok).toBe(true)
  })

  it('never writes through a folder that is a symbolic link', async () => {
    const ds = await dataset()
    const outside = await makeDataset({}, { noInit: true })
    made.push(outside)
    await rm(join(ds.dir, 'dir'), { recursive: true })
    await symlink(outside.dir, join(ds.dir, 'dir'))
    const e = await thrown(() => restore({ dir: ds.dir, ref: 'HEAD', paths: ['dir/d.bin'], cwd: ds.dir, force: true }))
    expect((e as CairnError).code).toBe('BAD_PATH')
    await expect(readFile(join(outside.dir, 'd.bin'))).rejects.toThrow()
  })
})

describe('reset and the HEAD log', () => {
  it('moves HEAD keeping the files, records every move, and --undo goes back', async () => {
    const ds = await dataset()
    await change(ds.dir)
    const v2 = (await build({ dir: ds.dir, message: 'v2', date: FIXED_DATE })).version.toString()
    const r = await reset({ dir: ds.dir, ref: 'HEAD~1' })
    expect([r.from?.toString(), r.to.toString()]).toEqual([v2, ds.v1])
    // files kept: the folder is v2's, so against v1 it shows v2's changes
    expect((await status({ dir: ds.dir })).counts).toEqual({ added: 1, removed: 1, modified: 2, renamed: 1 })
    const moves = await headLog({ dir: ds.dir })
    expect(moves.map((m) => [m.op, m.to.toString()])).toEqual([
      ['reset', ds.v1],
      ['build', v2],
      ['build', ds.v1],
    ])
    expect(moves[1].message).toBe('v2')
    const u = await reset({ dir: ds.dir, undo: true })
    expect(u.to.toString()).toBe(v2)
    expect((await status({ dir: ds.dir })).clean).toBe(true)
    // a version the store does not have never becomes HEAD
    const e = await thrown(() => reset({ dir: ds.dir, ref: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' }))
    expect((e as CairnError).code).toBe('MISSING_BLOCK')
    expect((await openDataset(ds.dir).then((d) => d.refs.head()))?.toString()).toBe(v2)
    for (const args of [
      ['reset', '--list'],
      ['reset', 'HEAD~1'],
      ['reset', '--undo'],
    ]) {
      const j = await cairn([...args, '-C', ds.dir, '--json'])
      expect(j.exitCode, j.stdout).toBe(0)
      expect(validateWith('cli/reset.schema.json', parseJson(j))).toEqual([])
    }
  })
})

describe('tags', () => {
  it('tag -d deletes a tag, the list shows each version', async () => {
    const ds = await dataset()
    await tag({ dir: ds.dir, name: 'v1' })
    const list = await tags({ dir: ds.dir })
    expect(list).toEqual([{ name: 'v1', cid: expect.anything(), created: FIXED_DATE.toISOString(), message: 'v1' }])
    let r = await cairn(['tag', '-C', ds.dir, '--json'])
    expect(validateWith('cli/tag.schema.json', parseJson(r))).toEqual([])
    r = await cairn(['tag', '-d', 'v1', '-C', ds.dir, '--json'])
    expect(r.exitCode).toBe(0)
    expect(validateWith('cli/tag.schema.json', parseJson(r))).toEqual([])
    expect(await tags({ dir: ds.dir })).toEqual([])
    expect(((await thrown(() => deleteTag({ dir: ds.dir, name: 'v1' }))) as CairnError).code).toBe('BAD_REF')
  })
})

describe('.cairnignore', () => {
  const paths = [
    'a.car',
    'sub/b.car',
    'keep.car',
    'tmp/x.txt',
    'tmp',
    'logs/1.log',
    'data/x.jsonl',
    'data/cache/y',
    'z.txt',
    'deep/a/b/c.tmp',
  ]
  const rules = ['tmp/', '*.log', '!keep.car', 'data/cache', '**/*.tmp', '# a comment', '']

  it('follows git: the same patterns give the same answers as git check-ignore', async () => {
    const repo = await makeDataset({}, { noInit: true })
    made.push(repo)
    execFileSync('git', ['init', '-q', repo.dir], { stdio: ['ignore', 'ignore', 'inherit'] })
    // real files and folders, so that git knows which paths are folders
    for (const p of paths.filter((p) => p !== 'tmp')) {
      await mkdir(join(repo.dir, p, '..'), { recursive: true })
      await writeFile(join(repo.dir, p), '')
    }
    // cairn's default (*.car) first, as cairn applies it
    await writeFile(join(repo.dir, '.gitignore'), ['*.car', ...rules].join('\n') + '\n')
    const ours = parseIgnoreRules(rules.join('\n'))
    for (const p of paths) {
      let git: boolean
      try {
        execFileSync('git', ['-C', repo.dir, 'check-ignore', '-q', '--no-index', p], { stdio: ['ignore', 'ignore', 'ignore'] })
        git = true
      } catch {
        git = false
      }
      expect(ours.ignores(p, p === 'tmp'), p).toBe(git)
    }
  })

  it('with no patterns of its own (the defaults alone, matched without the library) answers as the library does', () => {
    const library = ignore().add([...DEFAULT_IGNORES])
    const segment = fc.stringMatching(/^[^/]{1,8}$/, { size: 'small' }).filter((s) => s !== '.' && s !== '..')
    const tails = ['.car', '.CAR', '.Car', '.car ', 'car', '.cars', '.ca', '.car.bin', '']
    const path = fc
      .tuple(fc.array(fc.tuple(segment, fc.constantFrom(...tails)), { minLength: 1, maxLength: 4 }), fc.boolean())
      .map(([parts, folder]) => ({ path: parts.map(([s, t]) => s + t).join('/'), folder }))
    for (const text of ['', '# only a comment\n\n   \n']) {
      const ours = parseIgnoreRules(text)
      fc.assert(
        fc.property(path, ({ path, folder }) => ours.ignores(path, folder) === library.ignores(folder ? path + '/' : path)),
        { seed: 17, numRuns: 5000 },
      )
    }
  })

  it('build, status and verify honour it; a CAR written by pack -o inside the dataset never becomes a shard', async () => {
    const ds = await dataset()
    await writeFile(join(ds.dir, '.cairnignore'), 'scratch/\n*.log\n')
    await mkdir(join(ds.dir, 'scratch'))
    await writeFile(join(ds.dir, 'scratch/notes.txt'), 'x')
    await writeFile(join(ds.dir, 'run.log'), 'x')
    let r = await cairn(['pack', '-C', ds.dir, '-o', join(ds.dir, 'release.car')])
    expect(r.exitCode, r.stderr).toBe(0)
    expect((await status({ dir: ds.dir })).clean).toBe(true)
    expect(await verify({ dir: ds.dir })).toMatchObject({ ok: true, extra: [] })
    const b = await build({ dir: ds.dir, date: FIXED_DATE })
    expect(b.unchanged).toBe(true)
    // a CAR can still be a shard when the ignore file takes it back
    await writeFile(join(ds.dir, '.cairnignore'), '!release.car\n')
    expect(brief((await status({ dir: ds.dir })).shards)).toEqual([
      { status: 'added', path: 'release.car', from: undefined },
      { status: 'added', path: 'run.log', from: undefined },
      { status: 'added', path: 'scratch/notes.txt', from: undefined },
    ])
    r = await cairn(['build', '-C', ds.dir, '--json'])
    expect(r.exitCode).toBe(0)
    expect((parseJson(r) as { changes: { added: number } }).changes.added).toBe(3)
  })

  it('a bad pattern is a clear error naming the line, and nothing is built', async () => {
    const ds = await dataset()
    await writeFile(join(ds.dir, '.cairnignore'), '*.log\n[abc\n')
    await writeFile(join(ds.dir, 'new.txt'), 'x')
    for (const args of [['build'], ['status']]) {
      const r = await cairn([...args, '-C', ds.dir, '--json'])
      expect(r.exitCode).toBe(2)
      const e = parseJson<{ error: { message: string; subject: string } }>(r).error
      expect(e.subject).toBe('.cairnignore:2')
      expect(e.message).toContain('never closed')
    }
    expect((await headLog({ dir: ds.dir })).length).toBe(1)
    expect(() => parseIgnoreRules('[z-a]')).toThrow(/reversed/)
    expect(() => parseIgnoreRules('foo\\')).toThrow(/backslash/)
    expect(() => parseIgnoreRules('\\[literal\n[ab]\n# [comment')).not.toThrow()
  })
})

describe('property: any mix of changes', () => {
  /** A change to apply to a folder of files f0…f5 (some present): write, remove, rename, touch. */
  const op = fc.oneof(
    fc.record({ kind: fc.constant('write' as const), file: fc.integer({ min: 0, max: 7 }), text: fc.constantFrom('a', 'b', 'c\n', '') }),
    fc.record({ kind: fc.constant('remove' as const), file: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('rename' as const), file: fc.integer({ min: 0, max: 7 }), to: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('touch' as const), file: fc.integer({ min: 0, max: 7 }) }),
  )
  const name = (i: number) => (i % 2 === 0 ? `f${i}.txt` : `sub/f${i}.txt`)

  it('status equals what build + diff then report, and restore HEAD --force gives HEAD back', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 6 }), async (ops) => {
        const d = await makeDataset({ 'f0.txt': 'zero', 'sub/f1.txt': 'one', 'f2.txt': 'two', 'sub/f3.txt': 'two' })
        made.push(d)
        const v1 = (await build({ dir: d.dir, date: FIXED_DATE })).version.toString()
        for (const o of ops) {
          const from = join(d.dir, name(o.file))
          if (o.kind === 'write') await mkdir(join(from, '..'), { recursive: true }).then(() => writeFile(from, o.text))
          else if (o.kind === 'remove') await rm(from, { force: true })
          else if (o.kind === 'rename') await rename(from, join(d.dir, name(o.to))).catch(() => {})
          else await utimes(from, new Date(2021, 0, 1), new Date(2021, 0, 1)).catch(() => {})
        }
        const s = await status({ dir: d.dir })
        // the restore round trip first (it must not need the build below)
        await restore({ dir: d.dir, ref: 'HEAD', force: true })
        expect((await verify({ dir: d.dir, ref: v1 })).ok).toBe(true)
        expect((await status({ dir: d.dir })).clean).toBe(true)
        // then the oracle: redo the changes, build, and diff by the indexes
        for (const o of ops) {
          const from = join(d.dir, name(o.file))
          if (o.kind === 'write') await mkdir(join(from, '..'), { recursive: true }).then(() => writeFile(from, o.text))
          else if (o.kind === 'remove') await rm(from, { force: true })
          else if (o.kind === 'rename') await rename(from, join(d.dir, name(o.to))).catch(() => {})
        }
        const v2 = await build({ dir: d.dir, date: FIXED_DATE, allowEmpty: false })
        const expected = v2.unchanged ? [] : brief((await diff({ dir: d.dir, a: v1, b: v2.version.toString() })).shards)
        expect(brief(s.shards)).toEqual(expected)
        expect(s.clean).toBe(expected.length === 0)
        await d.cleanup()
      }),
      { seed: 17, numRuns: 12 },
    )
  })
})
