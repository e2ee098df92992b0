/**
 * cairn's library: one function per verb, exactly what the CLI calls, with their options and results,
 * and the data model (manifests, CIDs, errors). Every function reports progress through callbacks and
 * fails with a {@link CairnError} carrying a stable code; none prints or exits. Helpers the verbs are
 * built from (CAR and UnixFS readers, sources, retries, digests, limits) stay inside their modules:
 * test/api.test.ts lists every export, so a change to this surface is a reviewed diff.
 *
 * @example
 * ```ts
 * import { build, verify } from 'cairn'
 * const { version } = await build({ dir: './data', message: 'first release' })
 * const report = await verify({ ref: version.toString(), dir: './data' })
 * ```
 */

// the data model
export { CID, type Link } from './cid.js'
export { CairnError, isCairnError, type ErrorCode } from './errors.js'
export {
  PROFILE,
  type VersionManifest,
  type ShardEntry,
  type Card,
  type ShardRule,
  type Totals,
  type IndexNode,
  type LeafNode,
  type BranchNode,
  type BranchEntry,
  type SchemaBlock,
} from './manifest.js'
export type { FormatName, Field, ShardSchema } from './formats/interface.js'
export type { History } from './release/links.js'
export { RELEASE_PREDICATE_TYPE, type ReleasePredicate } from './signing/statement.js'

// a dataset and its versions
export { init, type InitOptions, type InitResult } from './dataset.js'
export {
  compose,
  type ComposeOptions,
  type ComposePart,
  type ComposeProgress,
  type ComposeResult,
  type ComposedPart,
} from './compose/compose.js'
export { build, type BuildOptions, type BuildResult, type BuildProgress, type ChangeSummary } from './build.js'
export { status, type StatusOptions, type StatusResult } from './worktree/status.js'
export type { CardState } from './worktree/changes.js'
export { restore, type RestoreOptions, type RestoreResult } from './worktree/restore.js'
export { reset, headLog, type ResetOptions, type ResetResult } from './history/reset.js'
export type { HeadMove, HeadMoveOp } from './history/reflog.js'
export { log, logHistory, type LogOptions, type LogEntry, type LogResult } from './log.js'
export { show, type ShowOptions, type ShowResult } from './show.js'
export { ls, type LsOptions } from './ls.js'
export { tag, tags, deleteTag, type TagOptions, type TagEntry } from './tag.js'
export { gc, du, type GcOptions, type GcResult, type DuResult, type DuPart } from './gc/gc.js'
export { storeMode, type StoreModeOptions, type StoreModeResult } from './store/set-mode.js'
export { STORE_MODES, type StoreMode } from './store/mode.js'
export { checkReferences, type ReferenceCheck, type LostFile } from './store/reference-loss.js'

// checking and comparing
export {
  verify,
  type VerifyFolderOptions,
  type VerifyCarOptions,
  type VerifyReport,
  type FolderReport,
  type ModifiedFile,
} from './verify.js'
export type { CarReport, CarProblem, HistoryReport } from './car/verify.js'
export {
  diff,
  type DiffOptions,
  type DiffProgress,
  type DiffResult,
  type VersionSide,
  type ShardSide,
  type ShardChange,
  type ChangeCounts,
  type FieldChange,
  type SchemaChange,
  type ValueChange,
  type RowDiff,
  type ChangedRow,
} from './diff.js'
export { check, type CheckOptions, type CheckReport, type PlaceReport, type ShardState, type CheckProgress } from './check.js'
export { prove, type ProveOptions, type ProveResult } from './proofs/prove.js'
export { verifyProof, type ProofReport } from './proofs/check.js'
export { lineage, type LineageOptions } from './lineage/lineage.js'
export type { LineageGraph, LineageNode, LineageEdge } from './lineage/graph.js'
export type { SourceCheck } from './lineage/check.js'

// moving releases
export { pack, type PackOptions, type PackResult, type PackProgress } from './pack.js'
export { publish, published, type PublishOptions, type PublishedOptions } from './publish.js'
export type {
  Target,
  PublishInput,
  PublishOptions as TargetPublishOptions,
  PublishProgress,
  Receipt,
  StoredShard,
} from './targets/interface.js'
export { login, type LoginOptions, type LoginResult } from './login.js'
export { clone, type CloneOptions, type CloneProgress, type CloneResult, type SkippedEntry as CloneSkippedEntry } from './clone.js'
export type { SourceFailure, SourceOptions, GatewayOptions } from './sources/index.js'
export type { BlockSource } from './store/blocks.js'
export type { DagLimits } from './limits/index.js'
export type { ClonedName } from './names/clone.js'
export { cat, type CatOptions, type CatResult } from './cat.js'
export { serve, type ServeOptions, type ServeHandle, type GatewayHandler, type RequestEntry } from './serve.js'

// signatures, names, anchors
export { newKey, listKeys, type KeyType, type KeyEntry, type PublicKeyInfo } from './signing/keys.js'
export { sign, type SignOptions, type SignResult } from './signing/sign.js'
export { verifySignedBy, type SignaturesReport } from './signing/check.js'
export { namePublish, type NamePublishOptions, type NamePublishResult } from './names/publish.js'
export { nameResolve, type NameResolveOptions, type NameResolveResult } from './names/resolve.js'
export {
  anchor,
  anchorCalldataFor,
  deployAnchorContract,
  verifyAnchored,
  anchors,
  type AnchorOptions,
  type AnchorProgress,
  type AnchorResult,
  type CalldataOptions,
  type CalldataResult,
  type DeployOptions,
  type VerifyAnchoredOptions,
  type AnchorReport,
  type FoundAnchor,
  type AnchorsOptions,
  type AnchorArgs,
  type AnchorReceipt,
  type ContractRecord,
  type Hex,
} from './anchors/index.js'

// Croissant
export { exportCroissant, buildWithCroissant, type ExportCroissantOptions, type ExportCroissantResult } from './croissant/export.js'
export type { CroissantDocument, JsonLd } from './croissant/document.js'
