import { Args } from '@oclif/core'
import { ls, type ShardEntry } from '../src/index.js'
import { bytes, CairnCommand, fromFlag } from './_base.js'

export default class Ls extends CairnCommand {
  static override summary = 'List the shards of a version: path, CID, size, format, rows.'
  static override examples = ['<%= config.bin %> ls', '<%= config.bin %> ls v1 --json']
  static override args = { ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }) }
  static override flags = { from: fromFlag }

  async run() {
    const { args, flags } = await this.parse(Ls)
    const shards: ShardEntry[] = []
    for await (const entry of ls({ dir: flags.dir, ref: args.ref, from: flags.from })) {
      if (this.jsonEnabled()) shards.push(entry)
      // path last, like `git ls-tree`: the other columns have bounded widths and stay aligned while streaming
      else
        this.log(
          [
            entry.cid.toString(),
            bytes(entry.size).padStart(10),
            entry.format.padEnd(7),
            String(entry.rows ?? '-').padStart(9),
            entry.path,
          ].join('  '),
        )
    }
    return shards
  }
}
