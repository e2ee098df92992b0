import { Flags } from '@oclif/core'
import { signingFlags } from '../_anchor.js'
import { CairnCommand } from '../_base.js'

export default class AnchorDeploy extends CairnCommand {
  static override summary = "Deploy cairn's anchor contract on an EVM chain and record its address in the store."
  static override description =
    'Deploys the contract built from src/anchors/CairnAnchor.sol (solc-js; the bytecode is checked on chain after deployment), ' +
    'signed with CAIRN_ETH_KEY or --keystore, and records the address for the chain id: later `cairn anchor` and ' +
    '`cairn verify --anchored` on that chain use it. Deploying again replaces the record (old anchors stay valid).'
  static override examples = [
    'CAIRN_ETH_KEY=0x… <%= config.bin %> anchor deploy --chain http://127.0.0.1:8545',
    'CAIRN_ETH_KEY=0x… <%= config.bin %> anchor deploy --chain https://sepolia.base.example --chain-id 84532 --json',
  ]
  static override flags = {
    chain: Flags.string({
      summary: 'The chain: an EVM JSON-RPC endpoint, http(s)://host:port (e.g. anvil at http://127.0.0.1:8545).',
      required: true,
    }),
    ...signingFlags,
  }

  async run() {
    const { flags } = await this.parse(AnchorDeploy)
    const { deployAnchorContract } = await import('../../src/anchors/deploy.js')
    const record = await deployAnchorContract({
      dir: flags.dir,
      chain: flags.chain,
      chainId: flags['chain-id'],
      confirmations: flags.confirmations,
      timeoutMs: flags.timeout * 1000,
      keystore: flags.keystore,
    })
    if (!this.jsonEnabled()) {
      this.log(`anchor contract ${record.address} on chain ${record.chainId}`)
      this.log(`  deployed by ${record.deployer} in block ${record.blockNumber}, tx ${record.txHash}`)
    }
    return record
  }
}
