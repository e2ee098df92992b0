import { readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cidFor, RAW } from '../src/cid.js'
import { SeenSet } from '../src/walk/seen-set.js'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-seen-test-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('SeenSet', () => {
  it('answers as a Set does, whatever its limits (keys of every length, runs merged)', () => {
    fc.assert(
      fc.property(
        fc.record({
          memoryKeys: fc.integer({ min: 1, max: 6 }),
          pageKeys: fc.integer({ min: 1, max: 5 }),
          fanIn: fc.integer({ min: 2, max: 4 }),
        }),
        // keys drawn from a small pool so that repeats are common; lengths around the record width
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 45 })), { maxLength: 300 }),
        (limits, ops) => {
          const seen = new SeenSet({ ...limits, dir })
          const model = new Set<string>()
          try {
            for (const [isAdd, n, len] of ops) {
              const key = Buffer.alloc(len, n)
              if (len > 0) key[0] = n
              const k = key.toString('hex')
              if (isAdd) {
                expect(seen.add(key)).toBe(!model.has(k))
                model.add(k)
              } else expect(seen.has(key)).toBe(model.has(k))
              expect(seen.size).toBe(model.size)
            }
            // every key added is found, every other one is not
            for (let n = 0; n <= 60; n++)
              for (const len of [0, 1, 36, 39, 40, 45]) {
                const key = Buffer.alloc(len, n)
                expect(seen.has(key)).toBe(model.has(key.toString('hex')))
              }
          } finally {
            seen.close()
          }
        },
      ),
      { seed: 19, numRuns: 200 },
    )
  })

  it('holds 5,000 CIDs in memory limited to 100 keys, in few runs, and leaves no file behind', () => {
    const seen = new SeenSet({ memoryKeys: 100, dir })
    const cids = Array.from({ length: 5_000 }, (_, i) => cidFor(RAW, Buffer.from(`block ${i}`)))
    for (const cid of cids) expect(seen.add(cid)).toBe(true)
    for (const cid of cids) expect(seen.add(cid)).toBe(false)
    expect(seen.has(cidFor(RAW, Buffer.from('block 5000')))).toBe(false)
    expect(seen.size).toBe(5_000)
    // 50 spills merged four at a time: a handful of runs, not 50
    expect(seen.runCount).toBeLessThan(12)
    // run files are unlinked as soon as they are open
    expect(readdirSync(dir).filter((n) => n.startsWith('.cairn-seen-'))).toEqual([])
    seen.close()
  })
})
