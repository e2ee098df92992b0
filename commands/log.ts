import { Args, Flags } from '@oclif/core'
import { logHistory, type LogEntry } from '../src/index.js'
import { bytes, CairnCommand, fromFlag } from './_base.js'

export default class Log extends CairnCommand {
  static override summary = 'Show the history of versions (the parent chain), newest first.'
  static override description =
    'Versions the store lacks (in a clone, every version but the cloned one) are fetched from --from, then from the sources the clone recorded, every block checked against its CID. When an older version cannot be read, the versions read so far are printed, then what could not be reached.'
  static override examples = [
    '<%= config.bin %> log',
    '<%= config.bin %> log v1 -n 5',
    '<%= config.bin %> log --stat',
    '<%= config.bin %> log --json',
    '<%= config.bin %> log --from https://trustless-gateway.link',
  ]
  static override args = { ref: Args.string({ description: 'where to start: a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }) }
  static override flags = {
    limit: Flags.integer({ char: 'n', summary: 'Show at most this many versions.', min: 1 }),
    stat: Flags.boolean({ summary: 'Count the shards added, removed, modified and renamed since each parent.' }),
    from: fromFlag,
  }

  async run() {
    const { args, flags } = await this.parse(Log)
    const print = (e: LogEntry): void => {
      const tags = e.tags.length > 0 ? ` (${e.tags.join(', ')})` : ''
      this.log(`version ${e.cid}${tags}`)
      this.log(`Date:   ${e.created}`)
      this.log(`Totals: ${e.totals.shards} shards, ${bytes(e.totals.bytes)}, ${e.totals.rows} rows`)
      if (e.stat)
        this.log(`Shards: ${e.stat.added} added, ${e.stat.removed} removed, ${e.stat.modified} modified, ${e.stat.renamed} renamed`)
      this.log(`\n    ${e.message || '(no message)'}\n`)
    }
    const result = await logHistory({
      dir: flags.dir,
      ref: args.ref,
      limit: flags.limit,
      stat: flags.stat,
      from: flags.from,
      // each version as soon as it is read: what is here shows at once, older ones as they arrive
      onEntry: this.jsonEnabled() ? undefined : print,
      onFailure: this.jsonEnabled() ? undefined : (f) => process.stderr.write(`warning: ${f.message}\n`),
    })
    // the history stops short: what was read is printed, then why it stops, with the error's exit code
    if (result.incomplete) throw result.incomplete
    return result.entries
  }
}
