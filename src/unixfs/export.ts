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
import type { BlockSource } from '../store/blocks.js'

/**
 * The bytes of the UnixFS file `cid`, in order: a raw block is its own content; a dag-pb file node
 * yields its inline data, then its children left to right. Checks that every child's length is the
 * one its parent records.
 *
 * @throws {CairnError} `MISSING_BLOCK` / `CORRUPT_BLOCK` from the source; `CORRUPT_BLOCK` when a node is
 *   not a UnixFS file (a directory, another codec) or its recorded sizes do not match its children.
 */
export async function* exportFile(source: BlockSource, cid: CID): AsyncGenerator<Uint8Array> {
  if (cid.code === RAW) {
    yield await source.get(cid)
    return
  }
  if (cid.code !== DAG_PB) {
    throw new CairnError('CORRUPT_BLOCK', `${cid} is not a UnixFS file (codec 0x${cid.code.toString(16)}, expected raw or dag-pb)`, {
      subject: cid.toString(),
    })
  }
  const bytes = await source.get(cid)
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
  if (data.data && data.data.length > 0) yield data.data
  if (node.Links.length !== data.blockSizes.length && node.Links.length > 0) {
    throw new CairnError('CORRUPT_BLOCK', `${cid}: ${node.Links.length} links but ${data.blockSizes.length} block sizes`, {
      subject: cid.toString(),
    })
  }
  for (let i = 0; i < node.Links.length; i++) {
    let n = 0
    for await (const piece of exportFile(source, node.Links[i].Hash)) {
      n += piece.length
      yield piece
    }
    if (BigInt(n) !== data.blockSizes[i]) {
      throw new CairnError('CORRUPT_BLOCK', `${cid}: child ${i} holds ${n} bytes, the node records ${data.blockSizes[i]}`, {
        subject: cid.toString(),
      })
    }
  }
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
