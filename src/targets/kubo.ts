/**
 * The `kubo:` target: a Kubo node's RPC API, or an IPFS Cluster proxy in front of one. A publish sends
 * only what the node lacks (src/release/plan.ts): blocks of releases earlier publishes to the same
 * node put there (the dataset's receipts) are skipped unread, and the node is asked about the rest
 * (`POST /api/v0/block/stat?arg=<cid>&offline=true`). The missing blocks go as one CAR in
 * `POST <url>/api/v0/dag/import?pin-roots=false&stats=true` (a multipart/form-data body streamed from
 * the store, never held in memory; Kubo answers NDJSON `{"Stats":…}`). Then the release is pinned
 * without its parent: `pin/add?recursive=true` of the version's card, index and tree, and
 * `pin/add?recursive=false` of the version block (a recursive pin of the version would walk into the
 * parent, which the node may lack).
 *
 * Transient failures (5xx, connection reset or refused, no answer within the idle timeout) are retried
 * with backoff, re-sending the CAR; refusals (4xx, a pin error, a root that is not ours) fail at once.
 */
import { createHash, randomBytes } from 'node:crypto'
import * as http from 'node:http'
import * as https from 'node:https'
import { PassThrough, Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as Digest from 'multiformats/hashes/digest'
import { CID, SHA2_256 } from '../cid.js'
import { CairnError } from '../errors.js'
import { planSend, writeBlocksCar } from '../release/plan.js'
import { HttpStatusError, retry, type RetryOptions } from '../util/retry.js'
import { CAR_CODEC } from './dir.js'
import type { PublishInput, PublishOptions, Receipt, Target } from './interface.js'

/** The environment variable holding the `Authorization` for a Kubo RPC or Cluster proxy. */
export const KUBO_AUTH_ENV = 'CAIRN_KUBO_AUTH'

/** How long a request may stay silent (nothing sent, nothing received) before it counts as failed: 2 min. */
export const DEFAULT_KUBO_TIMEOUT_MS = 120_000

/** Options of {@link createKuboTarget}. */
export interface KuboTargetOptions {
  /**
   * The RPC API's base URL, `http(s)://host:port` (a trailing `/api/v0` is accepted). Credentials in
   * the URL (`http://user:pass@host`) are used as basic auth and left out of the address.
   */
  readonly url: string
  /**
   * The `Authorization` to send: `user:password` (sent as Basic), a token (sent as Bearer), or a whole
   * header value `Basic …` / `Bearer …`. Never printed, logged or put in a receipt.
   */
  readonly auth?: string
  /** Idle timeout per request in ms (default {@link DEFAULT_KUBO_TIMEOUT_MS}). */
  readonly timeoutMs?: number
  /** Retry settings (defaults: see {@link retry}). */
  readonly retry?: RetryOptions
}

/** The `Authorization` header value for an auth setting (see {@link KuboTargetOptions.auth}). */
export function authorizationHeader(auth: string): string {
  const value = auth.trim()
  if (/^(basic|bearer)\s+\S/i.test(value)) return value
  if (value.includes(':')) return `Basic ${Buffer.from(value, 'utf8').toString('base64')}`
  return `Bearer ${value}`
}

/**
 * A Kubo / IPFS Cluster target. Its address is `kubo:<url>` without credentials. Throws `USAGE` at
 * once when the URL is not http(s).
 *
 * `publish` throws `PUBLISH_FAILED` naming the target: at once for a 4xx answer, a pin error or a root
 * other than the version (with Kubo's message), and after the retries for 5xx, resets and timeouts
 * (with the last error); `AUTH` for 401/403 (naming `CAIRN_KUBO_AUTH`, never its value); and the
 * source's `MISSING_BLOCK` / `CORRUPT_BLOCK`. The receipt's shard is the CAR sent (its CID and size);
 * `newBlocks` counts the blocks sent, since Kubo does not say which it already had.
 */
export function createKuboTarget(options: KuboTargetOptions): Target {
  let url: URL
  try {
    url = new URL(options.url)
  } catch {
    throw new CairnError('USAGE', `kubo: needs an http(s) URL, got ${JSON.stringify(options.url)}`, {
      hint: 'e.g. kubo:http://127.0.0.1:5001',
    })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CairnError('USAGE', `kubo: needs an http(s) URL, got ${url.protocol} in ${JSON.stringify(redact(url))}`, {
      hint: 'e.g. kubo:http://127.0.0.1:5001',
    })
  }
  let authorization = options.auth ? authorizationHeader(options.auth) : undefined
  if (url.username || url.password) {
    authorization ??= `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`, 'utf8').toString('base64')}`
    url.username = ''
    url.password = ''
  }
  const base = url
    .toString()
    .replace(/\/+$/, '')
    .replace(/\/api\/v0$/, '')
  const address = `kubo:${base}`
  const timeoutMs = options.timeoutMs ?? DEFAULT_KUBO_TIMEOUT_MS

  const req = (path: string, params: string): Request => ({
    endpoint: new URL(`${base}/api/v0/${path}?${params}`),
    authorization,
    timeoutMs,
    address,
  })
  const hint = `check that the Kubo RPC API answers at ${base} (e.g. \`ipfs id\`), then run the command again`

  return {
    address,
    async publish(input: PublishInput, publishOptions: PublishOptions = {}): Promise<Receipt> {
      const publishedAt = new Date().toISOString()
      let attempts = 0
      // over both attempts (a second one sends what the first did not)
      let newBlocks = 0
      let newBytes = 0
      const retrying = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
        retry(
          fn,
          { what: `${what} ${input.root} to ${address}`, subject: address, hint },
          {
            ...options.retry,
            signal: publishOptions.signal ?? options.retry?.signal,
            onRetry: (info) => {
              options.retry?.onRetry?.(info)
              publishOptions.onProgress?.({ shards: 0, bytes: 0, message: info.message })
            },
          },
        )
      /** Plans, sends what the node lacks and pins; a pin refusal is returned (the caller may plan again). */
      const attempt = async (held: readonly CID[] | undefined) => {
        const plan = await planSend(input.source, input.root, {
          history: input.history,
          held,
          signal: publishOptions.signal,
          has: (cids) =>
            Promise.all(
              cids.map((cid) => retrying('Asking about a block of', () => hasBlock(req('block/stat', `arg=${cid}&offline=true`), cid))),
            ),
        })
        publishOptions.onProgress?.({
          shards: 0,
          bytes: 0,
          message: `${plan.missing.length} of ${plan.blocks} blocks to send (${plan.known} held by earlier publishes, ${plan.had} already on the node)`,
        })
        let sent: Sent | undefined
        newBlocks += plan.missing.length
        newBytes += plan.missingBytes
        if (plan.missing.length > 0) {
          sent = await retrying('Publishing', () => {
            attempts++
            return importCar(
              req('dag/import', 'pin-roots=false&stats=true'),
              input.root,
              (out) => writeBlocksCar(input.source, input.root, plan.missing, out),
              publishOptions,
            )
          })
        }
        const outcome = sent ? interpret(sent, input.root, address, false) : {}
        const pin = async (cids: readonly CID[], recursive: boolean): Promise<string | undefined> => {
          if (cids.length === 0) return undefined
          const args = cids.map((c) => `arg=${c}`).join('&')
          const answer = await retrying('Pinning', () => rpc(req('pin/add', `${args}&recursive=${recursive}&offline=true`)))
          return answer.status === 200 ? undefined : (kuboMessage(answer.text) ?? `HTTP ${answer.status} ${answer.text.slice(0, 200)}`)
        }
        const refused = (await pin(plan.pins.recursive, true)) ?? (await pin(plan.pins.direct, false))
        return { plan, sent, outcome, refused }
      }
      let { plan, sent, outcome, refused } = await attempt(input.held)
      if (refused !== undefined && plan.known > 0 && /not found|could not find|no such block/i.test(refused)) {
        // an earlier publish's blocks are gone from the node (unpinned, collected): ask about every block
        publishOptions.onProgress?.({
          shards: 0,
          bytes: 0,
          message: `${address} no longer holds blocks an earlier publish put there (${refused}): asking about every block`,
        })
        ;({ plan, sent, outcome, refused } = await attempt(undefined))
      }
      if (refused !== undefined) {
        throw new CairnError('PUBLISH_FAILED', `${address} imported ${input.root} but could not pin it: ${refused}`, {
          subject: address,
          hint: `check what the node holds with \`cairn check --to ${address}\`, and its pins with \`ipfs pin ls\``,
        })
      }
      publishOptions.onProgress?.({
        shards: 1,
        bytes: sent?.carSize ?? 0,
        message: `${plan.missing.length} blocks imported (${sent?.carSize ?? 0} CAR bytes) and the release pinned by ${address}`,
      })
      return {
        target: address,
        root: input.root,
        publishedAt,
        shards: sent ? [{ cid: sent.carCid, size: sent.carSize }] : [],
        newBlocks,
        newBytes,
        details: {
          pinned: true,
          attempts,
          blocks: plan.blocks,
          known: plan.known,
          asked: plan.asked,
          alreadyOnNode: plan.had,
          pins: { recursive: plan.pins.recursive.map(String), direct: plan.pins.direct.map(String) },
          ...(outcome.stats ? { stats: outcome.stats } : {}),
        },
      }
    },
  }
}

/** Whether the node holds `cid` (offline: it does not look for it elsewhere). Throws for anything but a yes or a not-found. */
async function hasBlock(req: Request, cid: CID): Promise<boolean> {
  const answer = await rpc(req)
  if (answer.status === 200) return true
  const message = kuboMessage(answer.text) ?? ''
  if (/not found|could not find|no such block/i.test(message)) return false
  throw new CairnError('PUBLISH_FAILED', `${req.address} could not say whether it holds ${cid}: ${message || `HTTP ${answer.status}`}`, {
    subject: req.address,
  })
}

/**
 * One RPC call without a body: the status and the answer's text (at most {@link MAX_ANSWER} bytes).
 * Kubo answers a failed command with 500 and its error JSON: that is an answer (returned); a 5xx
 * without it, 408 and 429 are transient ({@link HttpStatusError}), 401/403 `AUTH`.
 */
function rpc(req: Request): Promise<{ status: number; text: string }> {
  return new Promise((resolvePromise, rejectPromise) => {
    const client = req.endpoint.protocol === 'https:' ? https : http
    const request = client.request(req.endpoint, {
      method: 'POST',
      agent: false,
      timeout: req.timeoutMs,
      headers: { Accept: 'application/json', ...(req.authorization ? { Authorization: req.authorization } : {}) },
    })
    request.on('timeout', () => {
      request.destroy(Object.assign(new Error(`no answer from ${req.address} within ${req.timeoutMs} ms`), { code: 'ETIMEDOUT' }))
    })
    request.on('error', rejectPromise)
    request.on('response', (res) => {
      const chunks: Buffer[] = []
      let kept = 0
      res.on('data', (c: Buffer) => {
        if (kept < MAX_ANSWER) chunks.push(c.subarray(0, MAX_ANSWER - kept))
        kept += c.length
      })
      res.on('error', rejectPromise)
      res.on('aborted', () =>
        rejectPromise(Object.assign(new Error('the connection closed before the answer was complete'), { code: 'ECONNRESET' })),
      )
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        const status = res.statusCode ?? 0
        if (status === 200 || (status === 500 && kuboMessage(text) !== undefined)) return resolvePromise({ status, text })
        rejectPromise(statusError(status, text, req.address))
      })
    })
    request.end()
  })
}

