/**
 * Checking single blocks: does a block's bytes hash to its CID, and which CIDs does it link to.
 * Every block that arrives from a CAR, a gateway or the store goes through {@link checkBlock} before use
 * (DESIGN.md, "trust nothing that arrives"); {@link blockLinks} is what DAG walks use to find children.
 */
import * as crypto from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { CairnError } from '../errors.js'
import type { HashPool } from '../util/hash-pool.js'

/** Multihash codes {@link checkBlock} can check. */
export const HASH_CODES = { identity: 0x00, 'sha2-256': 0x12, 'sha2-512': 0x13 } as const

/** Codec codes {@link blockLinks} can read links from. */
export const LINK_CODECS = { raw: raw.code, 'dag-pb': dagPb.code, 'dag-cbor': dagCbor.code, 'dag-json': dagJson.code } as const

const hashNames = new Map<number, string>(Object.entries(HASH_CODES).map(([name, code]) => [code, name]))
const codecNames = new Map<number, string>(Object.entries(LINK_CODECS).map(([name, code]) => [code, name]))

/**
 * Checks that `bytes` hash to `cid`: the bytes are hashed with the CID's multihash function and the
 * result is compared with the CID's digest. Works for CIDv0 and CIDv1, and for sha2-256 (the IPFS
 * default, hashed with `node:crypto`), sha2-512 and identity (the digest must equal the bytes). It does
 * not decode the block; {@link blockLinks} does that.
 *
 * A digest shorter than the hash function's output (a truncated multihash) is not accepted.
 *
 * @throws {CairnError} `CORRUPT_BLOCK` (subject: the CID) when the bytes do not hash to the CID, and also
 *   when the CID uses a multihash function cairn cannot compute (the message names its code): a block
 *   that cannot be checked is not trusted, whatever its bytes.
 */
export async function checkBlock(cid: CID, bytes: Uint8Array): Promise<void> {
  const { code, digest } = cid.multihash
  let actual: Uint8Array
  switch (code) {
    case HASH_CODES['sha2-256']:
      // large blocks are hashed on libuv's thread pool (WebCrypto), so concurrent checks use every core
      actual =
        bytes.length >= POOL_HASH_MIN ? new Uint8Array(await crypto.webcrypto.subtle.digest('SHA-256', bytes)) : hash('sha256', bytes)
      break
    case HASH_CODES['sha2-512']:
      actual = hash('sha512', bytes)
      break
    case HASH_CODES.identity:
      if (!equalBytes(bytes, digest)) {
        throw new CairnError(
          'CORRUPT_BLOCK',
          `Block ${cid} does not match its CID (the digest of an identity CID is the block itself: ${digest.length} bytes expected, ${bytes.length} different bytes found)`,
          { subject: cid.toString() },
        )
      }
      return
    default:
      throw new CairnError(
        'CORRUPT_BLOCK',
        `Block ${cid} cannot be checked: multihash 0x${code.toString(16)} is not supported ` +
          '(expected sha2-256 0x12, sha2-512 0x13 or identity 0x00)',
        { subject: cid.toString(), hint: 'fetch the data again as blocks hashed with sha2-256' },
      )
  }
  checkDigest(cid, actual)
}

/**
 * Starts {@link checkBlock} on a hashing thread of `pool`, for a sha2-256 block large enough that the
 * round trip pays (64 KiB or more); `undefined` for any other block, which {@link checkBlock} checks
 * best. Nothing of `cid` or `bytes` is read once this returns: the bytes are copied into the pool's
 * reused buffers, and the check uses the copy of the CID it returns. So a reader may overwrite its
 * buffers at once, and hash on every core without touching fresh memory (WebCrypto, which
 * {@link checkBlock} uses for large blocks, copies each block into new pages, and on some VMs each new
 * page costs more than hashing it).
 *
 * `check` rejects as {@link checkBlock} does.
 */
export function checkBlockOnThread(pool: HashPool, cid: CID, bytes: Uint8Array): { cid: CID; check: Promise<void> } | undefined {
  if (cid.multihash.code !== HASH_CODES['sha2-256'] || bytes.length < POOL_HASH_MIN) return undefined
  const owned = CID.decode(Uint8Array.from(cid.bytes))
  return { cid: owned, check: pool.hash(bytes).then((digest) => checkDigest(owned, digest)) }
}

/**
 * Checks a digest computed elsewhere (a hashing thread) against the CID's, for a CID whose multihash
 * function is known to {@link checkBlock}. Throws `CORRUPT_BLOCK` when they differ.
 */
