/**
 * `compose` (docs/compose.md): 8 parts built in separate folders give, CID for CID, the version one
 * build over the union of their files gives (at the top, and under --at folders), a folder split
 * across parts that becomes a HAMT only in the union included; overlapping paths, unreachable
 * blocks, another profile and incompatible cards are refused with the reason, and nothing moves.
 */
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagJson from '@ipld/dag-json'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { build, CairnError, compose, publish, type VersionManifest } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { kindOf } from '../src/cat.js'
import { cidFor, DAG_JSON, type CID } from '../src/cid.js'
import { walkEntries } from '../src/shard-index/prolly.js'
import { validateWith } from '../src/schemas.js'
import { cairn, parseJson } from './helpers/cli.js'
import { FIXED_DATE, jsonl, makeDataset, seededBytes, tempDir, thrown, type FileSpec, type TempDataset } from './helpers/dataset.js'
import { importerTree } from './helpers/importer.js'

const PARTS = 8
const CARD = {
  cardVersion: 1,
  name: 'composed',
  license: 'CC0-1.0',
  shards: [
    {
      glob: '*.jsonl',
      rowSchema: { type: 'object', required: ['id', 'text'], properties: { id: { type: 'integer' }, text: { type: 'string' } } },
      primaryKey: ['id'],
    },
  ],
}

/** The union: a folder of 4,000 long names (a HAMT in the union, plain in each part), rows, CSV, files over a chunk, awkward order. */
function unionFiles(): FileSpec {
  const files: FileSpec = { 'README.md': '# composed\n' }
  for (let i = 0; i < 4000; i++) files[`flat/a-file-with-a-rather-long-name-${String(i).padStart(4, '0')}.txt`] = `file ${i}\n`
  for (let k = 0; k < 16; k++) {
    const rows = Array.from({ length: 5 }, (_, r) => ({ id: k * 100 + r, text: `row ${r} of ${k}` }))
    files[`train/part-${String(k).padStart(2, '0')}.jsonl`] = jsonl(rows)
  }
  files['eval/a.csv'] = 'id,score\n1,0.5\n2,0.25\n'
  files['eval/b.csv'] = 'id,score\n3,1\n'
  files['big/blob-0.bin'] = seededBytes(1_500_000, 'blob-0')
  files['big/blob-1.bin'] = seededBytes(2_300_000, 'blob-1')
  files['deep/a/b/c/d.txt'] = 'd'
  files['deep/a-b.txt'] = 'a-b'
  files['deep/a/x.txt'] = 'x'
  files['deep/a.txt'] = 'a'
  files['unicode/é.txt'] = 'e'
  files['unicode/z.txt'] = 'z'
  return files
}

/** Splits `files` over `n` parts, scattered (every folder but the deepest is shared by several parts). */
function split(files: FileSpec, n: number): FileSpec[] {
  const parts: FileSpec[] = Array.from({ length: n }, () => ({}))
  Object.keys(files)
    .sort()
    .forEach((path, i) => (parts[(i * 7 + (i >> 3)) % n][path] = files[path]))
  return parts
}

const made: TempDataset[] = []
afterAll(async () => {
  for (const d of made) await d.cleanup()
})

async function dataset(files: FileSpec, card: object = CARD): Promise<TempDataset> {
  const d = await makeDataset(files, { card })
  made.push(d)
  return d
}

async function built(files: FileSpec, card: object = CARD, message = 'release'): Promise<{ ds: TempDataset; version: CID }> {
  const ds = await dataset(files, card)
  const { version } = await build({ dir: ds.dir, message, date: FIXED_DATE })
  return { ds, version }
}

let union: FileSpec
let whole: { ds: TempDataset; version: CID }
let parts: { ds: TempDataset; version: CID }[]
/** The parts' stores as sources: each part's worker "published" to its own dataset folder. */
let from: string[]

beforeAll(async () => {
  union = unionFiles()
  whole = await built(union)
  parts = []
  for (const files of split(union, PARTS)) parts.push(await built(files))
  from = parts.map((p) => p.ds.dir)
}, 120_000)

