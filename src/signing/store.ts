/**
 * Where signatures live, beside a release and never inside it (signing does not change a version's
 * CID): `<folder>/signatures/<version-cid>/<key-id>.sigstore.json`, one bundle per signing key, in a
 * dataset's store (`.cairn/`) and in a `dir:` target alike. Bundles from elsewhere (sources) are fetched
 * with {@link fetchSignatures}. See docs/signing.md.
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { tryParseCid, type CID } from '../cid.js'
import { STORE_DIR } from '../dataset.js'
import { ioError } from '../errors.js'
import { writeFileAtomic } from '../util/atomic.js'
import { MAX_BUNDLE_BYTES } from './bundle.js'

/** The folder of signatures inside a store or a `dir:` target. */
export const SIGNATURES_DIR = 'signatures'
/** The file name suffix of a bundle. */
export const BUNDLE_SUFFIX = '.sigstore.json'
/** At most this many bundles are read for one version from one place. */
export const MAX_BUNDLES = 64
/** The URL path under which `cairn serve` lists a version's bundles: `GET /cairn/signatures/{version-cid}`. */
export const SIGNATURES_URL_PATH = '/cairn/signatures/'

/** One bundle as kept: where, and its text. */
export interface KeptBundle {
  /** A file path, or the URL it came from. */
  readonly from: string
  readonly text: string
}

/** The bundle file of `version` signed by `keyId` under `base` (a store or a `dir:` folder). */
export function bundlePath(base: string, version: CID, keyId: string): string {
  return join(base, SIGNATURES_DIR, version.toString(), `${keyId}${BUNDLE_SUFFIX}`)
}

/** Writes a bundle atomically (replacing the same key's earlier bundle of that version). Throws `IO`. */
export async function keepBundle(base: string, version: CID, keyId: string, text: string): Promise<string> {
  const file = bundlePath(base, version, keyId)
  try {
    await mkdir(join(file, '..'), { recursive: true })
    await writeFileAtomic(file, text)
  } catch (e) {
    throw ioError('write the signature', file, e)
  }
  return file
}

/** The bundles kept under `base` for `version` (at most {@link MAX_BUNDLES}, oversized files skipped). */
export async function readBundles(base: string, version: CID): Promise<KeptBundle[]> {
  const dir = join(base, SIGNATURES_DIR, version.toString())
  let names: string[]
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith(BUNDLE_SUFFIX)).sort()
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return []
    throw ioError('read', dir, e)
  }
  const out: KeptBundle[] = []
  for (const name of names.slice(0, MAX_BUNDLES)) {
    const file = join(dir, name)
    const st = await stat(file).catch(() => undefined)
    if (!st?.isFile() || st.size > MAX_BUNDLE_BYTES) continue
    out.push({ from: file, text: await readFile(file, 'utf8') })
  }
  return out
}

/** Every version CID that has a signatures folder under `base`. */
export async function signedVersions(base: string): Promise<CID[]> {
  const dir = join(base, SIGNATURES_DIR)
  const names = await readdir(dir).catch(() => [] as string[])
  return names.map((n) => tryParseCid(n)).filter((c): c is CID => c !== undefined)
}

/**
 * Bundles of `version` from the sources a clone or verify was given: a gateway URL (`cairn serve`'s
 * {@link SIGNATURES_URL_PATH}), a `dir:` folder, a dataset folder. CAR files and gateways without the
 * route have none. Never throws for a source that has none or fails: signatures are an addition, and a
 * missing one is reported later as `NOT_SIGNED` when one is asked for.
 */
export async function fetchSignatures(specs: readonly string[], version: CID, timeoutMs = 30_000): Promise<KeptBundle[]> {
  // the sources are asked at once; once one has answered, the others get a grace, not the whole
  // timeout: a stalled gateway among several must not hold a clone for its timeout
  const stops = specs.map(() => new AbortController())
  const timer = setTimeout(() => stops.forEach((s) => s.abort()), timeoutMs)
  const start = performance.now()
  let grace: NodeJS.Timeout | undefined
  const answered = (): void => {
    grace ??= setTimeout(() => stops.forEach((s) => s.abort()), Math.max(SIGNATURE_GRACE_MS, 4 * (performance.now() - start)))
  }
  try {
    const found = await Promise.all(
      specs.map(async (spec, i) => {
        try {
          if (/^https?:\/\//i.test(spec)) return await fetchFromGateway(spec, version, stops[i].signal, answered)
          const path = resolve(spec.startsWith('dir:') ? spec.slice(4) : spec)
          const isStore = await stat(join(path, STORE_DIR, 'store.json')).catch(() => undefined)
          return await readBundles(isStore ? join(path, STORE_DIR) : path, version)
        } catch {
          // a source without signatures, or one that fails, adds none
          return []
        }
      }),
    )
    return found.flat()
  } finally {
    clearTimeout(timer)
    clearTimeout(grace)
  }
}

/** How long the other sources may still take once one answered (at least; 4× that one's time if longer). */
const SIGNATURE_GRACE_MS = 200

async function fetchFromGateway(base: string, version: CID, signal: AbortSignal, answered: () => void): Promise<KeptBundle[]> {
  const url = `${base.replace(/\/+$/, '')}${SIGNATURES_URL_PATH}${version}`
  const res = await fetch(url, { signal, headers: { accept: 'application/json' } })
  answered()
  if (res.status !== 200) {
    await res.body?.cancel()
    return []
  }
  const text = await readLimited(res, MAX_BUNDLE_BYTES * MAX_BUNDLES)
  const body = JSON.parse(text) as { bundles?: unknown }
  if (!Array.isArray(body.bundles)) return []
  return body.bundles.slice(0, MAX_BUNDLES).map((b) => ({ from: url, text: JSON.stringify(b) }))
}

/** The body as text, refused past `limit` bytes (read as it streams). */
export async function readLimited(res: Response, limit: number): Promise<string> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of res.body ?? []) {
    size += (chunk as Uint8Array).length
    if (size > limit) throw new Error(`the answer is over ${limit} bytes`)
    chunks.push(chunk as Uint8Array)
  }
  return Buffer.concat(chunks).toString('utf8')
}
