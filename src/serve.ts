/**
 * `serve`: an IPFS gateway over a dataset's store and any `dir:` folders, on loopback unless told
 * otherwise (docs/gateway.md). `/ipfs/{cid}/{path}` follows IPLD paths and answers trustless
 * requests (`format=raw|car`, `dag-scope`, `entity-bytes`) and plain ones (file bytes with ranges,
 * directory listings, a release page); `/` lists the dataset's versions. Every block served is checked
 * against its CID on the way out. The HTTP handling lives in `src/gateway/`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { openDataset, STORE_DIR, type Dataset } from './dataset.js'
import { trustRoutes } from './names/http.js'
import { CairnError, isCairnError } from './errors.js'
import { Limiter, send } from './gateway/http.js'
import { track, type RequestEntry } from './gateway/log.js'
import { route, type GatewayHandler } from './gateway/router.js'
import { DirSource } from './sources/dir.js'
import { datasetBlocks } from './release/source.js'
import type { BlockSource } from './store/blocks.js'

export type { GatewayHandler } from './gateway/router.js'
export type { RequestEntry } from './gateway/log.js'

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
  /** Called once per request, when its response ends or is cut short (the request log). */
  readonly onRequest?: (entry: RequestEntry) => void
  /** Handlers tried before the built-in routes, in order (e.g. `/ipns/` routes). */
  readonly handlers?: readonly GatewayHandler[]
  /** A connection idle this long (a client that stops reading, or sends nothing) is closed (default 60,000 ms). */
  readonly idleTimeoutMs?: number
  /** Responses handled at once (default 32) and waiting (default 1024); past both, 503. */
  readonly maxActive?: number
  readonly maxQueued?: number
}

/** A running gateway. */
export interface ServeHandle {
  /** `http://<host>:<port>`, the base URL clients put before `/ipfs/<cid>`. */
  readonly url: string
  /** The port listened on (the one picked, for port 0). */
  readonly port: number
  /** False when the address listened on is not a loopback one (anyone who can reach it can read every block). */
  readonly loopback: boolean
  /** Stops listening, ends open connections and closes the files it read. */
  close(): Promise<void>
}

/** True for 127.0.0.0/8, ::1, localhost and IPv4-mapped loopback. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h === '::1') return true
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h
  return isIP(v4) === 4 && v4.startsWith('127.')
}

/**
 * Starts the gateway. Status codes: 200, 206 (a range), 301 (a directory without its trailing slash;
 * a version's shard path, to its standard path under `tree/`), 304 (`If-None-Match`), 400 (a CID
 * that does not parse, `.`/`..` in a path, an unknown `format` or `dag-scope`, bad `entity-bytes`),
 * 404 (a block not held, a path that names nothing), 405, 406 (an `Accept` naming only unsupported
 * types), 416 (a range past the end), 502 (a held block that fails its CID), 503 (too many requests).
 * A response whose blocks turn out missing or damaged after the status went out is cut short, never
 * completed.
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
  // the trust routes (/ipns/ records, delegated routing, signatures) answer before the gateway's own
  const trust = trustRoutes({ storeDir: dataset ? join(dataset.root, STORE_DIR) : undefined, dirs: options.dirs ?? [], blocks: source })
  const ctx = {
    source,
    dataset,
    handlers: [(req: IncomingMessage, res: ServerResponse) => trust(req, res), ...(options.handlers ?? [])],
    limiter: new Limiter(options.maxActive ?? 32, options.maxQueued ?? 1024),
  }

  const server = createServer((req, res) => {
    if (options.onRequest) track(req, res, options.onRequest)
    route(ctx, req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, `internal error: ${(e as Error).message}\n`)
      else res.destroy()
    })
  })
  const idle = options.idleTimeoutMs ?? 60_000
  server.setTimeout(idle, (socket) => socket.destroy())
  server.headersTimeout = Math.min(idle, 60_000)
  server.requestTimeout = Math.max(idle, server.headersTimeout + 1)
  server.keepAliveTimeout = Math.min(5_000, idle)
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
    loopback: isLoopback(host),
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
