/** An independent oracle for release trees: ipfs-unixfs-importer under IPIP-499 `unixfs-v1-2025`. */
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import type { CID } from 'multiformats/cid'
import { HAMT_THRESHOLD_BYTES } from '../../src/unixfs/directory.js'

/** The root CID ipfs-unixfs-importer gives `files` wrapped in a directory, folders sharded past `threshold` bytes. */
export async function importerTree(files: Record<string, string | Uint8Array>, threshold = HAMT_THRESHOLD_BYTES): Promise<string> {
  const source = Object.keys(files)
    .sort()
    .map((path) => ({ path, content: typeof files[path] === 'string' ? Buffer.from(files[path]) : files[path] }))
  const options = {
    cidVersion: 1 as const,
    rawLeaves: true,
    chunker: fixedSize({ chunkSize: 1024 * 1024 }),
    layout: balanced({ maxChildrenPerNode: 1024 }),
    reduceSingleLeafToSelf: true,
    shardSplitStrategy: 'block-bytes' as const,
    shardSplitThresholdBytes: threshold,
    wrapWithDirectory: true,
  }
  let root: CID | undefined
  for await (const entry of importer(source, { put: (cid: CID) => cid } as never, options)) if (entry.path === '') root = entry.cid as never
  if (!root) throw new Error('the importer gave no root')
  return root.toString()
}
