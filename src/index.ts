/**
 * cairn's library: one function per verb, exactly what the CLI calls. Every function reports progress
 * through callbacks and fails with a {@link CairnError} carrying a stable code; none prints or exits.
 *
 * @example
 * ```ts
 * import { build, verify } from 'cairn'
 * const { version } = await build({ dir: './data', message: 'first release' })
 * const report = await verify({ ref: version.toString(), dir: './data' })
 * ```
 */
export { init, openDataset, type InitOptions, type InitResult, type Dataset } from './dataset.js'
export { build, type BuildOptions, type BuildResult, type BuildProgress, type ChangeSummary } from './build.js'
export {
  compose,
  type ComposeOptions,
  type ComposePart,
  type ComposeProgress,
  type ComposeResult,
  type ComposedPart,
} from './compose/compose.js'
export { log, logHistory, type LogOptions, type LogEntry, type LogResult } from './log.js'
export { show, type ShowOptions, type ShowResult } from './show.js'
export { ls, type LsOptions } from './ls.js'
export { tag, tags, deleteTag, type TagOptions, type TagEntry } from './tag.js'
export { pack, writeCar, type PackOptions, type PackResult, type PackProgress } from './pack.js'
export {
  verify,
  type VerifyFolderOptions,
  type VerifyCarOptions,
  type VerifyReport,
  type FolderReport,
  type ModifiedFile,
} from './verify.js'
export type { CarReport, CarProblem } from './car/verify.js'
export {
  diff,
  diffVersions,
  diffIndexes,
  commonAncestor,
  classify,
  MAX_ANCESTORS,
  type DiffOptions,
  type DiffVersionsOptions,
  type DiffProgress,
  type DiffResult,
  type VersionSide,
  type ShardSide,
  type ShardChange,
  type ChangeCounts,
  type EntryChange,
  type IndexDiff,
  type DiffIndexesOptions,
  type IndexDiffProgress,
  type FieldChange,
  type SchemaChange,
  type ValueChange,
  diffRows,
  primaryKeyFor,
  type RowDiff,
  type ChangedRow,
  type DiffRowsOptions,
} from './diff.js'
export { exportFile, exportToFile } from './unixfs/export.js'
export { CarBlockSource, FallbackSource } from './car/source.js'
export type { BlockSource } from './store/blocks.js'
export { publish, published, parseByteSize, receiptPath, RECEIPT_VERSION, type PublishOptions, type PublishedOptions } from './publish.js'
export {
  parseTarget,
  createDirTarget,
  createKuboTarget,
  DEFAULT_DIR_SHARD_SIZE,
  TARGET_FORMS,
  type DirTargetOptions,
  type KuboTargetOptions,
  type StorachaModule,
} from './targets/index.js'
export type {
  Target,
  PublishInput,
  PublishOptions as TargetPublishOptions,
  PublishProgress,
  Receipt,
  StoredShard,
} from './targets/interface.js'
export { retry, isTransient, HttpStatusError, type RetryOptions, type RetryInfo, type RetryFailure } from './util/retry.js'
export { CairnError, isCairnError, type ErrorCode } from './errors.js'
export {
  PROFILE,
  type VersionManifest,
  type ShardEntry,
  type Card,
  type ShardRule,
  type Totals,
  type IndexNode,
  type SchemaBlock,
} from './manifest.js'
export type { FormatName, Field, ShardSchema } from './formats/interface.js'
export { CID, type Link } from './cid.js'
export {
  clone,
  DEFAULT_CLONE_JOBS,
  type CloneOptions,
  type CloneProgress,
  type CloneResult,
  type SkippedEntry as CloneSkippedEntry,
} from './clone.js'
export { cat, parseContentPath, resolvePath, type CatOptions, type CatResult, type Resolved } from './cat.js'
export { serve, isLoopback, type ServeOptions, type ServeHandle, type GatewayHandler, type RequestEntry } from './serve.js'
export { formatEntry } from './gateway/log.js'
export { prove, type ProveOptions, type ProveResult } from './proofs/prove.js'
export { verifyProof, type ProofReport } from './proofs/check.js'
export {
  openSource,
  openSources,
  SourceList,
  GatewaySource,
  DirSource,
  DEFAULT_GATEWAYS,
  type Source,
  type SourceOptions,
  type SourceFailure,
  type GatewayOptions,
} from './sources/index.js'
export { login, type LoginOptions, type LoginResult } from './login.js'
export { status, type StatusOptions, type StatusResult } from './worktree/status.js'
export { IGNORE_FILE, DEFAULT_IGNORES } from './worktree/ignore.js'
export { reset, headLog, type ResetOptions, type ResetResult } from './history/reset.js'
export type { HeadMove, HeadMoveOp } from './history/reflog.js'
export { restore, type RestoreOptions, type RestoreResult } from './worktree/restore.js'
export { gc, du, type GcOptions, type GcResult, type DuResult, type DuPart } from './gc/gc.js'
export { DEFAULT_LIMITS, MAX_DIRECTORY_DEPTH, MAX_FILE_DEPTH, MAX_NAME_BYTES, MAX_PATH_BYTES, type DagLimits } from './limits/index.js'
export { readCarBlocks, MAX_BLOCK_BYTES, type CarBlock, type ReadCarOptions } from './car/reader.js'
export {
  newKey,
  listKeys,
  loadKey,
  configDir,
  KEY_ENV,
  type KeyType,
  type KeyEntry,
  type PublicKeyInfo,
  type SigningKey,
} from './signing/keys.js'
export { sign, type SignOptions, type SignResult } from './signing/sign.js'
export { checkSignedBy, verifySignedBy, signerKey, type SignaturesReport, type CheckSignedByOptions } from './signing/check.js'
export { RELEASE_PREDICATE_TYPE, type ReleasePredicate } from './signing/statement.js'
export { namePublish, parseDuration, type NamePublishOptions, type NamePublishResult } from './names/publish.js'
export { nameResolve, type NameResolveOptions, type NameResolveResult } from './names/resolve.js'
export { parseName, looksLikeName, type IpnsName } from './names/name.js'
export { createRecord, validateRecord, MAX_RECORD_BYTES, RECORD_MEDIA_TYPE, type ValidRecord } from './names/record.js'
export { trustRoutes, type TrustRoutesOptions } from './names/http.js'
export { releaseLinks, versionParent, parseHistory, type History, type FollowedLink } from './release/links.js'
export { readCloneRecord, type CloneRecord, type Selection } from './release/clone-record.js'
export { check, METADATA, type CheckOptions, type CheckReport, type PlaceReport, type ShardState, type CheckProgress } from './check.js'
export { fileSha256, fileSha256s, digestInCid, SHA256_LOG, type Sha256Options } from './digests/sha256.js'
export { lineage, type LineageOptions } from './lineage/lineage.js'
export { walkLineage, type LineageGraph, type LineageNode, type LineageEdge } from './lineage/graph.js'
export { renderLineage, type LineageFormat } from './lineage/render.js'
export { checkLineage, type SourceCheck } from './lineage/check.js'
export {
  exportCroissant,
  buildWithCroissant,
  DEFAULT_CROISSANT_GATEWAY,
  CROISSANT_FILE,
  type ExportCroissantOptions,
  type ExportCroissantResult,
} from './croissant/export.js'
export { croissantDocument, CROISSANT_CONTEXT, CROISSANT_1_1, type CroissantDocument, type JsonLd } from './croissant/document.js'
export * from './anchors/index.js'
