/**
 * `export croissant`: a release's Croissant 1.1 document, written to a file (or returned), and
 * `build --croissant`, which puts the document into the release as `croissant.json`.
 */
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { CID } from '../cid.js'
import { build, type BuildOptions, type BuildResult } from '../build.js'
import { withDataset } from '../dataset.js'
import { ioError } from '../errors.js'
import { readCardBlock, readVersion, resolveRef } from '../version.js'
import { writeFileAtomic } from '../util/atomic.js'
import { croissantDocument, type JsonLd } from './document.js'

/** Where `export croissant` points `contentUrl` unless told: a path gateway that resolves `/ipfs/<cid>/<path>`. */
export const DEFAULT_CROISSANT_GATEWAY = 'https://ipfs.io'

/** The file `build --croissant` writes beside the data. */
export const CROISSANT_FILE = 'croissant.json'

/** Options of {@link exportCroissant}. */
export interface ExportCroissantOptions {
  readonly dir?: string
  /** A CID, HEAD, HEAD~n or a tag (default HEAD). */
  readonly ref?: string
  /** Gateway base URL for the `contentUrl`s (default {@link DEFAULT_CROISSANT_GATEWAY}). */
  readonly gateway?: string
  /** Write the document here (atomically); else it is only returned. */
  readonly output?: string
  /** Called for each file whose bytes had to be read for its sha256 (a file is read once, ever). */
  readonly onHashed?: (cid: CID, size: number) => void
}

/** What {@link exportCroissant} made. */
export interface ExportCroissantResult {
  readonly version: CID
  readonly document: JsonLd
  /** The file written, when `output` was given. */
  readonly output?: string
  /** Files described. */
  readonly files: number
  /** Files whose bytes were read for their sha256 this time (0 when every digest was known). */
  readonly hashed: number
  readonly warnings: readonly string[]
}

/**
 * The Croissant 1.1 document of the version `ref`, from the dataset's store (which must hold the
 * files' blocks, as it does where the version was built or cloned with its file blocks).
 *
 * @throws {CairnError} `NOT_A_DATASET`, `BAD_REF`, `MISSING_BLOCK` (with a hint when a file's blocks
 *   are not in the store), `CORRUPT_BLOCK`, `IO`.
 */
export async function exportCroissant(options: ExportCroissantOptions = {}): Promise<ExportCroissantResult> {
  return withDataset(options.dir, async (dataset) => {
    const version = await resolveRef(dataset, options.ref)
    const manifest = await readVersion(dataset.store, version)
    const card = await readCardBlock(dataset.store, manifest.card)
    let hashed = 0
    const made = await croissantDocument(dataset.store, version, manifest, card, {
      gateway: options.gateway ?? DEFAULT_CROISSANT_GATEWAY,
      storeDir: dataset.store.root,
      onHashed: (cid, size) => {
        hashed++
        options.onHashed?.(cid, size)
      },
    })
    if (options.output !== undefined) {
      try {
        await writeFileAtomic(options.output, JSON.stringify(made.document, null, 2) + '\n')
      } catch (e) {
        throw ioError('write', options.output, e)
      }
    }
    return { version, document: made.document, output: options.output, files: made.files, hashed, warnings: made.warnings }
  })
}

/**
 * `build --croissant`: builds the files once without moving HEAD, writes their Croissant document to
 * `croissant.json` in the dataset folder, and builds again (every other file found unchanged in the
 * stat cache), so the document is a file of the release and whatever covers the release covers it.
 * The document cannot name its own version: its `contentUrl`s are relative to it (see
 * {@link croissantDocument}'s `inRelease`). Throws as {@link build} does, or `IO`.
 */
export async function buildWithCroissant(options: BuildOptions = {}): Promise<BuildResult & { readonly croissant: string }> {
  const first = await build({ ...options, keepHead: true })
  const made = await withDataset(options.dir, async (dataset) => {
    const path = join(dataset.root, CROISSANT_FILE)
    // nothing changed since HEAD, croissant.json included: the document in HEAD describes these very
    // files (written anew it would differ by its date alone, and make a new version on every build)
    if (first.unchanged && (await stat(path).catch(() => undefined))?.isFile()) return { path, done: true }
    const card = await readCardBlock(dataset.store, first.manifest.card)
    const doc = await croissantDocument(dataset.store, first.version, first.manifest, card, {
      gateway: '',
      inRelease: { skip: CROISSANT_FILE },
      storeDir: dataset.store.root,
    })
    try {
      await writeFileAtomic(path, JSON.stringify(doc.document, null, 2) + '\n')
    } catch (e) {
      throw ioError('write', path, e)
    }
    return { path, done: false }
  })
  if (made.done) return { ...first, croissant: made.path }
  const result = await build(options)
  return { ...result, croissant: made.path }
}
