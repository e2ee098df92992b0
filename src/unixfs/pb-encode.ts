/**
 * A dag-pb encoder for the nodes cairn writes: every link has a Hash, a Name and a Tsize, in the
 * order the caller gives. The bytes are exactly those of `@ipld/dag-pb`'s `encode` (canonical
 * dag-pb: the PBLinks, field 2, first, each as Hash 1, Name 2, Tsize 3; then Data, field 1), made
 * without its per-link objects, without re-encoding each name on every sort comparison and
 * size pass, and written forward into one allocation of the exact size.
 */

/** The links of one node as columns: link `i` is `hashes[i]`, `names[i]`, `tsizes[i]`. */
export interface PbLinks {
  /** Each link's target: a CID (or anything with its `bytes`). */
  readonly hashes: ArrayLike<{ readonly bytes: Uint8Array }>
  /** Each link's name (`''` for the unnamed links of a file node, written as an empty Name). */
  readonly names: ArrayLike<string>
  /** The UTF-8 byte length of each name; checked while writing (see {@link encodePbNode}). */
  readonly nameLengths: ArrayLike<number>
  /** Each link's Tsize: a non-negative safe integer. */
  readonly tsizes: ArrayLike<number>
}

const LINKS_TAG = 0x12 // PBNode field 2, length-delimited
const DATA_TAG = 0x0a // PBNode field 1, length-delimited
const HASH_TAG = 0x0a // PBLink field 1, length-delimited
const NAME_TAG = 0x12 // PBLink field 2, length-delimited
const TSIZE_TAG = 0x18 // PBLink field 3, varint

/**
 * The exact byte length of the node {@link encodePbNode} writes for `links` and `dataLength`
 * bytes of Data (undefined: no Data field at all). Throws a plain Error when a Tsize is not a
 * non-negative safe integer, as `@ipld/dag-pb` does.
 */
export function pbNodeSize(links: PbLinks, dataLength?: number): number {
  let size = dataLength === undefined ? 0 : 1 + varintLength(dataLength) + dataLength
  const { hashes, nameLengths, tsizes } = links
  for (let i = 0; i < hashes.length; i++) {
    const inner = linkBodySize(hashes[i].bytes.length, nameLengths[i], tsizes[i])
    size += 1 + varintLength(inner) + inner
  }
  return size
}

/**
 * Encodes a dag-pb node of `links` (written in the order given) and `data` (omitted when
 * undefined; an empty array is written as an empty Data field, as `@ipld/dag-pb` does). The caller
 * keeps dag-pb's rule that links are sorted by the bytes of their names; this does not re-check it.
 *
 * Throws a plain Error when a Tsize is not a non-negative safe integer, or when a name's UTF-8
 * length is not the one given in `nameLengths` (nothing wrong is ever written silently). A lone
 * UTF-16 surrogate in a name is written as U+FFFD, as TextEncoder (and so `@ipld/dag-pb`) writes it.
 */
export function encodePbNode(links: PbLinks, data?: Uint8Array): Uint8Array {
  const size = pbNodeSize(links, data?.length)
  const out = new Uint8Array(size)
  // a Buffer over the same memory, made only for names that are not ASCII
  let view: Buffer | undefined
  const { hashes, names, nameLengths, tsizes } = links
  let p = 0
  for (let i = 0; i < hashes.length; i++) {
    const hash = hashes[i].bytes
    const name = names[i]
    const nameLength = nameLengths[i]
    const tsize = tsizes[i]
    out[p++] = LINKS_TAG
    p = writeVarint(out, p, linkBodySize(hash.length, nameLength, tsize))
    out[p++] = HASH_TAG
    p = writeVarint(out, p, hash.length)
    out.set(hash, p)
    p += hash.length
    out[p++] = NAME_TAG
    p = writeVarint(out, p, nameLength)
    if (nameLength === name.length) {
      // a string's UTF-8 is as long as its UTF-16 only when it is all ASCII: copy the code units
      let high = 0
      for (let j = 0; j < nameLength; j++) {
        const c = name.charCodeAt(j)
        high |= c
        out[p + j] = c
      }
      if (high >= 0x80) throw nameLengthError(name, nameLength)
    } else {
      view ??= Buffer.from(out.buffer, out.byteOffset, out.byteLength)
      // a wrong length could still end on a character boundary: measure before writing
      if (Buffer.byteLength(name, 'utf8') !== nameLength) throw nameLengthError(name, nameLength)
      view.write(name, p, nameLength, 'utf8')
    }
    p += nameLength
    out[p++] = TSIZE_TAG
    p = writeVarint(out, p, tsize)
  }
  if (data !== undefined) {
    out[p++] = DATA_TAG
    p = writeVarint(out, p, data.length)
    out.set(data, p)
    p += data.length
  }
  if (p !== size) throw new Error(`dag-pb node is ${p} bytes, sized ${size}`)
  return out
}

/** Bytes of a PBLink's fields (Hash, Name, Tsize), without its own tag and length. */
function linkBodySize(hashLength: number, nameLength: number, tsize: number): number {
  if (!Number.isSafeInteger(tsize) || tsize < 0) throw new Error(`Tsize ${tsize} is not a non-negative safe integer`)
  return 1 + varintLength(hashLength) + hashLength + 1 + varintLength(nameLength) + nameLength + 1 + varintLength(tsize)
}

function nameLengthError(name: string, nameLength: number): Error {
  return new Error(`name ${JSON.stringify(name)} is ${Buffer.byteLength(name, 'utf8')} bytes of UTF-8, not ${nameLength}`)
}

/** Bytes of the unsigned LEB128 varint of `n` (a non-negative safe integer). */
export function varintLength(n: number): number {
  if (n < 0x80) return 1
  if (n < 0x4000) return 2
  if (n < 0x200000) return 3
  let length = 3
  while (n >= 0x200000) {
    n = Math.floor(n / 0x80)
    length++
  }
  return length
}

/** Writes the unsigned LEB128 varint of `n` (a non-negative safe integer) at `p`; returns the end. */
function writeVarint(out: Uint8Array, p: number, n: number): number {
  // above 2^31 the bitwise operators would truncate: divide until they are safe
  while (n >= 0x80000000) {
    out[p++] = (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }
  while (n >= 0x80) {
    out[p++] = (n & 0x7f) | 0x80
    n >>>= 7
  }
  out[p++] = n
  return p
}
