/**
 * What `init` checks of a card beyond its JSON Schema, all at once: every rule's `rowSchema` is a valid
 * JSON Schema (draft 2020-12, ajv's meta-schema), and `license` is an SPDX expression of known
 * identifiers (spdx-license-ids), with a "did you mean" for a near miss.
 */
import { createRequire } from 'node:module'
import type { Ajv2020 } from 'ajv/dist/2020.js'
import type { Card } from '../manifest.js'
import { formatErrors, type SchemaError } from '../schemas.js'

// ajv (a hundred modules) loads only when a card with row schemas is checked (`init`), not for every
// command that opens a dataset (docs/cli.md)
const ajvClass = (): typeof Ajv2020 => (createRequire(import.meta.url)('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).Ajv2020

/**
 * Every problem of `card`'s row schemas and licence, as `{ path, message }` (a JSON pointer into the
 * card); empty when there is none.
 */
export function checkCard(card: Card): SchemaError[] {
  const problems: SchemaError[] = []
  const rules = card.shards ?? []
  if (rules.some((r) => r.rowSchema)) {
    const ajv = new (ajvClass())({ allErrors: true, strict: false })
    rules.forEach((rule, i) => {
      if (!rule.rowSchema || ajv.validateSchema(rule.rowSchema)) return
      // one message per place: the meta-schema's anyOf repeats itself for a bad type
      const seen = new Set<string>()
      for (const e of formatErrors(ajv.errors)) {
        const path = `/shards/${i}/rowSchema${e.path === '/' ? '' : e.path}`
        if (seen.has(path)) continue
        seen.add(path)
        problems.push({ path, message: `not a valid JSON Schema: ${e.message}` })
      }
    })
  }
  if (card.license !== undefined) problems.push(...checkLicense(card.license).map((message) => ({ path: '/license', message })))
  return problems
}

/** SPDX's words of an expression, and the values that stand for no licence. */
const OPERATORS = new Set(['AND', 'OR', 'WITH'])
const SPECIAL = new Set(['NONE', 'NOASSERTION'])

/** Problems of an SPDX licence expression: unknown identifiers, each with the nearest known one. */
export function checkLicense(expression: string): string[] {
  const ids = licenseIds()
  const byLower = new Map(ids.map((id) => [id.toLowerCase(), id]))
  const tokens = expression.split(/[\s()]+/).filter(Boolean)
  if (tokens.length === 0) return ['is empty (expected an SPDX identifier such as CC-BY-4.0)']
  const out: string[] = []
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]
    if (OPERATORS.has(token)) {
      // the exception after WITH is from another list: not checked here
      if (token === 'WITH') i++
      continue
    }
    const id = token.endsWith('+') ? token.slice(0, -1) : token
    if (SPECIAL.has(id) || /^(DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+$/.test(id) || byLower.has(id.toLowerCase())) continue
    // a licence written with spaces ("Apache 2.0") is one mistake, not several
    const whole = tokens.length > 1 && !tokens.some((t) => OPERATORS.has(t))
    const guess = nearest(whole ? tokens.join('-') : id, ids)
    out.push(
      `${JSON.stringify(whole ? expression : id)} is not an SPDX licence identifier` +
        (guess ? ` (did you mean ${guess}?)` : ' (see https://spdx.org/licenses/, or use LicenseRef-<name> for your own)'),
    )
    if (whole) break
  }
  return out
}

let cached: string[] | undefined
function licenseIds(): string[] {
  if (!cached) {
    const require = createRequire(import.meta.url)
    cached = [...(require('spdx-license-ids') as string[]), ...(require('spdx-license-ids/deprecated.json') as string[])]
  }
  return cached
}

/**
 * The known identifier closest to `text`, when close enough to be a likely typo. Compared without case
 * and punctuation, so that `GPL3` meets `GPL-3.0` and `Apache 2.0` meets `Apache-2.0`.
 */
function nearest(text: string, ids: readonly string[]): string | undefined {
  const t = squash(text)
  let best: string | undefined
  let bestDistance = Infinity
  for (const id of ids) {
    const d = distance(t, squash(id), bestDistance)
    if (d < bestDistance) {
      bestDistance = d
      best = id
    }
  }
  return bestDistance <= Math.max(2, Math.floor(t.length / 3)) ? best : undefined
}

function squash(id: string): string {
  return id.toLowerCase().replace(/[^a-z0-9+]/g, '')
}

/**
 * Edit distance counting a swap of two neighbours as one edit (optimal string alignment): `MTI` is one
 * edit from `MIT`. Gives up (returning `limit`) once no alignment can stay under it.
 */
function distance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit
  let before: number[] = []
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    let min = i
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j], before[j - 2] + 1)
      min = Math.min(min, row[j])
    }
    if (min >= limit) return limit
    before = prev
    prev = row
  }
  return prev[b.length]
}
