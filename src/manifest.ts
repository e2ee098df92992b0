/**
 * The persisted data model: version manifests, shard index nodes and shard schemas, all dag-json
 * blocks validated against `schemas/` when written and when read. Readers reject a format version
 * they do not know. Links are real CID links, never CID strings.
 */
import { CID, cidFor, cidFromText, cidText, DAG_JSON, type Link } from './cid.js'
import { CairnError } from './errors.js'
import type { Field, FormatName } from './formats/interface.js'
import { validateWith } from './schemas.js'
import type { Block } from './unixfs/file.js'

/** The profile every cairn version is built with (IPIP-499). */
export const PROFILE = 'unixfs-v1-2025'

/** Totals of a version or an index subtree. */
export interface Totals {
  readonly shards: number
  readonly bytes: number
  readonly rows: number
}

/** The dataset card (`cairn.json`), as the user declared it. */
export interface Card {
  readonly cardVersion: 1
  readonly name: string
  readonly description?: string
  readonly license?: string
  readonly authors?: readonly string[]
  readonly homepage?: string
  readonly provenance?: {
    readonly generator?: string
    readonly model?: string | ModelRef
    readonly promptTemplate?: string | { readonly path: string } | JsonLink
    readonly seed?: number | string
    readonly parameters?: Record<string, unknown>
    readonly [key: string]: unknown
  }
  readonly derivedFrom?: readonly DerivedFrom[]
  readonly rai?: Readonly<Record<string, string | boolean>>
  readonly shards?: readonly ShardRule[]
}

/** A link as the card (plain JSON) writes it: `{"/": "<CID>"}`. */
export interface JsonLink {
  readonly '/': string
}

/** A model named with its weights by digest (and, where published, by CID). */
export interface ModelRef {
  readonly name: string
  /** `sha256:<hex>` of the weights file. */
  readonly digest?: string
  readonly weights?: JsonLink
  readonly uri?: string
}

/** One release this dataset was made from (the card's `derivedFrom`). */
export interface DerivedFrom {
  /** The source version. */
  readonly release: JsonLink
  /** seed-data, filtered-from, deduplicated-from, evaluation-of, … */
  readonly role: string
  /** Globs over the source's shard paths: the part used. */
  readonly select?: readonly string[]
}

/** Row schema and key for the shards whose path matches `glob`. */
export interface ShardRule {
  readonly glob: string
  readonly rowSchema?: Record<string, unknown>
  readonly primaryKey?: readonly string[]
}

/** One version: the block whose CID names a release. */
export interface VersionManifest {
  readonly type: 'cairn.version'
  readonly v: 1
  readonly name: string
  readonly parent: Link<VersionManifest> | null
  readonly created: string
  readonly message: string
  readonly profile: typeof PROFILE
  readonly card: Link<Card>
  readonly index: Link<IndexNode>
  /** The UnixFS directory of the same files, browsable on any gateway. */
  readonly tree: CID
  readonly totals: Totals
}

/** A shard schema block, shared by every shard with the same schema. */
export interface SchemaBlock {
  readonly type: 'cairn.schema'
  readonly v: 1
  readonly format: Exclude<FormatName, 'bytes'>
  readonly fields: readonly Field[]
}

/** One shard of a version, as its leaf entry in the shard index. */
export interface ShardEntry {
  readonly path: string
  readonly cid: CID
  readonly size: number
  readonly format: FormatName
  readonly rows?: number
  readonly schema?: Link<SchemaBlock>
}

/** A branch entry: the first path below `node`, and the totals of that subtree. */
export interface BranchEntry {
  readonly path: string
  readonly node: Link<IndexNode>
  readonly totals: Totals
}

export type LeafNode = { readonly type: 'cairn.index'; readonly v: 1; readonly level: 0; readonly entries: readonly ShardEntry[] }
export type BranchNode = { readonly type: 'cairn.index'; readonly v: 1; readonly level: number; readonly entries: readonly BranchEntry[] }
/** A shard index node: a leaf (level 0) holds shard entries, a branch holds child links. */
export type IndexNode = LeafNode | BranchNode

const SCHEMA_OF = {
  'cairn.version': 'version.schema.json',
  'cairn.index': 'index-node.schema.json',
  'cairn.schema': 'shard-schema.schema.json',
} as const
type Kind = keyof typeof SCHEMA_OF
type KindOf<K extends Kind> = K extends 'cairn.version' ? VersionManifest : K extends 'cairn.index' ? IndexNode : SchemaBlock

/**
 * Encodes a manifest block as dag-json after validating it. Throws `INVALID_MANIFEST`. The bytes are
 * exactly what `@ipld/dag-json` writes (keys sorted, no whitespace, links as `{"/": …}`): manifests hold
 * only ASCII keys, integers, strings, null and links, for which the canonical form is `JSON.stringify`
 * of the sorted JSON form; building that directly is several times faster than a generic encoder.
 */
export function encodeManifest<K extends Kind>(value: KindOf<K>): Block & { readonly cid: Link<KindOf<K>> } {
  const form = toJsonForm(value)
  check(value.type, form, undefined)
  const bytes = encoder.encode(JSON.stringify(form))
  return { cid: cidFor<KindOf<K>>(DAG_JSON, bytes), bytes }
}

/**
 * Decodes and validates a manifest block of the expected kind. Throws `INVALID_MANIFEST` naming the
 * CID when the block is not dag-json, is another kind (saying which), has an unknown format version,
 * or breaks the schema (every error with its JSON path). The caller has checked the bytes against `cid`.
 */
