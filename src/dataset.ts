/**
 * A dataset folder: `cairn.json` (the card) beside `.cairn/` (the store). `init` makes one;
 * `openDataset` finds one from a folder inside it, the way git finds its repository.
 */
import { access, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { checkCard } from './card/check.js'
import { CairnError, ioError } from './errors.js'
import type { CID } from './cid.js'
import type { Card, ShardRule } from './manifest.js'
import { validateWith, type SchemaError } from './schemas.js'
import { BlockStore } from './store/blocks.js'
import { modeOf, writeStoreMode, type StoreMode } from './store/mode.js'
import { Refs } from './store/refs.js'

export const CARD_FILE = 'cairn.json'
export const STORE_DIR = '.cairn'
const STORE_VERSION = 1

/** An opened dataset. */
export interface Dataset {
  /** The dataset folder (holds `cairn.json`). */
  readonly root: string
  readonly store: BlockStore
  readonly refs: Refs
}

/** What `init` is told; everything but the folder is optional. */
export interface InitOptions {
  readonly dir?: string
  readonly name?: string
  readonly description?: string
  readonly license?: string
  readonly authors?: readonly string[]
  readonly provenance?: Card['provenance']
  readonly shards?: readonly ShardRule[]
  /**
   * Check an existing `cairn.json` as a card written from the options is checked: row schemas against
   * the JSON Schema meta-schema, the licence against SPDX identifiers (src/card/check.ts).
   */
  readonly checkCard?: boolean
  /** How builds store the files' blocks: `copy` (default), `reflink` or `reference` (docs/store.md). */
  readonly storeMode?: StoreMode
}

/** What `init` did. */
export interface InitResult {
  readonly dir: string
  readonly card: Card
  /** False when a `cairn.json` was already there and was kept. */
  readonly cardWritten: boolean
  /** The version whose card was written back, when `cairn.json` was missing beside an existing store. */
  readonly restoredFrom?: CID
}

/**
 * Makes `dir` (default: the current folder) a dataset: writes `cairn.json` from the options unless
 * one exists (then it is validated and kept), and creates the store `.cairn/`. When `.cairn/` exists
 * but `cairn.json` does not, writes back HEAD's card (no card options given) or a card from the
 * options, keeping the store. Throws `ALREADY_A_DATASET` when both exist and `INVALID_CARD` when the
 * card is invalid (nothing is written then).
 */
export async function init(options: InitOptions = {}): Promise<InitResult> {
  const dir = resolve(options.dir ?? '.')
  const cardFlags = [
    options.name,
    options.description,
    options.license,
    options.authors,
    options.shards,
    ...Object.values(options.provenance ?? {}),
  ]
  const noCardFlags = cardFlags.every((f) => f === undefined || (Array.isArray(f) && f.length === 0))
  if ((await exists(join(dir, STORE_DIR))) && !(await exists(join(dir, CARD_FILE))) && noCardFlags) {
    // the way out when cairn.json was lost: the card of HEAD, the store kept (src/card/recover.ts)
    const restored = await (await import('./card/recover.js')).restoreCardFromHead(dir)
    if (restored) return { dir, card: restored.card, cardWritten: true, restoredFrom: restored.version }
  }
  if ((await exists(join(dir, STORE_DIR))) && (await exists(join(dir, CARD_FILE)))) {
    throw new CairnError('ALREADY_A_DATASET', `${dir} is already a cairn dataset (${STORE_DIR}/ exists)`, { subject: dir })
  }
  let card: Card
  let cardWritten = false
  if (await exists(join(dir, CARD_FILE))) {
    card = await readCard(dir)
  } else {
    const base = dir.split(/[\\/]/).pop() || 'dataset'
    card = prune({
      cardVersion: 1,
      name: options.name ?? base.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') ?? 'dataset',
      description: options.description,
      license: options.license,
      authors: options.authors && options.authors.length > 0 ? options.authors : undefined,
      provenance: options.provenance && Object.keys(prune(options.provenance)).length > 0 ? prune(options.provenance) : undefined,
      shards: options.shards && options.shards.length > 0 ? options.shards : undefined,
    }) as Card
    assertValidCard(card, join(dir, CARD_FILE))
    cardWritten = true
  }
  if (cardWritten || options.checkCard) assertSoundCard(card, join(dir, CARD_FILE))
  try {
    await mkdir(dir, { recursive: true })
    for (const sub of ['packs', 'tmp', 'refs/tags']) await mkdir(join(dir, STORE_DIR, sub), { recursive: true })
    if (!(await exists(join(dir, STORE_DIR, 'store.json'))))
      await writeFile(join(dir, STORE_DIR, 'store.json'), JSON.stringify({ storeVersion: STORE_VERSION }) + '\n')
    if (cardWritten) await writeFile(join(dir, CARD_FILE), JSON.stringify(card, null, 2) + '\n')
  } catch (e) {
    throw ioError('initialise the dataset in', dir, e)
  }
  if (options.storeMode !== undefined) await writeStoreMode(join(dir, STORE_DIR), options.storeMode)
  return { dir, card, cardWritten }
}

/**
 * Opens the dataset that holds `dir` (default: the current folder), looking upward for a folder with
 * both `cairn.json` and `.cairn/`. Throws `NOT_A_DATASET` with a hint to run `cairn init`.
 */
export async function openDataset(dir = '.'): Promise<Dataset> {
  const start = resolve(dir)
  let cardless: string | undefined
  for (let at = start; ; at = dirname(at)) {
    if (cardless === undefined && !(await exists(join(at, CARD_FILE))) && (await exists(join(at, STORE_DIR, 'store.json')))) cardless = at
    if ((await exists(join(at, STORE_DIR, 'store.json'))) && (await exists(join(at, CARD_FILE)))) {
      const meta = JSON.parse(await readFile(join(at, STORE_DIR, 'store.json'), 'utf8')) as { storeVersion?: unknown; storeMode?: unknown }
      if (meta.storeVersion !== STORE_VERSION) {
        throw new CairnError(
          'NOT_A_DATASET',
          `${join(at, STORE_DIR)} has store version ${JSON.stringify(meta.storeVersion)} (expected ${STORE_VERSION})`,
          {
            subject: at,
            hint: 'upgrade cairn',
          },
        )
      }
      const storeDir = join(at, STORE_DIR)
      return { root: at, store: new BlockStore(storeDir, { mode: modeOf(meta, storeDir) }), refs: new Refs(storeDir) }
    }
    if (dirname(at) === at) break
  }
  if (cardless !== undefined)
    throw new CairnError('NOT_A_DATASET', `${join(cardless, CARD_FILE)} is missing (the store ${join(cardless, STORE_DIR)}/ is there)`, {
      subject: cardless,
      hint: '`cairn init` writes back the card of HEAD and keeps the store and its history (or give --name and the other card flags for a new card)',
    })
  throw new CairnError('NOT_A_DATASET', `${start} is not inside a cairn dataset (no ${CARD_FILE} with a ${STORE_DIR}/ store beside it)`, {
    subject: start,
    hint: 'run `cairn init` in the dataset folder first',
  })
}

/**
 * Opens the dataset holding `dir` (as {@link openDataset}), runs `fn` with it, and closes its store's
 * files whatever happens.
 */
export async function withDataset<T>(dir: string | undefined, fn: (dataset: Dataset) => Promise<T>): Promise<T> {
  const dataset = await openDataset(dir)
  try {
    return await fn(dataset)
  } finally {
    await dataset.store.close()
  }
}

/** Reads and validates `cairn.json` of the dataset at `root`. Throws `INVALID_CARD` with every error. */
export async function readCard(root: string): Promise<Card> {
  const file = join(root, CARD_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    throw ioError('read', file, e)
  }
  let card: unknown
  try {
    card = JSON.parse(text)
  } catch (e) {
    throw new CairnError('INVALID_CARD', `${file} is not valid JSON: ${(e as Error).message}`, { subject: file })
  }
  assertValidCard(card, file)
  return card
}

/** Throws `INVALID_CARD` listing every problem {@link checkCard} finds (row schemas, licence), all at once. */
function assertSoundCard(card: Card, file: string): void {
  const errors = checkCard(card)
  if (errors.length > 0) {
    const list = errors.map((e) => `  ${e.path}: ${e.message}`).join('\n')
    throw new CairnError('INVALID_CARD', `${file}: the card would fail later:\n${list}`, {
      subject: file,
      details: errors,
      hint: 'fix the licence or the row schema; nothing was written',
    })
  }
}

/** Throws `INVALID_CARD` listing every schema error with its JSON path. */
export function assertValidCard(card: unknown, file: string): asserts card is Card {
  const errors: SchemaError[] = [...validateWith('card.schema.json', card)]
  if (errors.length > 0) {
    const list = errors.map((e) => `  ${e.path}: ${e.message}`).join('\n')
    throw new CairnError('INVALID_CARD', `${file} is not a valid dataset card:\n${list}`, { subject: file, details: errors })
  }
}

function prune<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}
