import { Args, Flags } from '@oclif/core'
import { CairnError } from '../src/errors.js'
import { chainFlag, signingFlags } from './_anchor.js'
import { CairnCommand } from './_base.js'

export default class Anchor extends CairnCommand {
  static override summary = "Anchor a version on an EVM chain: its digest in a contract's log, a public time and an append-only trail."
  static override description =
    'Calls anchor(dataset, version, parent, sequence) on the anchor contract (see `cairn anchor deploy`): version and parent are the ' +
    'sha2-256 digests inside the version CIDs, dataset the sha2-256 of the dataset name. Signs with the private key in CAIRN_ETH_KEY ' +
    '(or --keystore with CAIRN_ETH_KEYSTORE_PASSWORD; never printed), waits for --confirmations and records the receipt in the store ' +
    '(see `cairn anchors`, check with `cairn verify --anchored`). --calldata prints the ABI-encoded call and the digests without sending, ' +
    'for anchoring through your own contract, multisig or oracle.'
  static override examples = [
    'CAIRN_ETH_KEY=0x… <%= config.bin %> anchor --chain http://127.0.0.1:8545',
    'CAIRN_ETH_KEY=0x… <%= config.bin %> anchor v1 --chain https://base-rpc.example --chain-id 8453 --contract 0x… --confirmations 3',
    '<%= config.bin %> anchor v2 --calldata --json',
  ]
  static override args = { ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }) }
  static override flags = {
    chain: chainFlag,
    contract: Flags.string({ summary: 'The anchor contract (default: the one `cairn anchor deploy` recorded for the chain).' }),
    calldata: Flags.boolean({ summary: 'Print the call (ABI-encoded data and the 32-byte digests) without sending it: no chain, no key.' }),
    'dataset-name': Flags.string({
      summary: "The name hashed into the anchor's dataset (default: the version's name); an IPNS name as k51….",
    }),
    again: Flags.boolean({ summary: 'Anchor even if the store already holds an anchor of this version on this chain and contract.' }),
    ...signingFlags,
  }

  async run() {
    const { args, flags } = await this.parse(Anchor)
    const { anchor, anchorCalldataFor } = await import('../src/anchors/anchor.js')
    if (flags.calldata) {
      const call = await anchorCalldataFor({ dir: flags.dir, ref: args.ref, datasetName: flags['dataset-name'], contract: flags.contract })
      if (!this.jsonEnabled()) {
        this.log(`${call.function} on ${call.to ?? '(your contract)'}`)
        this.log(`  dataset   ${call.args.dataset}  (sha2-256 of ${JSON.stringify(call.datasetName)})`)
        this.log(`  version   ${call.args.version}  (${call.version})`)
        this.log(`  parent    ${call.args.parent}  (${call.parentVersion ?? 'none'})`)
        this.log(`  sequence  ${call.args.sequence}`)
        this.log(`data ${call.data}`)
      }
      return call
    }
    if (flags.chain === undefined)
      throw new CairnError('USAGE', '--chain <rpc-url> is required to send an anchor (or pass --calldata to print the call unsent)')
    const progress = this.progress()
    const result = await anchor({
      dir: flags.dir,
      ref: args.ref,
      chain: flags.chain,
      chainId: flags['chain-id'],
      contract: flags.contract,
      datasetName: flags['dataset-name'],
      confirmations: flags.confirmations,
      timeoutMs: flags.timeout * 1000,
      again: flags.again,
      keystore: flags.keystore,
      onProgress: (p) => progress.update(`anchor: ${p.message}`, true),
    })
    progress.done()
    if (!this.jsonEnabled()) {
      this.log(`${result.version} anchored on chain ${result.chainId} by ${result.contract}`)
      this.log(
        `  block ${result.blockNumber} (${result.blockHash}) at ${result.blockTime}, ${result.confirmations} confirmation${result.confirmations === 1 ? '' : 's'}`,
      )
      this.log(`  tx ${result.txHash}, log ${result.logIndex}, sender ${result.sender}`)
    }
    return result
  }
}