describe('compose: the union of the parts equals one build of all the files', () => {
  it('8 parts built apart give the version CID of one build over the union (index, tree, totals, rows, schemas)', async () => {
    const composer = await dataset({})
    const result = await compose({
      dir: composer.dir,
      parts: parts.map((p) => ({ ref: p.version.toString() })),
      message: 'release',
      date: FIXED_DATE,
      from,
    })
    const expected = await readWhole(whole.ds.dir, whole.version)
    expect(result.manifest.index.toString()).toBe(expected.index.toString())
    expect(result.manifest.tree.toString()).toBe(expected.tree.toString())
    expect(result.manifest.totals).toEqual(expected.totals)
    expect(result.manifest.totals.rows).toBe(16 * 5 + 3)
    expect(result.version.toString()).toBe(whole.version.toString())
    expect(result.unchanged).toBe(false)
    // an independent oracle for the tree: ipfs-unixfs-importer over the union's files, with the profile's settings
    expect(result.manifest.tree.toString()).toBe(await importerTree(union))
    expect(result.parts.map((p) => p.totals.shards).reduce((a, b) => a + b, 0)).toBe(Object.keys(union).length)
    // the folder split over 8 parts is plain in each and a HAMT in the union
    const dsc = await openDataset(composer.dir)
    try {
      expect(String(await dsc.refs.head())).toBe(result.version.toString())
      // the composer's store holds the index and the schemas it links to (every entry read back)
      let n = 0
      for await (const e of walkEntries(dsc.store, result.manifest.index)) {
        n++
        if (e.schema) expect(await dsc.store.has(e.schema)).toBe(true)
      }
      expect(n).toBe(Object.keys(union).length)
      const flat = await findDir(dsc.store, result.manifest.tree, 'flat')
      expect(await kindOf(dsc.store, flat)).toBe('hamt')
      // no file block was fetched: the composer's store lacks the files
      const big = (await collect(walkEntries(dsc.store, result.manifest.index))).find((e) => e.path === 'big/blob-1.bin')!
      expect(await dsc.store.has(big.cid)).toBe(false)
    } finally {
      await dsc.store.close()
    }
    const part0 = await openDataset(parts[0].ds.dir)
    try {
      expect(await kindOf(part0.store, await findDir(part0.store, (await readWhole(parts[0].ds.dir, parts[0].version)).tree, 'flat'))).toBe(
        'directory',
      )
    } finally {
      await part0.store.close()
    }
  })

  it('with --at folders: each part under its own folder equals one build of the folders', async () => {
    const small = split(unionFiles(), PARTS).map((f, k) =>
      Object.fromEntries(Object.entries(f).filter(([p]) => !p.startsWith('flat/') || Number(p.slice(-8, -4)) % 50 === k)),
    )
    const atUnion: FileSpec = {}
    small.forEach((f, k) => Object.entries(f).forEach(([p, v]) => (atUnion[`workers/w${k}/${p}`] = v)))
    const expected = await built(atUnion, CARD, 'at')
    const atParts: CID[] = []
    const atDirs: string[] = []
    for (const f of small) {
      const p = await built(f, CARD, 'part')
      atParts.push(p.version)
      atDirs.push(p.ds.dir)
    }
    const composer = await dataset({})
    const result = await compose({
      dir: composer.dir,
      // given in another order than the paths': the result does not depend on it
      parts: atParts.map((v, k) => ({ ref: v.toString(), at: `workers/w${k}/` })).reverse(),
      message: 'at',
      date: FIXED_DATE,
      from: atDirs,
    })
    expect(result.version.toString()).toBe(expected.version.toString())
    expect(result.parts.map((p) => p.at)).toEqual(atParts.map((_, k) => `workers/w${k}`).reverse())
  })

  it('a second compose of the same parts changes nothing; the next one has HEAD as parent', async () => {
    const composer = await dataset({})
    const refs = parts.map((p) => ({ ref: p.version.toString() }))
    const first = await compose({ dir: composer.dir, parts: refs, message: 'one', date: FIXED_DATE, from })
    const again = await compose({ dir: composer.dir, parts: refs, message: 'two', date: FIXED_DATE, from })
    expect(again.unchanged).toBe(true)
    expect(again.version.toString()).toBe(first.version.toString())
    const fewer = await compose({ dir: composer.dir, parts: refs.slice(1), message: 'fewer', date: FIXED_DATE, from })
    expect(fewer.manifest.parent?.toString()).toBe(first.version.toString())
    expect(fewer.manifest.totals.shards).toBe(first.manifest.totals.shards - (await countOf(parts[0])))
  })
})

