import { Args, Flags } from '@oclif/core'
import { CID } from '../src/cid.js'
import { CairnError } from '../src/errors.js'
import type { ProofReport } from '../src/proofs/check.js'
import type { VerifyReport } from '../src/verify.js'
import { bytes, CairnCommand, fromFlagOptions } from './_base.js'
import { verifyAnchoredCommand, verifyAnchoredFlags } from './_anchor.js'
import { EXIT } from './_errors.js'

export default class Verify extends CairnCommand {
  static override summary = 'Check a folder against a version, a CAR file block by block, or a proof that a file belongs to a release.'
  static override description =
    'With a folder: re-hashes every file and reports each missing, extra and modified file (and the card); exit 0 only when identical. ' +
    'With --car: checks every block of any CAR against its CID and that the DAG under the root (or each header root) is complete, ' +
    'naming the first bad or missing block. With --proof: checks offline that a proof CAR from `cairn prove` shows <path> belongs to ' +
    '<version CID>, and prints its CID, size and rows. Exit code 1 when a folder differs (or a proof names another file or version), ' +
    '5 when a CAR or a proof is damaged or incomplete.'
  static override examples = [
    '<%= config.bin %> verify',
    '<%= config.bin %> verify v1 ./copy-of-data --json',
    '<%= config.bin %> verify --car release.car',
    '<%= config.bin %> verify --car any.car --root bafy…',
    '<%= config.bin %> verify bafy… ./downloaded --from http://127.0.0.1:8080',
    '<%= config.bin %> verify --proof proof.car bafy… data/train.parquet',
    '<%= config.bin %> verify v1 --anchored --chain http://127.0.0.1:8545',
  ]
  static override args = {
    ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag (default HEAD)' }),
    dir: Args.directory({ description: 'the folder to check (default: the dataset itself)' }),
  }
  static override flags = {
    car: Flags.file({ summary: 'Check this CAR file instead of a folder.', exists: false }),
    root: Flags.string({ summary: 'With --car: the root whose DAG must be complete (default: the header roots).', dependsOn: ['car'] }),
    jobs: Flags.integer({
      char: 'j',
      summary: 'Threads that read and hash files (default: the number of CPUs).',
      min: 1,
      exclusive: ['car'],
    }),
    from: Flags.string({ ...fromFlagOptions, exclusive: ['car'] }),
    proof: Flags.file({
      summary: 'Check this proof CAR (from `cairn prove`) for <version CID> <path>, offline.',
      exists: false,
      exclusive: ['car', 'from', 'jobs'],
    }),
    ...verifyAnchoredFlags,
    'signed-by': Flags.string({
      summary:
        'Also check that the version is signed by this key (PEM text or file, key name, or IPNS name k51…), or covered by a signed descendant.',
      exclusive: ['car', 'proof'],
    }),
  }

  async run() {
    const { args, flags } = await this.parse(Verify)
    if (flags.proof !== undefined) return this.proof(flags.proof, args.ref, args.dir)
    if (flags.anchored) return verifyAnchoredCommand(args, flags, { json: this.jsonEnabled(), log: (l) => this.log(l) })
    const { verify } = await import('../src/verify.js')
    const progress = this.progress()
    let report: VerifyReport
    if (flags.car !== undefined) {
      if (args.dir !== undefined) throw new CairnError('USAGE', 'verify --car takes no folder')
      const root = flags.root ?? args.ref
      report = await verify({
        car: flags.car,
        root: root === undefined ? undefined : parseCid(root),
        onProgress: (p) => progress.update(`verify: ${p.blocks} blocks, ${bytes(p.bytes)}`),
      })
    } else {
      report = await verify({
        ref: args.ref,
        dir: args.dir,
        dataset: flags.dir,
        from: flags.from,
        jobs: flags.jobs,
        onProgress: (p) => progress.update(`verify: ${p.files}/${p.totalFiles} files, ${bytes(p.bytes)}/${bytes(p.totalBytes)}`),
      })
    }
    progress.done()
    if (flags['signed-by'] !== undefined) {
      const { verifySignedBy } = await import('../src/signing/check.js')
      report = { ...report, signatures: await verifySignedBy(report, flags['signed-by'], flags.dir ?? args.dir, flags.from) }
    }
    // a folder that differs from its version is a difference (1); a CAR that fails its check is damaged input (5)
    if (!report.ok) process.exitCode = report.kind === 'car' ? EXIT.integrity : EXIT.differences
    if (!this.jsonEnabled()) this.render(report)
    return report
  }

  private async proof(file: string, version: string | undefined, path: string | undefined): Promise<ProofReport> {
    if (version === undefined || path === undefined) throw new CairnError('USAGE', 'verify --proof takes <version CID> <path>')
    const { verifyProof } = await import('../src/proofs/check.js')
    const report = await verifyProof(file, parseCid(version), path)
    if (!this.jsonEnabled()) {
      this.log(
        `ok: ${report.path} is in ${report.version}: ${report.cid}, ${report.size} B${report.rows === undefined ? '' : `, ${report.rows} rows`} (${report.format})`,
      )
    }
    return report
  }

  private render(report: VerifyReport): void {
    if (report.kind === 'car') {
      for (const p of report.problems) this.log(`${p.kind}: ${p.message}`)
      this.log(
        report.ok
          ? `ok: ${report.blocks} blocks, ${bytes(report.bytes)}, DAG complete under ${report.checkedRoots.join(', ')}`
          : `FAILED: ${report.problems.length} problem(s)`,
      )
      if (report.history) this.log(historyLine(report.history))
      return
    }
    for (const p of report.missing) this.log(`missing   ${p}`)
    for (const p of report.extra) this.log(`extra     ${p}`)
    for (const m of report.modified)
      this.log(`modified  ${m.path} (expected ${m.expected.cid}, ${m.expected.size} B; found ${m.actual.cid ?? '-'}, ${m.actual.size} B)`)
    if (report.card !== 'same') this.log(`card      cairn.json is ${report.card}`)
    const sig = report.signatures
    if (sig)
      this.log(
        sig.status === 'signed'
          ? `signed    by ${sig.signer.ipnsName ?? sig.signer.keyId}`
          : `signed    covered by the signature of ${sig.coveredBy} (${sig.depth} generation(s) later), by ${sig.signer.ipnsName ?? sig.signer.keyId}`,
      )
    if (report.partial) {
      const globs = report.partial.selections
        .map((s) => [...s.include.map((g) => `+${g}`), ...s.exclude.map((g) => `-${g}`)].join(' '))
        .join('; ')
      this.log(`partial   a partial clone (${globs}): ${report.partial.leftOut} file(s) left out were not checked`)
    }
    this.log(
      report.ok
        ? `ok: ${report.checked} files, ${bytes(report.bytes)} match ${report.version}`
        : `FAILED: ${report.missing.length} missing, ${report.extra.length} extra, ${report.modified.length} modified against ${report.version}`,
    )
  }
}

function historyLine(h: { versions: number; next?: string }): string {
  if (h.versions === 0 && h.next)
    return `history: not included (the parent ${h.next} is not in the CAR: a release carries its own DAG only)`
  if (h.next) return `history: ${h.versions} ancestor(s) checked; not included from ${h.next}`
  return h.versions === 0 ? 'history: none (a first version)' : `history: ${h.versions} ancestor(s) checked, back to the first version`
}

function parseCid(text: string): CID {
  try {
    return CID.parse(text)
  } catch {
    throw new CairnError('USAGE', `${JSON.stringify(text)} is not a CID`)
  }
}
