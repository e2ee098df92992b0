/**
 * The `dir:` target: a folder of CAR files anyone can host, in format version 1 of docs/dir-target.md.
 * A version is written as CARv1 files of at most the shard size (`cars/<car-cid>.car`), each with its
 * block index (`cars/<car-cid>.idx`), then `versions/<version-cid>` listing every CAR the version needs.
 * Blocks the folder already holds (in any `.idx`) are not written again. Every file is written to a
 * temporary name and renamed when complete, the `.car` before its `.idx`, `versions/<cid>` last.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import * as Digest from 'multiformats/hashes/digest'
import { carHeader, sectionLength, sectionPrefix } from '../car/write.js'
import { CID, RAW, SHA2_256 } from '../cid.js'
import { CairnError, ioError } from '../errors.js'
import { releaseLinks, type History } from '../release/links.js'
import type { PublishInput, PublishOptions, Receipt, StoredShard, Target } from './interface.js'
import { writeFileAtomic } from '../util/atomic.js'

/** The multicodec code of a CAR file's own CID. */
export const CAR_CODEC = 0x0202

/** `cairn-dir.json`: what marks a folder as a `dir:` target, and its format version. */
export const DIR_MARKER = { format: 'cairn-dir', v: 1 } as const

/** The shard size `dir:` uses unless told otherwise: 100 MiB. */
export const DEFAULT_DIR_SHARD_SIZE = 100 * 1024 * 1024

/** Options of {@link createDirTarget}. */
export interface DirTargetOptions {
  /** The folder (created when missing). Relative paths are resolved against the current folder. */
  readonly path: string
}

// Write in batches: one writev per few MiB instead of one write per (possibly tiny) block.
const FLUSH_BYTES = 8 * 1024 * 1024

/**
 * A `dir:` target writing into `options.path`. Its address is `dir:<absolute path>`.
 *
 * `publish` throws `TARGET_NOT_EMPTY` when the folder holds other files and no `cairn-dir.json`,
 * `PUBLISH_FAILED` when its `cairn-dir.json` has another format or version, `IO` when a file cannot be
 * read or written (temporary files are removed), and the source's `MISSING_BLOCK` / `CORRUPT_BLOCK`.
 * A failed publish leaves only whole CARs with their indexes behind, which a later publish reuses.
 */
export function createDirTarget(options: DirTargetOptions): Target {
  const path = resolve(options.path)
  return {
    address: `dir:${path}`,
    publish: (input, publishOptions) => publishToDir(path, input, publishOptions ?? {}),
  }
}

