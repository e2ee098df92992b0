/**
 * What a cloned dataset remembers of its clone, in `.cairn/clone.json` (format `v: 2`; the first
 * format, `{cid, complete}` alone, is still read): the version cloned, whether every selected file is
 * in place, the sources it came from (so that later commands can fetch what the clone lacks: older
 * versions, files a partial clone left out), and for a partial clone the `--include`/`--exclude` of
 * each run (a file is there when any run selected it). See docs/releases.md.
 */
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { Minimatch } from 'minimatch'
import { tryParseCid, type CID } from '../cid.js'
import { STORE_DIR, type Dataset } from '../dataset.js'
import { CairnError, ioError } from '../errors.js'
import { writeFileAtomic } from '../util/atomic.js'

/** The file, inside a dataset's `.cairn/`. */
export const CLONE_RECORD_FILE = 'clone.json'

/** One run's selection of files: include globs (none: every file), then exclude globs. */
export interface Selection {
  readonly include: readonly string[]
  readonly exclude: readonly string[]
}

/** The record of a clone. */
export interface CloneRecord {
  /** The version cloned. */
  readonly cid: CID
  /** True once every selected file is in place and HEAD points at the version. */
  readonly complete: boolean
  /** The sources as given to the clone (paths made absolute), tried in this order. Empty when unknown. */
  readonly sources: readonly string[]
  /** The runs' selections; empty for a clone of every file. */
  readonly selections: readonly Selection[]
}

/** Reads the clone record of a dataset, or `undefined` for a dataset that is not a clone. Throws `IO`, `INVALID_MANIFEST`. */
export async function readCloneRecord(storeDir: string): Promise<CloneRecord | undefined> {
  const file = join(storeDir, CLONE_RECORD_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw ioError('read', file, e)
  }
  const bad = (why: string): CairnError =>
    new CairnError('INVALID_MANIFEST', `${file} is not a clone record: ${why}`, {
      subject: file,
      hint: 'clone the version again into a new folder',
    })
  let raw: Record<string, unknown>
  try {
    raw = JSON.parse(text) as Record<string, unknown>
  } catch (e) {
    throw bad((e as Error).message)
  }
  const cid = typeof raw?.cid === 'string' ? tryParseCid(raw.cid) : undefined
  if (!cid) throw bad('no version CID')
  if (raw.v !== undefined && raw.v !== 2) throw bad(`format v ${JSON.stringify(raw.v)} (expected 2)`)
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [])
  const selections = Array.isArray(raw.selections)
    ? (raw.selections as Record<string, unknown>[]).map((s) => ({ include: strings(s?.include), exclude: strings(s?.exclude) }))
    : []
  return { cid, complete: raw.complete === true, sources: strings(raw.sources), selections }
}

/** Writes the clone record (to a temporary name, then renamed). Throws `IO`. */
export async function writeCloneRecord(storeDir: string, record: CloneRecord): Promise<void> {
  const text = JSON.stringify(
    {
      v: 2,
      cid: record.cid.toString(),
      complete: record.complete,
      sources: record.sources,
      ...(record.selections.length > 0 ? { selections: record.selections } : {}),
    },
    null,
    2,
  )
  const file = join(storeDir, CLONE_RECORD_FILE)
  try {
    await writeFileAtomic(file, text + '\n')
  } catch (e) {
    throw ioError('write', file, e)
  }
}

/**
 * The selections after a run with `selection`: a run of every file makes the clone whole (none
 * left); a run with globs adds its selection to those of earlier runs, unless earlier runs took every file.
 */
export function nextSelections(previous: CloneRecord | undefined, selection: Selection, sameVersion: boolean): Selection[] {
  const all = selection.include.length === 0 && selection.exclude.length === 0
  if (all) return []
  if (!previous || !sameVersion) return [selection]
  // an earlier run of every file that completed left nothing out
  if (previous.selections.length === 0 && previous.complete) return []
  return [...previous.selections, selection]
}

