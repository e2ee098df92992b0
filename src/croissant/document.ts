/**
 * A release as an MLCommons Croissant 1.1 JSON-LD document (docs/croissant.md): the dataset's card as
 * schema.org properties, one `cr:FileObject` per shard with a real `sha256` of its bytes (from
 * src/digests, computed once and kept), one `cr:RecordSet` per shard rule of the card with fields
 * typed from the shard schemas, lineage and generation as PROV-O, and the card's RAI notes.
 */
import { minimatch } from 'minimatch'
import type { CID } from '../cid.js'
import { fileSha256s } from '../digests/sha256.js'
import type { Field } from '../formats/interface.js'
import { walkEntries } from '../shard-index/prolly.js'
import { decodeManifest, type Card, type SchemaBlock, type ShardEntry, type ShardRule, type VersionManifest } from '../manifest.js'
import type { BlockSource } from '../store/blocks.js'
import { derivedCid } from '../lineage/graph.js'

/** The specification a document conforms to (`dct:conformsTo`). */
export const CROISSANT_1_1 = 'http://mlcommons.org/croissant/1.1'

/** The JSON-LD context: the Croissant 1.1 specification's Appendix 1, with PROV-O added for provenance. */
export const CROISSANT_CONTEXT = Object.freeze({
  '@language': 'en',
  '@vocab': 'http://schema.org/',
  sc: 'http://schema.org/',
  cr: 'http://mlcommons.org/croissant/',
  rai: 'http://mlcommons.org/croissant/RAI/',
  dct: 'http://purl.org/dc/terms/',
  prov: 'http://www.w3.org/ns/prov#',
  annotation: 'cr:annotation',
  arrayShape: 'cr:arrayShape',
  citeAs: 'cr:citeAs',
  column: 'cr:column',
  conformsTo: 'dct:conformsTo',
  containedIn: 'cr:containedIn',
  data: { '@id': 'cr:data', '@type': '@json' },
  dataType: { '@id': 'cr:dataType', '@type': '@vocab' },
  equivalentProperty: 'cr:equivalentProperty',
  examples: { '@id': 'cr:examples', '@type': '@json' },
  excludes: 'cr:excludes',
  extract: 'cr:extract',
  field: 'cr:field',
  fileProperty: 'cr:fileProperty',
  fileObject: 'cr:fileObject',
  fileSet: 'cr:fileSet',
  format: 'cr:format',
  includes: 'cr:includes',
  isArray: 'cr:isArray',
  isLiveDataset: 'cr:isLiveDataset',
  jsonPath: 'cr:jsonPath',
  key: 'cr:key',
  md5: 'cr:md5',
  parentField: 'cr:parentField',
  recordSet: 'cr:recordSet',
  references: 'cr:references',
  regex: 'cr:regex',
  readLines: 'cr:readLines',
  sdVersion: 'cr:sdVersion',
  separator: 'cr:separator',
  source: 'cr:source',
  subField: 'cr:subField',
  transform: 'cr:transform',
  unArchive: 'cr:unArchive',
  value: 'cr:value',
})

/** A JSON-LD object. */
export type JsonLd = { [key: string]: unknown }

/** Options of {@link croissantDocument}. */
export interface DocumentOptions {
  /**
   * Gateway base URL for `contentUrl` (`<gateway>/ipfs/<version>/tree/<path>`) and `url`. Ignored with
   * `inRelease`.
   */
  readonly gateway: string
  /**
   * The document goes into the release it describes (`build --croissant`), whose version CID it cannot
   * know: `contentUrl`s are paths relative to the document (which sits at the tree's root), and the
   * dataset carries no `sameAs` to its version. Files at `skip` are left out (the document itself).
   */
  readonly inRelease?: { readonly skip: string }
  /** The store folder whose digest log keeps each file's sha256 (see src/digests/sha256.ts). */
  readonly storeDir?: string
  /** Called for each file whose bytes had to be read to compute its sha256. */
  readonly onHashed?: (cid: CID, size: number) => void
}