async function publishToDir(path: string, input: PublishInput, options: PublishOptions): Promise<Receipt> {
  const shardSize = options.shardSize ?? DEFAULT_DIR_SHARD_SIZE
  if (!Number.isSafeInteger(shardSize) || shardSize < 1) {
    throw new CairnError('USAGE', `Shard size ${shardSize} is not a positive whole number of bytes`)
  }
  const address = `dir:${path}`
  const carsDir = join(path, 'cars')
  const versionsDir = join(path, 'versions')
  await prepareFolder(path)
  const root = input.root
  const versionFile = join(versionsDir, root.toString())
  const publishedAt = new Date().toISOString()

  // Already published: the versions file is written last, so its CARs are all there.
  const listed = await readLines(versionFile)
  if (listed !== undefined) {
    const shards = await describeCars(carsDir, listed)
    if (shards) {
      options.onProgress?.({ shards: 0, bytes: 0, message: `${root} is already in ${path}` })
      return { target: address, root, publishedAt, shards, newBlocks: 0, newBytes: 0, details: { alreadyPublished: true } }
    }
  }

  const index = await loadIndex(carsDir)
  /** The CARs the version needs, in the order the walk first needs them (names, or a CAR being written). */
  const needed: (string | CarFile)[] = []
  const neededSet = new Set<string | CarFile>()
  const need = (car: string | CarFile): void => {
    if (!neededSet.has(car)) {
      neededSet.add(car)
      needed.push(car)
    }
  }
  const written: CarFile[] = []
  let current: CarFile | undefined
  let newBlocks = 0
  let newBytes = 0
  let carBytes = 0
  const finish = async (car: CarFile): Promise<void> => {
    await car.finish()
    carBytes += car.size
    options.onProgress?.({
      shards: written.length,
      bytes: carBytes,
      message: `shard ${written.length} written (${human(car.size)}, ${car.blocks} block${car.blocks === 1 ? '' : 's'}): cars/${car.name}`,
    })
  }

  try {
    const seen = new Set<string>()
    const stack: CID[] = [root]
    const depths: History[] = [input.history ?? 0]
    while (stack.length > 0) {
      options.signal?.throwIfAborted()
      const cid = stack.pop() as CID
      const depth = depths.pop() as History
      const key = cid.toString()
      if (seen.has(key) || cid.multihash.code === 0x00) continue
      seen.add(key)
      const there = index.get(key)
      let bytes: Uint8Array
      if (there !== undefined) {
        need(there)
        // a raw block has no links: a block the folder holds need not even be read
        if (cid.code === RAW) continue
        bytes = await input.source.get(cid)
      } else {
        bytes = await input.source.get(cid)
        const section = sectionLength(cid, bytes.length)
        if (current && current.blocks > 0 && current.size + section > shardSize) {
          await finish(current)
          current = undefined
        }
        if (!current) {
          current = await CarFile.create(carsDir, root)
          written.push(current)
        }
        await current.append(cid, bytes)
        need(current)
        newBlocks++
        newBytes += bytes.length
        if (newBlocks % 64 === 0) options.onProgress?.({ shards: written.length - 1, bytes: carBytes + current.size })
      }
      const links = releaseLinks(cid, bytes, depth)
      for (let i = links.length - 1; i >= 0; i--) {
        if (seen.has(links[i].cid.toString())) continue
        stack.push(links[i].cid)
        depths.push(links[i].history)
      }
    }
    if (current) await finish(current)
    current = undefined
  } catch (e) {
    await Promise.all(written.filter((c) => !c.done).map((c) => c.discard()))
    throw e
  }

  const names = needed.map((c) => (typeof c === 'string' ? c : c.name))
  await writeAtomic(versionFile, names.map((n) => n + '\n').join(''))
  const shards = (await describeCars(carsDir, names)) ?? []
  return {
    target: address,
    root,
    publishedAt,
    shards,
    newBlocks,
    newBytes,
    details: { newCars: written.map((c) => c.name), carBytesWritten: carBytes, shardSize },
  }
}

/** Creates the folder and its marker, or checks that an existing folder is a `dir:` target of format 1. */
async function prepareFolder(path: string): Promise<void> {
  const marker = join(path, 'cairn-dir.json')
  let text: string | undefined
  try {
    text = await readFile(marker, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('read', marker, e)
  }
  if (text === undefined) {
    let entries: string[] = []
    try {
      entries = await readdir(path)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('read', path, e)
    }
    const foreign = entries.filter((n) => n !== 'cars' && n !== 'versions')
    if (foreign.length > 0) {
      throw new CairnError(
        'TARGET_NOT_EMPTY',
        `${path} holds other files (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}) and no cairn-dir.json`,
        {
          subject: path,
          hint: 'publish to an empty or new folder, or to one cairn made',
        },
      )
    }
    try {
      await mkdir(path, { recursive: true })
    } catch (e) {
      throw ioError('create', path, e)
    }
    await writeAtomic(marker, JSON.stringify(DIR_MARKER) + '\n')
  } else {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      parsed = undefined
    }
    const m = parsed as { format?: unknown; v?: unknown } | undefined
    if (m?.format !== DIR_MARKER.format || m.v !== DIR_MARKER.v) {
      throw new CairnError('PUBLISH_FAILED', `${marker} says ${text.trim().slice(0, 80)} (expected {"format": "cairn-dir", "v": 1})`, {
        subject: marker,
        hint: 'this folder was written by another tool or a newer cairn; upgrade cairn or publish elsewhere',
      })
    }
  }
  for (const sub of ['cars', 'versions']) {
    try {
      await mkdir(join(path, sub), { recursive: true })
    } catch (e) {
      throw ioError('create', join(path, sub), e)
    }
  }
}

/** Block CID (as written in the `.idx` files) → the CAR file name holding it, for CARs present whole. */
async function loadIndex(carsDir: string): Promise<Map<string, string>> {
  const index = new Map<string, string>()
  let entries: string[]
  try {
    entries = await readdir(carsDir)
  } catch (e) {
    throw ioError('read', carsDir, e)
  }
  const cars = new Set(entries.filter((n) => n.endsWith('.car')))
  for (const name of entries) {
    if (!name.endsWith('.idx')) continue
    const car = name.slice(0, -4) + '.car'
    // an index without its CAR (a folder copied half) must not make us skip blocks
    if (!cars.has(car)) continue
    const lines = (await readLines(join(carsDir, name))) ?? []
    for (const line of lines) {
      const space = line.indexOf(' ')
      if (space > 0) index.set(line.slice(0, space), car)
    }
  }
  return index
}

