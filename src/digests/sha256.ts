/**
 * The sha256 of a file's bytes (what `sha256sum` prints), for formats that name files by a plain
 * digest rather than a CID: Croissant's `sha256`, the OpenSSF model-signing statement. Computed once
 * per file CID and kept in the store (docs/lineage.md, "Hash once"):
 *
 * - a file of one raw block whose CID is sha2-256 needs no read at all: the CID's digest is the sha256
 *   of the bytes (every file of at most 1 MiB under the profile);
 * - any other file is streamed out of the store (every block checked against its CID) through one
 *   hash, and the result appended to `.cairn/digests/sha256` as a line `<file CID> <hex>`.
 *
 * The log only grows; a line cut short by a killed writer is ignored, and so is anything that is not
 * a whole line of the right form. Reading it keeps only the lines for the CIDs asked about, so memory
 * follows the request, not the store.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { appendFile, mkdir, open } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { toHex } from 'multiformats/bytes'
import { RAW, SHA2_256, type CID } from '../cid.js'
import { ioError } from '../errors.js'
import { BlockStore, type BlockSource } from '../store/blocks.js'
import { exportFile } from '../unixfs/export.js'
import { mapLimit } from '../util/pool.js'

/** The digest log's path under a store folder (`.cairn`). */
export const SHA256_LOG = join('digests', 'sha256')

/** Options of {@link fileSha256s}. */
export interface Sha256Options {
  /**
   * The store folder (`.cairn`) whose digest log is read and appended to. Default: the root of `source`
   * when it is a {@link BlockStore}; none otherwise (nothing is kept).
   */
  readonly storeDir?: string
  /** Files hashed at once (default 4). */
  readonly concurrency?: number
  /** Called for each file whose bytes had to be read, with its CID and size, after it was hashed. */
  readonly onHashed?: (cid: CID, size: number) => void
}

/**
 * The sha256 (lowercase hex) of the bytes of the UnixFS file `cid` (raw or dag-pb), from `source`
 * (usually the dataset's store), computed once and kept (see the module's comment).
 *
 * @throws {CairnError} `MISSING_BLOCK` / `CORRUPT_BLOCK` when the file cannot be read whole and intact;
 *   `IO` when the digest log cannot be written.
 */
export async function fileSha256(source: BlockSource, cid: CID, options: Sha256Options = {}): Promise<string> {
  const found = await fileSha256s(source, [cid], options)
  return found.get(cid.toString()) as string
}

/**
 * The sha256 of each file in `cids`, keyed by the CID's string form (as `cid.toString()`). The log is
 * read once for the whole batch, and every digest computed is appended to it in one write.
 * Fails as {@link fileSha256} does.
 */
export async function fileSha256s(source: BlockSource, cids: readonly CID[], options: Sha256Options = {}): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const toRead = new Map<string, CID>()
  for (const cid of cids) {
    const known = digestInCid(cid)
    if (known !== undefined) out.set(cid.toString(), known)
    else toRead.set(cid.toString(), cid)
  }
  if (toRead.size === 0) return out
  const storeDir = options.storeDir ?? (source instanceof BlockStore ? source.root : undefined)
  const log = storeDir === undefined ? undefined : join(storeDir, SHA256_LOG)
  let cut = false
  if (log !== undefined) {
    const read = await readLog(log, toRead)
    cut = read.cut
    for (const [key, hex] of read.found) {
      out.set(key, hex)
      toRead.delete(key)
    }
  }
  const computed: string[] = []
  await mapLimit([...toRead.values()], options.concurrency ?? 4, async (cid) => {
    const hash = createHash('sha256')
    let size = 0
    for await (const piece of exportFile(source, cid)) {
      hash.update(piece)
      size += piece.length
    }
    const hex = hash.digest('hex')
    out.set(cid.toString(), hex)
    computed.push(`${cid.toString()} ${hex}\n`)
    options.onHashed?.(cid, size)
  })
  if (log !== undefined && computed.length > 0) {
    try {
      await mkdir(dirname(log), { recursive: true })
      // one append: O_APPEND keeps lines of concurrent writers whole and apart
      // after a line cut short, a newline first: the new lines must not be glued to it
      await appendFile(log, (cut ? '\n' : '') + computed.join(''))
    } catch (e) {
      throw ioError('record file digests in', log, e)
    }
  }
  return out
}

/**
 * The sha256 of a file's bytes when its CID already says it: a raw block hashed with sha2-256 is its
 * own content, so its digest is the file's sha256. Undefined for any other CID.
 */
export function digestInCid(cid: CID): string | undefined {
  if (cid.code === RAW && cid.multihash.code === SHA2_256) return toHex(cid.multihash.digest)
  if (cid.code === RAW && cid.multihash.code === 0x00) return createHash('sha256').update(cid.multihash.digest).digest('hex')
  return undefined
}

const LINE = /^([A-Za-z0-9]+) ([0-9a-f]{64})$/

/** The log's digests of the CIDs in `wanted` (a missing log is an empty one), and whether its last line is cut short. */
async function readLog(log: string, wanted: ReadonlyMap<string, CID>): Promise<{ found: Map<string, string>; cut: boolean }> {
  const found = new Map<string, string>()
  let cut = false
  const stream = createReadStream(log, { encoding: 'utf8' })
  try {
    const lines = createInterface({ input: stream, crlfDelay: Infinity })
    let pendingLast: string | undefined
    for await (const line of lines) {
      if (pendingLast !== undefined) take(pendingLast, wanted, found)
      pendingLast = line
    }
    // the last line counts only when the file ends with its newline (a killed writer's line does not)
    if (pendingLast !== undefined) {
      if (await endsWithNewline(log)) take(pendingLast, wanted, found)
      else cut = true
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { found, cut: false }
    throw ioError('read file digests from', log, e)
  } finally {
    stream.destroy()
  }
  return { found, cut }
}

function take(line: string, wanted: ReadonlyMap<string, CID>, found: Map<string, string>): void {
  const m = LINE.exec(line)
  if (m !== null && wanted.has(m[1])) found.set(m[1], m[2])
}

async function endsWithNewline(file: string): Promise<boolean> {
  const fh = await open(file, 'r')
  try {
    const { size } = await fh.stat()
    if (size === 0) return false
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, size - 1)
    return b[0] === 0x0a
  } finally {
    await fh.close()
  }
}
