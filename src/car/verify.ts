/**
 * `verify --car`: check every block of a CAR file against its CID and check that the DAG under each
 * root is complete, streaming, with memory bounded by the number of blocks (CID strings and link lists),
 * never by their bytes.
 */
import { stat } from 'node:fs/promises'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { isCairnError } from '../errors.js'
import { hashPool } from '../util/hash-pool.js'
import { linksInRelease, versionLinks } from '../release/links.js'
import { checkBlock, checkBlockOnThread, HASH_CODES } from './block.js'
import { CarSectionReader, readReused, StreamDamage } from './reader.js'
import { DfsCheck } from '../walk/dfs-check.js'
import type { SeenSetOptions } from '../walk/seen-set.js'

/** One thing wrong with a CAR file, in the order it was found. */
export interface CarProblem {
  /**
   * `corrupt`: a block does not match its CID or does not decode, or a section of the file is malformed;
   * `missing`: a block reachable from a checked root is not in the file;
   * `truncated`: the file ends inside a section.
   */
  readonly kind: 'corrupt' | 'missing' | 'truncated'
  /** The CID the problem is about, when there is one. */
  readonly cid?: string
  /** A sentence naming what was found and what was expected. */
  readonly message: string
}

/** What {@link verifyCar} found. */
export interface CarReport {
  /** True exactly when {@link CarReport.problems} is empty. */
  readonly ok: boolean
  /** The roots in the CAR header (for a CARv2, the header of the CARv1 inside). */
  readonly roots: readonly CID[]
  /** The roots whose DAG was checked for completeness: `options.root` if given, else {@link CarReport.roots}. */
  readonly checkedRoots: readonly CID[]
  /** Blocks (sections) read, corrupt ones included. */
  readonly blocks: number
  /**
   * Bytes of the CAR read, header and framing included: the file size for a whole or truncated CARv1,
   * the end of the data for a CARv2 (its index is not read), the start of the malformed section when one
   * stopped the reading.
   */
  readonly bytes: number
  /** Everything wrong, first found first: problems of the stream in file order, then missing blocks. */
  readonly problems: readonly CarProblem[]
  /**
   * When the (first) checked root is a cairn version: how much of its history the CAR holds. A release
   * CAR holds none (`versions` 0, `next` the parent); each ancestor found is checked as a release too.
   */
  readonly history?: HistoryReport
}

/** The history a CAR holds beside the release of its root (src/release/links.ts). */
export interface HistoryReport {
  /** Ancestors whose release was checked, complete or not. */
  readonly versions: number
  /** The first ancestor not in the CAR (history not included from there); absent when the chain reaches a first version. */
  readonly next?: string
}

/** Progress of {@link verifyCar}, counted as in {@link CarReport}. */
export interface CarProgress {
  readonly blocks: number
  readonly bytes: number
}

/** Options of {@link verifyCar}. */
export interface VerifyCarOptions {
  /** Check the DAG under this CID instead of under the header's roots (e.g. a complete sub-DAG). */
  readonly root?: CID
  /** Called at most about every 100 ms while reading, and once at the end. */
  readonly onProgress?: (progress: CarProgress) => void
  /** How messages name the CAR when `input` is a stream (default `CAR stream`); a path names itself. */
  readonly name?: string
  /** Bytes per read when `input` is a path (default 4 MiB); tests make it small so that sections straddle reads. */
  readonly readBytes?: number
  /** Limits of the in-order check's seen set (src/walk/seen-set.ts); tests make them tiny. */
  readonly seenLimits?: SeenSetOptions
}

/** Large reads: a batch then holds several 1 MiB blocks, hashed at once on the hashing threads. */
const READ_CHUNK_BYTES = 4 << 20
/** Bytes of blocks handed to the hashing threads and not settled yet: reading stops while more are. */
const MAX_HASHING_BYTES = 8 << 20
const PROGRESS_INTERVAL_MS = 100

