/**
 * Bounds on the work any DAG from outside may ask for (docs/hostile-input.md). Every walk of a DAG
 * that cairn did not make checks these before it holds, fetches or writes more: memory follows what a
 * walk holds at once, never the number of paths a DAG can spell. Callers may raise the two that a real
 * dataset can reach (entries, file size); depth and name lengths are the file system's and the format's.
 */
import { CairnError } from '../errors.js'

/** Limits of one walk; every field defaults to {@link DEFAULT_LIMITS}. */
export interface DagLimits {
  /** Entries (files, folders, links) a UnixFS directory tree may list in all. */
  readonly maxEntries?: number
  /** Bytes a UnixFS file may declare. */
  readonly maxFileBytes?: number
}

/** The defaults: generous for any real dataset, far below what a DAG bomb spells. */
export const DEFAULT_LIMITS = Object.freeze({
  maxEntries: 1_000_000,
  // 16 TiB: every file cairn or Kubo makes, and nothing a 40-level bomb of doubled links declares
  maxFileBytes: 2 ** 44,
})

/** Folders nested deeper than this are refused (BAD_PATH) before the path is even built. */
export const MAX_DIRECTORY_DEPTH = 1024
/**
 * Levels of a UnixFS file DAG. A balanced tree of 174 or 1024 links needs 9 levels for 2^64 bytes of
 * one-byte chunks; trickle DAGs add a few per doubling of their rows; 128 leaves room for all of them.
 */
export const MAX_FILE_DEPTH = 128
/** Bytes of one name (NAME_MAX on Linux, macOS and Windows file systems). */
export const MAX_NAME_BYTES = 255
/** Bytes of a whole path handed to the file system, NUL included (PATH_MAX). */
export const MAX_PATH_BYTES = 4096

/** The limits with defaults filled in. */
export function limitsOf(limits: DagLimits = {}): Required<DagLimits> {
  return {
    maxEntries: limits.maxEntries ?? DEFAULT_LIMITS.maxEntries,
    maxFileBytes: limits.maxFileBytes ?? DEFAULT_LIMITS.maxFileBytes,
  }
}

/**
 * Throws `BAD_PATH` when `name` (one path segment) is longer than {@link MAX_NAME_BYTES} bytes, or
 * `path` (as it will reach the file system) longer than {@link MAX_PATH_BYTES} - 1: the check every
 * path from outside goes through before any system call (which would fail with ENAMETOOLONG).
 */
export function checkPathLength(path: string, what = 'path'): void {
  const bytes = Buffer.byteLength(path)
  if (bytes >= MAX_PATH_BYTES) {
    throw new CairnError(
      'BAD_PATH',
      `The ${what} ${JSON.stringify(clip(path))} is ${bytes} bytes long, more than a file system takes (${MAX_PATH_BYTES - 1})`,
      {
        subject: clip(path),
      },
    )
  }
  for (const segment of path.split('/')) {
    const n = Buffer.byteLength(segment)
    if (n > MAX_NAME_BYTES) {
      throw new CairnError(
        'BAD_PATH',
        `The ${what} ${JSON.stringify(clip(path))} has a name of ${n} bytes, more than a file system takes (${MAX_NAME_BYTES})`,
        {
          subject: clip(path),
        },
      )
    }
  }
}

/** A long name or path shortened for a one-line message (start and end kept). */
export function clip(text: string, max = 120): string {
  return text.length <= max ? text : `${text.slice(0, max / 2)}…${text.slice(-max / 2 + 1)} (${text.length} characters)`
}

/** The error for a walk past a limit; `hint` names the flag that raises it, where one does. */
export function limitExceeded(message: string, subject: string, hint?: string): CairnError {
  return new CairnError('LIMIT_EXCEEDED', message, {
    subject,
    hint: hint ?? 'this DAG is deeper than any importer makes; it may have been made to exhaust the reader',
  })
}
