import { Args } from '@oclif/core'
import { CairnCommand } from './_base.js'

export default class Anchors extends CairnCommand {
  static override summary = 'List the anchors `cairn anchor` recorded: chain, contract, block, time, sender.'
  static override description =
    'Every anchor receipt in the store (of one version, or of all), oldest block time first. They say what the chain confirmed when ' +
    'the anchor was sent; `cairn verify --anchored` checks them against the chain as it is now.'
  static override examples = ['<%= config.bin %> anchors', '<%= config.bin %> anchors v1', '<%= config.bin %> anchors HEAD --json']
  static override args = { ref: Args.string({ description: 'only this version (a CID, HEAD, HEAD~n or a tag); default: every version' }) }

  async run() {
    const { args, flags } = await this.parse(Anchors)
    const { anchors } = await import('../src/anchors/list.js')
    const receipts = await anchors({ dir: flags.dir, ref: args.ref })
    if (!this.jsonEnabled()) {
      if (receipts.length === 0) this.log(args.ref ? `${args.ref} has not been anchored` : 'No version has been anchored')
      for (const r of receipts)
        this.log(
          `${r.version}  chain ${r.chainId}  block ${r.blockNumber}  ${r.blockTime}  by ${r.sender}  contract ${r.contract}  tx ${r.txHash}`,
        )
    }
    return receipts
  }
}
