import { Args, Flags } from '@oclif/core'
import { check, type CheckReport } from '../src/index.js'
import { CairnCommand, fromFlag } from './_base.js'
import { EXIT } from './_errors.js'

export default class Check extends CairnCommand {
  static override summary = 'Check that every block of a release can be had from each source or published target.'
  static override description =
    'Walks the release (the version and its own DAG) from the dataset and asks each place about every block: a gateway with ' +
    'HEAD /ipfs/<cid>?format=raw, a dir: folder through its block index (each block read and checked), a CAR file or dataset folder ' +
    'by reading it, a Kubo node with block/stat (offline). Prints, per place, the shards that are not complete there (missing ' +
    'blocks, or blocks the place did not answer for) and a summary. A few questions are in flight per place; progress goes to stderr. ' +
    'Exit code 0 only when every place holds the whole release, 1 otherwise.'
  static override examples = [
    '<%= config.bin %> check --from https://trustless-gateway.link',
    '<%= config.bin %> check v2 --to dir:/srv/cars --to kubo:http://127.0.0.1:5001',
    '<%= config.bin %> check --from http://127.0.0.1:8080 --json',
  ]
  static override args = { ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }) }
  static override flags = {
    from: fromFlag,
    to: Flags.string({
      char: 't',
      summary: 'A published target to check (repeatable): dir:<path> or kubo:<rpc-url>.',
      multiple: true,
      multipleNonGreedy: true,
    }),
    jobs: Flags.integer({ char: 'j', summary: 'Questions in flight per place (default 8).', min: 1 }),
    timeout: Flags.integer({ summary: 'Seconds to wait for a gateway or node to answer one question (default 30).', min: 1 }),
  }

  async run() {
    const { args, flags } = await this.parse(Check)
    const progress = this.progress()
    const report = await check({
      dir: flags.dir,
      ref: args.ref,
      from: flags.from,
      to: flags.to,
      concurrency: flags.jobs,
      timeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
      onProgress: (p) => progress.update(`check: ${p.place}: ${p.asked}/${p.total} blocks`),
    })
    progress.done()
    if (!report.ok) process.exitCode = EXIT.differences
    if (!this.jsonEnabled()) this.render(report)
    return report
  }

  private render(report: CheckReport): void {
    this.log(`release ${report.version}: ${report.blocks} blocks, ${report.shards} shards`)
    const rows: string[][] = [['place', 'shard', 'blocks', 'missing', 'unreachable']]
    for (const p of report.places) {
      for (const s of p.shards) rows.push([p.place, s.path, String(s.blocks), String(s.missing), String(s.unreachable)])
    }
    if (rows.length > 1) {
      const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
      for (const r of rows) this.log(r.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  '))
    }
    for (const p of report.places) {
      const state = p.complete
        ? 'complete'
        : p.unreachableBlocks > 0 && p.missingBlocks === 0
          ? `unreachable (${p.unreachableBlocks} blocks not answered${p.error ? `: ${p.error}` : ''})`
          : `INCOMPLETE: ${p.missingBlocks} missing, ${p.unreachableBlocks} unreachable block(s) in ${p.shards.length} shard(s)` +
            (p.error ? ` (${p.error})` : '')
      this.log(`${p.place}: ${state}`)
    }
  }
}
