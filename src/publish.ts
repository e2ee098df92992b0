/**
 * `publish` and `published`: put a version on a target (a folder of CARs, a Kubo node, Storacha) and
 * keep what the target said. Each success is recorded in the store as
 * `.cairn/published/<version-cid>/<sha256 hex of the target address>.json` (one receipt per version and
 * target, the latest publish winning), written to a temporary name and renamed.
 */
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID, tryParseCid } from './cid.js'
import { STORE_DIR, withDataset, type Dataset } from './dataset.js'
import { CairnError, ioError } from './errors.js'
import { parseTarget } from './targets/index.js'
import type { PublishProgress, Receipt, StoredShard, Target } from './targets/interface.js'
import { readVersion, resolveRef } from './version.js'
import type { History } from './release/links.js'
import { withDatasetSource } from './release/source.js'
import { writeFileAtomic } from './util/atomic.js'
import { publishSignatures } from './signing/publish.js'

/** The format version of receipt files; readers reject others. */
export const RECEIPT_VERSION = 1

/** What {@link publish} is told. */
export interface PublishOptions {
  /** The dataset folder or a folder inside it (default: the current folder). */
  readonly dir?: string
  /** The version to publish (default `HEAD`). */
  readonly ref?: string
  /** The target: a spec (`dir:<path>`, `kubo:<rpc-url>`, `storacha[:<space-did>]`) or a {@link Target}. */
  readonly to: string | Target
  /** Largest CAR shard in bytes, for targets that shard (`dir:` default 100 MiB; `kubo:` sends one CAR). */
  readonly shardSize?: number
  readonly onProgress?: (progress: PublishProgress) => void
  /** Where credentials and settings are read from (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv
  readonly signal?: AbortSignal
  /** Ancestors whose releases are published too: 0 (default) the release alone, `Infinity` every one. */
  readonly history?: History
  /** Sources for ancestors' blocks the dataset lacks (a clone's history); the clone's recorded ones are tried after. */
  readonly from?: readonly string[]
}

/** What {@link published} is told. */
export interface PublishedOptions {
  readonly dir?: string
  /** Only this version's receipts (default: every version's). */
  readonly ref?: string
}

/**
 * Publishes the version `ref` of the dataset to `to` and records the receipt. Re-publishing is
 * harmless. Throws `BAD_REF`, `USAGE` (a target spec cairn does not know), `PUBLISH_FAILED` (the target
 * refused, or kept failing after retries: the message names the target and the last error), `AUTH`
 * (credentials missing or refused; the message names the variable, never the secret),
 * `MISSING_BLOCK` / `CORRUPT_BLOCK` (the store lacks a block of the version), `TARGET_NOT_EMPTY`
 * (`dir:` on a folder holding other files) or `IO`. Nothing is recorded unless the publish succeeded.
 */
export async function publish(options: PublishOptions): Promise<Receipt> {
  const history = options.history ?? 0
  return withDatasetSource(options.dir, { from: options.from, recorded: history > 0 }, async ({ dataset, source }) => {
    const root = await resolveRef(dataset, options.ref, source)
    const version = await readVersion(source, root)
    const target = typeof options.to === 'string' ? await parseTarget(options.to, options.env ?? process.env) : options.to
    const held = await heldBy(dataset, target.address, root)
    const receipt = await target.publish(
      { root, source, totalBytes: version.totals.bytes, history, held },
      { shardSize: options.shardSize, onProgress: options.onProgress, signal: options.signal },
    )
    if (!receipt.root.equals(root)) {
      throw new CairnError('PUBLISH_FAILED', `${target.address} returned a receipt for ${receipt.root} (expected ${root})`, {
        subject: target.address,
      })
    }
    const signatures = await publishSignatures(dataset, root, target.address, options.env ?? process.env)
    const kept = signatures.length === 0 ? receipt : { ...receipt, details: { ...receipt.details, signatures } }
    await recordReceipt(dataset, kept, options.env ?? process.env)
    return kept
  })
}

/**
 * The versions an earlier publish to `address` put there whole (by this dataset's receipts), newest
 * first, without `root` itself: a target that keeps what it was sent (a Kubo node pins it) holds their
 * releases, so a publish need not send their blocks again.
 */
async function heldBy(dataset: Dataset, address: string, root: CID): Promise<CID[]> {
  const base = join(dataset.root, STORE_DIR, 'published')
  const name = `${createHash('sha256').update(address).digest('hex')}.json`
  const found: { cid: CID; at: string }[] = []
  for (const v of await listDir(base)) {
    const cid = tryParseCid(v)
    if (!cid || cid.equals(root)) continue
    try {
      const r = await readReceipt(join(base, v, name))
      found.push({ cid, at: r.publishedAt })
    } catch {
      // no receipt for this target (or an unreadable one): nothing is assumed
    }
  }
  return found.sort((a, b) => b.at.localeCompare(a.at)).map((f) => f.cid)
}

/**
 * The receipts recorded for the version `ref`, or for every version when `ref` is not given, oldest
 * first. Throws `BAD_REF`, `INVALID_MANIFEST` for a receipt file cairn cannot read (naming it), `IO`.
 */
