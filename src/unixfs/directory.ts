/**
 * UnixFS directories under the IPIP-499 `unixfs-v1-2025` profile: a plain dag-pb directory whose
 * links are sorted by name bytes, or, when that block would exceed {@link HAMT_THRESHOLD_BYTES}
 * (the `block-bytes` rule), a HAMT-sharded directory of fanout 256 hashed with murmur3-x64-64, laid
 * out exactly as boxo (Kubo) and ipfs-unixfs-importer lay it out.
 */
import * as dagPb from '@ipld/dag-pb'
import { murmur364 } from '@multiformats/murmur3'
import { UnixFS } from 'ipfs-unixfs'
import { cidFor, DAG_PB, type CID } from '../cid.js'
import { CairnError } from '../errors.js'
import type { Block } from './file.js'

/** A plain directory block of more bytes than this becomes a HAMT (exactly this many stays plain). */
export const HAMT_THRESHOLD_BYTES = 262_144
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

interface SortedEntry extends DirEntry {
  /** Bytes of the name in UTF-8. */
  readonly nameLength: number
}

// UnixFS Data of a plain directory without mode or mtime: the same bytes for every directory
const DIRECTORY_DATA = new UnixFS({ type: 'directory' }).marshal()
const HEX_DIGITS = (HAMT_FANOUT - 1).toString(16).length
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
 * Compares two well-formed strings by their UTF-8 bytes (that is, by code points) without
 * encoding them; negative, zero or positive like `Buffer.compare`. Plain `<` compares UTF-16 code
 * units and so puts U+10000 and above (surrogate pairs) before U+E000–U+FFFF; this does not.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
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
  const sorted = sortEntries(entries, where)
  const size = plainSize(sorted, (e) => e.nameLength)
  if (size > HAMT_THRESHOLD_BYTES) return buildHamt(sorted)
  const bytes = dagPb.encode({
    Data: DIRECTORY_DATA,
    Links: sorted.map((e) => ({ Hash: e.cid, Name: e.name, Tsize: e.dagSize })),
  })
  // the threshold decision rests on this arithmetic: never let it drift from the real encoding
  if (bytes.length !== size) throw new Error(`directory block is ${bytes.length} bytes, computed ${size}`)
  const cid = cidFor(DAG_PB, bytes)
  return { cid, dagSize: bytes.length + sumDagSizes(sorted), blocks: [{ cid, bytes }] }
}

/**
 * Builds `entries` as a HAMT-sharded directory whatever its size (fanout 256, murmur3-x64-64, link
 * names = two uppercase hex digits of the slot + entry name, sub-shards named by the slot alone).
 * {@link buildDirectory} calls it past the threshold; use it directly only to read or test HAMTs.
 * Fails as {@link buildDirectory} does.
 */
export function buildShardedDirectory(entries: readonly DirEntry[], where = '.'): BuiltDirectory {
  return buildHamt(sortEntries(entries, where))
}

/**
 * The exact byte length of the plain (unsharded) directory block for `entries`, computed without
 * encoding it: the quantity the profile's `block-bytes` rule compares with {@link HAMT_THRESHOLD_BYTES}.
 */
export function plainDirectorySize(entries: readonly DirEntry[]): number {
  return plainSize(entries, (e) => utf8Length(e.name))
}

function plainSize<T extends DirEntry>(entries: readonly T[], nameLength: (e: T) => number): number {
  let size = 1 + varintLength(DIRECTORY_DATA.length) + DIRECTORY_DATA.length
  for (const e of entries) size += linkSize(nameLength(e), e.cid.bytes.length, e.dagSize)
  return size
}

