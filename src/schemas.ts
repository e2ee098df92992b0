/**
 * JSON Schema validation of everything cairn persists or prints (`schemas/*.json`), with ajv
 * (draft 2020-12). The persisted formats' schemas (card, manifests) are compiled ahead of time
 * (`src/schemas.generated.ts`, `npm run schemas`), since every build and every read validates with
 * them; the `--json` result schemas (`schemas/cli/`) are compiled once, on first use.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Ajv2020, ErrorObject, ValidateFunction } from 'ajv/dist/2020.js'
import { validators } from './schemas.generated.js'

/** The package's root folder (holds `package.json` and `schemas/`), from src/ or from dist/src/. */
export const packageRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    try {
      readFileSync(join(dir, 'package.json'))
      return dir
    } catch {
      const up = dirname(dir)
      if (up === dir) throw new Error('cairn: cannot find package.json above ' + fileURLToPath(import.meta.url))
      dir = up
    }
  }
})()

const BASE = 'https://cairn.dev/schemas/'
let ajv: Ajv2020 | undefined

// ajv (a hundred modules) is loaded only by a process that compiles a schema at run time: the
// persisted formats are precompiled, so most commands never need it
const require = createRequire(import.meta.url)
const ajvClass = (): typeof Ajv2020 => (require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).Ajv2020

/** All schemas, compiled on first use (with the options bin/compile-schemas.js compiles with). */
function instance(): Ajv2020 {
  if (ajv) return ajv
  ajv = new (ajvClass())({ allErrors: true, strict: true, allowUnionTypes: true })
  for (const dir of ['schemas', 'schemas/cli']) {
    for (const name of readdirSync(join(packageRoot, dir))) {
      if (!name.endsWith('.schema.json')) continue
      ajv.addSchema(JSON.parse(readFileSync(join(packageRoot, dir, name), 'utf8')) as object)
    }
  }
  return ajv
}

/** One validation error: where (JSON pointer) and what. */
export interface SchemaError {
  readonly path: string
  readonly message: string
}

/** What validation needs of a compiled schema (an ajv `ValidateFunction` or standalone code). */
type Validator = { (value: unknown): boolean; errors?: ErrorObject[] | null }
const precompiled: Readonly<Record<string, Validator | undefined>> = validators

/** Validates `value` against `schemas/<name>` (e.g. `card.schema.json`, `cli/ls.schema.json`). */
export function validateWith(name: string, value: unknown): readonly SchemaError[] {
  const validate: Validator | undefined = precompiled[name] ?? instance().getSchema(BASE + name)
  if (!validate) throw new Error(`cairn: no schema ${name} in ${join(packageRoot, 'schemas')}`)
  return validate(value) ? [] : formatErrors(validate.errors)
}

/** Formats ajv errors as `{ path, message }`, the path a JSON pointer (`/` for the root). */
export function formatErrors(errors: readonly ErrorObject[] | null | undefined): SchemaError[] {
  return (errors ?? []).map((e) => {
    let message = e.message ?? 'is invalid'
    if (e.keyword === 'additionalProperties') message = `has unknown property "${String(e.params.additionalProperty)}"`
    if (e.keyword === 'enum') message += `: ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
    if (e.keyword === 'const') message += ` ${JSON.stringify(e.params.allowedValue)}`
    return { path: e.instancePath || '/', message }
  })
}

/**
 * Compiles a user-supplied JSON Schema (a card's row schema). With `coerceTypes` (for CSV, whose
 * cells are all strings) `"3"` satisfies `integer`. Throws ajv's error when it is not a schema.
 */
export function compileUserSchema(schema: object, options: { readonly coerceTypes?: boolean } = {}): ValidateFunction {
  return new (ajvClass())({ allErrors: false, strict: false, coerceTypes: options.coerceTypes ?? false }).compile(schema)
}
