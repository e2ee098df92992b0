/**
 * Small HTTP helpers every gateway module shares: plain-text answers, the immutable caching headers,
 * `If-None-Match`, CORS, writing with backpressure, and the bound on bodies streamed at once.
 */
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { isCairnError } from '../errors.js'

/** Sends a short plain-text answer (no body for HEAD). */
export function send(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.destroy()
  res.statusCode = status
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v)
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('Content-Length', Buffer.byteLength(text))
  res.end(res.req.method === 'HEAD' ? undefined : text)
}

/** A redirect (301 for a trailing slash or a shard path: both are permanent under an immutable CID). */
export function redirect(res: ServerResponse, location: string): void {
  send(res, 301, `see ${location}\n`, { Location: location })
}

/** The headers of every answer under an immutable `/ipfs/` path. */
export function immutable(res: ServerResponse, etag: string, roots: readonly string[], path: string): void {
  res.setHeader('Etag', etag)
  res.setHeader('Cache-Control', 'public, max-age=29030400, immutable')
  res.setHeader('X-Ipfs-Path', path)
  res.setHeader('X-Ipfs-Roots', roots.join(','))
  res.setHeader('Vary', 'Accept')
}

/** True when `If-None-Match` names `etag` (weak or strong, in a list, or `*`). */
export function etagMatches(req: IncomingMessage, etag: string): boolean {
  const header = req.headers['if-none-match']
  if (header === undefined) return false
  return header.split(',').some((t) => {
    const tag = t.trim().replace(/^W\//, '')
    return tag === '*' || tag === etag
  })
}

/** Answers 304 for a matching `If-None-Match`; true when it did. */
export function notModified(req: IncomingMessage, res: ServerResponse, etag: string): boolean {
  if (!etagMatches(req, etag)) return false
  res.statusCode = 304
  res.setHeader('Etag', etag)
  res.end()
  return true
}

/** CORS for `/ipfs/` and `/ipns/`: any origin may read (the content is public and immutable or signed). */
export function cors(res: ServerResponse): void {
  res.setHeader('Access-Control-Allow-Origin', '*')
  res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS')
  res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Range, User-Agent, X-Requested-With')
  res.setHeader(
    'Access-Control-Expose-Headers',
    'Content-Length, Content-Range, Content-Type, Etag, X-Ipfs-Path, X-Ipfs-Roots, X-Chunked-Output, X-Stream-Output',
  )
}

/**
 * The status and text for a library error met before any byte of the body: a missing block is 404,
 * a damaged or undecodable one 502 (the store or folder served it wrong), a path that names nothing
 * 404, a bad path 400. Anything else is rethrown (a bug: 500).
 */
export function failure(e: unknown): { status: number; text: string } {
  if (isCairnError(e, 'MISSING_BLOCK')) return { status: 404, text: `${e.message}\n` }
  if (isCairnError(e, 'USAGE')) return { status: 404, text: `${e.message}\n` }
  if (isCairnError(e, 'BAD_PATH')) return { status: 400, text: `${e.message}\n` }
  if (isCairnError(e, 'CORRUPT_BLOCK') || isCairnError(e, 'INVALID_MANIFEST')) return { status: 502, text: `${e.message}\n` }
  throw e
}

/** Writes `chunk`, waiting for the client to drain when its buffer is full. Throws when the client left. */
export async function write(res: ServerResponse, chunk: Uint8Array): Promise<void> {
  if (res.destroyed) throw new Error('the client left')
  if (res.write(chunk)) return
  const ac = new AbortController()
  try {
    await Promise.race([once(res, 'drain', { signal: ac.signal }), once(res, 'close', { signal: ac.signal })])
  } finally {
    ac.abort()
  }
  if (res.destroyed) throw new Error('the client left')
}

/**
 * At most `active` response bodies stream at once (each holds a block or two), and at most `queued`
 * wait for their turn, each for at most `waitMs`; past that, {@link Limiter.acquire} returns undefined
 * and the caller answers 503. So memory stays bounded however many requests arrive, and a waiting
 * client hears back long before its connection's idle timeout.
 */
export class Limiter {
  private running = 0
  private readonly waiting: (() => void)[] = []

  constructor(
    readonly active: number,
    readonly queued: number,
    readonly waitMs = 30_000,
  ) {}

  /** A release function once a slot is free, or undefined when the queue is full or the wait too long. */
  async acquire(): Promise<(() => void) | undefined> {
    if (this.running >= this.active) {
      if (this.waiting.length >= this.queued) return undefined
      const turn = await new Promise<boolean>((resolve) => {
        const go = (): void => {
          clearTimeout(timer)
          resolve(true)
        }
        const timer = setTimeout(() => {
          const at = this.waiting.indexOf(go)
          if (at >= 0) this.waiting.splice(at, 1)
          resolve(false)
        }, this.waitMs)
        this.waiting.push(go)
      })
      if (!turn) return undefined
    } else {
      this.running++
    }
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.waiting.shift()
      if (next) next()
      else this.running--
    }
  }
}