const COALESCE = 256 * 1024
/** How long a request waits for `100 Continue` before it sends its body anyway. */
const CONTINUE_WAIT_MS = 1000
const MAX_ANSWER = 1024 * 1024

interface Request {
  readonly endpoint: URL
  readonly authorization?: string
  readonly timeoutMs: number
  readonly address: string
}

/** One attempt: what was sent and what came back (status 2xx; other statuses throw). */
interface Sent {
  readonly carCid: CID
  readonly carSize: number
  readonly blocks: number
  readonly bytes: number
  readonly body: string
  readonly streamError?: string
}

/**
 * Streams the CAR as the single file part of a multipart body and reads the whole answer. Throws
 * {@link HttpStatusError} for 5xx/408/429 (transient), `PUBLISH_FAILED`/`AUTH` for other statuses,
 * the socket error for resets, an `ETIMEDOUT` error when the connection stays silent too long.
 */
function importCar(
  req: Request,
  root: CID,
  produce: (out: PassThrough) => Promise<{ blocks: number; bytes: number }>,
  options: PublishOptions,
): Promise<Sent> {
  return new Promise<Sent>((resolvePromise, rejectPromise) => {
    const boundary = `cairn-${randomBytes(16).toString('hex')}`
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${root}.car"\r\nContent-Type: application/vnd.ipld.car\r\n\r\n`,
    )
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
    const hash = createHash('sha256')
    let carSize = 0
    let nextProgress = 8 * 1024 * 1024
    const car = new PassThrough()
    const carDone = produce(car)
    async function* body(): AsyncGenerator<Buffer> {
      yield head
      // the CAR comes as a few bytes of framing per block, then the block: gather small pieces so that
      // the socket sees fewer, larger writes (at most COALESCE bytes are held)
      let small: Buffer[] = []
      let smallBytes = 0
      for await (const chunk of car as AsyncIterable<Buffer>) {
        hash.update(chunk)
        carSize += chunk.length
        if (carSize >= nextProgress) {
          nextProgress += 8 * 1024 * 1024
          options.onProgress?.({ shards: 0, bytes: carSize })
        }
        if (chunk.length >= COALESCE) {
          if (smallBytes > 0) yield Buffer.concat(small)
          small = []
          smallBytes = 0
          yield chunk
          continue
        }
        small.push(chunk)
        smallBytes += chunk.length
        if (smallBytes >= COALESCE) {
          yield Buffer.concat(small)
          small = []
          smallBytes = 0
        }
      }
      if (smallBytes > 0) yield Buffer.concat(small)
      yield tail
    }
    const bodyStream = Readable.from(body())
    const client = req.endpoint.protocol === 'https:' ? https : http
    const request = client.request(req.endpoint, {
      method: 'POST',
      agent: false,
      // the idle timeout, from before the connection is made (setTimeout would start only once connected)
      timeout: req.timeoutMs,
      signal: options.signal,
      headers: {
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        Accept: 'application/json',
        // the body only once the server asks for it: a refusal that comes before (401, 400) is then read
        // whole, never lost to a reset the kernel delivers in its place when the server closes mid-upload
        Expect: '100-continue',
        ...(req.authorization ? { Authorization: req.authorization } : {}),
      },
    })
    let settled = false
    let responded = false
    let sending = false
    let noContinue: NodeJS.Timeout | undefined
    const settle = (error: unknown, sent?: Sent): void => {
      if (settled) return
      settled = true
      clearTimeout(noContinue)
      request.destroy()
      bodyStream.destroy()
      car.destroy()
      if (error === undefined) resolvePromise(sent as Sent)
      else rejectPromise(error)
    }
    request.on('timeout', () => {
      const e = Object.assign(new Error(`no answer from ${req.address} within ${req.timeoutMs} ms`), { code: 'ETIMEDOUT' })
      settle(e)
    })
    // a missing or corrupt block in the store is ours to report, whatever the connection does
    carDone.catch((e: unknown) => {
      if (e instanceof CairnError) settle(e)
    })
    request.on('error', (e) => {
      if (!responded) settle(e)
    })
    // a server that ignores Expect never says continue: the body goes after a wait, as curl does
    const send = (): void => {
      clearTimeout(noContinue)
      if (sending || settled) return
      sending = true
      pipeline(bodyStream, request).catch((e: unknown) => {
        // the service may answer (e.g. 400) and close before reading the whole body: its answer counts
        if (!responded) settle(e)
      })
    }
    noContinue = setTimeout(send, CONTINUE_WAIT_MS)
    request.on('continue', send)
    request.flushHeaders()
    request.on('response', (res) => {
      responded = true
      const chunks: Buffer[] = []
      let kept = 0
      res.on('data', (c: Buffer) => {
        // Kubo answers a few lines: keep at most MAX_ANSWER bytes of whatever comes
        if (kept < MAX_ANSWER) chunks.push(c.subarray(0, MAX_ANSWER - kept))
        kept += c.length
      })
      res.on('error', (e) => settle(e))
      res.on('aborted', () =>
        settle(Object.assign(new Error('the connection closed before the answer was complete'), { code: 'ECONNRESET' })),
      )
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        const status = res.statusCode ?? 0
        if (status < 200 || status >= 300) return settle(statusError(status, text, req.address))
        carDone.then(
          (counts) => {
            if (!bodyStream.readableEnded) {
              return settle(Object.assign(new Error(`${req.address} answered before the whole CAR was sent`), { code: 'ECONNRESET' }))
            }
            const carCid = CID.createV1(CAR_CODEC, Digest.create(SHA2_256, hash.digest()))
            const trailer = res.trailers['x-stream-error']
            settle(undefined, {
              carCid,
              carSize,
              blocks: counts.blocks,
              bytes: counts.bytes,
              body: text,
              streamError: trailer || undefined,
            })
          },
          (e: unknown) => settle(e),
        )
      })
    })
  })
}

