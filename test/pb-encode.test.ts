/**
 * Our dag-pb encoder against `@ipld/dag-pb`'s `encode`, the oracle: the same bytes for any links
 * cairn could write, and loud failures when the caller's name lengths or Tsizes are wrong.
 */
import * as dagPb from '@ipld/dag-pb'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { describe, expect, it } from 'vitest'
import { encodePbNode, pbNodeSize, varintLength, type PbLinks } from '../src/unixfs/pb-encode.js'

const utf8 = new TextEncoder()

interface Link {
  readonly Hash: CID
  readonly Name: string
  readonly Tsize: number
}

/** Columns for our encoder, with name lengths as Node measures them (a lone surrogate is 3 bytes). */
function columns(links: readonly Link[]): PbLinks {
  return {
    hashes: links.map((l) => l.Hash),
    names: links.map((l) => l.Name),
    nameLengths: links.map((l) => Buffer.byteLength(l.Name, 'utf8')),
    tsizes: links.map((l) => l.Tsize),
  }
}

const code = (min: number, max: number): fc.Arbitrary<string> => fc.integer({ min, max }).map((c) => String.fromCodePoint(c))
/** Characters of every UTF-8 length, NUL and controls, and lone surrogates (TextEncoder writes U+FFFD). */
const char = fc.oneof(
  { weight: 6, arbitrary: code(0x20, 0x7e) },
  { weight: 1, arbitrary: code(0x00, 0x7f) },
  { weight: 2, arbitrary: code(0x80, 0x7ff) },
  { weight: 2, arbitrary: code(0x800, 0xffff).filter((c) => c < '\uD800' || c > '\uDFFF') },
  { weight: 2, arbitrary: code(0x10000, 0x10ffff) },
  { weight: 1, arbitrary: code(0xd800, 0xdfff) },
)
const name = fc.oneof({ weight: 1, arbitrary: fc.constant('') }, { weight: 8, arbitrary: fc.string({ unit: char, maxLength: 80 }) })

const tsize = fc.oneof(
  fc.nat({ max: 300 }),
  fc.constantFrom(127, 128, 16_383, 16_384, 2 ** 21 - 1, 2 ** 21, 2 ** 28, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 35, 2 ** 49, 2 ** 53 - 1),
  fc.maxSafeNat(),
)

/** CIDv0, and CIDv1 of several codecs and multihashes (digests of 0 to 64 bytes, identity included). */
const cid = fc.oneof(
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((d) => CID.createV0(Digest.create(0x12, d))),
  fc
    .record({
      codec: fc.constantFrom(0x55, 0x70, 0x71, 0x0129, 0x0200),
      hash: fc.constantFrom(
        { code: 0x12, length: 32 },
        { code: 0x13, length: 64 },
        { code: 0xb220, length: 32 },
        { code: 0x00, length: -1 },
      ),
      bytes: fc.uint8Array({ maxLength: 64 }),
    })
    .map(({ codec, hash, bytes }) => {
      const digest = hash.length < 0 ? bytes : Uint8Array.from({ length: hash.length }, (_, i) => bytes[i % Math.max(1, bytes.length)] ?? i)
      return CID.createV1(codec, Digest.create(hash.code, digest))
    }),
)

const link = fc.record({ Hash: cid, Name: name, Tsize: tsize })
/** Links sorted as dag-pb requires: by the bytes TextEncoder makes of their names. */
const links = fc
  .array(link, { maxLength: 24 })
  .map((ls) => [...ls].sort((a, b) => Buffer.compare(utf8.encode(a.Name), utf8.encode(b.Name))))
const data = fc.option(fc.oneof(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ minLength: 120, maxLength: 400 })), { nil: undefined })

describe('encodePbNode', () => {
  it('writes the bytes @ipld/dag-pb encode writes (property, fixed seed)', () => {
    fc.assert(
      fc.property(links, data, (ls, d) => {
        const theirs = dagPb.encode(d === undefined ? { Links: ls } : { Data: d, Links: ls })
        const ours = encodePbNode(columns(ls), d)
        expect(ours).toBeInstanceOf(Uint8Array)
        expect(Buffer.from(ours).toString('hex')).toBe(Buffer.from(theirs).toString('hex'))
        expect(pbNodeSize(columns(ls), d?.length)).toBe(theirs.length)
      }),
      { seed: 499, numRuns: 3000 },
    )
  })

  it('writes a UnixFS directory and a file node of 1024 links as @ipld/dag-pb does', () => {
    const file = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    const dir = [
      { Hash: file, Name: 'a', Tsize: 5 },
      { Hash: file, Name: 'ß.txt', Tsize: 2 ** 40 },
      { Hash: file, Name: '😀', Tsize: 0 },
    ]
    const dirData = Uint8Array.of(0x08, 0x01)
    expect(encodePbNode(columns(dir), dirData)).toEqual(dagPb.encode({ Data: dirData, Links: dir }))
    const chunks = Array.from({ length: 1024 }, () => ({ Hash: file, Name: '', Tsize: 1_048_576 }))
    const fileData = new Uint8Array(4000).fill(7)
    expect(encodePbNode(columns(chunks), fileData)).toEqual(dagPb.encode({ Data: fileData, Links: chunks }))
  })

  it('writes an empty Data field, and no Data field at all when there is none', () => {
    expect(encodePbNode(columns([]), new Uint8Array(0))).toEqual(Uint8Array.of(0x0a, 0x00))
    expect(encodePbNode(columns([]))).toEqual(new Uint8Array(0))
  })

  it.each([
    ['ascii', 'abc', 2],
    ['ascii', 'abc', 4],
    ['two-byte', 'ß', 1],
    ['astral', '😀', 2],
    ['ending on a boundary', 'éa', 2],
  ])('rejects a wrong name length (%s %j said to be %i bytes)', (_, n, length) => {
    const links = { ...columns([{ Hash: CID.parse('bafkqaaa'), Name: n, Tsize: 1 }]), nameLengths: [length] }
    expect(() => encodePbNode(links)).toThrow(/bytes of UTF-8, not/)
  })

  it.each([-1, 2 ** 53, 1.5, Number.NaN])('rejects the Tsize %d, as @ipld/dag-pb does', (t) => {
    const ls = [{ Hash: CID.parse('bafkqaaa'), Name: 'a', Tsize: t }]
    expect(() => dagPb.encode({ Links: ls })).toThrow()
    expect(() => encodePbNode(columns(ls))).toThrow(/Tsize/)
  })

  it('measures varints like the bytes they become', () => {
    for (const n of [
      0,
      1,
      127,
      128,
      16_383,
      16_384,
      2 ** 21 - 1,
      2 ** 21,
      2 ** 28 - 1,
      2 ** 28,
      2 ** 31,
      2 ** 42,
      2 ** 49 - 1,
      2 ** 49,
      2 ** 53 - 1,
    ]) {
      // one link whose Tsize is n: the node's length grows by exactly the varint's bytes
      const ls = [{ Hash: CID.parse('bafkqaaa'), Name: '', Tsize: n }]
      expect(dagPb.encode({ Links: ls }).length - dagPb.encode({ Links: [{ ...ls[0], Tsize: 0 }] }).length + 1, `${n}`).toBe(
        varintLength(n),
      )
    }
  })
})
