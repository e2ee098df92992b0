/**
 * `verifyAnchored`: is this version anchored on this chain, since when, by whom? The anchors come from
 * the receipts in the store (each checked field by field against the chain) and from the chain itself
 * (the Anchored logs whose indexed `version` topic is the version's digest, found with eth_getLogs),
 * so a version anchored elsewhere, or cloned without receipts, verifies too.
 */
import { getAddress, TransactionReceiptNotFoundError, type Block } from 'viem'
import { CID, tryParseCid } from '../cid.js'
import { openDataset } from '../dataset.js'
import { CairnError, isCairnError } from '../errors.js'
import { readVersion, resolveRef } from '../version.js'
import { call, openChain, type Chain } from './chain.js'
import { abi, assertHasCode, contractFor, decodeAnchored, parseAddress } from './contract.js'
import { datasetDigest, versionDigest, type Hex } from './digest.js'
import { readReceipts, type AnchorReceipt } from './receipts.js'

/** What {@link verifyAnchored} is told. */
export interface VerifyAnchoredOptions {
  /** The dataset folder (default: the current folder); not needed for a version CID checked by its logs only. */
  readonly dir?: string
  /** The version (default `HEAD`). */
  readonly ref?: string
  /** The chain's JSON-RPC endpoint. */
  readonly chain: string
  /** The anchor contract (default: the one recorded for the chain, and those the receipts name). */
  readonly contract?: string
  /** Blocks, counting the anchor's own, an anchor needs to count (default 1). */
  readonly confirmations?: number
  /** Count only anchors sent by this address (the publisher's). */
  readonly sender?: string
  readonly env?: NodeJS.ProcessEnv
}

/** One anchor of the version found on the chain. */
export interface FoundAnchor {
  readonly contract: Hex
  readonly txHash: Hex
  readonly blockNumber: number
  readonly blockHash: Hex
  readonly logIndex: number
  /** The block's timestamp: a public time at which the version existed. */
  readonly blockTime: string
  readonly confirmations: number
  readonly sender: Hex
  readonly dataset: Hex
  /** The name the dataset digest was checked against, when it matches one known (the receipt's, the version's). */
  readonly datasetName?: string
  readonly parent: Hex
  readonly sequence: number
  /** True when the store holds a receipt of this anchor (and it matched the chain). */
  readonly recorded: boolean
}

/** What {@link verifyAnchored} found. */
export interface AnchorReport {
  readonly kind: 'anchor'
  /** True when at least one anchor (by `sender`, when given) has the confirmations asked for. */
  readonly ok: boolean
  readonly version: CID
  readonly digest: Hex
  readonly chainId: number
  readonly contracts: readonly Hex[]
  readonly confirmationsRequired: number
  readonly sender?: Hex
  /** Every anchor of the version on the chain, earliest first (by any sender). */
  readonly anchors: readonly FoundAnchor[]
  /** The earliest anchor that counts: its block time is the release's public timestamp. */
  readonly earliest?: FoundAnchor
  /** Why `ok` is false. */
  readonly reason?: 'not-anchored' | 'unconfirmed' | 'other-sender'
  readonly message: string
}

/**
 * Checks the anchors of the version `ref` on the chain at `options.chain`. Every receipt recorded for
 * that chain must match the chain exactly (transaction, block still canonical, log, arguments,
 * sender), else `ANCHOR_MISMATCH`; so must the chain id (receipts only for other chains:
 * `ANCHOR_MISMATCH`). A version never anchored is a report with `ok: false`, not an error. Throws
 * `USAGE` (no contract known), `ANCHOR_FAILED` (the endpoint fails or answers garbage), `BAD_REF`,
 * `INVALID_MANIFEST` (a receipt file that is not one).
 */
