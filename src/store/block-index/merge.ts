/**
 * Merging sorted runs into one (a k-way merge of their cursors, a buffer per run): the records of packs
 * no longer live are dropped, and so are exact repeats (the same block at the same place, from two runs
 * that covered the same lines).
 */
import type { RunCursor, SortedRun } from './run.js'
import { RunWriter } from './write.js'

/** Records each input reads at a time. */
const MERGE_BUFFER_RECORDS = 4096

/** Merges `runs` into a new run in `dir` and returns its path; the inputs are left as they are. Throws the file system's error. */
export function mergeRuns(dir: string, runs: readonly SortedRun[], bufferRecords = MERGE_BUFFER_RECORDS): string {
  const packs = new Set<string>()
  const ranges: { pack: string; from: number; to: number }[] = []
  let width = 0
  let maxCount = 0
  for (const run of runs) {
    width = Math.max(width, run.header.width)
    maxCount += run.count
    for (const r of run.header.ranges) {
      if (!run.live[r.pack]) continue
      const pack = run.header.packs[r.pack]
      packs.add(pack)
      ranges.push({ pack, from: r.from, to: r.to })
    }
  }
  const w = new RunWriter(dir, width, maxCount, [...packs], coalesce(ranges))
  try {
    const cursors = runs.map((r) => r.cursor(bufferRecords)).filter((c) => c.next())
    // the last record written, to drop an exact repeat of it
    const lastKey = Buffer.alloc(9 + width)
    let lastLength = -1
    let lastPack = ''
    let lastOffset = -1
    while (cursors.length > 0) {
      let min = 0
      for (let i = 1; i < cursors.length; i++) if (compareKeys(cursors[i], cursors[min]) < 0) min = i
      const c = cursors[min]
      const place = c.run.value(c.bytes, c.at)
      if (place) {
        const len = c.bytes[c.at + 8]
        const key = c.bytes.subarray(c.at, c.at + 9 + len)
        const repeat =
          lastOffset === place.offset &&
          lastPack === place.pack &&
          lastLength === key.length &&
          lastKey.compare(key, 0, key.length, 0, key.length) === 0
        if (!repeat) {
          w.add(key.subarray(9), place.pack, place.offset, place.length)
          key.copy(lastKey)
          lastLength = key.length
          lastPack = place.pack
          lastOffset = place.offset
        }
      }
      if (!c.next()) cursors.splice(min, 1)
    }
  } catch (e) {
    w.abort()
    throw e
  }
  return w.finish()
}

/** Key order across runs of different widths: fingerprint and length first, so padding never decides. */
function compareKeys(a: RunCursor, b: RunCursor): number {
  const la = 9 + a.bytes[a.at + 8]
  const lb = 9 + b.bytes[b.at + 8]
  return a.bytes.compare(b.bytes, b.at, b.at + lb, a.at, a.at + la)
}

/** The ranges with overlapping or touching ones of a pack joined. */
export function coalesce(ranges: readonly { pack: string; from: number; to: number }[]): { pack: string; from: number; to: number }[] {
  const sorted = [...ranges].sort((a, b) => (a.pack < b.pack ? -1 : a.pack > b.pack ? 1 : a.from - b.from))
  const out: { pack: string; from: number; to: number }[] = []
  for (const r of sorted) {
    const prev = out[out.length - 1]
    if (prev && prev.pack === r.pack && r.from <= prev.to) prev.to = Math.max(prev.to, r.to)
    else out.push({ ...r })
  }
  return out
}
