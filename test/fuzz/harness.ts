/**
 * The fuzz harness of issue #18: mutations of real CARs (the gateway-conformance fixtures, a packed
 * cairn version, generated deep and repeated DAGs) fed to cairn's CAR reader (`verifyCar`, the CAR
 * source clone and cat use), its gateway client (over loopback HTTP), its UnixFS readers and its
 * manifest and index decoders. An independent oracle judges what cairn accepted: `@ipld/car` parses the
 * CAR, `node:crypto` sha256 checks each block, and a walk of its own (dag-pb, dag-cbor, dag-json, raw) checks the
 * DAG is complete; `ipfs-unixfs-exporter` reads the files and folders cairn read.
 *
 * Properties, for every case: cairn throws nothing but a `CairnError`; what cairn accepts the oracle
 * accepts (a complete, correct DAG), and what the oracle accepts cairn accepts (unless a rule of
 * cairn's own refuses it: a non-canonical CID); bytes cairn hands out hash to their CID; each case ends
 * within 10 s.
 */
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CarIndexer } from '@ipld/car/indexer'
import { CarReader } from '@ipld/car/reader'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { exporter } from 'ipfs-unixfs-exporter'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { varint } from 'multiformats'
import * as Digest from 'multiformats/hashes/digest'
import { verifyCar } from '../../src/car/verify.js'
import { CarBlockSource } from '../../src/car/source.js'
import { listDirectory, decodeUnixFs } from '../../src/cat.js'
import { isCairnError } from '../../src/errors.js'
import { readIndexNode } from '../../src/shard-index/prolly.js'
import { GatewaySource } from '../../src/sources/gateway.js'
import { exportFile } from '../../src/unixfs/export.js'
import { readVersion } from '../../src/version.js'
import { carOf, pbBlock, rawBlock, type Block } from '../helpers/hostile-gateway.js'

/** A seeded PRNG (mulberry32): the same seed gives the same cases. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** One seed CAR of the corpus. */
export interface SeedCar {
  readonly name: string
  readonly bytes: Uint8Array
}

/** What one case found wrong (empty when the case passed). */
export interface CaseResult {
  readonly name: string
  readonly mutation: string
  readonly failures: string[]
  readonly ms: number
}

const MUTATIONS = ['bitflip', 'truncate', 'huge-varint', 'duplicate', 'delete', 'header', 'splice', 'none'] as const

/** The generated part of the corpus: a UnixFS folder of small files, a deep file DAG, a DAG of repeated links. */
export async function generatedSeeds(): Promise<SeedCar[]> {
  const seeds: SeedCar[] = []
  const files: Block[] = []
  for (let i = 0; i < 5; i++) files.push(await rawBlock(new TextEncoder().encode(`file ${i}\n`.repeat(10 + i))))
  const two = await pbBlock(new UnixFS({ type: 'file', blockSizes: [BigInt(files[0].bytes.length), BigInt(files[1].bytes.length)] }), [
    { cid: files[0].cid, size: files[0].bytes.length },
    { cid: files[1].cid, size: files[1].bytes.length },
  ])
  const dir = await pbBlock(new UnixFS({ type: 'directory' }), [
    { name: 'a.txt', cid: files[2].cid, size: files[2].bytes.length },
    { name: 'b.bin', cid: two.cid, size: 100 },
    { name: 'c.txt', cid: files[3].cid, size: files[3].bytes.length },
  ])
  seeds.push({ name: 'generated folder', bytes: carOf([dir.cid], [dir, two, ...files.slice(0, 4)]) })
  // a file 150 levels deep (past cairn's depth limit: refused, never a stack overflow)
  const deep: Block[] = [await rawBlock(Uint8Array.of(0x61))]
  for (let i = 0; i < 150; i++) {
    deep.push(await pbBlock(new UnixFS({ type: 'file', blockSizes: [1n] }), [{ cid: deep[deep.length - 1].cid, size: 1 }]))
  }
  seeds.push({ name: 'deep file', bytes: carOf([deep[deep.length - 1].cid], [...deep].reverse()) })
  // a file of repeated links: 12 levels, each linking the next twice (4,096 leaves of 16 bytes, 13 blocks)
  const rep: Block[] = [await rawBlock(new Uint8Array(16).fill(0x62))]
  let size = 16n
  for (let i = 0; i < 12; i++) {
    const last = rep[rep.length - 1].cid
    rep.push(
      await pbBlock(new UnixFS({ type: 'file', blockSizes: [size, size] }), [
        { cid: last, size: 1 },
        { cid: last, size: 1 },
      ]),
    )
    size *= 2n
  }
  seeds.push({ name: 'repeated file', bytes: carOf([rep[rep.length - 1].cid], [...rep].reverse()) })
  return seeds
}