export async function published(options: PublishedOptions = {}): Promise<Receipt[]> {
  const { root, version } = await withDataset(options.dir, async (dataset) => ({
    root: dataset.root,
    version: options.ref === undefined ? undefined : (await resolveRef(dataset, options.ref)).toString(),
  }))
  const base = join(root, STORE_DIR, 'published')
  let versions: string[]
  if (version !== undefined) {
    versions = [version]
  } else {
    versions = (await listDir(base)).filter((name) => tryParseCid(name) !== undefined)
  }
  const receipts: Receipt[] = []
  for (const v of versions) {
    const dir = join(base, v)
    for (const name of (await listDir(dir)).filter((n) => n.endsWith('.json')).sort()) {
      receipts.push(await readReceipt(join(dir, name)))
    }
  }
  return receipts.sort((a, b) => a.publishedAt.localeCompare(b.publishedAt) || a.target.localeCompare(b.target))
}

/** The receipt file of a version published to a target address, relative to the dataset's store. */
export function receiptPath(version: CID, address: string): string {
  return join('published', version.toString(), `${createHash('sha256').update(address).digest('hex')}.json`)
}

/**
 * Parses a byte size: a whole number of bytes, or a number with a unit: `KiB`, `MiB`, `GiB`, `TiB`
 * (and `K`, `M`, `G`, `T`: powers of 1024), `kB`, `MB`, `GB`, `TB` (powers of 1000), `B`. Case and
 * a space before the unit do not matter. Throws `USAGE` for anything else or a size below 1 byte.
 */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$/i.exec(text)
  if (!m)
    throw new CairnError('USAGE', `${JSON.stringify(text)} is not a size (expected bytes or a number with a unit, e.g. 100MiB)`, {
      subject: text,
    })
  const unit = (m[2] ?? 'b').toLowerCase()
  const powers: Record<string, number> = { k: 1, m: 2, g: 3, t: 4 }
  const p = powers[unit[0]] ?? 0
  const decimal = unit.length === 2 && unit.endsWith('b') && p > 0
  const bytes = Math.floor(Number(m[1]) * (decimal ? 1000 : 1024) ** p)
  if (!Number.isSafeInteger(bytes) || bytes < 1)
    throw new CairnError('USAGE', `${JSON.stringify(text)} is not a usable size (at least 1 byte)`, { subject: text })
  return bytes
}

async function recordReceipt(dataset: Dataset, receipt: Receipt, env: NodeJS.ProcessEnv): Promise<void> {
  const file = join(dataset.root, STORE_DIR, receiptPath(receipt.root, receipt.target))
  const text = redactSecrets(JSON.stringify({ receiptVersion: RECEIPT_VERSION, ...receipt }, null, 2) + '\n', env)
  try {
    await mkdir(join(file, '..'), { recursive: true })
    await writeFileAtomic(file, text)
  } catch (e) {
    throw ioError('record the receipt in', file, e)
  }
}

/**
 * A second line of defence: targets never put secrets in receipts, but should one slip in, the value
 * of any credential-like environment variable is blanked before the receipt reaches the disk.
 */
function redactSecrets(text: string, env: NodeJS.ProcessEnv): string {
  let out = text
  for (const [name, value] of Object.entries(env)) {
    if (!value || value.length < 6 || !/AUTH|TOKEN|SECRET|PASSW|KEY|PROOF|PRINCIPAL/i.test(name)) continue
    const inJson = JSON.stringify(value).slice(1, -1)
    if (out.includes(inJson)) out = out.split(inJson).join('[redacted]')
  }
  return out
}

async function readReceipt(file: string): Promise<Receipt> {
  let raw: unknown
  try {
    raw = JSON.parse(await readFile(file, 'utf8'))
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw ioError('read', file, e)
    throw new CairnError('INVALID_MANIFEST', `${file} is not JSON: ${(e as Error).message}`, { subject: file })
  }
  const r = raw as Record<string, unknown>
  const bad = (why: string): CairnError => new CairnError('INVALID_MANIFEST', `${file} is not a publish receipt: ${why}`, { subject: file })
  if (r?.receiptVersion !== RECEIPT_VERSION) throw bad(`receiptVersion ${JSON.stringify(r?.receiptVersion)} (expected ${RECEIPT_VERSION})`)
  const root = linkOf(r.root)
  if (!root) throw bad('no root link')
  if (typeof r.target !== 'string' || typeof r.publishedAt !== 'string' || !Array.isArray(r.shards))
    throw bad('target, publishedAt or shards missing')
  const shards: StoredShard[] = (r.shards as Record<string, unknown>[]).map((s) => {
    const cid = linkOf(s.cid)
    return {
      ...(cid ? { cid } : {}),
      size: Number(s.size),
      ...(typeof s.file === 'string' ? { file: s.file } : {}),
    }
  })
  return {
    target: r.target,
    root,
    publishedAt: r.publishedAt,
    shards,
    newBlocks: Number(r.newBlocks ?? 0),
    newBytes: Number(r.newBytes ?? 0),
    ...(r.details && typeof r.details === 'object' ? { details: r.details as Record<string, unknown> } : {}),
  }
}

function linkOf(value: unknown): CID | undefined {
  const text = (value as { '/'?: unknown } | undefined)?.['/']
  return typeof text === 'string' ? tryParseCid(text) : undefined
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw ioError('read', dir, e)
  }
}