function sortEntries(entries: readonly DirEntry[], where: string): SortedEntry[] {
  const sorted: SortedEntry[] = entries.map((e) => {
    const reason = invalidNameReason(e.name)
    if (reason !== undefined) {
      throw new CairnError('BAD_PATH', `Invalid entry name ${JSON.stringify(e.name)} in directory ${JSON.stringify(where)}: ${reason}`, {
        subject: where,
        hint: 'a name is one path segment: non-empty, not "." or "..", without "/" or NUL',
      })
    }
    if (!Number.isSafeInteger(e.dagSize) || e.dagSize < 0) {
      throw new CairnError(
        'USAGE',
        `Invalid dagSize ${e.dagSize} for entry ${JSON.stringify(e.name)} (expected a non-negative safe integer)`,
        {
          subject: where,
        },
      )
    }
    return { name: e.name, cid: e.cid, dagSize: e.dagSize, nameLength: utf8Length(e.name) }
  })
  sorted.sort((a, b) => compareUtf8(a.name, b.name))
  for (let i = 1; i < sorted.length; i++) {
    // names are well-formed here, so equal strings and equal bytes are the same thing
    if (sorted[i - 1].name === sorted[i].name) {
      throw new CairnError('BAD_PATH', `Duplicate entry name ${JSON.stringify(sorted[i].name)} in directory ${JSON.stringify(where)}`, {
        subject: where,
        hint: 'two files, or a file and a folder, share this name; rename one of them',
      })
    }
  }
  return sorted
}

interface HashedEntry {
  readonly entry: SortedEntry
  readonly nameBytes: Uint8Array
  /** murmur3-x64-64 digests: [0] of the name, [k] of the name followed by the byte k (made on demand). */
  readonly digests: Uint8Array[]
}

function buildHamt(sorted: readonly SortedEntry[]): BuiltDirectory {
  const blocks: Block[] = []
  const root = buildShard(
    sorted.map((entry) => ({ entry, nameBytes: Buffer.from(entry.name, 'utf8'), digests: [] })),
    0,
    blocks,
  )
  return { cid: root.cid, dagSize: root.dagSize, blocks }
}

function buildShard(items: readonly HashedEntry[], depth: number, blocks: Block[]): { cid: CID; dagSize: number } {
  const slots = new Map<number, HashedEntry[]>()
  for (const item of items) {
    const slot = slotOf(item, depth)
    const group = slots.get(slot)
    if (group === undefined) slots.set(slot, [item])
    else group.push(item)
  }
  const used = [...slots.keys()].sort((a, b) => a - b)
  const links: dagPb.PBLink[] = []
  let childrenSize = 0
  for (const slot of used) {
    const group = slots.get(slot) as HashedEntry[]
    const prefix = slot.toString(16).toUpperCase().padStart(HEX_DIGITS, '0')
    if (group.length === 1) {
      const { entry } = group[0]
      links.push({ Hash: entry.cid, Name: prefix + entry.name, Tsize: entry.dagSize })
      childrenSize += entry.dagSize
    } else {
      const shard = buildShard(group, depth + 1, blocks)
      links.push({ Hash: shard.cid, Name: prefix, Tsize: shard.dagSize })
      childrenSize += shard.dagSize
    }
  }
  const data = new UnixFS({
    type: 'hamt-sharded-directory',
    data: bitfield(used),
    fanout: BigInt(HAMT_FANOUT),
    hashType: BigInt(HAMT_HASH_TYPE),
  })
  // the two-digit prefixes sort like the slots, so the links are already in name-byte order
  const bytes = dagPb.encode({ Data: data.marshal(), Links: links })
  const cid = cidFor(DAG_PB, bytes)
  blocks.push({ cid, bytes })
  return { cid, dagSize: bytes.length + childrenSize }
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

function sumDagSizes(entries: readonly DirEntry[]): number {
  let sum = 0
  for (const e of entries) sum += e.dagSize
  return sum
}

/** Bytes of one PBLink inside a PBNode: field tag, length, then Hash, Name and Tsize fields. */
function linkSize(nameLength: number, cidLength: number, tsize: number): number {
  const inner = 1 + varintLength(cidLength) + cidLength + 1 + varintLength(nameLength) + nameLength + 1 + varintLength(tsize)
  return 1 + varintLength(inner) + inner
}

function varintLength(n: number): number {
  let length = 1
  while (n >= 128) {
    n = Math.floor(n / 128)
    length++
  }
  return length
}
