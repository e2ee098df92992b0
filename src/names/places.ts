/**
 * Where IPNS records are put and read (docs/names.md):
 * - a `dir:` target or a dataset store: the file `ipns/<name>.ipns-record`;
 * - a Kubo node: `POST /api/v0/routing/put?arg=/ipns/<name>` (the record as a multipart file);
 * - a Delegated Routing V1 endpoint: `PUT`/`GET <url>/routing/v1/ipns/<name>`;
 * - a gateway: `GET <url>/ipns/<name>?format=ipns-record` (trustless gateway spec).
 */
import { mkdir, readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { STORE_DIR } from '../dataset.js'
import { CairnError, ioError } from '../errors.js'
import { authorizationHeader, KUBO_AUTH_ENV } from '../targets/kubo.js'
import { writeFileAtomic } from '../util/atomic.js'
import { describeFailure, HttpStatusError, retry, retryOptionsFromEnv } from '../util/retry.js'
import { MAX_RECORD_BYTES, RECORD_MEDIA_TYPE } from './record.js'

/** The folder of records inside a store or a `dir:` target. */
export const RECORDS_DIR = 'ipns'

/** The record file of `name` under `base`. */
export function recordPath(base: string, name: string): string {
  return join(base, RECORDS_DIR, `${name}.ipns-record`)
}

/** Writes a record file atomically. Throws `IO`. */
export async function writeRecordFile(base: string, name: string, bytes: Uint8Array): Promise<string> {
  const file = recordPath(base, name)
  try {
    await mkdir(join(file, '..'), { recursive: true })
    await writeFileAtomic(file, bytes)
  } catch (e) {
    throw ioError('write the IPNS record', file, e)
  }
  return file
}

/** The record file of `name` under `base`, or undefined when there is none. */
export async function readRecordFile(base: string, name: string): Promise<Uint8Array | undefined> {
  const file = recordPath(base, name)
  const st = await stat(file).catch(() => undefined)
  if (!st?.isFile()) return undefined
  // an oversized file is not read: a buffer of its (capped) size is enough for the validator to refuse it by size
  if (st.size > MAX_RECORD_BYTES) return new Uint8Array(MAX_RECORD_BYTES + 1)
  return new Uint8Array(await readFile(file))
}

/** The folder holding records for a local spec (`dir:<path>`, a `dir:` folder, a dataset folder). */
export async function localBase(spec: string): Promise<string> {
  const path = resolve(spec.startsWith('dir:') ? spec.slice(4) : spec)
  if (await stat(join(path, STORE_DIR, 'store.json')).catch(() => undefined)) return join(path, STORE_DIR)
  return path
}

/** Options of the network puts. */
export interface PutOptions {
  readonly env?: NodeJS.ProcessEnv
  readonly timeoutMs?: number
}

/**
 * `PUT <router>/routing/v1/ipns/<name>` (Delegated Routing V1). Transient failures (5xx, 408, 429,
 * resets) are retried; a 4xx refusal fails at once. Throws `PUBLISH_FAILED` naming the router.
 */
export async function putToRouter(router: string, name: string, bytes: Uint8Array, options: PutOptions = {}): Promise<void> {
  const url = `${router.replace(/\/+$/, '')}/routing/v1/ipns/${name}`
  await send(url, { method: 'PUT', headers: { 'content-type': RECORD_MEDIA_TYPE }, body: bytes }, `router ${router}`, options)
}

/** `POST <kubo>/api/v0/routing/put?arg=/ipns/<name>&allow-offline=true` with the record. Throws `PUBLISH_FAILED` or `AUTH`. */
export async function putToKubo(rpc: string, name: string, bytes: Uint8Array, options: PutOptions = {}): Promise<void> {
  const env = options.env ?? process.env
  const base = new URL(rpc)
  const headers: Record<string, string> = {}
  const auth = env[KUBO_AUTH_ENV]
  if (auth) headers.authorization = authorizationHeader(auth)
  else if (base.username)
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(base.username)}:${decodeURIComponent(base.password)}`).toString('base64')}`
  base.username = ''
  base.password = ''
  const url = `${base.toString().replace(/\/+$/, '')}/api/v0/routing/put?arg=${encodeURIComponent(`/ipns/${name}`)}&allow-offline=true`
  await send(
    url,
    () => {
      const form = new FormData()
      form.append('file', new Blob([bytes as Uint8Array<ArrayBuffer>]), 'record')
      return { method: 'POST', headers, body: form }
    },
    `kubo:${base.origin}`,
    options,
  )
}

async function send(url: string, init: RequestInit | (() => RequestInit), what: string, options: PutOptions): Promise<void> {
  await retry(
    async () => {
      const res = await fetch(url, {
        ...(typeof init === 'function' ? init() : init),
        signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
      })
      const text = (await res.text().catch(() => '')).slice(0, 300).trim()
      if (res.status === 401 || res.status === 403)
        throw new CairnError('AUTH', `${what} refused the record: HTTP ${res.status} ${text}`, {
          subject: what,
          hint: `set ${KUBO_AUTH_ENV} to the Authorization the node expects`,
        })
      if (res.status >= 300) throw new HttpStatusError(res.status, `HTTP ${res.status}${text ? `: ${text}` : ''}`)
    },
    { what: `putting the IPNS record to ${what}`, subject: what },
    { ...retryOptionsFromEnv(options.env ?? process.env) },
  ).catch((e: unknown) => {
    if (e instanceof CairnError) throw e
    throw new CairnError('PUBLISH_FAILED', `${what} refused the IPNS record: ${describeFailure(e)}`, { subject: what, cause: e })
  })
}

/**
 * Fetches the record of `name` from a gateway or router URL: the Delegated Routing V1 path first, then
 * the trustless gateway path. Returns undefined when the place has none (404); throws `FETCH_FAILED`
 * for other failures (naming the URL) and for a body over {@link MAX_RECORD_BYTES} (read no further).
 */
export async function fetchRecord(base: string, name: string, timeoutMs = 30_000): Promise<Uint8Array | undefined> {
  const root = base.replace(/\/+$/, '')
  const failures: string[] = []
  for (const url of [`${root}/routing/v1/ipns/${name}`, `${root}/ipns/${name}?format=ipns-record`]) {
    try {
      const res = await fetch(url, { headers: { accept: RECORD_MEDIA_TYPE }, signal: AbortSignal.timeout(timeoutMs) })
      if (res.status === 404 || res.status === 400 || res.status === 406 || res.status === 501) {
        await res.body?.cancel()
        continue
      }
      if (res.status !== 200) {
        await res.body?.cancel()
        failures.push(`${url}: HTTP ${res.status}`)
        continue
      }
      const chunks: Uint8Array[] = []
      let size = 0
      for await (const chunk of res.body ?? []) {
        size += (chunk as Uint8Array).length
        chunks.push(chunk as Uint8Array)
        // one byte past the limit is enough for the validator to refuse it by size
        if (size > MAX_RECORD_BYTES) break
      }
      return new Uint8Array(Buffer.concat(chunks))
    } catch (e) {
      failures.push(`${url}: ${describeFailure(e)}`)
    }
  }
  if (failures.length > 0)
    throw new CairnError('FETCH_FAILED', `Cannot fetch the IPNS record of ${name}: ${failures.join('; ')}`, {
      subject: name,
      details: failures,
    })
  return undefined
}
