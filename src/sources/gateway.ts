/**
 * A trustless HTTP gateway (IPFS trustless-gateway spec) as a block source: single blocks with
 * `GET /ipfs/{cid}?format=raw`, whole DAGs with `GET /ipfs/{cid}?format=car&dag-scope=all` streamed and
 * checked block by block as they arrive. Nothing the gateway sends is trusted: every block is hashed
 * against its CID, and every failure (HTTP status, an HTML page instead of a block, wrong bytes, a
 * truncated CAR, a hang) is a {@link CairnError} naming the CID and the gateway.
 *
 * Requests go through `node:http`/`node:https` with a keep-alive agent per gateway, not the global
 * `fetch`: a clone makes one request per file, and each `fetch` leaves objects behind (abort signals
 * held through weak references, resource timings) that survive young-generation GCs; 10,000 requests
 * took 65 MiB more peak memory and three times the CPU.
 */
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { checkBlock } from '../car/block.js'
import { MAX_BLOCK_BYTES, readCarBlocks, type CarBlock } from '../car/reader.js'
import { CID } from '../cid.js'
import { CairnError, isCairnError } from '../errors.js'
import type { Block } from '../unixfs/file.js'
import type { FetchOptions, Source } from './index.js'

/**
 * Public trustless gateways cloned from when no source is given, in the order they are tried. Defined
 * for the CLI's default only; tests never contact them.
 */
export const DEFAULT_GATEWAYS: readonly string[] = Object.freeze(['https://trustless-gateway.link', 'https://ipfs.io', 'https://dweb.link'])

export { MAX_BLOCK_BYTES } from '../car/reader.js'

/** Options of {@link GatewaySource}. */
export interface GatewayOptions {
  /** Whole-request limit for a raw block, and time allowed until a CAR response's headers (default 30 s). */
  readonly timeoutMs?: number
  /** Longest pause allowed between two pieces of a response body (default 15 s). */
  readonly idleTimeoutMs?: number
}

const RAW_TYPE = 'application/vnd.ipld.raw'
const CAR_TYPE = 'application/vnd.ipld.car'

/** Redirects followed per request (public gateways redirect path requests to subdomains). */
const MAX_REDIRECTS = 5

/**
 * One trustless gateway, addressed by its base URL (`https://host[:port][/prefix]`; requests go to
 * `<base>/ipfs/<cid>`). Connections are kept alive between requests; `close` ends them.
 */
export class GatewaySource implements Source {
  /** The base URL as given; every error message quotes it. */
  readonly name: string
  private readonly base: string
  private readonly timeoutMs: number
  private readonly idleTimeoutMs: number
  private readonly httpAgent = new HttpAgent({ keepAlive: true })
  private readonly httpsAgent = new HttpsAgent({ keepAlive: true })

