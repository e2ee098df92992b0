/** How the lineage two cards declare differs: the `derivedFrom` entries, matched by release. */
import type { Card, DerivedFrom } from '../manifest.js'

/** One change of a `derivedFrom` entry between two versions. */
export interface LineageChange {
  /** `added`: only the new version derives from it; `removed`: only the old; `changed`: both, with another role or selection. */
  readonly kind: 'added' | 'removed' | 'changed'
  /** The source release's CID. */
  readonly release: string
  readonly before?: { readonly role: string; readonly select?: readonly string[] }
  readonly after?: { readonly role: string; readonly select?: readonly string[] }
}

/** The `derivedFrom` changes from card `a` to card `b`, in the order of `a`'s entries, then `b`'s new ones. */
export function lineageChanges(a: Card, b: Card): LineageChange[] {
  const before = byRelease(a.derivedFrom)
  const after = byRelease(b.derivedFrom)
  const out: LineageChange[] = []
  for (const [release, x] of before) {
    const y = after.get(release)
    if (y === undefined) out.push({ kind: 'removed', release, before: part(x) })
    else if (x.role !== y.role || JSON.stringify(x.select ?? null) !== JSON.stringify(y.select ?? null)) {
      out.push({ kind: 'changed', release, before: part(x), after: part(y) })
    }
  }
  for (const [release, y] of after) if (!before.has(release)) out.push({ kind: 'added', release, after: part(y) })
  return out
}

function byRelease(entries: readonly DerivedFrom[] | undefined): Map<string, DerivedFrom> {
  return new Map((entries ?? []).map((e) => [e.release['/'], e]))
}

function part(e: DerivedFrom): { role: string; select?: readonly string[] } {
  return e.select ? { role: e.role, select: e.select } : { role: e.role }
}
