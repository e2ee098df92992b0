/**
 * IPLD pathing for `/ipfs/<cid>/<path>` (docs/gateway.md): segment by segment, through dag-json and
 * dag-cbor fields (map keys, list indexes, links followed into the next block) and UnixFS directory
 * names (plain and HAMT). Every block read on the way is recorded, so a CAR response can carry what
 * a client needs to check each step, and so can a proof.
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import { decodeUnixFs, findInDirectory } from '../cat.js'
import { CID, DAG_JSON, DAG_PB, RAW } from '../cid.js'
import { CairnError } from '../errors.js'
import type { BlockSource } from '../store/blocks.js'

const DAG_CBOR = 0x71

/** Where a content path led. */
export interface IpldResolved {
  /** The block the path ends in (the entity for `dag-scope`). */
  readonly cid: CID
  /** Every block read before it, the root first, each once (HAMT shards included): the path's proof. */
  readonly traversed: readonly CID[]
  /**
   * Segments left inside {@link IpldResolved.cid}'s own data when the path ends at a value that is not
   * a link (e.g. `/ipfs/<version>/message`); empty when the path ends at the block itself.
   */
  readonly inside: readonly string[]
}

/** Longest path, in segments, that is followed. */
export const MAX_SEGMENTS = 256

/**
 * Splits the part of a URL path after `/ipfs/<cid>/` into decoded segments. Each segment is
 * percent-decoded on its own (so `%2F` stays inside a name). Throws `BAD_PATH` for `.` or `..`
 * (also when percent-encoded), NUL, bad percent-encoding or too many segments; empty segments (a
 * doubled or trailing slash) are dropped.
 */
export function splitPath(raw: string): string[] {
  const out: string[] = []
  for (const part of raw.split('/')) {
    if (part === '') continue
    let segment: string
    try {
      segment = decodeURIComponent(part)
    } catch {
      throw new CairnError('BAD_PATH', `Path segment ${JSON.stringify(part)} is not valid percent-encoding`, { subject: part })
    }
    if (segment === '.' || segment === '..' || segment.includes('\u0000')) {
      throw new CairnError('BAD_PATH', `Path segment ${JSON.stringify(segment)} is not allowed (no ".", ".." or NUL)`, { subject: part })
    }
    out.push(segment)
  }
  if (out.length > MAX_SEGMENTS) throw new CairnError('BAD_PATH', `The path has ${out.length} segments (at most ${MAX_SEGMENTS})`)
  return out
}

/**
 * Resolves `segments` under `root` by IPLD pathing. Throws `USAGE` (subject: the path) when a
 * segment names nothing (no such field or entry, a path through a raw block or into a UnixFS file),
 * `MISSING_BLOCK` / `CORRUPT_BLOCK` from the source, `CORRUPT_BLOCK` for a block that does not decode.
 */
export async function resolveIpldPath(source: BlockSource, root: CID, segments: readonly string[]): Promise<IpldResolved> {
  const traversed: CID[] = []
  const record = (cid: CID): void => {
    if (!traversed.some((c) => c.equals(cid))) traversed.push(cid)
  }
  let at = root
  let i = 0
  while (i < segments.length) {
    if (at.code === DAG_PB) {
      const { data } = decodeUnixFs(at, await source.get(at))
      if (data.type !== 'directory' && data.type !== 'hamt-sharded-directory') throw noSuch(root, segments, i, `a UnixFS ${data.type}`)
      record(at)
      const next = await findInDirectory(source, at, segments[i], record)
      if (next === undefined) throw noSuch(root, segments, i, 'a directory without that name')
      at = next
      i++
      continue
    }
    if (at.code === DAG_JSON || at.code === DAG_CBOR) {
      let value = decodeData(at, await source.get(at))
      const start = i
      while (i < segments.length) {
        const step = field(value, segments[i])
        if (step === undefined) throw noSuch(root, segments, i, 'a value without that field')
        value = step
        i++
        if (CID.asCID(value) !== null) break
      }
      const link = CID.asCID(value)
      if (link === null) return { cid: at, traversed, inside: segments.slice(start) }
      record(at)
      at = link
      continue
    }
    throw noSuch(root, segments, i, at.code === RAW ? 'a raw block' : `a block of codec 0x${at.code.toString(16)}`)
  }
  return { cid: at, traversed: traversed.filter((c) => !c.equals(at)), inside: [] }
}

/** The decoded data model of a dag-json or dag-cbor block. */
export function decodeData(cid: CID, bytes: Uint8Array): unknown {
  try {
    return cid.code === DAG_JSON ? dagJson.decode(bytes) : dagCbor.decode(bytes)
  } catch (e) {
    throw new CairnError('CORRUPT_BLOCK', `${cid} does not decode: ${(e as Error).message}`, { subject: cid.toString(), cause: e })
  }
}

function field(value: unknown, segment: string): unknown {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array || CID.asCID(value) !== null) return undefined
  if (Array.isArray(value)) return /^(0|[1-9]\d{0,8})$/.test(segment) ? value[Number(segment)] : undefined
  return Object.hasOwn(value, segment) ? (value as Record<string, unknown>)[segment] : undefined
}

function noSuch(root: CID, segments: readonly string[], i: number, what: string): CairnError {
  const at = segments.slice(0, i).join('/')
  return new CairnError(
    'USAGE',
    `/ipfs/${root}/${segments.join('/')}: ${at === '' ? root : at} is ${what}, so ${JSON.stringify(segments[i])} is not found`,
    {
      subject: segments.join('/'),
    },
  )
}
