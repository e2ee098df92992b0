import { Args, Flags } from '@oclif/core'
import { bytes, CairnCommand } from './_base.js'

export default class Log extends CairnCommand {
  static override summary = 'Show the history of versions (the parent chain), newest first.'
  static override examples = [
    '<%= config.bin %> log',
    '<%= config.bin %> log v1 -n 5',
    '<%= config.bin %> log --stat',
    '<%= config.bin %> log --json',
  ]
  static override args = { ref: Args.string({ description: 'where to start: a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }) }
  static override flags = {
    limit: Flags.integer({ char: 'n', summary: 'Show at most this many versions.', min: 1 }),
    stat: Flags.boolean({ summary: 'Count the shards added, removed, modified and renamed since each parent.' }),
  }

  async run() {
    const { args, flags } = await this.parse(Log)
    const { log } = await import('../src/log.js')
    const entries = await log({ dir: flags.dir, ref: args.ref, limit: flags.limit, stat: flags.stat })
    if (!this.jsonEnabled()) {
      for (const e of entries) {
        const tags = e.tags.length > 0 ? ` (${e.tags.join(', ')})` : ''
        this.log(`version ${e.cid}${tags}`)
        this.log(`Date:   ${e.created}`)
        this.log(`Totals: ${e.totals.shards} shards, ${bytes(e.totals.bytes)}, ${e.totals.rows} rows`)
        if (e.stat)
          this.log(`Shards: ${e.stat.added} added, ${e.stat.removed} removed, ${e.stat.modified} modified, ${e.stat.renamed} renamed`)
        this.log(`\n    ${e.message || '(no message)'}\n`)
      }
    }
    return entries
  }
}
