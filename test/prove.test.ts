/**
 * `prove` and `verify --proof`: a proof for a file in a HAMT folder and for a deep path checks offline
 * (a CAR holding nothing else), its blocks are the ones `/ipfs/<version>/tree/<path>?format=car&dag-scope=block`
 * serves plus the index path, and a proof with a block removed, swapped or damaged is refused. The CLI
 * runs end to end and its --json validates.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CarBlockIterator } from '@ipld/car/iterator'
import { CarWriter } from '@ipld/car/writer'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CID, prove, serve, verifyProof } from '../src/index.js'
import { validateWith } from '../src/schemas.js'
import { cairn, ensureBuilt, parseJson } from './helpers/cli.js'
import { hamtName, makeRelease, type Release } from './helpers/release.js'

let rel: Release
const out = (name: string): string => join(rel.ds.dir, '..', `${rel.ds.dir.split('/').pop()}-${name}`)

beforeAll(async () => {
  rel = await makeRelease()
  ensureBuilt()
}, 180_000)

afterAll(async () => {
  await rel?.ds.cleanup()
})

async function blocksOf(file: string): Promise<{ roots: CID[]; blocks: { cid: CID; bytes: Uint8Array }[] }> {
  const it = await CarBlockIterator.fromBytes(await readFile(file))
  const blocks: { cid: CID; bytes: Uint8Array }[] = []
  for await (const b of it) blocks.push({ cid: CID.asCID(b.cid) as CID, bytes: b.bytes })
  return { roots: (await it.getRoots()).map((r) => CID.asCID(r) as CID), blocks }
}

async function writeBlocks(file: string, roots: CID[], blocks: { cid: CID; bytes: Uint8Array }[]): Promise<void> {
  const { writer, out: o } = CarWriter.create(roots)
  const chunks: Uint8Array[] = []
  const done = (async () => {
    for await (const c of o) chunks.push(c)
  })()
  for (const b of blocks) await writer.put(b)
  await writer.close()
  await done
  await writeFile(file, Buffer.concat(chunks))
}

describe('prove / verify --proof', () => {
  it.each([
    ['a file in a HAMT folder', () => hamtName(2024)],
    ['a deep path', () => 'deep/a/b/c/d/e.txt'],
    ['a Parquet shard (rows and schema)', () => 'data/train.parquet'],
    ['a multi-block file', () => 'blobs/big.bin'],
  ])('%s: the proof checks offline and names the file', async (_what, pathOf) => {
    const path = pathOf()
    const file = out(`${path.replace(/\W/g, '_')}.car`)
    const r = await prove({ dir: rel.ds.dir, ref: rel.v2.toString(), path, output: file })
    expect(r.bytes).toBe((await readFile(file)).length)
    const report = await verifyProof(file, rel.v2, path)
    expect(report).toMatchObject({ ok: true, path, size: rel.files[path].length })
    expect(report.cid.equals(r.cid)).toBe(true)
    if (path.endsWith('.parquet')) {
      expect(report.rows).toBe(200)
      expect(report.schema?.map((f) => f.name)).toEqual(['id', 'prompt'])
    }
    // the proof's tree part is what a trustless gateway serves for the standard path
    const server = await serve({ dir: rel.ds.dir, port: 0 })
    try {
      const res = await fetch(`${server.url}/ipfs/${rel.v2}/tree/${path}?format=car&dag-scope=block`)
      const gw = await CarBlockIterator.fromBytes(new Uint8Array(await res.arrayBuffer()))
      const proofCids = new Set((await blocksOf(file)).blocks.map((b) => b.cid.toString()))
      for await (const b of gw) if (b.cid.code !== 0x55) expect(proofCids.has(b.cid.toString()), b.cid.toString()).toBe(true)
    } finally {
      await server.close()
    }
  })

  it('a proof with a block removed, swapped, or damaged, or for another version or path, is refused', async () => {
    const path = hamtName(77)
    const file = out('tamper-src.car')
    await prove({ dir: rel.ds.dir, ref: 'HEAD', path, output: file })
    const { roots, blocks } = await blocksOf(file)
    expect(blocks.length).toBeGreaterThanOrEqual(5)
    for (let i = 0; i < blocks.length; i++) {
      const removed = out(`removed-${i}.car`)
      await writeBlocks(
        removed,
        roots,
        blocks.filter((_, j) => j !== i),
      )
      await expect(verifyProof(removed, rel.v2, path), `block ${i} removed`).rejects.toMatchObject({ code: 'MISSING_BLOCK' })
    }
    // swapped: a HAMT shard replaced by another valid block of the same release
    const other = out('other.car')
    await prove({ dir: rel.ds.dir, ref: 'HEAD', path: hamtName(3001), output: other })
    const foreign = (await blocksOf(other)).blocks.filter((b) => !blocks.some((x) => x.cid.equals(b.cid)))
    expect(foreign.length).toBeGreaterThan(0)
    const swapped = out('swapped.car')
    await writeBlocks(swapped, roots, [...blocks.slice(0, 3), foreign[0], ...blocks.slice(4)])
    await expect(verifyProof(swapped, rel.v2, path)).rejects.toMatchObject({ code: 'MISSING_BLOCK' })
    // damaged: one byte of the version block flipped, under its own CID
    const damaged = out('damaged.car')
    const bad = Uint8Array.from(blocks[0].bytes)
    bad[10] ^= 1
    await writeBlocks(damaged, roots, [{ cid: blocks[0].cid, bytes: bad }, ...blocks.slice(1)])
    await expect(verifyProof(damaged, rel.v2, path)).rejects.toMatchObject({ code: 'CORRUPT_BLOCK' })
    await expect(verifyProof(file, rel.v1, path)).rejects.toMatchObject({ code: 'VERIFY_FAILED' })
    await expect(verifyProof(file, rel.v2, hamtName(78))).rejects.toMatchObject({ code: 'MISSING_BLOCK' })
  })

  it('the CLI: prove -o, verify --proof prints CID, size and rows; --json validates; a tampered proof exits 5', async () => {
    const file = out('cli.car')
    const p = await cairn(['prove', 'HEAD', 'data/train.parquet', '-o', file, '-C', rel.ds.dir, '--json'])
    expect(p.exitCode, p.stderr).toBe(0)
    expect(validateWith('cli/prove.schema.json', parseJson(p))).toEqual([])
    const v = await cairn(['verify', '--proof', file, rel.v2.toString(), 'data/train.parquet'])
    expect(v.exitCode, v.stderr).toBe(0)
    expect(v.stdout).toMatch(/ok: data\/train\.parquet is in baguqee\w+: bafk\w+, \d+ B, 200 rows \(parquet\)/)
    const j = await cairn(['verify', '--proof', file, rel.v2.toString(), 'data/train.parquet', '--json'])
    expect(validateWith('cli/verify.schema.json', parseJson(j))).toEqual([])
    const { blocks, roots } = await blocksOf(file)
    const broken = out('cli-broken.car')
    await writeBlocks(broken, roots, blocks.slice(0, -2).concat(blocks.slice(-1)))
    const refused = await cairn(['verify', '--proof', broken, rel.v2.toString(), 'data/train.parquet'])
    expect(refused.exitCode).toBe(5)
    expect(refused.stderr).toMatch(/not in CAR file/)
  })
})
