import { Args, Flags } from '@oclif/core'
import { bytes, CairnCommand } from './_base.js'

export default class Publish extends CairnCommand {
  static override summary = 'Publish a version to a target: a folder of CARs, a Kubo node or IPFS Cluster, Storacha.'
  static override description =
    'Targets: dir:<path> (CAR files of at most --shard-size plus a block index; later versions add only the blocks the folder lacks), ' +
    'kubo:<rpc-url> (one streamed `dag/import` with pinned roots; CAIRN_KUBO_AUTH gives an Authorization for Cluster proxies), ' +
    'storacha[:<space-did>] (credentials from STORACHA_PRINCIPAL and STORACHA_PROOF, else from `cairn login`; service overrides ' +
    'STORACHA_SERVICE_URL, STORACHA_SERVICE_DID, STORACHA_RECEIPTS_URL). Transient failures are retried with backoff. ' +
    'The receipt is recorded in the store: see `cairn published`.'
  static override examples = [
    '<%= config.bin %> publish --to dir:./release-cars',
    '<%= config.bin %> publish v1 --to dir:/srv/cars --shard-size 50MiB',
    'CAIRN_KUBO_AUTH=user:secret <%= config.bin %> publish --to kubo:http://127.0.0.1:5001 --json',
    'STORACHA_PRINCIPAL=… STORACHA_PROOF=… <%= config.bin %> publish v1 --to storacha',
  ]
  static override args = { ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }) }
  static override flags = {
    to: Flags.string({ char: 't', summary: 'The target: dir:<path>, kubo:<rpc-url> or storacha[:<space-did>].', required: true }),
    'shard-size': Flags.string({ summary: 'Largest CAR shard, in bytes or with a unit (e.g. 100MiB), for targets that shard.' }),
  }

  async run() {
    const { args, flags } = await this.parse(Publish)
    const progress = this.progress()
    const { parseByteSize, publish } = await import('../src/publish.js')
    const receipt = await publish({
      dir: flags.dir,
      ref: args.ref,
      to: flags.to,
      shardSize: flags['shard-size'] === undefined ? undefined : parseByteSize(flags['shard-size']),
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
