/**
 * UnixFS directories under the IPIP-499 `unixfs-v1-2025` profile: a plain dag-pb directory whose
 * links are sorted by name bytes, or, when that block would exceed {@link HAMT_THRESHOLD_BYTES}
 * (the `block-bytes` rule), a HAMT-sharded directory of fanout 256 hashed with murmur3-x64-64, laid
 * out exactly as boxo (Kubo) and ipfs-unixfs-importer lay it out.
 */
import { murmur364 } from '@multiformats/murmur3'
import { UnixFS } from 'ipfs-unixfs'
import { cidFor, DAG_PB, type CID } from '../cid.js'
import { CairnError } from '../errors.js'
import type { Block } from './file.js'
import { encodePbNode, pbNodeSize, type PbLinks } from './pb-encode.js'

/** A plain directory block of more bytes than this becomes a HAMT (exactly this many stays plain). */
export const HAMT_THRESHOLD_BYTES = 262_144
/** A smaller HAMT threshold a test may force, to shard folders of a few files (then not the profile's trees). */
export const directoryTuning: { hamtThresholdBytes?: number } = {}
/** Slots per HAMT node. */
export const HAMT_FANOUT = 256
/** Multicodec of the HAMT hash function (murmur3-x64-64), recorded in every HAMT node. */
export const HAMT_HASH_TYPE = 0x22

/** One entry of a directory: a file or a subdirectory already built. */
export interface DirEntry {
  /** The entry's name: non-empty UTF-8, not `.` or `..`, without `/` or NUL. */
  readonly name: string
  readonly cid: CID
  /** Bytes of every block of the entry's DAG (becomes the link's `Tsize`). */
  readonly dagSize: number
}

/** A built directory: its root, its total DAG size and its own blocks (not the entries' blocks). */
export interface BuiltDirectory {
  readonly cid: CID
  /** The directory's blocks plus the `dagSize` of every entry. */
  readonly dagSize: number
  /** The directory's blocks, children before parents (the root is last). */
  readonly blocks: Block[]
}

// UnixFS Data of a plain directory without mode or mtime: the same bytes for every directory
const DIRECTORY_DATA = new UnixFS({ type: 'directory' }).marshal()
const HEX_DIGITS = (HAMT_FANOUT - 1).toString(16).length
// the link name prefix of each HAMT slot: two uppercase hex digits
const SLOT_PREFIXES = Array.from({ length: HAMT_FANOUT }, (_, slot) => slot.toString(16).toUpperCase().padStart(HEX_DIGITS, '0'))
const BITS_PER_LEVEL = Math.log2(HAMT_FANOUT)
const HASH_BYTES = 8
// a lone UTF-16 surrogate has no UTF-8 form: TextEncoder would silently turn it into U+FFFD
const LONE_SURROGATE = /\p{Cs}/u

/**
 * Why `name` cannot name a directory entry, or undefined when it can. A name must be non-empty,
 * must not be `.` or `..`, and must not contain `/`, NUL or an unpaired UTF-16 surrogate.
 */
export function invalidNameReason(name: string): string | undefined {
  if (name === '') return 'it is empty'
  if (name === '.' || name === '..') return `"${name}" is not a name`
  if (name.includes('/')) return 'it contains "/"'
  if (name.includes('\0')) return 'it contains NUL'
  if (LONE_SURROGATE.test(name)) return 'it contains an unpaired UTF-16 surrogate (not valid UTF-8)'
  return undefined
}

/**
 * The UTF-8 byte length of `name` when it can name a directory entry, else -1 (then
 * {@link invalidNameReason} says why): the check and the measure of {@link utf8Length} in one pass
 * over the name, without a regular expression.
 */
export function validNameLength(name: string): number {
  const n = name.length
  if (n === 0 || (n <= 2 && (name === '.' || name === '..'))) return -1
  // one byte per code unit, plus what each non-ASCII one adds
  let length = n
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i)
    if (c < 0x80) {
      if (c === 0 || c === 0x2f) return -1 // NUL, "/"
    } else if (c < 0x800) length += 1
    else if (c < 0xd800 || c >= 0xe000) length += 2
    else {
      // a surrogate pair (two units, four bytes), or a lone surrogate: no UTF-8 form
      if (c >= 0xdc00 || i + 1 === n || (name.charCodeAt(i + 1) & 0xfc00) !== 0xdc00) return -1
      length += 2
      i++
    }
  }
  return length
}

/**
 * Compares two well-formed strings by their UTF-8 bytes (that is, by code points) without
 * encoding them; negative, zero or positive like `Buffer.compare`. Plain `<` compares UTF-16 code
 * units and so puts U+10000 and above (surrogate pairs) before U+E000–U+FFFF; this does not.
 * `from` skips that many leading code units the caller knows are equal in both.
 */
