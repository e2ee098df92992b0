/**
 * Where clones and `cat` get blocks from: trustless gateways (`http(s)://…`), CAR files (`*.car`),
 * `dir:` folders and local stores, each a {@link Source}; {@link openSources} puts several in one
 * {@link SourceList} that tries them in order, moves on after any failure, and says which CID failed at
 * which source. Every block is checked against its CID by the source that produced it.
 */
import { stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { CarBlockSource } from '../car/source.js'
import { RAW, type CID } from '../cid.js'
import { STORE_DIR } from '../dataset.js'
import { CairnError, isCairnError, type ErrorCode } from '../errors.js'
import { BlockStore, type BlockSource } from '../store/blocks.js'
import type { Block } from '../unixfs/file.js'
import { DirSource } from './dir.js'
import { GatewaySource, type GatewayOptions } from './gateway.js'
import { CarSession, keyOf, STASH_LIMIT_BYTES } from './car-session.js'
import { AllFailed, Scheduler } from './scheduler.js'
import { TreeSession } from './tree-session.js'

export { DEFAULT_GATEWAYS, GatewaySource, MAX_BLOCK_BYTES, type GatewayOptions } from './gateway.js'
export { DirSource } from './dir.js'

/** Options of one request to a {@link Source}. */
export interface FetchOptions {
  /** Aborting it ends the request (sources that answer at once may ignore it). */
  readonly signal?: AbortSignal
}

/** A place blocks come from, as the user named it. */
export interface Source extends BlockSource {
  /** The source as the user named it (a URL, `dir:<path>`, a file or folder path); errors quote it. */
  readonly name: string
  /** The block, checked against `cid` (see {@link BlockSource.get}). */
  get(cid: CID, options?: FetchOptions): Promise<Uint8Array>
  /**
   * The DAG under `root` as a stream of blocks, each checked against its CID, preferably depth-first.
   * Sources that can send a whole DAG in one response (gateways) have it; it may end before the DAG is
   * complete, and callers fetch what they still lack block by block.
   */
  dag?(root: CID, options?: FetchOptions): AsyncIterable<Block>
  /** Releases files and connections. */
  close(): Promise<void>
}

/** Options of {@link openSource} and {@link openSources}. */
export interface SourceOptions extends GatewayOptions {
  /** Called for every failure of one source on one CID, before the next source is tried. */
  readonly onFailure?: (failure: SourceFailure) => void
  /**
   * With several sources, spread the requests over all of them at once (docs/multi-source.md) rather
   * than trying them in order: what a clone does.
   */
  readonly spread?: boolean
}

/** One source failing on one CID. */
export interface SourceFailure {
  /** The CID the source failed on. */
  readonly cid: string
  /** The source, as the user named it. */
  readonly source: string
  /** The error's code (`INTERNAL` for an error that is not a CairnError). */
  readonly code: ErrorCode | 'INTERNAL'
  /** A sentence naming the source, the CID and what went wrong. */
  readonly message: string
}

/**
 * Opens one source from its spec: `http://…` / `https://…` a trustless gateway; `dir:<path>` a `dir:`
 * folder; a path ending in `.car` (or any file) a CAR file; a folder holding `cairn-dir.json` a `dir:`
 * folder; a dataset folder (or its `.cairn/` store) the local store. Throws `USAGE` for a spec that is
 * none of these, `BAD_CAR` / `IO` for a CAR that cannot be read.
 */
export async function openSource(spec: string, options: SourceOptions = {}): Promise<Source> {
  if (/^https?:\/\//i.test(spec)) return new GatewaySource(spec, options)
  if (spec.startsWith('dir:')) return DirSource.open(spec.slice(4))
  const path = resolve(spec)
  const st = await stat(path).catch(() => undefined)
  if (st === undefined) {
    throw new CairnError(
      'USAGE',
      `Source ${JSON.stringify(spec)} does not exist (expected a gateway URL, a CAR file, dir:<path> or a dataset folder)`,
      {
        subject: spec,
      },
    )
  }
  if (st.isFile()) return carSource(spec, await CarBlockSource.open(path))
  if (await isFile(join(path, 'cairn-dir.json'))) return DirSource.open(path)
  if (await isFile(join(path, STORE_DIR, 'store.json'))) return storeSource(spec, new BlockStore(join(path, STORE_DIR)))
  if (await isFile(join(path, 'store.json'))) return storeSource(spec, new BlockStore(path))
  throw new CairnError('USAGE', `Source ${JSON.stringify(spec)} is a folder that is neither a dir: target nor a cairn dataset`, {
    subject: spec,
  })
}

/**
 * Opens every spec (see {@link openSource}) as one {@link SourceList}, in the given order. Throws as
 * {@link openSource} does (closing what it opened), or `USAGE` for an empty list.
 */
export async function openSources(specs: readonly string[], options: SourceOptions = {}): Promise<SourceList> {
  if (specs.length === 0)
    throw new CairnError('USAGE', 'No source given (expected a gateway URL, a CAR file, dir:<path> or a dataset folder)')
  const opened: Source[] = []
  try {
    for (const spec of specs) opened.push(await openSource(spec, options))
  } catch (e) {
    await Promise.all(opened.map((s) => s.close()))
    throw e
  }
  return new SourceList(opened, options.onFailure, {
    spread: options.spread === true,
    timeoutMs: Math.max(options.timeoutMs ?? 30_000, options.idleTimeoutMs ?? 15_000),
  })
}

/** Blocks of at most this size are kept by a {@link SourceList}, the latest ones up to {@link RECENT_BUDGET_BYTES} in all. */
const RECENT_MAX_BYTES = 64 * 1024
const RECENT_BUDGET_BYTES = 4 * 1024 * 1024

/**
 * Several sources tried in order. A source that failed with something other than "I do not have it"
 * (a timeout, wrong bytes, an HTML page) is tried after the others from then on, until it succeeds
 * again. Every failure is reported to `onFailure` and kept in {@link SourceList.failures}.
 */
export class SourceList implements BlockSource {
  /** Every failure so far, oldest first (at most 1000 kept). */
  readonly failures: SourceFailure[] = []
  private readonly strikes = new Map<Source, number>()
  /** Recently fetched small blocks (directory and file nodes are often asked for more than once). */
  private readonly recent = new Map<string, Uint8Array>()
  private recentBytes = 0
  /** With `spread` and several sources: who gets each request (src/sources/scheduler.ts). */
  private readonly scheduler: Scheduler | undefined

  /**
   * `sources` are tried in this order; `onFailure` hears of each failure. The list closes them in
   * {@link SourceList.close}. With `spread` (and more than one source), requests are spread over all
   * of them at once instead, slow ones hedged after a delay of at most `timeoutMs`.
   */
  constructor(
    readonly sources: readonly Source[],
    private readonly onFailure?: (failure: SourceFailure) => void,
    options: { readonly spread?: boolean; readonly timeoutMs?: number } = {},
  ) {
    if (options.spread === true && sources.length > 1) this.scheduler = new Scheduler(sources, options.timeoutMs ?? 30_000)
  }

  /**
   * The block, from the first source that has it (trying `avoid` last). Throws `FETCH_FAILED` naming
   * the CID and each source's failure (in `details`) when none can supply it.
   */
  async get(cid: CID, avoid?: Source): Promise<Uint8Array> {
    const key = cid.toString()
    const cached = this.recent.get(key)
    if (cached !== undefined) return cached
    const bytes = await this.fetch(cid, avoid)
    if (bytes.length <= RECENT_MAX_BYTES && !this.recent.has(key)) {
      // a view into a larger network buffer would keep all of that buffer
      this.recent.set(key, bytes.byteLength < bytes.buffer.byteLength ? bytes.slice() : bytes)
      this.recentBytes += bytes.length
      for (const [oldest, b] of this.recent) {
        if (this.recentBytes <= RECENT_BUDGET_BYTES) break
        this.recent.delete(oldest)
        this.recentBytes -= b.length
      }
    }
    return bytes
  }

  /** The block from the first source that has it (trying `avoid` last), not kept. Throws as {@link SourceList.get}. */
  private async fetch(cid: CID, avoid?: Source): Promise<Uint8Array> {
    if (this.scheduler !== undefined) return this.spreadFetch(this.scheduler, cid, avoid)
    const tried: string[] = []
    const codes: string[] = []
    // files and folders that all lack the block: the DAG is not there (an integrity fact, not a failure of a source)
    let absent = true
    for (const source of this.ordered(avoid)) {
      try {
        const bytes = await source.get(cid)
        this.strikes.delete(source)
        return bytes
      } catch (e) {
        const failure = this.record(cid, source, e)
        tried.push(failure.message)
        codes.push(failure.code)
        absent &&= isCairnError(e, 'MISSING_BLOCK') && !(source instanceof GatewaySource)
      }
    }
    throw noSourceCould(cid, tried, codes, absent)
  }

  /** {@link SourceList.fetch} with the requests spread over every source (a "not found" is not reported). */
  private async spreadFetch(scheduler: Scheduler, cid: CID, avoid?: Source): Promise<Uint8Array> {
    try {
      return await scheduler.fetch(cid, (c, source, e) => this.record(c, source, e), avoid)
    } catch (e) {
      if (!(e instanceof AllFailed)) throw e
      const tried = e.failures.map((f) => messageOf(f.error, f.source, cid))
      const codes = e.failures.map((f) => (isCairnError(f.error) ? f.error.code : 'INTERNAL'))
      const absent = e.failures.every((f) => isCairnError(f.error, 'MISSING_BLOCK') && !(f.source instanceof GatewaySource))
      throw noSourceCould(cid, tried, codes, absent)
    }
  }
  /**
   * A block source for reading the DAG under `root` in depth-first order: a file, or many files of a
   * folder at once, each by its own reader. When the first source can stream a whole DAG, one CAR
   * request serves every block, each handed to whoever waits for it or held until asked for (at most
   * {@link STASH_LIMIT_BYTES}); the blocks `skip` names (nodes the caller already has, such as folders)
   * are dropped as they pass. Whatever the stream cannot supply (it breaks, stalls, sends wrong bytes,
   * ends without a block, or floods past that limit while a reader waits) is fetched block by block from
   * the other sources, that source last. A file that is one raw block is fetched as that block, and not
   * cached (a file's bytes are read once): a CAR stream of it would be cut off after its block, and its
   * connection with it. Close the session when done (it aborts the stream).
   *
   * Spreading over several sources, the stream comes from the source expected to answer first (so
   * that sessions of files read at once go to different sources), and one that brings no block for
   * its hedge delay while a reader waits is given up as stalled (the blocks still wanted then come
   * from all the sources at once). Spreading, with `local` (where the caller reads the tree's nodes,
   * which `skip` lists) and several sources that stream, the tree is read as CAR streams of its
   * subtrees from all of them at once instead (src/sources/tree-session.ts).
   */
  session(root: CID, skip: Iterable<CID> = [], local?: BlockSource): BlockSource & { close(): Promise<void> } {
    if (root.code === RAW) return { get: (cid: CID) => this.fetch(cid), close: async () => {} }
    const skipped = (): Set<string> => new Set([...skip].map(keyOf))
    // a tree whose nodes the caller has: its subtrees are streamed from every source at once
    if (this.scheduler !== undefined && local !== undefined && this.sources.filter((s) => s.dag !== undefined).length > 1)
      return new TreeSession(this, this.scheduler, root, skipped(), local)
    if (this.scheduler !== undefined) {
      const lane = this.scheduler.pick()
      if (lane?.source.dag === undefined) return Object.assign(this.wrapGet(), { close: async () => {} })
      return new CarSession(this, lane.source, root, skipped(), { scheduler: this.scheduler, lane })
    }
    const first = this.ordered()[0]
    if (first?.dag === undefined) return Object.assign(this.wrapGet(), { close: async () => {} })
    return new CarSession(this, first, root, skipped())
  }

  /** Closes every source. */
  async close(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.close()))
  }

  /** Records that `source` failed on `cid`. */
  record(cid: CID, source: Source, e: unknown): SourceFailure {
    const failure: SourceFailure = {
      cid: cid.toString(),
      source: source.name,
      code: isCairnError(e) ? e.code : 'INTERNAL',
      message: messageOf(e, source, cid),
    }
    if (!isCairnError(e, 'MISSING_BLOCK')) this.strikes.set(source, (this.strikes.get(source) ?? 0) + 1)
    if (this.failures.length < 1000) this.failures.push(failure)
    this.onFailure?.(failure)
    return failure
  }

  private ordered(avoid?: Source): Source[] {
    const strikes = (s: Source): number => (s === avoid ? Infinity : (this.strikes.get(s) ?? 0) > 0 ? 1 : 0)
    return [...this.sources].sort((a, b) => strikes(a) - strikes(b))
  }

  private wrapGet(): BlockSource {
    return { get: (cid: CID) => this.get(cid) }
  }
}

