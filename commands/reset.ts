import { Args, Flags } from '@oclif/core'
import type { HeadMove } from '../src/history/reflog.js'
import type { ResetResult } from '../src/history/reset.js'
import { CairnCommand } from './_base.js'

export default class Reset extends CairnCommand {
  static override summary = 'Move HEAD to another version, keeping the files; every move is recorded and can be undone.'
  static override description =
    'HEAD moves to the version (which must be in the store); the folder is not touched, so `cairn status` then shows the folder ' +
    'against that version and the next build makes its child. Every move of HEAD (builds and resets) is appended to ' +
    '.cairn/logs/HEAD: --list shows them, --undo moves HEAD back to where the last move took it from.'
  static override examples = [
    '<%= config.bin %> reset HEAD~1',
    '<%= config.bin %> reset v1',
    '<%= config.bin %> reset --list',
    '<%= config.bin %> reset --undo',
  ]
  static override args = { ref: Args.string({ description: 'the version HEAD moves to: a CID, HEAD~n or a tag' }) }
  static override flags = {
    undo: Flags.boolean({ summary: 'Move HEAD back to where the last recorded move took it from.', exclusive: ['list'] }),
    list: Flags.boolean({ summary: 'List the recorded moves of HEAD, newest first.' }),
    limit: Flags.integer({ char: 'n', summary: 'With --list: at most this many moves.', min: 1 }),
  }

  async run(): Promise<ResetResult | HeadMove[]> {
    const { args, flags } = await this.parse(Reset)
    if (flags.list) {
      const { headLog } = await import('../src/history/reset.js')
      const moves = await headLog({ dir: flags.dir, limit: flags.limit })
      if (!this.jsonEnabled()) {
        for (const m of moves) this.log(`${m.at}  ${m.op.padEnd(5)}  ${m.to}${m.message ? `  ${m.message}` : ''}`)
      }
      return moves
    }
    const { reset } = await import('../src/history/reset.js')
    const result = await reset({ dir: flags.dir, ref: args.ref, undo: flags.undo })
    if (!this.jsonEnabled()) {
      this.logToStderr(`HEAD was ${result.from ?? '(none)'}`)
      this.log(result.to.toString())
    }
    return result
  }
}
