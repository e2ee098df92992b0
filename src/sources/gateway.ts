/**
 * A trustless HTTP gateway (IPFS trustless-gateway spec) as a block source: single blocks with
 * `GET /ipfs/{cid}?format=raw`, whole DAGs with `GET /ipfs/{cid}?format=car&dag-scope=all` streamed and
 * checked block by block as they arrive. Nothing the gateway sends is trusted: every block is hashed
 * against its CID, and every failure (HTTP status, an HTML page instead of a block, wrong bytes, a
 * truncated CAR, a hang) is a {@link CairnError} naming the CID and the gateway.
 */
import { CarBlockIterator } from '@ipld/car/iterator'
import { checkBlock } from '../car/block.js'
import { CID } from '../cid.js'
import { CairnError, isCairnError } from '../errors.js'
import type { Block } from '../unixfs/file.js'
import type { Source } from './index.js'

/**
 * Public trustless gateways cloned from when no source is given, in the order they are tried. Defined
 * for the CLI's default only; tests never contact them.
 */
export const DEFAULT_GATEWAYS: readonly string[] = Object.freeze(['https://trustless-gateway.link', 'https://ipfs.io', 'https://dweb.link'])

/** Largest block accepted from a gateway (the spec caps blocks at 2 MiB; twice that is taken as damage). */
export const MAX_BLOCK_BYTES = 4 * 1024 * 1024

/** Options of {@link GatewaySource}. */
export interface GatewayOptions {
  /** Whole-request limit for a raw block, and time allowed until a CAR response's headers (default 30 s). */
  readonly timeoutMs?: number
  /** Longest pause allowed between two pieces of a response body (default 15 s). */
  readonly idleTimeoutMs?: number
  /** The fetch implementation (default the global `fetch`, undici). */
  readonly fetch?: typeof fetch
}

const RAW_TYPE = 'application/vnd.ipld.raw'
const CAR_TYPE = 'application/vnd.ipld.car'

/**
 * One trustless gateway, addressed by its base URL (`https://host[:port][/prefix]`; requests go to
 * `<base>/ipfs/<cid>`). Stateless apart from its options; `close` does nothing.
 */
