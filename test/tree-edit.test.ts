// editTree (#19): the parent's tree with edits applied is the tree buildTree makes of the edited files,
// block for block, plain folders and HAMTs alike (tiny thresholds make HAMTs of a few entries), while a
// HAMT that keeps or grows its size is rebuilt only along the changed names' shards.
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { cidFor, RAW, type CID } from '../src/cid.js'
import { directoryTuning, hamtSlot } from '../src/unixfs/directory.js'
import type { Block } from '../src/unixfs/file.js'
import { buildTree, type TreeFile } from '../src/unixfs/tree.js'
import { editTree, type TreeEdit } from '../src/unixfs/tree-edit.js'

class Blocks {
  readonly map = new Map<string, Uint8Array>()
  gets = 0
  puts = 0
  readonly sink = (b: Block): void => {
    this.puts++
    this.map.set(b.cid.toString(), b.bytes)
  }
  async get(cid: CID): Promise<Uint8Array> {
    this.gets++
    const bytes = this.map.get(cid.toString())
    if (!bytes) throw new Error(`missing ${cid}`)
    return bytes
  }
}

const fileOf = (path: string, v: number): TreeFile => ({
  path,
  cid: cidFor(RAW, new TextEncoder().encode(`${path} ${v}`)),
  dagSize: 10 + v,
})
const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

async function treeOf(files: Map<string, TreeFile>): Promise<string> {
  const sorted = [...files.values()].sort((a, b) => byBytes(a.path, b.path))
  return (await buildTree(sorted, new Blocks().sink)).cid.toString()
}

afterEach(() => {
  delete directoryTuning.hamtThresholdBytes
})

const path = fc.oneof(
  fc.stringMatching(/^[a-z0-9]{1,12}$/).map((n) => `flat/${n}`),
  fc.stringMatching(/^[a-z0-9]{1,30}$/).map((n) => `flat/${n}`),
  fc.stringMatching(/^[ab]\/[a-c]{1,2}\/[a-z]{1,6}$/),
  fc.stringMatching(/^[a-z]{1,4}$/),
)

describe('editTree', () => {
  it('gives buildTree’s root for any edits and HAMT thresholds (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(path, { minLength: 1, maxLength: 80 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('modify', 'remove', 'grow')), { maxLength: 10 }),
        fc.uniqueArray(path, { maxLength: 8 }),
        fc.integer({ min: 40, max: 2000 }),
        async (paths, picks, added, threshold) => {
          directoryTuning.hamtThresholdBytes = threshold
          // a name that is a file and a folder prefix at once cannot be: keep paths no other path lies under
          const ok = (p: string, all: readonly string[]): boolean => !all.some((q) => q.startsWith(p + '/') || p.startsWith(q + '/'))
          const initial = paths.filter((p) => ok(p, paths))
          const files = new Map(initial.map((p) => [p, fileOf(p, 0)]))
          const blocks = new Blocks()
          const parent = await buildTree(
            [...files.values()].sort((a, b) => byBytes(a.path, b.path)),
            blocks.sink,
          )
          const edits = new Map<string, TreeEdit>()
          for (const [n, kind] of picks) {
            const p = initial[n % initial.length]
            if (kind === 'remove') {
              files.delete(p)
              edits.set(p, { path: p, cid: undefined, dagSize: 0 })
            } else {
              // 'grow': a Tsize past a varint step, so the plain block grows (the HAMT is edited in place)
              const f = fileOf(p, kind === 'grow' ? 300 : 1)
              files.set(p, f)
              edits.set(p, { path: p, cid: f.cid, dagSize: f.dagSize })
            }
          }
          const all = [...files.keys()]
          for (const p of added) {
            if (files.has(p) || !ok(p, all)) continue
            const f = fileOf(p, 2)
            files.set(p, f)
            all.push(p)
            edits.set(p, { path: p, cid: f.cid, dagSize: f.dagSize })
          }
          const edited = await editTree(blocks, parent.cid, [...edits.values()], blocks.sink)
          if (files.size === 0) expect(edited.cid.toString()).toBe((await buildTree([], new Blocks().sink)).cid.toString())
          else expect(edited.cid.toString()).toBe(await treeOf(files))
        },
      ),
      { numRuns: 500, seed: 1919 },
    )
  })

  it('turns a sub-shard left with one entry into a direct link, and a slot that gains a second entry into a sub-shard', async () => {
    directoryTuning.hamtThresholdBytes = 200
    // names sharing a root slot: a pair under a sub-shard
    const names = Array.from({ length: 400 }, (_, i) => `n${i}`)
    const slot = new Map<number, string[]>()
    for (const n of names) slot.set(hamtSlot(n, 0), [...(slot.get(hamtSlot(n, 0)) ?? []), n])
    const pairs = [...slot.values()].filter((g) => g.length >= 2)
    const [a, b] = pairs[0]
    const [c, d] = pairs[1]
    const lone = [...slot.values()]
      .filter((g) => g.length === 1)
      .slice(0, 6)
      .flat()
    const files = new Map([a, b, c, ...lone].map((n) => [`flat/${n}`, fileOf(`flat/${n}`, 0)]))
    const blocks = new Blocks()
    const parent = await buildTree(
      [...files.values()].sort((x, y) => byBytes(x.path, y.path)),
      blocks.sink,
    )
    // remove b (a's sub-shard collapses), add d beside c (c's slot becomes a sub-shard), and a long name
    // so that the plain block grows: the HAMT is edited along these paths
    files.delete(`flat/${b}`)
    const added = [fileOf(`flat/${d}`, 0), fileOf(`flat/${'x'.repeat(120)}`, 0)]
    for (const f of added) files.set(f.path, f)
    const edits: TreeEdit[] = [
      { path: `flat/${b}`, cid: undefined, dagSize: 0 },
      ...added.map((f) => ({ path: f.path, cid: f.cid, dagSize: f.dagSize })),
    ]
    const edited = await editTree(blocks, parent.cid, edits, blocks.sink)
    expect(edited.cid.toString()).toBe(await treeOf(files))
  })

  it('rebuilds only the shards on the changed path of a large HAMT (one added name among 20,000)', async () => {
    const files = new Map(
      Array.from({ length: 20_000 }, (_, i) => `flat/entry-${String(i).padStart(6, '0')}.bin`).map((p) => [p, fileOf(p, 0)]),
    )
    const blocks = new Blocks()
    const parent = await buildTree(
      [...files.values()].sort((a, b) => byBytes(a.path, b.path)),
      blocks.sink,
    )
    blocks.gets = 0
    blocks.puts = 0
    const f = fileOf('flat/new-entry.bin', 1)
    files.set(f.path, f)
    const edited = await editTree(blocks, parent.cid, [{ path: f.path, cid: f.cid, dagSize: f.dagSize }], blocks.sink)
    expect(edited.cid.toString()).toBe(await treeOf(files))
    // the root, the HAMT's root shard and one or two sub-shards: read and written again
    expect(blocks.gets).toBeLessThanOrEqual(4)
    expect(blocks.puts).toBeLessThanOrEqual(4)
  })
})