/** The stored shards for CAR file names, or undefined when one of them is missing. */
async function describeCars(carsDir: string, names: readonly string[]): Promise<StoredShard[] | undefined> {
  const shards: StoredShard[] = []
  for (const name of names) {
    let size: number
    try {
      size = (await stat(join(carsDir, name))).size
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw ioError('read', join(carsDir, name), e)
    }
    let cid: CID | undefined
    try {
      cid = CID.parse(name.replace(/\.car$/, ''))
    } catch {
      cid = undefined
    }
    shards.push({ ...(cid ? { cid } : {}), size, file: `cars/${name}` })
  }
  return shards
}

/** Non-empty lines of a text file, or undefined when it does not exist. */
async function readLines(file: string): Promise<string[] | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw ioError('read', file, e)
  }
  return text.split('\n').filter((l) => l.length > 0)
}

async function writeAtomic(file: string, text: string): Promise<void> {
  await writeFileAtomic(file, text).catch((e: unknown) => {
    throw ioError('write', file, e)
  })
}

/** One CAR being written to a temporary file, hashed and indexed as it goes. */
class CarFile {
  /** Bytes so far (header included). */
  size = 0
  blocks = 0
  done = false
  /** `<car-cid>.car`, known once finished. */
  name = ''
  private readonly hash = createHash('sha256')
  private readonly idx: string[] = []
  private pending: Uint8Array[] = []
  private pendingBytes = 0

  private constructor(
    private readonly carsDir: string,
    private readonly tmp: string,
    private readonly fh: FileHandle,
  ) {}

  /** Opens a temporary CAR in `carsDir` and writes its header (roots = [root]). */
  static async create(carsDir: string, root: CID): Promise<CarFile> {
    const tmp = join(carsDir, `${randomBytes(8).toString('hex')}.car.tmp`)
    let fh: FileHandle
    try {
      fh = await open(tmp, 'w')
    } catch (e) {
      throw ioError('create', tmp, e)
    }
    const car = new CarFile(carsDir, tmp, fh)
    car.push(carHeader([root]))
    return car
  }

  async append(cid: CID, bytes: Uint8Array): Promise<void> {
    this.push(sectionPrefix(cid, bytes.length))
    this.idx.push(`${cid.toString()} ${this.size} ${bytes.length}\n`)
    this.push(bytes)
    this.blocks++
    if (this.pendingBytes >= FLUSH_BYTES) await this.flush()
  }

  /** Flushes, syncs and closes the file, then renames it `<car-cid>.car` and writes `<car-cid>.idx`. */
  async finish(): Promise<void> {
    try {
      await this.flush()
      await this.fh.datasync()
      await this.fh.close()
    } catch (e) {
      await this.discard()
      throw ioError('write', this.tmp, e)
    }
    const cid = CID.createV1(CAR_CODEC, Digest.create(SHA2_256, this.hash.digest()))
    this.name = `${cid.toString()}.car`
    const final = join(this.carsDir, this.name)
    try {
      await rename(this.tmp, final)
    } catch (e) {
      await this.discard()
      throw ioError('write', final, e)
    }
    this.done = true
    await writeAtomic(join(this.carsDir, `${cid.toString()}.idx`), this.idx.join(''))
  }

  /** Closes and removes the temporary file. */
  async discard(): Promise<void> {
    this.done = true
    await this.fh.close().catch(() => {})
    await unlink(this.tmp).catch(() => {})
  }

  private push(chunk: Uint8Array): void {
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    this.size += chunk.length
    this.hash.update(chunk)
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return
    const chunks = this.pending
    this.pending = []
    this.pendingBytes = 0
    const total = chunks.reduce((n, c) => n + c.length, 0)
    try {
      const { bytesWritten } = await this.fh.writev(chunks)
      // writev may write less than asked; finish the rest the plain way
      if (bytesWritten < total) {
        const rest = Buffer.concat(chunks).subarray(bytesWritten)
        for (let at = 0; at < rest.length;) at += (await this.fh.write(rest, at)).bytesWritten
      }
    } catch (e) {
      throw ioError('write', this.tmp, e)
    }
  }
}

function human(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}
