/**
 * The real Storacha upload service on loopback (docs: /work/shared/notes/storacha-loopback.md).
 * `@storacha/upload-api`'s own test context builds the real service (real capability handlers, real
 * UCAN validation) over in-memory stores, with real loopback HTTP storage nodes that check the SHA-256
 * of every PUT. This helper puts its ucanto channel behind a `node:http` server on 127.0.0.1 and serves
 * receipts from its agent store, so the real `@storacha/client` talks to it over real sockets. Email,
 * IPNI, claims and deal tracking stay test doubles.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import * as Context from '@storacha/upload-api/test/context'
import * as Ed25519 from '@storacha/client/principal/ed25519'
import { Message, delegate, parseLink } from '@ucanto/core'
import * as CAR from '@ucanto/transport/car'
import * as Link from 'multiformats/link'
import { base58btc } from 'multiformats/bases/base58'
import { base64 } from 'multiformats/bases/base64'
import { identity } from 'multiformats/hashes/identity'

/** The abilities the `storacha` target needs in its space delegation. */
export const PUBLISH_ABILITIES = ['space/blob/add', 'space/index/add', 'filecoin/offer', 'upload/add'] as const

/** Credentials as a CI job would hold them: `STORACHA_PRINCIPAL` and `STORACHA_PROOF`. */
export interface LoopbackCredentials {
  /** The agent's ed25519 private key, multibase (what `storacha key create` prints). */
  readonly principal: string
  /** A base64 identity-CID CAR of the space delegation (what `storacha delegation create --base64` prints). */
  readonly proof: string
  readonly agent: `did:key:${string}`
  readonly space: `did:key:${string}`
}

/** Options of {@link StorachaLoopback.credentials}. */
export interface CredentialOptions {
  /** Register a storage provider for the space, as `storacha space provision` would (default true). */
  readonly provision?: boolean
  /** Abilities to delegate (default {@link PUBLISH_ABILITIES}). */
  readonly abilities?: readonly string[]
  /** Expiration in seconds since 1970 (default never). */
  readonly expiration?: number
}

/** One row of the service's upload table. */
export interface LoopbackUpload {
  readonly space: string
  readonly root: string
  readonly shards: readonly string[]
}

/** Options of {@link StorachaLoopback.failRequests}. */
export interface FailOptions {
  readonly count: number
  /** `writes-disabled`: HTTP 410 with a refusal of new writes, as a service that stopped taking uploads answers. */
  readonly mode: 503 | 'reset' | 'writes-disabled'
  /** Only requests whose first invocation has this ability (e.g. `ucan/conclude`). */
  readonly can?: string
}

/** A running loopback service. */
export interface StorachaLoopback {
  /** The service URL (`STORACHA_SERVICE_URL`). */
  readonly url: string
  /** The service DID (`STORACHA_SERVICE_DID`). */
  readonly did: string
  /** Where receipts are served (`STORACHA_RECEIPTS_URL`). */
  readonly receiptsUrl: string
  /** The upload-api test context (stores, mail, storage nodes). */
  readonly context: Awaited<ReturnType<typeof Context.createContext>>
  /** The `STORACHA_SERVICE_*` variables pointing at this service. */
  serviceEnv(): Record<string, string>
  /** A fresh agent key and space, the space delegated to the agent. */
  credentials(options?: CredentialOptions): Promise<LoopbackCredentials>
  /** The service's upload table. */
  uploads(): LoopbackUpload[]
  /** The bytes a storage node holds for the blob with this CAR CID (or undefined). */
  blob(carCid: string): Promise<Uint8Array | undefined>
  /**
   * Makes the service fail the next `count` ucanto POSTs (only those invoking `can`, when given): with
   * HTTP 503, or by resetting the connection.
   */
  failRequests(options: FailOptions): void
  /** ucanto POSTs handled so far. */
  readonly posts: number
  /** Stops every server. */
  close(): Promise<void>
}

