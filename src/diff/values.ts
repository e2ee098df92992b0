/**
 * Field-by-field comparisons of small decoded blocks: a deep diff of two JSON values (the dataset
 * cards) and the difference of two shard schemas.
 */
import type { Field } from '../formats/interface.js'

/** One difference between two JSON values, at a JSON pointer (RFC 6901). */
export interface ValueChange {
  /** JSON pointer of the value that differs, e.g. `/description`, `/shards/0/primaryKey`. */
  readonly path: string
  /** `added`: only in the second value; `removed`: only in the first; `changed`: in both, different. */
  readonly kind: 'added' | 'removed' | 'changed'
  /** The value in the first (absent when added). */
  readonly before?: unknown
  /** The value in the second (absent when removed). */
  readonly after?: unknown
}

/**
 * The differences between two JSON values, in a stable order (object keys sorted, array items by
 * index), as leaves: two objects (or two arrays) are compared member by member; anything else that is
 * not deeply equal is one `changed` entry. An empty list means deeply equal.
 */
export function deepDiff(before: unknown, after: unknown, path = ''): ValueChange[] {
  if (deepEqual(before, after)) return []
  const bothArrays = Array.isArray(before) && Array.isArray(after)
  const bothObjects = isObject(before) && isObject(after)
  if (!bothArrays && !bothObjects) return [{ path: path || '/', kind: 'changed', before, after }]
  const out: ValueChange[] = []
  const keys = bothArrays
    ? Array.from({ length: Math.max((before as unknown[]).length, (after as unknown[]).length) }, (_, i) => String(i))
    : [...new Set([...Object.keys(before as object), ...Object.keys(after as object)])].sort()
  for (const key of keys) {
    const b = (before as Record<string, unknown>)[key]
    const a = (after as Record<string, unknown>)[key]
    const at = `${path}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`
    if (!Object.hasOwn(before as object, key) || b === undefined) {
      if (a !== undefined) out.push({ path: at, kind: 'added', after: a })
    } else if (!Object.hasOwn(after as object, key) || a === undefined) {
      out.push({ path: at, kind: 'removed', before: b })
    } else {
      out.push(...deepDiff(b, a, at))
    }
  }
  return out
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function deepEqual(x: unknown, y: unknown): boolean {
  if (x === y) return true
  if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((v, i) => deepEqual(v, y[i]))
  if (isObject(x) && isObject(y)) {
    const kx = Object.keys(x).filter((k) => x[k] !== undefined)
    const ky = Object.keys(y).filter((k) => y[k] !== undefined)
    return kx.length === ky.length && kx.every((k) => deepEqual(x[k], y[k]))
  }
  return false
}

/** A field whose type or nullability differs between two schemas. */
export interface FieldChange {
  readonly name: string
  readonly before: Field
  readonly after: Field
}

/** How the schema of one shard changed. Fields are matched by name. */
export interface SchemaChange {
  /** Fields only in the new schema, in its order. */
  readonly added: readonly Field[]
  /** Fields only in the old schema, in its order. */
  readonly removed: readonly Field[]
  /** Fields whose type changed (their nullability may have changed too). */
  readonly retyped: readonly FieldChange[]
  /** Fields with the same type whose nullability changed. */
  readonly nullability: readonly FieldChange[]
  /** True when the fields common to both appear in another relative order. */
  readonly reordered: boolean
}

/** Compares two field lists by name. Returns `undefined` when they are identical. */
export function diffFields(before: readonly Field[], after: readonly Field[]): SchemaChange | undefined {
  const old = new Map(before.map((f) => [f.name, f]))
  const now = new Map(after.map((f) => [f.name, f]))
  const added = after.filter((f) => !old.has(f.name))
  const removed = before.filter((f) => !now.has(f.name))
  const retyped: FieldChange[] = []
  const nullability: FieldChange[] = []
  for (const f of after) {
    const o = old.get(f.name)
    if (!o) continue
    if (o.type !== f.type) retyped.push({ name: f.name, before: o, after: f })
    else if (o.nullable !== f.nullable) nullability.push({ name: f.name, before: o, after: f })
  }
  const commonOld = before.filter((f) => now.has(f.name)).map((f) => f.name)
  const commonNew = after.filter((f) => old.has(f.name)).map((f) => f.name)
  const reordered = commonOld.some((n, i) => n !== commonNew[i])
  if (added.length + removed.length + retyped.length + nullability.length === 0 && !reordered) return undefined
  return { added, removed, retyped, nullability, reordered }
}