describe('compose: a property over random files and partitions', () => {
  // names whose byte order and path order differ ("a-b" sorts before "a/"), non-ASCII, dots
  const segment = fc.constantFrom('a', 'a-b', 'a.b', 'b', 'é', 'z0', 'Z')
  const path = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'))
  const files = fc
    .uniqueArray(fc.tuple(path, fc.string({ maxLength: 40 }), fc.nat(3)), { minLength: 1, maxLength: 24, selector: ([p]) => p })
    // a path that is a folder of another cannot be a file too
    .map((fs) => fs.filter(([p]) => !fs.some(([q]) => q.startsWith(p + '/'))))

  it('any split of any files over 1-4 parts, at the top or under --at folders, composes to the CID of one build', async () => {
    await fc.assert(
      fc.asyncProperty(files, fc.boolean(), async (spec, under) => {
        const count = Math.max(...spec.map(([, , k]) => k)) + 1
        const unionSpec: FileSpec = {}
        const partSpecs: FileSpec[] = Array.from({ length: count }, () => ({}))
        for (const [p, text, k] of spec) {
          partSpecs[k][p] = text
          unionSpec[under ? `w${k}/${p}` : p] = text
        }
        const one = await built(unionSpec, CARD, 'prop')
        const pieces = []
        for (const f of partSpecs) pieces.push(await built(f, CARD, 'piece'))
        const composer = await dataset({})
        const result = await compose({
          dir: composer.dir,
          parts: pieces.map((p, k) => ({ ref: p.version.toString(), ...(under ? { at: `w${k}` } : {}) })),
          message: 'prop',
          date: FIXED_DATE,
          from: pieces.map((p) => p.ds.dir),
        })
        expect(result.version.toString()).toBe(one.version.toString())
        for (const d of made.splice(-(count + 2))) await d.cleanup()
      }),
      { seed: 19, numRuns: 8 },
    )
  }, 240_000)
})