/** The error for a non-2xx answer: transient for 5xx/408/429, `AUTH` for 401/403, else `PUBLISH_FAILED`. */
function statusError(status: number, text: string, address: string): Error {
  const message = kuboMessage(text) ?? `HTTP ${status}` + (text.trim() ? `: ${text.trim().slice(0, 300)}` : '')
  if (status >= 500 || status === 408 || status === 429)
    return new HttpStatusError(status, `${address} answered HTTP ${status}: ${message}`)
  if (status === 401 || status === 403) {
    return new CairnError('AUTH', `${address} refused the credentials (HTTP ${status}): ${message}`, {
      subject: address,
      hint: `set ${KUBO_AUTH_ENV} to "user:password", a bearer token, or a whole "Basic …"/"Bearer …" value`,
    })
  }
  return new CairnError('PUBLISH_FAILED', `${address} refused the import (HTTP ${status}): ${message}`, { subject: address })
}

/** Kubo's error body `{"Message":…,"Code":…,"Type":"error"}`, or undefined. */
function kuboMessage(text: string): string | undefined {
  for (const line of text.split('\n')) {
    try {
      const v = JSON.parse(line) as { Message?: unknown }
      if (typeof v?.Message === 'string') return v.Message
    } catch {
      // not JSON: the caller shows the text
    }
  }
  return undefined
}

