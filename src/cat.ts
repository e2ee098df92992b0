/**
 * `cat`: one file, verified block by block, streamed to a writable: a shard of a cairn version (looked
 * up in its shard index) or a file under a UnixFS directory (resolved by name, HAMT directories
 * included). Also home to the UnixFS reading that `clone` and `serve` share: what a node is, a
 * directory's entries, and path resolution.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream } from 'node:fs'
import { rename, unlink } from 'node:fs/promises'
import { resolve as resolveFile } from 'node:path'
import { finished } from 'node:stream/promises'
import type { Writable } from 'node:stream'
import * as dagPb from '@ipld/dag-pb'
import { murmur364 } from '@multiformats/murmur3'
import { UnixFS } from 'ipfs-unixfs'
import { resolveAddress, sourcesFor } from './address/index.js'
import { CID, DAG_JSON, DAG_PB, RAW, tryParseCid } from './cid.js'
import { CairnError, ioError, isCairnError } from './errors.js'
import { readIndexNode } from './shard-index/prolly.js'
import { checkShardPath, comparePaths, type BranchEntry, type ShardEntry } from './manifest.js'
import { openSources, type SourceFailure, type SourceList, type SourceOptions } from './sources/index.js'
import type { BlockSource } from './store/blocks.js'
import { clip, MAX_NAME_BYTES, type DagLimits } from './limits/index.js'
import { invalidNameReason } from './unixfs/directory.js'
import { exportFile } from './unixfs/export.js'
import { readVersion } from './version.js'

/** What a root CID is, as far as clone and cat care. */
export type NodeKind = 'version' | 'file' | 'directory' | 'hamt' | 'symlink' | 'other'

/** A decoded dag-pb UnixFS node. */
export interface UnixFsNode {
  /** The dag-pb node (links). */
  readonly node: dagPb.PBNode
  /** Its UnixFS Data (type, sizes, inline bytes). */
  readonly data: UnixFS
}

/** Decodes a dag-pb block as UnixFS. Throws `CORRUPT_BLOCK` naming the CID when it is not UnixFS. */
export function decodeUnixFs(cid: CID, bytes: Uint8Array): UnixFsNode {
  try {
    const node = dagPb.decode(bytes)
    if (node.Data === undefined) throw new Error('no Data field')
    return { node, data: UnixFS.unmarshal(node.Data) }
  } catch (e) {
    throw new CairnError('CORRUPT_BLOCK', `${cid} is not a UnixFS node: ${(e as Error).message}`, { subject: cid.toString(), cause: e })
  }
}

/**
 * What `cid` is: a cairn version (dag-json `cairn.version`), a UnixFS file (raw, or dag-pb file/raw),
 * a plain or HAMT directory, a symlink, or something else (another codec, a dag-json block that is not
 * a version). Reads at most the root block (not for raw).
 */
export async function kindOf(source: BlockSource, cid: CID): Promise<NodeKind> {
  if (cid.code === RAW) return 'file'
  if (cid.code === DAG_PB) {
    const { data } = decodeUnixFs(cid, await source.get(cid))
    if (data.type === 'file' || data.type === 'raw') return 'file'
    if (data.type === 'directory') return 'directory'
    if (data.type === 'hamt-sharded-directory') return 'hamt'
    if (data.type === 'symlink') return 'symlink'
    return 'other'
  }
  if (cid.code === DAG_JSON) {
    try {
      await readVersion(source, cid)
      return 'version'
    } catch (e) {
      if (isCairnError(e, 'INVALID_MANIFEST')) return 'other'
      throw e
    }
  }
  return 'other'
}

/** One entry of a UnixFS directory. */
export interface DirectoryEntry {
  /** The entry's name (checked: one safe path segment). */
  readonly name: string
  readonly cid: CID
  /** The link's `Tsize` as the directory records it (bytes of the entry's DAG), unchecked. */
  readonly tsize?: number
}