describe('compose refuses, naming what is wrong, and changes nothing', () => {
  it('overlapping paths: PATHS_OVERLAP naming each path and both parts', async () => {
    const a = await built({ 'x/same.txt': 'one', 'x/a.txt': 'a', 'y.txt': 'y' })
    const b = await built({ 'x/same.txt': 'two', 'y.txt': 'y', 'z.txt': 'z' })
    const composer = await dataset({})
    const e = (await thrown(() =>
      compose({ dir: composer.dir, parts: [{ ref: a.version.toString() }, { ref: b.version.toString() }], from: [a.ds.dir, b.ds.dir] }),
    )) as CairnError
    expect(e.code).toBe('PATHS_OVERLAP')
    expect(e.message).toContain('2 paths are in more than one part')
    expect(e.message).toContain(`x/same.txt (${a.version}, ${b.version})`)
    expect(e.message).toContain('y.txt')
    expect(await headOf(composer.dir)).toBeUndefined()
  })

  it('a file in one part where another has a folder: PATHS_OVERLAP naming the path', async () => {
    const a = await built({ 'data/x': 'a file named x' })
    const b = await built({ 'data/x/inner.txt': 'inside a folder named x' })
    const composer = await dataset({})
    const e = (await thrown(() =>
      compose({ dir: composer.dir, parts: [{ ref: a.version.toString() }, { ref: b.version.toString() }], from: [a.ds.dir, b.ds.dir] }),
    )) as CairnError
    expect(e.code).toBe('PATHS_OVERLAP')
    expect(e.message).toBe('"data/x" is a file in one part and a folder in another')
  })

  it('a part whose blocks are nowhere: MISSING_BLOCK naming the part (its version, then its index)', async () => {
    const composer = await dataset({})
    const missing = parts[3].version.toString()
    const e = (await thrown(() =>
      compose({ dir: composer.dir, parts: [{ ref: parts[0].version.toString() }, { ref: missing }], from: [parts[0].ds.dir] }),
    )) as CairnError
    expect(e.code).toBe('MISSING_BLOCK')
    expect(e.message).toContain(`part ${missing}`)
    expect(e.subject).toBe(missing)
    // the version and card reachable, the index not: still the part is named
    const src = await openDataset(parts[3].ds.dir)
    const dst = await openDataset(composer.dir)
    try {
      const bytes = await src.store.get(parts[3].version)
      const v = dagJson.decode(bytes) as VersionManifest
      await dst.store.put(parts[3].version, bytes)
      await dst.store.put(v.card, await src.store.get(v.card))
    } finally {
      await src.store.close()
      await dst.store.close()
    }
    const e2 = (await thrown(() =>
      compose({ dir: composer.dir, parts: [{ ref: parts[0].version.toString() }, { ref: missing }], from: [parts[0].ds.dir] }),
    )) as CairnError
    expect(e2.code).toBe('MISSING_BLOCK')
    expect(e2.message).toContain(`part ${missing}`)
    expect(e2.message).toMatch(/Block \w+ is in none of the sources/)
    expect(await headOf(composer.dir)).toBeUndefined()
  })

  it('a forged part whose tree is not its index, or whose totals lie: INVALID_MANIFEST naming the part', async () => {
    const composer = await dataset({})
    const forge = async (change: (v: Record<string, unknown>) => Record<string, unknown>): Promise<CID> => {
      const src = await openDataset(parts[1].ds.dir)
      const dst = await openDataset(composer.dir)
      try {
        const v = dagJson.decode(await src.store.get(parts[1].version)) as Record<string, unknown>
        const bytes = dagJson.encode(change(v))
        const cid = cidFor(DAG_JSON, bytes)
        await dst.store.put(cid, bytes)
        return cid
      } finally {
        await src.store.close()
        await dst.store.close()
      }
    }
    const otherTree = (await readWhole(parts[2].ds.dir, parts[2].version)).tree
    const wrongTree = await forge((v) => ({ ...v, tree: otherTree }))
    const e = (await thrown(() => compose({ dir: composer.dir, parts: [{ ref: wrongTree.toString() }], from }))) as CairnError
    expect(e.code).toBe('INVALID_MANIFEST')
    expect(e.message).toMatch(new RegExp(`^part ${wrongTree}: index \\S+ and tree ${otherTree} disagree at `))
    const lying = await forge((v) => ({ ...v, totals: { ...(v.totals as object), shards: 3 } }))
    const e2 = (await thrown(() => compose({ dir: composer.dir, parts: [{ ref: lying.toString() }], from }))) as CairnError
    expect(e2.code).toBe('INVALID_MANIFEST')
    expect(e2.message).toContain(`part ${lying}`)
    expect(e2.message).toMatch(/more (files|entries) than/)
    expect(await headOf(composer.dir)).toBeUndefined()
  })

  it('a part built with another profile: INCOMPATIBLE_PARTS saying which profile', async () => {
    const composer = await dataset({})
    const src = await openDataset(parts[1].ds.dir)
    const dst = await openDataset(composer.dir)
    let forged: CID
    try {
      const v = dagJson.decode(await src.store.get(parts[1].version)) as Record<string, unknown>
      const bytes = dagJson.encode({ ...v, profile: 'unixfs-v0-2015' })
      forged = cidFor(DAG_JSON, bytes)
      await dst.store.put(forged, bytes)
    } finally {
      await src.store.close()
      await dst.store.close()
    }
    const e = (await thrown(() =>
      compose({ dir: composer.dir, parts: [{ ref: parts[0].version.toString() }, { ref: forged.toString() }], from }),
    )) as CairnError
    expect(e.code).toBe('INCOMPATIBLE_PARTS')
    expect(e.message).toContain('"unixfs-v0-2015"')
    expect(e.message).toContain(`part ${forged}`)
  })

  it('a part whose rows were checked under another row schema than the composed card: INCOMPATIBLE_PARTS naming the shard', async () => {
    const loose = { ...CARD, shards: [{ glob: '*.jsonl' }] }
    const part = await built({ 'rows/a.jsonl': jsonl([{ id: 1 }]) }, loose)
    const composer = await dataset({})
    const e = (await thrown(() =>
      compose({ dir: composer.dir, parts: [{ ref: part.version.toString() }], from: [part.ds.dir] }),
    )) as CairnError
    expect(e.code).toBe('INCOMPATIBLE_PARTS')
    expect(e.message).toContain('rows/a.jsonl')
    expect(e.message).toContain('row schema')
    // a bytes file is checked under no rule: any card takes it
    const bytesOnly = await built({ 'blob.bin': 'bytes' }, loose)
    expect((await compose({ dir: composer.dir, parts: [{ ref: bytesOnly.version.toString() }], from: [bytesOnly.ds.dir] })).unchanged).toBe(
      false,
    )
  })

  it('--at moving shards out of a rule that has a "/" in its glob: INCOMPATIBLE_PARTS', async () => {
    const card = { ...CARD, shards: [{ ...CARD.shards[0], glob: 'train/*.jsonl' }] }
    const part = await built({ 'train/a.jsonl': jsonl([{ id: 1, text: 't' }]) }, card)
    const composer = await dataset({}, card)
    const ok = await compose({ dir: composer.dir, parts: [{ ref: part.version.toString() }], from: [part.ds.dir] })
    expect(ok.manifest.totals.rows).toBe(1)
    const e = (await thrown(() =>
      compose({ dir: composer.dir, parts: [{ ref: part.version.toString(), at: 'w1' }], from: [part.ds.dir] }),
    )) as CairnError
    expect(e.code).toBe('INCOMPATIBLE_PARTS')
    expect(e.message).toContain('w1/train/a.jsonl')
  })

  it('a key unique across a rule (keyScope "rule") fed by two parts: INCOMPATIBLE_PARTS', async () => {
    const card = { ...CARD, shards: [{ ...CARD.shards[0], keyScope: 'rule' }] }
    const a = await built({ 'a.jsonl': jsonl([{ id: 1, text: 'a' }]) }, card)
    const b = await built({ 'b.jsonl': jsonl([{ id: 1, text: 'b' }]) }, card)
    const composer = await dataset({}, card)
    const e = (await thrown(() =>
      compose({ dir: composer.dir, parts: [{ ref: a.version.toString() }, { ref: b.version.toString() }], from: [a.ds.dir, b.ds.dir] }),
    )) as CairnError
    expect(e.code).toBe('INCOMPATIBLE_PARTS')
    expect(e.message).toContain('keyScope "rule"')
  })

  it('no part, or a bad --at folder: USAGE', async () => {
    const composer = await dataset({})
    expect(((await thrown(() => compose({ dir: composer.dir, parts: [] }))) as CairnError).code).toBe('USAGE')
    const bad = (await thrown(() =>
      compose({ dir: composer.dir, parts: [{ ref: parts[0].version.toString(), at: '../up' }] }),
    )) as CairnError
    expect(bad.code).toBe('USAGE')
  })
})

