// A build after a few changes edits its parent's index and tree (#19): whatever the edits (modify,
// add, remove, rename) and however small the nodes, folders and cache frames, the roots are those of a
// cold build of the same files, and the tree is the one ipfs-unixfs-importer makes of them.
import { mkdir, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { build } from '../src/index.js'
import { buildTuning } from '../src/build.js'
import { indexTuning } from '../src/shard-index/prolly.js'
import { directoryTuning } from '../src/unixfs/directory.js'
import { FIXED_DATE, makeDataset, type TempDataset } from './helpers/dataset.js'
import { importerTree } from './helpers/importer.js'

const made: TempDataset[] = []
afterAll(async () => {
  for (const d of made) await d.cleanup()
})

/** Waits until the clock is past the racy window, so a build caches every file. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30))

/** File `i`'s path: a flat folder (sharded under a tiny threshold), nested folders and the top. */
const pathOf = (i: number): string => [`flat/f${i}.txt`, `a/b/f${i}.txt`, `flat/g${i}.bin`, `c/f${i}.txt`, `f${i}.txt`, `a/f${i}`][i % 6]
const movedOf = (i: number): string => `moved/${i % 2}/m${i}.txt`
const contentOf = (i: number, variant: number): string => `file ${i}, variant ${variant}`

interface Tuning {
  readonly fanout: number
  readonly maxNodeBytes: number
  readonly hamtThresholdBytes: number
  readonly frameBytes: number
  readonly changeLimit: number | undefined
}

async function withTuning<T>(t: Tuning, fn: () => Promise<T>): Promise<T> {
  Object.assign(indexTuning, { fanout: t.fanout, maxNodeBytes: t.maxNodeBytes })
  directoryTuning.hamtThresholdBytes = t.hamtThresholdBytes
  Object.assign(buildTuning, { frameBytes: t.frameBytes, changeLimit: t.changeLimit })
  try {
    return await fn()
  } finally {
    for (const k of Object.keys(indexTuning) as (keyof typeof indexTuning)[]) delete indexTuning[k]
    delete directoryTuning.hamtThresholdBytes
    for (const k of Object.keys(buildTuning) as (keyof typeof buildTuning)[]) delete buildTuning[k]
  }
}

const tuning = fc.record({
  fanout: fc.integer({ min: 2, max: 16 }),
  // an entry's estimate is ~230-260 bytes: nodes closed by the cap after 2 to 12 entries (a cap
  // under two entries would close every node on one item, at every level)
  maxNodeBytes: fc.integer({ min: 600, max: 3000 }),
  hamtThresholdBytes: fc.integer({ min: 40, max: 600 }),
  frameBytes: fc.integer({ min: 1, max: 400 }),
  // 0-2: the diff stops early and the build merges every file, replaying the changes it found
  changeLimit: fc.constantFrom(undefined, undefined, 0, 1, 2),
})

type Edit = 'keep' | 'modify' | 'remove' | 'rename'

describe('build after a few changes', () => {
  it('edits the parent index and tree into exactly the cold build’s roots, whatever the node, folder and frame sizes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 0, max: 79 }), { minLength: 1, maxLength: 60 }),
        fc.array(fc.constantFrom<Edit>('keep', 'keep', 'keep', 'modify', 'remove', 'rename'), { minLength: 60, maxLength: 60 }),
        fc.uniqueArray(fc.integer({ min: 80, max: 119 }), { maxLength: 6 }),
        tuning,
        async (initial, kinds, added, t) => {
          const files: Record<string, string> = Object.fromEntries(initial.map((i) => [pathOf(i), contentOf(i, 0)]))
          const ds = await makeDataset(files)
          made.push(ds)
          await settle()
          const plans: string[] = []
          const tuned = { ...t }
          await withTuning(tuned, () => build({ dir: ds.dir, date: FIXED_DATE }))

          const expected = { added: 0, removed: 0, modified: 0 }
          for (const [n, i] of initial.entries()) {
            const kind = kinds[n]
            if (kind === 'modify') {
              files[pathOf(i)] = contentOf(i, 1)
              await ds.write({ [pathOf(i)]: contentOf(i, 1) })
              expected.modified++
            } else if (kind === 'remove') {
              delete files[pathOf(i)]
              await rm(join(ds.dir, pathOf(i)))
              expected.removed++
            } else if (kind === 'rename') {
              files[movedOf(i)] = files[pathOf(i)]
              delete files[pathOf(i)]
              await mkdir(dirname(join(ds.dir, movedOf(i))), { recursive: true })
              await rename(join(ds.dir, pathOf(i)), join(ds.dir, movedOf(i)))
              expected.removed++
              expected.added++
            }
          }
          for (const i of added) {
            files[pathOf(i)] = contentOf(i, 0)
            await ds.write({ [pathOf(i)]: contentOf(i, 0) })
            expected.added++
          }
          await settle()
          const changed = expected.added + expected.removed + expected.modified
          const second = await withTuning({ ...tuned }, () => {
            buildTuning.onPlan = (p) => plans.push(p)
            return build({ dir: ds.dir, date: FIXED_DATE })
          })
          expect(second.changes).toEqual(expected)
          if (changed > 0) expect(plans).toEqual([t.changeLimit === undefined || changed <= t.changeLimit ? 'edit' : 'merge'])

          // a cold build of the same files under the same tuning
          const fresh = await makeDataset(files)
          made.push(fresh)
          const cold = await withTuning(tuned, () => build({ dir: fresh.dir, date: FIXED_DATE }))
          expect(second.manifest.index.toString()).toBe(cold.manifest.index.toString())
          expect(second.manifest.tree.toString()).toBe(cold.manifest.tree.toString())
          expect(second.manifest.totals).toEqual(cold.manifest.totals)

          // the cache written by the edit knows every file: nothing is read again
          let read = 0
          const third = await withTuning(tuned, () =>
            build({ dir: ds.dir, date: FIXED_DATE, onProgress: (p) => void (p.phase === 'import' && read++) }),
          )
          expect(third.unchanged).toBe(true)
          expect(read).toBe(0)
        },
      ),
      { numRuns: 40, seed: 1919 },
    )
  }, 600_000)

  it('edits a HAMT-sharded folder of the profile into the tree ipfs-unixfs-importer makes of the same files', async () => {
    // 6,000 names of ~40 bytes: a plain block past 256 KiB, so a HAMT (fanout 256, sub-shards)
    const name = (i: number): string => `big/entry-with-a-fairly-long-name-${String(i).padStart(5, '0')}.txt`
    const files: Record<string, string> = Object.fromEntries(Array.from({ length: 6000 }, (_, i) => [name(i), `file ${i}`]))
    files['top.txt'] = 'top'
    const ds = await makeDataset(files)
    made.push(ds)
    await settle()
    await build({ dir: ds.dir, date: FIXED_DATE })
    const plans: string[] = []
    buildTuning.onPlan = (p) => plans.push(p)
    try {
      // the folder grows (a modification of the same size, two additions): only the shards on the
      // changed names' paths are built again
      files[name(5)] = 'chang5'
      files[name(6002)] = 'new 2'
      files['big/added.txt'] = 'added'
      await ds.write({ [name(5)]: 'chang5', [name(6002)]: 'new 2', 'big/added.txt': 'added' })
      await settle()
      const grown = await build({ dir: ds.dir, date: FIXED_DATE })
      expect(grown.changes).toEqual({ added: 2, removed: 0, modified: 1 })
      expect(grown.manifest.tree.toString(), 'ipfs-unixfs-importer').toBe(await importerTree(files, 262_144))
    } finally {
      delete buildTuning.onPlan
    }
    expect(plans).toEqual(['edit'])
    plans.length = 0
    // it shrinks (removals; a rename within the folder and out of it): it may fall under the threshold,
    // so every shard is read and the folder built again
    files[name(10)] = 'changed'
    await ds.write({ [name(10)]: 'changed' })
    for (const i of [20, 4000]) {
      delete files[name(i)]
      await rm(join(ds.dir, name(i)))
    }
    files['big/renamed.txt'] = files[name(30)]
    delete files[name(30)]
    await rename(join(ds.dir, name(30)), join(ds.dir, 'big/renamed.txt'))
    files[name(6001)] = 'new'
    await ds.write({ [name(6001)]: 'new' })
    await settle()
    buildTuning.onPlan = (p) => plans.push(p)
    let second
    try {
      second = await build({ dir: ds.dir, date: FIXED_DATE })
    } finally {
      delete buildTuning.onPlan
    }
    expect(plans).toEqual(['edit'])
    expect(second.changes).toEqual({ added: 2, removed: 3, modified: 1 })
    expect(second.manifest.tree.toString(), 'ipfs-unixfs-importer').toBe(await importerTree(files, 262_144))
  }, 120_000)

  it('keeps the parent’s untouched leaves and folders: one change among many files writes a few blocks', async () => {
    const n = 3000
    const files = Object.fromEntries(Array.from({ length: n }, (_, i) => [`d${i % 30}/f${String(i).padStart(5, '0')}.txt`, `file ${i}`]))
    const ds = await makeDataset(files)
    made.push(ds)
    await settle()
    await build({ dir: ds.dir, date: FIXED_DATE })
    await ds.write({ 'd7/f01507.txt': 'changed' })
    await settle()
    const plans: string[] = []
    const written: number[] = []
    buildTuning.onPlan = (p) => plans.push(p)
    try {
      const { openDataset } = await import('../src/dataset.js')
      const before = await openDataset(ds.dir)
      const count = (await before.store.cids()).length
      await before.store.close()
      const second = await build({ dir: ds.dir, date: FIXED_DATE })
      expect(second.changes).toEqual({ added: 0, removed: 0, modified: 1 })
      const after = await openDataset(ds.dir)
      written.push((await after.store.cids()).length - count)
      await after.store.close()
    } finally {
      delete buildTuning.onPlan
    }
    expect(plans).toEqual(['edit'])
    // the file, one leaf, the branch nodes above it (3,000 entries: two levels), two folders, the version
    expect(written[0]).toBeGreaterThanOrEqual(5)
    expect(written[0]).toBeLessThanOrEqual(8)
  }, 120_000)
})
