/**
 * Where blocks lie on disk, in memory (the lines of the index logs no sorted run holds yet, see
 * block-index/), with no object or string per block: the blocks' CIDs (CIDv1 bytes) end to end in one
 * byte column, an open-addressing hash table of slots over them, and each slot's pack, offset and length
 * in typed columns. A store of 100,000 blocks thus holds
 * a few arrays (about 8 MB), not 100,000 keys in a map that every garbage collection traces, that a
 * short process promotes to its old generation as it reads them, and that keep the heap large.
 */
import { withRoom } from '../util/grow.js'

/** A block's place: the pack's name, the byte offset in it, and the block's length. */
export interface Location {
  readonly pack: string
  readonly offset: number
  readonly length: number
}

export class BlockLocations {
  /** Every slot's CID bytes, end to end: slot `s` is `cids[starts[s]]`…`cids[starts[s + 1]]`. */
  private cids = new Uint8Array(36 * 256)
  private starts = new Float64Array(257)
  /** Slot + 1 at each place of the table, 0 for an empty place; its size is a power of two, at most half full. */
  private table = new Int32Array(512)
  private count = 0
  private readonly packNames: string[] = []
  private readonly packIds = new Map<string, number>()
  private packs = new Uint32Array(256)
  private offsets = new Float64Array(256)
  private lengths = new Float64Array(256)

  get size(): number {
    return this.count
  }

  /** Whether the block whose CIDv1 bytes are `cid` is known. */
  has(cid: Uint8Array): boolean {
    return this.find(cid) >= 0
  }

  get(cid: Uint8Array): Location | undefined {
    const slot = this.find(cid)
    if (slot < 0) return undefined
    return { pack: this.packNames[this.packs[slot]], offset: this.offsets[slot], length: this.lengths[slot] }
  }

  /** Records (or moves) the block whose CIDv1 bytes are `cid` (copied). */
  set(cid: Uint8Array, pack: string, offset: number, length: number): void {
    let slot = this.find(cid)
    if (slot < 0) {
      slot = this.count++
      // the new slot is placed below, once its bytes are in
      if (2 * this.count > this.table.length) this.rehash(2 * this.table.length, slot)
      const start = this.starts[slot]
      this.cids = withRoom(this.cids, start + cid.length)
      this.cids.set(cid, start)
      this.starts = withRoom(this.starts, slot + 2)
      this.starts[slot + 1] = start + cid.length
      this.place(slot)
      this.packs = withRoom(this.packs, slot + 1)
      this.offsets = withRoom(this.offsets, slot + 1)
      this.lengths = withRoom(this.lengths, slot + 1)
    }
    this.packs[slot] = this.packId(pack)
    this.offsets[slot] = offset
    this.lengths[slot] = length
  }

  /** Every block's CIDv1 bytes (views of the column: copy them to keep them). */
  *keys(): Generator<Uint8Array> {
    for (let slot = 0; slot < this.count; slot++) yield this.cid(slot)
  }

  /** The slot of `cid`, or -1. */
  private find(cid: Uint8Array): number {
    const mask = this.table.length - 1
    for (let at = hash(cid) & mask; ; at = (at + 1) & mask) {
      const entry = this.table[at]
      if (entry === 0) return -1
      if (this.holds(entry - 1, cid)) return entry - 1
    }
  }

  private holds(slot: number, cid: Uint8Array): boolean {
    const start = this.starts[slot]
    if (this.starts[slot + 1] - start !== cid.length) return false
    for (let i = cid.length - 1; i >= 0; i--) if (this.cids[start + i] !== cid[i]) return false
    return true
  }

  private place(slot: number): void {
    const mask = this.table.length - 1
    let at = hash(this.cid(slot)) & mask
    while (this.table[at] !== 0) at = (at + 1) & mask
    this.table[at] = slot + 1
  }

  /** A table of `size` places holding the first `slots` slots. */
  private rehash(size: number, slots = this.count): void {
    this.table = new Int32Array(size)
    for (let slot = 0; slot < slots; slot++) this.place(slot)
  }

  private cid(slot: number): Uint8Array {
    return this.cids.subarray(this.starts[slot], this.starts[slot + 1])
  }

  private packId(pack: string): number {
    let id = this.packIds.get(pack)
    if (id === undefined) {
      id = this.packNames.push(pack) - 1
      this.packIds.set(pack, id)
    }
    return id
  }
}

/** FNV-1a over a CID's last 8 bytes (the end of its digest: uniform for a cryptographic hash). */
function hash(cid: Uint8Array): number {
  let h = 0x811c9dc5
  for (let i = Math.max(0, cid.length - 8); i < cid.length; i++) h = Math.imul(h ^ cid[i], 0x01000193)
  return h >>> 0
}
