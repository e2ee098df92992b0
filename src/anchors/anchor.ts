/**
 * `anchor`: write a version's digest to the anchor contract on an EVM chain, wait for the
 * confirmations asked for, and record the receipt; `anchorCalldata`: the same call, unsent.
 */
import { parseEventLogs, WaitForTransactionReceiptTimeoutError, type Log } from 'viem'
import type { CID } from '../cid.js'
import { withDataset } from '../dataset.js'
import { CairnError } from '../errors.js'
import { call, chainError, openChain, walletFor } from './chain.js'
import { abi, ANCHOR_FUNCTION, ANCHOR_SELECTOR, anchorCalldata, assertHasCode, contractFor, parseAddress } from './contract.js'
import type { Hex } from './digest.js'
import { loadAccount } from './key.js'
import { prepareAnchor } from './prepare.js'
import { readReceipts, writeReceipt, type AnchorArgs, type AnchorReceipt } from './receipts.js'

/** What {@link anchor} is told. */
export interface AnchorOptions {
  /** The dataset folder or a folder inside it (default: the current folder). */
  readonly dir?: string
  /** The version (default `HEAD`). */
  readonly ref?: string
  /** The chain's JSON-RPC endpoint (http or https URL). */
  readonly chain: string
  /** Refuse unless the endpoint is this chain (a guard against anchoring on the wrong network). */
  readonly chainId?: number
  /** The anchor contract (default: the one `anchor deploy` recorded for the chain). */
  readonly contract?: string
  /** The name whose sha2-256 is the anchor's `dataset` (default: the version's name); an IPNS name as `k51…`. */
  readonly datasetName?: string
  /** Blocks, counting the anchor's own, to wait for before recording (default 1). */
  readonly confirmations?: number
  /** How long to wait for them, in ms (default 300 000). */
  readonly timeoutMs?: number
  /** Anchor even when the store already holds a receipt of this version on this chain and contract. */
  readonly again?: boolean
  /** A keystore file, used when `CAIRN_ETH_KEY` is not set. */
  readonly keystore?: string
  /** Where the key, the keystore password and retry settings are read (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv
  /** How often to poll the chain, in ms (default 1000). */
  readonly pollingIntervalMs?: number
  readonly onProgress?: (progress: AnchorProgress) => void
}

/** A step of {@link anchor}. */
export interface AnchorProgress {
  readonly stage: 'sent' | 'mined' | 'confirmed'
  readonly txHash: Hex
  readonly message: string
}

/** A confirmed anchor: the receipt recorded, and the confirmations it had then. */
export type AnchorResult = AnchorReceipt & { readonly confirmations: number }

/**
 * Anchors the version `ref`: calls `anchor(dataset, version, parent, sequence)` on the contract,
 * signed by the key of `CAIRN_ETH_KEY` (or the keystore), waits for the receipt and the
 * confirmations, checks that the block is still canonical and that the contract logged exactly these
 * arguments, and records the receipt. Nothing is recorded unless all of this succeeded.
 * Throws `AUTH` (no key, malformed key, wrong keystore password), `USAGE` (no contract known for the
 * chain, an address with no code, another chain id than `chainId`, a version already anchored there
 * without `again`), `ANCHOR_FAILED` (the endpoint is down after retries or answers garbage, the
 * account lacks funds, the contract reverted, no confirmations in time), `BAD_REF`, `IO`.
 */
