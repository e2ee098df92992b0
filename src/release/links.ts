/**
 * What a release is, as one function: the links of a block that belong to the same release. A
 * release is a version and its own DAG (card, shard index nodes, schema blocks, tree, the files'
 * blocks); the version's `parent` stays a link, but a walk of a release does not follow it unless it
 * is asked for history. Every walk that sends or copies a release (pack, publish, clone, check, verify
 * of a CAR) decides what to follow here.
 */
import * as dagJson from '@ipld/dag-json'
import { blockLinks } from '../car/block.js'
import { CID, DAG_JSON } from '../cid.js'
import { CairnError } from '../errors.js'

/** How many ancestors a walk includes: 0 the release alone (the default), n the n nearest, `Infinity` every one. */
export type History = number

/** A link a walk follows, with the history still to include below it. */
export interface FollowedLink {
  readonly cid: CID
  readonly history: History
  /** True for a version's parent link (it leads to the ancestor's version block). */
  readonly parent: boolean
}

/**
 * The links of the block `cid` (bytes already checked against it) that a walk with `history`
 * ancestors still to include follows, in the order the block's codec lists them (so that a walk with
 * every ancestor is the plain depth-first walk of the whole DAG, as `ipfs dag export` makes it). For
 * a cairn version, its `parent` is among them only when `history > 0`, and then with one less; every
 * other link keeps `history`. A dataset card's links are never among them ({@link linksInRelease}).
 * Identity-hash links are returned like any other.
 *
 * @throws {CairnError} `CORRUPT_BLOCK` when the bytes do not decode with the CID's codec (as {@link blockLinks}).
 */
export function releaseLinks(cid: CID, bytes: Uint8Array, history: History = 0): FollowedLink[] {
  const links = linksInRelease(cid, bytes)
  const parent = versionParent(cid, bytes)
  const out: FollowedLink[] = []
  for (const link of links) {
    if (parent !== undefined && link.equals(parent)) {
      if (history > 0) out.push({ cid: link, history: history - 1, parent: true })
    } else {
      out.push({ cid: link, history, parent: false })
    }
  }
  return out
}

/**
 * The links of the block `cid` that are parts of a release, parent included: every link
 * ({@link blockLinks}) except a dataset card's. A card's links (`derivedFrom`, a prompt or model weights
 * by CID) name other content, not parts of the release (docs/lineage.md): a walk of a release never
 * follows them, so pack, publish, clone, gc and `verify --car` neither need nor carry the content they
 * name. A walk of the whole DAG (a trustless `dag-scope=all`) uses {@link blockLinks} and follows them.
 *
 * @throws {CairnError} `CORRUPT_BLOCK` as {@link blockLinks}.
 */
export function linksInRelease(cid: CID, bytes: Uint8Array): CID[] {
  const links = blockLinks(cid, bytes)
  return links.length > 0 && isCardBlock(cid, bytes) ? [] : links
}

/**
 * True for a dataset card block: dag-json, decoding to an object with `cardVersion` beside `name` and
 * no `type` (which every other cairn block has). Bytes that do not decode are not a card.
 */
function isCardBlock(cid: CID, bytes: Uint8Array): boolean {
  // most dag-json blocks (index nodes) are not decoded a second time
  if (cid.code !== DAG_JSON || !includes(bytes, CARD_MARK)) return false
  let value: unknown
  try {
    value = dagJson.decode(bytes)
  } catch {
    return false
  }
  return value !== null && typeof value === 'object' && 'cardVersion' in value && 'name' in value && !('type' in value)
}

const CARD_MARK = Buffer.from('"cardVersion"')

/**
 * The parent link of a cairn version block (`type: "cairn.version"`), or `undefined` for a first
 * version and for any other block.
 */
export function versionParent(cid: CID, bytes: Uint8Array): CID | undefined {
  return versionLinks(cid, bytes)?.parent ?? undefined
}

/**
 * For a cairn version block (`type: "cairn.version"`), its parent (`null` for a first version);
 * `undefined` for any other block. Only dag-json blocks can be versions; the bytes are decoded, not
 * validated (readers of versions validate them).
 */
export function versionLinks(cid: CID, bytes: Uint8Array): { readonly parent: CID | null } | undefined {
  if (cid.code !== DAG_JSON) return undefined
  // a version is a small block whose bytes name its type: most dag-json blocks (index nodes) are not decoded twice
  if (bytes.length > MAX_VERSION_BYTES || !includes(bytes, VERSION_MARK)) return undefined
  let value: unknown
  try {
    value = dagJson.decode(bytes)
  } catch {
    return undefined // blockLinks reports the damage
  }
  const v = value as { type?: unknown; parent?: unknown }
  if (v?.type !== 'cairn.version') return undefined
  return { parent: CID.asCID(v.parent) ?? null }
}

/** A version block is a few hundred bytes; anything much larger is not one. */
const MAX_VERSION_BYTES = 64 * 1024
const VERSION_MARK = Buffer.from('"cairn.version"')

function includes(bytes: Uint8Array, mark: Buffer): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).includes(mark)
}

/**
 * Parses a `--history` value: `all` every ancestor, a whole number that many; `undefined` is 0 (the
 * release alone). Throws `USAGE` for anything else.
 */
export function parseHistory(value: string | number | undefined): History {
  if (value === undefined) return 0
  if (value === 'all' || value === Infinity) return Infinity
  const n = typeof value === 'number' ? value : /^\s*\d+\s*$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new CairnError('USAGE', `--history ${JSON.stringify(value)} is not a number of ancestors (expected all or a whole number)`, {
      subject: String(value),
    })
  }
  return n
}