/** The gateway-conformance fixture CARs. */
export async function fixtureSeeds(folder: string): Promise<SeedCar[]> {
  const names = [
    'subdir-with-two-single-block-files.car',
    'dir-with-dag-cbor-with-links.car',
    'dir-with-duplicate-files.car',
    'subdir-with-mixed-block-files.car',
    'file-3k-and-3-blocks-missing-block.car',
    'single-layer-hamt-with-multi-block-files.car',
  ]
  return Promise.all(names.map(async (name) => ({ name, bytes: new Uint8Array(await readFile(join(folder, name))) })))
}

interface Sections {
  readonly headerEnd: number
  readonly sections: { readonly offset: number; readonly end: number }[]
}

async function sectionsOf(bytes: Uint8Array): Promise<Sections> {
  const indexer = await CarIndexer.fromBytes(bytes)
  const sections: { offset: number; end: number }[] = []
  let headerEnd = bytes.length
  for await (const e of indexer) {
    if (sections.length === 0) headerEnd = e.offset
    sections.push({ offset: e.offset, end: e.blockOffset + e.blockLength })
  }
  return { headerEnd, sections }
}

/** Applies one mutation to a seed CAR. */
export async function mutate(seed: Uint8Array, kind: (typeof MUTATIONS)[number], random: () => number): Promise<Uint8Array> {
  const pick = (n: number): number => Math.floor(random() * n)
  const { headerEnd, sections } = await sectionsOf(seed)
  const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts))
  switch (kind) {
    case 'bitflip': {
      const out = Uint8Array.from(seed)
      for (let i = 1 + pick(4); i > 0; i--) out[pick(out.length)] ^= 1 << pick(8)
      return out
    }
    case 'truncate':
      return seed.subarray(0, pick(seed.length))
    case 'huge-varint': {
      const at = sections.length > 0 && random() < 0.8 ? sections[pick(sections.length)].offset : headerEnd
      const huge = [2 ** 32 + 5, 2 ** 31, 2 ** 53 - 1, 5 * 2 ** 20, 2 ** 62][pick(5)]
      const len = Number.isSafeInteger(huge) ? varint.encodingLength(huge) : 9
      const prefix = new Uint8Array(len)
      if (Number.isSafeInteger(huge)) varint.encodeTo(huge, prefix)
      else prefix.fill(0xff, 0, len - 1).fill(0x7f, len - 1)
      const old = varint.decode(seed.subarray(at))[1]
      return concat(seed.subarray(0, at), prefix, seed.subarray(at + old))
    }
    case 'duplicate': {
      if (sections.length === 0) return seed
      const s = sections[pick(sections.length)]
      const at = sections[pick(sections.length)].offset
      return concat(seed.subarray(0, at), seed.subarray(s.offset, s.end), seed.subarray(at))
    }
    case 'delete': {
      if (sections.length === 0) return seed
      const s = sections[pick(sections.length)]
      return concat(seed.subarray(0, s.offset), seed.subarray(s.end))
    }
    case 'header': {
      const header = dagCbor.decode(seed.subarray(varint.decode(seed)[1], headerEnd)) as { version: number; roots: CID[] }
      const variants: Record<string, unknown>[] = [
        { ...header, extra: 1 },
        { version: 2, roots: header.roots },
        { version: 1, roots: [] },
        { version: 1, roots: 'not a list' },
        { version: 1 },
        { version: 1.5, roots: header.roots },
        { roots: header.roots },
      ]
      const bytes = dagCbor.encode(variants[pick(variants.length)])
      const prefix = new Uint8Array(varint.encodingLength(bytes.length))
      varint.encodeTo(bytes.length, prefix)
      return concat(prefix, bytes, seed.subarray(headerEnd))
    }
    case 'splice': {
      const at = pick(seed.length)
      const junk = new Uint8Array(1 + pick(64))
      for (let i = 0; i < junk.length; i++) junk[i] = pick(256)
      return concat(seed.subarray(0, at), junk, seed.subarray(at))
    }
    case 'none':
      return seed
  }
}

/** The oracle's verdict on a CAR: parsed, every block right, and the DAG under each root complete. */
interface Verdict {
  readonly valid: boolean
  readonly why: string
  readonly roots: CID[]
  /** Block bytes by CID string, for blocks whose sha256 matched. */
  readonly good: Map<string, Uint8Array>
}

