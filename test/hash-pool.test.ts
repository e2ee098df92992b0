/**
 * The hashing threads: what they read and hash equals node:crypto over the same bytes, whatever the
 * number of threads; errors come back as the system errors they were; an idle pool never keeps the
 * process alive; and the import grouping keeps every file exactly once, in order.
 */
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, open, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isCairnError } from '../src/errors.js'
import { CHUNK_SIZE, identityOf, importBytes, importFile, importFiles, importGroups } from '../src/unixfs/file.js'
import { BUFFER_SIZE, HashPool, Places } from '../src/util/hash-pool.js'

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-pool-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('HashPool', () => {
  it('reads and hashes ranges of an open file like node:crypto, with 1 and 3 threads or none (the calling thread)', async () => {
    const bytes = randomBytes(3 * BUFFER_SIZE + 777)
    const path = join(dir, 'ranges.bin')
    await writeFile(path, bytes)
    for (const threads of [1, 3, 0]) {
      const pool = new HashPool(threads)
      const fh = await open(path, 'r')
      try {
        const starts = [0, BUFFER_SIZE, 2 * BUFFER_SIZE, 3 * BUFFER_SIZE, 5]
        const got = await Promise.all(starts.map((s) => pool.readRange(fh.fd, s, BUFFER_SIZE)))
        got.forEach((g, k) => {
          const want = bytes.subarray(starts[k], starts[k] + BUFFER_SIZE)
          expect(g.bytes.length).toBe(want.length)
          expect(hex(g.digest)).toBe(sha256(want))
          expect(Buffer.from(g.bytes).equals(want)).toBe(true)
        })
        for (const g of got) pool.release(g.bytes) // reused by the next reads: results stay right
        const again = await pool.readRange(fh.fd, 10, 100)
        expect(hex(again.digest)).toBe(sha256(bytes.subarray(10, 110)))
      } finally {
        await fh.close()
        await pool.close()
      }
    }
  })

  it('reads many small files in one round trip, each with its own digest and stat, and reports a missing one alone', async () => {
    const names = ['a', 'b', 'empty', 'c']
    const contents = [randomBytes(10), randomBytes(4096), Buffer.alloc(0), randomBytes(70_000)]
    await Promise.all(names.map((n, k) => writeFile(join(dir, n), contents[k])))
    for (const threads of [2, 0]) {
      const pool = new HashPool(threads)
      try {
        const files = [...names.map((n, k) => ({ path: join(dir, n), size: contents[k].length })), { path: join(dir, 'nope'), size: 3 }]
        const read = await pool.readFiles(
          files.map((f) => f.path),
          files.map((f) => f.size),
        )
        contents.forEach((c, k) => {
          expect(read.error(k)).toBeUndefined()
          expect(hex(read.digest(k))).toBe(sha256(c))
          expect(read.identity(k).size).toBe(c.length)
          expect(Buffer.from(read.bytes(k)).equals(c)).toBe(true)
        })
        // the stat after the read, as the caller compares it with the scan's
        const st = await stat(join(dir, 'b'), { bigint: true })
        expect(read.identity(1)).toEqual({ size: 4096, mtimeNs: st.mtimeNs, ino: st.ino })
        expect(read.same(1, 4096, st.mtimeNs, st.ino)).toBe(true)
        expect(read.same(1, 4096, st.mtimeNs + 1n, st.ino)).toBe(false)
        expect(read.same(1, 4096, st.mtimeNs, st.ino + 1n)).toBe(false)
        expect(read.same(1, 4095, st.mtimeNs, st.ino)).toBe(false)
        expect((read.error(4) as NodeJS.ErrnoException).code).toBe('ENOENT')
      } finally {
        await pool.close()
      }
    }
  })

  it('hashes bytes like node:crypto whatever their size, and lets the caller overwrite them at once', async () => {
    const sizes = [0, 1, BUFFER_SIZE - 1, BUFFER_SIZE, BUFFER_SIZE + 1, 3 * BUFFER_SIZE + 5]
    for (const threads of [1, 2, 0]) {
      const pool = new HashPool(threads)
      try {
        const inputs = sizes.map((n) => randomBytes(n))
        const wanted = inputs.map(sha256)
        // one buffer for every call, overwritten before any digest is back: the pool hashes its own copy
        const scratch = Buffer.alloc(3 * BUFFER_SIZE + 5)
        const pending = inputs.map((input) => {
          input.copy(scratch)
          const digest = pool.hash(scratch.subarray(0, input.length))
          scratch.fill(0xa5)
          return digest
        })
        expect((await Promise.all(pending)).map(hex)).toEqual(wanted)
        // again, now with buffers the pool got back from the first round
        expect((await Promise.all(inputs.map((input) => pool.hash(input)))).map(hex)).toEqual(wanted)
      } finally {
        await pool.close()
      }
    }
  })

  it('rejects a read that fails with the system error, and goes on working, on a thread or not', async () => {
    for (const threads of [1, 0]) {
      const pool = new HashPool(threads)
      const folder = await open(dir, 'r')
      const path = join(dir, 'one.bin')
      await writeFile(path, 'x')
      try {
        await expect(pool.readRange(folder.fd, 0, 1)).rejects.toMatchObject({ code: 'EISDIR', syscall: 'read' })
        const fh = await open(path, 'r')
        expect(hex((await pool.readRange(fh.fd, 0, 1)).digest)).toBe(sha256(Buffer.from('x')))
        await fh.close()
      } finally {
        await folder.close()
        await pool.close()
      }
    }
  })

  it('does not keep the process alive once idle', async () => {
    const module = fileURLToPath(new URL('../dist/src/util/hash-pool.js', import.meta.url))
    const script = `import { HashPool } from ${JSON.stringify(module)}
      import { openSync } from 'node:fs'
      const pool = new HashPool(2)
      const r = await pool.readRange(openSync(${JSON.stringify(join(dir, 'one.bin'))}, 'r'), 0, 1)
      console.log(r.bytes.length)`
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 })
    expect(stdout.trim()).toBe('1')
  })

  // was a bug: a thread started ahead of its first task kept the process alive (a cold `cairn build` hung)
  it('does not keep the process alive when warmed, whether its threads got a task or not', async () => {
    const module = fileURLToPath(new URL('../dist/src/util/hash-pool.js', import.meta.url))
    const script = `import { HashPool } from ${JSON.stringify(module)}
      import { openSync } from 'node:fs'
      const idle = new HashPool(2)
      idle.warm()
      const used = new HashPool(3)
      used.warm()
      const r = await used.readRange(openSync(${JSON.stringify(join(dir, 'one.bin'))}, 'r'), 0, 1)
      console.log(r.bytes.length)`
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 })
    expect(stdout.trim()).toBe('1')
  })
})