export function compareUtf8(a: string, b: string, from = 0): number {
  const n = Math.min(a.length, b.length)
  for (let i = from; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x !== y) {
      // move surrogates (U+D800–U+DFFF) above U+E000–U+FFFF, where their code points belong
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000
      }
      return x - y
    }
  }
  return a.length - b.length
}

/** Bytes of `s` in UTF-8 (an unpaired surrogate counts as U+FFFD, as TextEncoder writes it). */
export function utf8Length(s: string): number {
  let length = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) length += 1
    else if (c < 0x800) length += 2
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      length += 4
      i++
    } else length += 3
  }
  return length
}

/**
 * Builds the UnixFS directory holding `entries` (in any order) under the `unixfs-v1-2025` profile:
 * a plain directory when its block has at most {@link HAMT_THRESHOLD_BYTES} bytes, else a HAMT (see
 * {@link buildShardedDirectory}). Pure and synchronous; returns only the directory's own blocks.
 *
 * Fails with `BAD_PATH` when a name is invalid (see {@link invalidNameReason}) or appears twice, and
 * with `USAGE` when a `dagSize` is not a non-negative safe integer. `where` names the directory in
 * error messages.
 */
export function buildDirectory(entries: readonly DirEntry[], where = '.'): BuiltDirectory {
  return builderOf(entries, where).build()
}

/**
 * Builds `entries` as a HAMT-sharded directory whatever its size (fanout 256, murmur3-x64-64, link
 * names = two uppercase hex digits of the slot + entry name, sub-shards named by the slot alone).
 * {@link buildDirectory} calls it past the threshold; use it directly only to read or test HAMTs.
 * Fails as {@link buildDirectory} does.
 */
export function buildShardedDirectory(entries: readonly DirEntry[], where = '.'): BuiltDirectory {
  return builderOf(entries, where).buildSharded()
}

/**
 * The exact byte length of the plain (unsharded) directory block for `entries`, computed without
 * encoding it: the quantity the profile's `block-bytes` rule compares with {@link HAMT_THRESHOLD_BYTES}.
 */
export function plainDirectorySize(entries: readonly DirEntry[]): number {
  const links: PbLinks = {
    hashes: entries.map((e) => e.cid),
    names: entries.map((e) => e.name),
    nameLengths: entries.map((e) => utf8Length(e.name)),
    tsizes: entries.map((e) => e.dagSize),
  }
  return pbNodeSize(links, DIRECTORY_DATA.length)
}

function builderOf(entries: readonly DirEntry[], where: string): DirectoryBuilder {
  const builder = new DirectoryBuilder(where)
  for (const e of entries) {
    const nameLength = validNameLength(e.name)
    if (nameLength < 0) {
      throw new CairnError(
        'BAD_PATH',
        `Invalid entry name ${JSON.stringify(e.name)} in directory ${JSON.stringify(where)}: ${invalidNameReason(e.name)}`,
        {
          subject: where,
          hint: 'a name is one path segment: non-empty, not "." or "..", without "/" or NUL',
        },
      )
    }
    builder.add(e.name, nameLength, e.cid, e.dagSize)
  }
  return builder
}

/**
 * One directory being filled, its entries kept as columns (no object per entry) in the order they
 * come; {@link DirectoryBuilder.build} sorts them only when they did not come sorted. What
 * {@link buildDirectory} and the tree builder build with.
 */
export class DirectoryBuilder {
  private names: string[] = []
  private nameLengths: number[] = []
  private cids: CID[] = []
  private sizes: number[] = []
  private sorted = true

  /** `where` names the directory in error messages. */
  constructor(readonly where: string) {}

  /**
   * Adds an entry. `name` must be valid and `nameLength` its UTF-8 length: what
   * {@link validNameLength} returned for it (not checked again here). Fails with `USAGE` when
   * `dagSize` is not a non-negative safe integer.
   */
  add(name: string, nameLength: number, cid: CID, dagSize: number): void {
    if (!Number.isSafeInteger(dagSize) || dagSize < 0) {
      throw new CairnError('USAGE', `Invalid dagSize ${dagSize} for entry ${JSON.stringify(name)} (expected a non-negative safe integer)`, {
        subject: this.where,
      })
    }
    const n = this.names.length
    if (this.sorted && n > 0 && compareUtf8(this.names[n - 1], name) >= 0) this.sorted = false
    this.names.push(name)
    this.nameLengths.push(nameLength)
    this.cids.push(cid)
    this.sizes.push(dagSize)
  }

