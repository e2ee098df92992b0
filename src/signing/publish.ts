/**
 * What `publish` adds for signatures: the release's bundles go with it. A `dir:` target gets them as
 * files (`<dir>/signatures/<version>/<key-id>.sigstore.json`, the layout of the store); a Kubo node gets
 * each as a raw block, pinned (`block/put?pin=true`), its CID named in the receipt.
 */
import { join } from 'node:path'
import { CID } from '../cid.js'
import { STORE_DIR, type Dataset } from '../dataset.js'
import { CairnError } from '../errors.js'
import { authorizationHeader, KUBO_AUTH_ENV } from '../targets/kubo.js'
import { describeFailure, retry, HttpStatusError, retryOptionsFromEnv } from '../util/retry.js'
import { parseBundle } from './bundle.js'
import { keepBundle, readBundles } from './store.js'

/**
 * Puts the bundles kept for `version` on the target whose address is `address` (`dir:<abs path>` or
 * `kubo:<url>`; other targets get none). Returns what was put: file paths or block CIDs. Throws `IO`,
 * `PUBLISH_FAILED` or `AUTH` as the target would.
 */
export async function publishSignatures(dataset: Dataset, version: CID, address: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const bundles = await readBundles(join(dataset.root, STORE_DIR), version)
  const out: string[] = []
  for (const b of bundles) {
    const parsed = parseBundle(b.text, b.from)
    if (address.startsWith('dir:')) out.push(await keepBundle(address.slice(4), version, parsed.keyHint, b.text))
    else if (address.startsWith('kubo:')) out.push(await putBlock(address.slice(5), Buffer.from(b.text, 'utf8'), env))
  }
  return out
}

async function putBlock(rpc: string, bytes: Uint8Array, env: NodeJS.ProcessEnv): Promise<string> {
  const base = new URL(rpc)
  const headers: Record<string, string> = {}
  if (env[KUBO_AUTH_ENV]) headers.authorization = authorizationHeader(env[KUBO_AUTH_ENV])
  const url = `${base.origin}${base.pathname.replace(/\/+$/, '')}/api/v0/block/put?cid-codec=raw&mhtype=sha2-256&pin=true`
  const what = `kubo:${base.origin}`
  try {
    return await retry(
      async () => {
        const form = new FormData()
        form.append('file', new Blob([bytes as Uint8Array<ArrayBuffer>]), 'bundle')
        const res = await fetch(url, { method: 'POST', headers, body: form, signal: AbortSignal.timeout(30_000) })
        const text = await res.text()
        if (res.status === 401 || res.status === 403)
          throw new CairnError('AUTH', `${what} refused the signature: HTTP ${res.status}`, { subject: what, hint: `set ${KUBO_AUTH_ENV}` })
        if (res.status !== 200) throw new HttpStatusError(res.status, `HTTP ${res.status}: ${text.slice(0, 200)}`)
        const key = (JSON.parse(text) as { Key?: string }).Key
        const cid = key === undefined ? undefined : CID.parse(key)
        if (cid === undefined) throw new Error(`block/put answered no Key: ${text.slice(0, 200)}`)
        return cid.toString()
      },
      { what: `putting a signature to ${what}`, subject: what },
      retryOptionsFromEnv(env),
    )
  } catch (e) {
    if (e instanceof CairnError) throw e
    throw new CairnError('PUBLISH_FAILED', `${what} refused a signature: ${describeFailure(e)}`, { subject: what, cause: e })
  }
}
