import { createCipheriv, createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { CarIndexer } from '@ipld/car/indexer'
import { CarReader } from '@ipld/car/reader'
import { CarWriter } from '@ipld/car/writer'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { CAREncoderStream, createDirectoryEncoderStream, createFileEncoderStream } from 'ipfs-car'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { identity } from 'multiformats/hashes/identity'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { blockLinks, checkBlock } from '../src/car/block.js'
import { verifyCar, type CarProgress, type CarReport } from '../src/car/verify.js'
import { CairnError } from '../src/errors.js'

const FIXTURES = new URL('../../shared/fixtures/gateway-conformance/', import.meta.url)
const fixture = (file: string): string => fileURLToPath(new URL(file, FIXTURES))

// ---------------------------------------------------------------------------------------------------------
// Helpers

interface Block {
  cid: CID
  bytes: Uint8Array
}

/** Deterministic pseudo-random bytes (AES-CTR keystream of a seed): reproducible "random files". */
function pseudoRandom(seed: string, length: number): Uint8Array {
  const key = createHash('sha256').update(seed).digest()
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  return new Uint8Array(cipher.update(Buffer.alloc(length)))
}

async function* chunks(bytes: Uint8Array, size = bytes.length || 1): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size)
}

async function rawBlock(bytes: Uint8Array): Promise<Block> {
  return { cid: CID.create(1, raw.code, await sha256.digest(bytes)), bytes }
}

async function cborBlock(value: unknown): Promise<Block> {
  const bytes = dagCbor.encode(value)
  return { cid: CID.create(1, dagCbor.code, await sha256.digest(bytes)), bytes }
}

/** A CARv1 written by @ipld/car's writer, not by cairn. */
async function carBytes(roots: CID[], blocks: Iterable<Block>): Promise<Uint8Array> {
  const { writer, out } = CarWriter.create(roots)
  const parts: Uint8Array[] = []
  const collected = (async () => {
    for await (const part of out) parts.push(part)
  })()
  for (const block of blocks) await writer.put(block)
  await writer.close()
  await collected
  return Buffer.concat(parts)
}

/** Every block of a CAR with the offsets of its section and data, read by @ipld/car's indexer. */
async function indexCar(bytes: Uint8Array) {
  const indexer = await CarIndexer.fromBytes(bytes)
  const index = []
  for await (const entry of indexer) index.push(entry)
  return index
}

async function blocksOf(file: string): Promise<{ roots: CID[]; blocks: Block[] }> {
  const reader = await CarReader.fromBytes(await readFile(file))
  const blocks: Block[] = []
  for await (const block of reader.blocks()) blocks.push(block)
  return { roots: await reader.getRoots(), blocks }
}

/** The CAR `ipfs-car`'s JS API makes for some files, and its root (the encoder's final block). */
async function ipfsCarPack(
  files: { name: string; bytes: Uint8Array }[],
  wrap: boolean,
): Promise<{ car: Uint8Array; root: CID; blocks: number }> {
  const fileLikes = files.map((f) => ({ name: f.name, stream: () => new Blob([f.bytes]).stream() }))
  const encoder = new CAREncoderStream([])
  let blocks = 0
  const stream = (wrap ? createDirectoryEncoderStream(fileLikes) : createFileEncoderStream(fileLikes[0]))
    .pipeThrough(
      new TransformStream({
        transform(block, controller) {
          blocks++
          controller.enqueue(block)
        },
      }),
    )
    .pipeThrough(encoder)
  const parts: Uint8Array[] = []
  for await (const part of stream as unknown as AsyncIterable<Uint8Array>) parts.push(part)
  const root = CID.asCID(encoder.finalBlock?.cid)
  if (root === null) throw new Error('ipfs-car produced no blocks')
  return { car: Buffer.concat(parts), root, blocks }
}

async function badCar(promise: Promise<unknown>): Promise<CairnError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(CairnError)
  expect((error as CairnError).code).toBe('BAD_CAR')
  return error as CairnError
}

function expectNotOk(report: CarReport): void {
  expect(report.ok).toBe(false)
  expect(report.problems.length).toBeGreaterThan(0)
}

let tmp: string
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'cairn-car-verify-'))
})
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------------------
// The gateway-conformance CARs (made by Kubo): expectations table, js-car fixtures-expectations style.
// Roots and facts come from ../shared/fixtures/gateway-conformance/README.md and the per-folder recipes.

interface FixtureExpectation {
  readonly file: string
  readonly root: string
  /** Blocks as the README states them, where it does. */
  readonly blocks?: number
  /** Expected problems; empty means the CAR verifies. */
  readonly problems: readonly { kind: 'missing' | 'corrupt' | 'truncated'; cid: string }[]
}

// Recipe: `car filter --inverse` removed `ipfs dag get $CID | jq '.Links[1].Hash'` from the 3-leaf file.
const MISSING_LEAF = 'QmSNLTo6Wv9dfroVaw7MFYjLqf9ho7PKrgsjdzYDtv8h1W'