/**
 * The entries of the UnixFS directory `cid` (plain or HAMT, sub-shards followed), in link order.
 * `onNode` sees every block of the directory itself (the root, and for a HAMT each shard). Every name
 * is checked: empty, `.`, `..`, a `/` or NUL inside, a backslash or a control character throw
 * `BAD_PATH` (such a name could write outside a target folder), as does a name seen twice.
 * Throws `CORRUPT_BLOCK` when `cid` is not a directory or a HAMT is malformed.
 */
export async function* listDirectory(source: BlockSource, cid: CID, onNode?: (cid: CID) => void): AsyncGenerator<DirectoryEntry> {
  const seen = new Set<string>()
  for await (const entry of walkDirectory(source, cid, 0, onNode, new Set())) {
    const reason =
      invalidNameReason(entry.name) ??
      (/[\\\u0000-\u001f\u007f]/.test(entry.name) ? 'it contains a backslash or a control character' : undefined) ??
      (Buffer.byteLength(entry.name) > MAX_NAME_BYTES
        ? `it is ${Buffer.byteLength(entry.name)} bytes long, more than a file system takes (${MAX_NAME_BYTES})`
        : undefined)
    if (reason !== undefined) {
      throw new CairnError(
        'BAD_PATH',
        `Directory ${cid} has an entry named ${JSON.stringify(clip(entry.name))}: ${reason}; refusing to use it`,
        {
          subject: clip(entry.name),
          hint: 'this DAG was made to write outside the folder it is extracted to, or is damaged',
        },
      )
    }
    if (seen.has(entry.name))
      throw new CairnError('BAD_PATH', `Directory ${cid} lists ${JSON.stringify(entry.name)} twice`, { subject: entry.name })
    seen.add(entry.name)
    yield entry
  }
}

/** Levels of a HAMT: a 64-bit hash spent 1 bit per level at the narrowest fanout. */
const MAX_HAMT_DEPTH = 64

async function* walkDirectory(
  source: BlockSource,
  cid: CID,
  depth: number,
  onNode?: (cid: CID) => void,
  shards: Set<string> = new Set(),
): AsyncGenerator<DirectoryEntry> {
  // every shard of a HAMT sits at one place of the hash: one linked twice, or deeper than the hash,
  // is a DAG made to multiply the walk
  if (depth > MAX_HAMT_DEPTH || shards.has(cid.toString())) {
    throw new CairnError(
      'CORRUPT_BLOCK',
      `HAMT shard ${cid} is ${depth > MAX_HAMT_DEPTH ? `more than ${MAX_HAMT_DEPTH} levels deep` : 'linked twice in one directory'}`,
      {
        subject: cid.toString(),
      },
    )
  }
  if (depth > 0) shards.add(cid.toString())
  if (cid.code !== DAG_PB)
    throw new CairnError('CORRUPT_BLOCK', `${cid} is not a UnixFS directory (codec 0x${cid.code.toString(16)})`, {
      subject: cid.toString(),
    })
  const { node, data } = decodeUnixFs(cid, await source.get(cid))
  onNode?.(cid)
  if (data.type === 'directory' && depth === 0) {
    for (const link of node.Links) yield { name: link.Name ?? '', cid: link.Hash, tsize: link.Tsize }
    return
  }
  if (data.type !== 'hamt-sharded-directory') {
    throw new CairnError('CORRUPT_BLOCK', `${cid} is a UnixFS ${data.type}, expected ${depth === 0 ? 'a directory' : 'a HAMT shard'}`, {
      subject: cid.toString(),
    })
  }
  const width = hamtPrefixLength(cid, data)
  for (const link of node.Links) {
    const name = link.Name ?? ''
    if (name.length < width)
      throw new CairnError('CORRUPT_BLOCK', `HAMT shard ${cid} has a link named ${JSON.stringify(name)}`, { subject: cid.toString() })
    if (name.length === width) yield* walkDirectory(source, link.Hash, depth + 1, onNode, shards)
    else yield { name: name.slice(width), cid: link.Hash, tsize: link.Tsize }
  }
}