export async function verifyAnchored(options: VerifyAnchoredOptions): Promise<AnchorReport> {
  const required = options.confirmations ?? 1
  if (!Number.isSafeInteger(required) || required < 1)
    throw new CairnError('USAGE', `--confirmations must be at least 1 (found ${required})`)
  const sender = options.sender === undefined ? undefined : parseAddress(options.sender, '--sender')
  const local = await localView(options)
  const digest = versionDigest(local.version)
  const chain = await openChain({ rpc: options.chain, env: options.env })
  const onChain = local.receipts.filter((r) => r.chainId === chain.chainId)
  if (local.receipts.length > 0 && onChain.length === 0) {
    const ids = [...new Set(local.receipts.map((r) => r.chainId))].join(', ')
    throw new CairnError(
      'ANCHOR_MISMATCH',
      `The anchors recorded for ${local.version} are on chain ${ids}, but ${chain.shown} is chain ${chain.chainId}`,
      {
        subject: local.version.toString(),
        hint: 'point --chain at the chain the receipts name',
      },
    )
  }
  const contracts = new Set<Hex>(onChain.map((r) => r.contract))
  if (options.contract !== undefined || local.root !== undefined || contracts.size === 0) {
    try {
      contracts.add(await contractFor(local.root, chain, options.contract))
    } catch (e) {
      if (!(isCairnError(e, 'USAGE') && contracts.size > 0)) throw e
    }
  }
  // a contract named by hand that is not there is a wrong --contract or --chain, not "not anchored"
  if (options.contract !== undefined) await assertHasCode(chain, parseAddress(options.contract))
  const latest = await call(chain, 'read the latest block', () => chain.client.getBlockNumber({ cacheTime: 0 }))
  const blocks = new Map<bigint, Promise<Block>>()
  const blockAt = (n: bigint): Promise<Block> => {
    let b = blocks.get(n)
    if (!b) blocks.set(n, (b = call(chain, `read block ${n}`, () => chain.client.getBlock({ blockNumber: n }))))
    return b
  }
  const found = new Map<string, FoundAnchor>()
  for (const r of onChain) {
    const a = await checkReceipt(chain, r, digest, latest, blockAt)
    found.set(`${a.txHash}:${a.logIndex}`, a)
  }
  const names = new Map<Hex, string>(local.names.map((n) => [datasetDigest(n), n]))
  const logs = await call(chain, `search the Anchored logs of ${local.version}`, () =>
    chain.client.getLogs({
      address: [...contracts],
      event: abi.find((x) => x.type === 'event' && x.name === 'Anchored')!,
      args: { version: digest },
      fromBlock: 0n,
      toBlock: latest,
      strict: true,
    }),
  )
  for (const log of logs) {
    if (log.blockNumber === null || log.blockHash === null || log.transactionHash === null || log.logIndex === null) continue
    if (found.has(`${log.transactionHash}:${log.logIndex}`)) continue
    const block = await blockAt(log.blockNumber)
    // a log from a block the node has since replaced is not an anchor
    if (block.hash !== log.blockHash || log.args.version !== digest) continue
    found.set(`${log.transactionHash}:${log.logIndex}`, {
      contract: getAddress(log.address),
      txHash: log.transactionHash,
      blockNumber: Number(log.blockNumber),
      blockHash: log.blockHash,
      logIndex: log.logIndex,
      blockTime: timeOf(block),
      confirmations: Number(latest - log.blockNumber) + 1,
      sender: getAddress(log.args.sender),
      dataset: log.args.dataset,
      ...(names.has(log.args.dataset) ? { datasetName: names.get(log.args.dataset) } : {}),
      parent: log.args.parent,
      sequence: Number(log.args.sequence),
      recorded: false,
    })
  }
  const anchors = [...found.values()].sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex)
  const bySender = sender === undefined ? anchors : anchors.filter((a) => a.sender === sender)
  const counting = bySender.filter((a) => a.confirmations >= required)
  const earliest = counting[0]
  const base = {
    kind: 'anchor' as const,
    version: local.version,
    digest,
    chainId: chain.chainId,
    contracts: [...contracts],
    confirmationsRequired: required,
    ...(sender ? { sender } : {}),
    anchors,
  }
  if (earliest)
    return {
      ...base,
      ok: true,
      earliest,
      message: `${local.version} anchored on chain ${chain.chainId} at ${earliest.blockTime} (block ${earliest.blockNumber}, ${earliest.confirmations} confirmation${earliest.confirmations === 1 ? '' : 's'}) by ${earliest.sender}`,
    }
  if (anchors.length === 0)
    return {
      ...base,
      ok: false,
      reason: 'not-anchored',
      message: `${local.version} is not anchored on chain ${chain.chainId} (contract ${[...contracts].join(', ')})`,
    }
  if (bySender.length === 0)
    return {
      ...base,
      ok: false,
      reason: 'other-sender',
      message: `${local.version} is not anchored by ${sender} on chain ${chain.chainId} (only by ${[...new Set(anchors.map((a) => a.sender))].join(', ')})`,
    }
  const best = Math.max(...bySender.map((a) => a.confirmations))
  return {
    ...base,
    ok: false,
    reason: 'unconfirmed',
    message: `${local.version} is anchored on chain ${chain.chainId} but has ${best} of the ${required} confirmations asked for`,
  }
}

