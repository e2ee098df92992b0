/**
 * Packs backed by data files (docs/store.md, "Store modes"): clone packs (`reflink` mode) and reference
 * packs (`reference` mode). The block store hands them the raw leaves a build read from a file
 * ({@link FilePacks.put}) and the reads of blocks that lie in a reference pack ({@link FilePacks.read}).
 * A referenced block whose data file was edited or deleted is fetched from the sources the store
 * recorded (the clone's sources, the `dir:` targets it published to) and kept as a copy; failing that,
 * the error names the file and the versions that lost blocks with it.
 */
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { CID } from '../cid.js'
import { CairnError, isCairnError } from '../errors.js'
import type { LeafOrigin } from '../unixfs/file.js'
import type { BlockSource } from './blocks.js'
import type { StoreMode } from './mode.js'
import { isReferencePack, ReferenceReader, ReferenceWriter, type ReferenceLoss } from './reference-pack.js'
import { isClonePack, ReflinkWriter } from './reflink-pack.js'

export { isReferencePack } from './reference-pack.js'

/** Whether a pack's bytes are (or clone) a data file: never rewritten by gc, kept whole or deleted whole. */
export function isFilePack(id: string): boolean {
  return isReferencePack(id) || isClonePack(id)
}

/** A block's place, as the store's index keeps it. */
export interface Place {
  readonly pack: string
  readonly offset: number
  readonly length: number
}

/** The file-backed packs of one store. */
export class FilePacks {
  private readonly packsDir: string
  private readonly datasetRoot: string
  private referenceWriter: ReferenceWriter | undefined
  private reflinkWriter: ReflinkWriter | undefined
  private reader: ReferenceReader | undefined

  /** `storeDir` is the `.cairn` folder; `mode` says how new leaves are stored. */
  constructor(
    private readonly storeDir: string,
    readonly mode: StoreMode,
  ) {
    this.packsDir = join(storeDir, 'packs')
    this.datasetRoot = dirname(storeDir)
  }

  /** Why reflinks fell back to copies in this process, if they did. */
  get reflinkUnsupported(): string | undefined {
    return this.reflinkWriter?.unsupported
  }

  /**
   * Stores the raw leaf `cid` read from a file by reference or in a clone of the file, as the mode says;
   * resolves with its place once its index line is written, or undefined when it is to be copied (copy
   * mode, a small file in reflink mode, a file system that cannot clone, a file outside the dataset).
   */
  async put(cid: CID, length: number, from: LeafOrigin): Promise<Place | undefined> {
    if (this.mode === 'reference') {
      this.referenceWriter ??= new ReferenceWriter(this.packsDir, this.datasetRoot)
      return this.referenceWriter.put(cid, length, from)
    }
    if (this.mode === 'reflink') {
      this.reflinkWriter ??= new ReflinkWriter(this.packsDir)
      return this.reflinkWriter.put(cid, length, from)
    }
    return undefined
  }

  /**
   * Reads a block of a reference pack, checked against its CID. When its data file changed or went away,
   * fetches it from the recorded sources and hands it to `keep` (the store stores a copy); when none has
   * it, throws `MISSING_BLOCK` naming the file and the versions that lost blocks (`store` reads them).
   */
  async read(cid: CID, at: Place, store: BlockSource, keep: (bytes: Uint8Array) => Promise<void>): Promise<Uint8Array> {
    this.reader ??= new ReferenceReader(this.packsDir, this.datasetRoot)
    const got = await this.reader.get(cid, at.pack, at.offset, at.length)
    if ('bytes' in got) return got.bytes
    const tried: string[] = []
    for (const spec of await recordedSources(this.storeDir)) {
      tried.push(spec)
      try {
        const bytes = await fetchFrom(spec, cid)
        await keep(bytes)
        return bytes
      } catch (e) {
        if (!isCairnError(e)) throw e
      }
    }
    throw await lostBlock(cid, got.lost, tried, this.storeDir, store)
  }

  /** Whether a block of a reference pack still reads back right from its data file. */
  async intact(cid: CID, at: Place): Promise<boolean> {
    this.reader ??= new ReferenceReader(this.packsDir, this.datasetRoot)
    return 'bytes' in (await this.reader.get(cid, at.pack, at.offset, at.length))
  }

  /** Closes what the writers hold open. */
  async close(): Promise<void> {
    await Promise.all([this.referenceWriter?.close(), this.reflinkWriter?.close()])
    this.referenceWriter = undefined
    this.reflinkWriter = undefined
  }
}

/** The `MISSING_BLOCK` error of a lost referenced block: the file, why, the versions that lost it. */
async function lostBlock(
  cid: CID,
  loss: ReferenceLoss,
  tried: readonly string[],
  storeDir: string,
  store: BlockSource,
): Promise<CairnError> {
  const { versionsUsing } = await import('./reference-loss.js')
  const versions = loss.path === undefined ? [] : await versionsUsing(storeDir, store, loss.path, cid).catch(() => [])
  const fed = versions.length > 0 ? `; versions that lost blocks with it: ${versions.map(String).join(', ')}` : ''
  const sources =
    tried.length > 0 ? ` and none of the recorded sources has it (${tried.join(', ')})` : ' and no source is recorded to fetch it from'
  return new CairnError('MISSING_BLOCK', `Block ${cid} is lost: ${loss.detail} (store mode reference)${sources}${fed}`, {
    subject: cid.toString(),
    details: [{ file: loss.path, why: loss.why, versions: versions.map(String), sources: tried }],
    hint:
      loss.why === 'changed'
        ? 'put the file back as it was, or clone the lost versions from a place they were published to; `cairn store check` lists every file that changed'
        : 'restore the file, or clone the lost versions from a place they were published to; `cairn store check` lists every lost file',
  })
}

/**
 * The sources the store recorded, in order: those of its clone record, then the `dir:` targets it
 * published to (readable here; a Kubo or Storacha target is not a block source).
 */
export async function recordedSources(storeDir: string): Promise<string[]> {
  const out: string[] = []
  try {
    const clone = JSON.parse(await readFile(join(storeDir, 'clone.json'), 'utf8')) as { sources?: unknown }
    if (Array.isArray(clone.sources)) for (const s of clone.sources) if (typeof s === 'string') out.push(s)
  } catch {
    // not a clone, or an unreadable record: no source from it
  }
  const base = join(storeDir, 'published')
  const versions = await readdir(base).catch(() => [] as string[])
  for (const v of versions) {
    for (const name of await readdir(join(base, v)).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue
      try {
        const receipt = JSON.parse(await readFile(join(base, v, name), 'utf8')) as { target?: unknown }
        if (typeof receipt.target === 'string' && receipt.target.startsWith('dir:') && !out.includes(receipt.target))
          out.push(receipt.target)
      } catch {
        // an unreadable receipt names no source
      }
    }
  }
  return out
}

/** The block from one source, checked against its CID by the source. */
async function fetchFrom(spec: string, cid: CID): Promise<Uint8Array> {
  const { openSource } = await import('../sources/index.js')
  const source = await openSource(spec)
  try {
    return await source.get(cid)
  } finally {
    await source.close()
  }
}
