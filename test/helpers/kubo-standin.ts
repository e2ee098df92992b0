/**
 * A STAND-IN FOR KUBO, for tests: no Node package runs Kubo's RPC offline, so this small loopback HTTP
 * server implements the calls cairn's `kubo:` target makes, as Kubo documents them:
 * - `POST /api/v0/dag/import`: a multipart/form-data body whose file part is a CAR, answered with NDJSON
 *   `{"Root":{"Cid":{"/":…},"PinErrorMsg":""}}` per root when `pin-roots` is not false, then
 *   `{"Stats":{"BlockCount":…,"BlockBytesCount":…}}` when `stats=true`;
 * - `POST /api/v0/block/stat?arg=<cid>`: `{"Key":…,"Size":…}`, or (offline) 500
 *   `block was not found locally (offline): ipld: could not find <cid>`;
 * - `POST /api/v0/pin/add?arg=…&recursive=true|false`: `{"Pins":[…]}`; a recursive pin walks the whole
 *   DAG below each arg (parent links included, as Kubo does) and fails when a block is missing;
 * - `POST /api/v0/block/put?pin=true` and `routing/put?arg=/ipns/<name>`: signatures and names (see smallCall);
 * errors as `{"Message":…,"Code":0,"Type":"error"}` with status 500.
 *
 * It really reads what arrives: the multipart body is parsed as a stream, the CAR inside it is read with
 * `@ipld/car`'s CarBlockIterator, and every block is hash-checked with cairn's `checkBlock` before it is
 * kept (in memory). Roots are pinned only when their whole DAG is there, as Kubo does.
 *
 * It can be told to misbehave, one request at a time (queued with {@link KuboStandin.next}): answer an
 * HTTP error (5xx or 4xx, before or after reading the body), reset the connection midway, hang (read the
 * body and never answer), report a pin error, or report a root other than the CAR's.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { CarBlockIterator } from '@ipld/car/iterator'
import { multihashToIPNSRoutingKey } from 'ipns'
import { ipnsValidator } from 'ipns/validator'
import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { blockLinks, checkBlock } from '../../src/car/block.js'

/** What the stand-in does with one request. */
export type Behaviour =
  | { readonly kind: 'ok' }
  /** Answers `status` with Kubo's error JSON; `early`: at once, then closes without reading the body. */
  | { readonly kind: 'status'; readonly status: number; readonly message?: string; readonly early?: boolean }
  /** Resets the TCP connection after receiving `afterBytes` of the body. */
  | { readonly kind: 'reset'; readonly afterBytes?: number }
  /** Reads the whole body, then never answers. */
  | { readonly kind: 'hang' }
  /** Imports the CAR, then reports `message` as the root's PinErrorMsg (and does not pin). */
  | { readonly kind: 'pinError'; readonly message: string }
  /** Imports the CAR, then reports `root` instead of the CAR's root. */
  | { readonly kind: 'wrongRoot'; readonly root: string }
  /** For a pin/add: answers Kubo's error with `message` (status 500) and pins nothing. */
  | { readonly kind: 'pinRefused'; readonly message: string }

/** One request the stand-in saw. */
export interface SeenRequest {
  readonly method: string
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  readonly authorization?: string
  readonly behaviour: Behaviour['kind']
  /** Body bytes received (multipart framing included). */
  bytes: number
  /** Blocks read and hash-checked from the CAR (0 when it was not read). */
  blocks: number
  /** Whether the reply was sent (false for hang and reset). */
  answered: boolean
}

export interface KuboStandin {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** Every block received, checked, by CID string. */
  readonly blocks: Map<string, Uint8Array>
  /** Pinned roots (recursive pins, and roots pinned by dag/import). */
  readonly pinned: Set<string>
  /** Blocks pinned directly (`pin/add?recursive=false`). */
  readonly direct: Set<string>
  /** IPNS records put with `routing/put`, by name as given. */
  readonly records: Map<string, Uint8Array>
  readonly requests: SeenRequest[]
  /** Queues behaviours for the next requests (one each); requests beyond the queue get `ok`. */
  next(...behaviours: Behaviour[]): void
  /** Answers 401 unless the Authorization header is exactly this. */
  requireAuthorization(value: string | undefined): void
  /** Stops the server, cutting hanging connections. */
  close(): Promise<void>
}

