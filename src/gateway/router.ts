/**
 * The gateway's routing: mounted handlers first (e.g. `/ipns/` routes of other modules), then `/`
 * (the dataset's versions), then `/ipfs/<cid>/<path>` by IPLD pathing, answered as the request
 * negotiated: a trustless block or CAR, or plain content (file bytes with ranges, a directory
 * listing, a release page, a value's JSON).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import * as dagJson from '@ipld/dag-json'
import { decodeUnixFs } from '../cat.js'
import { CID, DAG_JSON, DAG_PB, RAW, tryParseCid } from '../cid.js'
import type { Dataset } from '../dataset.js'
import { isCairnError } from '../errors.js'
import type { BlockSource } from '../store/blocks.js'
import { readVersion } from '../version.js'
import { sendFile } from './bytes.js'
import { cors, failure, immutable, type Limiter, notModified, redirect, send } from './http.js'
import { negotiate } from './negotiate.js'
import { homeView, renderHome } from './pages/home.js'
import { listing, renderListing } from './pages/listing.js'
import { releaseView, type ReleaseView } from './pages/release.js'
import { renderRelease } from './pages/render-release.js'
import { decodeData, resolveIpldPath, splitPath, type IpldResolved } from './paths.js'
import { carParams, sendCar, sendRaw } from './trustless.js'

/**
 * A handler mounted in front of the built-in routes. It answers and returns true, or returns false
 * and leaves the request alone. `path` is the request path as sent (not normalised), `query` its query.
 */
export type GatewayHandler = (req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams) => boolean | Promise<boolean>

/** What the routes need. */
export interface GatewayContext {
  /** Every block read through it is checked against its CID. */
  readonly source: BlockSource
  /** The dataset served, for `/` (absent when only `dir:` folders are). */
  readonly dataset?: Dataset
  readonly handlers: readonly GatewayHandler[]
  /** Bounds the responses handled at once. */
  readonly limiter: Limiter
}

const VERSION_FIELDS = new Set(['type', 'v', 'name', 'parent', 'created', 'message', 'profile', 'card', 'index', 'tree', 'totals'])

/** Answers one request. Errors that are not a client's or a block's fault are rethrown (the caller answers 500). */
export async function route(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  res.setHeader('X-Content-Type-Options', 'nosniff')
  const raw = req.url ?? '/'
  const q = raw.indexOf('?')
  const path = q < 0 ? raw : raw.slice(0, q)
  const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1))
  if (path.startsWith('/ipfs/') || path.startsWith('/ipns/')) cors(res)
  for (const h of ctx.handlers) if (await h(req, res, path, query)) return
  if (req.method === 'OPTIONS') {
    res.statusCode = 204
    res.setHeader('Allow', 'GET, HEAD, OPTIONS')
    return void res.end()
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'only GET, HEAD and OPTIONS\n', { Allow: 'GET, HEAD, OPTIONS' })
  if (path === '/' || path === '/index.html') return home(ctx, req, res)
  const m = /^\/ipfs\/([^/]+)(\/.*)?$/.exec(path)
  if (m === null) return send(res, 404, 'not found: this gateway answers / and /ipfs/{cid}[/{path}]\n')
  const root = tryParseCid(m[1])
  if (root === undefined) return send(res, 400, `${m[1].slice(0, 120)} is not a CID\n`)
  const release = await ctx.limiter.acquire()
  if (release === undefined) return send(res, 503, 'too many requests at once; try again\n', { 'Retry-After': '1' })
  // a client that left while it waited gives its turn back at once
  if (req.socket.destroyed) return release()
  try {
    await content(ctx, req, res, root, m[2] ?? '', query)
  } finally {
    release()
  }
}

async function home(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const view = await homeView(ctx.dataset, ctx.source)
  const json = negotiate(null, req.headers.accept)
  if ('prefers' in json && json.prefers === 'json') return body(req, res, 200, 'application/json', JSON.stringify(view, null, 2) + '\n')
  res.setHeader('Cache-Control', 'no-cache')
  body(req, res, 200, 'text/html; charset=utf-8', renderHome(view))
}

async function content(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  root: CID,
  rest: string,
  query: URLSearchParams,
): Promise<void> {
  let segments: string[]
  try {
    segments = splitPath(rest)
  } catch (e) {
    return send(res, 400, `${(e as Error).message}\n`)
  }
  const negotiated = negotiate(query.get('format'), req.headers.accept)
  if ('status' in negotiated) return send(res, negotiated.status, negotiated.message + '\n')
  const params = negotiated.format === 'car' ? carParams(query) : undefined
  if (typeof params === 'string') return send(res, 400, params + '\n')
  const source = ctx.source

  let at: IpldResolved
  try {
    // the shard-path shortcut of a version (/ipfs/<version>/<shard path>) is the standard path under tree/
    if (root.code === DAG_JSON && segments.length > 0 && !VERSION_FIELDS.has(segments[0]) && (await isVersion(source, root))) {
      const q = query.toString()
      return redirect(res, `/ipfs/${root}/tree${rest.replace(/\/+$/, '')}${rest.endsWith('/') ? '/' : ''}${q === '' ? '' : '?' + q}`)
    }
    at = await resolveIpldPath(source, root, segments)
  } catch (e) {
    const f = failure(e)
    return send(res, f.status, f.text)
  }
  const shown = `/ipfs/${root}${rest}`
  try {
    if (negotiated.format === 'raw') return await sendRaw(req, res, source, at, shown)
    if (negotiated.format === 'car' && params !== undefined)
      return await sendCar(req, res, source, root, at, params, segments.map(encodeURIComponent).join('/'))
    if (negotiated.format === 'plain') return await plain(ctx, req, res, root, rest, segments, at, negotiated.prefers)
  } catch (e) {
    if (res.headersSent) return void res.destroy()
    const f = failure(e)
    return send(res, f.status, f.text)
  }
}