/**
 * Verifies a CAR file (v1, or v2 with a v1 inside): reads it once, as a stream, hashes every block
 * against its CID ({@link checkBlock}), reads every block's
 * links as a release walk follows them ({@link linksInRelease}: a dataset card's links are references, not
 * parts), and once the stream ends walks the DAG from each checked root: every
 * reachable CID must be in the file (identity-hash CIDs carry their bytes and need no block). Blocks that
 * no root reaches are allowed. Reading goes on after a corrupt block, so that all of them are reported;
 * after a malformed section or the end of a truncated file it cannot, and the DAG walk then reports what
 * the lost part left missing (at most one missing block per root: the first in depth-first link order).
 *
 * Damage inside the file is reported, not thrown: look at {@link CarReport.ok} and
 * {@link CarReport.problems}.
 *
 * @param input A file path, or the CAR bytes as an async iterable (a chunk must not be reused by its
 *   producer once yielded).
 * @throws {CairnError} `BAD_CAR` when the input is not a CAR file (empty, a text file, random bytes, a
 *   malformed header, a version other than 1 or 2); `IO` when the file cannot be read (a stream's own
 *   errors are wrapped likewise).
 */
export async function verifyCar(input: string | AsyncIterable<Uint8Array>, options: VerifyCarOptions = {}): Promise<CarReport> {
  // a file is first checked as one DAG in depth-first order (memory bounded); any other layout, or any
  // problem, is read again and checked the general way, which keeps every block's links (the same report)
  // (a regular file only: a pipe cannot be read twice)
  if (typeof input === 'string' && (await stat(input).catch(() => undefined))?.isFile()) {
    try {
      return await checkCar(input, options, options.seenLimits ?? {})
    } catch (e) {
      if (!(e instanceof NotInOrder)) throw e
    }
  }
  return checkCar(input, options, undefined)
}

/** The in-order check gave up: not a failure, the general check follows. */
class NotInOrder extends Error {}