describe('cairn compose (the command)', () => {
  it('--json validates against schemas/cli/compose.schema.json; an overlap exits 4, a missing part 5', async () => {
    const composer = await dataset({})
    const refs = parts.slice(0, 3).map((p) => p.version.toString())
    const args = ['compose', ...refs, '-C', composer.dir, '-m', 'three', '--date', '2025-01-02T03:04:05Z', '--json']
    const r = await cairn([...args, ...from.slice(0, 3).flatMap((f) => ['--from', f])])
    expect(r.exitCode, r.stderr).toBe(0)
    const out = parseJson<Record<string, unknown>>(r)
    expect(validateWith('cli/compose.schema.json', out)).toEqual([])
    const overlap = await cairn(['compose', refs[0], refs[0], '-C', composer.dir, '--json', '--from', from[0]])
    expect(overlap.exitCode).toBe(4)
    expect(validateWith('cli/error.schema.json', parseJson(overlap))).toEqual([])
    const missing = await cairn(['compose', parts[5].version.toString(), '-C', composer.dir, '--json'])
    expect(missing.exitCode).toBe(5)
    expect(parseJson<{ error: { code: string; message: string } }>(missing).error.message).toContain(`part ${parts[5].version}`)
    const badAt = await cairn(['compose', '--at', 'no-equals-sign', '-C', composer.dir])
    expect(badAt.exitCode).toBe(2)
  })
})

