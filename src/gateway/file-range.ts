/**
 * Random access into a UnixFS file: the blocks that hold a byte range, found from the sizes each
 * node records for its children, so a read of the last 8 bytes of a 1 GiB file reads its root, one
 * node per level and one leaf. Used by plain `Range` responses and by `entity-bytes` CARs.
 */
import { decodeUnixFs } from '../cat.js'
import { DAG_PB, RAW, type CID } from '../cid.js'
import { CairnError } from '../errors.js'
import type { BlockSource } from '../store/blocks.js'

/** One block of a file walk, with the file bytes it holds that fall in the range (empty for a node without data in it). */
export interface RangeBlock {
  readonly cid: CID
  readonly bytes: Uint8Array
  /** The part of the block's file content inside the range. */
  readonly content: Uint8Array
}

/** The size in bytes of the UnixFS file `cid` (reads its root block; a raw block is its own content). */
export async function fileSize(source: BlockSource, cid: CID): Promise<number> {
  const bytes = await source.get(cid)
  if (cid.code === RAW) return bytes.length
  const { data } = decodeUnixFs(cid, bytes)
  return Number(data.fileSize())
}

/**
 * Every block of the file `cid` that holds a byte of `[from, to)` (and the nodes above them), in
 * file order, each verified by the source before it is yielded. Checks that every child holds the
 * bytes its parent records. Throws `CORRUPT_BLOCK` when a node is not a UnixFS file or the sizes
 * disagree, `MISSING_BLOCK` for a block the source lacks (only blocks in the range are asked for).
 */
export async function* fileRange(source: BlockSource, cid: CID, from: number, to: number): AsyncGenerator<RangeBlock> {
  yield* walk(source, cid, from, to, 0, undefined, 0)
}

async function* walk(
  source: BlockSource,
  cid: CID,
  from: number,
  to: number,
  offset: number,
  expected: number | undefined,
  depth: number,
): AsyncGenerator<RangeBlock> {
  if (depth > 64) throw new CairnError('CORRUPT_BLOCK', `${cid}: the file DAG is deeper than 64 levels`, { subject: cid.toString() })
  const bytes = await source.get(cid)
  if (cid.code === RAW) {
    if (expected !== undefined && bytes.length !== expected) throw sizeMismatch(cid, bytes.length, expected)
    yield { cid, bytes, content: clip(bytes, offset, from, to) }
    return
  }
  if (cid.code !== DAG_PB)
    throw new CairnError('CORRUPT_BLOCK', `${cid} is not a UnixFS file (codec 0x${cid.code.toString(16)})`, { subject: cid.toString() })
  const { node, data } = decodeUnixFs(cid, bytes)
  if (data.type !== 'file' && data.type !== 'raw') {
    throw new CairnError('CORRUPT_BLOCK', `${cid} is a UnixFS ${data.type}, expected a file`, { subject: cid.toString() })
  }
  const size = Number(data.fileSize())
  if (expected !== undefined && size !== expected) throw sizeMismatch(cid, size, expected)
  if (node.Links.length > 0 && node.Links.length !== data.blockSizes.length) {
    throw new CairnError('CORRUPT_BLOCK', `${cid}: ${node.Links.length} links but ${data.blockSizes.length} block sizes`, {
      subject: cid.toString(),
    })
  }
  const inline = data.data ?? new Uint8Array(0)
  yield { cid, bytes, content: clip(inline, offset, from, to) }
  let at = offset + inline.length
  for (let i = 0; i < node.Links.length; i++) {
    const length = Number(data.blockSizes[i])
    if (at < to && at + length > from) yield* walk(source, node.Links[i].Hash, from, to, at, length, depth + 1)
    at += length
  }
}

function clip(content: Uint8Array, offset: number, from: number, to: number): Uint8Array {
  const start = Math.max(from - offset, 0)
  const end = Math.min(to - offset, content.length)
  return end > start ? content.subarray(start, end) : content.subarray(0, 0)
}

function sizeMismatch(cid: CID, found: number, expected: number): CairnError {
  return new CairnError('CORRUPT_BLOCK', `${cid} holds ${found} bytes of the file, its parent records ${expected}`, {
    subject: cid.toString(),
  })
}