const fixtureExpectations: readonly FixtureExpectation[] = [
  {
    file: 'trustless_gateway_car/dir-with-duplicate-files.car',
    root: 'bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy',
    blocks: 9,
    problems: [],
  },
  {
    file: 'path_gateway_unixfs/dir-with-files.car',
    root: 'bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy',
    blocks: 9,
    problems: [],
  },
  {
    file: 'trustless_gateway_car/subdir-with-mixed-block-files.car',
    root: 'bafybeidh6k2vzukelqtrjsmd4p52cpmltd2ufqrdtdg6yigi73in672fwu',
    problems: [],
  },
  {
    file: 'trustless_gateway_car/subdir-with-two-single-block-files.car',
    root: 'bafybeietjm63oynimmv5yyqay33nui4y4wx6u3peezwetxgiwvfmelutzu',
    problems: [],
  },
  {
    file: 'trustless_gateway_car/single-layer-hamt-with-multi-block-files.car',
    root: 'bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i',
    blocks: 243,
    problems: [],
  },
  {
    file: 'trustless_gateway_car/dir-with-dag-cbor-with-links.car',
    root: 'bafybeia264q44a3kmfc2otctzu4egp2k235o3t7mslz2yjraymp4nv6asi',
    problems: [],
  },
  {
    file: 'trustless_gateway_car/file-3k-and-3-blocks-missing-block.car',
    root: 'QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk',
    blocks: 3,
    problems: [{ kind: 'missing', cid: MISSING_LEAF }],
  },
  {
    file: 'path_gateway_dag/dag-json-traversal.car',
    root: 'baguqeeram5ujjqrwheyaty3w5gdsmoz6vittchvhk723jjqxk7hakxkd47xq',
    blocks: 3,
    problems: [],
  },
  {
    file: 'path_gateway_dag/dag-cbor-traversal.car',
    root: 'bafyreibs4utpgbn7uqegmd2goqz4bkyflre2ek2iwv743fhvylwi4zeeim',
    blocks: 3,
    problems: [],
  },
  { file: 'path_gateway_dag/dag-pb.car', root: 'bafybeiegxwlgmoh2cny7qlolykdf7aq7g6dlommarldrbm7c4hbckhfcke', problems: [] },
  { file: 'path_gateway_dag/gateway-json-cbor.car', root: 'bafybeiafyvqlazbbbtjnn6how5d6h6l6rxbqc4qgpbmteaiskjrffmyy4a', problems: [] },
  {
    file: 'path_gateway_unixfs/dir-with-percent-encoded-filename.car',
    root: 'bafybeig675grnxcmshiuzdaz2xalm6ef4thxxds6o6ypakpghm5kghpc34',
    problems: [],
  },
  { file: 'path_gateway_unixfs/symlink.car', root: 'QmWvY6FaqFMS89YAQ9NAPjVP4WZKA1qbHbicc9HeSKQTgt', problems: [] },
  { file: 'path_gateway_tar/outside-root.car', root: 'bafybeicaj7kvxpcv4neaqzwhrqqmdstu4dhrwfpknrgebq6nzcecfucvyu', problems: [] },
  { file: 'path_gateway_tar/inside-root.car', root: 'bafybeibfevfxlvxp5vxobr5oapczpf7resxnleb7tkqmdorc4gl5cdva3y', problems: [] },
]

describe('verifyCar on the gateway-conformance CARs', () => {
  it.each(fixtureExpectations)('$file', async ({ file, root, blocks, problems }) => {
    const path = fixture(file)
    const bytes = await readFile(path)
    const report = await verifyCar(path)
    expect(report.roots.map(String)).toEqual([root])
    expect(report.checkedRoots.map(String)).toEqual([root])
    expect(report.blocks).toBe((await indexCar(bytes)).length)
    if (blocks !== undefined) expect(report.blocks).toBe(blocks)
    expect(report.bytes).toBe(bytes.length)
    expect(report.problems.map(({ kind, cid }) => ({ kind, cid }))).toEqual(problems)
    expect(report.ok).toBe(problems.length === 0)
  })

  it('covers every CAR in the fixture folder', async () => {
    const { readdir } = await import('node:fs/promises')
    const found: string[] = []
    for (const dir of await readdir(FIXTURES, { withFileTypes: true })) {
      if (!dir.isDirectory()) continue
      for (const f of await readdir(new URL(`${dir.name}/`, FIXTURES))) if (f.endsWith('.car')) found.push(`${dir.name}/${f}`)
    }
    expect(found.sort()).toEqual(fixtureExpectations.map((e) => e.file).sort())
  })

  describe('file-3k-and-3-blocks-missing-block.car', () => {
    const file = fixture('trustless_gateway_car/file-3k-and-3-blocks-missing-block.car')

    it('names the leaf the recipe removed, Links[1] of the root', async () => {
      const { roots, blocks } = await blocksOf(file)
      const root = blocks.find((b) => b.cid.equals(roots[0]))
      expect(root).toBeDefined()
      const links = dagPb.decode(root!.bytes).Links.map((l) => l.Hash.toString())
      expect(links[1]).toBe(MISSING_LEAF)
      const report = await verifyCar(file)
      expect(report.problems).toEqual([
        { kind: 'missing', cid: MISSING_LEAF, message: `Block ${MISSING_LEAF} is missing (linked from ${roots[0]})` },
      ])
    })

    it('verifies the sub-DAGs that are complete (--root of the first and third leaf)', async () => {
      const { roots, blocks } = await blocksOf(file)
      const links = dagPb.decode(blocks.find((b) => b.cid.equals(roots[0]))!.bytes).Links
      for (const i of [0, 2]) {
        const report = await verifyCar(file, { root: CID.asCID(links[i].Hash)! })
        expect(report.ok).toBe(true)
        expect(report.checkedRoots.map(String)).toEqual([links[i].Hash.toString()])
        expect(report.roots.map(String)).toEqual([roots[0].toString()])
      }
    })

    it('reports a --root that is not in the CAR as missing', async () => {
      const report = await verifyCar(file, { root: CID.parse(MISSING_LEAF) })
      expect(report.ok).toBe(false)
      expect(report.problems).toEqual([{ kind: 'missing', cid: MISSING_LEAF, message: `Root ${MISSING_LEAF} is not in CAR file ${file}` }])
    })
  })

  it('checks a sub-DAG of a dag-json chain given as --root', async () => {
    const file = fixture('path_gateway_dag/dag-json-traversal.car')
    const { roots, blocks } = await blocksOf(file)
    const child = blockLinks(roots[0], blocks.find((b) => b.cid.equals(roots[0]))!.bytes)[0]
    const report = await verifyCar(file, { root: child })
    expect(report.ok).toBe(true)
    expect(report.checkedRoots).toEqual([child])
  })
})