/** A document and what it could not say. */
export interface CroissantDocument {
  readonly document: JsonLd
  /** Properties the specification requires that the card does not give, and shard rules that match nothing. */
  readonly warnings: readonly string[]
  /** Files described. */
  readonly files: number
}

/**
 * Makes the Croissant document of the version `cid` (manifest `manifest`, card `card`) from `source`,
 * which must hold every file's blocks (only files whose sha256 is not known yet are read).
 *
 * @throws {CairnError} `MISSING_BLOCK` / `CORRUPT_BLOCK` / `INVALID_MANIFEST` from the source; `IO`
 *   when the digest log cannot be written.
 */
export async function croissantDocument(
  source: BlockSource,
  cid: CID,
  manifest: VersionManifest,
  card: Card,
  options: DocumentOptions,
): Promise<CroissantDocument> {
  const warnings: string[] = []
  const gateway = options.gateway.replace(/\/+$/, '')
  const entries: ShardEntry[] = []
  for await (const e of walkEntries(source, manifest.index)) if (e.path !== options.inRelease?.skip) entries.push(e)
  const digests = await fileSha256s(
    source,
    entries.map((e) => e.cid),
    { storeDir: options.storeDir, onHashed: options.onHashed },
  )
  const fileUrl = (path: string): string =>
    options.inRelease ? encodePath(path) : `${gateway}/ipfs/${cid.toString()}/tree/${encodePath(path)}`

  const distribution: JsonLd[] = entries.map((e) => ({
    '@type': 'cr:FileObject',
    '@id': e.path,
    name: e.path,
    contentUrl: fileUrl(e.path),
    contentSize: `${e.size} B`,
    encodingFormat: mediaType(e),
    sha256: digests.get(e.cid.toString()),
    sameAs: `ipfs://${e.cid.toString()}`,
  }))
  const recordSet: JsonLd[] = []
  for (const [i, rule] of (card.shards ?? []).entries()) {
    const made = await recordSetFor(source, rule, i, entries, warnings)
    if (made === undefined) continue
    recordSet.push(made.recordSet)
    if (made.fileSet) distribution.push(made.fileSet)
  }

  if (!card.description) warnings.push('description: the card has none (Croissant requires one); the dataset name is used')
  if (!card.license) warnings.push('license: the card has none (Croissant requires one)')
  if (!card.authors || card.authors.length === 0) warnings.push('creator: the card lists no authors (Croissant requires a creator)')

  const document: JsonLd = {
    '@context': CROISSANT_CONTEXT,
    '@type': 'sc:Dataset',
    'dct:conformsTo': CROISSANT_1_1,
    name: card.name,
    description: card.description ?? card.name,
    ...(card.license ? { license: licenseUrls(card.license) } : {}),
    ...(card.authors && card.authors.length > 0 ? { creator: card.authors.map((name) => ({ '@type': 'sc:Person', name })) } : {}),
    datePublished: manifest.created,
    ...(options.inRelease
      ? { url: card.homepage ?? './' }
      : {
          version: cid.toString(),
          url: card.homepage ?? `${gateway}/ipfs/${cid.toString()}/tree/`,
          sameAs: `ipfs://${cid.toString()}`,
        }),
    ...provenance(manifest, card, fileUrl),
    ...rai(card),
    distribution,
    recordSet,
  }
  return { document, warnings, files: entries.length }
}

