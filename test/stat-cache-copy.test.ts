// StatCache.copyTo (#19): a cache rewritten with edits holds exactly the records a writer given every
// file would hold, whatever the frame sizes; frames no edit falls in are copied as they are.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { cidFor, RAW } from '../src/cid.js'
import { comparePaths } from '../src/manifest.js'
import { openStatCache, StatCacheWriter, type CacheEdit, type FileFacts } from '../src/store/stat-cache.js'

const dirs: string[] = []
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

const facts = (path: string, v: number): FileFacts => ({
  stamp: BigInt64Array.from([BigInt(path.length + v), 1n, 2n, BigInt(v)]),
  entry: { path, cid: cidFor(RAW, new TextEncoder().encode(`${path} ${v}`)), size: path.length + v, format: 'bytes' },
  dagSize: path.length + v,
})

function written(root: string, all: readonly FileFacts[], frameBytes: number): void {
  const w = new StatCacheWriter(root, 'rules', { frameBytes })
  for (const f of all) w.add(f)
  w.seal({})
}

function records(root: string, frameBytes: number): string[] {
  const cache = openStatCache(root, 'rules', { frameBytes })!
  const out: string[] = []
  for (const c = cache.cursor(); c.current; c.advance()) out.push(`${c.current.path} ${c.current.stamp.join(',')} ${c.current.entry.cid}`)
  return out
}

describe('StatCache.copyTo', () => {
  it('gives the records of the edited set of files, in order, whatever the frame sizes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.stringMatching(/^[a-c]{1,2}(\/[a-z]{1,12})?$/), { maxLength: 80 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('modify', 'remove', 'uncached')), { maxLength: 10 }),
        fc.uniqueArray(fc.stringMatching(/^[a-d]{1,2}(\/[a-z]{1,12})?$/), { maxLength: 6 }),
        fc.integer({ min: 1, max: 600 }),
        async (paths, picks, added, frameBytes) => {
          const root = await mkdtemp(join(tmpdir(), 'cairn-copy-'))
          dirs.push(root)
          const before = paths.map((p) => facts(p, 0)).sort((a, b) => comparePaths(a.entry.path, b.entry.path))
          written(root, before, frameBytes)
          const edits = new Map<string, CacheEdit>()
          for (const [n, kind] of picks) {
            if (before.length === 0) break
            const p = before[n % before.length].entry.path
            edits.set(p, { path: p, facts: kind === 'modify' ? facts(p, 1) : undefined })
          }
          for (const p of added) if (!paths.includes(p)) edits.set(p, { path: p, facts: facts(p, 2) })
          const list = [...edits.values()].sort((a, b) => comparePaths(a.path, b.path))
          const cache = openStatCache(root, 'rules', { frameBytes })!
          const out = new StatCacheWriter(root, 'rules', { frameBytes })
          expect(cache.copyTo(out, list, comparePaths)).toBe(true)
          out.seal({})
          const got = records(root, frameBytes)
          const expectedRoot = await mkdtemp(join(tmpdir(), 'cairn-copy-'))
          dirs.push(expectedRoot)
          const after = new Map(before.map((f) => [f.entry.path, f]))
          for (const e of list) {
            if (e.facts) after.set(e.path, e.facts)
            else after.delete(e.path)
          }
          written(
            expectedRoot,
            [...after.values()].sort((a, b) => comparePaths(a.entry.path, b.entry.path)),
            frameBytes,
          )
          expect(got).toEqual(records(expectedRoot, frameBytes))
          expect(openStatCache(root, 'rules', { frameBytes })!.info!.count).toBe(after.size)
        },
      ),
      { numRuns: 200, seed: 1919 },
    )
  })

  it('says false for a damaged frame (the caller then seals no roots)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'cairn-copy-'))
    dirs.push(root)
    written(
      root,
      Array.from({ length: 200 }, (_, i) => facts(`f${String(i).padStart(4, '0')}`, 0)),
      256,
    )
    const cache = openStatCache(root, 'rules', { frameBytes: 256 })!
    // one byte of a record frame in the middle changed: its digest no longer matches
    const file = join(root, 'stat-cache')
    const bytes = await readFile(file)
    bytes[Math.floor(bytes.length / 2)] ^= 0xff
    await writeFile(file, bytes)
    const out = new StatCacheWriter(root, 'rules', { frameBytes: 256 })
    expect(cache.copyTo(out, [{ path: 'f0001', facts: facts('f0001', 1) }], comparePaths)).toBe(false)
    out.close()
  })
})
