import { execFileSync } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { build } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { digestInCid, fileSha256, fileSha256s, SHA256_LOG } from '../src/digests/sha256.js'
import { findEntry } from '../src/cat.js'
import { readVersion } from '../src/version.js'
import type { CID } from '../src/cid.js'
import type { BlockSource } from '../src/store/blocks.js'
import { FIXED_DATE, makeDataset, seededBytes, type TempDataset } from './helpers/dataset.js'

/** sha256sum (coreutils), an implementation we did not write. */
function sha256sum(file: string): string {
  return execFileSync('sha256sum', ['-b', file], { stdio: ['ignore', 'pipe', 'pipe'] })
    .toString()
    .split(' ')[0]
}

/** Counts the reads that reach the store. */
function counting(source: BlockSource): BlockSource & { reads: number } {
  const counted = {
    reads: 0,
    get: (cid: CID) => {
      counted.reads++
      return source.get(cid)
    },
  }
  return counted
}

describe('fileSha256', () => {
  let ds: TempDataset
  const files = {
    'small.txt': 'hello world',
    'empty.bin': '',
    'big/three-chunks.bin': seededBytes(2 * 1024 * 1024 + 12345, 'sha-big'),
    'big/exact-chunk.bin': seededBytes(1024 * 1024, 'sha-exact'),
    'big/one-more.bin': seededBytes(1024 * 1024 + 1, 'sha-one-more'),
  }
  const cids = new Map<string, CID>()

  beforeAll(async () => {
    ds = await makeDataset(files)
    const built = await build({ dir: ds.dir, date: FIXED_DATE })
    const dataset = await openDataset(ds.dir)
    try {
      const v = await readVersion(dataset.store, built.version)
      for (const path of Object.keys(files)) cids.set(path, (await findEntry(dataset.store, v.index, path))!.cid)
    } finally {
      await dataset.store.close()
    }
  })
  afterAll(() => ds.cleanup())

  it('equals sha256sum of every file, small, empty, one chunk, and several', async () => {
    const dataset = await openDataset(ds.dir)
    try {
      // through a plain block source: nothing is kept, so the next test starts with no log
      const plain = counting(dataset.store)
      for (const path of Object.keys(files)) {
        expect(await fileSha256(plain, cids.get(path)!), path).toBe(sha256sum(join(ds.dir, path)))
      }
    } finally {
      await dataset.store.close()
    }
  })

  it('reads nothing for a file of one raw block: the CID holds its sha256', () => {
    // the IPIP-499 vector: `hello world` without newline
    expect(digestInCid(cids.get('small.txt')!)).toBe('b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9')
    expect(digestInCid(cids.get('big/three-chunks.bin')!)).toBeUndefined()
  })

  it('computes a multi-block file once, keeps it in the store, and reads no block the second time', async () => {
    const dataset = await openDataset(ds.dir)
    try {
      const big = [cids.get('big/three-chunks.bin')!, cids.get('big/one-more.bin')!]
      const first = counting(dataset.store)
      const hashed: string[] = []
      const a = await fileSha256s(first, big, { storeDir: dataset.store.root, onHashed: (cid) => hashed.push(cid.toString()) })
      expect(first.reads).toBeGreaterThan(0)
      expect(hashed.sort()).toEqual(big.map(String).sort())
      const log = await readFile(join(dataset.store.root, SHA256_LOG), 'utf8')
      expect(log).toContain(`${big[0].toString()} ${sha256sum(join(ds.dir, 'big/three-chunks.bin'))}\n`)

      const second = counting(dataset.store)
      const b = await fileSha256s(second, big, { storeDir: dataset.store.root, onHashed: () => expect.unreachable('hashed again') })
      expect(second.reads).toBe(0)
      expect(b).toEqual(a)
    } finally {
      await dataset.store.close()
    }
  })

  it('ignores a line cut short by a killed writer and a line that is not a digest, and hashes again', async () => {
    const other = await makeDataset({ 'f.bin': seededBytes(1024 * 1024 + 7, 'cut') })
    try {
      const built = await build({ dir: other.dir, date: FIXED_DATE })
      const dataset = await openDataset(other.dir)
      try {
        const v = await readVersion(dataset.store, built.version)
        const cid = (await findEntry(dataset.store, v.index, 'f.bin'))!.cid
        const log = join(dataset.store.root, SHA256_LOG)
        await fileSha256(dataset.store, cid) // creates the folder
        // a wrong digest on a cut line (no newline), and garbage before it
        await writeFile(log, `garbage line\n${cid.toString()} ${'0'.repeat(64)}`)
        const counted = counting(dataset.store)
        const hex = await fileSha256(counted, cid, { storeDir: dataset.store.root })
        expect(hex).toBe(sha256sum(join(other.dir, 'f.bin')))
        expect(counted.reads).toBeGreaterThan(0)
        // the new line starts a line of its own, and is found the next time
        expect(await readFile(log, 'utf8')).toMatch(new RegExp(`0\\n${cid.toString()} ${hex}\\n$`))
        const again = counting(dataset.store)
        expect(await fileSha256(again, cid, { storeDir: dataset.store.root })).toBe(hex)
        expect(again.reads).toBe(0)
      } finally {
        await dataset.store.close()
      }
    } finally {
      await other.cleanup()
    }
  })
})
