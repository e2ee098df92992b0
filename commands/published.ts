import { Args } from '@oclif/core'
import { bytes, CairnCommand } from './_base.js'

export default class Published extends CairnCommand {
  static override summary = 'List where versions were published: the receipts `cairn publish` recorded.'
  static override description =
    'One receipt per version and target (the latest publish), oldest first: the target, the root, when, and the CAR shards it holds.'
  static override examples = ['<%= config.bin %> published', '<%= config.bin %> published HEAD', '<%= config.bin %> published v1 --json']
  static override args = { ref: Args.string({ description: 'only this version (a CID, HEAD, HEAD~n or a tag); default: every version' }) }

  async run() {
    const { args, flags } = await this.parse(Published)
    const { published } = await import('../src/publish.js')
    const receipts = await published({ dir: flags.dir, ref: args.ref })
    if (!this.jsonEnabled()) {
      if (receipts.length === 0) this.log(args.ref ? `${args.ref} has not been published` : 'No version has been published')
      for (const r of receipts) {
        const size = r.shards.reduce((n, s) => n + s.size, 0)
        this.log(
          `${r.root}  ${r.target}  ${r.publishedAt}  ${r.shards.length} CAR shard${r.shards.length === 1 ? '' : 's'}, ${bytes(size)}`,
        )
      }
    }
    return receipts
  }
}
