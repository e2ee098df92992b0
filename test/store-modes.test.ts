/**
 * Store modes (#19 part 5, docs/store.md "Store modes"): every mode makes the same versions and CARs;
 * a reference-mode store holds no copy of the data and still packs, verifies, clones and serves; a data
 * file edited or deleted is reported with the file and the versions that lost blocks, and its blocks are
 * fetched from a recorded source when there is one; gc keeps file-backed packs whole; reflinks are
 * tested on a loop-mounted XFS image (root with mkfs.xfs), and fall back to copies where the file
 * system cannot clone.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statfsSync, statSync } from 'node:fs'
import { appendFile, mkdir, rm, unlink, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { build, checkReferences, clone, gc, init, pack, publish, serve, storeMode, verify } from '../src/index.js'
import { CairnError } from '../src/errors.js'
import { readReferencePack, ReferenceReader, ReferenceWriter } from '../src/store/reference-pack.js'
import { CID, RAW } from '../src/cid.js'
import { sha256 } from 'multiformats/hashes/sha2'
import { validateWith } from '../src/schemas.js'
import { cairn, ensureBuilt, parseJson } from './helpers/cli.js'
import { DEFAULT_CARD, FIXED_DATE, seededBytes, tempDir, thrown } from './helpers/dataset.js'

const MiB = 1024 * 1024
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
})
beforeAll(() => ensureBuilt())

const FILES = {
  'big.bin': seededBytes(3 * MiB + 12345, 'big'),
  'sub/mid.bin': seededBytes(200 * 1024, 'mid'),
  'sub/small.txt': 'a small file\n',
  'empty.bin': new Uint8Array(0),
}

/** A dataset of {@link FILES} in `parent` (a new temp folder by default), initialised in `mode`. */
async function dataset(mode: 'copy' | 'reflink' | 'reference', parent?: string): Promise<string> {
  const dir = parent ? join(parent, `ds-${mode}-${Math.random().toString(36).slice(2)}`) : await tempDir()
  if (!parent) dirs.push(dir)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'cairn.json'), JSON.stringify(DEFAULT_CARD))
  for (const [path, bytes] of Object.entries(FILES)) {
    await mkdir(join(dir, path, '..'), { recursive: true })
    await writeFile(join(dir, path), bytes)
  }
  await init({ dir, storeMode: mode })
  return dir
}

/** Bytes of the store's `.pack` files (what holds block bytes), by kind. */
function packBytes(dir: string): { copy: number; clone: number; ref: number } {
  const out = { copy: 0, clone: 0, ref: 0 }
  const packs = join(dir, '.cairn', 'packs')
  for (const n of readdirSync(packs).filter((n) => n.endsWith('.pack'))) {
    const kind = n.startsWith('ref-') ? 'ref' : n.startsWith('clone-') ? 'clone' : 'copy'
    out[kind] += statSync(join(packs, n)).size
  }
  return out
}

async function carBytes(dir: string): Promise<Buffer> {
  const out = join(dir, '..', `${Math.random().toString(36).slice(2)}.car`)
  await pack({ dir, output: out })
  const bytes = readFileSync(out)
  await unlink(out)
  return bytes
}