  /** Throws `USAGE` when `url` is not an http(s) URL. */
  constructor(url: string, options: GatewayOptions = {}) {
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw new CairnError('USAGE', `${JSON.stringify(url)} is not a gateway URL (expected http://… or https://…)`, { subject: url })
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new CairnError('USAGE', `${JSON.stringify(url)} is not a gateway URL (expected http://… or https://…)`, { subject: url })
    }
    this.name = url
    this.base = parsed
      .toString()
      .replace(/\/+$/, '')
      .replace(/\/ipfs$/, '')
    this.timeoutMs = options.timeoutMs ?? 30_000
    this.idleTimeoutMs = options.idleTimeoutMs ?? 15_000
  }

  /**
   * Fetches one block with `?format=raw` and checks it against `cid`. Throws `MISSING_BLOCK` on HTTP
   * 404/410, `CORRUPT_BLOCK` when the bytes do not hash to the CID, `FETCH_FAILED` for anything else
   * (another status, a content type that is not a block such as an HTML page, a timeout, a connection
   * error); a body over {@link MAX_BLOCK_BYTES} is `CORRUPT_BLOCK`. Every message names the CID and the gateway.
   * Aborting `options.signal` ends the request (`FETCH_FAILED`, "stopped").
   */
  async get(cid: CID, options: FetchOptions = {}): Promise<Uint8Array> {
    if (cid.multihash.code === 0x00) return cid.multihash.digest
    const exchange = this.send(`${this.base}/ipfs/${cid}?format=raw`, RAW_TYPE, options.signal)
    const timer = setTimeout(() => exchange.abort(new Timeout()), this.timeoutMs)
    let bytes: Uint8Array
    try {
      const res = await exchange.response
      this.checkResponse(res, cid, 'block', [RAW_TYPE, 'application/octet-stream'])
      // no block is larger: more is wrong bytes (integrity), refused before it is buffered
      bytes = await readLimited(
        res,
        MAX_BLOCK_BYTES,
        () =>
          new CairnError(
            'CORRUPT_BLOCK',
            `${this.name} sent more than ${MAX_BLOCK_BYTES} bytes for block ${cid}, more than any block may hold`,
            {
              subject: cid.toString(),
            },
          ),
      )
    } catch (e) {
      throw this.wrap(e, cid, exchange.reason)
    } finally {
      clearTimeout(timer)
    }
    try {
      await checkBlock(cid, bytes)
    } catch (e) {
      throw new CairnError('CORRUPT_BLOCK', `${this.name} sent wrong bytes for block ${cid}: ${(e as Error).message}`, {
        subject: cid.toString(),
        cause: e,
      })
    }
    return bytes
  }

  /**
   * Streams the DAG under `root` as a CAR (`dag-scope=all`, asking for depth-first order without
   * duplicates) and yields each block once it is checked against its CID. The stream may lack blocks
   * (a gateway may stop early): callers ask for what they still miss elsewhere. Throws as {@link get}
   * does, plus `FETCH_FAILED` when the CAR is malformed or truncated or the body stalls for longer than
   * the idle timeout. Stopping the iteration early, or aborting `options.signal`, aborts the request.
   */
  async *dag(root: CID, options: FetchOptions = {}): AsyncGenerator<Block> {
    const exchange = this.send(
      `${this.base}/ipfs/${root}?format=car&dag-scope=all&car-order=dfs&car-dups=n`,
      `${CAR_TYPE}; version=1; order=dfs; dups=n`,
      options.signal,
    )
    const timer = setTimeout(() => exchange.abort(new Timeout()), this.timeoutMs)
    let count = 0
    let res: IncomingMessage | undefined
    let body: AsyncGenerator<Uint8Array> | undefined
    try {
      try {
        res = await exchange.response
        this.checkResponse(res, root, 'CAR', [CAR_TYPE])
      } finally {
        clearTimeout(timer)
      }
      body = idleLimited(res, this.idleTimeoutMs, exchange.abort)
      const length = Number(res.headers['content-length'] ?? NaN)
      // the one CAR reader: a section claiming more than a block's cap is refused before it is buffered
      const blocks = readCarBlocks(body, {
        name: `${this.name} (CAR of ${root})`,
        size: Number.isSafeInteger(length) ? length : undefined,
        sourceError: (e) => (e instanceof Error ? e : new Error(String(e))),
      })
      for (;;) {
        let next: IteratorResult<CarBlock>
        try {
          next = await blocks.next()
        } catch (e) {
          if (exchange.reason !== undefined) throw e
          const kind = isCairnError(e, 'BAD_CAR') ? ((e.details?.[0] as { kind?: string } | undefined)?.kind ?? 'header') : undefined
          // bad bytes are an integrity failure; a body cut short (or reset) is the transport's
          if (isCairnError(e, 'BAD_CAR') && kind !== 'truncated') {
            throw new CairnError('BAD_CAR', `${this.name} sent a bad CAR for ${root}: ${e.message}`, {
              subject: root.toString(),
              details: e.details,
              cause: e,
            })
          }
          const reason = isCairnError(e) ? e.message : ((e as NodeJS.ErrnoException).code ?? (e as Error).message)
          throw this.fail(root, `the CAR ends or breaks after ${count} blocks (${reason})`, e)
        }
        if (next.done) return
        const cid = CID.asCID(next.value.cid) ?? next.value.cid
        try {
          await checkBlock(cid, next.value.bytes)
        } catch (e) {
          throw new CairnError(
            'CORRUPT_BLOCK',
            `${this.name} sent wrong bytes for block ${cid} (in the CAR of ${root}): ${(e as Error).message}`,
            {
              subject: cid.toString(),
              cause: e,
            },
          )
        }
        count++
        yield { cid, bytes: next.value.bytes }
      }
    } catch (e) {
      throw this.wrap(e, root, exchange.reason, count)
    } finally {
      // the CAR parser may stop pulling mid-body: drop the connection rather than read the rest, and
      // end the body reader so that its idle timer goes too
      if (res?.complete !== true) exchange.abort(new Stopped())
      void body?.return(undefined).catch(() => {})
    }
  }

  /** Ends the connections kept alive. */
  async close(): Promise<void> {
    this.httpAgent.destroy()
    this.httpsAgent.destroy()
  }

  /** Starts a GET of `url` with this gateway's connections; aborting `signal` ends it. */
  private send(url: string, accept: string, signal?: AbortSignal): Exchange {
    const exchange = new Exchange(new URL(url), accept, (target) => (target.protocol === 'https:' ? this.httpsAgent : this.httpAgent))
    if (signal !== undefined) {
      if (signal.aborted) exchange.abort(new Stopped())
      else {
        const stop = (): void => exchange.abort(new Stopped())
        signal.addEventListener('abort', stop, { once: true })
        // the listener goes with the response: a signal may outlive many requests
        void exchange.response.then(
          (res) => res.once('close', () => signal.removeEventListener('abort', stop)),
          () => signal.removeEventListener('abort', stop),
        )
      }
    }
    return exchange
  }

  private checkResponse(res: IncomingMessage, cid: CID, what: string, types: readonly string[]): void {
    if (res.statusCode === 404 || res.statusCode === 410) {
      res.destroy()
      throw new CairnError('MISSING_BLOCK', `${this.name} does not have ${cid} (HTTP ${res.statusCode})`, { subject: cid.toString() })
    }
    if (res.statusCode !== 200) {
      res.destroy()
      throw this.fail(cid, `HTTP ${res.statusCode} ${res.statusMessage ?? ''} for the ${what}`.replace(/ +for/, ' for'))
    }
    const type = (res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
    if (!types.includes(type)) {
      res.destroy()
      throw this.fail(cid, `the answer is ${type || 'of no content type'}, expected ${types[0]} (is this a trustless gateway?)`)
    }
  }

  private fail(cid: CID, reason: string, cause?: unknown): CairnError {
    return new CairnError('FETCH_FAILED', `${this.name} failed on ${cid}: ${reason}`, { subject: cid.toString(), cause })
  }

  /** Turns whatever the request threw into a CairnError naming the CID and this gateway. */
  private wrap(e: unknown, cid: CID, aborted: Error | undefined, blocks?: number): CairnError {
    if (isCairnError(e)) return e
    const after = blocks === undefined ? '' : ` after ${blocks} blocks`
    if (aborted instanceof IdleTimeout) return this.fail(cid, `no data for ${this.idleTimeoutMs} ms${after}`, e)
    if (aborted instanceof Timeout) return this.fail(cid, `no answer within ${this.timeoutMs} ms${after}`, e)
    if (aborted instanceof Stopped) return this.fail(cid, `stopped${after}`, e)
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message ?? String(e)
    return this.fail(cid, `${reason}${after}`, e)
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/**
 * One GET in flight, following redirects. {@link Exchange.response} settles once the final response's
 * headers are in; {@link Exchange.abort} ends the exchange at any point (a body being read then fails)
 * and {@link Exchange.reason} keeps why.
 */
class Exchange {
  readonly response: Promise<IncomingMessage>
  reason: Error | undefined
  private current: ClientRequest | undefined

  constructor(
    url: URL,
    private readonly accept: string,
    private readonly agentFor: (url: URL) => HttpAgent,
  ) {
    this.response = this.go(url, 0)
  }

  /** Ends the exchange (idempotent); the first reason is kept. */
  readonly abort = (reason: Error): void => {
    this.reason ??= reason
    // a body read to its end leaves nothing to stop, and its connection may be back in the pool
    // with no listener for the error a destroy would raise there
    if (this.final?.complete === true) return
    this.current?.destroy(reason)
  }

  /** The final response, once its headers are in. */
  private final: IncomingMessage | undefined

  private go(url: URL, hops: number): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      if (this.reason !== undefined) return reject(this.reason)
      const request = url.protocol === 'https:' ? httpsRequest : httpRequest
      const req = request(url, { headers: { accept: this.accept }, agent: this.agentFor(url) })
      this.current = req
      let response: IncomingMessage | undefined
      req.on('error', (e: NodeJS.ErrnoException) => {
        // an error after the headers (a reset mid-body) ends the body, where the reader sees it
        if (response !== undefined) return response.destroy(e)
        // a kept-alive connection the server closed as the request went out: once more, on a new one
        if (req.reusedSocket && e.code === 'ECONNRESET' && this.reason === undefined) return resolve(this.go(url, hops))
        reject(e)
      })
      req.on('response', (res) => {
        response = res
        // an abort while nobody reads the body (a stream given up between two reads) must not throw;
        // a reader of the body still sees the error
        res.on('error', () => {})
        const location = res.headers.location
        if (!REDIRECTS.has(res.statusCode ?? 0) || location === undefined || hops >= MAX_REDIRECTS) {
          this.final = res
          return resolve(res)
        }
        res.resume()
        try {
          resolve(this.go(new URL(location, url), hops + 1))
        } catch (e) {
          reject(e as Error)
        }
      })
      req.end()
    })
  }
}

class Timeout extends Error {}
class IdleTimeout extends Error {}
class Stopped extends Error {}

/** The body's pieces, aborting when none arrives for `idleMs`. */
async function* idleLimited(body: IncomingMessage, idleMs: number, abort: (reason: Error) => void): AsyncGenerator<Uint8Array> {
  const timer = setTimeout(() => abort(new IdleTimeout()), idleMs)
  timer.unref()
  try {
    for await (const piece of body) {
      timer.refresh()
      yield piece as Uint8Array
    }
  } finally {
    clearTimeout(timer)
  }
}

/** Reads a whole body of at most `limit` bytes (the caller's timer bounds the time). */
async function readLimited(res: IncomingMessage, limit: number, tooLarge: () => Error): Promise<Uint8Array> {
  if (Number(res.headers['content-length'] ?? NaN) > limit) {
    res.destroy()
    throw tooLarge()
  }
  const pieces: Buffer[] = []
  let size = 0
  for await (const piece of res) {
    size += (piece as Buffer).length
    if (size > limit) {
      res.destroy()
      throw tooLarge()
    }
    pieces.push(piece as Buffer)
  }
  return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, size)
}