async function checkCar(
  input: string | AsyncIterable<Uint8Array>,
  options: VerifyCarOptions,
  inOrder: SeenSetOptions | undefined,
): Promise<CarReport> {
  const name = typeof input === 'string' ? input : (options.name ?? 'CAR stream')
  const path = typeof input === 'string'
  const source = path ? readReused(input, options.readBytes ?? READ_CHUNK_BYTES) : input
  // no size given: a section is bounded by the cap, and a truncated file is read to its end as a stream is
  const reader = new CarSectionReader(source, name, path)
  // a stream's chunks are fresh memory anyway: its blocks are checked as they always were
  const pool = path ? hashPool() : undefined
  const problems: CarProblem[] = []
  // Keyed by canonical CID bytes (latin1 string, CIDv0 as CIDv1); a link list holds the links as written.
  const blocks = new Map<string, readonly string[] | typeof CORRUPT>()
  // a version's parent, kept apart from its links: a release does not hold it (src/release/links.ts)
  const parents = new Map<string, string>()
  let dfs: DfsCheck | undefined
  // in the in-order check, the root's parent ('' for a first version), when the root is a version
  let rootParent: string | undefined
  let settled = 0
  let count = 0
  let lastProgress = performance.now()
  const progress = (): void => options.onProgress?.({ blocks: count, bytes: reader.position })

  try {
    const roots = await reader.readHeader()
    if (inOrder !== undefined) {
      const checked = options.root !== undefined ? [options.root] : roots
      if (checked.length !== 1) throw new NotInOrder()
      dfs = new DfsCheck(keyOf(checked[0]), inOrder)
    }
    try {
      // Blocks are hashed together and their results taken in file order, so the report is the same as
      // one block at a time. A block hashed on a thread was copied there, its CID and links taken out
      // of the reader's buffers, so reading goes on while the threads hash; any other block still points
      // into those buffers and is settled before the next read, which may reuse them.
      // `hashing`: the block's bytes, when it is hashed on a thread; 0 when it points into the buffers
      const checking: { cid: CID; check: Promise<void>; links: () => readonly string[]; hashing: number; parent?: string }[] = []
      let hashing = 0 // bytes of `checking` on the threads
      let pointing = 0 // blocks of `checking` that point into the reader's buffers
      const settle = async (): Promise<void> => {
        const { cid, check, links, hashing: bytes, parent } = checking.shift() as (typeof checking)[number]
        hashing -= bytes
        if (bytes === 0) pointing--
        const key = canonicalKey(keyOf(cid))
        if (dfs !== undefined) {
          try {
            await check
          } catch (e) {
            if (!isCairnError(e, 'CORRUPT_BLOCK')) throw e
            throw new NotInOrder()
          }
          let own: readonly string[]
          try {
            own = links().filter((l) => l !== parent)
          } catch (e) {
            if (!isCairnError(e, 'CORRUPT_BLOCK')) throw e
            throw new NotInOrder()
          }
          if (!dfs.push(keyOf(cid), own)) throw new NotInOrder()
          if (settled++ === 0) rootParent = parent
          return
        }
        try {
          await check
          const known = blocks.get(key)
          if (known === undefined || known === CORRUPT) {
            blocks.set(key, !parent ? links() : links().filter((l) => l !== parent))
            if (parent !== undefined) parents.set(key, parent)
          }
        } catch (e) {
          if (!isCairnError(e, 'CORRUPT_BLOCK')) throw e
          problems.push({ kind: 'corrupt', cid: cid.toString(), message: e.message })
          if (!blocks.has(key)) blocks.set(key, CORRUPT)
        }
      }
      try {
        for (let batch = await reader.next(); batch.length > 0; batch = await reader.next()) {
          for (const { cid, bytes } of batch) {
            count++
            const onThread = pool && checkBlockOnThread(pool, cid, bytes)
            if (onThread !== undefined) {
              const { cid: owned, check } = onThread
              check.catch(() => {}) // taken in turn by settle
              // decoded now, used only if the hash matches: the same report as decoding after the check
              checking.push({ cid: owned, check, links: linksNow(owned, bytes), hashing: bytes.length, parent: parentKey(owned, bytes) })
              hashing += bytes.length
            } else {
              const check = checkBlock(cid, bytes)
              check.catch(() => {})
              checking.push({ cid, check, links: () => linksOf(cid, bytes), hashing: 0, parent: parentKey(cid, bytes) })
              pointing++
            }
          }
          while (pointing > 0 || hashing > MAX_HASHING_BYTES) await settle()
          if (options.onProgress !== undefined && performance.now() - lastProgress >= PROGRESS_INTERVAL_MS) {
            lastProgress = performance.now()
            progress()
          }
        }
      } finally {
        // the blocks read before a damaged section are still checked and reported
        while (checking.length > 0) await settle()
      }
    } catch (e) {
      if (!(e instanceof StreamDamage)) throw e
      if (dfs !== undefined) throw new NotInOrder()
      problems.push({
        kind: e.kind,
        message:
          e.kind === 'truncated'
            ? `CAR file ${name} is truncated after ${count} blocks (${e.message})`
            : `CAR file ${name} is malformed after ${count} blocks (${e.message})`,
      })
    }
    progress()

    const checkedRoots = options.root !== undefined ? [options.root] : roots
    if (dfs !== undefined) {
      // one DAG, whole, in order: the general check would find nothing; its history report is the root's parent
      if (!dfs.complete() || (rootParent !== undefined && rootParent !== '' && dfs.has(rootParent))) throw new NotInOrder()
      const history =
        rootParent === undefined
          ? undefined
          : rootParent === ''
            ? { versions: 0 }
            : { versions: 0, next: CID.decode(Buffer.from(rootParent, 'latin1')).toString() }
      return { ok: true, roots, checkedRoots, blocks: count, bytes: reader.position, problems, ...(history ? { history } : {}) }
    }
    for (const root of checkedRoots) {
      const problem = walk(root, blocks, name)
      if (problem !== undefined) problems.push(problem)
    }
    const history = checkedRoots.length > 0 ? checkHistory(checkedRoots[0], blocks, parents, name, problems) : undefined
    return {
      ok: problems.length === 0,
      roots,
      checkedRoots,
      blocks: count,
      bytes: reader.position,
      problems,
      ...(history ? { history } : {}),
    }
  } finally {
    dfs?.close()
    await reader.close()
  }
}

const CORRUPT = Symbol('corrupt')
const NO_LINKS: readonly string[] = Object.freeze([])

/** The parent of a version block as a map key (`''` for a first version), or undefined for any other block. */
function parentKey(cid: CID, bytes: Uint8Array): string | undefined {
  const version = versionLinks(cid, bytes)
  return version === undefined ? undefined : version.parent === null ? '' : keyOf(version.parent)
}