// ---------------------------------------------------------------------------------------------------------
// CARs made by ipfs-car (an independent UnixFS importer and CAR writer)

describe('verifyCar on CARs made by ipfs-car', () => {
  const sizes = [0, 1, 1000, 262_144, 1_048_576, 1_048_577, 3 * 1_048_576 + 12_345]

  it.each(sizes)('a random file of %i bytes, root given with --root (ipfs-car writes no header root to a stream)', async (size) => {
    const { car, root, blocks } = await ipfsCarPack([{ name: 'f.bin', bytes: pseudoRandom(`file ${size}`, size) }], false)
    // Odd chunk sizes put section boundaries everywhere relative to chunk boundaries.
    for (const chunkSize of [car.length, 65_536, 4097]) {
      const report = await verifyCar(chunks(car, chunkSize), { root })
      expect(report).toMatchObject({ ok: true, roots: [], blocks, bytes: car.length, problems: [] })
      expect(report.checkedRoots.map(String)).toEqual([root.toString()])
    }
  })

  it('a directory of random files', async () => {
    const files = Array.from({ length: 12 }, (_, i) => ({ name: `dir/sub${i % 3}/f${i}.bin`, bytes: pseudoRandom(`dir ${i}`, i * 97_531) }))
    const { car, root, blocks } = await ipfsCarPack(files, true)
    const report = await verifyCar(chunks(car, 100_000), { root })
    expect(report).toMatchObject({ ok: true, blocks, problems: [] })
  })

  it('a directory packed by the ipfs-car CLI, root read from the CAR header', async () => {
    const dir = join(tmp, 'cli-input')
    await mkdir(join(dir, 'nested'), { recursive: true })
    await writeFile(join(dir, 'a.bin'), pseudoRandom('cli a', 2_500_000))
    await writeFile(join(dir, 'nested', 'b.bin'), pseudoRandom('cli b', 1234))
    await writeFile(join(dir, 'empty.txt'), '')
    const out = join(tmp, 'cli.car')
    const bin = fileURLToPath(new URL('../node_modules/ipfs-car/bin.js', import.meta.url))
    const { stdout } = await promisify(execFile)(process.execPath, [bin, 'pack', dir, '--output', out])
    const printed = stdout.trim()
    const report = await verifyCar(out)
    expect(report.ok).toBe(true)
    expect(report.roots.map(String)).toEqual([printed])
    expect(report.blocks).toBe((await indexCar(await readFile(out))).length)
  })
})

// ---------------------------------------------------------------------------------------------------------
// Damage: one-byte corruption, truncation, things that are not CARs

