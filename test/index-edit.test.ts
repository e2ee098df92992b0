// editIndex (#19): the parent's index with edits applied is the index buildIndex makes of the edited
// entries, node for node, whatever the fanout and node cap, while untouched leaves are not read.
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { cidFor, RAW, type CID } from '../src/cid.js'
import { comparePaths, type ShardEntry } from '../src/manifest.js'
import { editIndex, type IndexEdit } from '../src/shard-index/edit.js'
import { buildIndex, indexTuning } from '../src/shard-index/prolly.js'
import type { Block } from '../src/unixfs/file.js'

class Blocks {
  readonly map = new Map<string, Uint8Array>()
  gets = 0
  readonly sink = (b: Block): void => void this.map.set(b.cid.toString(), b.bytes)
  async get(cid: CID): Promise<Uint8Array> {
    this.gets++
    const bytes = this.map.get(cid.toString())
    if (!bytes) throw new Error(`missing ${cid}`)
    return bytes
  }
}

const fileCid = (s: string): CID => cidFor(RAW, new TextEncoder().encode(s))
const entry = (path: string, v = 0): ShardEntry => ({ path, cid: fileCid(`${path} ${v}`), size: path.length + v, format: 'bytes' })
const sorted = (es: ShardEntry[]): ShardEntry[] => [...es].sort((a, b) => comparePaths(a.path, b.path))

/** Applies `edits` to `entries` the plain way. */
function applied(entries: readonly ShardEntry[], edits: readonly IndexEdit[]): ShardEntry[] {
  const m = new Map(entries.map((e) => [e.path, e]))
  for (const e of edits) {
    if (e.entry) m.set(e.path, e.entry)
    else m.delete(e.path)
  }
  return sorted([...m.values()])
}

afterEach(() => {
  delete indexTuning.fanout
  delete indexTuning.maxNodeBytes
})

describe('editIndex', () => {
  it('gives buildIndex’s root for any edits, fanouts and node caps (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        // paths of very different lengths, so the cap closes nodes at different places
        fc.uniqueArray(fc.stringMatching(/^[a-d]{1,3}(\/[a-z]{1,40})?$/), { minLength: 0, maxLength: 120 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('modify', 'remove', 'add')), { maxLength: 12 }),
        fc.uniqueArray(fc.stringMatching(/^[a-e]{1,3}(\/[a-z]{1,40})?$/), { maxLength: 6 }),
        fc.integer({ min: 2, max: 64 }),
        fc.integer({ min: 600, max: 4000 }),
        async (paths, picks, extra, fanout, maxNodeBytes) => {
          Object.assign(indexTuning, { fanout, maxNodeBytes })
          const before = sorted(paths.map((p) => entry(p)))
          const blocks = new Blocks()
          const parent = await buildIndex(before, blocks.sink)
          const edits = new Map<string, IndexEdit>()
          for (const [n, kind] of picks) {
            if (before.length === 0) break
            const p = before[n % before.length].path
            edits.set(p, { path: p, entry: kind === 'remove' ? undefined : entry(p, 1) })
          }
          for (const p of extra) if (!paths.includes(p)) edits.set(p, { path: p, entry: entry(p, 2) })
          const list = [...edits.values()].sort((a, b) => comparePaths(a.path, b.path))
          const edited = await editIndex(blocks, parent.root, list, blocks.sink)
          const cold = await buildIndex(applied(before, list), new Blocks().sink)
          expect(edited.root.toString()).toBe(cold.root.toString())
          expect(edited.totals).toEqual(cold.totals)
        },
      ),
      { numRuns: 300, seed: 1919 },
    )
  })

  it('does not keep a leaf that the size cap closed before a path now removed', async () => {
    // no hash boundaries; estimates 230, 230, 380, 230, 230 against a cap of 700: [a b] [c d] [e]
    Object.assign(indexTuning, { fanout: 2 ** 31, maxNodeBytes: 700 })
    const long = 'c'.repeat(60)
    const before = ['a'.repeat(10), 'b'.repeat(10), long, 'd'.repeat(10), 'e'.repeat(10)].map((p) => entry(p))
    const blocks = new Blocks()
    const parent = await buildIndex(before, blocks.sink)
    // without the long path, a, b and d fit in one leaf
    const edits = [{ path: long, entry: undefined }]
    const edited = await editIndex(blocks, parent.root, edits, blocks.sink)
    expect(edited.root.toString()).toBe((await buildIndex(applied(before, edits), new Blocks().sink)).root.toString())
  })

  it('reads the branch nodes and only the leaves an edit falls in or next to', async () => {
    const before = Array.from({ length: 20_000 }, (_, i) => entry(`d/${String(i).padStart(6, '0')}`))
    const blocks = new Blocks()
    const parent = await buildIndex(before, blocks.sink)
    blocks.gets = 0
    const edits = [{ path: before[12_345].path, entry: entry(before[12_345].path, 1) }]
    const edited = await editIndex(blocks, parent.root, edits, blocks.sink)
    expect(edited.root.toString()).toBe((await buildIndex(applied(before, edits), new Blocks().sink)).root.toString())
    // ~313 leaves under 5 branch nodes and a root: the root, the branches, one or two leaves
    expect(blocks.gets).toBeLessThanOrEqual(10)
  })
})