describe('importing through the pool', () => {
  it('gives the same CIDs as the in-memory layout for sizes around the chunk, alone or grouped', async () => {
    const sizes = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 5]
    const paths = await Promise.all(
      sizes.map(async (n, k) => {
        const p = join(dir, `size-${k}`)
        await writeFile(p, randomBytes(n))
        return p
      }),
    )
    const expected = await Promise.all(paths.map(async (p) => (await importBytes([await readAll(p)])).cid.toString()))
    const alone = await Promise.all(paths.map(async (p) => (await importFile(p)).cid.toString()))
    expect(alone).toEqual(expected)
    const files = await Promise.all(
      paths.map(async (p) => ({ path: p, label: p, expected: identityOf(await (await open(p)).stat({ bigint: true })) })),
    )
    for (const threads of [3, 0]) {
      const pool = new HashPool(threads)
      try {
        const grouped = await importFiles(files, undefined, { pool })
        expect(grouped.map((g) => g.cid.toString())).toEqual(expected)
      } finally {
        await pool.close()
      }
    }
  })

  it('is FILE_CHANGED when a small file changed since it was seen, and IO when it vanished', async () => {
    const p = join(dir, 'changing')
    await writeFile(p, 'one two three')
    const before = identityOf(await (await open(p)).stat({ bigint: true }))
    await truncate(p, 3)
    const changed = await importFiles([{ path: p, label: 'changing', expected: before }]).catch((e: unknown) => e)
    expect(isCairnError(changed, 'FILE_CHANGED')).toBe(true)
    await rm(p)
    const gone = await importFile(p, undefined, { label: 'gone', expected: before }).catch((e: unknown) => e)
    expect(isCairnError(gone, 'IO')).toBe(true)
    expect((gone as Error).message).toContain('gone')
  })

  it('groups small files up to a chunk or 64 files, a large file alone, each file once and in order', () => {
    const sizes = [...Array.from({ length: 300 }, () => 10), CHUNK_SIZE + 1, CHUNK_SIZE, 1, CHUNK_SIZE / 2, CHUNK_SIZE / 2 + 1]
    const groups = [...importGroups(sizes.length, (i) => sizes[i])]
    expect(groups.flat()).toEqual(sizes.map((_, i) => i))
    for (const g of groups) {
      expect(g.length).toBeGreaterThan(0)
      expect(g.length).toBeLessThanOrEqual(64)
      if (g.some((i) => sizes[i] > CHUNK_SIZE)) expect(g.length).toBe(1)
      else expect(g.reduce((n, i) => n + sizes[i], 0)).toBeLessThanOrEqual(CHUNK_SIZE)
    }
    // a group is full: the next file would pass a chunk's bytes or 64 files
    for (let k = 0; k + 1 < groups.length; k++) {
      const g = groups[k]
      const next = sizes[groups[k + 1][0]]
      if (g.length === 1 && sizes[g[0]] > CHUNK_SIZE) continue
      if (next > CHUNK_SIZE) continue
      expect(g.length === 64 || g.reduce((n, i) => n + sizes[i], 0) + next > CHUNK_SIZE).toBe(true)
    }
  })
})