/**
 * Failures that are bad bytes (README, exit codes): when any source sent them, every source failing on
 * the block is an integrity failure (`CORRUPT_BLOCK`, exit 5), whether a file, a store or a gateway sent
 * them; `FETCH_FAILED` (7) is left for sources that could not be reached.
 */
const INTEGRITY_CODES: ReadonlySet<string> = new Set(['CORRUPT_BLOCK', 'BAD_CAR', 'INVALID_MANIFEST'])

/**
 * The error when no source supplied `cid`: `tried` holds each source's failure message, `codes` their
 * codes; `absent` when every source was a file or folder lacking the block.
 */
function noSourceCould(cid: CID, tried: readonly string[], codes: readonly string[], absent: boolean): CairnError {
  // bad bytes from any source are an integrity failure (exit 5), whichever source sent them
  if (codes.some((c) => INTEGRITY_CODES.has(c))) {
    return new CairnError('CORRUPT_BLOCK', `No source could supply a valid block ${cid}: ${tried.join('; ')}`, {
      subject: cid.toString(),
      details: tried,
      hint: 'add another source with --from (a gateway URL, a CAR file or dir:<path>)',
    })
  }
  if (absent && tried.length > 0) {
    return new CairnError('MISSING_BLOCK', `Block ${cid} is in none of the sources: ${tried.join('; ')}`, {
      subject: cid.toString(),
      details: tried,
      hint: 'add a source that holds it with --from (a gateway URL, a CAR file or dir:<path>)',
    })
  }
  return new CairnError('FETCH_FAILED', `No source could supply block ${cid}: ${tried.join('; ')}`, {
    subject: cid.toString(),
    details: [...tried],
    hint: 'add another source with --from (a gateway URL, a CAR file or dir:<path>)',
  })
}

/** A message that names the source and the CID, whatever the source put in it. */
function messageOf(e: unknown, source: Source, cid: CID): string {
  let message = e instanceof Error ? e.message : String(e)
  if (!message.includes(source.name)) message = `${source.name}: ${message}`
  return message.includes(cid.toString()) ? message : `${message} (while fetching block ${cid})`
}

function carSource(spec: string, car: CarBlockSource): Source {
  return {
    name: spec,
    get: async (cid) => (cid.multihash.code === 0x00 ? cid.multihash.digest : car.get(cid)),
    close: () => car.close(),
  }
}

function storeSource(spec: string, store: BlockStore): Source {
  return {
    name: spec,
    get: async (cid) => {
      if (cid.multihash.code === 0x00) return cid.multihash.digest
      try {
        return await store.get(cid)
      } catch (e) {
        if (isCairnError(e, 'MISSING_BLOCK'))
          throw new CairnError('MISSING_BLOCK', `Block ${cid} is not in the store of ${spec}`, { subject: cid.toString() })
        throw e
      }
    },
    close: () => store.close(),
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true
}