async function oracle(bytes: Uint8Array): Promise<Verdict> {
  let reader: CarReader
  try {
    reader = await CarReader.fromBytes(bytes)
  } catch (e) {
    return { valid: false, why: `@ipld/car: ${(e as Error).message}`, roots: [], good: new Map() }
  }
  const roots = await reader.getRoots()
  const good = new Map<string, Uint8Array>()
  const key = (cid: CID): string => cid.toV1().toString()
  let why = ''
  for await (const { cid, bytes: b } of reader.blocks()) {
    const mh = cid.multihash
    const ok =
      mh.code === 0x12
        ? Buffer.from(createHash('sha256').update(b).digest()).equals(Buffer.from(mh.digest))
        : mh.code === 0x00
          ? Buffer.from(b).equals(Buffer.from(mh.digest))
          : false
    if (!ok) why ||= `block ${cid} does not hash to its CID`
    else if (!good.has(key(cid))) good.set(key(cid), b)
  }
  // completeness: every block reachable from a root is there and decodes
  const seen = new Set<string>()
  const stack = [...roots]
  while (stack.length > 0 && why === '') {
    const cid = stack.pop() as CID
    if (seen.has(key(cid))) continue
    seen.add(key(cid))
    const b = cid.multihash.code === 0x00 ? cid.multihash.digest : good.get(key(cid))
    if (b === undefined) {
      why = `block ${cid} is missing`
      break
    }
    try {
      if (cid.code === 0x70) for (const l of dagPb.decode(b).Links) stack.push(l.Hash)
      else if (cid.code === 0x71) stack.push(...cborLinks(dagCbor.decode(b)))
      else if (cid.code === 0x0129) {
        // a release's DAG stops at its parent version (docs/releases.md): a packed release does not hold it
        const { parent: _parent, ...rest } = dagJson.decode(b) as Record<string, unknown>
        stack.push(...cborLinks(rest))
      } else if (cid.code !== 0x55) why = `block ${cid} has a codec the oracle does not read`
    } catch (e) {
      why = `block ${cid} does not decode: ${(e as Error).message}`
    }
  }
  return { valid: why === '', why, roots, good }
}

function cborLinks(value: unknown): CID[] {
  const out: CID[] = []
  const stack = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    const cid = CID.asCID(v)
    if (cid !== null) out.push(cid)
    else if (Array.isArray(v)) stack.push(...v)
    else if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) stack.push(...Object.values(v))
  }
  return out
}

/** Chunks of random sizes, as a network would cut them. */
async function* chunked(bytes: Uint8Array, random: () => number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length;) {
    const n = 1 + Math.floor(random() * (random() < 0.5 ? 64 : 65536))
    yield Uint8Array.from(bytes.subarray(at, at + n))
    at += n
  }
}

