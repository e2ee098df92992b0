/**
 * Anchors: a version's 32-byte digest written to a small contract on an EVM chain, for a public time
 * and an append-only trail (docs/anchors.md).
 */
export {
  anchor,
  anchorCalldataFor,
  type AnchorOptions,
  type AnchorProgress,
  type AnchorResult,
  type CalldataOptions,
  type CalldataResult,
} from './anchor.js'
export { deployAnchorContract, type DeployOptions } from './deploy.js'
export { verifyAnchored, type VerifyAnchoredOptions, type AnchorReport, type FoundAnchor } from './verify.js'
export { anchors, type AnchorsOptions } from './list.js'
export { ANCHOR_FUNCTION, ANCHOR_SELECTOR, anchorCalldata, decodeAnchored } from './contract.js'
export { versionDigest, cidFromDigest, datasetDigest, ZERO_DIGEST, type Hex } from './digest.js'
export { ANCHOR_RECEIPT_VERSION, type AnchorArgs, type AnchorReceipt, type ContractRecord } from './receipts.js'
export { showRpc } from './chain.js'
