/**
 * Reading versions and resolving refs: a ref is a CID, `HEAD`, `HEAD~n` (n parents back) or a tag.
 */
import * as dagJson from '@ipld/dag-json'
import { CID, DAG_JSON, tryParseCid, type Link } from './cid.js'
import type { Dataset } from './dataset.js'
import { CairnError } from './errors.js'
import { decodeManifest, encodeManifest, PROFILE, type Card, type IndexNode, type Totals, type VersionManifest } from './manifest.js'
import { assertValidCard } from './dataset.js'
import type { BlockSource } from './store/blocks.js'
import { incompleteCloneError } from './release/clone-record.js'

/** Reads and validates the version manifest `cid`. Throws `INVALID_MANIFEST` when it is something else. */
export async function readVersion(source: BlockSource, cid: CID): Promise<VersionManifest> {
  return decodeManifest('cairn.version', cid, await source.get(cid))
}

/** Reads and validates the card block a version links to. */
export async function readCardBlock(source: BlockSource, cid: Link<Card>): Promise<Card> {
  if (cid.code !== DAG_JSON)
    throw new CairnError('INVALID_MANIFEST', `${cid} is not a card (expected a dag-json block)`, { subject: cid.toString() })
  let card: unknown
  try {
    card = dagJson.decode(await source.get(cid))
  } catch (e) {
    if (e instanceof CairnError) throw e
    throw new CairnError('INVALID_MANIFEST', `${cid} is not a card (not valid dag-json: ${(e as Error).message})`, {
      subject: cid.toString(),
    })
  }
  // the card is kept in its JSON form (links as {"/": …}), as cairn.json writes it
  card = linksAsJson(card)
  assertValidCard(card, `card block ${cid}`)
  return card
}

/** A decoded dag-json value with every CID turned back into its JSON form `{"/": "<cid>"}`. */
function linksAsJson(value: unknown): unknown {
  const cid = CID.asCID(value)
  if (cid) return { '/': cid.toString() }
  if (Array.isArray(value)) return value.map(linksAsJson)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, linksAsJson(v)]))
  }
  return value
}

/**
 * Resolves `ref` (default `HEAD`) in `dataset` to a version CID. Throws `BAD_REF` saying what the ref
 * is not: no HEAD yet, an unknown tag, `HEAD~n` past the first version.
 */
export async function resolveRef(dataset: Dataset, ref = 'HEAD', source: BlockSource = dataset.store): Promise<Link<VersionManifest>> {
  const cid = tryParseCid(ref)
  if (cid) return cid as Link<VersionManifest>
  const m = /^HEAD(?:~(\d+))?$/.exec(ref)
  if (m) {
    let at = await dataset.refs.head()
    if (!at) throw (await incompleteCloneError(dataset, ref)) ?? noHead(dataset, ref)
    for (let i = 0; i < Number(m[1] ?? 0); i++) {
      const v = await readVersion(source, at)
      if (!v.parent) throw new CairnError('BAD_REF', `${ref} goes past the first version (HEAD has ${i} ancestors)`, { subject: ref })
      at = v.parent
    }
    return at as Link<VersionManifest>
  }
  const tagged = await dataset.refs.tag(ref)
  if (tagged) return tagged as Link<VersionManifest>
  throw new CairnError('BAD_REF', `Unknown ref ${JSON.stringify(ref)} (expected a CID, HEAD, HEAD~n or a tag)`, {
    subject: ref,
    hint: 'list tags with `cairn tag`, versions with `cairn log`',
  })
}

function noHead(dataset: Dataset, ref: string): CairnError {
  return new CairnError('BAD_REF', `HEAD does not point at a version yet in ${dataset.root}`, {
    subject: ref,
    hint: 'run `cairn build` first',
  })
}

/** What a new version records; {@link storeVersion} adds the type, the profile and the date. */
export interface NewVersion {
  readonly name: string
  readonly parent: Link<VersionManifest> | null
  /** The version's date; without it SOURCE_DATE_EPOCH, then the clock (see {@link createdAt}). */
  readonly date?: Date
  readonly message?: string
  readonly card: Link<Card>
  readonly index: Link<IndexNode>
  readonly tree: CID
  readonly totals: Totals
}

/**
 * Writes the version block of a build or a composition, under this cairn's profile, and returns it. The
 * card, index and tree blocks must be in the store already: a version is written last.
 */
export async function storeVersion(
  store: { put(cid: CID, bytes: Uint8Array): Promise<void> },
  v: NewVersion,
): Promise<{ block: { cid: Link<VersionManifest>; bytes: Uint8Array }; manifest: VersionManifest }> {
  const manifest: VersionManifest = {
    type: 'cairn.version',
    v: 1,
    name: v.name,
    parent: v.parent,
    created: createdAt(v.date),
    message: v.message ?? '',
    profile: PROFILE,
    card: v.card,
    index: v.index,
    tree: v.tree,
    totals: v.totals,
  }
  const block = encodeManifest<'cairn.version'>(manifest)
  await store.put(block.cid, block.bytes)
  return { block, manifest }
}

/** A version's `created` time: `date`, else `SOURCE_DATE_EPOCH`, else now (ISO 8601). Throws `USAGE`. */
export function createdAt(date: Date | undefined): string {
  if (date) return isoDate(date, 'the build date')
  const epoch = process.env.SOURCE_DATE_EPOCH
  if (epoch !== undefined && epoch !== '') {
    if (!/^\d+$/.test(epoch))
      throw new CairnError('USAGE', `SOURCE_DATE_EPOCH must be whole seconds since 1970 (found ${JSON.stringify(epoch)})`)
    return isoDate(new Date(Number(epoch) * 1000), 'SOURCE_DATE_EPOCH')
  }
  return new Date().toISOString()
}

/** ISO 8601 in UTC, for years 1970–9999 (the manifest's `created` format). Throws `USAGE` otherwise. */
function isoDate(date: Date, what: string): string {
  const year = date.getUTCFullYear()
  if (Number.isNaN(date.getTime()) || year < 1970 || year > 9999) {
    throw new CairnError(
      'USAGE',
      `${what} must be a time between 1970 and 9999 (found ${Number.isNaN(date.getTime()) ? 'an invalid date' : `year ${year}`})`,
    )
  }
  return date.toISOString()
}