function hamtPrefixLength(cid: CID, data: UnixFS): number {
  const fanout = Number(data.fanout ?? 0n)
  if (!Number.isInteger(Math.log2(fanout)) || fanout < 2 || fanout > 4096) {
    throw new CairnError('CORRUPT_BLOCK', `HAMT shard ${cid} has fanout ${fanout} (expected a power of two)`, { subject: cid.toString() })
  }
  return (fanout - 1).toString(16).length
}

/**
 * Finds `name` in the UnixFS directory `dir` (plain: by scanning its links; HAMT of fanout 256: by
 * the name's murmur3 hash, one shard per level). `onNode` sees each directory block read. Returns
 * undefined when there is no such entry; throws `CORRUPT_BLOCK` when `dir` is not a directory.
 */
export async function findInDirectory(source: BlockSource, dir: CID, name: string, onNode?: (cid: CID) => void): Promise<CID | undefined> {
  const { node, data } = decodeUnixFs(dir, await source.get(dir))
  onNode?.(dir)
  if (data.type === 'directory') return node.Links.find((l) => l.Name === name)?.Hash
  if (data.type !== 'hamt-sharded-directory') {
    throw new CairnError('CORRUPT_BLOCK', `${dir} is a UnixFS ${data.type}, not a directory`, { subject: dir.toString() })
  }
  if (Number(data.fanout) !== 256) {
    for await (const e of walkDirectory(source, dir, 0)) if (e.name === name) return e.cid
    return undefined
  }
  const digest = (murmur364.digest(Buffer.from(name, 'utf8')) as { digest: Uint8Array }).digest
  let at = { node, cid: dir }
  for (let depth = 0; depth < digest.length; depth++) {
    const prefix = digest[depth].toString(16).toUpperCase().padStart(2, '0')
    const link = at.node.Links.find((l) => l.Name === prefix || l.Name === prefix + name)
    if (link === undefined) return undefined
    if (link.Name !== prefix) return link.Hash
    const shard = decodeUnixFs(link.Hash, await source.get(link.Hash))
    onNode?.(link.Hash)
    if (shard.data.type !== 'hamt-sharded-directory') {
      throw new CairnError('CORRUPT_BLOCK', `HAMT sub-shard ${link.Hash} is a UnixFS ${shard.data.type}`, { subject: link.Hash.toString() })
    }
    at = { node: shard.node, cid: link.Hash }
  }
  return undefined
}

/**
 * Finds the shard entry with `path` in the shard index under `root`, reading one node per level
 * (a branch entry holds the first path below it). Returns undefined when the index has no such path.
 */
export async function findEntry(
  source: BlockSource,
  root: CID,
  path: string,
  onNode?: (cid: CID) => void,
): Promise<ShardEntry | undefined> {
  let at: CID = root
  for (;;) {
    const node = await readIndexNode(source, at)
    onNode?.(at)
    if (node.level === 0) return (node.entries as readonly ShardEntry[]).find((e) => e.path === path)
    const branches = node.entries as readonly BranchEntry[]
    let pick: BranchEntry | undefined
    for (const b of branches) {
      if (comparePaths(b.path, path) <= 0) pick = b
      else break
    }
    if (pick === undefined) return undefined
    at = pick.node
  }
}

/** Where a path led. */
export interface Resolved {
  /** The CID at the end of the path. */
  readonly cid: CID
  /** Every block read to get there, the root first (the path's proof). */
  readonly traversed: readonly CID[]
  /** For a cairn version: the shard entry found. */
  readonly entry?: ShardEntry
}

/**
 * Resolves `path` (`/`-separated, may be empty) under `root`: in a cairn version, the shard path in
 * its index; in a UnixFS directory, name by name (HAMT included). Throws `USAGE` when a segment is not
 * found or walks into a file, `BAD_PATH` when the path is not normalised.
 */
