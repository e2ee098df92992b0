// The stat cache saves re-reading unchanged files; it must never hide a change.
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { build, CairnError, ls } from '../src/index.js'
import { cidFor, DAG_JSON, RAW } from '../src/cid.js'
import { BlockStore } from '../src/store/blocks.js'
import { loadStatCache, StatCacheWriter } from '../src/store/stat-cache.js'
import { FIXED_DATE, jsonl, makeDataset, thrown, type TempDataset } from './helpers/dataset.js'

async function cidOf(dir: string, path: string): Promise<string | undefined> {
  for await (const e of ls({ dir })) if (e.path === path) return e.cid.toString()
  return undefined
}

/** Builds `dir` and counts the files it read (a cache hit reports no import progress). */
async function buildCounting(dir: string): Promise<{ version: string; read: number }> {
  let read = 0
  const r = await build({ dir, date: FIXED_DATE, onProgress: (p) => void (p.phase === 'import' && read++) })
  return { version: r.version.toString(), read }
}

/**
 * Rewrites the cache's two body lines (keys, then facts) with `edit`, seeing their fields as one
 * object, and a checksum that matches (a well-formed but wrong cache).
 */
function resealed(edit: (body: Record<string, unknown[]>) => void): (bytes: Buffer) => Buffer {
  return (bytes) => {
    const [, keysLine, factsLine] = bytes.toString().split('\n')
    const keys = JSON.parse(keysLine) as Record<string, unknown[]>
    const facts = JSON.parse(factsLine) as Record<string, unknown[]>
    const body = { ...keys, ...facts }
    edit(body)
    const pick = (from: object): Record<string, unknown> =>
      Object.fromEntries(
        Object.keys(from)
          .filter((k) => k in body)
          .map((k) => [k, body[k]]),
      )
    const rest = JSON.stringify(pick(keys)) + '\n' + JSON.stringify(pick(facts)) + '\n'
    const sha256 = createHash('sha256').update(rest).digest('hex')
    return Buffer.from(JSON.stringify({ statCache: 4, sha256 }) + '\n' + rest)
  }
}

/** A value as JSON shows it (CIDs as links, whatever bytes they were decoded from). */
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v))

