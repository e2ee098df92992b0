/**
 * Reading a UnixFS file back: its bytes in order from its root CID, through any {@link BlockSource}
 * (every block is checked against its CID by the source). Memory holds one block per level of the DAG.
 */
import { createWriteStream } from 'node:fs'
import { once } from 'node:events'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { DAG_PB, RAW, type CID } from '../cid.js'
import { CairnError, ioError } from '../errors.js'
import { limitExceeded, limitsOf, MAX_FILE_DEPTH, type DagLimits } from '../limits/index.js'
import type { BlockSource } from '../store/blocks.js'

/** A file node being read: its children, the next one, and the sizes its parent and itself record. */
interface Frame {
  readonly cid: CID
  readonly links: readonly CID[]
  readonly sizes: readonly bigint[]
  next: number
  /** Bytes read under the child being read. */
  childBytes: number
}

/**
 * The bytes of the UnixFS file `cid`, in order: a raw block is its own content; a dag-pb file node
 * yields its inline data, then its children left to right. Each node is checked before its children
 * are read: its recorded sizes must add up to the size its parent records for it (so the root's size
 * bounds all the work, whatever the DAG spells), no child may be empty, and each child must hold
 * the bytes recorded for it. The walk keeps one node per level on its own stack (no recursion), at most
 * {@link MAX_FILE_DEPTH} levels.
 *
 * @throws {CairnError} `MISSING_BLOCK` / `CORRUPT_BLOCK` from the source; `CORRUPT_BLOCK` when a node is
 *   not a UnixFS file (a directory, another codec) or its recorded sizes do not match; `LIMIT_EXCEEDED`
 *   when the file declares more than `limits.maxFileBytes` or is deeper than {@link MAX_FILE_DEPTH}.
 */
export async function* exportFile(source: BlockSource, cid: CID, limits: DagLimits = {}): AsyncGenerator<Uint8Array> {
  const { maxFileBytes } = limitsOf(limits)
  if (cid.code === RAW) {
    yield await source.get(cid)
    return
  }
  const stack: Frame[] = []
  let root = true
  // the node to read next and the size its parent records for it (undefined for the root)
  let at: { cid: CID; expected: bigint | undefined } | undefined = { cid, expected: undefined }
  for (;;) {
    if (at !== undefined) {
      const { cid: node, expected } = at
      at = undefined
      if (node.code === RAW) {
        const bytes = await source.get(node)
        if (expected !== undefined && BigInt(bytes.length) !== expected) {
          const parent = stack[stack.length - 1]
          throw new CairnError(
            'CORRUPT_BLOCK',
            `${parent.cid}: child ${parent.next - 1} holds ${bytes.length} bytes, the node records ${expected}`,
            {
              subject: parent.cid.toString(),
            },
          )
        }
        if (stack.length > 0) stack[stack.length - 1].childBytes += bytes.length
        yield bytes
      } else {
        const { node: pb, data } = decodeFileNode(node, await source.get(node))
        const inline = data.data?.length ?? 0
        const declared = pb.Links.length > 0 ? data.blockSizes.reduce((a, b) => a + b, 0n) + BigInt(inline) : BigInt(inline)
        if (root) {
          root = false
          if (declared > BigInt(maxFileBytes)) {
            throw limitExceeded(
              `File ${node} declares ${declared} bytes, more than the limit of ${maxFileBytes}`,
              node.toString(),
              'raise the limit with --max-file-bytes if this file is what you meant to fetch',
            )
          }
        } else if (declared !== expected) {
          throw new CairnError('CORRUPT_BLOCK', `${node}: its sizes add up to ${declared} bytes, its parent records ${expected}`, {
            subject: node.toString(),
          })
        }
        if (inline > 0) {
          if (stack.length > 0) stack[stack.length - 1].childBytes += inline
          yield data.data as Uint8Array
        }
        if (pb.Links.length > 0) {
          if (stack.length >= MAX_FILE_DEPTH) {
            throw limitExceeded(`File ${cid} is more than ${MAX_FILE_DEPTH} levels deep (at ${node})`, cid.toString())
          }
          if (data.blockSizes.some((size) => size === 0n)) {
            throw new CairnError('CORRUPT_BLOCK', `${node}: a child records 0 bytes (no importer makes an empty chunk)`, {
              subject: node.toString(),
            })
          }
          stack.push({ cid: node, links: pb.Links.map((l) => l.Hash), sizes: data.blockSizes, next: 0, childBytes: 0 })
        }
      }
    }
    // go to the next child of the deepest unfinished node, closing finished ones
    for (;;) {
      const top = stack[stack.length - 1]
      if (top === undefined) return
      if (top.next > 0) {
        const i = top.next - 1
        if (BigInt(top.childBytes) !== top.sizes[i]) {
          throw new CairnError('CORRUPT_BLOCK', `${top.cid}: child ${i} holds ${top.childBytes} bytes, the node records ${top.sizes[i]}`, {
            subject: top.cid.toString(),
          })
        }
      }
      if (top.next < top.links.length) {
        at = { cid: top.links[top.next], expected: top.sizes[top.next] }
        top.next++
        top.childBytes = 0
        break
      }
      stack.pop()
      const parent = stack[stack.length - 1]
      // its inline bytes were counted when it was read, its children's as each one ended
      if (parent !== undefined) parent.childBytes += Number(top.sizes.reduce((a, b) => a + b, 0n))
    }
  }
}

/** Decodes a node of a file DAG. Throws `CORRUPT_BLOCK` when it is not a dag-pb UnixFS file node. */
function decodeFileNode(cid: CID, bytes: Uint8Array): { node: dagPb.PBNode; data: UnixFS } {
  if (cid.code !== DAG_PB) {
    throw new CairnError('CORRUPT_BLOCK', `${cid} is not a UnixFS file (codec 0x${cid.code.toString(16)}, expected raw or dag-pb)`, {
      subject: cid.toString(),
    })
  }
  let node: dagPb.PBNode
  let data: UnixFS
  try {
    node = dagPb.decode(bytes)
    data = UnixFS.unmarshal(node.Data ?? new Uint8Array(0))
  } catch (e) {
    throw new CairnError('CORRUPT_BLOCK', `${cid} is not a UnixFS node: ${(e as Error).message}`, { subject: cid.toString(), cause: e })
  }
  if (data.type !== 'file' && data.type !== 'raw') {
    throw new CairnError('CORRUPT_BLOCK', `${cid} is a UnixFS ${data.type}, expected a file`, { subject: cid.toString() })
  }
  if (node.Links.length !== data.blockSizes.length && node.Links.length > 0) {
    throw new CairnError('CORRUPT_BLOCK', `${cid}: ${node.Links.length} links but ${data.blockSizes.length} block sizes`, {
      subject: cid.toString(),
    })
  }
  return { node, data }
}

/** Writes the UnixFS file `cid` to `path`. Fails as {@link exportFile} does, or with `IO`. */
export async function exportToFile(source: BlockSource, cid: CID, path: string): Promise<number> {
  const out = createWriteStream(path)
  let size = 0
  try {
    for await (const piece of exportFile(source, cid)) {
      size += piece.length
      if (!out.write(piece)) await once(out, 'drain')
    }
    out.end()
    await once(out, 'finish')
  } catch (e) {
    out.destroy()
    if (e instanceof CairnError) throw e
    throw ioError('write', path, e)
  }
  return size
}
