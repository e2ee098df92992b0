/**
 * The contract every publishing target fits by shape (`dir.ts`, `kubo.ts`, `storacha.ts`): it takes a
 * version's DAG and puts it on some IPFS infrastructure, returning what that infrastructure said. A
 * target never changes a CID: CIDs are made by the profile before any target sees a block.
 */
import type { CID } from '../cid.js'
import type { History } from '../release/links.js'
import type { BlockSource } from '../store/blocks.js'

/** What a target publishes: the DAG under `root`, read block by block (verified) from `source`. */
export interface PublishInput {
  readonly root: CID
  readonly source: BlockSource
  /** Content bytes of the version (its totals), for progress. */
  readonly totalBytes: number
  /** Ancestors whose releases go too (see src/release/links.ts): 0 or absent, the release alone. */
  readonly history?: History
  /**
   * Versions earlier publishes put on this target whole, newest first (from the dataset's receipts):
   * a target that keeps what it is sent may take their blocks as held and not send them again.
   */
  readonly held?: readonly CID[]
}

/** Progress while publishing, per CAR shard. */
export interface PublishProgress {
  /** CAR shards completed so far. */
  readonly shards: number
  /** Bytes sent or written so far (CAR bytes). */
  readonly bytes: number
  /** A short line for humans: `shard 3 stored (127 MiB)`, `retrying after ECONNRESET (2/5)`. */
  readonly message?: string
}

export interface PublishOptions {
  /** Largest CAR shard in bytes (targets that shard; each keeps its own default). */
  readonly shardSize?: number
  readonly onProgress?: (progress: PublishProgress) => void
  readonly signal?: AbortSignal
}

/** One CAR shard as the target stored it. */
export interface StoredShard {
  /** The CAR's own CID (sha2-256, CAR codec 0x0202) where the target reports one. */
  readonly cid?: CID
  readonly size: number
  /** For `dir:`: the file name inside the folder. */
  readonly file?: string
}

/** What a target returned for one publish; recorded in the store (`cairn published`). Never holds a secret. */
export interface Receipt {
  /** The target as the user named it, without credentials: `dir:/srv/cars`, `kubo:http://127.0.0.1:5001`, `storacha:did:key:…`. */
  readonly target: string
  readonly root: CID
  readonly publishedAt: string
  readonly shards: readonly StoredShard[]
  /** Blocks the target did not have before (for `dir:`, blocks written). */
  readonly newBlocks: number
  readonly newBytes: number
  /** Anything else the target returned worth keeping (e.g. Kubo's pin status). */
  readonly details?: Record<string, unknown>
}

/** A publishing target. */
export interface Target {
  /** The target as the user named it, without credentials. */
  readonly address: string
  /**
   * Publishes the DAG. Re-publishing the same root is harmless. Transient failures (connection reset,
   * 5xx, timeouts) are retried with backoff; when retries run out it throws `CairnError` `PUBLISH_FAILED`
   * naming the target and the last error. Refusals by the service (no space, bad credentials) throw
   * at once with the service's message.
   */
  publish(input: PublishInput, options?: PublishOptions): Promise<Receipt>
}
