/**
 * oclif's `command_not_found` hook: `cairn buidl` says "Did you mean build?" and exits 2 (a usage
 * error, as the exit-code table says), the same on a terminal and in a script. Nothing runs in the
 * typo's place: oclif's not-found plugin asks on a terminal and then runs the guess, which for a
 * command that writes is one keystroke too easy.
 */
import type { Hook } from '@oclif/core'
import { EXIT } from './_errors.js'

const hook: Hook.CommandNotFound = async function (options) {
  const typed = options.id.split(':').join(' ')
  const ids = options.config.commands.filter((c) => !c.hidden).flatMap((c) => [c.id, ...c.aliases])
  const guess = closest(options.id, ids)
  this.error(
    `"${typed}" is not a ${options.config.bin} command.` +
      (guess ? ` Did you mean "${guess.split(':').join(' ')}"?` : '') +
      ` Run "${options.config.bin} help" for the list of commands.`,
    { exit: EXIT.usage },
  )
}

export default hook

/** The id within edit distance 1 + a third of its length of `typed`, nearest first; none when nothing is that close. */
export function closest(typed: string, ids: readonly string[]): string | undefined {
  let best: { id: string; d: number } | undefined
  for (const id of ids) {
    const d = distance(typed, id)
    if (d <= 1 + Math.floor(id.length / 3) && (best === undefined || d < best.d)) best = { id, d }
  }
  return best?.id
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  return d[a.length][b.length]
}
