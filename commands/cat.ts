import { Args, Flags } from '@oclif/core'
import { CairnError, isCairnError } from '../src/errors.js'
import type { CatResult } from '../src/cat.js'
import { CairnCommand, fromFlag } from './_base.js'
import { limitsFrom, maxFileBytesFlag } from './_limits.js'

export default class Cat extends CairnCommand {
  static override summary = 'Write one file of a release to stdout (or a file), every block verified.'
  static override description =
    'The argument is <cid>/<path>, or inside a dataset (or with -C) <ref>:<path> as git writes it (HEAD:README.md, v2:train/part-0.parquet): ' +
    'for a cairn version the path is a shard path looked up in its shard index; for a UnixFS directory it is resolved name by name ' +
    '(HAMT directories included); a bare file CID needs no path. The dataset’s own store is read first; other sources (--from, as for ' +
    '`cairn clone`; without --from the public gateways) only for blocks it lacks. Bytes are written as their blocks are verified: a failure ' +
    'midway ends the output early with an error and a non-zero exit code. With -o the file appears only when complete.'
  static override examples = [
    '<%= config.bin %> cat HEAD:README.md',
    '<%= config.bin %> cat v2:train/part-000.parquet -o part-000.parquet --json',
    '<%= config.bin %> cat bafy…/train/part-0.parquet --from http://127.0.0.1:8080 > part-0.parquet',
    '<%= config.bin %> cat bafy…/README.md --from release.car',
  ]
  static override args = { cid: Args.string({ description: '<cid>[/<path>], or <ref>:<path> in a dataset', required: true }) }
  static override flags = {
    from: fromFlag,
    output: Flags.string({ char: 'o', summary: 'The file to write (default: stdout).' }),
    timeout: Flags.integer({ summary: 'Seconds to wait for a gateway to answer (default 30).', min: 1 }),
    'max-file-bytes': maxFileBytesFlag,
  }

  async run(): Promise<CatResult | undefined> {
    const { args, flags } = await this.parse(Cat)
    // oclif rethrows any error of stdout but EPIPE, as an uncaught exception (a stack trace, exit 1):
    // the write that failed (a full disk) reaches cat, which reports it as IO
    process.stdout.removeAllListeners('error')
    process.stdout.on('error', () => {})
    if (flags.output === undefined && this.jsonEnabled())
      throw new CairnError('USAGE', '--json needs -o: the file itself would go to stdout', { hint: 'cairn cat <address> -o <file> --json' })
    const { cat } = await import('../src/cat.js')
    try {
      const result = await cat({
        cid: args.cid,
        dir: flags.dir,
        findDataset: true,
        from: flags.from,
        output: flags.output ?? process.stdout,
        limits: limitsFrom(flags),
        sourceOptions: flags.timeout === undefined ? undefined : { timeoutMs: flags.timeout * 1000, idleTimeoutMs: flags.timeout * 1000 },
        onFailure: (f) => process.stderr.write(`warning: ${f.message} (trying the next source)\n`),
      })
      if (flags.output !== undefined && !this.jsonEnabled()) this.logToStderr(`${result.cid}  ${result.size} B → ${result.file}`)
      return result
    } catch (e) {
      // the reader of stdout went away (`cairn cat … | head`): stop quietly, as a SIGPIPE would
      if (isCairnError(e, 'IO') && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'EPIPE') {
        process.exitCode = 141
        return
      }
      throw e
    }
  }
}
