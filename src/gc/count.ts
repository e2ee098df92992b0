/**
 * One pass over every pack's index log, oldest pack first, telling for each line whether it is the
 * block's counted copy (its first line in that order): the counted blocks are a {@link SeenSet}, so
 * memory does not grow with the store.
 */
import { SeenSet } from '../walk/seen-set.js'
import { readPackLog, type PackFile } from './packs.js'
import type { GcLimits } from './gc.js'

/** What a pass does with one pack's lines. */
export interface PackVisit {
  /** A line: the block's CIDv1 bytes (a view, valid during the call), its length, and whether this copy counts. */
  line(cid: Uint8Array, length: number, counted: boolean): void
  /** After the pack's last line. */
  end(): void
}

/** Calls `visit(pack)` for each pack in order and its visitor for each line; returns how many distinct blocks the logs name. Throws `IO`. */
export function countBlocks(packsDir: string, packs: readonly PackFile[], limits: GcLimits, visit: (pack: PackFile) => PackVisit): number {
  const counted = new SeenSet(limits.seen)
  try {
    for (const pack of packs) {
      const v = visit(pack)
      readPackLog(packsDir, pack, (cid, _offset, length) => v.line(cid, length, counted.add(cid)), limits.logBufferBytes)
      v.end()
    }
    return counted.size
  } finally {
    counted.close()
  }
}