  /**
   * Builds the directory as {@link buildDirectory} does: plain up to {@link HAMT_THRESHOLD_BYTES},
   * a HAMT above. Fails with `BAD_PATH` when a name appears twice.
   */
  build(): BuiltDirectory {
    const links = this.sortedLinks()
    const size = pbNodeSize(links, DIRECTORY_DATA.length)
    if (size > (directoryTuning.hamtThresholdBytes ?? HAMT_THRESHOLD_BYTES)) return buildHamt(links)
    const bytes = encodePbNode(links, DIRECTORY_DATA)
    const cid = cidFor(DAG_PB, bytes)
    return { cid, dagSize: bytes.length + sumOf(this.sizes), blocks: [{ cid, bytes }] }
  }

  /** Builds the directory as a HAMT whatever its size; fails as {@link DirectoryBuilder.build} does. */
  buildSharded(): BuiltDirectory {
    return buildHamt(this.sortedLinks())
  }

  /** The entries as dag-pb links sorted by name bytes (sorted in place when they came unsorted). */
  private sortedLinks(): Columns {
    if (!this.sorted) {
      const { names } = this
      const order = names.map((_, i) => i).sort((a, b) => compareUtf8(names[a], names[b]))
      for (let i = 1; i < order.length; i++) {
        // names are well-formed, so equal strings and equal bytes are the same thing
        if (names[order[i - 1]] === names[order[i]]) {
          throw new CairnError(
            'BAD_PATH',
            `Duplicate entry name ${JSON.stringify(names[order[i]])} in directory ${JSON.stringify(this.where)}`,
            {
              subject: this.where,
              hint: 'two files, or a file and a folder, share this name; rename one of them',
            },
          )
        }
      }
      this.names = order.map((i) => names[i])
      this.nameLengths = order.map((i) => this.nameLengths[i])
      this.cids = order.map((i) => this.cids[i])
      this.sizes = order.map((i) => this.sizes[i])
      this.sorted = true
    }
    return { hashes: this.cids, names: this.names, nameLengths: this.nameLengths, tsizes: this.sizes }
  }
}

/** The links of a directory node, as the encoder takes them. */
interface Columns extends PbLinks {
  readonly hashes: readonly CID[]
  readonly names: readonly string[]
  readonly nameLengths: readonly number[]
  readonly tsizes: readonly number[]
}

interface HashedEntry {
  /** The entry's position in the directory's columns. */
  readonly index: number
  readonly nameBytes: Uint8Array
  /** murmur3-x64-64 digests: [0] of the name, [k] of the name followed by the byte k (made on demand). */
  readonly digests: Uint8Array[]
}

function buildHamt(entries: Columns): BuiltDirectory {
  const blocks: Block[] = []
  const items = entries.names.map((name, index) => ({ index, nameBytes: Buffer.from(name, 'utf8'), digests: [] }))
  const root = buildShard(entries, items, 0, blocks)
  return { cid: root.cid, dagSize: root.dagSize, blocks }
}

function buildShard(entries: Columns, items: readonly HashedEntry[], depth: number, blocks: Block[]): { cid: CID; dagSize: number } {
  const slots: (HashedEntry[] | undefined)[] = new Array(HAMT_FANOUT)
  for (const item of items) {
    const slot = slotOf(item, depth)
    const group = slots[slot]
    if (group === undefined) slots[slot] = [item]
    else group.push(item)
  }
  const used: number[] = []
  const links = { hashes: [] as CID[], names: [] as string[], nameLengths: [] as number[], tsizes: [] as number[] }
  let childrenSize = 0
  // in slot order: the two-digit prefixes sort like the slots, so the links are in name-byte order
  for (let slot = 0; slot < HAMT_FANOUT; slot++) {
    const group = slots[slot]
    if (group === undefined) continue
    used.push(slot)
    const prefix = SLOT_PREFIXES[slot]
    if (group.length === 1) {
      const i = group[0].index
      links.hashes.push(entries.hashes[i])
      links.names.push(prefix + entries.names[i])
      links.nameLengths.push(prefix.length + entries.nameLengths[i])
      links.tsizes.push(entries.tsizes[i])
      childrenSize += entries.tsizes[i]
    } else {
      const shard = buildShard(entries, group, depth + 1, blocks)
      links.hashes.push(shard.cid)
      links.names.push(prefix)
      links.nameLengths.push(prefix.length)
      links.tsizes.push(shard.dagSize)
      childrenSize += shard.dagSize
    }
  }
  const data = new UnixFS({
    type: 'hamt-sharded-directory',
    data: bitfield(used),
    fanout: BigInt(HAMT_FANOUT),
    hashType: BigInt(HAMT_HASH_TYPE),
  })
  const bytes = encodePbNode(links, data.marshal())
  const cid = cidFor(DAG_PB, bytes)
  blocks.push({ cid, bytes })
  return { cid, dagSize: bytes.length + childrenSize }
}

