/**
 * Trustless responses (the trustless-gateway spec, IPIP-402): one block (`format=raw`) or a CAR
 * (`format=car`) of the blocks that prove a content path, then the path's entity by `dag-scope`
 * (`block`, `entity`, `all`) and `entity-bytes`. Nothing is decoded for the client; every block
 * sent was checked against its CID by the source.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { CarWriter } from '@ipld/car/writer'
import { decodeUnixFs } from '../cat.js'
import { blockLinks } from '../car/block.js'
import { DAG_PB, RAW, type CID } from '../cid.js'
import type { BlockSource } from '../store/blocks.js'
import { fileRange, fileSize } from './file-range.js'
import { immutable, notModified, send, write } from './http.js'
import type { IpldResolved } from './paths.js'
import { SeenSet } from '../walk/seen-set.js'

export type Scope = 'block' | 'entity' | 'all'

export const RAW_TYPE = 'application/vnd.ipld.raw'
export const CAR_TYPE = 'application/vnd.ipld.car'

/** A CAR request's parameters, checked. */
export interface CarParams {
  readonly scope: Scope
  /** `entity-bytes=from:to` as given (to: a number or `*`); resolved against the file's size. */
  readonly entityBytes?: { readonly from: number; readonly to: number | '*' }
}

/** Reads and checks `dag-scope`, `entity-bytes` and the CAR parameters; a string is the 400 message. */
export function carParams(query: URLSearchParams): CarParams | string {
  const scope = query.get('dag-scope') ?? 'all'
  if (scope !== 'block' && scope !== 'entity' && scope !== 'all') return `dag-scope=${scope} is not one of block, entity, all`
  for (const [name, allowed] of [
    ['car-version', ['1']],
    ['car-order', ['dfs', 'unk']],
    ['car-dups', ['n', 'y']],
  ] as const) {
    const v = query.get(name)
    if (v !== null && !(allowed as readonly string[]).includes(v)) return `${name}=${v} is not supported`
  }
  const eb = query.get('entity-bytes')
  if (eb === null) return { scope }
  const m = /^(-?\d{1,15}):(-?\d{1,15}|\*)$/.exec(eb)
  if (m === null) return `entity-bytes=${eb} is not from:to (integers, to may be *)`
  const from = Number(m[1])
  const to = m[2] === '*' ? '*' : Number(m[2])
  if (from >= 0 && typeof to === 'number' && to >= 0 && to < from) return `entity-bytes=${eb}: to is before from`
  return { scope, entityBytes: { from, to } }
}

/** Answers `format=raw`: the block the path ends in. */
export async function sendRaw(
  req: IncomingMessage,
  res: ServerResponse,
  source: BlockSource,
  at: IpldResolved,
  path: string,
): Promise<void> {
  const bytes = await source.get(at.cid)
  const etag = `"${at.cid}.raw"`
  if (notModified(req, res, etag)) return
  res.statusCode = 200
  res.setHeader('Content-Type', RAW_TYPE)
  res.setHeader('Content-Length', bytes.length)
  res.setHeader('Content-Disposition', `attachment; filename="${at.cid}.bin"`)
  immutable(res, etag, [...at.traversed, at.cid].map(String), path)
  res.end(req.method === 'HEAD' ? undefined : bytes)
}

/**
 * Answers `format=car`: root in the header, then the blocks of the path, then the entity's blocks by
 * scope, depth-first, each once. The root block of the entity is read before the status goes out, so
 * a missing entity is a 404; a block found missing later cuts the stream short (a client sees the CAR
 * incomplete), never a clean end.
 */
