/**
 * `status`: what changed in the dataset folder against HEAD (or another version), as the next build
 * would see it: shards added, removed, modified and renamed, and the card. Unchanged files are known
 * from the stat cache without being read, so a status of an unchanged folder costs what an unchanged
 * rebuild costs. Nothing is written.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CID, Link } from '../cid.js'
import { withDataset } from '../dataset.js'
import type { ChangeCounts, ShardChange } from '../diff.js'
import type { primaryKeyFor, RowDiff } from '../diff/rows.js'
import type { VersionManifest } from '../manifest.js'
import type { SkippedEntry } from '../scan.js'
import type { BlockSource } from '../store/blocks.js'
import { worktreeChanges, type CardState } from './changes.js'

export interface StatusOptions {
  /** The dataset folder or a folder inside it (default: the current folder). */
  readonly dir?: string
  /** The version to compare with (default `HEAD`; before the first build every file is added). */
  readonly ref?: string
  /** Also compare the rows of modified Parquet, Arrow, JSONL and CSV shards (reads them). */
  readonly rows?: boolean
  /** With `rows`: sample rows kept per kind and shard (default 5). */
  readonly limit?: number
  /** Threads that hash changed files (default: one per CPU). */
  readonly jobs?: number
}

/** What {@link status} found. */
export interface StatusResult {
  /** The version compared with (null before the first build). */
  readonly version: Link<VersionManifest> | null
  /** True when the next build would make no new version. */
  readonly clean: boolean
  /** Shard changes in path order (as `diff` reports them; a folder file's rows and schema are not read). */
  readonly shards: readonly ShardChange[]
  readonly counts: ChangeCounts
  /** `cairn.json` against the version's card. */
  readonly card: CardState
  /** Files in the folder (after `.cairnignore`), and how many had to be read (not found unchanged in the stat cache). */
  readonly files: number
  readonly hashed: number
  /** Entries that are not shards (symbolic links, special files). */
  readonly skipped: readonly SkippedEntry[]
}

/**
 * Compares the dataset folder with HEAD (or `ref`). Throws `NOT_A_DATASET`, `BAD_REF` (an unknown ref;
 * no HEAD yet is not an error), `USAGE` (a bad `.cairnignore` pattern), `MISSING_BLOCK`, `IO`.
 */
export async function status(options: StatusOptions = {}): Promise<StatusResult> {
  return withDataset(options.dir, async (dataset) => {
    const ref = options.ref ?? 'HEAD'
    const head = ref === 'HEAD' ? await dataset.refs.head() : await (await import('../version.js')).resolveRef(dataset, ref)
    const found = await worktreeChanges(dataset, head, { jobs: options.jobs })
    // the diff machinery (and, with rows, the readers) is loaded only when something changed: a clean
    // folder, the common case, needs none of it
    let shards: ShardChange[] = found.changes.length === 0 ? [] : (await import('../diff.js')).classify(found.changes)
    if (options.rows && found.manifest && shards.length > 0) {
      const { readCardBlock } = await import('../version.js')
      const { readerFor } = await import('../formats/index.js')
      const card = await readCardBlock(dataset.store, found.manifest.card)
      shards = await Promise.all(
        shards.map(async (s) =>
          s.status === 'modified' && s.before && readerFor(s.path)
            ? { ...s, rows: await rowsAgainstFile(dataset.store, s.path, s.before.cid, join(dataset.root, s.path), card, options.limit) }
            : s,
        ),
      )
    }
    const counts = { added: 0, removed: 0, modified: 0, renamed: 0 }
    for (const s of shards) counts[s.status]++
    return {
      version: (head as Link<VersionManifest> | undefined) ?? null,
      clean: shards.length === 0 && found.card === 'same',
      shards,
      counts,
      card: found.card,
      files: found.files,
      hashed: found.hashed,
      skipped: found.skipped,
    }
  })
}

/** The row diff of a version's shard (from the store) against the folder's file. */
async function rowsAgainstFile(
  source: BlockSource,
  path: string,
  before: CID,
  file: string,
  card: Parameters<typeof primaryKeyFor>[0],
  limit: number | undefined,
): Promise<RowDiff> {
  const { readerFor } = await import('../formats/index.js')
  const { diffRowFiles, primaryKeyFor } = await import('../diff/rows.js')
  const { exportToFile } = await import('../unixfs/export.js')
  const reader = readerFor(path)
  if (!reader) return { status: 'skipped', reason: 'not a tabular format' }
  const dir = await mkdtemp(join(tmpdir(), 'cairn-status-'))
  try {
    const old = join(dir, `a${path.slice(path.lastIndexOf('.'))}`)
    await exportToFile(source, before, old)
    return await diffRowFiles(reader, old, file, { primaryKey: primaryKeyFor(card, path), limit: limit ?? 5 })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