/** Starts the stand-in on 127.0.0.1 (a free port). */
export async function startKuboStandin(): Promise<KuboStandin> {
  const blocks = new Map<string, Uint8Array>()
  const pinned = new Set<string>()
  const records = new Map<string, Uint8Array>()
  const direct = new Set<string>()
  const requests: SeenRequest[] = []
  const queue: Behaviour[] = []
  let requiredAuth: string | undefined
  const sockets = new Set<Socket>()

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) reply(res, 500, kuboError((e as Error).message))
      else res.destroy()
    })
  })
  // As Go's net/http (Kubo) does with `Expect: 100-continue`: `100 Continue` only once the handler reads
  // the body, so a refusal before it (a wrong Authorization, an early status) goes out alone.
  server.on('checkContinue', (req, res) => {
    const refuses =
      (requiredAuth !== undefined && req.headers.authorization !== requiredAuth) || (queue[0]?.kind === 'status' && queue[0].early)
    if (!refuses) res.writeContinue()
    server.emit('request', req, res)
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    const seen: SeenRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      authorization: req.headers.authorization,
      behaviour: 'ok',
      bytes: 0,
      blocks: 0,
      answered: false,
    }
    requests.push(seen)
    const body = counted(req, seen)
    if (url.pathname === '/api/v0/block/put' || url.pathname === '/api/v0/routing/put') return smallCall(url, req, res, body, seen)
    if (url.pathname === '/api/v0/block/stat' || url.pathname === '/api/v0/pin/add') {
      await drain(body)
      if (requiredAuth !== undefined && req.headers.authorization !== requiredAuth) {
        return void reply(res, 401, kuboError('unauthorized: the Authorization header is missing or wrong'), 'application/json', seen)
      }
      const args = url.searchParams.getAll('arg')
      if (url.pathname === '/api/v0/block/stat') {
        const bytes = blocks.get(CID.parse(args[0]).toString())
        if (!bytes)
          return void reply(
            res,
            500,
            kuboError(`block was not found locally (offline): ipld: could not find ${args[0]}`),
            'application/json',
            seen,
          )
        return void reply(res, 200, JSON.stringify({ Key: args[0], Size: bytes.length }) + '\n', 'application/json', seen)
      }
      const behaviour = queue[0]?.kind === 'pinRefused' ? (queue.shift() as Behaviour & { kind: 'pinRefused' }) : undefined
      if (behaviour) {
        ;(seen as { behaviour: Behaviour['kind'] }).behaviour = behaviour.kind
        return void reply(res, 500, kuboError(behaviour.message), 'application/json', seen)
      }
      const recursive = url.searchParams.get('recursive') !== 'false'
      for (const arg of args) {
        const cid = CID.parse(arg)
        const missing = recursive ? missingBelow(cid) : blocks.has(cid.toString()) ? undefined : `could not find ${arg}`
        if (missing) return void reply(res, 500, kuboError(`pin: ${missing}`), 'application/json', seen)
      }
      for (const arg of args) (recursive ? pinned : direct).add(CID.parse(arg).toString())
      return void reply(res, 200, JSON.stringify({ Pins: args }) + '\n', 'application/json', seen)
    }
    if (url.pathname !== '/api/v0/dag/import') return void reply(res, 404, '404 page not found\n', 'text/plain')
    if (req.method !== 'POST') return void reply(res, 405, kuboError(`method ${req.method} not allowed`))
    if (requiredAuth !== undefined && req.headers.authorization !== requiredAuth) {
      // whatever body comes is read and counted (a client that did not wait for 100 Continue shows)
      drain(body).catch(() => {})
      return void reply(res, 401, kuboError('unauthorized: the Authorization header is missing or wrong'), 'application/json', seen)
    }
    const behaviour = (queue[0]?.kind === 'pinRefused' ? undefined : queue.shift()) ?? { kind: 'ok' }
    ;(seen as { behaviour: Behaviour['kind'] }).behaviour = behaviour.kind

    if (behaviour.kind === 'status') {
      if (behaviour.early) {
        // as Go's net/http does for a handler that never reads the body: answer with Connection:
        // close, half-close, and drop the connection a little later, leaving the rest unread
        res.setHeader('Connection', 'close')
        reply(res, behaviour.status, kuboError(behaviour.message ?? `standin told to answer ${behaviour.status}`), 'application/json', seen)
        res.on('finish', () => {
          req.socket.end()
          setTimeout(() => req.socket.destroy(), 200).unref()
        })
        return
      }
      await drain(body)
      return void reply(
        res,
        behaviour.status,
        kuboError(behaviour.message ?? `standin told to answer ${behaviour.status}`),
        'application/json',
        seen,
      )
    }
    if (behaviour.kind === 'reset') {
      const limit = behaviour.afterBytes ?? 64 * 1024
      for await (const _ of body) if (seen.bytes >= limit) break
      const socket = req.socket as Socket & { resetAndDestroy?: () => void }
      if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy()
      else socket.destroy()
      return
    }
    if (behaviour.kind === 'hang') {
      await drain(body)
      return // never answer
    }

    const contentType = req.headers['content-type'] ?? ''
    const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType)
    if (!/^multipart\/form-data/i.test(contentType) || !boundary) {
      req.resume()
      return void reply(res, 400, kuboError('request Content-Type is not multipart/form-data with a boundary'), 'application/json', seen)
    }
    let roots: CID[]
    let count = 0
    let bytes = 0
    try {
      const iterator = await CarBlockIterator.fromIterable(fileParts(body, boundary[1] ?? boundary[2]))
      roots = (await iterator.getRoots()).map((r) => CID.parse(r.toString()))
      for await (const block of iterator) {
        const cid = CID.parse(block.cid.toString())
        await checkBlock(cid, block.bytes)
        blocks.set(cid.toString(), block.bytes)
        count++
        bytes += block.bytes.length
        seen.blocks = count
      }
    } catch (e) {
      req.resume()
      return void reply(res, 500, kuboError(`importing CAR: ${(e as Error).message}`), 'application/json', seen)
    }
    const lines: string[] = []
    // Kubo lists the roots only when it pins them; a wrong root is reported whatever was asked
    for (const root of url.searchParams.get('pin-roots') === 'false' && behaviour.kind !== 'wrongRoot' ? [] : roots) {
      const key = behaviour.kind === 'wrongRoot' ? behaviour.root : root.toString()
      let pinError = behaviour.kind === 'pinError' ? behaviour.message : missingBelow(root)
      if (!pinError) pinned.add(key)
      else if (behaviour.kind !== 'pinError') pinError = `pinning root "${key}" FAILED: ${pinError}`
      lines.push(JSON.stringify({ Root: { Cid: { '/': key }, PinErrorMsg: pinError ?? '' } }))
    }
    if (url.searchParams.get('stats') === 'true') lines.push(JSON.stringify({ Stats: { BlockCount: count, BlockBytesCount: bytes } }))
    reply(res, 200, lines.map((l) => l + '\n').join(''), 'application/json', seen)
  }

  /**
   * `block/put` (a raw block, hashed here, pinned with `pin=true`, answered `{"Key","Size"}`) and
   * `routing/put?arg=/ipns/<name>` (the record checked with the ipns package's validator, as Kubo's
   * validator does, then kept in `records`; refused with Kubo's error JSON otherwise).
   */
  async function smallCall(
    url: URL,
    req: IncomingMessage,
    res: ServerResponse,
    body: AsyncIterable<Buffer>,
    seen: SeenRequest,
  ): Promise<void> {
    if (req.method !== 'POST') return void reply(res, 405, kuboError(`method ${req.method} not allowed`))
    if (requiredAuth !== undefined && req.headers.authorization !== requiredAuth) {
      drain(body).catch(() => {})
      return void reply(res, 401, kuboError('unauthorized: the Authorization header is missing or wrong'), 'application/json', seen)
    }
    const boundary = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(req.headers['content-type'] ?? '')
    if (!boundary)
      return void reply(res, 400, kuboError('request Content-Type is not multipart/form-data with a boundary'), 'application/json', seen)
    const parts: Uint8Array[] = []
    for await (const part of fileParts(body, boundary[1] ?? boundary[2])) parts.push(part)
    const bytes = new Uint8Array(Buffer.concat(parts))
    if (url.pathname === '/api/v0/block/put') {
      const cid = CID.createV1(0x55, await sha256.digest(bytes))
      blocks.set(cid.toString(), bytes)
      if (url.searchParams.get('pin') === 'true') pinned.add(cid.toString())
      return void reply(res, 200, JSON.stringify({ Key: cid.toString(), Size: bytes.length }) + '\n', 'application/json', seen)
    }
    const arg = url.searchParams.get('arg') ?? ''
    const name = /^\/ipns\/(.+)$/.exec(arg)?.[1]
    if (name === undefined || url.searchParams.get('allow-offline') !== 'true')
      return void reply(
        res,
        500,
        kuboError(name === undefined ? `invalid key ${arg}` : 'this action must be run in online mode'),
        'application/json',
        seen,
      )
    try {
      const key = CID.parse(name, name.startsWith('k') ? base36 : undefined)
      await ipnsValidator(multihashToIPNSRoutingKey(key.multihash as never), bytes)
    } catch (e) {
      return void reply(res, 500, kuboError(`can't put a ipns record: ${(e as Error).message}`), 'application/json', seen)
    }
    records.set(name, bytes)
    reply(res, 200, JSON.stringify({ Extra: '', ID: '', Responses: null, Type: 5 }) + '\n', 'application/json', seen)
  }

  /** Kubo's pin check: the first block under `root` it does not have, as its message, or undefined. */
  function missingBelow(root: CID): string | undefined {
    const stack = [root]
    const seen = new Set<string>()
    while (stack.length > 0) {
      const cid = stack.pop() as CID
      const key = cid.toString()
      if (seen.has(key) || cid.multihash.code === 0) continue
      seen.add(key)
      const bytes = blocks.get(key)
      if (!bytes) return `block was not found locally (offline): ipld: could not find ${key}`
      stack.push(...blockLinks(cid, bytes))
    }
    return undefined
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    blocks,
    pinned,
    records,
    direct,
    requests,
    next: (...b) => void queue.push(...b),
    requireAuthorization: (value) => void (requiredAuth = value),
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function reply(res: ServerResponse, status: number, body: string, type = 'application/json', seen?: SeenRequest): void {
  res.writeHead(status, { 'Content-Type': type, 'X-Chunked-Output': '1' })
  res.end(body)
  if (seen) seen.answered = true
}

function kuboError(message: string): string {
  return JSON.stringify({ Message: message, Code: 0, Type: 'error' }) + '\n'
}

/** The request body, counting bytes into `seen` as they arrive. */
async function* counted(req: IncomingMessage, seen: SeenRequest): AsyncGenerator<Buffer> {
  for await (const chunk of req as AsyncIterable<Buffer>) {
    seen.bytes += chunk.length
    yield chunk
  }
}

async function drain(body: AsyncIterable<Buffer>): Promise<void> {
  for await (const _ of body) {
    // discard
  }
}

const CRLF = Buffer.from('\r\n')

/**
 * The body of the first part of a multipart/form-data stream, as a stream of chunks (never the whole
 * body at once): finds the first delimiter, skips the part's headers, and yields bytes up to the next
 * delimiter, holding back only as many bytes as a delimiter could span.
 */
async function* fileParts(body: AsyncIterable<Buffer>, boundary: string): AsyncGenerator<Uint8Array> {
  const first = Buffer.from(`--${boundary}`)
  const delimiter = Buffer.from(`\r\n--${boundary}`)
  let buf: Buffer = Buffer.alloc(0)
  let phase: 'preamble' | 'headers' | 'body' | 'done' = 'preamble'
  for await (const chunk of body) {
    if (phase === 'done') continue // read the rest so the connection stays usable
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
    if (phase === 'preamble') {
      const at = buf.indexOf(first)
      if (at < 0) continue
      const eol = buf.indexOf(CRLF, at + first.length)
      if (eol < 0) continue
      buf = buf.subarray(eol + 2)
      phase = 'headers'
    }
    if (phase === 'headers') {
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) continue
      const headers = buf.subarray(0, end).toString('utf8')
      if (!/content-disposition:\s*form-data/i.test(headers))
        throw new Error(`multipart part without Content-Disposition: form-data: ${headers}`)
      buf = buf.subarray(end + 4)
      phase = 'body'
    }
    if (phase === 'body') {
      const at = buf.indexOf(delimiter)
      if (at >= 0) {
        if (at > 0) yield buf.subarray(0, at)
        buf = Buffer.alloc(0)
        phase = 'done'
        continue
      }
      const keep = delimiter.length - 1
      if (buf.length > keep) {
        yield buf.subarray(0, buf.length - keep)
        buf = Buffer.from(buf.subarray(buf.length - keep))
      }
    }
  }
  if (phase !== 'done') throw new Error('multipart body ended before its closing delimiter')
}