export async function resolvePath(source: BlockSource, root: CID, path: string): Promise<Resolved> {
  const traversed: CID[] = []
  const seen = (cid: CID): void => {
    if (!traversed.some((c) => c.equals(cid))) traversed.push(cid)
  }
  if (path === '') return { cid: root, traversed }
  checkShardPath(path, 'path')
  if (root.code === DAG_JSON) {
    const version = await readVersion(source, root)
    seen(root)
    const entry = await findEntry(source, version.index, path, seen)
    if (entry === undefined)
      throw new CairnError('USAGE', `Version ${root} has no shard ${JSON.stringify(path)}`, {
        subject: path,
        hint: 'list its shards with `cairn ls`',
      })
    return { cid: entry.cid, traversed, entry }
  }
  let at = root
  const segments = path.split('/')
  for (let i = 0; i < segments.length; i++) {
    if (at.code !== DAG_PB) throw notADirectory(segments.slice(0, i).join('/') || at.toString(), path)
    const { data } = decodeUnixFs(at, await source.get(at))
    if (data.type !== 'directory' && data.type !== 'hamt-sharded-directory') throw notADirectory(segments.slice(0, i).join('/'), path)
    const next = await findInDirectory(source, at, segments[i], seen)
    if (next === undefined)
      throw new CairnError(
        'USAGE',
        `${root}/${path}: no entry ${JSON.stringify(segments[i])} in ${segments.slice(0, i).join('/') || root}`,
        { subject: path },
      )
    at = next
  }
  return { cid: at, traversed }
}

function notADirectory(where: string, path: string): CairnError {
  return new CairnError('USAGE', `${where} is not a directory, so ${JSON.stringify(path)} cannot be resolved`, { subject: path })
}

