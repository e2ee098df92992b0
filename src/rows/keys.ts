/**
 * `primaryKey` uniqueness (the card's `shards[].primaryKey`): within each shard, or across every shard
 * of the rule when the rule says `"keyScope": "rule"`. Each key seen is kept with where it was first
 * seen (memory grows with the rows of a shard, or of a rule's shards), so a duplicate names both places.
 */
import type { Row } from '../formats/interface.js'
import { compareAt, splitAt, type RowProblems } from './problems.js'

/** The keys seen so far of one shard or one rule, and where. */
export class KeySet {
  private readonly seen = new Map<string, string>()

  constructor(readonly columns: readonly string[]) {}

  /**
   * Checks `row`'s key, seen at `at` (`path:line`): a row without a value for a key column, or whose key
   * was seen before, is reported to `problems`.
   */
  check(row: Row, path: string, at: string, problems: RowProblems): void {
    const values: unknown[] = []
    for (const c of this.columns) {
      const v = row[c]
      if (v === undefined || v === null || v === '') {
        problems.add(path, at, `no value for primaryKey column ${JSON.stringify(c)}`)
        return
      }
      values.push(v)
    }
    const key = JSON.stringify(values)
    const first = this.seen.get(key)
    if (first === undefined) {
      this.seen.set(key, at)
      return
    }
    const shown = this.columns.map((c, i) => `${c}=${JSON.stringify(values[i])}`).join(', ')
    // the two places in path and line order, whichever was read first
    const [a, b] = [first, at].sort(compareAt)
    problems.add(splitAt(b)[0], b, `duplicate primaryKey (${shown}): also at ${a}`)
  }
}