/** The version, the receipts recorded for it and the dataset names to recognise, from the store when there is one. */
async function localView(
  options: VerifyAnchoredOptions,
): Promise<{ version: CID; root?: string; receipts: AnchorReceipt[]; names: string[] }> {
  let dataset
  try {
    dataset = await openDataset(options.dir)
  } catch (e) {
    const cid = options.ref === undefined ? undefined : tryParseCid(options.ref)
    if (isCairnError(e, 'NOT_A_DATASET') && cid && options.contract !== undefined) return { version: cid, receipts: [], names: [] }
    throw e
  }
  try {
    const version = await resolveRef(dataset, options.ref)
    const receipts = await readReceipts(dataset.root, version)
    const names = new Set(receipts.map((r) => r.datasetName))
    // a version whose blocks are not in this store is still checked, by its digest
    const name = await readVersion(dataset.store, version).then(
      (v) => v.name,
      () => undefined,
    )
    if (name !== undefined) names.add(name)
    return { version, root: dataset.root, receipts, names: [...names] }
  } finally {
    await dataset.store.close()
  }
}

/** Checks one receipt against the chain; throws `ANCHOR_MISMATCH` saying what differs. */
async function checkReceipt(
  chain: Chain,
  r: AnchorReceipt,
  digest: Hex,
  latest: bigint,
  blockAt: (n: bigint) => Promise<Block>,
): Promise<FoundAnchor> {
  const mismatch = (why: string): CairnError =>
    new CairnError('ANCHOR_MISMATCH', `The anchor receipt ${r.txHash} of ${r.version} does not match chain ${chain.chainId}: ${why}`, {
      subject: r.txHash,
      hint: 'the receipt was edited, or the chain dropped the anchor (a reorganisation); anchor the version again with `cairn anchor --again` if it is gone',
    })
  if (r.args.version !== digest) throw mismatch(`it holds digest ${r.args.version}, not the version's ${digest}`)
  if (BigInt(r.blockNumber) > latest)
    throw mismatch(`block ${r.blockNumber} is past the chain's latest block ${latest} (reorganised away, or another chain)`)
  const block = await blockAt(BigInt(r.blockNumber))
  if (block.hash !== r.blockHash)
    throw mismatch(`block ${r.blockNumber} is now ${block.hash}, not ${r.blockHash}: the recorded block was reorganised away`)
  const receipt = await call(chain, `read the receipt of ${r.txHash}`, async () => {
    try {
      return await chain.client.getTransactionReceipt({ hash: r.txHash })
    } catch (e) {
      if (e instanceof TransactionReceiptNotFoundError) return undefined
      throw e
    }
  })
  if (!receipt) throw mismatch('the chain has no such transaction (reorganised away, or another chain)')
  if (receipt.blockHash !== r.blockHash) throw mismatch(`the transaction is in block ${receipt.blockHash}, not ${r.blockHash}`)
  if (receipt.status !== 'success') throw mismatch('the transaction reverted')
  const log = receipt.logs.find((l) => l.logIndex === r.logIndex)
  if (!log || log.address.toLowerCase() !== r.contract.toLowerCase())
    throw mismatch(`the transaction has no log ${r.logIndex} of ${r.contract}`)
  let args
  try {
    args = decodeAnchored(log)
  } catch {
    throw mismatch(`log ${r.logIndex} is not an Anchored event`)
  }
  if (args.version !== digest) throw mismatch(`the chain logged digest ${args.version}, not ${digest}`)
  if (args.dataset !== r.args.dataset || args.parent !== r.args.parent || BigInt(r.args.sequence) !== args.sequence)
    throw mismatch('the chain logged other arguments than the receipt holds')
  if (getAddress(args.sender) !== getAddress(r.sender))
    throw mismatch(`the chain says the sender is ${getAddress(args.sender)}, not ${r.sender}`)
  return {
    contract: getAddress(log.address),
    txHash: r.txHash,
    blockNumber: r.blockNumber,
    blockHash: r.blockHash,
    logIndex: r.logIndex,
    blockTime: timeOf(block),
    confirmations: Number(latest - BigInt(r.blockNumber)) + 1,
    sender: getAddress(args.sender),
    dataset: args.dataset,
    datasetName: r.datasetName,
    parent: args.parent,
    sequence: Number(args.sequence),
    recorded: true,
  }
}

function timeOf(block: Block): string {
  return new Date(Number(block.timestamp) * 1000).toISOString()
}
