/**
 * Reading a pack's index log (`<id>.idx`, lines `<cid> <offset> <length>`) a buffer at a time: a log is
 * never read into one string or one buffer whole (a log of 7 million blocks is past V8's longest string).
 */
import { closeSync, openSync, readSync } from 'node:fs'
import { MAX_BLOCK_BYTES } from '../../car/reader.js'
import { cidTextBytes } from '../../cid.js'

/** Bytes read from a log at a time, unless a caller (a test) forces another size. */
export const LOG_BUFFER_BYTES = 1 << 20

/** No whole line is longer: a longer run of bytes without a newline is damage, skipped like a bad line. */
const MAX_LINE = 4096

/** Called for each whole, well-formed line: the CID's bytes (a view, valid during the call), its place, and where the line ends. */
export type LogEntry = (cid: Uint8Array, offset: number, length: number, lineEnd: number) => void

/**
 * Reads the whole lines of `file` between byte `from` (the start of a line) and `to` (or its end),
 * calling `onEntry` for each that is `<cid> <offset> <length>` (others are skipped: a damaged line's
 * block is then missing, never misplaced). Returns where the last whole line ends: a torn last line
 * (a writer killed mid-append) is left for a later read. Throws the file system's error.
 */
export function readLog(file: string, from: number, to: number, onEntry: LogEntry, bufferBytes = LOG_BUFFER_BYTES): number {
  const fd = openSync(file, 'r')
  try {
    return readLogFd(fd, from, to, onEntry, bufferBytes)
  } finally {
    closeSync(fd)
  }
}

function readLogFd(fd: number, from: number, to: number, onEntry: LogEntry, bufferBytes: number): number {
  let buffer = Buffer.allocUnsafe(Math.max(1, bufferBytes))
  const scratch = new Uint8Array(128)
  /** Start of the bytes in `buffer` (a line start), and how many it holds. */
  let at = from
  let held = 0
  let end = from
  let skipping = false
  for (;;) {
    const want = Math.min(buffer.length - held, to - at - held)
    const n = want > 0 ? readSync(fd, buffer, held, want, at + held) : 0
    held += n
    // latin1: one character per byte, so positions in the text are positions in the file
    const text = buffer.toString('latin1', 0, held)
    let line = 0
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', line)) {
      if (!skipping) parseLine(text, line, nl, at + nl + 1, onEntry, scratch)
      skipping = false
      line = nl + 1
      end = at + line
    }
    if (n === 0) return end
    if (line === 0 && held === buffer.length) {
      // no newline in a full buffer: a line longer than any real one; grow up to a bound, then skip it
      if (buffer.length < MAX_LINE) {
        const grown = Buffer.allocUnsafe(Math.min(MAX_LINE, 2 * buffer.length))
        buffer.copy(grown, 0, 0, held)
        buffer = grown
        continue
      }
      skipping = true
      at += held
      held = 0
      continue
    }
    buffer.copy(buffer, 0, line, held)
    held -= line
    at += line
  }
}

function parseLine(text: string, at: number, nl: number, lineEnd: number, onEntry: LogEntry, scratch: Uint8Array): void {
  const s1 = text.indexOf(' ', at)
  const s2 = s1 < 0 ? -1 : text.indexOf(' ', s1 + 1)
  if (!(s1 > at && s2 > s1 + 1 && s2 + 1 < nl)) return
  const cid = cidTextBytes(text, at, s1, scratch)
  if (cid === undefined) return
  // a damaged number must not reach a read (NaN, or a length that would allocate gigabytes)
  const offset = Number(text.slice(s1 + 1, s2))
  const length = Number(text.slice(s2 + 1, nl))
  if (Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length >= 0 && length <= MAX_BLOCK_BYTES)
    onEntry(cid, offset, length, lineEnd)
}
