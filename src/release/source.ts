/**
 * The blocks a dataset can offer: its store first; in a clone, then the files the clone wrote (each
 * block re-made from the file with cairn's profile and checked against its CID before use); then
 * remote sources (`--from`, else those the clone recorded), opened only when a block is missing.
 * `log`, `show`, `ls`, `pack`, `publish`, `serve` and `check` read through it, so that they work in a
 * clone as in the dataset it came from.
 */
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { checkBlock } from '../car/block.js'
import { DAG_PB, RAW, type CID } from '../cid.js'
import { openDataset, STORE_DIR, type Dataset } from '../dataset.js'
import { CairnError, isCairnError } from '../errors.js'
import { walkEntries } from '../shard-index/prolly.js'
import { openSources, type SourceFailure, type SourceList } from '../sources/index.js'
import type { BlockSource } from '../store/blocks.js'
import { CHUNK_SIZE, importFile } from '../unixfs/file.js'
import { readVersion } from '../version.js'
import { cloneCommand, readCloneRecord, selectedBy, type CloneRecord } from './clone-record.js'

/** What {@link withDatasetSource} hands over. */
export interface DatasetSource {
  readonly dataset: Dataset
  /** Store, then the clone's files, then the remote sources. */
  readonly source: BlockSource
  /** The clone record, when the dataset is a clone. */
  readonly clone?: CloneRecord
  /** Whether remote sources were opened (a block was missing locally). */
  remoteUsed(): boolean
}

/** Options of {@link withDatasetSource}. */
export interface DatasetSourceOptions {
  /** Remote sources for blocks the dataset lacks, tried before those a clone recorded. */
  readonly from?: readonly string[]
  /** Whether the sources a clone recorded are used too (default true). */
  readonly recorded?: boolean
  /** Hears of each failure of a remote source on a block. */
  readonly onFailure?: (failure: SourceFailure) => void
}

/**
 * Opens the dataset holding `dir` with its block source; close it when done. Throws as
 * `openDataset`; the source throws `MISSING_BLOCK` (a block nowhere, with how to fetch it in a clone)
 * or the remote sources' `FETCH_FAILED`.
 */
export async function openDatasetSource(
  dir: string | undefined,
  options: DatasetSourceOptions = {},
): Promise<DatasetSource & { close(): Promise<void> }> {
  const dataset = await openDataset(dir)
  let remote: Promise<SourceList> | undefined
  try {
    const clone = await readCloneRecord(join(dataset.root, STORE_DIR))
    const from = [...(options.from ?? []), ...(options.recorded === false ? [] : (clone?.sources ?? []))]
    const files = clone ? new ClonedFiles(dataset, clone) : undefined
    const local = localSource(dataset, files)
    const source: BlockSource = {
      async get(cid) {
        try {
          return await local.get(cid)
        } catch (e) {
          if (!isCairnError(e, 'MISSING_BLOCK') || from.length === 0) throw withCloneHint(e, clone, dataset)
        }
        remote ??= openSources(from, { onFailure: options.onFailure })
        return (await remote).get(cid)
      },
    }
    return {
      dataset,
      source,
      clone,
      remoteUsed: () => remote !== undefined,
      close: async () => {
        await (await remote?.catch(() => undefined))?.close()
        await dataset.store.close()
      },
    }
  } catch (e) {
    await dataset.store.close()
    throw e
  }
}

/** {@link openDatasetSource}, `fn`, and close, whatever happens. */
export async function withDatasetSource<T>(
  dir: string | undefined,
  options: DatasetSourceOptions,
  fn: (ds: DatasetSource) => Promise<T>,
): Promise<T> {
  const ds = await openDatasetSource(dir, options)
  try {
    return await fn(ds)
  } finally {
    await ds.close()
  }
}

/**
 * The dataset's own blocks: its store, then (in a clone) the files the clone wrote. No network. What
 * `serve` offers. The caller closes the dataset's store.
 */
export async function datasetBlocks(dataset: Dataset): Promise<BlockSource> {
  const clone = await readCloneRecord(join(dataset.root, STORE_DIR))
  return localSource(dataset, clone ? new ClonedFiles(dataset, clone) : undefined)
}

function localSource(dataset: Dataset, files: ClonedFiles | undefined): BlockSource {
  if (!files) return dataset.store
  return {
    async get(cid) {
      try {
        return await dataset.store.get(cid)
      } catch (e) {
        if (!isCairnError(e, 'MISSING_BLOCK') && !isCairnError(e, 'CORRUPT_BLOCK')) throw e
      }
      return files.get(cid)
    },
  }
}

function withCloneHint(e: unknown, clone: CloneRecord | undefined, dataset: Dataset): unknown {
  if (!clone || !isCairnError(e, 'MISSING_BLOCK') || e.hint) return e
  return new CairnError('MISSING_BLOCK', `${e.message} (not in the clone of ${clone.cid}, and no source to fetch it from)`, {
    subject: e.subject,
    hint: `give a source that has it with --from, or fetch history with \`${cloneCommand(clone, dataset.root)} --history all\``,
    cause: e,
  })
}

/** Where one block of a file lies. */
interface Place {
  readonly path: string
  readonly offset: number
  readonly length: number
}