async function readAll(path: string): Promise<Uint8Array> {
  const fh = await open(path)
  try {
    return await fh.readFile()
  } finally {
    await fh.close()
  }
}

describe('read-ahead places', () => {
  it('are handed out first come, first served, and never more than there are', async () => {
    const places = new Places(2)
    const order: number[] = []
    await places.take()
    await places.take()
    const third = places.take().then(() => order.push(3))
    const fourth = places.take().then(() => order.push(4))
    await new Promise((r) => setTimeout(r, 10))
    expect(order).toEqual([])
    places.give()
    await third
    expect(order).toEqual([3])
    places.give()
    await fourth
    expect(order).toEqual([3, 4])
  })

  it('bound the chunks in flight across many large files at once, which all complete', async () => {
    const pool = new HashPool(1) // 8 places for every file together
    const paths = await Promise.all(
      Array.from({ length: 12 }, async (_, k) => {
        const p = join(dir, `many-${k}`)
        await writeFile(p, randomBytes(3 * CHUNK_SIZE + k))
        return p
      }),
    )
    let inFlight = 0
    let peak = 0
    const readRange = pool.readRange.bind(pool)
    pool.readRange = async (...args) => {
      peak = Math.max(peak, ++inFlight)
      try {
        return await readRange(...args)
      } finally {
        inFlight--
      }
    }
    try {
      const got = await Promise.all(paths.map((p) => importFile(p, undefined, { pool })))
      const want = await Promise.all(paths.map(async (p) => (await importBytes([await readAll(p)])).cid.toString()))
      expect(got.map((g) => g.cid.toString())).toEqual(want)
      expect(peak).toBeLessThanOrEqual(8)
    } finally {
      await pool.close()
    }
  })
})