/** The RecordSet of shard rule `i`: fields from the schema of the shards it matches. */
async function recordSetFor(
  source: BlockSource,
  rule: ShardRule,
  i: number,
  entries: readonly ShardEntry[],
  warnings: string[],
): Promise<{ recordSet: JsonLd; fileSet?: JsonLd } | undefined> {
  const options = { dot: true, matchBase: !rule.glob.includes('/') }
  const matched = entries.filter((e) => minimatch(e.path, rule.glob, options))
  const withSchema = matched.filter((e) => e.schema !== undefined)
  if (withSchema.length === 0) {
    warnings.push(`shards[${i}] ${JSON.stringify(rule.glob)}: no shard with a schema matches it; no RecordSet`)
    return undefined
  }
  const schemaCid = withSchema[0].schema!
  if (withSchema.some((e) => !e.schema!.equals(schemaCid))) {
    warnings.push(
      `shards[${i}] ${JSON.stringify(rule.glob)}: its shards have different schemas; the fields are those of ${withSchema[0].path}`,
    )
  }
  const schema: SchemaBlock = decodeManifest('cairn.schema', schemaCid, await source.get(schemaCid))
  const id = `records-${i}`
  let fileSet: JsonLd | undefined
  let from: JsonLd
  if (withSchema.length === 1) from = { fileObject: { '@id': withSchema[0].path } }
  else {
    fileSet = {
      '@type': 'cr:FileSet',
      '@id': `${id}-files`,
      name: rule.glob,
      encodingFormat: mediaType(withSchema[0]),
      includes: rule.glob,
    }
    from = { fileSet: { '@id': `${id}-files` } }
  }
  const recordSet: JsonLd = {
    '@type': 'cr:RecordSet',
    '@id': id,
    name: rule.glob,
    description: `Rows of the ${schema.format} shards matching ${rule.glob}`,
    field: schema.fields.map((f) => ({
      '@type': 'cr:Field',
      '@id': `${id}/${f.name}`,
      name: f.name,
      dataType: dataType(f),
      source: { ...from, extract: { column: f.name } },
    })),
  }
  if (rule.primaryKey) {
    const keys = rule.primaryKey.map((k) => ({ '@id': `${id}/${k}` }))
    recordSet.key = keys.length === 1 ? keys[0] : keys
  }
  return { recordSet, fileSet }
}

/** PROV-O: the releases this one derives from, and the activity that generated it. */
function provenance(manifest: VersionManifest, card: Card, fileUrl: (path: string) => string): JsonLd {
  const out: JsonLd = {}
  const from: JsonLd[] = []
  const qualified: JsonLd[] = []
  if (manifest.parent) from.push({ '@id': `ipfs://${manifest.parent.toString()}` })
  for (const d of card.derivedFrom ?? []) {
    const cid = derivedCid(d)
    if (cid === undefined) continue
    from.push({ '@id': `ipfs://${cid.toString()}` })
    qualified.push({
      '@type': 'prov:Derivation',
      'prov:entity': { '@id': `ipfs://${cid.toString()}` },
      'prov:hadRole': { '@type': 'prov:Role', 'prov:label': d.role },
      ...(d.select ? { includes: d.select } : {}),
    })
  }
  if (from.length > 0) out['prov:wasDerivedFrom'] = from
  if (qualified.length > 0) out['prov:qualifiedDerivation'] = qualified
  const p = card.provenance
  if (!p) return out
  const agents: JsonLd[] = []
  if (p.generator) agents.push({ '@type': 'prov:SoftwareAgent', 'prov:label': p.generator })
  if (typeof p.model === 'string') agents.push({ '@type': 'prov:SoftwareAgent', 'prov:label': p.model })
  else if (p.model) {
    agents.push({
      '@type': 'prov:SoftwareAgent',
      'prov:label': p.model.name,
      ...(p.model.digest ? { sha256: p.model.digest.slice('sha256:'.length) } : {}),
      ...(p.model.weights ? { sameAs: `ipfs://${p.model.weights['/']}` } : p.model.uri ? { sameAs: p.model.uri } : {}),
    })
  }
  const used: JsonLd[] = []
  const prompt = p.promptTemplate
  if (typeof prompt === 'string') used.push({ '@type': 'prov:Entity', 'prov:label': 'prompt template', 'prov:value': prompt })
  else if (prompt && 'path' in prompt) {
    used.push({ '@type': 'prov:Entity', 'prov:label': 'prompt template', '@id': prompt.path, contentUrl: fileUrl(prompt.path) })
  } else if (prompt) used.push({ '@type': 'prov:Entity', 'prov:label': 'prompt template', '@id': `ipfs://${prompt['/']}` })
  const settings: JsonLd[] = []
  // `sc:value`: the context maps a bare `value` to cr:value (a Field's constant)
  if (p.seed !== undefined) settings.push({ '@type': 'sc:PropertyValue', name: 'seed', 'sc:value': p.seed })
  for (const [name, value] of Object.entries(p.parameters ?? {})) settings.push({ '@type': 'sc:PropertyValue', name, 'sc:value': value })
  out['prov:wasGeneratedBy'] = {
    '@type': 'prov:Activity',
    'prov:label': p.generator ? `generation by ${p.generator}` : 'generation',
    ...(agents.length > 0 ? { 'prov:wasAssociatedWith': agents } : {}),
    ...(used.length > 0 ? { 'prov:used': used } : {}),
    ...(settings.length > 0 ? { additionalProperty: settings } : {}),
  }
  return out
}