/**
 * The history a CAR holds beside the release of `root` (a version): each ancestor in the CAR is
 * walked as a release (its problems added to `problems`), up to the first one the CAR lacks, which is
 * not a problem (a release does not carry its parent). Undefined when `root` is not a version.
 */
function checkHistory(
  root: CID,
  blocks: ReadonlyMap<string, readonly string[] | typeof CORRUPT>,
  parents: ReadonlyMap<string, string>,
  name: string,
  problems: CarProblem[],
): HistoryReport | undefined {
  const rootKey = canonicalKey(keyOf(root))
  if (!blocks.has(rootKey) || !parents.has(rootKey)) return undefined
  let versions = 0
  const seen = new Set<string>()
  // '' is a first version's parent: the chain ends there
  for (let at = parents.get(rootKey); at; at = parents.get(canonicalKey(at))) {
    if (seen.has(canonicalKey(at))) break
    seen.add(canonicalKey(at))
    const cid = CID.decode(Buffer.from(at, 'latin1'))
    if (!blocks.has(canonicalKey(at))) return { versions, next: cid.toString() }
    versions++
    const problem = walk(cid, blocks, name)
    if (problem !== undefined) {
      problems.push({ ...problem, message: `${problem.message}, in the history (version ${cid})` })
      break
    }
  }
  return { versions }
}

/** A block's links in a release, as map keys. @throws {CairnError} `CORRUPT_BLOCK` as {@link linksInRelease}. */
function linksOf(cid: CID, bytes: Uint8Array): readonly string[] {
  return cid.code === raw.code ? NO_LINKS : linksInRelease(cid, bytes).map(keyOf)
}

/** {@link linksOf} read now, from bytes about to be overwritten, returned (or thrown) when asked. */
function linksNow(cid: CID, bytes: Uint8Array): () => readonly string[] {
  try {
    const links = linksOf(cid, bytes)
    return () => links
  } catch (e) {
    return () => {
      throw e
    }
  }
}

/**
 * Depth-first walk from `root`, in link order; returns the first problem. Corrupt blocks were reported
 * already and their links cannot be trusted, so the walk neither descends into them nor calls them missing.
 * Each root gets its own visited set: a walk stops at its first problem, so a block another root's walk
 * visited may have children nobody checked.
 */
function walk(root: CID, blocks: ReadonlyMap<string, readonly string[] | typeof CORRUPT>, name: string): CarProblem | undefined {
  const visited = new Set<string>()
  const rootKey = keyOf(root)
  const stack: string[] = [rootKey]
  const parents: (string | undefined)[] = [undefined]
  while (stack.length > 0) {
    const key = stack.pop() as string
    const parent = parents.pop()
    const canonical = canonicalKey(key)
    if (visited.has(canonical)) continue
    visited.add(canonical)
    let links = blocks.get(canonical)
    if (links === CORRUPT) continue
    if (links === undefined) {
      const cid = CID.decode(Buffer.from(key, 'latin1'))
      if (cid.multihash.code !== HASH_CODES.identity) {
        return parent === undefined
          ? { kind: 'missing', cid: cid.toString(), message: `Root ${cid} is not in CAR file ${name}` }
          : {
              kind: 'missing',
              cid: cid.toString(),
              message: `Block ${cid} is missing (linked from ${CID.decode(Buffer.from(parent, 'latin1'))})`,
            }
      }
      try {
        links = linksOf(cid, cid.multihash.digest)
      } catch (e) {
        if (!isCairnError(e, 'CORRUPT_BLOCK')) throw e
        return { kind: 'corrupt', cid: cid.toString(), message: e.message }
      }
    }
    for (let i = links.length - 1; i >= 0; i--) {
      stack.push(links[i])
      parents.push(key)
    }
  }
  return undefined
}

/** A CID's bytes as a string: compact, and cheap to make and to hash as a map key. */
function keyOf(cid: CID): string {
  const bytes = cid.bytes
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1')
}

/** CIDv0 `Qm…` and CIDv1 dag-pb with the same multihash name the same block. */
function canonicalKey(key: string): string {
  return key.charCodeAt(0) === 0x12 && key.length === 34 ? '\x01\x70' + key : key
}
