/** Human lines for `status` and `diff --worktree`. */
import type { ShardChange } from '../src/diff.js'
import type { StatusResult } from '../src/worktree/status.js'
import { bytes } from './_base.js'

/** One line per shard change (`A`, `D`, `M`, `R`), the card, the counts, and the row summaries. */
export function renderShardChanges(r: StatusResult): string[] {
  const out = r.shards.map(line)
  if (r.card !== 'same') out.push(`${r.card === 'missing' ? 'D' : 'M'} cairn.json  (the card)`)
  const { added, removed, modified, renamed } = r.counts
  if (r.shards.length > 0)
    out.push(` ${r.shards.length} shards changed: ${added} added, ${removed} removed, ${modified} modified, ${renamed} renamed`)
  for (const s of r.shards) {
    const d = s.rows
    if (!d) continue
    if (d.status === 'skipped') out.push(`  ${s.path}: rows not compared (${d.reason})`)
    else out.push(`  ${s.path}: rows +${d.added} -${d.removed} ~${d.changed} (${d.unchanged} unchanged, matched by ${d.match})`)
  }
  return out
}

function line(s: ShardChange): string {
  switch (s.status) {
    case 'added':
      return `A ${s.path}  ${bytes(s.after?.size ?? 0)}`
    case 'removed':
      return `D ${s.path}  ${bytes(s.before?.size ?? 0)}`
    case 'renamed':
      return `R ${s.from} → ${s.path}`
    case 'modified':
      return `M ${s.path}  ${bytes(s.before?.size ?? 0)} → ${bytes(s.after?.size ?? 0)}`
  }
}