describe('store modes', () => {
  it('every mode makes the same version and a byte-identical CAR; reference keeps no copy of the data', async () => {
    const versions: string[] = []
    const cars: Buffer[] = []
    for (const mode of ['copy', 'reflink', 'reference'] as const) {
      const dir = await dataset(mode)
      expect((await storeMode({ dir })).mode).toBe(mode)
      const r = await build({ dir, message: 'v1', date: FIXED_DATE })
      versions.push(r.version.toString())
      cars.push(await carBytes(dir))
      expect((await verify({ dir, ref: r.version.toString(), dataset: dir })).ok).toBe(true)
      if (mode === 'reference') {
        const sizes = packBytes(dir)
        const data = Object.values(FILES).reduce((n, b) => n + b.length, 0)
        // the data files' blocks are references (the list of files), only the small metadata is copied
        expect(sizes.ref).toBeLessThan(1024)
        expect(sizes.copy).toBeLessThan(data / 50)
      }
    }
    expect(new Set(versions).size).toBe(1)
    expect(cars[1].equals(cars[0])).toBe(true)
    expect(cars[2].equals(cars[0])).toBe(true)
  })

  it('reference mode: a clone from the store and a serve over it give back every file', async () => {
    const dir = await dataset('reference')
    const { version } = await build({ dir, message: 'v1', date: FIXED_DATE })
    const target = join(await tempDir(), 'clone')
    dirs.push(join(target, '..'))
    await clone({ cid: version.toString(), dir: target, from: [dir] })
    for (const [path, bytes] of Object.entries(FILES)) expect(readFileSync(join(target, path)).equals(Buffer.from(bytes))).toBe(true)
    const server = await serve({ dir, port: 0, host: '127.0.0.1' })
    try {
      const res = await fetch(`${server.url}/ipfs/${version}/tree/big.bin`)
      expect(res.status).toBe(200)
      expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(FILES['big.bin']))).toBe(true)
    } finally {
      await server.close()
    }
  })

  it('reference mode: an edited and a deleted data file are reported with the versions that lost blocks', async () => {
    const dir = await dataset('reference')
    const v1 = (await build({ dir, message: 'v1', date: FIXED_DATE })).version.toString()
    await writeFile(join(dir, 'new.bin'), 'another file\n')
    const v2 = (await build({ dir, message: 'v2', date: FIXED_DATE })).version.toString()
    expect((await checkReferences({ dir })).lost).toEqual([])
    // a touch changes the stamp, not the bytes: nothing is lost
    await utimes(join(dir, 'sub/mid.bin'), new Date(), new Date('2030-01-01'))
    expect((await checkReferences({ dir })).lost).toEqual([])

    // one byte of the second chunk of big.bin changes in place
    const big = Buffer.from(FILES['big.bin'])
    big[MiB + 7] ^= 0xff
    await writeFile(join(dir, 'big.bin'), big)
    const e = (await thrown(() => pack({ dir, ref: v1, output: join(dir, '..', 'x.car') }))) as CairnError
    expect(e).toBeInstanceOf(CairnError)
    expect(e.code).toBe('MISSING_BLOCK')
    expect(e.message).toContain('big.bin changed since it was built')
    expect(e.message).toContain(v1)
    expect(e.message).toContain(v2)
    // the CLI: exit 5 (a block is missing), the error JSON names the file and the versions
    const cliPack = await cairn(['pack', v1, '-o', join(dir, '..', 'y.car'), '--json', '-C', dir])
    expect(cliPack.exitCode).toBe(5)
    const err = parseJson<{ error: { code: string; details: { file: string; why: string; versions: string[] }[] } }>(cliPack)
    expect(validateWith('cli/error.schema.json', err)).toEqual([])
    expect(err.error.details[0]).toMatchObject({ file: 'big.bin', why: 'changed' })
    expect(err.error.details[0].versions.sort()).toEqual([v1, v2].sort())
    await unlink(join(dir, 'sub/small.txt'))
    const report = await checkReferences({ dir })
    expect(report.lost.map((l) => [l.path, l.why, l.blocks])).toEqual([
      ['big.bin', 'changed', 1],
      ['sub/small.txt', 'deleted', 1],
    ])
    for (const l of report.lost) expect(l.versions.map(String).sort()).toEqual([v1, v2].sort())
    // the CLI says the same, exits 1, and its JSON validates
    const cli = await cairn(['store', 'check', '--json', '-C', dir])
    expect(cli.exitCode).toBe(1)
    expect(validateWith('cli/store-check.schema.json', parseJson(cli))).toEqual([])

    // a rebuild references the file's new bytes: the new version is whole, the old ones still lose
    const v3 = (await build({ dir, message: 'v3', date: FIXED_DATE })).version.toString()
    await expect(verify({ dir, ref: v3, dataset: dir })).resolves.toMatchObject({ ok: true })
    await expect(carBytes(dir)).resolves.toBeInstanceOf(Buffer)
  })

  it('reference mode: a lost block is fetched from a dir: target it was published to, and kept as a copy', async () => {
    const dir = await dataset('reference')
    const v1 = (await build({ dir, message: 'v1', date: FIXED_DATE })).version.toString()
    const before = await carBytes(dir)
    const targetDir = join(await tempDir(), 'target')
    dirs.push(join(targetDir, '..'))
    await publish({ dir, to: `dir:${targetDir}` })
    await unlink(join(dir, 'big.bin'))
    expect((await carBytes(dir)).equals(before)).toBe(true)
    // the fetched blocks were stored: the target can go
    await rm(targetDir, { recursive: true })
    expect((await carBytes(dir)).equals(before)).toBe(true)
    expect(packBytes(dir).copy).toBeGreaterThan(FILES['big.bin'].length)
    await expect(verify({ dir, ref: v1, dataset: dir })).resolves.toMatchObject({ ok: false, missing: ['big.bin'] })
  })

  it('reference mode: a file with the bytes of a deleted one is referenced anew, so its version is whole', async () => {
    const dir = await dataset('reference')
    const v1 = (await build({ dir, message: 'v1', date: FIXED_DATE })).version.toString()
    // big.bin moves to copy.bin (same bytes) and the original goes: its blocks are already "stored"
    await writeFile(join(dir, 'copy.bin'), FILES['big.bin'])
    await unlink(join(dir, 'big.bin'))
    const v2 = (await build({ dir, message: 'v2', date: FIXED_DATE })).version.toString()
    await expect(carBytes(dir)).resolves.toBeInstanceOf(Buffer)
    // v1 reads its big.bin from copy.bin now: nothing is lost, whatever order the logs are read in
    await expect(carBytes(dir)).resolves.toBeInstanceOf(Buffer)
    expect((await pack({ dir, ref: v1, output: join(dir, '..', 'v1.car') })).root.toString()).toBe(v1)
    expect((await checkReferences({ dir })).lost).toEqual([])
    expect(v2).not.toBe(v1)
  })

  it('gc keeps a reference pack whole while a version uses it, and deletes it (never the data) once none does', async () => {
    const dir = await dataset('reference')
    await build({ dir, message: 'v1', date: FIXED_DATE })
    const refPacks = (): string[] => readdirSync(join(dir, '.cairn', 'packs')).filter((n) => n.startsWith('ref-'))
    const first = refPacks()
    await writeFile(join(dir, 'sub/mid.bin'), seededBytes(200 * 1024, 'mid2'))
    await build({ dir, message: 'v2', date: FIXED_DATE })
    const r = await gc({ dir, now: true, keepHistory: Infinity })
    expect(r.missing).toBe(0)
    expect(refPacks()).toEqual(expect.arrayContaining(first))
    expect(await carBytes(dir)).toBeInstanceOf(Buffer)
    // the first version and its HEAD-log entries forgotten: the first pack feeds only big.bin and the small files, still used
    await gc({ dir, now: true, keepHistory: 0, expireHeadLog: true })
    expect(existsSync(join(dir, 'big.bin'))).toBe(true)
    await expect(carBytes(dir)).resolves.toBeInstanceOf(Buffer)
    // every file removed and rebuilt empty but for a new file: no version uses the references, gc deletes them
    for (const p of Object.keys(FILES)) await rm(join(dir, p), { force: true })
    await writeFile(join(dir, 'only.txt'), 'only\n')
    await build({ dir, message: 'v3', date: FIXED_DATE })
    const before = refPacks().length
    await gc({ dir, now: true, keepHistory: 0, expireHeadLog: true })
    expect(refPacks().length).toBeLessThan(before)
    expect(readFileSync(join(dir, 'only.txt'), 'utf8')).toBe('only\n')
    expect(await carBytes(dir)).toBeInstanceOf(Buffer)
  })

  it('a reference pack naming a path outside the dataset is never read: the block is reported lost', async () => {
    const dir = await dataset('reference')
    await build({ dir, message: 'v1', date: FIXED_DATE })
    const packs = join(dir, '.cairn', 'packs')
    const ref = readdirSync(packs).find((n) => n.startsWith('ref-') && n.endsWith('.pack'))!
    const outside = join(dir, '..', 'outside.bin')
    dirs.push(outside)
    await writeFile(outside, FILES['sub/small.txt'])
    // the small file's line rewritten to climb out of the dataset (a hostile or damaged pack)
    const text = readFileSync(join(packs, ref), 'utf8').replace('"sub/small.txt"', `"../${outside.split('/').pop()}"`)
    await writeFile(join(packs, ref), text)
    const e = (await thrown(() => carBytes(dir))) as CairnError
    expect(e.code).toBe('MISSING_BLOCK')
  })

  it('a reference pack torn by a kill, or with damaged lines, lists only its whole, sound lines', async () => {
    const root = await tempDir()
    dirs.push(root)
    const file = join(root, 'ref-x.pack')
    const good = ['0 10 1 2 "a.bin"', '10 5 1 3 "b/c.bin"']
    const bad = ['15 5 1 4 "/etc/passwd"', '20 5 1 5 "../up.bin"', '25 x 1 6 "d.bin"', '3 5 1 7 "overlaps.bin"', '30 5 1 8 d.bin']
    await writeFile(file, 'cairn-reference-pack 1\n' + [...good, ...bad].join('\n') + '\n40 5 1 9 "torn.b')
    expect(readReferencePack(file).map((f) => [f.base, f.size, f.path])).toEqual([
      [0, 10, 'a.bin'],
      [10, 5, 'b/c.bin'],
    ])
    await writeFile(file, 'cairn-reference-pack 2\n' + good.join('\n') + '\n')
    expect(readReferencePack(file)).toEqual([])
  })

  it('reference packs roll over every N files; blocks written concurrently all read back, checked', async () => {
    const root = await tempDir()
    dirs.push(root)
    await mkdir(join(root, 'packs'))
    const writer = new ReferenceWriter(join(root, 'packs'), root, 3)
    const files = Array.from({ length: 10 }, (_, i) => ({ path: `f${i}.bin`, bytes: seededBytes(1000 + i, `f${i}`) }))
    const places = await Promise.all(
      files.map(async (f) => {
        await writeFile(join(root, f.path), f.bytes)
        const st = statSync(join(root, f.path), { bigint: true })
        const identity = { size: f.bytes.length, mtimeNs: st.mtimeNs, ino: st.ino }
        const cid = CID.createV1(RAW, await sha256.digest(f.bytes))
        return { cid, at: await writer.put(cid, f.bytes.length, { path: join(root, f.path), offset: 0, identity }) }
      }),
    )
    await writer.close()
    expect(new Set(places.map((p) => p.at!.pack)).size).toBe(4)
    const reader = new ReferenceReader(join(root, 'packs'), root)
    for (const [i, p] of places.entries()) {
      const got = await reader.get(p.cid, p.at!.pack, p.at!.offset, p.at!.length)
      expect('bytes' in got && Buffer.from(got.bytes).equals(files[i].bytes)).toBe(true)
    }
  })

  it('init --store-mode reference (CLI) makes a store that references its files', async () => {
    const dir = await tempDir()
    dirs.push(dir)
    await writeFile(join(dir, 'cairn.json'), JSON.stringify(DEFAULT_CARD))
    await writeFile(join(dir, 'a.bin'), seededBytes(300 * 1024, 'a'))
    expect((await cairn(['init', dir, '--store-mode', 'reference'])).exitCode).toBe(0)
    expect((await cairn(['build', '-C', dir, '-m', 'v1'])).exitCode).toBe(0)
    expect(packBytes(dir).ref).toBeGreaterThan(0)
    expect(packBytes(dir).copy).toBeLessThan(4096)
  })

  it('reflink mode copies where the file system cannot clone, and says why', async () => {
    const dir = await dataset('reflink')
    const mode = await storeMode({ dir })
    expect(validateWith('cli/store-mode.schema.json', JSON.parse(JSON.stringify(mode)))).toEqual([])
    await build({ dir, message: 'v1', date: FIXED_DATE })
    const sizes = packBytes(dir)
    if (mode.reflinks.supported) expect(sizes.clone).toBeGreaterThan(0)
    else {
      expect(mode.reflinks.reason).toMatch(/cannot clone/)
      expect(sizes.clone).toBe(0)
      expect(sizes.copy).toBeGreaterThan(FILES['big.bin'].length)
    }
  })

  it('store mode sets and reports the mode (CLI, JSON validates); an unknown mode is refused', async () => {
    const dir = await dataset('copy')
    const set = await cairn(['store', 'mode', 'reference', '--json', '-C', dir])
    expect(set.exitCode).toBe(0)
    const r = parseJson<{ mode: string; previous: string }>(set)
    expect(validateWith('cli/store-mode.schema.json', r)).toEqual([])
    expect([r.mode, r.previous]).toEqual(['reference', 'copy'])
    expect(JSON.parse(readFileSync(join(dir, '.cairn', 'store.json'), 'utf8'))).toMatchObject({ storeVersion: 1, storeMode: 'reference' })
    expect((await cairn(['store', 'mode', 'mirror', '-C', dir])).exitCode).toBe(2)
    await writeFile(join(dir, '.cairn', 'store.json'), JSON.stringify({ storeVersion: 1, storeMode: 'future' }))
    expect(((await thrown(() => build({ dir }))) as CairnError).code).toBe('NOT_A_DATASET')
  })
})

