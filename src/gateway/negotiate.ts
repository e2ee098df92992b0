/**
 * What a request asks for: a trustless response (`format=raw|car`, or an `Accept` naming
 * `application/vnd.ipld.raw` or `application/vnd.ipld.car`), or plain content for people and data
 * tools, as HTML or JSON when the client prefers either. `format` wins over `Accept`.
 */
import { CAR_TYPE, RAW_TYPE } from './trustless.js'

/** The response a request negotiated. */
export type Negotiated =
  | { readonly format: 'raw' | 'car' }
  | { readonly format: 'plain'; readonly prefers: 'html' | 'json' | 'any' }
  | { readonly status: 400 | 406; readonly message: string }

/** Negotiates from the `format` parameter and the `Accept` header. */
export function negotiate(format: string | null, accept: string | undefined): Negotiated {
  if (format !== null) {
    if (format === 'raw' || format === 'car') return { format }
    return { status: 400, message: `format=${format} is not supported (this gateway answers format=raw, format=car, or plain content)` }
  }
  if (accept === undefined || accept.trim() === '') return { format: 'plain', prefers: 'any' }
  const ranges = accept
    .split(',')
    .map((part) => {
      const [type, ...params] = part.split(';').map((s) => s.trim())
      const p = new Map(params.map((kv) => kv.split('=').map((s) => s.trim().toLowerCase()) as [string, string]))
      const q = Number(p.get('q') ?? '1')
      return { type: type.toLowerCase(), q: Number.isFinite(q) ? q : 0, params: p }
    })
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q)
  let unsupportedCar = false
  for (const r of ranges) {
    if (r.type === RAW_TYPE) return { format: 'raw' }
    if (r.type === CAR_TYPE) {
      const version = r.params.get('version')
      const order = r.params.get('order')
      const dups = r.params.get('dups')
      if (
        (version === undefined || version === '1') &&
        (order === undefined || order === 'dfs' || order === 'unk') &&
        (dups === undefined || dups === 'n' || dups === 'y')
      ) {
        return { format: 'car' }
      }
      unsupportedCar = true
      continue
    }
    if (r.type === 'text/html' || r.type === 'application/xhtml+xml') return { format: 'plain', prefers: 'html' }
    if (r.type === 'application/json') return { format: 'plain', prefers: 'json' }
    if (!r.type.startsWith('application/vnd.ipld.')) return { format: 'plain', prefers: 'any' }
  }
  if (unsupportedCar || ranges.length > 0) {
    return {
      status: 406,
      message: `none of ${accept} is served here (application/vnd.ipld.raw, application/vnd.ipld.car; version=1, or plain content)`,
    }
  }
  return { format: 'plain', prefers: 'any' }
}