describe('the recipe of docs/compose.md, end to end with a dir: target', () => {
  it('workers build and publish their partition, one composes and publishes; a clone of it verifies and equals one build', async () => {
    const target = await tempDir('cairn-compose-target-')
    try {
      const small = split(Object.fromEntries(Object.entries(union).filter(([p]) => !p.startsWith('flat/') || p.endsWith('0.txt'))), 4)
      const cids: string[] = []
      for (const f of small) {
        const w = await built(f)
        await publish({ dir: w.ds.dir, to: `dir:${target}` })
        // the worker's machine goes away: only the dir: target holds its part
        await rm(join(w.ds.dir, '.cairn'), { recursive: true, force: true })
        cids.push(w.version.toString())
      }
      const one = await built(Object.assign({}, ...small) as FileSpec)
      const composer = await dataset({})
      const run = async (args: string[], code = 0): Promise<string> => {
        const r = await cairn([...args, '-C', composer.dir])
        expect(r.exitCode, `${args.join(' ')}\n${r.stderr}`).toBe(code)
        return r.stdout
      }
      const composed = (
        await run(['compose', ...cids, '-m', 'release', '--date', FIXED_DATE.toISOString(), '--from', `dir:${target}`])
      ).trim()
      expect(composed).toBe(one.version.toString())
      await run(['publish', composed, '--to', `dir:${target}`, '--from', `dir:${target}`])
      // the composing folder holds no file of the composition: a build there is refused, saying how to fetch them
      const refused = await cairn(['build', '-C', composer.dir])
      expect(refused.exitCode).toBe(3)
      expect(refused.stderr).toContain(`cairn clone ${composed}`)
      expect(await run(['ls', '--json'])).toContain('big/blob-1.bin')
      await run(['clone', composed, composer.dir, '--from', `dir:${target}`])
      expect((JSON.parse(await run(['build', '--json'])) as { unchanged: boolean }).unchanged).toBe(true)
      const clone = join(await tempDir('cairn-compose-clone-'), 'c')
      try {
        const r = await cairn(['clone', composed, clone, '--from', `dir:${target}`])
        expect(r.exitCode, r.stderr).toBe(0)
        const verified = await cairn(['verify', composed, clone, '-C', clone, '--json'])
        expect(verified.exitCode, verified.stdout).toBe(0)
        expect(await readFile(join(clone, 'big', 'blob-1.bin'))).toEqual(Buffer.from(union['big/blob-1.bin'] as Uint8Array))
      } finally {
        await rm(join(clone, '..'), { recursive: true, force: true })
      }
    } finally {
      await rm(target, { recursive: true, force: true })
    }
  }, 120_000)
})

async function readWhole(dir: string, version: CID): Promise<VersionManifest> {
  const ds = await openDataset(dir)
  try {
    return dagJson.decode(await ds.store.get(version)) as VersionManifest
  } finally {
    await ds.store.close()
  }
}

async function headOf(dir: string): Promise<CID | undefined> {
  const ds = await openDataset(dir)
  try {
    return (await ds.refs.head()) ?? undefined
  } finally {
    await ds.store.close()
  }
}

async function countOf(part: { ds: TempDataset; version: CID }): Promise<number> {
  return (await readWhole(part.ds.dir, part.version)).totals.shards
}

async function findDir(store: { get(cid: CID): Promise<Uint8Array> }, tree: CID, name: string): Promise<CID> {
  const { listDirectory } = await import('../src/cat.js')
  for await (const e of listDirectory(store, tree)) if (e.name === name) return e.cid
  throw new Error(`no ${name} in ${tree}`)
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}