export class GatewaySource implements Source {
  /** The base URL as given; every error message quotes it. */
  readonly name: string
  private readonly base: string
  private readonly timeoutMs: number
  private readonly idleTimeoutMs: number
  private readonly fetchFn: typeof fetch

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
    this.fetchFn = options.fetch ?? fetch
  }

  /**
   * Fetches one block with `?format=raw` and checks it against `cid`. Throws `MISSING_BLOCK` on HTTP
   * 404/410, `CORRUPT_BLOCK` when the bytes do not hash to the CID, `FETCH_FAILED` for anything else
   * (another status, a content type that is not a block such as an HTML page, a block over
   * {@link MAX_BLOCK_BYTES}, a timeout, a connection error). Every message names the CID and the gateway.
   */
  async get(cid: CID): Promise<Uint8Array> {
    if (cid.multihash.code === 0x00) return cid.multihash.digest
    const url = `${this.base}/ipfs/${cid}?format=raw`
    const signal = AbortSignal.timeout(this.timeoutMs)
    let bytes: Uint8Array
    try {
      const res = await this.fetchFn(url, { headers: { accept: RAW_TYPE }, signal, redirect: 'follow' })
      this.checkResponse(res, cid, 'block', [RAW_TYPE, 'application/octet-stream'])
      bytes = await readLimited(res, MAX_BLOCK_BYTES, () => this.fail(cid, `the block is larger than ${MAX_BLOCK_BYTES} bytes`))
    } catch (e) {
      throw this.wrap(e, cid, signal)
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
   * the idle timeout. Stopping the iteration early aborts the request.
   */
  async *dag(root: CID): AsyncGenerator<Block> {
    const url = `${this.base}/ipfs/${root}?format=car&dag-scope=all&car-order=dfs&car-dups=n`
    const controller = new AbortController()
    const headerTimer = setTimeout(() => controller.abort(new DOMException('timed out', 'TimeoutError')), this.timeoutMs)
    headerTimer.unref()
    let count = 0
    let body: AsyncGenerator<Uint8Array> | undefined
    try {
      let res: Response
      try {
        res = await this.fetchFn(url, {
          headers: { accept: `${CAR_TYPE}; version=1; order=dfs; dups=n` },
          signal: controller.signal,
          redirect: 'follow',
        })
        this.checkResponse(res, root, 'CAR', [CAR_TYPE])
      } finally {
        clearTimeout(headerTimer)
      }
      if (res.body === null) throw this.fail(root, 'the CAR response has no body')
      body = idleLimited(res.body, this.idleTimeoutMs, controller)
      let iterator: CarBlockIterator
      try {
        iterator = await CarBlockIterator.fromIterable(body)
      } catch (e) {
        throw this.fail(root, `the response is not a CAR: ${(e as Error).message}`, e)
      }
      const blocks = iterator[Symbol.asyncIterator]()
      for (;;) {
        let next: IteratorResult<{ cid: CID; bytes: Uint8Array }>
        try {
          next = await blocks.next()
        } catch (e) {
          if (controller.signal.aborted) throw e
          throw this.fail(root, `the CAR ends or breaks after ${count} blocks (${(e as Error).message})`, e)
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
      throw this.wrap(e, root, controller.signal, count)
    } finally {
      controller.abort()
      // the CAR parser may stop pulling mid-body: end the body reader so its idle timer goes too
      void body?.return(undefined).catch(() => {})
    }
  }

  /** Nothing to release: requests end with their responses. */
  async close(): Promise<void> {}

  private checkResponse(res: Response, cid: CID, what: string, types: readonly string[]): void {
    if (res.status === 404 || res.status === 410) {
      void res.body?.cancel().catch(() => {})
      throw new CairnError('MISSING_BLOCK', `${this.name} does not have ${cid} (HTTP ${res.status})`, { subject: cid.toString() })
    }
    if (res.status !== 200) {
      void res.body?.cancel().catch(() => {})
      throw this.fail(cid, `HTTP ${res.status} ${res.statusText} for the ${what}`)
    }
    const type = (res.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase()
    if (!types.includes(type)) {
      void res.body?.cancel().catch(() => {})
      throw this.fail(cid, `the answer is ${type || 'of no content type'}, expected ${types[0]} (is this a trustless gateway?)`)
    }
  }

  private fail(cid: CID, reason: string, cause?: unknown): CairnError {
    return new CairnError('FETCH_FAILED', `${this.name} failed on ${cid}: ${reason}`, { subject: cid.toString(), cause })
  }

  /** Turns whatever fetching threw into a CairnError naming the CID and this gateway. */
  private wrap(e: unknown, cid: CID, signal: AbortSignal, blocks?: number): CairnError {
    if (isCairnError(e)) return e
    const after = blocks === undefined ? '' : ` after ${blocks} blocks`
    if (signal.aborted) {
      const reason: unknown = signal.reason
      const idle = reason instanceof IdleTimeout
      return this.fail(cid, idle ? `no data for ${this.idleTimeoutMs} ms${after}` : `no answer within ${this.timeoutMs} ms${after}`, e)
    }
    const cause = (e as { cause?: { code?: string; message?: string } }).cause
    const reason = cause?.code ?? cause?.message ?? (e as Error).message ?? String(e)
    return this.fail(cid, `${reason}${after}`, e)
  }
}

class IdleTimeout extends Error {}

/** The body's pieces, aborting `controller` when none arrives for `idleMs`. */
async function* idleLimited(body: ReadableStream<Uint8Array>, idleMs: number, controller: AbortController): AsyncGenerator<Uint8Array> {
  let timer: NodeJS.Timeout | undefined
  const arm = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => controller.abort(new IdleTimeout('idle')), idleMs)
    timer.unref()
  }
  const reader = body.getReader()
  try {
    arm()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      arm()
      yield value
    }
  } finally {
    clearTimeout(timer)
    reader.releaseLock()
  }
}

/** Reads a whole body of at most `limit` bytes (the request's own signal bounds the time). */
async function readLimited(res: Response, limit: number, tooLarge: () => Error): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? NaN)
  if (declared > limit) {
    void res.body?.cancel().catch(() => {})
    throw tooLarge()
  }
  if (res.body === null) return new Uint8Array(0)
  const pieces: Uint8Array[] = []
  let size = 0
  const reader = res.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.length
    if (size > limit) {
      void reader.cancel().catch(() => {})
      throw tooLarge()
    }
    pieces.push(value)
  }
  return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, size)
}