/** Source specs as a later command can use them from any folder: paths made absolute, URLs kept. */
export function absoluteSources(specs: readonly string[]): string[] {
  return specs.map((s) => (/^https?:\/\//i.test(s) ? s : s.startsWith('dir:') ? `dir:${resolve(s.slice(4))}` : resolve(s)))
}

/**
 * A predicate for the files a partial clone holds (a file is there when any run selected it), or
 * `undefined` when the clone took every file. Globs as `clone` reads them (minimatch, `dot: true`;
 * without `/` they match the base name).
 */
export function selectedBy(selections: readonly Selection[]): ((path: string) => boolean) | undefined {
  if (selections.length === 0) return undefined
  const compiled = selections.map((s) => ({
    include: s.include.map((g) => new Minimatch(g, { dot: true, matchBase: !g.includes('/') })),
    exclude: s.exclude.map((g) => new Minimatch(g, { dot: true, matchBase: !g.includes('/') })),
  }))
  return (path) =>
    compiled.some((s) => (s.include.length === 0 || s.include.some((m) => m.match(path))) && !s.exclude.some((m) => m.match(path)))
}

/** The `clone` command that resumes or completes a clone, for messages. */
export function cloneCommand(record: CloneRecord, folder: string, selection?: Selection): string {
  const from = record.sources.map((s) => ` --from ${quote(s)}`).join('')
  const globs = selection
    ? [...selection.include.map((g) => ` --include ${quote(g)}`), ...selection.exclude.map((g) => ` --exclude ${quote(g)}`)].join('')
    : ''
  return `cairn clone ${record.cid} ${quote(folder)}${from}${globs}`
}

function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

/**
 * Refuses to commit in a clone that is incomplete (files missing, HEAD not set) or partial (a build
 * would drop the files never fetched): `NOT_A_DATASET` saying how to finish the clone. Build calls it first.
 */
export async function assertBuildable(dataset: Dataset): Promise<void> {
  const record = await readCloneRecord(join(dataset.root, STORE_DIR))
  if (!record) return
  if (!record.complete) {
    throw new CairnError(
      'NOT_A_DATASET',
      `${dataset.root} is an incomplete clone of ${record.cid}: a build would commit its missing files as deleted`,
      {
        subject: dataset.root,
        hint: `run \`${cloneCommand(record, dataset.root)}\` again to resume`,
      },
    )
  }
  if (record.selections.length > 0) {
    throw new CairnError(
      'NOT_A_DATASET',
      `${dataset.root} is a partial clone of ${record.cid}: a build would commit the files it never fetched as deleted`,
      {
        subject: dataset.root,
        hint: `fetch the rest with \`${cloneCommand(record, dataset.root)}\`, then build`,
      },
    )
  }
}

/** The message for a clone whose HEAD is not set yet, or `undefined` when `dataset` is not such a clone. */
export async function incompleteCloneError(dataset: Dataset, ref: string): Promise<CairnError | undefined> {
  const record = await readCloneRecord(join(dataset.root, STORE_DIR))
  if (!record || record.complete) return undefined
  return new CairnError('BAD_REF', `incomplete clone of ${record.cid}: run \`${cloneCommand(record, dataset.root)}\` again to resume`, {
    subject: ref,
    hint: `the version is ${record.cid}; HEAD is set once every file is in place`,
  })
}

/**
 * Records a clone run as it starts (incomplete): its sources, and its selection added to those of
 * earlier runs of the same version. `sources` undefined (the caller opened the sources itself) keeps
 * what an earlier run recorded. Returns the record to pass to {@link finishCloneRecord}. Throws `IO`.
 */
export async function startCloneRecord(
  storeDir: string,
  cid: CID,
  run: { readonly sources?: readonly string[]; readonly include?: readonly string[]; readonly exclude?: readonly string[] },
): Promise<CloneRecord> {
  const previous = await readCloneRecord(storeDir).catch(() => undefined)
  const same = previous?.cid.equals(cid) ?? false
  const selection = { include: [...(run.include ?? [])], exclude: [...(run.exclude ?? [])] }
  const selections = dedupe(nextSelections(previous, selection, same))
  const sources = run.sources ? absoluteSources(run.sources) : same ? (previous?.sources ?? []) : []
  const record: CloneRecord = { cid, complete: false, sources, selections }
  await writeCloneRecord(storeDir, record)
  return record
}

/** Marks the clone complete. Throws `IO`. */
export async function finishCloneRecord(storeDir: string, record: CloneRecord): Promise<void> {
  await writeCloneRecord(storeDir, { ...record, complete: true })
}

function dedupe(selections: Selection[]): Selection[] {
  const seen = new Set<string>()
  return selections.filter((s) => {
    const key = JSON.stringify(s)
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
