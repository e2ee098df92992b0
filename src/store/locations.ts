/**
 * Where each block of the store lies on disk, in memory: one map entry from the block's key (its CID
 * text) to a slot, and the slot's pack, offset and length in typed columns. A store of 100,000 blocks
 * thus holds 100,000 keys and a few arrays, not 100,000 objects that every garbage collection traces
 * and that keep the heap (and the process) large long after they were read.
 */
import { withRoom } from '../util/grow.js'

/** A block's place: the pack's name, the byte offset in it, and the block's length. */
export interface Location {
  readonly pack: string
  readonly offset: number
  readonly length: number
}

export class BlockLocations {
  private readonly slots = new Map<string, number>()
  private readonly packNames: string[] = []
  private readonly packIds = new Map<string, number>()
  private packs = new Uint32Array(256)
  private offsets = new Float64Array(256)
  private lengths = new Float64Array(256)

  get size(): number {
    return this.slots.size
  }

  has(key: string): boolean {
    return this.slots.has(key)
  }

  get(key: string): Location | undefined {
    const slot = this.slots.get(key)
    if (slot === undefined) return undefined
    return { pack: this.packNames[this.packs[slot]], offset: this.offsets[slot], length: this.lengths[slot] }
  }

  /** Records (or moves) the block `key`. */
  set(key: string, pack: string, offset: number, length: number): void {
    let slot = this.slots.get(key)
    if (slot === undefined) {
      slot = this.slots.size
      this.packs = withRoom(this.packs, slot + 1)
      this.offsets = withRoom(this.offsets, slot + 1)
      this.lengths = withRoom(this.lengths, slot + 1)
      this.slots.set(key, slot)
    }
    this.packs[slot] = this.packId(pack)
    this.offsets[slot] = offset
    this.lengths[slot] = length
  }

  keys(): IterableIterator<string> {
    return this.slots.keys()
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