export function decodeManifest<K extends Kind>(kind: K, cid: CID, bytes: Uint8Array): KindOf<K> {
  if (cid.code !== DAG_JSON) {
    throw new CairnError(
      'INVALID_MANIFEST',
      `${cid} is not a cairn ${kind.slice(6)} (codec 0x${cid.code.toString(16)}, expected dag-json)`,
      {
        subject: cid.toString(),
      },
    )
  }
  let form: unknown
  try {
    form = JSON.parse(decoder.decode(bytes))
  } catch (e) {
    throw new CairnError('INVALID_MANIFEST', `${cid} is not valid dag-json: ${(e as Error).message}`, { subject: cid.toString() })
  }
  const type = (form as { type?: unknown } | null)?.type
  if (type !== kind) {
    const what = typeof type === 'string' ? `a ${type}` : 'not a cairn block'
    throw new CairnError('INVALID_MANIFEST', `${cid} is ${what}, expected a ${kind}`, { subject: cid.toString() })
  }
  const v = (form as { v?: unknown }).v
  if (v !== 1) {
    throw new CairnError('INVALID_MANIFEST', `${cid}: unknown ${kind} format version ${JSON.stringify(v)} (this cairn reads version 1)`, {
      subject: cid.toString(),
      hint: 'upgrade cairn',
    })
  }
  check(kind, form, cid)
  // the schema admits links only where links belong, each a {"/": string}
  return fromJsonForm(form, cid) as KindOf<K>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

function check(kind: Kind, form: unknown, cid: CID | undefined): void {
  const errors = validateWith(SCHEMA_OF[kind], form)
  if (errors.length > 0) {
    const where = cid ? `${cid}` : `new ${kind}`
    throw new CairnError('INVALID_MANIFEST', `${where} is invalid: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`, {
      subject: cid?.toString(),
      details: errors,
    })
  }
}

/** The dag-json data model as plain JSON: links as `{"/": "<cid>"}`, keys sorted, undefined dropped. */
function toJsonForm(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value
  const cid = CID.asCID(value)
  // dag-json writes a CIDv1 in base32 (cidText, the fast path) and a CIDv0 in base58btc
  if (cid) return { '/': cid.version === 1 ? cidText(cid) : cid.toString() }
  if (Array.isArray(value)) return value.map(toJsonForm)
  const out: Record<string, unknown> = {}
  for (const k of sortedInPlace(Object.keys(value))) {
    const v = (value as Record<string, unknown>)[k]
    if (v !== undefined) out[k] = toJsonForm(v)
  }
  return out
}

/**
 * `keys` sorted as `Array.prototype.sort` sorts strings, by insertion: an object's handful of keys
 * sort without the working copies `sort` allocates (86 MB of them for the index of 100,000 files).
 */
function sortedInPlace(keys: string[]): string[] {
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]
    let j = i - 1
    for (; j >= 0 && keys[j] > k; j--) keys[j + 1] = keys[j]
    keys[j + 1] = k
  }
  return keys
}

/**
 * The value of a parsed dag-json form, its links made CIDs. The form is changed in place (it is fresh
 * from `JSON.parse` and nobody else's): decoding an index node of many entries makes no copies.
 */
function fromJsonForm(form: unknown, at: CID): unknown {
  if (form === null || typeof form !== 'object') return form
  if (Array.isArray(form)) {
    for (let i = 0; i < form.length; i++) form[i] = fromJsonForm(form[i], at)
    return form
  }
  const object = form as Record<string, unknown>
  const link = object['/']
  if (typeof link === 'string' && onlyKey(object, '/')) {
    try {
      return cidFromText(link)
    } catch {
      throw new CairnError('INVALID_MANIFEST', `${at} holds an invalid link ${JSON.stringify(link)}`, { subject: at.toString() })
    }
  }
  for (const k in object) {
    const v = object[k]
    // JSON.parse makes "__proto__" an own key; assigning to it would set the prototype instead
    if (v !== null && typeof v === 'object' && k !== '__proto__') object[k] = fromJsonForm(v, at)
  }
  return object
}

/** True when `key` is the only own key of `object` (counted without making the list of keys). */
function onlyKey(object: Record<string, unknown>, key: string): boolean {
  for (const k in object) if (k !== key) return false
  return true
}

/**
 * Checks that `path` is a relative, `/`-separated, normalised shard path: no empty, `.` or `..`
 * segment, no leading `/`, no NUL, no backslash, no control character. Throws `BAD_PATH`.
 */
export function checkShardPath(path: string, where = 'shard path'): void {
  const problem =
    path.length === 0
      ? 'is empty'
      : path.startsWith('/')
        ? 'is absolute'
        : path.includes('\\')
          ? 'contains a backslash'
          : /[\u0000-\u001f\u007f]/.test(path)
            ? 'contains a control character'
            : DOT_OR_EMPTY_SEGMENT.test(path)
              ? 'has an empty, "." or ".." segment'
              : path.isWellFormed?.() === false
                ? 'is not valid Unicode'
                : undefined
  if (problem) {
    throw new CairnError('BAD_PATH', `${where} ${JSON.stringify(path)} ${problem} (expected a relative, /-separated, normalised path)`, {
      subject: path,
    })
  }
}

const DOT_OR_EMPTY_SEGMENT = /(?:^|\/)\.{0,2}(?:\/|$)/

/** Byte-wise UTF-8 order of two paths: the canonical order of the shard index and the tree. */
export function comparePaths(a: string, b: string): number {
  // UTF-16 order equals UTF-8 byte order unless a surrogate pair is involved
  if (!SURROGATE.test(a) && !SURROGATE.test(b)) return a < b ? -1 : a > b ? 1 : 0
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

const SURROGATE = /[\ud800-\udfff]/
