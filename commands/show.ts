import { Args } from '@oclif/core'
import { show } from '../src/index.js'
import { bytes, CairnCommand, fromFlag } from './_base.js'

export default class Show extends CairnCommand {
  static override summary = 'Show one version: its card, totals, profile and links.'
  static override examples = ['<%= config.bin %> show', '<%= config.bin %> show HEAD~1', '<%= config.bin %> show bafy… --json']
  static override args = { ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }) }
  static override flags = { from: fromFlag }

  async run() {
    const { args, flags } = await this.parse(Show)
    const result = await show({ dir: flags.dir, ref: args.ref, from: flags.from })
    if (!this.jsonEnabled()) {
      const { manifest: m, card } = result
      this.log(`version  ${result.cid}`)
      this.log(`name     ${m.name}`)
      this.log(`created  ${m.created}`)
      this.log(`message  ${m.message || '(none)'}`)
      this.log(`parent   ${m.parent ?? '(none: first version)'}`)
      this.log(`profile  ${m.profile}`)
      this.log(`totals   ${m.totals.shards} shards, ${bytes(m.totals.bytes)} (${m.totals.bytes} B), ${m.totals.rows} rows`)
      this.log(`card     ${m.card}`)
      this.log(`index    ${m.index}`)
      this.log(`tree     ${m.tree}`)
      if (card.description) this.log(`\n${card.description}`)
      if (card.license) this.log(`license: ${card.license}`)
      if (card.authors) this.log(`authors: ${card.authors.join(', ')}`)
      if (card.provenance) this.log(`provenance: ${JSON.stringify(card.provenance)}`)
      for (const d of card.derivedFrom ?? [])
        this.log(`derived from: ${d.release['/']} (${d.role}${d.select ? `: ${d.select.join(', ')}` : ''})`)
    }
    return result
  }
}
