import { Args, Flags } from '@oclif/core'
import { isCairnError } from '../src/errors.js'
import { CairnCommand, fromFlag } from './_base.js'

export default class Cat extends CairnCommand {
  static override enableJsonFlag = false
  static override summary = 'Write one file of a release to stdout, every block verified.'
  static override description =
    'The argument is <cid>/<path>: for a cairn version the path is a shard path looked up in its shard index; for a UnixFS directory it is ' +
    'resolved name by name (HAMT directories included); a bare file CID needs no path. Sources as for `cairn clone`. ' +
    'Bytes are written as their blocks are verified: a failure midway ends the output early with an error and a non-zero exit code.'
  static override examples = [
    '<%= config.bin %> cat bafy…/train/part-0.parquet --from http://127.0.0.1:8080 > part-0.parquet',
    '<%= config.bin %> cat bafy…/README.md --from release.car',
  ]
  static override args = { cid: Args.string({ description: '<cid> or <cid>/<path>', required: true }) }
  static override flags = {
    from: fromFlag,
    timeout: Flags.integer({ summary: 'Seconds to wait for a gateway to answer (default 30).', min: 1 }),
  }

  async run() {
    const { args, flags } = await this.parse(Cat)
    try {
      await this.cat(args.cid, flags)
    } catch (e) {
      // the reader of stdout went away (`cairn cat … | head`): stop quietly, as a SIGPIPE would
      if (isCairnError(e, 'IO') && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'EPIPE') {
        process.exitCode = 141
        return
      }
      throw e
    }
  }

  private async cat(cid: string, flags: { from?: string[]; timeout?: number }): Promise<void> {
    const { cat } = await import('../src/cat.js')
    await cat({
      cid,
      from: flags.from,
      output: process.stdout,
      sourceOptions: flags.timeout === undefined ? undefined : { timeoutMs: flags.timeout * 1000, idleTimeoutMs: flags.timeout * 1000 },
      onFailure: (f) => process.stderr.write(`warning: ${f.message} (trying the next source)\n`),
    })
  }
}