/** A link of a HAMT shard: to an entry (named by the slot's two hex digits and the entry's name) or to a sub-shard (the digits alone). */
export interface ShardLink {
  readonly slot: number
  /** The link's whole name. */
  readonly name: string
  readonly nameLength: number
  readonly cid: CID
  readonly tsize: number
}

/**
 * Encodes one HAMT shard of the profile from its links (in slot order, one per used slot), as
 * {@link buildShardedDirectory} encodes each: the same Data (bitfield, fanout, hash type), the same
 * link order. Returns the block and the shard's DAG size (its bytes plus its links' `tsize`).
 */
export function encodeShard(links: readonly ShardLink[]): { block: Block; dagSize: number } {
  const data = new UnixFS({
    type: 'hamt-sharded-directory',
    data: bitfield(links.map((l) => l.slot)),
    fanout: BigInt(HAMT_FANOUT),
    hashType: BigInt(HAMT_HASH_TYPE),
  })
  const columns = {
    hashes: links.map((l) => l.cid),
    names: links.map((l) => l.name),
    nameLengths: links.map((l) => l.nameLength),
    tsizes: links.map((l) => l.tsize),
  }
  const bytes = encodePbNode(columns, data.marshal())
  return { block: { cid: cidFor(DAG_PB, bytes), bytes }, dagSize: bytes.length + sumOf(columns.tsizes) }
}

/** The two hex digits that name HAMT slot `slot` in its links. */
export function slotPrefix(slot: number): string {
  return SLOT_PREFIXES[slot]
}

/** The slot of the entry `name` in a HAMT shard at `depth` (0: the root shard). */
export function hamtSlot(name: string, depth: number): number {
  return slotOf({ index: 0, nameBytes: Buffer.from(name, 'utf8'), digests: [] }, depth)
}

/**
 * The sub-shard at `depth` holding `entries` (two or more, all of one slot at `depth - 1`), built as
 * {@link buildShardedDirectory} builds it: its blocks (children first) and its link's `tsize`.
 */
export function buildSubShard(entries: readonly DirEntry[], depth: number): { cid: CID; dagSize: number; blocks: Block[] } {
  const columns: Columns = {
    hashes: entries.map((e) => e.cid),
    names: entries.map((e) => e.name),
    nameLengths: entries.map((e) => utf8Length(e.name)),
    tsizes: entries.map((e) => e.dagSize),
  }
  const blocks: Block[] = []
  const items = columns.names.map((name, index) => ({ index, nameBytes: Buffer.from(name, 'utf8'), digests: [] }))
  const shard = buildShard(columns, items, depth, blocks)
  return { ...shard, blocks }
}

/**
 * The bytes a link to (`nameLength`, `cid`, `tsize`) takes in a plain directory block: what
 * {@link plainDirectorySize} adds up.
 */
export function plainLinkSize(nameLength: number, cid: CID, tsize: number): number {
  return pbNodeSize({ hashes: [cid], names: [''], nameLengths: [nameLength], tsizes: [tsize] })
}

/**
 * The slot of `item` at `depth`: byte `depth` of the name's murmur3-x64-64 digest (one byte per
 * level at fanout 256). Past the digest's 8 bytes, hamt-sharding (and so the importer) rehashes
 * the name followed by one byte counting the rehashes; we do the same, though reaching it takes a
 * 64-bit collision.
 */
function slotOf(item: HashedEntry, depth: number): number {
  const bit = depth * BITS_PER_LEVEL
  const k = Math.floor(bit / (HASH_BYTES * 8))
  while (item.digests.length <= k) {
    const n = item.digests.length
    const input = n === 0 ? item.nameBytes : Buffer.concat([item.nameBytes, Uint8Array.of(n & 0xff)])
    item.digests.push(murmur3x64_64(input))
  }
  return item.digests[k][(bit % (HASH_BYTES * 8)) / 8]
}

function murmur3x64_64(input: Uint8Array): Uint8Array {
  const digest = murmur364.digest(input)
  if (digest instanceof Promise) throw new Error('murmur3-x64-64 unexpectedly asynchronous')
  return digest.digest
}

/**
 * The HAMT bitfield: bit `slot` of a big-endian integer, with leading zero bytes dropped (at least
 * one byte kept), which is what go-bitfield's `Bytes()` writes and the importer reproduces.
 */
function bitfield(slots: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(HAMT_FANOUT / 8)
  for (const slot of slots) bytes[bytes.length - 1 - (slot >> 3)] |= 1 << (slot & 7)
  let first = 0
  while (first < bytes.length - 1 && bytes[first] === 0) first++
  return bytes.subarray(first)
}

function sumOf(values: readonly number[]): number {
  let sum = 0
  for (const v of values) sum += v
  return sum
}