/** A loop-mounted XFS image with reflinks, when this process may make one (root, mkfs.xfs, a loop device). */
function xfsSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to loop-mount an XFS image'
  try {
    execFileSync('mkfs.xfs', ['-V'], { stdio: ['ignore', 'ignore', 'ignore'] })
  } catch {
    return 'mkfs.xfs (Debian xfsprogs) is not installed'
  }
  return undefined
}

const skip = xfsSkipReason()
describe.skipIf(skip !== undefined)(`reflink mode on XFS${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let root: string
  let mnt: string
  beforeAll(async () => {
    root = await tempDir('cairn-xfs-')
    mnt = join(root, 'mnt')
    await mkdir(mnt)
    const img = join(root, 'xfs.img')
    execFileSync('truncate', ['-s', '320M', img], { stdio: ['ignore', 'ignore', 'pipe'] })
    execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', img], { stdio: ['ignore', 'ignore', 'pipe'] })
    execFileSync('mount', ['-o', 'loop', img, mnt], { stdio: ['ignore', 'ignore', 'pipe'] })
  })
  afterAll(async () => {
    if (mnt) execFileSync('umount', [mnt], { stdio: ['ignore', 'ignore', 'pipe'] })
    if (root) await rm(root, { recursive: true, force: true })
  })

  it('stores each large file as a clone sharing its extents; the versions survive an edit of the data file', async () => {
    const dir = await dataset('reflink', mnt)
    await writeFile(join(dir, 'huge.bin'), seededBytes(48 * MiB, 'huge'))
    expect((await storeMode({ dir })).reflinks.supported).toBe(true)
    execFileSync('sync')
    const free = (): number => Number(statfsSync(mnt).bavail) * Number(statfsSync(mnt).bsize)
    const before = free()
    const v1 = (await build({ dir, message: 'v1', date: FIXED_DATE })).version.toString()
    execFileSync('sync')
    const used = before - free()
    const sizes = packBytes(dir)
    // big.bin, sub/mid.bin and huge.bin are clones; the small and empty files and the metadata are copied
    expect(sizes.clone).toBe(FILES['big.bin'].length + FILES['sub/mid.bin'].length + 48 * MiB)
    expect(readdirSync(join(dir, '.cairn', 'packs')).filter((n) => n.startsWith('clone-') && n.endsWith('.idx'))).toHaveLength(3)
    // 51 MiB of clones cost the file system (almost) nothing
    expect(used).toBeLessThan(4 * MiB)
    const car = await carBytes(dir)
    // the clone is the store's own: editing or deleting the data file leaves every version whole
    await appendFile(join(dir, 'huge.bin'), 'more')
    await unlink(join(dir, 'big.bin'))
    expect((await carBytes(dir)).equals(car)).toBe(true)
    const v2 = (await build({ dir, message: 'v2', date: FIXED_DATE })).version.toString()
    await gc({ dir, now: true, keepHistory: Infinity })
    await expect(verify({ dir, ref: v2, dataset: dir })).resolves.toMatchObject({ ok: true })
    expect((await carBytes(dir)).length).toBeGreaterThan(0)
    const again = join(mnt, 'again')
    await clone({ cid: v1, dir: again, from: [dir] })
    expect(readFileSync(join(again, 'big.bin')).equals(Buffer.from(FILES['big.bin']))).toBe(true)
  })
})
