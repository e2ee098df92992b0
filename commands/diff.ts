import { Args, Flags } from '@oclif/core'
import { diff, type DiffResult, type ShardChange } from '../src/index.js'
import { bytes, CairnCommand, fromFlag } from './_base.js'
import { EXIT } from './_errors.js'

export default class Diff extends CairnCommand {
  static override summary = 'Show what changed between two versions: shards, schemas, card, totals.'
  static override description =
    'Walks the two shard indexes together and skips every subtree that is equal on both sides, so the cost follows the number of changes. ' +
    'Exits 0 whether or not the versions differ, unless --exit-code is given.'
  static override examples = [
    '<%= config.bin %> diff HEAD~1 HEAD',
    '<%= config.bin %> diff v1 v2 --json',
    '<%= config.bin %> diff bafy…old bafy…new --from release.car',
    '<%= config.bin %> diff bafy…old bafy…new --from http://127.0.0.1:8080',
    '<%= config.bin %> diff v1 HEAD --exit-code',
    '<%= config.bin %> diff HEAD~1 HEAD --rows --limit 3',
  ]
  static override args = {
    a: Args.string({ description: 'the old version: a CID, HEAD, HEAD~n or a tag', required: true }),
    b: Args.string({ description: 'the new version (default HEAD)', default: 'HEAD' }),
  }
  static override flags = {
    from: fromFlag,
    rows: Flags.boolean({
      summary: "Also compare the rows of modified Parquet, Arrow, JSONL and CSV shards (by the card's primaryKey, else by content).",
    }),
    limit: Flags.integer({ summary: 'With --rows: sample rows shown per kind and shard.', default: 5, min: 0 }),
    'exit-code': Flags.boolean({ summary: 'Exit with 1 when the versions differ, 0 when they do not.' }),
  }

  async run(): Promise<DiffResult> {
    const { args, flags } = await this.parse(Diff)
    const progress = this.progress()
    const result = await diff({
      dir: flags.dir,
      a: args.a,
      b: args.b,
      from: flags.from,
      rows: flags.rows,
      limit: flags.limit,
      onProgress: (p) => progress.update(`diff: ${p.phase}, ${p.nodesRead} index nodes read`),
    })
    progress.done()
    if (!this.jsonEnabled()) this.render(result)
    if (flags['exit-code'] && result.changed) process.exitCode = EXIT.differences
    return result
  }

  private render(r: DiffResult): void {
    this.log(`diff ${r.a.cid} → ${r.b.cid}`)
    if (!r.sharedHistory) this.log('(the two versions share no history)')
    if (!r.changed) {
      this.log('no differences')
      return
    }
    for (const s of r.shards) this.log(shardLine(s))
    const { added, removed, modified, renamed } = r.counts
    if (r.shards.length > 0)
      this.log(` ${r.shards.length} shards changed: ${added} added, ${removed} removed, ${modified} modified, ${renamed} renamed`)
    const withSchema = r.shards.filter((s) => s.schema)
    if (withSchema.length > 0) {
      this.log('\nSchema changes:')
      for (const s of withSchema) {
        const c = s.schema!
        this.log(`  ${s.path}`)
        for (const f of c.added) this.log(`    + ${f.name}: ${f.type}${f.nullable ? ' (nullable)' : ''}`)
        for (const f of c.removed) this.log(`    - ${f.name}: ${f.type}`)
        for (const f of c.retyped) this.log(`    ~ ${f.name}: ${f.before.type} → ${f.after.type}`)
        for (const f of c.nullability)
          this.log(`    ~ ${f.name}: ${f.before.nullable ? 'nullable' : 'not null'} → ${f.after.nullable ? 'nullable' : 'not null'}`)
        if (c.reordered) this.log('    (fields reordered)')
      }
    }
    const withRows = r.shards.filter((s) => s.rows)
    if (withRows.length > 0) {
      this.log('\nRows:')
      for (const s of withRows) {
        const d = s.rows!
        if (d.status === 'skipped') {
          this.log(`  ${s.path}: not compared (${d.reason})`)
          continue
        }
        const how = d.match === 'key' ? `by key ${d.primaryKey?.join(', ')}` : 'by content'
        this.log(`  ${s.path}: +${d.added} -${d.removed} ~${d.changed} (${d.unchanged} unchanged, matched ${how})`)
        for (const row of d.samples.added) this.log(`    + ${show(row)}`)
        for (const row of d.samples.removed) this.log(`    - ${show(row)}`)
        for (const c of d.samples.changed) {
          const cols = Object.entries(c.columns).map(([k, v]) => `${k}: ${show(v.before)} → ${show(v.after)}`)
          this.log(`    ~ ${show(c.key)} ${cols.join('; ')}`)
        }
      }
    }
    if (r.card.length > 0) {
      this.log('\nCard changes:')
      for (const c of r.card) {
        const text = c.kind === 'added' ? `+ ${show(c.after)}` : c.kind === 'removed' ? `- ${show(c.before)}` : change(c.before, c.after)
        this.log(`  ${c.path}: ${text}`)
      }
    }
    if (r.lineage.length > 0) {
      this.log('\nLineage changes:')
      for (const l of r.lineage) {
        const what = (p?: { role: string; select?: readonly string[] }): string =>
          p ? `${p.role}${p.select ? ` [${p.select.join(', ')}]` : ''}` : ''
        const mark = l.kind === 'added' ? '+' : l.kind === 'removed' ? '-' : '~'
        this.log(`  ${mark} ${l.release} ${l.kind === 'changed' ? `${what(l.before)} → ${what(l.after)}` : what(l.after ?? l.before)}`)
      }
    }
    const t = r.totals
    this.log(
      `\nTotals: ${t.before.shards} → ${t.after.shards} shards, ${bytes(t.before.bytes)} → ${bytes(t.after.bytes)}, ${t.before.rows} → ${t.after.rows} rows`,
    )
  }
}

function shardLine(s: ShardChange): string {
  const size = (n?: number): string => (n === undefined ? '-' : bytes(n))
  const rows = (n?: number): string => (n === undefined ? '' : `${n} rows`)
  switch (s.status) {
    case 'added':
      return `A ${s.path}  ${size(s.after?.size)}  ${rows(s.after?.rows)}`.trimEnd()
    case 'removed':
      return `D ${s.path}  ${size(s.before?.size)}  ${rows(s.before?.rows)}`.trimEnd()
    case 'renamed':
      return `R ${s.from} → ${s.path}  ${size(s.after?.size)}`
    case 'modified': {
      const r =
        s.before?.rows !== undefined || s.after?.rows !== undefined ? `  ${s.before?.rows ?? '-'} → ${s.after?.rows ?? '-'} rows` : ''
      return `M ${s.path}  ${size(s.before?.size)} → ${size(s.after?.size)}${r}`
    }
  }
}

/** `before → after` on one line; two long strings are shown from a little before where they first differ. */
function change(before: unknown, after: unknown): string {
  if (typeof before === 'string' && typeof after === 'string' && (before.length > 60 || after.length > 60)) {
    let i = 0
    while (i < before.length && before[i] === after[i]) i++
    const from = Math.max(0, i - 20)
    const cut = (t: string): string => show((from > 0 ? '…' : '') + t.slice(from))
    return `${cut(before)} → ${cut(after)}`
  }
  return `${show(before)} → ${show(after)}`
}

/** A card value on one line, shortened. */
function show(v: unknown): string {
  const text = JSON.stringify(v) ?? 'undefined'
  return text.length > 80 ? text.slice(0, 77) + '…' : text
}
