/**
 * `serve`: a trustless gateway (IPFS trustless-gateway spec) over a dataset's store and any `dir:`
 * folders, on loopback unless told otherwise. `GET`/`HEAD /ipfs/{cid}[/{path}]` answers raw blocks
 * (`?format=raw`, `Accept: application/vnd.ipld.raw`) and CAR streams (`?format=car`,
 * `Accept: application/vnd.ipld.car`) with `dag-scope=block|entity|all`; nothing is deserialised for
 * the client. Every block served is checked against its CID on the way out.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CarWriter } from '@ipld/car/writer'
import { decodeUnixFs, resolvePath } from './cat.js'
import { blockLinks } from './car/block.js'
import { DAG_PB, RAW, tryParseCid, type CID } from './cid.js'
import { openDataset, STORE_DIR, type Dataset } from './dataset.js'
import { trustRoutes } from './names/http.js'
import { join } from 'node:path'
import { CairnError, isCairnError } from './errors.js'
import { DirSource } from './sources/dir.js'
import { datasetBlocks } from './release/source.js'
import type { BlockSource } from './store/blocks.js'

/** Options of {@link serve}. */
export interface ServeOptions {
  /** The dataset whose store is served (default: the one holding the current folder; none is fine when `dirs` are given). */
  readonly dir?: string
  /** `dir:` target folders served as well (tried after the store, in order). */
  readonly dirs?: readonly string[]
  /** Port (default 8080; 0 picks a free one). */
  readonly port?: number
  /** Address to listen on (default 127.0.0.1: loopback only). */
  readonly host?: string
  /** Called once per request answered (for logs). */
  readonly onRequest?: (entry: { readonly method: string; readonly url: string; readonly status: number }) => void
}

/** A running gateway. */
export interface ServeHandle {
  /** `http://<host>:<port>`, the base URL clients put before `/ipfs/<cid>`. */
  readonly url: string
  /** The port listened on (the one picked, for port 0). */
  readonly port: number
  /** Stops listening, ends open connections and closes the files it read. */
  close(): Promise<void>
}

type Scope = 'block' | 'entity' | 'all'
type Format = 'raw' | 'car'

const RAW_TYPE = 'application/vnd.ipld.raw'
const CAR_TYPE = 'application/vnd.ipld.car'

/**
 * Starts the gateway. Status codes: 200; 304 for a matching `If-None-Match`; 400 for a CID that does
 * not parse, an unknown `format` or `dag-scope`, `entity-bytes` (not supported), a path on a raw
 * request, or no `format` and no `Accept` naming a block or a CAR; 404 when the root block (or a path
 * segment) is not held; 405 for other methods; 406 for an `Accept` naming only unsupported types (e.g.
 * CAR version 2). A CAR response whose DAG turns out incomplete while streaming is cut short (the
 * status is already sent), which trustless clients detect.
 *
 * @throws {CairnError} `NOT_A_DATASET` when `dir` is given and is not a dataset (or neither `dir` nor
 *   `dirs` is given and the current folder is not in one); `USAGE` for a folder that is not a `dir:`
 *   target; `IO` when the port cannot be listened on.
 */
