/**
 * The trust routes of `cairn serve` (docs/names.md), apart from the block gateway:
 * - `GET /ipns/{name}` with `?format=ipns-record` or `Accept: application/vnd.ipfs.ipns-record`: the
 *   name's record (trustless gateway spec);
 * - `GET /routing/v1/ipns/{name}`: the record; `PUT /routing/v1/ipns/{name}`: store a record
 *   (Delegated Routing V1), accepted when valid for the name and not older than the one held;
 * - `GET /cairn/signatures/{version-cid}`: `{"version": "<cid>", "bundles": [<bundle>…]}`.
 * Records are read from the dataset's store and each `dir:` folder (the highest valid sequence wins) and
 * written to the store, else the first `dir:` folder.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { tryParseCid } from '../cid.js'
import type { BlockSource } from '../store/blocks.js'
import { isCairnError } from '../errors.js'
import { parseBundle } from '../signing/bundle.js'
import { MAX_BUNDLES, readBundles, SIGNATURES_URL_PATH } from '../signing/store.js'
import { parseName, type IpnsName } from './name.js'
import { readRecordFile, writeRecordFile } from './places.js'
import { MAX_RECORD_BYTES, RECORD_MEDIA_TYPE, validateRecord, type ValidRecord } from './record.js'

/** Where the trust routes read and write. */
export interface TrustRoutesOptions {
  /** The served dataset's store folder (`.cairn/`), if any. */
  readonly storeDir?: string
  /** The served `dir:` folders. */
  readonly dirs: readonly string[]
  /** The blocks served, for `GET /routing/v1/providers/{cid}` (this server is named the provider of what it holds). */
  readonly blocks?: BlockSource
}

/** A request handler that answers the trust routes and returns false for any other request. */
export type TrustRoutes = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

/** Makes the handler. */
export function trustRoutes(options: TrustRoutesOptions): TrustRoutes {
  const bases = [...(options.storeDir ? [options.storeDir] : []), ...options.dirs.map((d) => d.replace(/^dir:/, ''))]
  let peerId: Promise<string> | undefined
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const providers = /^\/routing\/v1\/providers\/([^/]+)\/?$/.exec(url.pathname)
    if (providers !== null && options.blocks !== undefined) {
      res.setHeader('X-Content-Type-Options', 'nosniff')
      peerId ??= generateKeyPair('Ed25519').then((k) => k.publicKey.toString())
      return answerProviders(req, res, providers[1], options.blocks, await peerId)
    }
    const routing = /^\/routing\/v1\/ipns\/([^/]+)\/?$/.exec(url.pathname)
    const gateway = /^\/ipns\/([^/]+)\/?$/.exec(url.pathname)
    const signatures = url.pathname.startsWith(SIGNATURES_URL_PATH) ? url.pathname.slice(SIGNATURES_URL_PATH.length) : undefined
    if (routing === null && signatures === undefined) {
      if (gateway === null) return false
      // anything but a record (content by name, DNSLink) is the block gateway's to refuse
      const wantsRecord = url.searchParams.get('format') === 'ipns-record' || (req.headers.accept ?? '').includes(RECORD_MEDIA_TYPE)
      if (!wantsRecord) return false
    }
    res.setHeader('X-Content-Type-Options', 'nosniff')
    if (signatures !== undefined) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(res, 'GET, HEAD')
      const version = tryParseCid(signatures.replace(/\/+$/, ''))
      if (version === undefined) return reply(res, 400, `${signatures} is not a CID\n`)
      const bundles: unknown[] = []
      for (const base of bases) {
        for (const b of await readBundles(base, version)) {
          if (bundles.length >= MAX_BUNDLES) break
          try {
            bundles.push(parseBundle(b.text, b.from).json)
          } catch {
            // a damaged file is not served
          }
        }
      }
      if (bundles.length === 0) return reply(res, 404, `no signatures of ${version} here\n`)
      const body = JSON.stringify({ version: version.toString(), bundles })
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' })
      res.end(req.method === 'HEAD' ? undefined : body)
      return true
    }
    const text = (routing ?? gateway)![1]
    let name: IpnsName
    try {
      name = parseName(decodeURIComponent(text))
    } catch {
      return reply(res, 400, `${text} is not an IPNS name of an Ed25519 key\n`)
    }
    if (req.method === 'PUT' && routing !== null) return put(req, res, name, bases)
    if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(res, routing ? 'GET, HEAD, PUT' : 'GET, HEAD')
    const best = await bestRecord(name, bases)
    if (best === undefined) return reply(res, 404, `no record for ${name.name} here\n`)
    const maxAge = Math.max(0, Math.min(Math.floor(best.ttlMs / 1000), Math.floor((best.validity.getTime() - Date.now()) / 1000)))
    res.writeHead(200, {
      'content-type': RECORD_MEDIA_TYPE,
      'content-length': best.bytes.length,
      'cache-control': `public, max-age=${maxAge}`,
      etag: `"${name.name}.${best.sequence}"`,
    })
    res.end(req.method === 'HEAD' ? undefined : best.bytes)
    return true
  }
}