export async function sendCar(
  req: IncomingMessage,
  res: ServerResponse,
  source: BlockSource,
  root: CID,
  at: IpldResolved,
  params: CarParams,
  path: string,
): Promise<void> {
  for (const cid of at.traversed) await source.get(cid)
  await source.get(at.cid)
  let range: { from: number; to: number } | undefined
  if (params.entityBytes !== undefined && at.inside.length === 0 && isFile(at.cid, await source.get(at.cid))) {
    const size = await fileSize(source, at.cid)
    const { from, to } = params.entityBytes
    const start = from < 0 ? Math.max(size + from, 0) : from
    const end = to === '*' ? size : to < 0 ? size + to + 1 : Math.min(to + 1, size)
    if (from >= size && size > 0) return send(res, 416, `entity-bytes: the file has ${size} bytes\n`)
    range = { from: start, to: Math.max(end, start) }
  }
  const scope = params.entityBytes !== undefined && params.scope === 'all' ? 'entity' : params.scope
  const etag = `"${root}${path === '' ? '' : '/' + path}.car.${scope}${range ? `.${range.from}-${range.to}` : ''}"`
  if (notModified(req, res, etag)) return
  res.statusCode = 200
  res.setHeader('Content-Type', `${CAR_TYPE}; version=1; order=dfs; dups=n`)
  res.setHeader('Content-Disposition', `attachment; filename="${at.cid}.car"`)
  immutable(res, etag, [...at.traversed, at.cid].map(String), `/ipfs/${root}${path === '' ? '' : '/' + path}`)
  if (req.method === 'HEAD') return void res.end()

  const { writer, out } = CarWriter.create([root])
  // one bounded set for the whole response: held per block it would grow with every block served
  const seen = new SeenSet()
  const feed = (async () => {
    try {
      for (const cid of at.traversed)
        if (cid.multihash.code !== 0x00 && seen.add(cid)) await writer.put({ cid, bytes: await source.get(cid) })
      if (range !== undefined) {
        for await (const b of fileRange(source, at.cid, range.from, range.to))
          if (b.cid.multihash.code !== 0x00 && seen.add(b.cid)) await writer.put(b)
      } else {
        // scopeBlocks adds to `seen` what it yields, and skips what the path already sent
        for await (const b of scopeBlocks(source, at.cid, at.inside.length > 0 ? 'block' : scope, seen)) await writer.put(b)
      }
    } finally {
      seen.close()
      await writer.close()
    }
  })()
  try {
    for await (const chunk of out) await write(res, chunk)
    await feed
    res.end()
  } catch {
    // a block went missing or the client left: cut the stream short, the client sees it incomplete
    res.destroy()
    await feed.catch(() => {})
  }
}

function isFile(cid: CID, bytes: Uint8Array): boolean {
  if (cid.code === RAW) return true
  if (cid.code !== DAG_PB) return false
  const { data } = decodeUnixFs(cid, bytes)
  return data.type === 'file' || data.type === 'raw'
}

/**
 * The blocks of `root`'s DAG a scope covers, depth-first, each once: those not in `seen` yet, each
 * added to it as it is yielded (a caller's set, or one of the walk's own, closed at its end).
 */
export async function* scopeBlocks(
  source: BlockSource,
  root: CID,
  scope: Scope,
  seen?: SeenSet,
): AsyncGenerator<{ cid: CID; bytes: Uint8Array }> {
  if (seen) return yield* scopeWalk(source, root, scope, seen)
  const own = new SeenSet()
  try {
    yield* scopeWalk(source, root, scope, own)
  } finally {
    own.close()
  }
}

async function* scopeWalk(source: BlockSource, root: CID, scope: Scope, seen: SeenSet): AsyncGenerator<{ cid: CID; bytes: Uint8Array }> {
  if (root.multihash.code === 0x00 || seen.has(root)) return
  const rootBytes = await source.get(root)
  if (scope === 'block') {
    seen.add(root)
    yield { cid: root, bytes: rootBytes }
    return
  }
  // which links to follow: every one (all), or for UnixFS the file's blocks or the directory's own shards (entity)
  let follow: (cid: CID, bytes: Uint8Array) => CID[] = (cid, bytes) => blockLinks(cid, bytes)
  if (scope === 'entity') {
    if (root.code !== DAG_PB) {
      seen.add(root)
      yield { cid: root, bytes: rootBytes }
      return
    }
    const { data } = decodeUnixFs(root, rootBytes)
    if (data.type === 'directory' || data.type === 'symlink' || data.type === 'metadata') {
      seen.add(root)
      yield { cid: root, bytes: rootBytes }
      return
    }
    if (data.type === 'hamt-sharded-directory') {
      const width = (Number(data.fanout) - 1).toString(16).length
      follow = (cid, bytes) =>
        cid.code === DAG_PB
          ? decodeUnixFs(cid, bytes)
              .node.Links.filter((l) => (l.Name ?? '').length === width)
              .map((l) => l.Hash)
          : []
    }
  }
  const stack: { cid: CID; bytes?: Uint8Array }[] = [{ cid: root, bytes: rootBytes }]
  while (stack.length > 0) {
    const { cid, bytes: known } = stack.pop() as { cid: CID; bytes?: Uint8Array }
    if (cid.multihash.code === 0x00 || !seen.add(cid)) continue
    const bytes = known ?? (await source.get(cid))
    yield { cid, bytes }
    if (cid.code === RAW) continue
    const links = follow(cid, bytes)
    // whether a link was seen is asked when it is popped (asking here too would double the lookups)
    for (let i = links.length - 1; i >= 0; i--) stack.push({ cid: links[i] })
  }
}
