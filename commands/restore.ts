import { Args, Flags } from '@oclif/core'
import type { RestoreResult } from '../src/worktree/restore.js'
import { CairnCommand, fromFlag } from './_base.js'

export default class Restore extends CairnCommand {
  static override summary = 'Write files of a version back into the dataset folder, verified, one file at a time atomically.'
  static override description =
    'Every block comes from the store (or --from for blocks it lacks) and is checked against its CID; each file is written ' +
    'to a temporary name and renamed over the old one when complete. Without paths the whole version is restored, its card ' +
    'included; under the paths given, files the version lacks are removed. Files that differ from HEAD or that HEAD lacks ' +
    '(uncommitted changes) are never overwritten or removed unless --force: the check runs before anything is written. ' +
    'HEAD does not move (see `cairn reset`).'
  static override examples = [
    '<%= config.bin %> restore HEAD train/part-000.jsonl',
    '<%= config.bin %> restore v1',
    '<%= config.bin %> restore HEAD~2 train/ --force',
    '<%= config.bin %> restore v1 --from ../release-v1.car',
  ]
  static override strict = false
  static override args = {
    ref: Args.string({ description: 'the version to restore from: a CID, HEAD, HEAD~n or a tag', required: true }),
    paths: Args.string({ description: 'files or folders to restore (default: all of the version); cairn.json is the card' }),
  }
  static override flags = {
    force: Flags.boolean({ summary: 'Overwrite or remove files with uncommitted changes.' }),
    from: fromFlag,
  }

  async run(): Promise<RestoreResult> {
    const { args, argv, flags } = await this.parse(Restore)
    const paths = (argv as string[]).slice(1)
    const progress = this.progress()
    const { restore } = await import('../src/worktree/restore.js')
    const result = await restore({
      dir: flags.dir,
      ref: args.ref,
      paths,
      force: flags.force,
      from: flags.from,
      onProgress: (p) => progress.update(`restore: ${p.files}/${p.totalFiles} ${p.path}`),
    })
    progress.done()
    if (!this.jsonEnabled()) {
      for (const p of result.restored) this.log(`restored ${p}`)
      for (const p of result.removed) this.log(`removed ${p}`)
      if (result.card === 'restored') this.log('restored cairn.json')
      this.logToStderr(
        `${result.restored.length} restored, ${result.removed.length} removed, ${result.unchanged} already as in ${result.version}`,
      )
    }
    return result
  }
}