/** The valid record with the highest sequence among the bases, if any. */
async function bestRecord(name: IpnsName, bases: readonly string[]): Promise<ValidRecord | undefined> {
  let best: ValidRecord | undefined
  for (const base of bases) {
    const bytes = await readRecordFile(base, name.name).catch(() => undefined)
    if (bytes === undefined) continue
    try {
      const r = validateRecord(name, bytes, base)
      if (best === undefined || r.sequence > best.sequence) best = r
    } catch (e) {
      if (!isCairnError(e)) throw e
    }
  }
  return best
}

async function put(req: IncomingMessage, res: ServerResponse, name: IpnsName, bases: readonly string[]): Promise<boolean> {
  if (bases.length === 0) return reply(res, 501, 'this server keeps no records\n')
  const tooLarge = (): true => {
    // answer first, then drop the connection: the rest of the body is never read
    res.setHeader('Connection', 'close')
    reply(res, 413, `a record is at most ${MAX_RECORD_BYTES} bytes\n`)
    res.on('finish', () => req.destroy())
    return true
  }
  if (Number(req.headers['content-length'] ?? 0) > MAX_RECORD_BYTES) return tooLarge()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_RECORD_BYTES) return tooLarge()
    chunks.push(chunk as Buffer)
  }
  let record: ValidRecord
  try {
    record = validateRecord(name, new Uint8Array(Buffer.concat(chunks)), 'the request')
  } catch (e) {
    if (!isCairnError(e)) throw e
    return reply(res, 400, `${e.message}\n`)
  }
  const held = await bestRecord(name, bases)
  if (held !== undefined && held.sequence > record.sequence)
    return reply(res, 409, `a record with a higher sequence (${held.sequence}) is held for ${name.name}\n`)
  await writeRecordFile(join(bases[0]), name.name, record.bytes)
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end('stored\n')
  return true
}

/**
 * Delegated Routing V1 `GET /routing/v1/providers/{cid}`: this server itself, as a trustless gateway
 * (`transport-ipfs-gateway-http` at the address the client used), when it holds the block; else 404.
 * The peer ID is a throwaway key of this process: gateway providers are reached by address, not by ID.
 */
async function answerProviders(
  req: IncomingMessage,
  res: ServerResponse,
  text: string,
  blocks: BlockSource,
  peerId: string,
): Promise<true> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return methodNotAllowed(res, 'GET, HEAD')
  const cid = tryParseCid(text)
  if (cid === undefined) return reply(res, 400, `${text} is not a CID\n`)
  const held = await blocks.get(cid).then(
    () => true,
    () => false,
  )
  const host = /^(\[[0-9a-f:.]+\]|[0-9.]+):(\d+)$/i.exec(req.headers.host ?? '')
  if (!held || host === null) return reply(res, 404, `no provider of ${cid} here\n`)
  const ip = host[1].startsWith('[') ? `/ip6/${host[1].slice(1, -1)}` : `/ip4/${host[1]}`
  const body = JSON.stringify({
    Providers: [{ Schema: 'peer', ID: peerId, Addrs: [`${ip}/tcp/${host[2]}/http`], Protocols: ['transport-ipfs-gateway-http'] }],
  })
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' })
  res.end(req.method === 'HEAD' ? undefined : body)
  return true
}

function reply(res: ServerResponse, status: number, text: string): true {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' })
  res.end(text)
  return true
}

function methodNotAllowed(res: ServerResponse, allow: string): true {
  res.setHeader('Allow', allow)
  return reply(res, 405, `only ${allow}\n`)
}
