/**
 * Invalid rows found by a build: every one is counted, the first `max` are kept with their file and
 * line, and the build fails once with all of them (instead of one bad row per round).
 */
import { CairnError } from '../errors.js'

/** Rows reported by default before the rest are only counted (`build --max-errors`). */
export const DEFAULT_MAX_ERRORS = 20

/** One invalid row. */
export interface RowProblem {
  /** `<shard path>:<line>` (CSV/JSONL: the physical line; Parquet/Arrow: `row <n>`, 1-based). */
  readonly at: string
  readonly message: string
}

/** The invalid rows of one build. */
export class RowProblems {
  private readonly kept: RowProblem[] = []
  private total = 0
  private readonly files = new Set<string>()

  constructor(private readonly max: number = DEFAULT_MAX_ERRORS) {}

  /** Counts an invalid row of shard `path`; keeps it while fewer than `max` are kept. */
  add(path: string, at: string, message: string): void {
    this.total++
    this.files.add(path)
    if (this.kept.length < this.max) this.kept.push({ at, message })
  }

  get count(): number {
    return this.total
  }

  /**
   * Throws `INVALID_ROW` listing the kept rows (in path and line order) and the count, when any row was
   * invalid. `details` holds the kept rows.
   */
  throwIfAny(): void {
    if (this.total === 0) return
    const rows = [...this.kept].sort((a, b) => compareAt(a.at, b.at))
    const more = this.total > rows.length ? `\n  … and ${this.total - rows.length} more` : ''
    const n = this.total === 1 ? '1 invalid row' : `${this.total} invalid rows`
    const files = this.files.size === 1 ? '1 shard' : `${this.files.size} shards`
    throw new CairnError('INVALID_ROW', `${n} in ${files}:\n${rows.map((r) => `  ${r.at}: ${r.message}`).join('\n')}${more}`, {
      subject: rows[0].at,
      details: rows,
      hint: 'fix the rows or the rules in cairn.json (`--max-errors N` shows more); nothing was committed',
    })
  }
}

/** `path:line` order: by path, then by line (or row) number. */
export function compareAt(a: string, b: string): number {
  const [pa, la] = splitAt(a)
  const [pb, lb] = splitAt(b)
  return pa < pb ? -1 : pa > pb ? 1 : la - lb
}

/** `path:line` or `path:row n` as the path and the number. */
export function splitAt(at: string): [string, number] {
  const m = /^(.*):(?:row )?(\d+)$/.exec(at)
  return m ? [m[1], Number(m[2])] : [at, 0]
}