/**
 * The blocks of the files a clone wrote. The files are found through the version's shard index (one
 * entry per file held in memory, built on first use); a file of one block is that block; a larger one
 * is re-imported with cairn's profile once, which gives its inner nodes and where each leaf lies. Every
 * block is checked against its CID when read: a file changed since the clone is never served, its
 * blocks are `MISSING_BLOCK` (saying which file changed).
 */
class ClonedFiles implements BlockSource {
  private entries?: Promise<Map<string, { path: string; size: number; held: boolean }>>
  /** Leaves of the large files imported so far, and their inner nodes. */
  private readonly leaves = new Map<string, Place>()
  private readonly nodes = new Map<string, Uint8Array>()
  private readonly imported = new Map<string, Promise<void>>()

  constructor(
    private readonly dataset: Dataset,
    private readonly clone: CloneRecord,
  ) {}

  async get(cid: CID): Promise<Uint8Array> {
    const key = cid.toString()
    const node = this.nodes.get(key)
    if (node) return node
    const leaf = this.leaves.get(key)
    if (leaf) return this.read(cid, leaf)
    const entry = (await this.fileEntries()).get(key)
    if (entry && !entry.held) {
      throw new CairnError('MISSING_BLOCK', `${entry.path} (${cid}) was left out of this partial clone of ${this.clone.cid}`, {
        subject: entry.path,
        hint: `fetch it with \`${cloneCommand(this.clone, this.dataset.root, { include: [entry.path], exclude: [] })}\`, or give a source that has it with --from`,
      })
    }
    if (entry) {
      if (cid.code === RAW && entry.size <= CHUNK_SIZE) return this.read(cid, { path: entry.path, offset: 0, length: entry.size })
      await this.importOnce(key, entry.path)
      const again = this.nodes.get(key)
      if (again) return again
    } else if (cid.code === RAW || cid.code === DAG_PB) {
      // a leaf asked for before its file's root: import the large files until it turns up
      for (const [fileKey, e] of await this.fileEntries()) {
        if (!e.held || e.size <= CHUNK_SIZE || this.imported.has(fileKey)) continue
        await this.importOnce(fileKey, e.path).catch(() => {})
        const found = this.leaves.get(key)
        if (found) return this.read(cid, found)
      }
    }
    throw new CairnError('MISSING_BLOCK', `Block ${cid} is not in the store of ${this.dataset.root} nor in its files`, {
      subject: key,
    })
  }

  private fileEntries(): Promise<Map<string, { path: string; size: number; held: boolean }>> {
    this.entries ??= (async () => {
      const map = new Map<string, { path: string; size: number; held: boolean }>()
      const version = await readVersion(this.dataset.store, this.clone.cid)
      const held = selectedBy(this.clone.selections)
      for await (const e of walkEntries(this.dataset.store, version.index)) {
        const key = e.cid.toString()
        // the same bytes at two paths: either copy serves
        if (map.get(key)?.held) continue
        map.set(key, { path: e.path, size: e.size, held: held === undefined || held(e.path) })
      }
      return map
    })()
    return this.entries
  }

  private importOnce(key: string, path: string): Promise<void> {
    let p = this.imported.get(key)
    if (!p) {
      p = this.importLarge(key, path)
      this.imported.set(key, p)
    }
    return p
  }

  private async importLarge(key: string, path: string): Promise<void> {
    const abs = join(this.dataset.root, path)
    const leaves: [string, Place][] = []
    const nodes: [string, Uint8Array][] = []
    let offset = 0
    let root: CID
    try {
      root = (
        await importFile(abs, (b) => {
          if (b.cid.code === RAW) {
            leaves.push([b.cid.toString(), { path, offset, length: b.bytes.length }])
            offset += b.bytes.length
          } else nodes.push([b.cid.toString(), b.bytes.slice()])
        })
      ).cid
    } catch (e) {
      throw changed(path, key, e)
    }
    if (root.toString() !== key) throw changed(path, key)
    for (const [k, v] of leaves) this.leaves.set(k, v)
    for (const [k, v] of nodes) this.nodes.set(k, v)
  }

  private async read(cid: CID, place: Place): Promise<Uint8Array> {
    const abs = join(this.dataset.root, place.path)
    const bytes = new Uint8Array(place.length)
    try {
      const fh = await open(abs, 'r')
      try {
        const { bytesRead } = await fh.read(bytes, 0, place.length, place.offset)
        if (bytesRead !== place.length) throw changed(place.path, cid.toString())
      } finally {
        await fh.close()
      }
      await checkBlock(cid, bytes)
    } catch (e) {
      throw changed(place.path, cid.toString(), e)
    }
    return bytes
  }
}

function changed(path: string, cid: string, cause?: unknown): CairnError {
  if (isCairnError(cause, 'MISSING_BLOCK')) return cause
  const gone = (cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
  return new CairnError(
    'MISSING_BLOCK',
    gone
      ? `Block ${cid} of ${path} is missing: the clone's file is not there`
      : `Block ${cid} of ${path} is missing: the file changed since the clone`,
    { subject: cid, hint: `restore ${path} (run the clone again to fetch it), or give a source that has it with --from`, cause },
  )
}
