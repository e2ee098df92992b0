/** cidText and cidFromText against multiformats' own base32 encoder and parser, over CIDs of every version, codec and digest length. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { base32 } from 'multiformats/bases/base32'
import * as Digest from 'multiformats/hashes/digest'
import { CID, cidFromText, cidText } from '../src/cid.js'

describe('cidText', () => {
  it('equals toV1().toString() for any CIDv1 (property, fixed seed)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0x55, 0x70, 0x71, 0x0129, 0x0200),
        fc.constantFrom(0x00, 0x12, 0x13, 0xb220),
        fc.uint8Array({ minLength: 0, maxLength: 70 }),
        (codec, hash, digest) => {
          const cid = CID.createV1(codec, Digest.create(hash, digest))
          expect(cidText(cid)).toBe(cid.toString())
        },
      ),
      { seed: 499, numRuns: 500 },
    )
  })

  it('gives a CIDv0 the text of its CIDv1', () => {
    const v0 = CID.parse('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n')
    expect(cidText(v0)).toBe(v0.toV1().toString())
  })
})

describe('cidText on large identity CIDs', () => {
  it('encodes 200 KB of inline bytes without exhausting the stack', () => {
    const cid = CID.createV1(0x55, Digest.create(0x00, new Uint8Array(200_000).fill(7)))
    expect(cidText(cid)).toBe(cid.toString())
  })
})

/** What `parse` makes of `text`: the CID, or that it refused it. */
function parsed(parse: (text: string) => CID, text: string): string {
  try {
    return `cid ${parse(text).toString()}`
  } catch {
    return 'error'
  }
}

describe('cidFromText', () => {
  it('parses exactly what CID.parse parses, to the same CID (property, fixed seed)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0x55, 0x70, 0x71, 0x0129),
        fc.constantFrom(0x00, 0x12, 0x13),
        // sha2-256 digests are 32 bytes: the CIDs cairn makes, built without CID.decode
        fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.uint8Array({ minLength: 32, maxLength: 32 })),
        (codec, hash, digest) => {
          const cid = CID.createV1(codec, Digest.create(hash, digest))
          const got = cidFromText(cid.toString())
          expect(got.equals(cid)).toBe(true)
          expect(got.bytes).toEqual(cid.bytes)
          expect([got.version, got.code, got.multihash.code, got.multihash.size]).toEqual([1, codec, hash, digest.length])
          expect(got.multihash.digest).toEqual(cid.multihash.digest)
          expect(got.multihash.bytes).toEqual(cid.multihash.bytes)
          expect(got.toString()).toBe(cid.toString())
        },
      ),
      { seed: 499, numRuns: 300 },
    )
  })

  it('refuses what CID.parse refuses: bad characters, leftover characters, non-zero padding bits, a prefixed CIDv0', () => {
    const text = CID.parse('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n').toV1().toString()
    // a CIDv0's bytes written as base32 with the "b" prefix
    const v0AsBase32 = base32.encode(CID.parse('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n').bytes)
    const cases = [
      text,
      text + 'a',
      text + 'aa',
      text.slice(0, -1) + 'b', // padding bits set
      text.toUpperCase(),
      text.slice(0, 10) + '1' + text.slice(11),
      text.slice(0, 10) + 'é' + text.slice(11),
      'b',
      '',
      v0AsBase32,
      'QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n',
      'zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA',
    ]
    for (const t of cases) expect(parsed(cidFromText, t), t).toBe(parsed(CID.parse, t))
  })
})
