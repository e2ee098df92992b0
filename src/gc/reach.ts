/**
 * What the refs reach: the blocks `gc` keeps and `du` counts. A version's release is the version block
 * and everything it links to except its parent (DESIGN.md §9); raw blocks have no links and are
 * marked without being read. A block the store lacks is counted as missing and the walk goes on: its
 * children, if present, are unreachable anyway. The marked blocks are a {@link SeenSet} (bounded memory,
 * its runs on disk), keyed by CIDv1 bytes as the store's index is (a CIDv0 and its CIDv1 are one block).
 */
import { RAW, type CID } from '../cid.js'
import { isCairnError } from '../errors.js'
import { decodeManifest, type VersionManifest } from '../manifest.js'
import { linksInRelease } from '../release/links.js'
import type { BlockSource } from '../store/blocks.js'
import { SeenSet, type SeenSetOptions } from '../walk/seen-set.js'

/** Which blocks the store holds (the store's {@link BlockStore.snapshot}). */
export interface Presence {
  has(cid: CID | Uint8Array): boolean
}

/** A set of marked blocks; their bytes are summed by whoever reads the packs' logs. */
export class Reach {
  private readonly keys: SeenSet
  /** Bytes of the marked blocks, added by the caller as it meets each block's counted copy. */
  bytes = 0
  /** Linked blocks the store does not have. */
  missing = 0
  /** Versions whose release was walked (a few per version: held in memory). */
  private readonly releases = new Set<string>()
  /** The least depth below a root at which each version was reached by {@link history}. */
  private readonly depths = new Map<string, number>()
  /** Versions whose block (and card) only was kept. */
  private readonly versionsOnly = new Set<string>()

  constructor(
    private readonly store: BlockSource,
    private readonly present: Presence,
    limits?: SeenSetOptions,
  ) {
    this.keys = new SeenSet(limits)
  }

  /** How many blocks are marked. */
  get size(): number {
    return this.keys.size
  }

  /**
   * Marks version `cid`'s release, and returns its manifest (undefined when the store lacks the
   * version block). Throws `CORRUPT_BLOCK` / `INVALID_MANIFEST` for a damaged block.
   */
  async release(cid: CID): Promise<VersionManifest | undefined> {
    const bytes = await this.read(cid)
    if (!bytes) return undefined
    const manifest = decodeManifest('cairn.version', cid, bytes)
    const key = v1(cid).toString()
    if (this.releases.has(key)) return manifest
    this.releases.add(key)
    for (const link of linksInRelease(cid, bytes)) if (!manifest.parent?.equals(link)) await this.dag(link)
    return manifest
  }

  /** Marks version `cid`'s block and its card (so `log` and `show` still work), not its data. */
  async versionOnly(cid: CID): Promise<VersionManifest | undefined> {
    const bytes = await this.read(cid)
    if (!bytes) return undefined
    const manifest = decodeManifest('cairn.version', cid, bytes)
    const key = v1(cid).toString()
    if (!this.versionsOnly.has(key)) {
      this.versionsOnly.add(key)
      await this.dag(manifest.card)
    }
    return manifest
  }

  /**
   * Marks the version `head`, its first `keep` ancestors' releases, and the blocks (and cards) of the
   * ancestors before them.
   */
  async history(head: CID, keep: number): Promise<void> {
    let at: CID | null = head
    for (let depth = 0; at; depth++) {
      // reached before at this depth or less: the rest of the chain was kept at least as fully then
      // (without this, every move of the HEAD log would walk the whole history again)
      const key = v1(at).toString()
      const before = this.depths.get(key)
      if (before !== undefined && before <= depth) return
      this.depths.set(key, depth)
      const v: VersionManifest | undefined = depth <= keep ? await this.release(at) : await this.versionOnly(at)
      at = v?.parent ?? null
    }
  }

  /** Marks every block under `root`. */
  async dag(root: CID): Promise<void> {
    const stack: CID[] = [root]
    while (stack.length > 0) {
      const cid = stack.pop()!
      if (cid.multihash.code === 0x00) continue // identity: the bytes are in the CID
      const bytes = v1(cid).bytes
      if (this.keys.has(bytes)) continue
      if (!this.markAbsent(bytes) || cid.code === RAW) continue
      const block = await this.get(cid)
      if (block) for (const link of linksInRelease(cid, block)) stack.push(link)
    }
  }

  /** True when the block (its CID, or its CIDv1 bytes) is marked. */
  has(cid: CID | Uint8Array): boolean {
    return this.keys.has(cid instanceof Uint8Array ? cid : v1(cid).bytes)
  }

  /** Frees the set's run files. */
  close(): void {
    this.keys.close()
  }

  /** Marks a block not marked yet when the store holds it; false (counted missing) when it does not. */
  private markAbsent(bytes: Uint8Array): boolean {
    if (!this.present.has(bytes)) {
      this.missing++
      return false
    }
    this.keys.addAbsent(bytes)
    return true
  }

  /** Marks the block and reads it (verified), or undefined when the store lacks it. */
  private async read(cid: CID): Promise<Uint8Array | undefined> {
    const bytes = v1(cid).bytes
    if (!this.keys.has(bytes) && !this.markAbsent(bytes)) return undefined
    return this.get(cid)
  }

  /** Reads a block (verified), or undefined when the store lacks it after all. */
  private async get(cid: CID): Promise<Uint8Array | undefined> {
    try {
      return await this.store.get(cid)
    } catch (e) {
      if (isCairnError(e, 'MISSING_BLOCK')) return undefined
      throw e
    }
  }
}

function v1(cid: CID): CID {
  return cid.version === 0 ? cid.toV1() : cid
}
