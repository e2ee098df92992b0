/**
 * Which blocks prove that a file belongs to a release (docs/gateway.md, "Inclusion proofs"): the
 * version block; the blocks IPLD pathing reads from the version through `tree` to the file
 * (`/ipfs/<version>/tree/<path>?format=car&dag-scope=block`, HAMT shards included) and the file's
 * root when it is a dag-pb node (a single raw block is named by its CID in its directory, and its
 * bytes are the file, not the proof); the shard index nodes from the index root to the leaf holding
 * the path's entry; and the entry's schema block. Both the prover and the checker use this walk.
 */
import { findEntry } from '../cat.js'
import { DAG_PB, type CID } from '../cid.js'
import { CairnError } from '../errors.js'
import { fileSize } from '../gateway/file-range.js'
import { resolveIpldPath } from '../gateway/paths.js'
import { checkShardPath, type ShardEntry } from '../manifest.js'
import type { BlockSource } from '../store/blocks.js'
import { readVersion } from '../version.js'

/** What a proof shows. */
export interface ProvenFile {
  readonly version: CID
  readonly path: string
  /** The file's root CID, the same through the tree and through the index. */
  readonly cid: CID
  readonly entry: ShardEntry
  /** Every block of the proof, in CAR order (the version first), each once. */
  readonly blocks: readonly CID[]
}

/**
 * Walks the proof of `path` in `version` over `source`: every block it reads is checked against its
 * CID by the source. Throws `BAD_PATH` for a path that is not normalised, `USAGE` when the release has
 * no such file (in the tree or the index), `MISSING_BLOCK` / `CORRUPT_BLOCK` from the source,
 * `INVALID_MANIFEST` for a version or index node that is not one, and `VERIFY_FAILED` when the tree
 * and the index name different CIDs for the path.
 */
export async function walkProof(source: BlockSource, version: CID, path: string): Promise<ProvenFile> {
  checkShardPath(path, 'path')
  const v = await readVersion(source, version)
  const treePath = await resolveIpldPath(source, version, ['tree', ...path.split('/')])
  if (treePath.inside.length > 0) throw new CairnError('USAGE', `${version}/tree/${path} is not a file`, { subject: path })
  const blocks: CID[] = [...treePath.traversed]
  let rootSize: number | undefined
  if (treePath.cid.code === DAG_PB) {
    rootSize = await fileSize(source, treePath.cid)
    blocks.push(treePath.cid)
  }
  const entry = await findEntry(source, v.index, path, (cid) => blocks.push(cid))
  if (entry === undefined) {
    throw new CairnError('USAGE', `Version ${version} has no shard ${JSON.stringify(path)} in its index`, { subject: path })
  }
  if (!entry.cid.equals(treePath.cid)) {
    throw new CairnError('VERIFY_FAILED', `${path}: the tree names ${treePath.cid}, the index ${entry.cid}`, { subject: path })
  }
  if (rootSize !== undefined && rootSize !== entry.size) {
    throw new CairnError('VERIFY_FAILED', `${path}: the file's root records ${rootSize} bytes, the index ${entry.size}`, { subject: path })
  }
  if (entry.schema !== undefined) {
    await source.get(entry.schema)
    blocks.push(entry.schema)
  }
  const unique: CID[] = []
  for (const b of blocks) if (!unique.some((u) => u.equals(b))) unique.push(b)
  return { version, path, cid: entry.cid, entry, blocks: unique }
}
