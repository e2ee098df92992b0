/**
 * Asking a place whether it holds a block, for `check`: a trustless gateway (`HEAD /ipfs/<cid>?format=raw`),
 * a `dir:` folder (its block index, then the block read and checked), a CAR file or dataset folder
 * (read and checked), a Kubo node (`block/stat`, offline).
 */
import * as http from 'node:http'
import * as https from 'node:https'
import type { CID } from '../cid.js'
import { CairnError, isCairnError } from '../errors.js'
import { openSource, type Source } from '../sources/index.js'
import { authorizationHeader, KUBO_AUTH_ENV } from '../targets/kubo.js'

/** One place to ask. */
export interface Probe {
  /** The place as the user named it (paths made absolute for `dir:`). */
  readonly name: string
  /**
   * True when the place holds `cid` (for places read here: the bytes matched the CID), false when it
   * says it does not. Throws when it cannot be asked (connection refused, a timeout, a 5xx).
   */
  has(cid: CID): Promise<boolean>
  close(): Promise<void>
}

/** Options of {@link openProbe}. */
export interface ProbeOptions {
  readonly timeoutMs?: number
  readonly env: NodeJS.ProcessEnv
}

/**
 * Opens a probe for a `--from` source or a `--to` target. Throws `USAGE` for a place cairn cannot ask
 * (`storacha`: check it through a gateway that serves it, `--from https://…`).
 */
export async function openProbe(spec: string, kind: 'source' | 'target', options: ProbeOptions): Promise<Probe> {
  const timeoutMs = options.timeoutMs ?? 30_000
  if (/^https?:\/\//i.test(spec)) return gatewayProbe(spec, timeoutMs)
  if (spec.startsWith('kubo:')) return kuboProbe(spec.slice(5), timeoutMs, options.env[KUBO_AUTH_ENV])
  if (spec === 'storacha' || spec.startsWith('storacha:')) {
    throw new CairnError('USAGE', `check cannot ask ${spec} directly (the service has no per-block question)`, {
      subject: spec,
      hint: 'check it through a gateway that reads from it: --from https://<gateway>',
    })
  }
  if (kind === 'target' && !spec.startsWith('dir:')) {
    throw new CairnError('USAGE', `--to ${JSON.stringify(spec)}: check knows dir:<path> and kubo:<rpc-url> targets`, { subject: spec })
  }
  return sourceProbe(await openSource(spec))
}

/** A source cairn reads itself: the block is fetched and checked against its CID. */
function sourceProbe(source: Source): Probe {
  return {
    name: source.name,
    async has(cid) {
      try {
        await source.get(cid)
        return true
      } catch (e) {
        if (isCairnError(e, 'MISSING_BLOCK')) return false
        if (isCairnError(e, 'CORRUPT_BLOCK')) return false // bytes that are not the block are not the block
        throw e
      }
    },
    close: () => source.close(),
  }
}

function gatewayProbe(base: string, timeoutMs: number): Probe {
  const root = base.replace(/\/+$/, '')
  return {
    name: root,
    async has(cid) {
      const status = await request(new URL(`${root}/ipfs/${cid}?format=raw`), 'HEAD', timeoutMs, { Accept: 'application/vnd.ipld.raw' })
      if (status.code === 200) return true
      if (status.code === 404 || status.code === 410) return false
      throw new Error(`${root} answered HTTP ${status.code} for ${cid}`)
    },
    close: async () => {},
  }
}

function kuboProbe(url: string, timeoutMs: number, auth: string | undefined): Probe {
  const base = url.replace(/\/+$/, '').replace(/\/api\/v0$/, '')
  const headers: Record<string, string> = { Accept: 'application/json', ...(auth ? { Authorization: authorizationHeader(auth) } : {}) }
  return {
    name: `kubo:${base}`,
    async has(cid) {
      const status = await request(new URL(`${base}/api/v0/block/stat?arg=${cid}&offline=true`), 'POST', timeoutMs, headers)
      if (status.code === 200) return true
      if (status.code === 500 && /not found|could not find|no such block/i.test(status.body)) return false
      if (status.code === 401 || status.code === 403) {
        throw new CairnError('AUTH', `kubo:${base} refused the credentials (HTTP ${status.code})`, {
          subject: `kubo:${base}`,
          hint: `set ${KUBO_AUTH_ENV}`,
        })
      }
      throw new Error(`kubo:${base} answered HTTP ${status.code} for ${cid}: ${status.body.slice(0, 200)}`)
    },
    close: async () => {},
  }
}

/** One request without a body: its status and the first 4 KiB of its answer. */
function request(url: URL, method: string, timeoutMs: number, headers: Record<string, string>): Promise<{ code: number; body: string }> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === 'https:' ? https : http
    const req = client.request(url, { method, timeout: timeoutMs, headers })
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer from ${url.origin} within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
    )
    req.on('error', reject)
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        if (body.length < 4096) body += c
      })
      res.on('error', reject)
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body }))
    })
    req.end()
  })
}