export function checkDigest(cid: CID, actual: Uint8Array): void {
  const { code, digest } = cid.multihash
  if (!equalBytes(actual, digest)) {
    throw new CairnError(
      'CORRUPT_BLOCK',
      `Block ${cid} does not match its CID (${hashNames.get(code)} of the bytes is ${toHex(actual)}, expected ${toHex(digest)})`,
      { subject: cid.toString() },
    )
  }
}

/** Below this, hashing on the calling thread costs less than a round trip to the thread pool. */
const POOL_HASH_MIN = 64 * 1024

// One-shot `crypto.hash` (Node.js ≥ 20.12) skips the Hash object: about 1.5× faster on small blocks.
const oneShot = typeof crypto.hash === 'function' ? crypto.hash : undefined

function hash(algorithm: 'sha256' | 'sha512', bytes: Uint8Array): Uint8Array {
  return oneShot !== undefined ? oneShot(algorithm, bytes, 'buffer') : crypto.createHash(algorithm).update(bytes).digest()
}

/**
 * The CIDs a block links to, in the order its codec stores them:
 * - dag-pb: the `Links[].Hash` in order (for UnixFS, the file chunks or directory entries);
 * - raw: none;
 * - dag-cbor and dag-json: every CID in the decoded data model, depth first, arrays in order and map
 *   keys in the codec's canonical order (dag-cbor: shorter keys first, then bytewise; dag-json:
 *   bytewise), which is the order the keys have in a valid block.
 *
 * Duplicates are kept. Identity-hash CIDs are returned like any other link. The bytes are not hashed:
 * call {@link checkBlock} first. Every link of the block is returned, whatever it means to cairn: which
 * of them belong to a release is `linksInRelease`'s to say (src/release/links.ts).
 *
 * @throws {CairnError} `CORRUPT_BLOCK` (subject: the CID) when the bytes do not decode with the CID's
 *   codec (the message carries the decoder's), or when the codec is not one of {@link LINK_CODECS}
 *   ("cannot read links of codec 0x…").
 */
export function blockLinks(cid: CID, bytes: Uint8Array): CID[] {
  const codec = cid.code
  if (codec === raw.code) return []
  if (!codecNames.has(codec)) {
    throw new CairnError(
      'CORRUPT_BLOCK',
      `Block ${cid}: cannot read links of codec 0x${codec.toString(16)} (cairn reads dag-pb, dag-cbor, dag-json and raw)`,
      { subject: cid.toString() },
    )
  }
  let value: unknown
  try {
    value = codec === dagPb.code ? dagPb.decode(bytes) : codec === dagCbor.code ? dagCbor.decode(bytes) : dagJson.decode(bytes)
  } catch (e) {
    throw new CairnError(
      'CORRUPT_BLOCK',
      `Block ${cid} does not decode as ${codecNames.get(codec)}: ${e instanceof Error ? e.message : String(e)}`,
      { subject: cid.toString(), cause: e },
    )
  }
  if (codec === dagPb.code) {
    return (value as dagPb.PBNode).Links.map((link) => toCID(link.Hash))
  }
  return dataModelLinks(value, codec === dagCbor.code ? compareCborKeys : compareJsonKeys)
}

/** Depth-first, pre-order walk of a decoded data model; iterative so that deep nesting cannot overflow the stack. */
function dataModelLinks(root: unknown, compareKeys: (a: string, b: string) => number): CID[] {
  const links: CID[] = []
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const value = stack.pop()
    if (value === null || typeof value !== 'object' || value instanceof Uint8Array) continue
    const cid = CID.asCID(value)
    if (cid !== null) {
      links.push(cid)
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push(value[i])
    } else {
      // JS objects list integer-like keys first, so the decoder's order is lost: restore the codec's.
      const keys = Object.keys(value).sort(compareKeys)
      for (let i = keys.length - 1; i >= 0; i--) stack.push((value as Record<string, unknown>)[keys[i]])
    }
  }
  return links
}

/** Links decoded by a codec may come from another copy of multiformats: re-wrap them as ours. */
function toCID(link: unknown): CID {
  const cid = CID.asCID(link)
  if (cid === null) throw new TypeError('not a CID')
  return cid
}

const isAscii = (s: string): boolean => !/[^\x00-\x7f]/.test(s)

/** Bytewise order of the UTF-8 encodings (the dag-json key order). */
function compareJsonKeys(a: string, b: string): number {
  if (isAscii(a) && isAscii(b)) return a < b ? -1 : a > b ? 1 : 0
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/** Shorter UTF-8 encodings first, then bytewise (the dag-cbor key order, RFC 7049 canonical). */
function compareCborKeys(a: string, b: string): number {
  return Buffer.byteLength(a) - Buffer.byteLength(b) || compareJsonKeys(a, b)
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex')
}