/** The card's RAI notes as `rai:*` properties. */
function rai(card: Card): JsonLd {
  const out: JsonLd = {}
  for (const [k, v] of Object.entries(card.rai ?? {})) out[`rai:${k}`] = v
  return out
}

/** An SPDX expression as license URLs (one per identifier; `WITH` exceptions kept with their license). */
function licenseUrls(expression: string): string | string[] {
  const ids = expression
    .replace(/[()]/g, ' ')
    .split(/\s+(?:OR|AND)\s+/)
    .map((s) => s.trim().replace(/\s+WITH\s+.*$/, ''))
    .filter((s) => s.length > 0)
  const urls = ids.map((id) => (/^[A-Za-z0-9.+-]+$/.test(id) ? `https://spdx.org/licenses/${id.replace(/\+$/, '')}.html` : id))
  return urls.length === 1 ? urls[0] : urls
}

/** A shard path as a URL path: each segment percent-encoded. */
function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/')
}

const MEDIA_TYPES: Readonly<Record<string, string>> = {
  parquet: 'application/x-parquet',
  arrow: 'application/vnd.apache.arrow.file',
  jsonl: 'application/jsonlines',
  csv: 'text/csv',
}

const BY_EXTENSION: Readonly<Record<string, string>> = {
  json: 'application/json',
  jsonld: 'application/ld+json',
  txt: 'text/plain',
  md: 'text/markdown',
  tsv: 'text/tab-separated-values',
  zip: 'application/zip',
  gz: 'application/gzip',
  tar: 'application/x-tar',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  wav: 'audio/wav',
  mp4: 'video/mp4',
  safetensors: 'application/octet-stream',
}

function mediaType(entry: ShardEntry): string {
  if (entry.format !== 'bytes') return MEDIA_TYPES[entry.format]
  const ext = /\.([A-Za-z0-9]+)$/.exec(entry.path)?.[1]?.toLowerCase()
  return (ext && BY_EXTENSION[ext]) ?? 'application/octet-stream'
}

/** A shard schema's type name (Arrow, Parquet, JSON or CSV vocabulary) as a Croissant atomic data type. */
export function dataType(field: Field): string {
  const t = field.type.toLowerCase()
  if (/timestamp|datetime/.test(t)) return 'sc:DateTime'
  if (/date/.test(t)) return 'sc:Date'
  if (/bool/.test(t)) return 'sc:Boolean'
  if (/^u?int|integer|int(8|16|32|64)/.test(t) && !/\|/.test(t)) return 'sc:Integer'
  if (/float|double|decimal|number|halffloat/.test(t) && !/string/.test(t)) return 'sc:Float'
  return 'sc:Text'
}
