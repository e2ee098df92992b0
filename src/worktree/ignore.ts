/**
 * Ignore rules: `.cairnignore` at the top of a dataset, in gitignore syntax (read by the `ignore`
 * package, which implements git's rules), plus cairn's defaults. Build and status leave ignored files
 * out of a version; verify does not report them as extra. Hidden entries (`.cairn/`, `.cairnignore`)
 * and `cairn.json` are never shards anyway (src/scan.ts).
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import ignore, { type Ignore } from 'ignore'
import { CairnError, ioError } from '../errors.js'

/** The ignore file's name, at the top of the dataset. */
export const IGNORE_FILE = '.cairnignore'

/**
 * Ignored unless `.cairnignore` takes them back (`!*.car`): CAR files, which `cairn pack -o` writes and
 * which would otherwise become shards of the next build.
 */
export const DEFAULT_IGNORES: readonly string[] = ['*.car']

/** Which paths of a dataset are left out. */
export interface IgnoreRules {
  /** True when the `/`-separated relative `path` is ignored; `folder` when it names a folder. */
  ignores(path: string, folder: boolean): boolean
}

/**
 * The rules of the dataset folder `root`: the defaults, then `.cairnignore` when present. Throws
 * `USAGE` naming `.cairnignore:<line>` for a pattern git would never match (an unfinished `[…]`
 * class, a reversed range, a trailing backslash), and `IO` when the file exists but cannot be read.
 */
export async function loadIgnoreRules(root: string): Promise<IgnoreRules> {
  const file = join(root, IGNORE_FILE)
  let text = ''
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('read', file, e)
  }
  return parseIgnoreRules(text)
}

/** The rules of an ignore file's text (see {@link loadIgnoreRules}). */
export function parseIgnoreRules(text: string): IgnoreRules {
  const lines = text.split(/\r?\n/)
  lines.forEach((line, i) => {
    const problem = badPattern(line)
    if (problem) {
      throw new CairnError('USAGE', `${IGNORE_FILE}:${i + 1}: ${JSON.stringify(line)} is not a valid pattern: ${problem}`, {
        subject: `${IGNORE_FILE}:${i + 1}`,
        hint: 'fix or remove the line (the syntax is gitignore’s: https://git-scm.com/docs/gitignore); nothing was written',
      })
    }
  })
  // no rules of the folder's own: the defaults alone, without asking the package about each path (its
  // matching cost ~10 µs per path, a tenth of a walk of 10⁶ files); `*.car` matches a name at any depth, in
  // any case (the package, like git on most systems, ignores case)
  if (lines.every((line) => line.trim() === '' || line.startsWith('#'))) return { ignores: (path) => CAR_NAME.test(path) }
  const fresh = (): Ignore =>
    ignore()
      .add([...DEFAULT_IGNORES])
      .add(lines)
  // The package keeps the answer for every path it was asked about: a walk of 10⁶ files would keep 10⁶
  // answers (~150 MB). A fresh matcher every few thousand questions bounds that; the walk asks about
  // each path once, so the answers it drops would not have been asked for again.
  let ig = fresh()
  let asked = 0
  return {
    ignores: (path, folder) => {
      if (++asked % IGNORE_CACHE_PATHS === 0) ig = fresh()
      return ig.ignores(folder ? path + '/' : path)
    },
  }
}

/** The default rule `*.car` as the package matches it: a name ending in `.car`, in any case, the path's or a folder's on it. */
const CAR_NAME = /\.car(?:\/|$)/i

/** Paths an ignore matcher answers before it is replaced by a fresh one (see {@link parseIgnoreRules}). */
const IGNORE_CACHE_PATHS = 4096

/**
 * Why a line is a pattern git would never match, or undefined. The `ignore` package turns such lines
 * into patterns that silently match nothing; a user who wrote one meant something else.
 */
function badPattern(line: string): string | undefined {
  if (line.startsWith('#') || line.trim() === '') return undefined
  let escaped = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (escaped) {
      escaped = false
      continue
    }
    if (c === '\\') {
      escaped = true
      continue
    }
    if (c === '[') {
      let j = i + 1
      if (line[j] === '!' || line[j] === '^') j++
      if (line[j] === ']') j++
      while (j < line.length && line[j] !== ']') {
        if (line[j + 1] === '-' && j + 2 < line.length && line[j + 2] !== ']' && line[j] > line[j + 2]) {
          return `the range ${line[j]}-${line[j + 2]} is reversed`
        }
        j++
      }
      if (j >= line.length) return 'a "[" character class is never closed (write \\[ for a literal bracket)'
      i = j
    }
  }
  if (escaped && !line.endsWith('\\ ')) return 'it ends with a lone backslash'
  return undefined
}