export async function serve(options: ServeOptions = {}): Promise<ServeHandle> {
  let dataset: Dataset | undefined
  try {
    dataset = await openDataset(options.dir)
  } catch (e) {
    if (!(options.dir === undefined && (options.dirs?.length ?? 0) > 0 && isCairnError(e, 'NOT_A_DATASET'))) throw e
  }
  const dirs: DirSource[] = []
  try {
    for (const d of options.dirs ?? []) dirs.push(await DirSource.open(d.replace(/^dir:/, '')))
  } catch (e) {
    await Promise.all(dirs.map((d) => d.close()))
    await dataset?.store.close()
    throw e
  }
  // in a clone, the store falls back to the files the clone wrote (each block checked against its CID)
  const sources: BlockSource[] = [...(dataset ? [await datasetBlocks(dataset)] : []), ...dirs]
  const source: BlockSource = {
    async get(cid) {
      if (cid.multihash.code === 0x00) return cid.multihash.digest
      let last: unknown
      for (const s of sources) {
        try {
          return await s.get(cid)
        } catch (e) {
          if (!isCairnError(e, 'MISSING_BLOCK')) throw e
          last = e
        }
      }
      throw last ?? new CairnError('MISSING_BLOCK', `Block ${cid} is not served here`, { subject: cid.toString() })
    },
  }

  const trust = trustRoutes({ storeDir: dataset ? join(dataset.root, STORE_DIR) : undefined, dirs: options.dirs ?? [], blocks: source })
  const server = createServer((req, res) => {
    trust(req, res)
      .then((done) => (done ? undefined : handle(source, req, res)))
      .catch((e: unknown) => {
        if (!res.headersSent) send(res, 500, `internal error: ${(e as Error).message}\n`)
        else res.destroy()
      })
      .finally(() => options.onRequest?.({ method: req.method ?? '', url: req.url ?? '', status: res.statusCode }))
  })
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (e) =>
      reject(
        new CairnError('IO', `Cannot listen on ${host}:${options.port ?? 8080}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, {
          cause: e,
        }),
      ),
    )
    server.listen(options.port ?? 8080, host, () => resolveListen())
  })
  const port = (server.address() as AddressInfo).port
  const shownHost = host.includes(':') ? `[${host}]` : host
  return {
    url: `http://${shownHost}:${port}`,
    port,
    async close() {
      await new Promise<void>((done) => {
        server.close(() => done())
        server.closeAllConnections()
      })
      await Promise.all(dirs.map((d) => d.close()))
      await dataset?.store.close()
    },
  }
}

async function handle(source: BlockSource, req: IncomingMessage, res: ServerResponse): Promise<void> {
  res.setHeader('X-Content-Type-Options', 'nosniff')
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD')
    return send(res, 405, 'only GET and HEAD\n')
  }
  const url = new URL(req.url ?? '/', 'http://localhost')
  const m = /^\/ipfs\/([^/]+)(?:\/(.*))?$/.exec(url.pathname)
  if (m === null) return send(res, 404, 'not found: this gateway answers /ipfs/{cid}\n')
  const root = tryParseCid(m[1])
  if (root === undefined) return send(res, 400, `${m[1]} is not a CID\n`)
  let path: string
  try {
    path = decodeURIComponent(m[2] ?? '').replace(/\/+$/, '')
  } catch {
    return send(res, 400, 'the path is not valid percent-encoding\n')
  }

  const negotiated = negotiate(url.searchParams.get('format'), req.headers.accept)
  if ('status' in negotiated) return send(res, negotiated.status, negotiated.message + '\n')
  const { format } = negotiated
  if (url.searchParams.has('entity-bytes')) return send(res, 400, 'entity-bytes is not supported by this gateway\n')
  const scopeParam = url.searchParams.get('dag-scope') ?? 'all'
  if (scopeParam !== 'block' && scopeParam !== 'entity' && scopeParam !== 'all')
    return send(res, 400, `dag-scope=${scopeParam} is not one of block, entity, all\n`)
  const scope: Scope = scopeParam
  for (const [name, allowed] of [
    ['car-version', ['1']],
    ['car-order', ['dfs', 'unk']],
    ['car-dups', ['n', 'y']],
  ] as const) {
    const v = url.searchParams.get(name)
    if (v !== null && !(allowed as readonly string[]).includes(v)) return send(res, 400, `${name}=${v} is not supported\n`)
  }

  if (format === 'raw') {
    if (path !== '') return send(res, 400, 'a raw block is requested by CID alone (no path)\n')
    const etag = `"${root}.raw"`
    let bytes: Uint8Array
    try {
      bytes = await source.get(root)
    } catch (e) {
      return failed(res, root, e)
    }
    if (req.headers['if-none-match'] === etag) return notModified(res, etag)
    res.statusCode = 200
    res.setHeader('Content-Type', RAW_TYPE)
    res.setHeader('Content-Length', bytes.length)
    res.setHeader('Content-Disposition', `attachment; filename="${root}.bin"`)
    immutable(res, etag, root)
    res.end(req.method === 'HEAD' ? undefined : bytes)
    return
  }

  // CAR: resolve the path and read the root before the status goes out
  let terminus: CID
  let traversed: readonly CID[]
  try {
    const resolved = await resolvePath(source, root, path)
    terminus = resolved.cid
    traversed = resolved.traversed
    await source.get(terminus)
  } catch (e) {
    if (isCairnError(e, 'USAGE') || isCairnError(e, 'BAD_PATH')) return send(res, 404, `${(e as Error).message}\n`)
    return failed(res, root, e)
  }
  const etag = `"${root}${path === '' ? '' : '/' + path}.car.${scope}"`
  if (req.headers['if-none-match'] === etag) return notModified(res, etag)
  res.statusCode = 200
  res.setHeader('Content-Type', `${CAR_TYPE}; version=1; order=dfs; dups=n`)
  res.setHeader('Content-Disposition', `attachment; filename="${root}.car"`)
  immutable(res, etag, root)
  if (req.method === 'HEAD') return void res.end()

  const { writer, out } = CarWriter.create([root])
  const feed = (async () => {
    const seen = new Set<string>()
    const put = async (cid: CID, bytes: Uint8Array): Promise<void> => {
      const key = cid.toString()
      if (seen.has(key) || cid.multihash.code === 0x00) return
      seen.add(key)
      await writer.put({ cid, bytes })
    }
    try {
      for (const cid of traversed) await put(cid, await source.get(cid))
      for await (const block of scopeBlocks(source, terminus, scope)) await put(block.cid, block.bytes)
    } catch (e) {
      // before the CAR is closed: a cleanly ended CAR would hide that the DAG is incomplete
      res.destroy()
      throw e
    } finally {
      await writer.close()
    }
  })()
  try {
    await Promise.all([feed, pipeline(Readable.from(out), res)])
  } catch {
    // a block went missing or the client left: cut the stream short, the client sees it incomplete
    res.destroy()
    await feed.catch(() => {})
  }
}

