/**
 * What the refs reach: the blocks `gc` keeps and `du` counts. A version's release is the version block
 * and everything it links to except its parent (DESIGN.md §9); raw blocks have no links and are
 * marked without being read. A block the store lacks is counted as missing and the walk goes on: its
 * children, if present, are unreachable anyway.
 */
import { cidText, RAW, type CID } from '../cid.js'
import { isCairnError } from '../errors.js'
import { decodeManifest, type VersionManifest } from '../manifest.js'
import { linksInRelease } from '../release/links.js'
import type { BlockSource } from '../store/blocks.js'
import type { BlockPlace } from './packs.js'

/** A set of marked blocks and their bytes. */
export class Reach {
  readonly keys = new Set<string>()
  bytes = 0
  /** Linked blocks the store does not have. */
  missing = 0
  /** Versions whose release was walked, by key. */
  private readonly releases = new Set<string>()
  /** The least depth below a root at which each version was reached by {@link history}. */
  private readonly depths = new Map<string, number>()
  /** Versions whose block (and card) only was kept, by key. */
  private readonly versionsOnly = new Set<string>()

  constructor(
    private readonly store: BlockSource,
    private readonly places: ReadonlyMap<string, BlockPlace>,
  ) {}

  /**
   * Marks version `cid`'s release, and returns its manifest (undefined when the store lacks the
   * version block). Throws `CORRUPT_BLOCK` / `INVALID_MANIFEST` for a damaged block.
   */
  async release(cid: CID): Promise<VersionManifest | undefined> {
    const key = cidText(cid)
    const bytes = await this.read(cid, key)
    if (!bytes) return undefined
    const manifest = decodeManifest('cairn.version', cid, bytes)
    if (this.releases.has(key)) return manifest
    this.releases.add(key)
    for (const link of linksInRelease(cid, bytes)) if (!manifest.parent?.equals(link)) await this.dag(link)
    return manifest
  }

  /** Marks version `cid`'s block and its card (so `log` and `show` still work), not its data. */
  async versionOnly(cid: CID): Promise<VersionManifest | undefined> {
    const key = cidText(cid)
    const bytes = await this.read(cid, key)
    if (!bytes) return undefined
    const manifest = decodeManifest('cairn.version', cid, bytes)
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
      const key = cidText(at)
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
      const key = cidText(cid)
      if (this.keys.has(key)) continue
      if (cid.code === RAW) {
        this.mark(key)
        continue
      }
      const bytes = await this.read(cid, key)
      if (bytes) for (const link of linksInRelease(cid, bytes)) stack.push(link)
    }
  }

  /** True when the block `key` is marked. */
  has(key: string): boolean {
    return this.keys.has(key)
  }

  private mark(key: string): boolean {
    if (this.keys.has(key)) return true
    const at = this.places.get(key)
    if (!at) {
      this.missing++
      return false
    }
    this.keys.add(key)
    this.bytes += at.length
    return true
  }

  /** Marks the block and reads it (verified), or undefined when the store lacks it. */
  private async read(cid: CID, key: string): Promise<Uint8Array | undefined> {
    const present = this.keys.has(key) || this.mark(key)
    if (!present) return undefined
    try {
      return await this.store.get(cid)
    } catch (e) {
      if (isCairnError(e, 'MISSING_BLOCK')) return undefined
      throw e
    }
  }
}
