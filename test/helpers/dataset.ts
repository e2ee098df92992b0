/**
 * Dataset fixtures shared by several test files. Two groups, kept apart:
 * - library tests (build, pack, verify, diff): {@link makeDataset} makes a temporary dataset from a
 *   file spec through the library's `init`; seeded content helpers make reproducible bytes;
 * - command tests: {@link builtDataset} copies `datasets/tiny-instruct` and builds it twice through
 *   the CLI, and {@link flipBitInside} corrupts a file such as a CAR.
 * Add to this file; do not replace it (other test files import both groups).
 */
import { createHash } from 'node:crypto'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { init } from '../../src/index.js'
import { cairn, parseJson } from './cli.js'
import { tempDirs, type TempDirs } from './tmp.js'

// ---------------------------------------------------------------------------------------------------
// Library tests: temporary datasets made through the library
// ---------------------------------------------------------------------------------------------------

/** The card every {@link makeDataset} dataset gets unless told otherwise. */
export const DEFAULT_CARD = { cardVersion: 1, name: 'test-data', license: 'CC0-1.0' } as const

/** A fixed build date, so that version CIDs do not depend on the clock. */
export const FIXED_DATE = new Date('2025-01-02T03:04:05.000Z')

/** File contents by relative `/`-separated path. */
export type FileSpec = Record<string, string | Uint8Array>

export interface TempDataset {
  /** The dataset folder. */
  readonly dir: string
  /** Writes (or overwrites) files inside the dataset. */
  write(files: FileSpec): Promise<void>
  /** Removes the dataset folder. */
  cleanup(): Promise<void>
}

export interface MakeDatasetOptions {
  /** The card written to `cairn.json` (default {@link DEFAULT_CARD}); a string is written verbatim. */
  readonly card?: object | string
  /** The order in which files are created (default: the key order of `files`). */
  readonly order?: readonly string[]
  /** Set every file's mtime to this (seconds since 1970) after writing, if given. */
  readonly mtime?: number
  /** Skip `init` (no `.cairn/`): the folder is then not a dataset. */
  readonly noInit?: boolean
}

/** A fresh empty folder under the OS temp folder (the caller removes it). */
export async function tempDir(prefix = 'cairn-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

/** Makes a dataset folder under the OS temp folder holding `files` and a card, and runs `init` on it. */
export async function makeDataset(files: FileSpec = {}, options: MakeDatasetOptions = {}): Promise<TempDataset> {
  const dir = await tempDir()
  const card = options.card ?? DEFAULT_CARD
  await writeFile(join(dir, 'cairn.json'), typeof card === 'string' ? card : JSON.stringify(card, null, 2) + '\n')
  const write = async (spec: FileSpec, order: readonly string[] = Object.keys(spec)): Promise<void> => {
    for (const path of order) {
      const abs = join(dir, ...path.split('/'))
      await mkdir(dirname(abs), { recursive: true })
      await writeFile(abs, spec[path])
      if (options.mtime !== undefined) await utimes(abs, options.mtime, options.mtime)
    }
  }
  await write(files, options.order)
  if (!options.noInit) await init({ dir })
  return {
    dir,
    write: (spec) => write(spec),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  }
}

/**
 * `n` pseudo-random bytes determined by `seed` (sha-256 in counter mode): the same seed always gives
 * the same bytes, different seeds give unrelated bytes (so no chunk is shared by accident).
 */
export function seededBytes(n: number, seed: string): Buffer {
  const out = Buffer.allocUnsafe(n)
  let filled = 0
  for (let counter = 0; filled < n; counter++) {
    const block = createHash('sha256').update(`${seed}:${counter}`).digest()
    filled += block.copy(out, filled, 0, Math.min(block.length, n - filled))
  }
  return out
}

/** JSON Lines text from row objects (one per line, trailing newline). */
export function jsonl(rows: readonly unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n'
}

/** Every file under `dir`, recursively, as absolute paths. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const abs = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await listFiles(abs)))
    else if (entry.isFile()) out.push(abs)
  }
  return out
}

/** Runs `fn` and returns what it threw (fails the test if it did not throw). */
export async function thrown(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn()
  } catch (e) {
    return e
  }
  throw new Error('expected the call to throw, it returned normally')
}

// ---------------------------------------------------------------------------------------------------
// Command tests: tiny-instruct built through the CLI
// ---------------------------------------------------------------------------------------------------

/** A dag-json link as `--json` prints it. */
export interface JsonLink {
  readonly '/': string
}

/** A built copy of tiny-instruct: two versions, HEAD at v2. */
export interface BuiltDataset {
  readonly dir: string
  /** CID of the first version (message "first", created 2026-01-01T00:00:00Z). */
  readonly v1: string
  /** CID of the second version (message "second", created 2026-02-01T00:00:00Z): v1 plus {@link ADDED_FILE}. */
  readonly v2: string
}

/** The file v2 adds to v1. */
export const ADDED_FILE = 'notes/extra.txt'

/** Runs a command in-process and returns its parsed --json output; throws unless it exits 0. */
export async function cairnJson<T>(args: readonly string[]): Promise<T> {
  const r = await cairn([...args, '--json'])
  if (r.exitCode !== 0) throw new Error(`cairn ${args.join(' ')} exited ${r.exitCode}:\n${r.stdout}${r.stderr}`)
  return parseJson<T>(r)
}

/** Copies tiny-instruct, inits it and builds v1 and v2 in-process. */
export async function builtDataset(tmp: TempDirs): Promise<BuiltDataset> {
  const dir = await tmp.copyDataset('tiny-instruct')
  await cairnJson(['init', dir])
  const first = await cairnJson<{ version: JsonLink }>(['build', '-C', dir, '-m', 'first', '--date', '2026-01-01T00:00:00Z'])
  await mkdir(join(dir, 'notes'), { recursive: true })
  await writeFile(join(dir, ADDED_FILE), 'one more file\n')
  const second = await cairnJson<{ version: JsonLink }>(['build', '-C', dir, '-m', 'second', '--date', '2026-02-01T00:00:00Z'])
  return { dir, v1: first.version['/'], v2: second.version['/'] }
}

/**
 * {@link builtDataset} made once and copied (store included) into each test's own folder: building is
 * the slow part, and a copy is as independent as a fresh build. Call `dispose` in `afterAll`.
 */
export function builtTemplate(): { copy(tmp: TempDirs): Promise<BuiltDataset>; dispose(): Promise<void> } {
  const own = tempDirs('cairn-template-')
  let template: Promise<BuiltDataset> | undefined
  return {
    async copy(tmp) {
      template ??= builtDataset(own)
      const t = await template
      const dir = join(await tmp.make(), 'tiny-instruct')
      await cp(t.dir, dir, { recursive: true })
      return { ...t, dir }
    },
    dispose: () => own.cleanup(),
  }
}

/**
 * Flips one bit of `file` inside the first occurrence of `inside` (e.g. a shard's bytes, which a CAR
 * holds verbatim in a raw leaf block), so exactly that block no longer matches its CID.
 */
export async function flipBitInside(file: string, inside: Uint8Array): Promise<number> {
  const bytes = await readFile(file)
  const at = bytes.indexOf(inside)
  if (at < 0) throw new Error(`flipBitInside: ${file} does not hold the given bytes`)
  const offset = at + Math.floor(inside.length / 2)
  bytes[offset] ^= 0x01
  await writeFile(file, bytes)
  return offset
}
