/**
 * The one place that maps library errors to exit codes and messages (DVC's single mapping). Exit
 * codes: 0 success; 1 verification found differences; 2 usage or unknown ref; 3 not a dataset;
 * 4 bad input (card, row, shard, path, a file changed, a DAG past a limit); 5 integrity (missing or corrupt block, bad
 * CAR, invalid manifest); 6 I/O; 7 a target or source failed (after retries); 8 missing or wrong
 * credentials; 9 another process holds the lock (try again when it is done); 10 a recorded anchor
 * contradicts the chain; 11 trust refused (not signed by the key, an expired, rolled-back or forked name);
 * 70 internal error (a bug: please report it). Each code has one meaning: an exit code names what went
 * wrong, never where.
 */
import type { ErrorCode } from '../src/errors.js'
import { isCairnError } from '../src/errors.js'

export const EXIT = {
  ok: 0,
  differences: 1,
  usage: 2,
  notDataset: 3,
  badInput: 4,
  integrity: 5,
  io: 6,
  network: 7,
  auth: 8,
  locked: 9,
  anchorMismatch: 10,
  trust: 11,
  internal: 70,
} as const

const EXIT_OF: Record<ErrorCode, number> = {
  USAGE: EXIT.usage,
  BAD_REF: EXIT.usage,
  NOT_A_DATASET: EXIT.notDataset,
  ALREADY_A_DATASET: EXIT.notDataset,
  INVALID_CARD: EXIT.badInput,
  INVALID_ROW: EXIT.badInput,
  INVALID_SHARD: EXIT.badInput,
  BAD_PATH: EXIT.badInput,
  FILE_CHANGED: EXIT.badInput,
  MISSING_BLOCK: EXIT.integrity,
  CORRUPT_BLOCK: EXIT.integrity,
  BAD_CAR: EXIT.integrity,
  INVALID_MANIFEST: EXIT.integrity,
  VERIFY_FAILED: EXIT.differences,
  IO: EXIT.io,
  PUBLISH_FAILED: EXIT.network,
  FETCH_FAILED: EXIT.network,
  AUTH: EXIT.auth,
  TARGET_NOT_EMPTY: EXIT.notDataset,
  UNCOMMITTED_CHANGES: EXIT.badInput,
  LOCKED: EXIT.locked,
  LIMIT_EXCEEDED: EXIT.badInput,
  ANCHOR_FAILED: EXIT.network,
  ANCHOR_MISMATCH: EXIT.anchorMismatch,
  SIGNATURE_INVALID: EXIT.integrity,
  RECORD_INVALID: EXIT.integrity,
  NOT_SIGNED: EXIT.trust,
  RECORD_EXPIRED: EXIT.trust,
  NAME_ROLLBACK: EXIT.trust,
  NAME_FORK: EXIT.trust,
  PATHS_OVERLAP: EXIT.badInput,
  INCOMPATIBLE_PARTS: EXIT.badInput,
}

/** The JSON form of an error, as `--json` prints it (schemas/cli/error.schema.json). */
export interface ErrorJson {
  readonly error: {
    readonly code: string
    readonly message: string
    readonly subject?: string
    readonly hint?: string
    readonly details?: readonly unknown[]
  }
}

/** Exit code, human text and JSON for any thrown value. */
export function describeError(err: unknown): { exitCode: number; text: string; json: ErrorJson } {
  if (isCairnError(err)) {
    const text = `Error: ${err.message}` + (err.hint ? `\nHint: ${err.hint}` : '')
    const error = { code: err.code, message: err.message, subject: err.subject, hint: err.hint, details: err.details }
    return { exitCode: EXIT_OF[err.code], text, json: { error: JSON.parse(JSON.stringify(error)) as ErrorJson['error'] } }
  }
  const oclif = err as { oclif?: { exit?: number }; message?: string; code?: string }
  if (oclif?.oclif?.exit !== undefined || /^(Missing|Unexpected|Nonexistent|Expected|Parsing)/.test(oclif?.message ?? '')) {
    const message = oclif.message ?? String(err)
    return { exitCode: EXIT.usage, text: `Error: ${message}`, json: { error: { code: 'USAGE', message } } }
  }
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err)
  return {
    exitCode: EXIT.internal,
    text: `Internal error (a bug in cairn, please report it):\n${message}`,
    json: { error: { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) } },
  }
}
