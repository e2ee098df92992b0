/**
 * The lineage graph behind a release: every version reachable from it through `parent` (its own
 * history) and the card's `derivedFrom` (the releases it was made from), read from any block source.
 * A version no source holds is a node marked unreachable, never an error: lineage reports what it can
 * reach and says what it could not.
 */
import { tryParseCid, type CID } from '../cid.js'
import { isCairnError } from '../errors.js'
import type { Card, DerivedFrom } from '../manifest.js'
import type { BlockSource } from '../store/blocks.js'
import { readCardBlock, readVersion } from '../version.js'

/** At most this many versions are read in one walk (the graph is then marked truncated). */
export const MAX_LINEAGE_NODES = 10_000

/** One release in the graph. */
export interface LineageNode {
  readonly cid: CID
  /** Steps from the root (0 for the root). */
  readonly depth: number
  /** False when no source held the version (or it is not a cairn version): then only `cid` and `reason` are known. */
  readonly reachable: boolean
  /** Why the node is unreachable: the source's message. */
  readonly reason?: string
  readonly name?: string
  readonly created?: string
  readonly message?: string
  /** The card's provenance, as declared. */
  readonly provenance?: Card['provenance']
}

/** A link between two releases: `from` was built on (`parent`) or made from (`derivedFrom`) `to`. */
export interface LineageEdge {
  readonly from: CID
  readonly to: CID
  readonly kind: 'parent' | 'derivedFrom'
  /** For `derivedFrom`: the declared role. */
  readonly role?: string
  /** For `derivedFrom`: the selection of the source's paths, when declared. */
  readonly select?: readonly string[]
}

/** The graph behind a release, root first, then breadth-first. */
export interface LineageGraph {
  readonly root: CID
  readonly nodes: readonly LineageNode[]
  readonly edges: readonly LineageEdge[]
  /** True when `depth` or {@link MAX_LINEAGE_NODES} stopped the walk before every link was followed. */
  readonly truncated: boolean
}

/** Options of {@link walkLineage}. */
export interface WalkOptions {
  /** Follow at most this many links from the root (default: no limit but {@link MAX_LINEAGE_NODES}). */
  readonly depth?: number
  /** Follow `parent` links (default true). */
  readonly parents?: boolean
  /** Called for each node as it is read. */
  readonly onNode?: (node: LineageNode) => void
}

/**
 * Walks the lineage of `root` breadth-first through `source`, each version and card read once (every
 * block checked against its CID by the source). A version the source does not hold, or a block that
 * is not a cairn version, becomes an unreachable node; any other failure (a corrupt block) is thrown.
 */
export async function walkLineage(source: BlockSource, root: CID, options: WalkOptions = {}): Promise<LineageGraph> {
  const maxDepth = options.depth ?? Infinity
  const nodes: LineageNode[] = []
  const edges: LineageEdge[] = []
  const seen = new Set<string>([root.toString()])
  let queue: CID[] = [root]
  let truncated = false
  for (let depth = 0; queue.length > 0; depth++) {
    const next: CID[] = []
    for (const cid of queue) {
      if (nodes.length >= MAX_LINEAGE_NODES) {
        truncated = true
        break
      }
      const read = await readNode(source, cid, depth)
      nodes.push(read.node)
      options.onNode?.(read.node)
      for (const edge of read.edges) {
        edges.push(edge)
        if (depth >= maxDepth) {
          truncated = true
          continue
        }
        const key = edge.to.toString()
        if (seen.has(key)) continue
        seen.add(key)
        next.push(edge.to)
      }
    }
    queue = next
  }
  return { root, nodes, edges, truncated }

  async function readNode(src: BlockSource, cid: CID, depth: number): Promise<{ node: LineageNode; edges: LineageEdge[] }> {
    let manifest
    let card: Card
    try {
      manifest = await readVersion(src, cid)
      card = await readCardBlock(src, manifest.card)
    } catch (e) {
      if (isUnreachable(e)) return { node: { cid, depth, reachable: false, reason: (e as Error).message }, edges: [] }
      throw e
    }
    const out: LineageEdge[] = []
    if (manifest.parent && options.parents !== false) out.push({ from: cid, to: manifest.parent, kind: 'parent' })
    for (const d of card.derivedFrom ?? []) {
      const to = derivedCid(d)
      // a card with a link that does not parse was refused at build; one made otherwise is shown without it
      if (to !== undefined) out.push({ from: cid, to, kind: 'derivedFrom', role: d.role, select: d.select })
    }
    const node: LineageNode = {
      cid,
      depth,
      reachable: true,
      name: manifest.name,
      created: manifest.created,
      message: manifest.message,
      provenance: card.provenance,
    }
    return { node, edges: out }
  }
}

/** The CID a `derivedFrom` entry links to, or undefined when its link does not parse. */
export function derivedCid(entry: DerivedFrom): CID | undefined {
  return tryParseCid(entry.release['/'])
}

/** Errors that mean "no source holds this version" (or it is not one), as opposed to a broken source. */
export function isUnreachable(e: unknown): boolean {
  return (
    isCairnError(e, 'MISSING_BLOCK') ||
    isCairnError(e, 'FETCH_FAILED') ||
    isCairnError(e, 'INVALID_MANIFEST') ||
    isCairnError(e, 'INVALID_CARD')
  )
}