/** Starts the real upload service with in-memory stores on 127.0.0.1 (call `close` after). */
export async function startStorachaLoopback(): Promise<StorachaLoopback> {
  const context = await Context.createContext({ http, requirePaymentPlan: false })
  await renewMockProofs(context)
  let failing: { count: number; mode: FailOptions['mode']; can?: string } | undefined
  let posts = 0
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((e: unknown) => {
      console.error('storacha loopback:', e)
      if (!res.headersSent) res.writeHead(500)
      res.end()
    })
  })
  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (req.method === 'POST') {
      posts++
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]))
      const body = new Uint8Array(Buffer.concat(chunks))
      if (failing && failing.count > 0 && (failing.can === undefined || (await abilityOf(headers, body)) === failing.can)) {
        failing.count--
        if (failing.mode === 'reset') {
          req.socket.destroy()
          return
        }
        if (failing.mode === 'writes-disabled') {
          res.writeHead(410, { 'content-type': 'text/plain' })
          res.end('new uploads are disabled: this service no longer accepts writes (loopback test)')
          return
        }
        res.writeHead(503, { 'content-type': 'text/plain' })
        res.end('service unavailable (loopback test)')
        return
      }
      const out = await context.connection.channel.request({ headers, body } as never)
      res.writeHead((out as { status?: number }).status ?? 200, out.headers)
      res.end(Buffer.from(out.body))
      return
    }
    if (req.method === 'GET' && url.pathname.startsWith('/receipt/')) {
      const task = parseLink(url.pathname.slice('/receipt/'.length))
      const found = await context.agentStore.receipts.get(task as never)
      if (found.error) {
        res.writeHead(404)
        res.end()
        return
      }
      const message = await Message.build({ receipts: [found.ok as never] })
      const encoded = CAR.request.encode(message)
      res.writeHead(200, encoded.headers)
      res.end(Buffer.from(encoded.body))
      return
    }
    res.writeHead(404)
    res.end()
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const did = context.id.did()

  return {
    url: base,
    did,
    receiptsUrl: `${base}/receipt/`,
    context,
    get posts() {
      return posts
    },
    serviceEnv: () => ({ STORACHA_SERVICE_URL: base, STORACHA_SERVICE_DID: did, STORACHA_RECEIPTS_URL: `${base}/receipt/` }),
    async credentials(options = {}) {
      const agent = await Ed25519.generate()
      const space = await Ed25519.generate()
      const delegation = await delegate({
        issuer: space,
        audience: agent,
        capabilities: (options.abilities ?? PUBLISH_ABILITIES).map((can) => ({ can, with: space.did() })) as never,
        expiration: options.expiration ?? Infinity,
      })
      const archive = await delegation.archive()
      if (archive.error) throw archive.error
      const proof = Link.create(0x0202, identity.digest(archive.ok)).toString(base64)
      if (options.provision ?? true) {
        const put = await context.provisionsStorage.put({
          cause: delegation as never,
          consumer: space.did(),
          customer: 'did:mailto:example.com:ci',
          provider: did as never,
        })
        if (put.error) throw new Error(put.error.message)
      }
      return { principal: Ed25519.format(agent), proof, agent: agent.did(), space: space.did() }
    },
    uploads: () =>
      (context.uploadTable as unknown as { items: { space: string; root: unknown; shards?: unknown[] }[] }).items.map((i) => ({
        space: i.space,
        root: String(i.root),
        shards: (i.shards ?? []).map(String),
      })),
    async blob(carCid) {
      const key = base58btc.encode(Link.parse(carCid).multihash.bytes)
      for (const node of context.storageProviders as unknown as { server?: http.Server }[]) {
        const address = node.server?.address() as AddressInfo | null | undefined
        if (!address) continue
        const res = await fetch(`http://127.0.0.1:${address.port}/${key}/${key}.blob`)
        if (res.status === 200) return new Uint8Array(await res.arrayBuffer())
        await res.arrayBuffer()
      }
      return undefined
    },
    failRequests({ count, mode, can }) {
      failing = { count, mode, can }
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await Context.cleanupContext(context)
    },
  }
}

/** The ability of a ucanto request's first invocation. */
async function abilityOf(headers: Record<string, string>, body: Uint8Array): Promise<string | undefined> {
  try {
    const message = await CAR.request.decode({ headers, body } as never)
    return (message as unknown as { invocations: { capabilities: { can: string }[] }[] }).invocations[0]?.capabilities[0]?.can
  } catch {
    return undefined
  }
}

/**
 * The context's indexing-service and content-claims doubles authorise the service with ucanto's
 * default 30-second delegations, so every `space/index/add` fails ("Proof … has expired") once the
 * context is older than that: renew them without expiry. Only the doubles' own proofs change.
 */
async function renewMockProofs(context: Awaited<ReturnType<typeof Context.createContext>>): Promise<void> {
  type Config = { invocationConfig: { issuer: { did(): string }; audience: unknown; with: string; proofs: unknown[] } }
  for (const mock of [context.indexingService, context.claimsService] as unknown as Config[]) {
    const config = mock?.invocationConfig
    if (!config || typeof (config.audience as { sign?: unknown }).sign !== 'function') {
      throw new Error(
        'storacha loopback: the upload-api test context changed shape (pin @storacha/upload-api to the version this helper was written for)',
      )
    }
    config.proofs = [
      await delegate({
        issuer: config.audience as never,
        audience: config.issuer as never,
        capabilities: [{ can: 'assert/*', with: config.with as `did:${string}:${string}` }] as never,
        expiration: Infinity,
      }),
    ]
  }
}