/** The blocks of `root`'s DAG a scope covers, depth-first, each once. */
async function* scopeBlocks(source: BlockSource, root: CID, scope: Scope): AsyncGenerator<{ cid: CID; bytes: Uint8Array }> {
  const rootBytes = await source.get(root)
  if (scope === 'block') {
    yield { cid: root, bytes: rootBytes }
    return
  }
  // which links to follow: every one (all), or for UnixFS the file's blocks or the directory's own shards (entity)
  let follow: (cid: CID, bytes: Uint8Array) => CID[] = (cid, bytes) => blockLinks(cid, bytes)
  if (scope === 'entity') {
    if (root.code !== DAG_PB) {
      yield { cid: root, bytes: rootBytes }
      return
    }
    const { data } = decodeUnixFs(root, rootBytes)
    if (data.type === 'directory' || data.type === 'symlink' || data.type === 'metadata') {
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
  const seen = new Set<string>()
  const stack: { cid: CID; bytes?: Uint8Array }[] = [{ cid: root, bytes: rootBytes }]
  while (stack.length > 0) {
    const { cid, bytes: known } = stack.pop() as { cid: CID; bytes?: Uint8Array }
    const key = cid.toString()
    if (seen.has(key) || cid.multihash.code === 0x00) continue
    seen.add(key)
    const bytes = known ?? (await source.get(cid))
    yield { cid, bytes }
    if (cid.code === RAW) continue
    const links = follow(cid, bytes)
    for (let i = links.length - 1; i >= 0; i--) if (!seen.has(links[i].toString())) stack.push({ cid: links[i] })
  }
}

/**
 * The response format: `format` wins over `Accept` (as the spec says). Without either naming a block
 * or a CAR: 400 when nothing was asked, 406 when only unsupported types were.
 */
function negotiate(format: string | null, accept: string | undefined): { format: Format } | { status: number; message: string } {
  if (format !== null) {
    if (format === 'raw' || format === 'car') return { format }
    return { status: 400, message: `format=${format} is not supported (this trustless gateway answers format=raw and format=car)` }
  }
  if (accept === undefined || accept.trim() === '') {
    return { status: 400, message: 'ask for ?format=raw or ?format=car (or Accept: application/vnd.ipld.raw / application/vnd.ipld.car)' }
  }
  const ranges = accept
    .split(',')
    .map((part) => {
      const [type, ...params] = part.split(';').map((s) => s.trim())
      const p = new Map(params.map((kv) => kv.split('=').map((s) => s.trim().toLowerCase()) as [string, string]))
      return { type: type.toLowerCase(), q: Number(p.get('q') ?? '1'), params: p }
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q)
  for (const r of ranges) {
    if (r.type === RAW_TYPE) return { format: 'raw' }
    if (r.type === CAR_TYPE) {
      const version = r.params.get('version')
      const order = r.params.get('order')
      const dups = r.params.get('dups')
      if (
        (version === undefined || version === '1') &&
        (order === undefined || order === 'dfs' || order === 'unk') &&
        (dups === undefined || dups === 'n' || dups === 'y')
      ) {
        return { format: 'car' }
      }
    }
  }
  if (ranges.every((r) => r.type === '*/*' || r.type === 'application/*')) {
    return { status: 400, message: 'ask for ?format=raw or ?format=car (or Accept: application/vnd.ipld.raw / application/vnd.ipld.car)' }
  }
  return { status: 406, message: `none of ${accept} is served here (application/vnd.ipld.raw, application/vnd.ipld.car; version=1)` }
}

function immutable(res: ServerResponse, etag: string, root: CID): void {
  res.setHeader('Etag', etag)
  res.setHeader('Cache-Control', 'public, max-age=29030400, immutable')
  res.setHeader('X-Ipfs-Roots', root.toString())
  res.setHeader('Vary', 'Accept')
}

function notModified(res: ServerResponse, etag: string): void {
  res.statusCode = 304
  res.setHeader('Etag', etag)
  res.end()
}

function failed(res: ServerResponse, root: CID, e: unknown): void {
  if (isCairnError(e, 'MISSING_BLOCK')) return send(res, 404, `${root}: block not held by this gateway\n`)
  if (isCairnError(e, 'CORRUPT_BLOCK')) return send(res, 500, `${root}: the stored block is damaged (${e.message})\n`)
  throw e
}

function send(res: ServerResponse, status: number, text: string): void {
  res.statusCode = status
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('Content-Length', Buffer.byteLength(text))
  res.end(res.req.method === 'HEAD' ? undefined : text)
}
