/**
 * The anchor contract as shipped (src/anchors/CairnAnchor.sol compiled by bin/compile-anchor.js), and
 * the call cairn makes of it. viem encodes the call and decodes the event from the ABI.
 */
import { decodeEventLog, encodeFunctionData, getAddress, isAddress, toFunctionSelector, type Log } from 'viem'
import { CairnError } from '../errors.js'
import { abi } from './artifact.generated.js'
import type { Hex } from './digest.js'
import { call, type Chain } from './chain.js'
import { readContractRecord, type AnchorArgs } from './receipts.js'

export { abi, bytecode, deployedBytecode, compiler, settings } from './artifact.generated.js'

/** The function every anchor calls. */
export const ANCHOR_FUNCTION = 'anchor(bytes32,bytes32,bytes32,uint64)'

/** Its 4-byte selector. */
export const ANCHOR_SELECTOR: Hex = toFunctionSelector(ANCHOR_FUNCTION)

/** The ABI-encoded call `anchor(dataset, version, parent, sequence)`: the transaction's data. */
export function anchorCalldata(args: AnchorArgs): Hex {
  return encodeFunctionData({ abi, functionName: 'anchor', args: [args.dataset, args.version, args.parent, BigInt(args.sequence)] })
}

/** An address as given (any case), checksummed. Throws `USAGE` for anything else. */
export function parseAddress(text: string, flag = '--contract'): Hex {
  if (!isAddress(text, { strict: false }))
    throw new CairnError('USAGE', `${flag} ${JSON.stringify(text)} is not an address (expected 0x and 40 hex digits)`)
  return getAddress(text)
}

/** The arguments of an Anchored log. Throws (viem's error) when the log is not one. */
export function decodeAnchored(log: Pick<Log, 'data' | 'topics'>): {
  dataset: Hex
  version: Hex
  sender: Hex
  parent: Hex
  sequence: bigint
} {
  const decoded = decodeEventLog({ abi, eventName: 'Anchored', data: log.data, topics: log.topics, strict: true })
  return decoded.args
}

/** The contract to use on `chain`: the one given, else the one recorded for the chain. */
export async function contractFor(root: string | undefined, chain: Chain, given: string | undefined): Promise<Hex> {
  if (given !== undefined) return parseAddress(given)
  const record = root === undefined ? undefined : await readContractRecord(root, chain.chainId)
  if (!record)
    throw new CairnError('USAGE', `No anchor contract is recorded for chain ${chain.chainId} (${chain.shown})`, {
      hint: 'deploy one with `cairn anchor deploy --chain <rpc-url>`, or pass --contract 0x…',
    })
  return record.address
}

/** Throws `USAGE` when `address` holds no code on `chain` (an account, or a contract on another chain). */
export async function assertHasCode(chain: Chain, address: Hex): Promise<void> {
  const code = await call(chain, `read the code at ${address}`, () => chain.client.getCode({ address }))
  if (code === undefined || code === '0x')
    throw new CairnError('USAGE', `There is no contract at ${address} on chain ${chain.chainId}`, {
      subject: address,
      hint: 'check --contract and --chain (is the contract on another chain?), or deploy one with `cairn anchor deploy`',
    })
}
