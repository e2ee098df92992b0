/**
 * Typed errors of the cairn library. Every failure the library reports is a {@link CairnError} with a
 * stable {@link ErrorCode}; the CLI maps codes to exit codes in one place (`commands/_errors.ts`).
 * Messages say what was found and what was expected, and `hint` gives the remedy where one exists.
 */

/** Stable error codes. Scripts may match on them; never rename one. */
export type ErrorCode =
  /** The folder has no `cairn.json` / `.cairn/` store. */
  | 'NOT_A_DATASET'
  /** `cairn init` on a folder that already is a dataset. */
  | 'ALREADY_A_DATASET'
  /** The dataset card failed validation. */
  | 'INVALID_CARD'
  /** A manifest block (version, index node, schema) failed validation or has an unknown format version. */
  | 'INVALID_MANIFEST'
  /** A row of a JSONL/CSV shard does not match the card's row schema, or cannot be parsed. */
  | 'INVALID_ROW'
  /** A shard's bytes are not what its format requires (a Parquet file without footer, …). */
  | 'INVALID_SHARD'
  /** A file changed while it was being read. */
  | 'FILE_CHANGED'
  /** A file or folder could not be read or written. */
  | 'IO'
  /** A path is not acceptable as a shard path (not UTF-8, `..`, absolute, NUL, …). */
  | 'BAD_PATH'
  /** A ref (HEAD, HEAD~n, tag, CID) does not resolve. */
  | 'BAD_REF'
  /** A block is not in the store or source. */
  | 'MISSING_BLOCK'
  /** A block's bytes do not hash to its CID, or do not decode with its codec. */
  | 'CORRUPT_BLOCK'
  /** A CAR file is malformed or truncated. */
  | 'BAD_CAR'
  /** Verification found differences (used by the library only when asked to throw). */
  | 'VERIFY_FAILED'
  /** A caller passed arguments that do not make sense together. */
  | 'USAGE'
  /** A publish target refused, or kept failing after retries. */
  | 'PUBLISH_FAILED'
  /** Credentials are missing or wrong (names the variable or flag, never the secret). */
  | 'AUTH'
  /** No source could supply a block or a file (each source's failure is listed). */
  | 'FETCH_FAILED'
  /** A clone target folder holds something else. */
  | 'TARGET_NOT_EMPTY'
  /** `restore` would overwrite or remove files that differ from HEAD (and `force` was not given). */
  | 'UNCOMMITTED_CHANGES'
  /** Another live process holds the lock of the dataset or clone target (the message names its pid). */
  | 'LOCKED'
  /** A DAG from outside asks for more than a limit allows (entries, file size, depth); the hint names the flag that raises it. */
  | 'LIMIT_EXCEEDED'
  /** An EVM chain refused an anchor (funds, revert), or its JSON-RPC endpoint kept failing or answered garbage. */
  | 'ANCHOR_FAILED'
  /** A recorded anchor receipt contradicts the chain (another digest, a block reorganised away, another chain id). */
  | 'ANCHOR_MISMATCH'
  /** A signature bundle does not verify: tampered, over another digest, by another key, or malformed. */
  | 'SIGNATURE_INVALID'
  /** No signature by the given key covers the version (neither it nor a descendant is signed). */
  | 'NOT_SIGNED'
  /** An IPNS record is malformed, too large, badly signed, or not for the name asked. */
  | 'RECORD_INVALID'
  /** An IPNS record's validity has passed. */
  | 'RECORD_EXPIRED'
  /** An IPNS record older (lower sequence) than one already seen for that name: a rollback. */
  | 'NAME_ROLLBACK'
  /** An IPNS name now points at a version whose history does not hold the version last seen: a fork. */
  | 'NAME_FORK'
  /** `compose`: two parts bring a file at the same path (or a file where another has a folder). */
  | 'PATHS_OVERLAP'
  /** `compose`: a part was built with another profile, or its shards were checked under other rules than the composed card's. */
  | 'INCOMPATIBLE_PARTS'

export interface CairnErrorOptions {
  /** The file, shard path or CID the error is about. */
  readonly subject?: string
  /** What the user can do about it. */
  readonly hint?: string
  /** Structured details (e.g. every validation error with its JSON path). */
  readonly details?: readonly unknown[]
  readonly cause?: unknown
}

/** The one error class the library throws on purpose. */
export class CairnError extends Error {
  readonly code: ErrorCode
  readonly subject?: string
  readonly hint?: string
  readonly details?: readonly unknown[]

  constructor(code: ErrorCode, message: string, options: CairnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'CairnError'
    this.code = code
    this.subject = options.subject
    this.hint = options.hint
    this.details = options.details
  }
}

/** True when `e` is a {@link CairnError}, optionally of the given code. */
export function isCairnError(e: unknown, code?: ErrorCode): e is CairnError {
  return e instanceof CairnError && (code === undefined || e.code === code)
}

/** Wraps a Node.js file-system error as an `IO` error naming the file. */
export function ioError(op: string, path: string, cause: unknown): CairnError {
  const reason = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : String(cause)
  const hint =
    reason === 'ENOSPC'
      ? 'the disk is full; free some space and run the command again (nothing was committed)'
      : reason === 'EACCES' || reason === 'EPERM'
        ? 'check the file permissions'
        : undefined
  return new CairnError('IO', `Cannot ${op} ${path}: ${reason}`, { subject: path, hint, cause })
}