export async function anchor(options: AnchorOptions): Promise<AnchorResult> {
  const env = options.env ?? process.env
  const confirmations = options.confirmations ?? 1
  if (!Number.isSafeInteger(confirmations) || confirmations < 1)
    throw new CairnError('USAGE', `--confirmations must be at least 1 (found ${confirmations})`)
  const { root, prepared, existing } = await withDataset(options.dir, async (dataset) => {
    const prepared = await prepareAnchor(dataset, options.ref, options.datasetName)
    return { root: dataset.root, prepared, existing: await readReceipts(dataset.root, prepared.version) }
  })
  // the key first: a bad key fails before anything reaches the network
  const account = await loadAccount({ keystore: options.keystore, env })
  const chain = await openChain({ rpc: options.chain, env, pollingIntervalMs: options.pollingIntervalMs })
  if (options.chainId !== undefined && options.chainId !== chain.chainId)
    throw new CairnError(
      'USAGE',
      `${chain.shown} is chain ${chain.chainId}, not chain ${options.chainId} as --chain-id says; nothing was sent`,
      { subject: chain.shown },
    )
  const contract = await contractFor(root, chain, options.contract)
  const earlier = existing.find((r) => r.chainId === chain.chainId && r.contract === contract)
  if (earlier && !options.again)
    throw new CairnError(
      'USAGE',
      `${prepared.version} is already anchored on chain ${chain.chainId} by ${contract} (block ${earlier.blockNumber}, tx ${earlier.txHash}); nothing was sent`,
      { subject: prepared.version.toString(), hint: 'check it with `cairn verify --anchored`; pass --again to anchor it once more' },
    )
  await assertHasCode(chain, contract)
  const wallet = walletFor(chain, options.chain, account, env)
  const args = [prepared.args.dataset, prepared.args.version, prepared.args.parent, BigInt(prepared.args.sequence)] as const
  const what = `anchor ${prepared.version} on chain ${chain.chainId}`
  // simulate first: a revert costs nothing and says why
  const { request } = await call(
    chain,
    what,
    () => chain.client.simulateContract({ account, address: contract, abi, functionName: 'anchor', args }),
    account.address,
  )
  const txHash = await call(chain, what, () => wallet.writeContract(request), account.address)
  options.onProgress?.({ stage: 'sent', txHash, message: `sent ${txHash}, waiting for ${confirmations} confirmation(s)` })
  let receipt
  try {
    receipt = await chain.client.waitForTransactionReceipt({
      hash: txHash,
      confirmations,
      timeout: options.timeoutMs ?? 300_000,
      pollingInterval: chain.client.pollingInterval,
    })
  } catch (e) {
    if (e instanceof WaitForTransactionReceiptTimeoutError)
      throw new CairnError(
        'ANCHOR_FAILED',
        `Sent ${txHash} but it did not reach ${confirmations} confirmation(s) in time; no receipt was recorded`,
        {
          subject: txHash,
          hint: 'it may still be mined: `cairn verify --anchored` finds it on the chain; anchor again only if it does not',
        },
      )
    throw chainError(chain, `wait for ${txHash}`, e)
  }
  if (receipt.status !== 'success')
    throw new CairnError(
      'ANCHOR_FAILED',
      `${txHash} was mined in block ${receipt.blockNumber} but reverted: nothing was anchored and no receipt was recorded`,
      {
        subject: txHash,
        hint: 'check that --contract is a cairn anchor contract, then anchor again',
      },
    )
  const log = anchoredLog(receipt.logs, contract, prepared.args)
  if (!log)
    throw new CairnError(
      'ANCHOR_FAILED',
      `${txHash} succeeded but ${contract} logged no Anchored event with these arguments: it is not a cairn anchor contract; no receipt was recorded`,
      { subject: contract },
    )
  const [block, latest] = await call(chain, `read block ${receipt.blockNumber}`, () =>
    Promise.all([chain.client.getBlock({ blockNumber: receipt.blockNumber }), chain.client.getBlockNumber({ cacheTime: 0 })]),
  )
  if (block.hash !== receipt.blockHash)
    throw new CairnError(
      'ANCHOR_FAILED',
      `Block ${receipt.blockNumber} holding ${txHash} was reorganised away while waiting; no receipt was recorded`,
      {
        subject: txHash,
        hint: 'run `cairn verify --anchored` in a while, and anchor again if the chain lost it',
      },
    )
  const recorded: AnchorReceipt = {
    version: prepared.version,
    chainId: chain.chainId,
    contract,
    txHash,
    blockNumber: Number(receipt.blockNumber),
    blockHash: receipt.blockHash,
    logIndex: log.logIndex,
    sender: account.address,
    blockTime: new Date(Number(block.timestamp) * 1000).toISOString(),
    anchoredAt: new Date().toISOString(),
    datasetName: prepared.datasetName,
    parentVersion: prepared.parentVersion,
    args: prepared.args,
  }
  await writeReceipt(root, recorded)
  return { ...recorded, confirmations: Number(latest - receipt.blockNumber) + 1 }
}

/** What {@link anchorCalldata} is told. */
export interface CalldataOptions {
  readonly dir?: string
  readonly ref?: string
  readonly datasetName?: string
  /** The contract to name as `to` (not contacted). */
  readonly contract?: string
}

/** The call of a version's anchor, for users who send it through their own contract, multisig or oracle. */
export interface CalldataResult {
  readonly version: CID
  readonly parentVersion: CID | null
  readonly datasetName: string
  readonly function: typeof ANCHOR_FUNCTION
  readonly selector: Hex
  readonly args: AnchorArgs
  /** The ABI-encoded call: the transaction's data. */
  readonly data: Hex
  readonly to?: Hex
}

/** The anchor call of the version `ref`, unsent: no chain, no key. Throws `BAD_REF`, `USAGE`. */
export async function anchorCalldataFor(options: CalldataOptions = {}): Promise<CalldataResult> {
  const prepared = await withDataset(options.dir, (dataset) => prepareAnchor(dataset, options.ref, options.datasetName))
  return {
    version: prepared.version,
    parentVersion: prepared.parentVersion,
    datasetName: prepared.datasetName,
    function: ANCHOR_FUNCTION,
    selector: ANCHOR_SELECTOR,
    args: prepared.args,
    data: anchorCalldata(prepared.args),
    ...(options.contract !== undefined ? { to: parseAddress(options.contract) } : {}),
  }
}

/** The Anchored log of `contract` in `logs` holding exactly `args`, if any. */
function anchoredLog(logs: readonly Log[], contract: Hex, args: AnchorArgs): { logIndex: number } | undefined {
  const events = parseEventLogs({
    abi,
    eventName: 'Anchored',
    logs: logs.filter((l) => l.address.toLowerCase() === contract.toLowerCase()) as Log[],
  })
  const hit = events.find(
    (e) =>
      e.args.dataset === args.dataset &&
      e.args.version === args.version &&
      e.args.parent === args.parent &&
      e.args.sequence === BigInt(args.sequence),
  )
  return hit && hit.logIndex !== null ? { logIndex: hit.logIndex } : undefined
}