/** A loopback gateway serving whatever CAR the current case sets (127.0.0.1 only). */
export class FuzzGateway {
  car: Uint8Array = new Uint8Array()
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FuzzGateway> {
    let self: FuzzGateway | undefined
    const server = createServer((req, res) => {
      const car = self?.car ?? new Uint8Array()
      if (!(req.url ?? '').includes('format=car')) return void res.writeHead(404).end()
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1' }).end(car)
    })
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    self = new FuzzGateway(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    return self
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((done) => this.server.close(() => done()))
  }
}

const withinCase = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} took more than ${ms} ms`)), ms).unref())])

/**
 * Runs one case: mutates `seed`, runs every reader on it and checks the properties. `dir` is a scratch
 * folder for the CAR file.
 */
export async function runCase(seed: SeedCar, index: number, random: () => number, dir: string, gateway: FuzzGateway): Promise<CaseResult> {
  const started = performance.now()
  const mutation = MUTATIONS[Math.floor(random() * MUTATIONS.length)]
  const failures: string[] = []
  const bytes = await mutate(seed.bytes, mutation, random)
  const unexpected = (where: string, e: unknown): void => {
    if (!isCairnError(e)) failures.push(`${where} threw a ${(e as Error)?.constructor?.name}: ${(e as Error)?.message ?? String(e)}`)
  }
  const verdict = await oracle(bytes)

  // 1. verify --car's reader, from a stream cut at random
  try {
    const report = await withinCase(verifyCar(chunked(bytes, random)), 10_000, 'verifyCar')
    const canonical = report.problems.some((p) => /canonically encoded/.test(p.message))
    if (report.ok && !verdict.valid) failures.push(`verifyCar accepted a CAR the oracle refuses (${verdict.why})`)
    if (!report.ok && verdict.valid && !canonical)
      failures.push(`verifyCar refused a CAR the oracle accepts: ${report.problems[0]?.message}`)
  } catch (e) {
    unexpected('verifyCar', e)
    if (verdict.valid && isCairnError(e) && !/canonically encoded|unknown key/.test(e.message))
      failures.push(`verifyCar refused a CAR the oracle accepts: ${e.message}`)
  }

  // 2. the CAR source of clone and cat: every block it hands out hashes to its CID
  const path = join(dir, `case-${index}.car`)
  await writeFile(path, bytes)
  let source: CarBlockSource | undefined
  try {
    source = await withinCase(CarBlockSource.open(path), 10_000, 'CarBlockSource.open')
    for (const [key] of verdict.good) {
      const cid = CID.parse(key)
      try {
        const got = await source.get(cid)
        if (!Buffer.from(got).equals(Buffer.from(verdict.good.get(key) as Uint8Array)))
          failures.push(`CarBlockSource.get(${cid}) handed out bytes that are not the block`)
      } catch (e) {
        unexpected('CarBlockSource.get', e)
      }
    }
  } catch (e) {
    unexpected('CarBlockSource.open', e)
  }

  // 3. UnixFS readers against ipfs-unixfs-exporter, on what the oracle accepted
  if (verdict.valid && source !== undefined && verdict.roots.length > 0) {
    const root = verdict.roots[0]
    const blockstore = { get: async (cid: CID) => verdict.good.get(cid.toV1().toString()) ?? Promise.reject(new Error('missing')) }
    try {
      await withinCase(compareUnixFs(source, blockstore, root, failures), 10_000, 'UnixFS readers')
    } catch (e) {
      unexpected('UnixFS readers', e)
    }
  }

  // 4. mutated blocks (re-hashed, so that decoding is what is tested) through the decoders
  for (const [, b] of [...verdict.good].slice(0, 3)) {
    const damaged = Uint8Array.from(b)
    if (damaged.length > 0) damaged[Math.floor(random() * damaged.length)] ^= 1 << Math.floor(random() * 8)
    for (const codec of [0x70, 0x0129]) {
      const cid = CID.create(1, codec, Digest.create(0x12, createHash('sha256').update(damaged).digest()))
      const one = { get: async () => damaged }
      for (const [what, run] of [
        ['decodeUnixFs', async () => decodeUnixFs(cid, damaged)],
        [
          'listDirectory',
          async () => {
            for await (const entry of listDirectory(one, cid)) void entry
          },
        ],
        [
          'exportFile',
          async () => {
            for await (const piece of exportFile(one, cid)) void piece
          },
        ],
        ['readVersion', () => readVersion(one, cid)],
        ['readIndexNode', () => readIndexNode(one, cid)],
      ] as const) {
        try {
          await withinCase(run(), 10_000, what)
        } catch (e) {
          unexpected(what, e)
        }
      }
    }
  }

  // 5. the gateway client, over loopback HTTP
  if (verdict.roots.length > 0 || bytes.length > 0) {
    gateway.car = bytes
    const gw = new GatewaySource(gateway.url, { timeoutMs: 5_000, idleTimeoutMs: 5_000 })
    const root = verdict.roots[0] ?? CID.parse('bafkqaaa')
    try {
      await withinCase(
        (async () => {
          for await (const block of gw.dag(root)) {
            const mh = block.cid.multihash
            if (mh.code === 0x12 && !Buffer.from(createHash('sha256').update(block.bytes).digest()).equals(Buffer.from(mh.digest)))
              failures.push(`the gateway client handed out wrong bytes for ${block.cid}`)
          }
        })(),
        10_000,
        'GatewaySource.dag',
      )
    } catch (e) {
      unexpected('GatewaySource.dag', e)
    } finally {
      await gw.close()
    }
  }
  await source?.close()
  const ms = performance.now() - started
  if (ms > 10_000) failures.push(`the case took ${Math.round(ms)} ms`)
  return { name: seed.name, mutation, failures, ms }
}

/** cairn's file and folder readers against ipfs-unixfs-exporter: what cairn reads, the exporter reads alike. */
async function compareUnixFs(
  source: CarBlockSource,
  blockstore: { get(cid: CID): Promise<Uint8Array> },
  root: CID,
  failures: string[],
): Promise<void> {
  if (root.code !== 0x70 && root.code !== 0x55) return
  const entry = await exporter(root, blockstore as never).catch(() => undefined)
  if (entry === undefined) return
  if (entry.type === 'file' || entry.type === 'raw') {
    let ours: Buffer
    try {
      const parts: Uint8Array[] = []
      for await (const piece of exportFile(source, root)) parts.push(piece)
      ours = Buffer.concat(parts)
    } catch (e) {
      // a bound of cairn's (depth, repeated links), or a rule the exporter does not check
      if (!isCairnError(e)) throw e
      return
    }
    const parts: Uint8Array[] = []
    for await (const piece of entry.content()) parts.push(piece as Uint8Array)
    if (!ours.equals(Buffer.concat(parts))) failures.push(`exportFile(${root}) read other bytes than ipfs-unixfs-exporter`)
  } else if (entry.type === 'directory') {
    let ours: string[]
    try {
      ours = []
      for await (const e of listDirectory(source, root)) ours.push(e.name)
    } catch (e) {
      if (!isCairnError(e)) throw e
      return
    }
    const theirs: string[] = []
    for await (const e of entry.content()) theirs.push(e.name)
    if (ours.sort().join('\n') !== theirs.sort().join('\n'))
      failures.push(`listDirectory(${root}) lists other names than ipfs-unixfs-exporter`)
  }
}
