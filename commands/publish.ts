import { Args, Flags } from '@oclif/core'
import { parseByteSize, parseHistory, publish } from '../src/index.js'
import { bytes, CairnCommand, fromFlag } from './_base.js'

export default class Publish extends CairnCommand {
  static override summary = 'Publish a release to a target: a folder of CARs, a Kubo node or IPFS Cluster, Storacha (legacy).'
  static override description =
    'Targets: dir:<path> (CAR files of at most --shard-size plus a block index; later versions add only the blocks the folder lacks), ' +
    'kubo:<rpc-url> (sends only the blocks the node lacks, known from earlier receipts and asked of the node, in one streamed `dag/import`, ' +
    'then pins the release without its parent; CAIRN_KUBO_AUTH gives an Authorization for Cluster proxies), ' +
    'storacha[:<space-did>] (legacy: the Storacha service stopped taking new uploads in May 2026; credentials from STORACHA_PRINCIPAL and STORACHA_PROOF, else from `cairn login`; service overrides ' +
    'STORACHA_SERVICE_URL, STORACHA_SERVICE_DID, STORACHA_RECEIPTS_URL). Transient failures are retried with backoff. ' +
    'A publish sends the release (the version and its own DAG); --history adds ancestors. In a clone, blocks the store lacks are read ' +
    "from the clone's files, checked against their CIDs. The receipt is recorded in the store: see `cairn published`."
  static override examples = [
    '<%= config.bin %> publish --to dir:./release-cars',
    '<%= config.bin %> publish v1 --to dir:/srv/cars --shard-size 50MiB',
    'CAIRN_KUBO_AUTH=user:secret <%= config.bin %> publish --to kubo:http://127.0.0.1:5001 --json',
    'STORACHA_PRINCIPAL=… STORACHA_PROOF=… <%= config.bin %> publish v1 --to storacha',
  ]
  static override args = { ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }) }
  static override flags = {
    to: Flags.string({
      char: 't',
      summary: 'The target: dir:<path>, kubo:<rpc-url> or storacha[:<space-did>] (legacy: no new uploads since May 2026).',
      required: true,
    }),
    'shard-size': Flags.string({ summary: 'Largest CAR shard, in bytes or with a unit (e.g. 100MiB), for targets that shard.' }),
    history: Flags.string({ summary: 'Also publish ancestors: all, or how many (default: none, the release alone).' }),
    from: fromFlag,
  }

  async run() {
    const { args, flags } = await this.parse(Publish)
    const progress = this.progress()
    const receipt = await publish({
      dir: flags.dir,
      ref: args.ref,
      to: flags.to,
      shardSize: flags['shard-size'] === undefined ? undefined : parseByteSize(flags['shard-size']),
      history: parseHistory(flags.history),
      from: flags.from,
      onProgress: (p) => progress.update(`publish: ${p.message ?? `${p.shards} shards, ${bytes(p.bytes)}`}`, p.message !== undefined),
    })
    progress.done()
    if (!this.jsonEnabled()) {
      const size = receipt.shards.reduce((n, s) => n + s.size, 0)
      this.log(`${receipt.root} published to ${receipt.target}`)
      this.log(
        `  ${receipt.shards.length} CAR shard${receipt.shards.length === 1 ? '' : 's'} (${bytes(size)}), ${receipt.newBlocks} new blocks (${bytes(receipt.newBytes)})`,
      )
      for (const s of receipt.shards) this.log(`  ${s.file ?? s.cid?.toString() ?? '(shard)'}  ${bytes(s.size)}`)
    }
    return receipt
  }
}