/** Splits `cid/path`, `/ipfs/cid/path` or `ipfs://cid/path`. Throws `USAGE` when the CID does not parse. */
export function parseContentPath(text: string): { root: CID; path: string } {
  const stripped = text
    .replace(/^ipfs:\/\//, '')
    .replace(/^\/ipfs\//, '')
    .replace(/^\/+/, '')
  const slash = stripped.indexOf('/')
  const head = slash < 0 ? stripped : stripped.slice(0, slash)
  const root = tryParseCid(head)
  if (root === undefined)
    throw new CairnError('USAGE', `${JSON.stringify(head)} is not a CID (expected <cid> or <cid>/<path>)`, { subject: text })
  const path = slash < 0 ? '' : stripped.slice(slash + 1).replace(/\/+$/, '')
  return { root, path }
}

/** Options of {@link cat}. */
export interface CatOptions {
  /** `<cid>` or `<cid>/<path>` (also `/ipfs/<cid>/<path>`). */
  readonly cid: string
  /**
   * Sources in the order tried, after the store of the dataset at hand (default {@link DEFAULT_GATEWAYS},
   * only reached for blocks that store lacks); ignored when `source` is given.
   */
  readonly from?: readonly string[]
  /** The dataset at hand (a folder in it): `cid` may then be a ref (`v2:path`), and its store is read first. It must be a dataset. */
  readonly dir?: string
  /** Without `dir`: use the dataset holding the current folder, if there is one. */
  readonly findDataset?: boolean
  /** An already opened source list (the caller closes it). */
  readonly source?: SourceList
  /** Where the bytes go: a stream (not ended by `cat`), or a file path (written to a temporary name, renamed when complete). */
  readonly output: Writable | string
  /** Gateway timeouts. */
  readonly sourceOptions?: Omit<SourceOptions, 'onFailure'>
  /** Each failure of one source on one CID, before the next source is tried. */
  readonly onFailure?: (failure: SourceFailure) => void
  /** Bounds on the file's declared size (default {@link DEFAULT_LIMITS}). */
  readonly limits?: DagLimits
}

/** What {@link cat} wrote. */
export interface CatResult {
  /** The file's root CID. */
  readonly cid: CID
  /** The path resolved under the root ('' for a bare file CID). */
  readonly path: string
  /** Bytes written. */
  readonly size: number
  /** The file written, when `output` was a path (absolute). */
  readonly file?: string
}

/**
 * Streams one file to `output`: every block is checked against its CID before its bytes are written,
 * and for a cairn shard the size is checked against the entry at the end. A failure after the first
 * bytes leaves what was written (all of it verified) and throws.
 *
 * @throws {CairnError} `USAGE` for a CID that does not parse, a path that does not resolve, a version
 *   without a path or a path naming a directory; `BAD_PATH`; `FETCH_FAILED` naming the CID and each
 *   source's failure; `CORRUPT_BLOCK` when the DAG is not a UnixFS file or its sizes disagree.
 */
export async function cat(options: CatOptions): Promise<CatResult> {
  if (typeof options.output !== 'string') return catTo(options, options.output)
  const file = resolveFile(options.output)
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  const out = createWriteStream(tmp)
  try {
    const result = await catTo(options, out)
    out.end()
    await finished(out)
    await rename(tmp, file)
    return { ...result, file }
  } catch (e) {
    out.destroy()
    await unlink(tmp).catch(() => {})
    if (!isCairnError(e) && (e as NodeJS.ErrnoException).code) throw ioError('write', file, e)
    throw e
  }
}

async function catTo(options: CatOptions, output: Writable): Promise<CatResult> {
  const { root, path, dataset } = await resolveAddress(options.cid, options)
  const list =
    options.source ?? (await openSources(sourcesFor({ dataset }, options.from), { ...options.sourceOptions, onFailure: options.onFailure }))
  try {
    const kind = await kindOf(list, root)
    if (kind === 'version' && path === '') {
      throw new CairnError('USAGE', `${root} is a cairn version: name one of its shards (${root}/<path>)`, { subject: options.cid })
    }
    const resolved = await resolvePath(list, root, path)
    const target = await kindOf(list, resolved.cid)
    if (target !== 'file')
      throw new CairnError('USAGE', `${options.cid} is a ${target === 'hamt' ? 'directory' : target}, not a file`, { subject: options.cid })
    const session = list.session(resolved.cid)
    let size = 0
    try {
      for await (const piece of exportFile(session, resolved.cid, options.limits)) {
        if (output.destroyed)
          throw new CairnError('IO', 'The output was closed before the file was written whole', { cause: output.errored })
        size += piece.length
        if (!output.write(piece)) await drained(output)
      }
    } finally {
      await session.close()
    }
    if (resolved.entry !== undefined && size !== resolved.entry.size) {
      throw new CairnError('CORRUPT_BLOCK', `${options.cid}: ${size} bytes read, the version records ${resolved.entry.size}`, {
        subject: resolved.cid.toString(),
      })
    }
    return { cid: resolved.cid, path, size }
  } finally {
    if (options.source === undefined) await list.close()
  }
}

async function drained(out: Writable): Promise<void> {
  // a destroyed stream never drains: fail instead of waiting forever
  const ac = new AbortController()
  let failure: unknown
  const onError = (e: unknown): void => {
    failure = e
  }
  out.once('error', onError)
  const closed = once(out, 'close', { signal: ac.signal }).then(() => {
    throw new CairnError(
      'IO',
      `The output was closed before the file was written whole${failure ? `: ${(failure as NodeJS.ErrnoException).code ?? (failure as Error).message}` : ''}`,
      {
        cause: failure,
      },
    )
  })
  try {
    await Promise.race([once(out, 'drain', { signal: ac.signal }), closed])
  } catch (e) {
    // `once` rejects with the stream's error (a full disk: ENOSPC)
    throw isCairnError(e) ? e : ioError('write', 'the output', e)
  } finally {
    ac.abort()
    out.off('error', onError)
    closed.catch(() => {})
  }
}