/** Waits until the clock is past the racy window, so the first build caches every file. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30))

describe('stat cache', () => {
  let ds: TempDataset
  afterEach(async () => ds?.cleanup())

  it('a rebuild with nothing changed is unchanged, and the cache keeps the same version', async () => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b/c.txt': 'gamma' })
    await settle()
    const first = await build({ dir: ds.dir, date: FIXED_DATE })
    const again = await build({ dir: ds.dir, date: FIXED_DATE })
    expect(again.unchanged).toBe(true)
    expect(again.version.toString()).toBe(first.version.toString())
  })

  it('a file rewritten with the same size and its mtime set back is still re-hashed (ctime changes)', async () => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b.txt': 'bravo' })
    await settle()
    await build({ dir: ds.dir, date: FIXED_DATE })
    const before = await cidOf(ds.dir, 'a.txt')
    const file = join(ds.dir, 'a.txt')
    const { atime, mtime } = await stat(file)
    await writeFile(file, 'ALPHA')
    await utimes(file, atime, mtime)
    const r = await build({ dir: ds.dir, date: FIXED_DATE })
    expect(r.unchanged).toBe(false)
    expect(r.changes.modified).toBe(1)
    expect(await cidOf(ds.dir, 'a.txt')).not.toBe(before)
  })

  it('new row rules in the card re-validate rows the cache had accepted', async () => {
    ds = await makeDataset({ 'rows.jsonl': jsonl([{ id: 1 }, { id: 'two' }]) })
    await settle()
    await build({ dir: ds.dir, date: FIXED_DATE })
    const card = {
      cardVersion: 1,
      name: 'test-data',
      shards: [{ glob: '**/*.jsonl', rowSchema: { type: 'object', properties: { id: { type: 'integer' } } } }],
    }
    await writeFile(join(ds.dir, 'cairn.json'), JSON.stringify(card))
    const e = await thrown(() => build({ dir: ds.dir, date: FIXED_DATE }))
    expect(e).toBeInstanceOf(CairnError)
    expect((e as CairnError).code).toBe('INVALID_ROW')
    expect((e as CairnError).message).toContain('rows.jsonl:2')
  })

  it('a file added or removed since the cache was written changes the version', async () => {
    ds = await makeDataset({ 'a.txt': 'alpha' })
    await settle()
    await build({ dir: ds.dir, date: FIXED_DATE })
    await ds.write({ 'z.txt': 'new' })
    const r = await build({ dir: ds.dir, date: FIXED_DATE })
    expect(r.changes.added).toBe(1)
  })

  it("counts changes from the cache when it holds the parent's entries: added, removed, modified, and a file rewritten with its bytes is not modified", async () => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b.txt': 'bravo', 'c/d.txt': 'delta', 'e.txt': 'echo' })
    await settle()
    const first = await build({ dir: ds.dir, date: FIXED_DATE })
    // the precondition of counting from the cache: it names the parent's index (every file was cached)
    const noRules = createHash('sha256').update('[]').digest('hex') // the card has no shard rules
    const cache = await loadStatCache(join(ds.dir, '.cairn'), noRules)
    expect(cache.roots?.index.toString()).toBe(first.manifest.index.toString())
    await ds.write({ 'a.txt': 'ALPHA', 'c/aa.txt': 'new', 'z.txt': 'last', 'e.txt': 'echo' })
    await rm(join(ds.dir, 'b.txt'))
    const second = await build({ dir: ds.dir, date: FIXED_DATE })
    expect(second.changes).toEqual({ added: 2, removed: 1, modified: 1 })
    // the same counts as the parent's index gives, the cache gone
    await rm(join(ds.dir, '.cairn', 'stat-cache'))
    await ds.write({ 'c/aa.txt': 'newer' })
    const third = await build({ dir: ds.dir, date: FIXED_DATE })
    expect(third.changes).toEqual({ added: 0, removed: 0, modified: 1 })
  })

  it('a rebuild with nothing changed reads no file', async () => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b/c.jsonl': jsonl([{ id: 1 }]) })
    await settle()
    const first = await buildCounting(ds.dir)
    expect(first.read).toBe(2)
    expect(await buildCounting(ds.dir)).toEqual({ version: first.version, read: 0 })
  })

  it('a file whose ctime is too recent is not cached, even with an old mtime (copied by tar or rsync -t)', async () => {
    ds = await makeDataset({ 'a.txt': 'alpha' })
    const file = join(ds.dir, 'a.txt')
    await utimes(file, new Date('2001-01-01'), new Date('2001-01-01')) // mtime in the past, ctime now
    const { ctimeMs } = await stat(file)
    // the build sees its clock just after the file's ctime: the file is racy by ctime only
    const now = vi.spyOn(Date, 'now').mockReturnValue(Math.floor(ctimeMs) + 5)
    try {
      expect((await buildCounting(ds.dir)).read).toBe(1)
    } finally {
      now.mockRestore()
    }
    await settle()
    expect((await buildCounting(ds.dir)).read).toBe(1) // read again: it was not cached
    expect((await buildCounting(ds.dir)).read).toBe(0)
  })

  it('a file added before the others shifts every position: only the new one is read', async () => {
    ds = await makeDataset({ 'b.txt': 'bravo', 'c/d.jsonl': jsonl([{ id: 1 }]) })
    await settle()
    await buildCounting(ds.dir)
    await ds.write({ 'a.txt': 'alpha' })
    expect((await buildCounting(ds.dir)).read).toBe(1)
  })

  // each damage must cost a full read, never a wrong version
  it.each<[string, (bytes: Buffer) => Buffer]>([
    ['empty', () => Buffer.alloc(0)],
    ['truncated', (b) => b.subarray(0, b.length >> 1)],
    ['not JSON', () => Buffer.from('\u0000garbage\n')],
    ['an unknown version', (b) => Buffer.from(b.toString().replace('"statCache":4', '"statCache":99'))],
    ['the third format (CIDs as text, version 3)', (b) => Buffer.from(b.toString().replace('"statCache":4', '"statCache":3'))],
    ['a byte changed (a size), checksum not matching', (b) => Buffer.from(b.toString().replace('"sizes":[5,', '"sizes":[6,'))],
    [
      'the first format (NDJSON, version 1)',
      () => Buffer.from('{"statCache":1,"rules":"x"}\n["a.txt","5:1:1:1","bafy",5,"bytes",5,null,null]\n'),
    ],
    [
      'the second format (one body line, stamps as text, version 2)',
      (b) => {
        const [, keys, facts] = b.toString().split('\n')
        const rest = JSON.stringify({ ...JSON.parse(keys), ...JSON.parse(facts), stamps: ['5:1:1:1', '5:1:1:2'] }) + '\n'
        return Buffer.from(JSON.stringify({ statCache: 2, sha256: createHash('sha256').update(rest).digest('hex') }) + '\n' + rest)
      },
    ],
    ['stamps that are not four numbers per file, resealed', resealed((body) => ((body as Record<string, unknown>).stamps = 'AAAA'))],
    ['no columns, resealed', resealed((body) => delete body.stamps)],
    ['paths that are not an array, resealed', resealed((body) => ((body as Record<string, unknown>).paths = 'ab'))],
  ])('a cache that is %s is ignored: every file is read, the version is the same', async (_, damage) => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b.txt': 'bravo' })
    await settle()
    const first = await buildCounting(ds.dir)
    const file = join(ds.dir, '.cairn', 'stat-cache')
    await writeFile(file, damage(await readFile(file)))
    expect(await buildCounting(ds.dir)).toEqual({ version: first.version, read: 2 })
    // and the rebuilt cache is whole again
    expect(await buildCounting(ds.dir)).toEqual({ version: first.version, read: 0 })
  })

  it('facts that disagree with the paths (resealed) are never used: once a file changes, every file is read', async () => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b.txt': 'bravo' })
    await settle()
    await buildCounting(ds.dir)
    const file = join(ds.dir, '.cairn', 'stat-cache')
    // the last file's CID (36 bytes) cut from the column: one CID short of the paths
    const cut = (cids: string): string => Buffer.from(cids, 'base64').subarray(0, -36).toString('base64')
    await writeFile(file, resealed((body) => (body.cids = cut(body.cids as string)))(await readFile(file)))
    await ds.write({ 'a.txt': 'ALPHA' })
    await settle()
    const fresh = await makeDataset({ 'a.txt': 'ALPHA', 'b.txt': 'bravo' })
    try {
      const expected = await build({ dir: fresh.dir, date: FIXED_DATE })
      const r = await buildCounting(ds.dir)
      expect(r.read).toBe(2)
      expect((await ls({ dir: ds.dir }).next()).value?.cid.toString()).toBe((await ls({ dir: fresh.dir }).next()).value?.cid.toString())
      expect(expected.manifest.index.toString()).toBe((await build({ dir: ds.dir, date: FIXED_DATE })).manifest.index.toString())
    } finally {
      await fresh.cleanup()
    }
  })

  it('a file whose block is gone from the store is read again (a pack deleted since the cache was saved)', async () => {
    ds = await makeDataset({ 'a.txt': 'alpha' })
    await settle()
    const first = await build({ dir: ds.dir, date: FIXED_DATE })
    const packs = join(ds.dir, '.cairn', 'packs')
    const before = new Set(await readdir(packs))
    // each build writes a pack of its own: the second one holds b.txt's block and the new version
    await ds.write({ 'b.txt': 'bravo' })
    await settle()
    const second = await buildCounting(ds.dir)
    expect(second.read).toBe(1)
    for (const name of await readdir(packs)) if (!before.has(name)) await rm(join(packs, name))
    await writeFile(join(ds.dir, '.cairn', 'HEAD'), first.version.toString() + '\n')
    // the cache names b.txt's block, which is gone: b.txt is read again, a.txt is not
    expect(await buildCounting(ds.dir)).toEqual({ version: second.version, read: 1 })
    expect(await buildCounting(ds.dir)).toEqual({ version: second.version, read: 0 })
  })

  it("a rebuild with nothing changed reads neither the store nor HEAD's block when the cache holds them", async () => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b/c.jsonl': jsonl([{ id: 1 }]) })
    await settle()
    const first = await build({ dir: ds.dir, date: FIXED_DATE })
    const reads = vi.spyOn(BlockStore.prototype, 'get')
    const looks = vi.spyOn(BlockStore.prototype, 'snapshot')
    try {
      const again = await build({ dir: ds.dir, date: FIXED_DATE })
      expect(again.unchanged).toBe(true)
      expect(again.version.toString()).toBe(first.version.toString())
      expect(plain(again.manifest)).toEqual(plain(first.manifest))
      expect(reads).not.toHaveBeenCalled()
      expect(looks).not.toHaveBeenCalled()
    } finally {
      reads.mockRestore()
      looks.mockRestore()
    }
  })

  it('a cached HEAD block that does not match its CID is not used: HEAD is read from the store', async () => {
    ds = await makeDataset({ 'a.txt': 'alpha' })
    await settle()
    const first = await build({ dir: ds.dir, date: FIXED_DATE })
    const file = join(ds.dir, '.cairn', 'stat-cache')
    await writeFile(
      file,
      resealed((body) => {
        const head = body.head as unknown as { block: string }
        head.block = head.block.replace('"message":""', '"message":"forged"')
      })(await readFile(file)),
    )
    const again = await build({ dir: ds.dir, date: FIXED_DATE })
    expect(again.unchanged).toBe(true)
    expect(plain(again.manifest)).toEqual(plain(first.manifest))
  })
})