async function isVersion(source: BlockSource, cid: CID): Promise<boolean> {
  try {
    await readVersion(source, cid)
    return true
  } catch (e) {
    if (isCairnError(e, 'INVALID_MANIFEST')) return false
    throw e
  }
}

async function plain(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  root: CID,
  rest: string,
  segments: readonly string[],
  at: IpldResolved,
  prefers: 'html' | 'json' | 'any',
): Promise<void> {
  const source = ctx.source
  const shown = `/ipfs/${root}${rest}`
  const roots = [...at.traversed, at.cid].map(String)
  const cid = at.cid
  if (at.inside.length > 0) {
    // a path ending at a value inside a block (e.g. /ipfs/<version>/message): that value as JSON
    let value = decodeData(cid, await source.get(cid))
    for (const s of at.inside) value = (value as Record<string, unknown>)[s]
    const etag = `"${cid}/${at.inside.map(encodeURIComponent).join('/')}"`
    if (notModified(req, res, etag)) return
    immutable(res, etag, roots, shown)
    return body(req, res, 200, 'application/json', Buffer.from(dagJson.encode(value)))
  }
  const name =
    segments.length > 0 ? segments[segments.length - 1] : (new URLSearchParams(req.url?.split('?')[1] ?? '').get('filename') ?? undefined)
  if (cid.code === RAW) return sendFile(req, res, source, cid, name, roots, shown)
  if (cid.code === DAG_PB) {
    const { data } = decodeUnixFs(cid, await source.get(cid))
    if (data.type === 'file' || data.type === 'raw') return sendFile(req, res, source, cid, name, roots, shown)
    if (data.type === 'symlink') {
      immutable(res, `"${cid}"`, roots, shown)
      return body(req, res, 200, 'inode/symlink', Buffer.from(data.data ?? new Uint8Array(0)))
    }
    if (data.type === 'directory' || data.type === 'hamt-sharded-directory') {
      if (!rest.endsWith('/')) {
        const q = req.url?.indexOf('?') ?? -1
        return redirect(res, `/ipfs/${root}${rest}/${q >= 0 ? (req.url ?? '').slice(q) : ''}`)
      }
      const etag = `"DirIndex-cairn1_CID-${cid}"`
      if (notModified(req, res, etag) || notModified(req, res, `"${cid}"`)) return
      const list = await listing(source, cid)
      res.setHeader('Etag', etag)
      res.setHeader('X-Ipfs-Path', shown)
      res.setHeader('X-Ipfs-Roots', roots.join(','))
      res.setHeader('Cache-Control', 'public, max-age=604800, stale-while-revalidate=2678400')
      res.setHeader('Vary', 'Accept')
      if (prefers === 'json') return body(req, res, 200, 'application/json', JSON.stringify(list, null, 2) + '\n')
      return body(req, res, 200, 'text/html; charset=utf-8', renderListing(root.toString(), segments, list))
    }
    return send(res, 501, `${cid} is a UnixFS ${data.type}: ask for ?format=raw or ?format=car\n`)
  }
  if (cid.code === DAG_JSON && prefers !== 'any' && (await isVersion(source, cid))) {
    const etag = `"${cid}.release-${prefers}"`
    if (notModified(req, res, etag)) return
    const view = await cachedRelease(source, cid)
    immutable(res, etag, roots, shown)
    if (prefers === 'json') return body(req, res, 200, 'application/json', JSON.stringify(view, null, 2) + '\n')
    return body(req, res, 200, 'text/html; charset=utf-8', renderRelease(view))
  }
  if (cid.code === DAG_JSON || cid.code === 0x71) {
    const bytes = await source.get(cid)
    const etag = `"${cid}"`
    if (notModified(req, res, etag)) return
    immutable(res, etag, roots, shown)
    return body(req, res, 200, cid.code === DAG_JSON ? 'application/json' : 'application/cbor', bytes)
  }
  return send(res, 501, `${cid} has codec 0x${cid.code.toString(16)}: ask for ?format=raw or ?format=car\n`)
}

/** Release views are immutable (a version's DAG never changes): the last few are kept, keyed by CID. */
const RELEASE_CACHE = 8
function cachedRelease(source: BlockSource, cid: CID): Promise<ReleaseView> {
  // keyed by the source too: two gateways in one process may hold different blocks
  const key = cid.toString()
  const cache = releaseCaches.get(source) ?? new Map<string, Promise<ReleaseView>>()
  releaseCaches.set(source, cache)
  let view = cache.get(key)
  if (view === undefined) {
    view = releaseView(source, cid)
    cache.set(key, view)
    view.catch(() => cache.delete(key))
    while (cache.size > RELEASE_CACHE) cache.delete(cache.keys().next().value as string)
  }
  return view
}

const releaseCaches = new WeakMap<BlockSource, Map<string, Promise<ReleaseView>>>()

function body(req: IncomingMessage, res: ServerResponse, status: number, type: string, content: string | Uint8Array): void {
  const bytes = typeof content === 'string' ? Buffer.from(content) : content
  res.statusCode = status
  res.setHeader('Content-Type', type)
  res.setHeader('Content-Length', bytes.length)
  res.end(req.method === 'HEAD' ? undefined : bytes)
}
