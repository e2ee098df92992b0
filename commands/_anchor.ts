/**
 * What the anchor commands share (`anchor`, `anchor deploy`, `anchors`, `verify --anchored`): their
 * flags and the rendering of an anchor report.
 */
import { Flags } from '@oclif/core'
import { CairnError } from '../src/errors.js'
import type { AnchorReport } from '../src/anchors/verify.js'
import { EXIT } from './_errors.js'

export const chainFlag = Flags.string({
  summary: 'The chain: an EVM JSON-RPC endpoint, http(s)://host:port (e.g. anvil at http://127.0.0.1:8545).',
})

export const signingFlags = {
  'chain-id': Flags.integer({ summary: 'Refuse to send unless the endpoint is this chain (e.g. 8453 for Base).', min: 1 }),
  keystore: Flags.file({
    summary: 'An Ethereum keystore file (v3) to sign with when CAIRN_ETH_KEY is not set; its password from CAIRN_ETH_KEYSTORE_PASSWORD.',
    exists: true,
  }),
  confirmations: Flags.integer({
    summary: 'Blocks to wait for, counting the one holding the transaction (default 1).',
    min: 1,
    default: 1,
  }),
  timeout: Flags.integer({ summary: 'Seconds to wait for the confirmations (default 300).', min: 1, default: 300 }),
}

/** The flags `verify` gains for `--anchored` (spread into its flags). */
export const verifyAnchoredFlags = {
  anchored: Flags.boolean({
    summary:
      'Check the version is anchored on --chain instead of checking files: digest, block still canonical, confirmations; exit 10 when a recorded receipt contradicts the chain.',
    dependsOn: ['chain'],
  }),
  chain: chainFlag,
  contract: Flags.string({
    summary: 'With --anchored: the anchor contract (default: the one recorded for the chain, and those the receipts name).',
  }),
  confirmations: Flags.integer({ summary: 'With --anchored: the confirmations an anchor needs to count (default 1).', min: 1 }),
  sender: Flags.string({ summary: "With --anchored: count only anchors sent by this address (the publisher's)." }),
}

/** Human lines for an anchor report. */
export function renderAnchorReport(report: AnchorReport, log: (line: string) => void): void {
  for (const a of report.anchors) {
    log(
      `anchor    block ${a.blockNumber} at ${a.blockTime}, ${a.confirmations} confirmation${a.confirmations === 1 ? '' : 's'}, by ${a.sender}, tx ${a.txHash}${a.recorded ? ' (receipt matches)' : ''}`,
    )
  }
  log(report.ok ? `ok: ${report.message}` : `FAILED: ${report.message}`)
}

/** `verify --anchored`: checks the anchor instead of files, sets exit 1 when not anchored, renders unless --json. */
export async function verifyAnchoredCommand(
  args: { ref?: string; dir?: string },
  flags: { dir?: string; car?: string; chain?: string; contract?: string; confirmations?: number; sender?: string },
  out: { json: boolean; log: (line: string) => void },
): Promise<AnchorReport> {
  if (args.dir !== undefined || flags.car !== undefined)
    throw new CairnError(
      'USAGE',
      'verify --anchored takes no folder and no --car: it checks the version on the chain (run a plain verify for the files)',
    )
  const { verifyAnchored } = await import('../src/anchors/verify.js')
  const report = await verifyAnchored({
    dir: flags.dir,
    ref: args.ref,
    chain: flags.chain!,
    contract: flags.contract,
    confirmations: flags.confirmations,
    sender: flags.sender,
  })
  if (!report.ok) process.exitCode = EXIT.differences
  if (!out.json) renderAnchorReport(report, out.log)
  return report
}
