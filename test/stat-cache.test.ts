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
import { openStatCache, StatCacheWriter } from '../src/store/stat-cache.js'
import { buildTuning } from '../src/build.js'
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

/** The cache file's frames: the header, the record frames, the trailer (docs/store.md). */
interface Frames {
  header: Buffer
  records: Buffer[]
  trailer: Buffer
}

function parseFrames(bytes: Buffer): Frames {
  const trailerAt = bytes.readUInt32LE(bytes.length - 16)
  const all: Buffer[] = []
  for (let at = 0; at < bytes.length - 16;) {
    const length = bytes.readUInt32LE(at)
    all.push(Buffer.from(bytes.subarray(at + 20, at + 20 + length)))
    if (at === trailerAt) break
    at += 20 + length
  }
  return { header: all[0], records: all.slice(1, -1), trailer: all[all.length - 1] }
}

function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(20)
  head.writeUInt32LE(payload.length, 0)
  createHash('sha256').update(payload).digest().copy(head, 4, 0, 16)
  return Buffer.concat([head, payload])
}

/** A well-formed cache of `frames` (every checksum matching): damage that only its meaning can reveal. */
function sealFrames(f: Frames): Buffer {
  const body = Buffer.concat([frame(f.header), ...f.records.map(frame)])
  const footer = Buffer.alloc(16)
  footer.writeUInt32LE(body.length, 0)
  footer.write('CAIRNSC5', 8, 'latin1')
  return Buffer.concat([body, frame(f.trailer), footer])
}

/** Rewrites the trailer's JSON with `edit`, resealed. */
function resealedTrailer(edit: (trailer: Record<string, unknown>) => void): (bytes: Buffer) => Buffer {
  return (bytes) => {
    const f = parseFrames(bytes)
    const t = JSON.parse(f.trailer.toString()) as Record<string, unknown>
    edit(t)
    return sealFrames({ ...f, trailer: Buffer.from(JSON.stringify(t)) })
  }
}

