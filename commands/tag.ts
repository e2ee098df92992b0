import { Args, Flags } from '@oclif/core'
import { CairnCommand } from './_base.js'

export default class Tag extends CairnCommand {
  static override summary = 'Name a version, or list the tags.'
  static override examples = [
    '<%= config.bin %> tag v1',
    '<%= config.bin %> tag v0 HEAD~1',
    '<%= config.bin %> tag',
    '<%= config.bin %> tag v1 --force',
    '<%= config.bin %> tag -d v1',
  ]
  static override args = {
    name: Args.string({ description: 'the tag name (omit to list tags)' }),
    ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }),
  }
  static override flags = {
    force: Flags.boolean({ char: 'f', summary: 'Move the tag if it exists.' }),
    delete: Flags.boolean({ char: 'd', summary: 'Delete the tag (its version stays until `cairn gc`).' }),
  }

  async run() {
    const { args, flags } = await this.parse(Tag)
    const { deleteTag, tag, tags } = await import('../src/tag.js')
    if (args.name === undefined) {
      const list = await tags({ dir: flags.dir })
      if (!this.jsonEnabled())
        for (const t of list) this.log(`${t.name}  ${t.cid}  ${t.created ?? '(not in the store)'}  ${t.message ?? ''}`.trimEnd())
      return list
    }
    if (flags.delete) {
      const deleted = await deleteTag({ dir: flags.dir, name: args.name })
      if (!this.jsonEnabled()) this.log(`deleted ${deleted.name} (was ${deleted.cid})`)
      return deleted
    }
    const result = await tag({ dir: flags.dir, name: args.name, ref: args.ref, force: flags.force })
    if (!this.jsonEnabled()) this.log(`${result.name}  ${result.cid}`)
    return result
  }
}
