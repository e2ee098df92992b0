import { Args, Flags } from '@oclif/core'
import { bytes, CairnCommand, fromFlag } from './_base.js'

export default class Prove extends CairnCommand {
  static override summary = 'Write the small CAR that proves one file belongs to a release.'
  static override description =
    'The proof holds the version block, the blocks from the version through tree/ to the file (as /ipfs/<version>/tree/<path>?format=car&dag-scope=block ' +
    "returns them, HAMT shards included), and the shard index nodes down to the file's entry (size, rows, schema). Anyone can check it offline with " +
    '`cairn verify --proof proof.car <version> <path>`, without the data.'
  static override examples = [
    '<%= config.bin %> prove HEAD data/train-00001.parquet -o proof.car',
    '<%= config.bin %> prove bafy… data/a.csv -o a.proof.car --from http://127.0.0.1:8080 --json',
  ]
  static override args = {
    ref: Args.string({ description: 'a version CID, HEAD, HEAD~n or a tag', required: true }),
    path: Args.string({ description: "the file's path in the release", required: true }),
  }
  static override flags = {
    output: Flags.string({ char: 'o', summary: 'Where to write the proof CAR.', required: true }),
    from: fromFlag,
  }

  async run() {
    const { args, flags } = await this.parse(Prove)
    const { prove } = await import('../src/proofs/prove.js')
    const result = await prove({ dir: flags.dir, ref: args.ref, path: args.path, output: flags.output, from: flags.from })
    if (!this.jsonEnabled()) {
      this.log(
        `${result.output}: ${result.blocks} blocks, ${bytes(result.bytes)} prove ${result.path} (${result.cid}, ${bytes(result.size)}${result.rows === undefined ? '' : `, ${result.rows} rows`}) in ${result.version}`,
      )
    }
    return result
  }
}
