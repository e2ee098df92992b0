/** cidText against multiformats' own base32 encoder, over CIDs of every version, codec and digest length. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import * as Digest from 'multiformats/hashes/digest'
import { CID, cidText } from '../src/cid.js'

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
