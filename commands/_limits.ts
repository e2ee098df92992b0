import { Flags } from '@oclif/core'
import { DEFAULT_LIMITS, type DagLimits } from '../src/limits/index.js'

/** `--max-file-bytes`: the largest file a DAG from outside may declare (docs/hostile-input.md). */
export const maxFileBytesFlag = Flags.integer({
  summary: `Refuse a file declaring more bytes than this (default ${DEFAULT_LIMITS.maxFileBytes}, 16 TiB).`,
  min: 1,
})

/** `--max-entries`: the most entries a UnixFS tree from outside may list. */
export const maxEntriesFlag = Flags.integer({
  summary: `Refuse a UnixFS tree listing more entries than this (default ${DEFAULT_LIMITS.maxEntries}).`,
  min: 1,
})

/** The limits the flags set (undefined fields keep the defaults). */
export function limitsFrom(flags: { 'max-file-bytes'?: number; 'max-entries'?: number }): DagLimits {
  return { maxFileBytes: flags['max-file-bytes'], maxEntries: flags['max-entries'] }
}
