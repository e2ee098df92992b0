/**
 * The store's in-memory index of blocks: a hash table over CID bytes. Every block set is found with
 * its place, across many growths of the table; a CID that differs in one byte (another codec, another
 * digest) is another block; setting a block again moves it.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { BlockLocations } from '../src/store/locations.js'

const cid = (code: number, seed: string): Uint8Array =>
  CID.createV1(code, Digest.create(0x12, createHash('sha256').update(seed).digest())).bytes

describe('BlockLocations', () => {
  it('finds each of 50,000 blocks at its place, and no other', () => {
    const locations = new BlockLocations()
    const n = 50_000
    for (let i = 0; i < n; i++) locations.set(cid(0x55, `b${i}`), `pack-${i % 7}`, i * 10, i + 1)
    expect(locations.size).toBe(n)
    for (let i = 0; i < n; i += 997) {
      expect(locations.get(cid(0x55, `b${i}`))).toEqual({ pack: `pack-${i % 7}`, offset: i * 10, length: i + 1 })
    }
    // the same digest under another codec (dag-pb, dag-json: a two-byte codec) is another block
    expect(locations.has(cid(0x70, 'b1'))).toBe(false)
    expect(locations.has(cid(0x0129, 'b1'))).toBe(false)
    expect(locations.get(cid(0x55, `b${n}`))).toBeUndefined()
    const all = new Set<string>()
    for (const k of locations.keys()) all.add(Buffer.from(k).toString('hex'))
    expect(all.size).toBe(n)
  })

  it('keeps CIDs of different lengths apart, and moves a block set again', () => {
    const locations = new BlockLocations()
    const raw = cid(0x55, 'x')
    const json = cid(0x0129, 'x')
    locations.set(raw, 'a', 0, 5)
    locations.set(json, 'a', 5, 7)
    expect(json.length).toBe(raw.length + 1)
    expect(locations.get(raw)).toEqual({ pack: 'a', offset: 0, length: 5 })
    expect(locations.get(json)).toEqual({ pack: 'a', offset: 5, length: 7 })
    locations.set(raw, 'b', 100, 5)
    expect(locations.get(raw)).toEqual({ pack: 'b', offset: 100, length: 5 })
    expect(locations.size).toBe(2)
    // the CID given is copied: changing the caller's bytes afterwards changes nothing
    const mine = cid(0x55, 'y')
    locations.set(mine, 'a', 9, 9)
    const copy = mine.slice()
    mine.fill(0)
    expect(locations.get(copy)).toEqual({ pack: 'a', offset: 9, length: 9 })
  })
})
