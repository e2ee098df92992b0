import { Flags } from '@oclif/core'
import type { StatusResult } from '../src/worktree/status.js'
import { CairnCommand } from './_base.js'
import { EXIT } from './_errors.js'
import { renderShardChanges } from './_worktree.js'

export default class Status extends CairnCommand {
  static override summary = 'Show what changed in the dataset folder since HEAD: shards added, removed, modified, renamed.'
  static override description =
    'Compares the folder (after .cairnignore) with HEAD as the next build would: files whose stamp is unchanged are known ' +
    'from the stat cache without being read, others are hashed; nothing is written. Exits 0 whether or not the folder ' +
    'is clean, unless --exit-code is given (then 1 when it is not).'
  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status --rows',
    '<%= config.bin %> status --json',
    '<%= config.bin %> status --exit-code || cairn build -m "update"',
  ]
  static override flags = {
    rows: Flags.boolean({ summary: 'Also compare the rows of modified Parquet, Arrow, JSONL and CSV shards.' }),
    limit: Flags.integer({ summary: 'With --rows: sample rows shown per kind and shard.', default: 5, min: 0 }),
    'exit-code': Flags.boolean({ summary: 'Exit with 1 when the folder differs from HEAD, 0 when it does not.' }),
  }

  async run(): Promise<StatusResult> {
    const { flags } = await this.parse(Status)
    const { status } = await import('../src/worktree/status.js')
    const result = await status({ dir: flags.dir, rows: flags.rows, limit: flags.limit })
    if (!this.jsonEnabled()) {
      this.log(result.version ? `against ${result.version}` : 'no version yet (every file is new)')
      if (result.clean) this.log('nothing changed')
      else for (const line of renderShardChanges(result)) this.log(line)
      for (const s of result.skipped) this.logToStderr(`skipped ${s.path}: ${s.reason}`)
    }
    if (flags['exit-code'] && !result.clean) process.exitCode = EXIT.differences
    return result
  }
}