describe('stat cache writer', () => {
  it('saves what it was given and loads it back, over many files (the CID columns are written in parts)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'cairn-statcache-'))
    await mkdir(join(root, 'tmp'))
    const writer = new StatCacheWriter('rules')
    const schema = cidFor(DAG_JSON, new TextEncoder().encode('{}'))
    // a CIDv0 is kept as its CIDv1, as every key of the store
    const v0 = CID.parse('QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR')
    const entries = Array.from({ length: 9000 }, (_, i) => ({
      path: `d/${String(i).padStart(5, '0')}.jsonl`,
      cid: i === 7 ? v0 : cidFor(RAW, new TextEncoder().encode(String(i))),
      size: i,
      format: i % 3 === 0 ? ('jsonl' as const) : ('bytes' as const),
      ...(i % 3 === 0 ? { rows: i * 2, schema } : {}),
    }))
    entries.forEach((entry, i) => writer.add({ entry, dagSize: i + 1, stamp: new BigInt64Array([BigInt(i), 2n, 3n, -4n]) }))
    await writer.save(root, {})
    const cache = await loadStatCache(root, 'rules')
    expect(cache.size).toBe(entries.length)
    for (const i of [0, 1, 3, 7, 4095, 4096, 4097, 8191, 8192, 8999]) {
      const hit = cache.get(entries[i].path, i)!
      expect(hit.dagSize).toBe(i + 1)
      expect(CID.decode(hit.cid).toString()).toBe(entries[i].cid.toV1().toString())
      expect(hit.schema && CID.decode(hit.schema).toString()).toBe(entries[i].schema?.toString())
      expect(plain(hit.entry)).toEqual(plain({ ...entries[i], cid: entries[i].cid.toV1() }))
      expect([...cache.stamps.subarray(4 * i, 4 * i + 4)]).toEqual([BigInt(i), 2n, 3n, -4n])
    }
    await rm(root, { recursive: true, force: true })
  })
})
