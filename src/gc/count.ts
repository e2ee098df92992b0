/**
 * One pass over every pack's index log, oldest pack first, telling for each line whether it is the
 * block's counted copy (its first line in that order): the counted blocks are a {@link SeenSet}, so
 * memory does not grow with the store.
 */
import { SeenSet } from '../walk/seen-set.js'
import { readPackLog, type PackFile } from './packs.js'
import type { GcLimits } from './gc.js'

/**
 * Bytes of a log read at a time. Each buffer is decoded into one string: at 64 KiB it is a young
 * object, collected at once; a 1 MiB string is a large object, and hundreds of them piled up as garbage
 * between full collections in a pass over 10⁷ lines (peak RSS 315 MiB in the bench's mem-10m gc).
 */
const LOG_BUFFER = 64 * 1024

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
      readPackLog(packsDir, pack, (cid, _offset, length) => v.line(cid, length, counted.add(cid)), limits.logBufferBytes ?? LOG_BUFFER)
      v.end()
    }
    return counted.size
  } finally {
    counted.close()
  }
}
