/**
 * Whether a part's shards were checked as the composed version's card would check them. A build
 * checks each JSONL/CSV shard against the row schema of the first rule of the card whose glob
 * matches its path, and each shard a format reader reads against the primary key of the first rule
 * with a key that matches; the shard entries themselves do not depend on the rules. So a part is
 * compatible when, for every shard it brings, the rule its own card applied at its path there and
 * the rule the composed card applies at its path in the composition say the same thing (the same
 * row schema, the same key and key scope; globs may differ, as with `--at`). A key unique across a
 * rule's shards (`keyScope: "rule"`) cannot be checked across parts without reading their rows: such
 * a rule may take shards from one part only. See docs/compose.md.
 */
import { Minimatch } from 'minimatch'
import { CairnError } from '../errors.js'
import type { Card, ShardEntry, ShardRule } from '../manifest.js'

/** The rules of one card, compiled once. */
export class CardRules {
  private readonly globs: Minimatch[]

  constructor(readonly rules: readonly ShardRule[]) {
    this.globs = rules.map((r) => new Minimatch(r.glob, { dot: true, matchBase: !r.glob.includes('/') }))
  }

  static of(card: Card): CardRules {
    return new CardRules(card.shards ?? [])
  }

  /** The rule whose row schema a build applies to `path` (the first whose glob matches), or -1. */
  schemaRule(path: string): number {
    return this.globs.findIndex((g) => g.match(path))
  }

  /** The rule whose primary key a build applies to `path` (the first with a key whose glob matches), or -1. */
  keyRule(path: string): number {
    return this.globs.findIndex((g, i) => this.rules[i].primaryKey !== undefined && g.match(path))
  }
}

/** What a rule makes a build check, in a canonical form: equal strings, equal checks. */
function schemaOf(rules: CardRules, i: number): string {
  return i < 0 ? 'none' : canonical(rules.rules[i].rowSchema ?? null)
}

function keyOf(rules: CardRules, i: number): string {
  if (i < 0) return 'none'
  const r = rules.rules[i]
  return canonical({ key: r.primaryKey ?? null, scope: r.keyScope ?? 'shard' })
}

/**
 * Checks the shards of the parts against the composed card, one at a time, remembering verdicts per
 * pair of rules (a few per part, whatever the number of shards).
 */
export class RuleCheck {
  private readonly verdicts = new Map<string, string | undefined>()
  /** For each composed rule with `keyScope: "rule"`, the first part that brought a shard under it. */
  private readonly scopeOwner = new Map<number, number>()

  constructor(
    private readonly composed: CardRules,
    private readonly parts: readonly { readonly rules: CardRules; readonly label: string }[],
  ) {}

  /**
   * Checks one shard of part `part`: `entry` at its composed path, `partPath` its path in the part.
   * Throws `INCOMPATIBLE_PARTS` saying which rule of which card disagrees.
   */
  check(part: number, entry: ShardEntry, partPath: string): void {
    if (entry.format === 'bytes') return
    const own = this.parts[part]
    const checksRows = entry.format === 'jsonl' || entry.format === 'csv'
    const ownSchema = checksRows ? own.rules.schemaRule(partPath) : -1
    const newSchema = checksRows ? this.composed.schemaRule(entry.path) : -1
    const ownKey = own.rules.keyRule(partPath)
    const newKey = this.composed.keyRule(entry.path)
    const memo = `${part}:${ownSchema}:${newSchema}:${ownKey}:${newKey}`
    let why = this.verdicts.get(memo)
    if (!this.verdicts.has(memo)) {
      why = this.compare(own.rules, ownSchema, newSchema, ownKey, newKey)
      this.verdicts.set(memo, why)
    }
    if (why !== undefined) {
      throw new CairnError('INCOMPATIBLE_PARTS', `part ${own.label}: shard ${JSON.stringify(entry.path)}: ${why}`, {
        subject: entry.path,
        hint: 'give every worker the same shard rules as the composing dataset (cairn.json "shards"), rebuild the part, or compose in a dataset whose card agrees',
      })
    }
    if (newKey >= 0 && this.composed.rules[newKey].keyScope === 'rule') {
      const owner = this.scopeOwner.get(newKey)
      if (owner === undefined) this.scopeOwner.set(newKey, part)
      else if (owner !== part) {
        const glob = this.composed.rules[newKey].glob
        throw new CairnError(
          'INCOMPATIBLE_PARTS',
          `parts ${this.parts[owner].label} and ${own.label} both bring shards of the rule ${JSON.stringify(glob)}, whose key must be unique across all its shards (keyScope "rule"); compose cannot check that without reading the rows`,
          {
            subject: entry.path,
            hint: 'give each keyScope "rule" rule to one worker, use keyScope "shard", or build the union on one machine',
          },
        )
      }
    }
  }

  private compare(own: CardRules, ownSchema: number, newSchema: number, ownKey: number, newKey: number): string | undefined {
    if (schemaOf(own, ownSchema) !== schemaOf(this.composed, newSchema)) {
      return `its rows were checked against ${describe(own, ownSchema, 'row schema')} of the part's card, the composed card applies ${describe(this.composed, newSchema, 'row schema')}`
    }
    if (keyOf(own, ownKey) !== keyOf(this.composed, newKey)) {
      return `its key was checked under ${describe(own, ownKey, 'primary key')} of the part's card, the composed card applies ${describe(this.composed, newKey, 'primary key')}`
    }
    return undefined
  }
}

function describe(rules: CardRules, i: number, what: string): string {
  if (i < 0) return `no ${what}`
  const r = rules.rules[i]
  if (what === 'primary key') {
    return r.primaryKey === undefined
      ? `no ${what} (rule ${JSON.stringify(r.glob)})`
      : `the key ${JSON.stringify(r.primaryKey)} (scope ${r.keyScope ?? 'shard'}) of rule ${JSON.stringify(r.glob)}`
  }
  return r.rowSchema === undefined ? `no ${what} (rule ${JSON.stringify(r.glob)})` : `the ${what} of rule ${JSON.stringify(r.glob)}`
}

/** JSON with object keys sorted: the card from a dag-json block and the one from cairn.json compare equal. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}