/** Checks Kubo's NDJSON answer: our root, pinned, no error. */
function interpret(sent: Sent, root: CID, address: string, pinning = true): { stats?: Record<string, unknown> } {
  if (sent.streamError)
    throw new CairnError('PUBLISH_FAILED', `${address} failed while importing ${root}: ${sent.streamError}`, { subject: address })
  const roots: string[] = []
  let stats: Record<string, unknown> | undefined
  for (const line of sent.body.split('\n')) {
    if (!line.trim()) continue
    let v: { Root?: { Cid?: { '/'?: unknown }; PinErrorMsg?: unknown }; Stats?: unknown; Message?: unknown; Type?: unknown }
    try {
      v = JSON.parse(line) as typeof v
    } catch {
      throw new CairnError('PUBLISH_FAILED', `${address} answered something that is not Kubo's NDJSON: ${line.slice(0, 200)}`, {
        subject: address,
      })
    }
    if (v.Type === 'error' || (typeof v.Message === 'string' && !v.Root)) {
      throw new CairnError('PUBLISH_FAILED', `${address} failed while importing ${root}: ${String(v.Message)}`, { subject: address })
    }
    if (v.Root) {
      const cid = v.Root.Cid?.['/']
      if (typeof cid !== 'string')
        throw new CairnError('PUBLISH_FAILED', `${address} reported a root without a CID: ${line.slice(0, 200)}`, { subject: address })
      if (typeof v.Root.PinErrorMsg === 'string' && v.Root.PinErrorMsg !== '') {
        throw new CairnError('PUBLISH_FAILED', `${address} imported ${cid} but could not pin it: ${v.Root.PinErrorMsg}`, {
          subject: address,
        })
      }
      roots.push(cid)
    }
    if (v.Stats && typeof v.Stats === 'object') stats = v.Stats as Record<string, unknown>
  }
  const ours = roots.some((r) => sameCid(r, root))
  const others = roots.filter((r) => !sameCid(r, root))
  if ((pinning && !ours) || others.length > 0) {
    throw new CairnError(
      'PUBLISH_FAILED',
      `${address} reported root${roots.length === 1 ? '' : 's'} ${roots.join(', ') || '(none)'} (expected ${root} alone)`,
      { subject: address },
    )
  }
  return { stats }
}

function sameCid(text: string, cid: CID): boolean {
  try {
    return CID.parse(text).equals(cid)
  } catch {
    return false
  }
}

function redact(url: URL): string {
  const copy = new URL(url.toString())
  copy.username = ''
  copy.password = ''
  return copy.toString()
}