/** The stat cache's rules key of a card without shard rules. */
const noRules = (): string => createHash('sha256').update('[]').digest('hex')

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
    const cache = openStatCache(join(ds.dir, '.cairn'), noRules())
    expect(cache?.info?.roots?.index.toString()).toBe(first.manifest.index.toString())
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
    ['not a cache', () => Buffer.from('\u0000garbage\n')],
    [
      'the fourth format (JSON lines read whole, version 4)',
      () => Buffer.from('{"statCache":4,"sha256":"00"}\n{"rules":"x","paths":["a.txt"],"stamps":""}\n{}\n'),
    ],
    [
      'an unknown version, resealed',
      (b) => {
        const f = parseFrames(b)
        return sealFrames({ ...f, header: Buffer.from(f.header.toString().replace('"statCache":5', '"statCache":99')) })
      },
    ],
    ['a byte changed in the trailer', (b) => Buffer.from(b.toString('latin1').replace('"count":2', '"count":3'), 'latin1')],
    ['a footer pointing elsewhere', (b) => (b.writeUInt32LE(3, b.length - 16), b)],
  ])('a cache that is %s is not trusted: every file is read, the version is the same', async (_, damage) => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b.txt': 'bravo' })
    await settle()
    const first = await buildCounting(ds.dir)
    const file = join(ds.dir, '.cairn', 'stat-cache')
    await writeFile(file, damage(await readFile(file)))
    expect(await buildCounting(ds.dir)).toEqual({ version: first.version, read: 2 })
    // and the rebuilt cache is whole again
    expect(await buildCounting(ds.dir)).toEqual({ version: first.version, read: 0 })
  })

  it("a trailer whose count disagrees with its records (resealed) is no proof that nothing changed, but each record's facts still hold", async () => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b.txt': 'bravo' })
    await settle()
    const first = await buildCounting(ds.dir)
    const file = join(ds.dir, '.cairn', 'stat-cache')
    await writeFile(file, resealedTrailer((t) => (t.count = 3))(await readFile(file)))
    const stamps = vi.spyOn(BlockStore.prototype, 'put')
    try {
      // not the exact-match path: the index and tree are built again (from the records, no file read)
      expect(await buildCounting(ds.dir)).toEqual({ version: first.version, read: 0 })
      expect(stamps).toHaveBeenCalled()
    } finally {
      stamps.mockRestore()
    }
  })

  it('a record frame that does not match its checksum ends the records: the files after it are read again, those before are not', async () => {
    ds = await makeDataset(Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${String(i).padStart(2, '0')}.txt`, `file ${i}`])))
    await settle()
    buildTuning.frameBytes = 200
    try {
      const first = await buildCounting(ds.dir)
      const file = join(ds.dir, '.cairn', 'stat-cache')
      const bytes = await readFile(file)
      const f = parseFrames(bytes)
      expect(f.records.length).toBeGreaterThan(2)
      // one byte of the second record frame's payload flipped, its checksum left as it was
      const second = 20 + f.header.length + 20 + f.records[0].length
      bytes[second + 20 + 3] ^= 1
      await writeFile(file, bytes)
      let records = 0
      const cursor = openStatCache(join(ds.dir, '.cairn'), noRules())!.cursor()
      for (; cursor.current; cursor.advance()) records++
      expect(cursor.damaged).toBe(true)
      const again = await buildCounting(ds.dir)
      expect(again.version).toBe(first.version)
      expect(again.read).toBe(12 - records)
      await ds.write({ 'f05.txt': 'changed' })
      await settle()
      expect((await buildCounting(ds.dir)).read).toBe(1)
    } finally {
      delete buildTuning.frameBytes
    }
  })

  // the cursor checks each CID's shape itself (version, codec, hash, digest length), not by making a CID
  it.each<[string, number, number]>([
    ['CID version 2', 0, 2],
    ['a digest length one longer than the bytes', 3, 0x21],
    ['a digest length one shorter than the bytes', 3, 0x1f],
  ])('a record whose CID is not one (%s), in a frame whose checksum matches, ends the records: every file is read again', async (_, at, value) => {
    ds = await makeDataset({ 'a.txt': 'alpha', 'b.txt': 'bravo' })
    await settle()
    const first = await buildCounting(ds.dir)
    const file = join(ds.dir, '.cairn', 'stat-cache')
    const f = parseFrames(await readFile(file))
    // the first record: path length, 'a.txt', the stamp (32 bytes), the CID's length, the CID
    const record = f.records[0]
    expect(record.subarray(1, 6).toString()).toBe('a.txt')
    const cid = 1 + 5 + 32 + 1
    expect(record[cid - 1]).toBe(36)
    expect(record.subarray(cid, cid + 4)).toEqual(Buffer.from([0x01, 0x55, 0x12, 0x20]))
    record[cid + at] = value
    await writeFile(file, sealFrames(f))
    const cursor = openStatCache(join(ds.dir, '.cairn'), noRules())!.cursor()
    expect(cursor.current).toBeUndefined()
    expect(cursor.damaged).toBe(true)
    expect(await buildCounting(ds.dir)).toEqual({ version: first.version, read: 2 })
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
      resealedTrailer((t) => {
        const head = t.head as { block: string }
        head.block = head.block.replace('"message":""', '"message":"forged"')
      })(await readFile(file)),
    )
    const again = await build({ dir: ds.dir, date: FIXED_DATE })
    expect(again.unchanged).toBe(true)
    expect(plain(again.manifest)).toEqual(plain(first.manifest))
  })
})

describe('stat cache writer', () => {
  it.each([64, 4096, 65536])('saves what it was given and reads it back in order, in frames of %i bytes', async (frameBytes) => {
    const root = await mkdtemp(join(tmpdir(), 'cairn-statcache-'))
    const writer = new StatCacheWriter(root, 'rules', { frameBytes })
    const schema = cidFor(DAG_JSON, new TextEncoder().encode('{}'))
    // a CIDv0 is kept as its CIDv1, as every key of the store
    const v0 = CID.parse('QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR')
    const entries = Array.from({ length: 9000 }, (_, i) => ({
      path: `d/${String(i).padStart(5, '0')}-é.jsonl`,
      cid: i === 7 ? v0 : cidFor(RAW, new TextEncoder().encode(String(i))),
      size: i * 1_000_003,
      format: i % 3 === 0 ? ('jsonl' as const) : ('bytes' as const),
      ...(i % 3 === 0 ? { rows: i * 2, schema } : {}),
    }))
    entries.forEach((entry, i) => writer.add({ entry, dagSize: i + 1, stamp: new BigInt64Array([BigInt(i), 2n, 3n, -4n]) }))
    writer.seal({})
    const cache = openStatCache(root, 'rules', { frameBytes })!
    expect(cache.info?.count).toBe(entries.length)
    expect(openStatCache(root, 'other rules')).toBeUndefined()
    const cursor = cache.cursor()
    for (let i = 0; i < entries.length; i++, cursor.advance()) {
      const hit = cursor.current!
      expect(hit.path).toBe(entries[i].path)
      expect(hit.dagSize).toBe(i + 1)
      expect(CID.decode(hit.cid).toString()).toBe(entries[i].cid.toV1().toString())
      expect(hit.schema && CID.decode(hit.schema).toString()).toBe(entries[i].schema?.toString())
      expect(plain(hit.entry)).toEqual(plain({ ...entries[i], cid: entries[i].cid.toV1() }))
      expect([...hit.stamp]).toEqual([BigInt(i), 2n, 3n, -4n])
    }
    expect(cursor.current).toBeUndefined()
    expect(cursor.damaged).toBe(false)
    // a seek moves past the records before the path, and finds it
    const again = cache.cursor()
    expect(again.seek(entries[4321].path, (a, b) => (a < b ? -1 : a > b ? 1 : 0))?.dagSize).toBe(4322)
    again.close()
    expect((await readdir(root)).filter((n) => n.endsWith('.partial'))).toEqual([])
    await rm(root, { recursive: true, force: true })
  })
})
