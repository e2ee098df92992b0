/**
 * Checks, as blocks stream by in file order, that a CAR is exactly one DAG in depth-first pre-order
 * without duplicates (what `pack` writes, `ipfs dag export` too): then the DAG is complete without
 * keeping every block's links, only the walk's stack and a bounded {@link SeenSet}. Any other layout
 * (another order, extra blocks, a CIDv0 link to a CIDv1 section, an inline identity link) is not an
 * error here: {@link DfsCheck.push} returns false and the caller checks the CAR the general way.
 */
import { SeenSet, type SeenSetOptions } from './seen-set.js'

/** Keys are a CID's bytes as a latin1 string (as src/car/verify.ts makes them). */
export class DfsCheck {
  private readonly stack: string[]
  private readonly seen: SeenSet
  private blocks = 0

  constructor(root: string, limits?: SeenSetOptions) {
    this.stack = [root]
    this.seen = new SeenSet(limits)
  }

  /**
   * The next block of the file, its hash already checked, with the links a walk follows (a version's
   * parent left out). False when it is not the block the walk expects next.
   */
  push(key: string, links: readonly string[]): boolean {
    this.skipSeen()
    if (this.stack.length === 0 || this.stack[this.stack.length - 1] !== key) return false
    this.stack.pop()
    this.seen.add(Buffer.from(key, 'latin1'))
    this.blocks++
    for (let i = links.length - 1; i >= 0; i--) this.stack.push(links[i])
    return true
  }

  /** True when the walk is over: every block it reached was in the file, in its order. */
  complete(): boolean {
    this.skipSeen()
    return this.stack.length === 0 && this.blocks > 0
  }

  /** Whether the walk met `key` (to tell a parent the CAR holds too). */
  has(key: string): boolean {
    return this.seen.has(Buffer.from(key, 'latin1'))
  }

  close(): void {
    this.seen.close()
  }

  private skipSeen(): void {
    while (this.stack.length > 0 && this.seen.has(Buffer.from(this.stack[this.stack.length - 1], 'latin1'))) this.stack.pop()
  }
}