describe('verifyCar on damaged CARs', () => {
  const small = fixture('trustless_gateway_car/dir-with-duplicate-files.car')

  it('reports a flipped byte in each block as that block corrupt, and only that', async () => {
    const bytes = await readFile(small)
    const index = await indexCar(bytes)
    for (const { cid, blockOffset, blockLength } of index) {
      for (const at of [blockOffset, blockOffset + (blockLength >> 1), blockOffset + blockLength - 1]) {
        const damaged = Uint8Array.from(bytes)
        damaged[at] ^= 0x01
        const report = await verifyCar(chunks(damaged, 64))
        expect(report.ok).toBe(false)
        expect(report.problems).toHaveLength(1)
        expect(report.problems[0]).toMatchObject({ kind: 'corrupt', cid: cid.toString() })
        expect(report.problems[0].message).toMatch(
          new RegExp(`^Block ${cid} does not match its CID \\(sha2-256 of the bytes is [0-9a-f]{64}, expected [0-9a-f]{64}\\)$`),
        )
      }
    }
  })

  it('reports corrupt blocks of 1 MiB in a file, all of them, in file order', async () => {
    const { car, root } = await ipfsCarPack([{ name: 'f.bin', bytes: pseudoRandom('big', 4 * 1_048_576 + 5) }], false)
    const index = await indexCar(car)
    expect(index.length).toBe(6)
    const damaged = Uint8Array.from(car)
    const leaves = index.filter((e) => e.cid.code === raw.code)
    for (const leaf of leaves.slice(1, 3)) damaged[leaf.blockOffset + 1000] ^= 0x80
    const path = join(tmp, 'two-corrupt.car')
    await writeFile(path, damaged)
    const report = await verifyCar(path, { root })
    expect(report.problems.map((p) => [p.kind, p.cid])).toEqual(leaves.slice(1, 3).map((l) => ['corrupt', l.cid.toString()]))
  })

  it('is never ok after any one-byte change anywhere in the file', async () => {
    const bytes = await readFile(small)
    for (let at = 0; at < bytes.length; at++) {
      for (const mask of [0x01, 0x80]) {
        const damaged = Uint8Array.from(bytes)
        damaged[at] ^= mask
        const outcome = await verifyCar(chunks(damaged, [1, 7, 300, damaged.length][at % 4])).then(
          (report) => report,
          (e: unknown) => e,
        )
        if (outcome instanceof CairnError) {
          expect(outcome.code, `byte ${at}`).toBe('BAD_CAR')
        } else {
          expect((outcome as CarReport).ok, `byte ${at} ^ ${mask}`).toBe(false)
        }
      }
    }
  })

  it('reports a changed CID inside a section (never ok)', async () => {
    const bytes = await readFile(small)
    const index = await indexCar(bytes)
    const target = index[3]
    const damaged = Uint8Array.from(bytes)
    damaged[target.blockOffset - 1] ^= 0x01 // last byte of the CID's digest
    const report = await verifyCar(chunks(damaged))
    expect(report.ok).toBe(false)
    expect(report.problems[0].kind).toBe('corrupt')
    expect(report.problems[0].cid).not.toBe(target.cid.toString())
    // The block under its real CID is gone: the DAG walk says so too.
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'missing', cid: target.cid.toString() }))
  })

  it('reports truncation at every offset past the header, never ok', async () => {
    const bytes = await readFile(small)
    const index = await indexCar(bytes)
    const headerEnd = index[0].offset
    const sectionStarts = new Set(index.map((e) => e.offset))
    for (let cut = 0; cut < bytes.length; cut++) {
      const prefix = bytes.subarray(0, cut)
      if (cut < headerEnd) {
        await badCar(verifyCar(chunks(prefix, 50)))
        continue
      }
      const report = await verifyCar(chunks(prefix, 50))
      expectNotOk(report)
      expect(report.bytes).toBe(cut)
      if (sectionStarts.has(cut)) {
        expect(report.problems[0].kind).toBe('missing')
      } else {
        const whole = index.filter((e) => e.offset + e.length <= cut).length
        expect(report.problems[0]).toEqual({
          kind: 'truncated',
          message: expect.stringMatching(new RegExp(`^CAR file CAR stream is truncated after ${whole} blocks \\(.+\\)$`)),
        })
      }
    }
  })

  it('reports truncation of a file with 1 MiB blocks at several offsets', async () => {
    const { car } = await ipfsCarPack([{ name: 'f.bin', bytes: pseudoRandom('trunc', 3 * 1_048_576) }], false)
    for (const cut of [100, 1_048_576, 1_048_700, 2_500_000, car.length - 1]) {
      const path = join(tmp, `truncated-${cut}.car`)
      await writeFile(path, car.subarray(0, cut))
      const report = await verifyCar(path)
      expectNotOk(report)
      expect(report.problems[0].kind).toBe('truncated')
      expect(report.problems[0].message).toMatch(
        new RegExp(
          `^CAR file ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is truncated after \\d+ blocks \\(the section at byte \\d+ needs \\d+ bytes, only \\d+ remain\\)$`,
        ),
      )
    }
  })

  it('reports malformed sections', async () => {
    const good = await rawBlock(new TextEncoder().encode('hello'))
    const car = await carBytes([good.cid], [good])
    const cases: [string, Uint8Array, RegExp][] = [
      ['zero-length section', Buffer.concat([car, Uint8Array.of(0)]), /has zero length/],
      ['huge section length', Buffer.concat([car, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f)]), /claims \d+ bytes, more than/],
      ['CIDv2 in a section', Buffer.concat([car, Uint8Array.of(4, 2, 0x55, 0, 0)]), /does not start with a valid CID/],
      ['overlong varint', Buffer.concat([car, new Uint8Array(10).fill(0x80)]), /not a valid varint/],
    ]
    for (const [what, bytes, message] of cases) {
      const report = await verifyCar(chunks(bytes), { name: 'x.car' })
      expect(report.ok, what).toBe(false)
      expect(report.problems[0].kind, what).toBe('corrupt')
      expect(report.problems[0].message, what).toMatch(/^CAR file x\.car is malformed after 1 blocks \(/)
      expect(report.problems[0].message, what).toMatch(message)
    }
  })

  it('rejects an empty file, a text file and random bytes as BAD_CAR, naming the file', async () => {
    const empty = join(tmp, 'empty.car')
    await writeFile(empty, '')
    const text = fixture('README.md')
    const short = join(tmp, 'hello.txt')
    await writeFile(short, 'hello world\n')
    const noise = join(tmp, 'noise.car')
    await writeFile(noise, pseudoRandom('noise', 5000))
    expect((await badCar(verifyCar(empty))).message).toBe(`${empty} is empty (0 bytes), not a CAR file`)
    for (const file of [text, short, noise]) {
      const error = await badCar(verifyCar(file))
      expect(error.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not a CAR file: `))
      expect(error.subject).toBe(file)
    }
  })

  it('rejects malformed headers and unknown versions as BAD_CAR', async () => {
    const header = (value: unknown): Uint8Array => {
      const body = dagCbor.encode(value)
      return Buffer.concat([Uint8Array.of(body.length), body])
    }
    const cases: [unknown, string][] = [
      [{ version: 3, roots: [] }, 'Invalid CAR version in x.car: 3 (expected 1 or 2)'],
      [{ roots: [] }, 'x.car is not a CAR file: its header has no version'],
      [{ version: 1 }, 'Invalid CAR header in x.car: roots must be a list of CIDs'],
      [{ version: 1, roots: ['bafy'] }, 'Invalid CAR header in x.car: roots must be a list of CIDs'],
      [[1, 2], 'x.car is not a CAR file: its header is not a map'],
      [{ version: 2, roots: [] }, 'x.car is not a CAR file: invalid CARv2 pragma'],
    ]
    for (const [value, message] of cases) {
      expect((await badCar(verifyCar(chunks(header(value)), { name: 'x.car' }))).message).toBe(message)
    }
    expect((await badCar(verifyCar(chunks(Uint8Array.of(0)), { name: 'x.car' }))).message).toBe(
      'x.car is not a CAR file: its header has zero length',
    )
  })

  it('wraps read errors as IO', async () => {
    await expect(verifyCar(join(tmp, 'does-not-exist.car'))).rejects.toMatchObject({
      code: 'IO',
      message: expect.stringContaining('ENOENT'),
    })
    await expect(verifyCar(tmp)).rejects.toMatchObject({ code: 'IO', message: expect.stringContaining('EISDIR') })
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Uint8Array.of(0x0a)
      throw new Error('connection reset')
    }
    await expect(verifyCar(failing())).rejects.toMatchObject({ code: 'IO', message: 'Cannot read CAR stream: connection reset' })
  })
})

// ---------------------------------------------------------------------------------------------------------
// DAG completeness and the rest of the report

describe('verifyCar DAG walk', () => {
  it('accepts blocks no root reaches, duplicate blocks and identity links without a block', async () => {
    const leaf = await rawBlock(new TextEncoder().encode('leaf'))
    const stray = await rawBlock(new TextEncoder().encode('stray'))
    const inline = CID.create(1, raw.code, identity.digest(new TextEncoder().encode('inline')))
    const root = await cborBlock({ leaf: leaf.cid, inline })
    const report = await verifyCar(chunks(await carBytes([root.cid], [root, leaf, stray, leaf])))
    expect(report).toMatchObject({ ok: true, blocks: 4, problems: [] })
  })

  it('walks into identity CIDs: an inline dag-cbor node linking to a missing block', async () => {
    const absent = await rawBlock(new TextEncoder().encode('absent'))
    const inlineNode = CID.create(1, dagCbor.code, identity.digest(dagCbor.encode({ next: absent.cid })))
    const root = await cborBlock([inlineNode])
    const report = await verifyCar(chunks(await carBytes([root.cid], [root])))
    expect(report.problems).toEqual([
      { kind: 'missing', cid: absent.cid.toString(), message: `Block ${absent.cid} is missing (linked from ${inlineNode})` },
    ])
  })

  it('reports the first missing block in depth-first link order, once per incomplete root', async () => {
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((s) => rawBlock(new TextEncoder().encode(s))))
    const inner = await cborBlock({ b: b.cid, c: c.cid })
    const root1 = await cborBlock({ a: a.cid, z: inner.cid })
    const root2 = await cborBlock([c.cid])
    const report = await verifyCar(chunks(await carBytes([root1.cid, root2.cid], [root1, a, inner, root2])))
    expect(report.problems).toEqual([
      { kind: 'missing', cid: b.cid.toString(), message: `Block ${b.cid} is missing (linked from ${inner.cid})` },
      { kind: 'missing', cid: c.cid.toString(), message: `Block ${c.cid} is missing (linked from ${root2.cid})` },
    ])
  })

  it('does not call a corrupt block missing as well', async () => {
    const leaf = await rawBlock(new TextEncoder().encode('leaf'))
    const root = await cborBlock([leaf.cid])
    const report = await verifyCar(chunks(await carBytes([root.cid], [root, { cid: leaf.cid, bytes: new TextEncoder().encode('leaf!') }])))
    expect(report.problems.map((p) => [p.kind, p.cid])).toEqual([['corrupt', leaf.cid.toString()]])
  })

  it('treats a CIDv0 link and a CIDv1 dag-pb block with the same multihash as the same block', async () => {
    const leafBytes = dagPb.encode({ Data: new Uint8Array([8, 1]), Links: [] })
    const v0 = CID.createV0(await sha256.digest(leafBytes))
    const root = await cborBlock({ v0 })
    const report = await verifyCar(chunks(await carBytes([root.cid], [root, { cid: v0.toV1(), bytes: leafBytes }])))
    expect(report.ok).toBe(true)
  })

  it('reads a CARv2 (checked readable by @ipld/car first)', async () => {
    const leaf = await rawBlock(new TextEncoder().encode('in a v2'))
    const v1 = await carBytes([leaf.cid], [leaf])
    const pragma = Buffer.concat([Uint8Array.of(0x0a), dagCbor.encode({ version: 2 })])
    const header = Buffer.alloc(40)
    const dataOffset = pragma.length + header.length + 7 // padding before the data is allowed
    header.writeBigUInt64LE(BigInt(dataOffset), 16)
    header.writeBigUInt64LE(BigInt(v1.length), 24)
    header.writeBigUInt64LE(BigInt(dataOffset + v1.length), 32)
    const index = Uint8Array.of(1, 2, 3, 4, 5) // not a valid index: must not be read as sections
    const v2 = Buffer.concat([pragma, header, new Uint8Array(7), v1, index])
    const reader = await CarReader.fromBytes(v2)
    expect(reader.version).toBe(2)
    expect((await reader.getRoots()).map(String)).toEqual([leaf.cid.toString()])

    const report = await verifyCar(chunks(v2, 13))
    expect(report).toMatchObject({ ok: true, blocks: 1, problems: [] })
    expect(report.roots.map(String)).toEqual([leaf.cid.toString()])

    const cut = await verifyCar(chunks(v2.subarray(0, dataOffset + v1.length - 2)))
    expect(cut.problems[0].kind).toBe('truncated')
    const inner = await badCar(
      verifyCar(chunks(Buffer.concat([pragma, header, new Uint8Array(7), Uint8Array.of(0x0a), dagCbor.encode({ version: 2 })]))),
    )
    expect(inner.message).toBe('Invalid CAR version inside CARv2 CAR stream: 2 (expected 1)')
  })

  it('reports progress, ending with the totals', async () => {
    const { car, root } = await ipfsCarPack([{ name: 'f.bin', bytes: pseudoRandom('progress', 2 * 1_048_576) }], false)
    const seen: CarProgress[] = []
    const report = await verifyCar(chunks(car, 65_536), { root, onProgress: (p) => seen.push(p) })
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.at(-1)).toEqual({ blocks: report.blocks, bytes: report.bytes })
    for (let i = 1; i < seen.length; i++) expect(seen[i].bytes).toBeGreaterThanOrEqual(seen[i - 1].bytes)
  })
})

// ---------------------------------------------------------------------------------------------------------
// A path is read into two reused buffers and its large blocks hashed on the hashing threads; a stream is
// read and hashed as it always was. Both must give the same report for the same bytes.

describe('verifyCar of a path (reused read buffers, hashing threads) reports what a stream does', () => {
  const plain = (r: CarReport) => ({
    ok: r.ok,
    roots: r.roots.map(String),
    checkedRoots: r.checkedRoots.map(String),
    blocks: r.blocks,
    bytes: r.bytes,
    problems: r.problems,
  })

  /** Writes `bytes` to a file, verifies it with reads of each size, and expects the stream's report every time. */
  async function sameAsStream(name: string, bytes: Uint8Array, readSizes: number[], root?: CID): Promise<ReturnType<typeof plain>> {
    const path = join(tmp, name)
    await writeFile(path, bytes)
    const expected = plain(await verifyCar(chunks(bytes, 65_536), { name: path, root }))
    for (const readBytes of readSizes) {
      expect(plain(await verifyCar(path, { root, readBytes })), `reads of ${readBytes} bytes`).toEqual(expected)
    }
    return expected
  }

  // Each size class: hashed on the main thread (< 64 KiB), on a thread in one pool buffer (64 KiB to
  // 1 MiB), in several (> 1 MiB), larger than a read; a dag-pb node (CIDv0) of more than 64 KiB whose
  // links are read while its hash is pending, under a dag-cbor root.
  const sizes = [5, 65_535, 65_536, 200_000, 3_000, 1_048_576, 1_048_577, 2_500_000, 70_000, 10]
  let leaves: Block[]
  let node: Block
  let root: Block
  let car: Uint8Array
  beforeAll(async () => {
    leaves = await Promise.all(sizes.map((n, i) => rawBlock(pseudoRandom(`leaf ${i}`, n))))
    const nodeBytes = dagPb.encode({
      Data: pseudoRandom('node data', 80_000),
      Links: leaves.map((leaf) => ({ Hash: leaf.cid, Tsize: leaf.bytes.length })),
    })
    node = { cid: CID.createV0(await sha256.digest(nodeBytes)), bytes: nodeBytes }
    root = await cborBlock({ node: node.cid })
    car = await carBytes([root.cid], [root, ...leaves.slice(0, 5), node, ...leaves.slice(5)])
  })
  const readSizes = [1_000, 65_536, 99_991, 1_048_576, 4 << 20]

  it('an intact CAR, with reads that split every kind of section', async () => {
    const report = await sameAsStream('mixed.car', car, readSizes)
    expect(report).toMatchObject({ ok: true, blocks: sizes.length + 2, bytes: car.length })
  })

  it('a small CAR read a few bytes at a time (header, varints and CIDs split)', async () => {
    const bytes = await readFile(fixture('trustless_gateway_car/dir-with-duplicate-files.car'))
    expect(await sameAsStream('tiny-reads.car', bytes, [1, 2, 3, 7, 64])).toMatchObject({ ok: true, blocks: 9 })
  })

  it('corrupt blocks of every size, each reported in file order', async () => {
    const index = await indexCar(car)
    const damaged = Uint8Array.from(car)
    const hit = [1, 2, 3, 6, 7, 8, 9] // blocks of 5, 65,535 and 65,536 bytes, the dag-pb node, 1 MiB, 1 MiB + 1 and 2.5 MB
    for (const i of hit) damaged[index[i].blockOffset + index[i].blockLength - 1] ^= 0x04
    const report = await sameAsStream('mixed-corrupt.car', damaged, readSizes)
    expect(report.problems.map((p) => [p.kind, p.cid])).toEqual(hit.map((i) => ['corrupt', index[i].cid.toString()]))
    expect(report.problems[3].message).toMatch(/^Block Qm\w+ does not match its CID \(sha2-256 of the bytes is [0-9a-f]{64}, expected/)
  })

  it('a large dag-pb block that hashes right but does not decode: its decoder error, not a hash error', async () => {
    const garbage = pseudoRandom('not dag-pb', 100_000)
    const bad: Block = { cid: CID.create(1, dagPb.code, await sha256.digest(garbage)), bytes: garbage }
    const after = await rawBlock(pseudoRandom('after', 100_000))
    const report = await sameAsStream('undecodable.car', await carBytes([bad.cid], [bad, after]), [1_000, 4 << 20])
    expect(report.problems).toEqual([
      { kind: 'corrupt', cid: bad.cid.toString(), message: expect.stringMatching(/^Block \w+ does not decode as dag-pb: /) },
    ])
  })

  it('truncated inside blocks of each size, and a CARv2', async () => {
    const index = await indexCar(car)
    for (const i of [3, 6, 8, 9]) {
      const cut = index[i].blockOffset + (index[i].blockLength >> 1)
      const report = await sameAsStream(`cut-${i}.car`, car.subarray(0, cut), [1_000, 99_991, 4 << 20])
      expect(report.problems[0].kind).toBe('truncated')
      expect(report.blocks).toBe(i)
    }
    const pragma = Buffer.concat([Uint8Array.of(0x0a), dagCbor.encode({ version: 2 })])
    const header = Buffer.alloc(40)
    header.writeBigUInt64LE(BigInt(pragma.length + 40), 16)
    header.writeBigUInt64LE(BigInt(car.length), 24)
    const v2 = Buffer.concat([pragma, header, car, Uint8Array.of(1, 2, 3)])
    expect(await sameAsStream('mixed-v2.car', v2, [1_000, 99_991, 4 << 20])).toMatchObject({ ok: true, bytes: v2.length - 3 })
  })

  it.skipIf(process.platform === 'win32')('a named pipe, which cannot seek (`verify --car <(curl …)`)', async () => {
    const fifo = join(tmp, 'car.fifo')
    await promisify(execFile)('mkfifo', [fifo])
    const [report] = await Promise.all([verifyCar(fifo, { readBytes: 99_991 }), writeFile(fifo, car)])
    expect(plain(report)).toEqual(plain(await verifyCar(chunks(car), { name: fifo })))
    expect(report).toMatchObject({ ok: true, bytes: car.length })
  })

  it('many blocks, more large ones than the threads may hold at once, some corrupt', async () => {
    const blocks: Block[] = []
    for (let i = 0; i < 2_000; i++) {
      blocks.push(await rawBlock(pseudoRandom(`small ${i}`, 50 + (i % 300))))
      if (i % 80 === 0) blocks.push(await rawBlock(pseudoRandom(`large ${i}`, 1_048_576 - (i % 7))))
    }
    const top = await cborBlock(blocks.map((b) => b.cid))
    const bytes = await carBytes([top.cid], [top, ...blocks])
    expect(bytes.length).toBeGreaterThan(24 << 20)
    const index = await indexCar(bytes)
    const damaged = Uint8Array.from(bytes)
    const hit = [3, 82, 83, 1_500, 2_001, index.length - 1]
    for (const i of hit) damaged[index[i].blockOffset] ^= 0x10
    const report = await sameAsStream('many.car', damaged, [300_000, 4 << 20])
    expect(report.blocks).toBe(index.length)
    expect(report.problems.map((p) => p.cid)).toEqual(hit.map((i) => index[i].cid.toString()))
  })
})

// ---------------------------------------------------------------------------------------------------------
// checkBlock and blockLinks

describe('checkBlock', () => {
  it('accepts every block of every gateway-conformance CAR (CIDv0 and v1; dag-pb, raw, dag-cbor, dag-json)', async () => {
    const codecs = new Set<number>()
    let v0 = 0
    for (const { file } of fixtureExpectations) {
      for (const { cid, bytes } of (await blocksOf(fixture(file))).blocks) {
        await checkBlock(cid, bytes)
        codecs.add(cid.code)
        if (cid.version === 0) v0++
      }
    }
    expect([...codecs].sort()).toEqual([raw.code, dagPb.code, dagCbor.code, dagJson.code].sort())
    expect(v0).toBeGreaterThan(0)
  })

  it('rejects bytes that do not hash to the CID (CIDv0, sha2-256)', async () => {
    const { blocks } = await blocksOf(fixture('path_gateway_unixfs/symlink.car'))
    const { cid, bytes } = blocks[0]
    expect(cid.version).toBe(0)
    const damaged = Uint8Array.from(bytes)
    damaged[0] ^= 1
    const error = await checkBlock(cid, damaged).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'CORRUPT_BLOCK', subject: cid.toString() })
    expect((error as Error).message).toBe(
      `Block ${cid} does not match its CID (sha2-256 of the bytes is ${createHash('sha256').update(damaged).digest('hex')}, expected ${Buffer.from(cid.multihash.digest).toString('hex')})`,
    )
  })

  it('checks sha2-512', async () => {
    const bytes = new TextEncoder().encode('sha2-512 block')
    const cid = CID.create(1, raw.code, await sha512.digest(bytes))
    await checkBlock(cid, bytes)
    await expect(checkBlock(cid, bytes.subarray(1))).rejects.toMatchObject({
      code: 'CORRUPT_BLOCK',
      message: expect.stringContaining('sha2-512 of the bytes is'),
    })
  })

  it('checks identity CIDs: the digest is the block', async () => {
    const bytes = new TextEncoder().encode('inline')
    const cid = CID.create(1, raw.code, identity.digest(bytes))
    await checkBlock(cid, bytes)
    await expect(checkBlock(cid, new TextEncoder().encode('inlinE'))).rejects.toMatchObject({
      code: 'CORRUPT_BLOCK',
      subject: cid.toString(),
    })
  })

  it('rejects a truncated digest', async () => {
    const bytes = new TextEncoder().encode('short')
    const full = await sha256.digest(bytes)
    const cid = CID.create(1, raw.code, Digest.create(0x12, full.digest.subarray(0, 20)))
    await expect(checkBlock(cid, bytes)).rejects.toMatchObject({ code: 'CORRUPT_BLOCK' })
  })

  it('names an unsupported multihash function', async () => {
    const cid = CID.create(1, raw.code, Digest.create(0xb220, new Uint8Array(32)))
    await expect(checkBlock(cid, new Uint8Array(1))).rejects.toMatchObject({
      code: 'CORRUPT_BLOCK',
      subject: cid.toString(),
      message: `Block ${cid} cannot be checked: multihash 0xb220 is not supported (expected sha2-256 0x12, sha2-512 0x13 or identity 0x00)`,
    })
  })
})

describe('blockLinks', () => {
  it('dag-pb: the directory entries in order (README: ascii-copy.txt and ascii.txt share one CID; multiblock.txt has 5 raw leaves)', async () => {
    const { roots, blocks } = await blocksOf(fixture('trustless_gateway_car/dir-with-duplicate-files.car'))
    const get = (cid: CID): Uint8Array => blocks.find((b) => b.cid.equals(cid))!.bytes
    const links = blockLinks(roots[0], get(roots[0]))
    expect(dagPb.decode(get(roots[0])).Links.map((l) => l.Name)).toEqual(['ascii-copy.txt', 'ascii.txt', 'hello.txt', 'multiblock.txt'])
    expect(links).toHaveLength(4)
    expect(links[0].equals(links[1])).toBe(true)
    const leaves = blockLinks(links[3], get(links[3]))
    expect(leaves).toHaveLength(5)
    expect(leaves.every((l) => l.code === raw.code)).toBe(true)
  })

  it('dag-pb CIDv0: links are CIDv0 too', async () => {
    const { roots, blocks } = await blocksOf(fixture('path_gateway_unixfs/symlink.car'))
    const links = blockLinks(roots[0], blocks.find((b) => b.cid.equals(roots[0]))!.bytes)
    expect(links).toHaveLength(2) // testfiles/bar (symlink) and testfiles/foo
    expect(links.every((l) => l.version === 0)).toBe(true)
  })

  it('raw: none', async () => {
    const block = await rawBlock(dagCbor.encode({ looks: 'like dag-cbor' }))
    expect(blockLinks(block.cid, block.bytes)).toEqual([])
  })

  it.each([
    ['dag-cbor', 'path_gateway_dag/dag-cbor-traversal.car'],
    ['dag-json', 'path_gateway_dag/dag-json-traversal.car'],
  ])('%s: the links of the Kubo traversal fixture, each to a block of the CAR', async (_, file) => {
    const { roots, blocks } = await blocksOf(fixture(file))
    const links = blockLinks(roots[0], blocks.find((b) => b.cid.equals(roots[0]))!.bytes)
    expect(links.length).toBeGreaterThan(0)
    for (const link of links) expect(blocks.some((b) => b.cid.equals(link))).toBe(true)
  })

  it('identity CIDs are links like any other', async () => {
    const inline = CID.create(1, raw.code, identity.digest(Uint8Array.of(1, 2, 3)))
    const block = await cborBlock({ inline, list: [inline] })
    expect(blockLinks(block.cid, block.bytes).map(String)).toEqual([inline.toString(), inline.toString()])
  })

  it('dag-cbor and dag-json: map keys in canonical order, not JavaScript object order', async () => {
    const [a, b, c, d] = await Promise.all(['a', 'b', 'c', 'd'].map(async (s) => (await rawBlock(new TextEncoder().encode(s))).cid))
    const value = { b: a, '10': b, '9': c, aa: d }
    const cbor = await cborBlock(value)
    expect(blockLinks(cbor.cid, cbor.bytes)).toEqual([c, a, b, d]) // shorter first: 9, b, then 10, aa
    const json = dagJson.encode(value)
    const jsonCid = CID.create(1, dagJson.code, await sha256.digest(json))
    expect(blockLinks(jsonCid, json)).toEqual([b, c, d, a]) // bytewise: 10, 9, aa, b
  })

  it('dag-json keys compare as UTF-8 bytes, as the spec says (U+FFFF before U+1F600)', async () => {
    const [a, b] = await Promise.all(['a', 'b'].map(async (s) => (await rawBlock(new TextEncoder().encode(s))).cid))
    const json = new TextEncoder().encode(`{"\u{ffff}":{"/":"${a}"},"\u{1f600}":{"/":"${b}"}}`)
    const cid = CID.create(1, dagJson.code, await sha256.digest(json))
    expect(blockLinks(cid, json)).toEqual([a, b])
  })

  it('follow the order of the encoded bytes (property, fixed seed)', async () => {
    const LINK = Symbol('link')
    const key = fc
      .string({ unit: fc.constantFrom('a', 'b', 'z', '0', '1', '9', 'é', '中', '😀'), maxLength: 4 })
      .filter((k) => k !== '__proto__')
    const { node } = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constant<unknown>(LINK),
        fc.integer(),
        fc.string({ maxLength: 3 }),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(key, tie('node'), { maxKeys: 4 }),
      ),
    }))
    const cids = await Promise.all(
      Array.from({ length: 64 }, async (_, i) => CID.create(1, raw.code, await sha256.digest(Uint8Array.of(i)))),
    )
    const withLinks = (value: unknown, next: { i: number }): unknown => {
      if (value === LINK) return cids[next.i++ % cids.length]
      if (Array.isArray(value)) return value.map((v) => withLinks(v, next))
      if (value !== null && typeof value === 'object') {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withLinks(v, next)]))
      }
      return value
    }
    fc.assert(
      fc.property(node, (generated) => {
        const value = withLinks(generated, { i: 0 })
        const cbor = dagCbor.encode(value)
        const inCbor = blockLinks(CID.create(1, dagCbor.code, Digest.create(0, cbor)), cbor)
        expect(inCbor.map(String)).toEqual(
          occurrences(
            Buffer.from(cbor),
            cids.map((c) => c.bytes),
          ),
        )
        const json = dagJson.encode(value)
        const inJson = blockLinks(CID.create(1, dagJson.code, Digest.create(0, json)), json)
        expect(inJson.map(String)).toEqual(
          occurrences(
            Buffer.from(json),
            cids.map((c) => c.toString()),
          ),
        )
      }),
      { seed: 20240611, numRuns: 300 },
    )

    /** The CIDs whose encodings occur in `encoded`, in the order they occur (each as often as it does). */
    function occurrences(encoded: Buffer, needles: (string | Uint8Array)[]): string[] {
      const found: [number, string][] = []
      needles.forEach((needle, i) => {
        for (let at = encoded.indexOf(needle); at >= 0; at = encoded.indexOf(needle, at + 1)) found.push([at, cids[i].toString()])
      })
      return found.sort((x, y) => x[0] - y[0]).map(([, s]) => s)
    }
  })

  it('names an unknown codec', async () => {
    const bytes = new TextEncoder().encode('tree 0\0')
    const cid = CID.create(1, 0x78, await sha256.digest(bytes))
    expect(() => blockLinks(cid, bytes)).toThrow(
      `Block ${cid}: cannot read links of codec 0x78 (cairn reads dag-pb, dag-cbor, dag-json and raw)`,
    )
  })

  it.each([
    ['dag-cbor', dagCbor.code, Uint8Array.of(0xff)],
    ['dag-json', dagJson.code, new TextEncoder().encode('{"a":')],
    ['dag-pb', dagPb.code, Uint8Array.of(0x0a, 0x05, 1)],
  ])('reports %s bytes that do not decode as CORRUPT_BLOCK with the decoder message', async (name, code, bytes) => {
    const cid = CID.create(1, code, await sha256.digest(bytes))
    await checkBlock(cid, bytes)
    let error: unknown
    try {
      blockLinks(cid, bytes)
    } catch (e) {
      error = e
    }
    expect(error).toMatchObject({ code: 'CORRUPT_BLOCK', subject: cid.toString() })
    expect((error as Error).message).toMatch(new RegExp(`^Block ${cid} does not decode as ${name}: .+`))
  })
})
