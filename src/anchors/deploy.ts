/**
 * `deployAnchorContract`: put the anchor contract on a chain and record its address in the store, so
 * that later anchors on that chain find it.
 */
import { getAddress } from 'viem'
import { withDataset } from '../dataset.js'
import { CairnError } from '../errors.js'
import { call, chainError, openChain, walletFor } from './chain.js'
import { abi, bytecode, compiler, deployedBytecode } from './contract.js'
import { loadAccount } from './key.js'
import { writeContractRecord, type ContractRecord } from './receipts.js'

/** What {@link deployAnchorContract} is told. */
export interface DeployOptions {
  /** The dataset folder whose store records the address (default: the current folder). */
  readonly dir?: string
  /** The chain's JSON-RPC endpoint. */
  readonly chain: string
  /** Refuse unless the endpoint is this chain. */
  readonly chainId?: number
  /** Blocks to wait for before recording (default 1). */
  readonly confirmations?: number
  readonly timeoutMs?: number
  readonly keystore?: string
  readonly env?: NodeJS.ProcessEnv
  readonly pollingIntervalMs?: number
}

/**
 * Deploys the shipped anchor contract (src/anchors/CairnAnchor.sol, compiled by solc-js), checks that
 * the code on chain is exactly the shipped runtime bytecode, and records the address for the chain id
 * in `.cairn/anchors/contracts/<chain id>.json` (replacing an earlier one). Throws as `anchor` does.
 */
export async function deployAnchorContract(options: DeployOptions): Promise<ContractRecord> {
  const env = options.env ?? process.env
  const root = await withDataset(options.dir, async (dataset) => dataset.root)
  const account = await loadAccount({ keystore: options.keystore, env })
  const chain = await openChain({ rpc: options.chain, env, pollingIntervalMs: options.pollingIntervalMs })
  if (options.chainId !== undefined && options.chainId !== chain.chainId)
    throw new CairnError(
      'USAGE',
      `${chain.shown} is chain ${chain.chainId}, not chain ${options.chainId} as --chain-id says; nothing was sent`,
    )
  const wallet = walletFor(chain, options.chain, account, env)
  const what = `deploy the anchor contract on chain ${chain.chainId}`
  const txHash = await call(chain, what, () => wallet.deployContract({ abi, bytecode }), account.address)
  let receipt
  try {
    receipt = await chain.client.waitForTransactionReceipt({
      hash: txHash,
      confirmations: options.confirmations ?? 1,
      timeout: options.timeoutMs ?? 300_000,
    })
  } catch (e) {
    throw chainError(chain, `wait for ${txHash}`, e)
  }
  if (receipt.status !== 'success' || !receipt.contractAddress)
    throw new CairnError('ANCHOR_FAILED', `The deployment ${txHash} failed on chain ${chain.chainId}; nothing was recorded`, {
      subject: txHash,
    })
  const address = getAddress(receipt.contractAddress)
  const code = await call(chain, `read the code at ${address}`, () => chain.client.getCode({ address }))
  if (code?.toLowerCase() !== deployedBytecode.toLowerCase())
    throw new CairnError('ANCHOR_FAILED', `The code at ${address} is not the anchor contract cairn deployed; nothing was recorded`, {
      subject: address,
    })
  const record: ContractRecord = {
    chainId: chain.chainId,
    address,
    txHash,
    blockNumber: Number(receipt.blockNumber),
    blockHash: receipt.blockHash,
    deployer: account.address,
    deployedAt: new Date().toISOString(),
    compiler,
  }
  await writeContractRecord(root, record)
  return record
}
