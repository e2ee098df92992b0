import { Args, Flags } from '@oclif/core'
import { CairnCommand } from './_base.js'

export default class Sign extends CairnCommand {
  static override summary = 'Sign a version: a Sigstore bundle (DSSE, in-toto Statement v1) kept beside the release.'
  static override description =
    "The statement's subject is the version (digest: the sha256 inside its CID); its predicate is the cairn release predicate " +
    '(https://cairn.dev/attestation/release/v1: dataset, version, parent, card, index, tree, totals, provenance, publisher). ' +
    'The bundle is kept in .cairn/signatures/<version>/<key-id>.sigstore.json, never inside the version (its CID does not change); ' +
    '`publish` carries it to dir: and Kubo targets, `serve` serves it, `clone` fetches it, `verify --signed-by` checks it. ' +
    'A release may carry signatures by several keys. --oms also writes an OpenSSF Model Signing v1.0 signature of the files.'
  static override examples = [
    '<%= config.bin %> sign',
    '<%= config.bin %> sign v1 --key curator -o v1.sigstore.json --json',
    'CAIRN_KEY="$(cat ci-key.pem)" <%= config.bin %> sign HEAD',
    '<%= config.bin %> sign --oms --oms-key oms --oms-output ../model.sig',
  ]
  static override args = { ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag (default HEAD)' }) }
  static override flags = {
    key: Flags.string({ char: 'k', summary: 'The Ed25519 key to sign with (a name; default: CAIRN_KEY, else default).' }),
    output: Flags.string({ char: 'o', summary: 'Also write the bundle to this file.' }),
    oms: Flags.boolean({ summary: 'Also write an OpenSSF Model Signing v1.0 signature of the files (ECDSA P-256; see --oms-key).' }),
    'oms-key': Flags.string({ summary: 'With --oms: the ECDSA P-256 key (a name; default oms).', dependsOn: ['oms'] }),
    'oms-output': Flags.string({
      summary: 'With --oms: where the signature goes (default .cairn/oms/<version>.sig; model_signing expects model.sig).',
      dependsOn: ['oms'],
    }),
  }

  async run() {
    const { args, flags } = await this.parse(Sign)
    const { sign } = await import('../src/signing/sign.js')
    const result = await sign({
      dir: flags.dir,
      ref: args.ref,
      key: flags.key,
      output: flags.output,
      omsKey: flags.oms ? (flags['oms-key'] ?? 'oms') : undefined,
      omsOutput: flags['oms-output'],
    })
    if (!this.jsonEnabled()) {
      this.log(`${result.version} signed by ${result.signer.key} (key id ${result.signer.keyId.slice(0, 16)}…)`)
      this.log(`  kept in ${result.kept}`)
      if (result.output) this.log(`  written to ${result.output}`)
      if (result.oms) this.log(`  OpenSSF Model Signing signature of ${result.oms.files} files: ${result.oms.file}`)
    }
    return result
  }
}
