/**
 * `name resolve` (and the first step of `clone <name>`): fetch the name's record from every source,
 * keep the valid one with the highest sequence, and hold it against this user's high-water mark: a
 * lower sequence is a rollback, a new value whose parent chain lacks the value seen is a fork.
 */
import type { CID } from '../cid.js'
import { CairnError, isCairnError } from '../errors.js'
import { openSources } from '../sources/index.js'
import type { BlockSource } from '../store/blocks.js'
import { readVersion } from '../version.js'
import { parseName } from './name.js'
import { fetchRecord, localBase, readRecordFile } from './places.js'
import { validateRecord, type ValidRecord } from './record.js'
import { readSeen, recordSeen } from './seen.js'

/** How far back the parent chain of a new value is walked to find the value last seen. */
export const MAX_FORK_WALK = 10_000

/** What {@link nameResolve} is told. */
export interface NameResolveOptions {
  /** `k51…`, `/ipns/k51…` or `ipns://k51…`. */
  readonly name: string
  /** Where to look: gateway or router URLs, `dir:` folders, dataset folders. */
  readonly from: readonly string[]
  /** Accept a value whose history does not hold the value last seen (the mark moves to it). */
  readonly allowFork?: boolean
  /** Raise the high-water mark to the record found (default true; `clone` does it after the clone). */
  readonly remember?: boolean
  /** Where version blocks come from for the fork check (default: the `from` sources). */
  readonly source?: BlockSource
  readonly env?: NodeJS.ProcessEnv
  readonly timeoutMs?: number
}

/** What {@link nameResolve} found. */
export interface NameResolveResult {
  readonly name: string
  readonly value: CID
  readonly sequence: string
  readonly validity: string
  readonly ttlSeconds: number
  /** The source the chosen record came from. */
  readonly from: string
  /** The high-water mark before this resolve, if any. */
  readonly previous?: { readonly sequence: string; readonly value: CID }
  /** True when the value is not a descendant of the previous one and `allowFork` let it through. */
  readonly fork: boolean
  /** Sources that had no record, or a refused one, with why. */
  readonly skipped: readonly { readonly source: string; readonly reason: string }[]
}

/**
 * Resolves the name. Throws `USAGE` for a name that is not an Ed25519 IPNS name; `FETCH_FAILED` when
 * no source has a record for it (each source's answer in `details`); `RECORD_INVALID` /
 * `RECORD_EXPIRED` when every record found was refused (the first refusal's code); `NAME_ROLLBACK`;
 * `NAME_FORK` (unless `allowFork`).
 */
export async function nameResolve(options: NameResolveOptions): Promise<NameResolveResult> {
  const env = options.env ?? process.env
  const name = parseName(options.name)
  if (options.from.length === 0) throw new CairnError('USAGE', `Where should ${name.name} be looked up? Give --from`)
  const skipped: { source: string; reason: string }[] = []
  const refusals: CairnError[] = []
  let best: { record: ValidRecord; from: string } | undefined
  for (const spec of options.from) {
    let bytes: Uint8Array | undefined
    try {
      bytes = /^https?:\/\//i.test(spec)
        ? await fetchRecord(spec, name.name, options.timeoutMs)
        : await readRecordFile(await localBase(spec), name.name)
    } catch (e) {
      skipped.push({ source: spec, reason: (e as Error).message })
      continue
    }
    if (bytes === undefined) {
      skipped.push({ source: spec, reason: 'no record for this name' })
      continue
    }
    try {
      const record = validateRecord(name, bytes, spec)
      if (best === undefined || record.sequence > best.record.sequence) best = { record, from: spec }
    } catch (e) {
      if (!isCairnError(e)) throw e
      refusals.push(e)
      skipped.push({ source: spec, reason: e.message })
    }
  }
  if (best === undefined) {
    if (refusals.length > 0) throw new CairnError(refusals[0].code, refusals[0].message, { subject: name.name, details: skipped })
    throw new CairnError(
      'FETCH_FAILED',
      `No source knows the name ${name.name}: ${skipped.map((s) => `${s.source}: ${s.reason}`).join('; ')}`,
      {
        subject: name.name,
        details: skipped,
        hint: 'give a source that holds the record with --from (a dir: target, a cairn serve URL, a delegated router)',
      },
    )
  }
  const { record, from } = best
  const seen = await readSeen(name.name, env)
  let fork = false
  if (seen !== undefined) {
    if (record.sequence < seen.sequence)
      throw new CairnError(
        'NAME_ROLLBACK',
        `The record of ${name.name} from ${from} has sequence ${record.sequence}, older than sequence ${seen.sequence} (${seen.value}) seen on ${seen.seenAt}: a rollback, refused`,
        { subject: name.name, hint: 'a source is serving an old record; try another source' },
      )
    if (!record.value.equals(seen.value)) {
      const descends = await isDescendant(record.value, seen.value, options)
      if (!descends || record.sequence === seen.sequence) {
        if (!options.allowFork)
          throw new CairnError(
            'NAME_FORK',
            `${name.name} now points at ${record.value} (sequence ${record.sequence}), whose history does not hold ${seen.value} (sequence ${seen.sequence}) seen before: a fork, refused`,
            { subject: name.name, hint: 'if the publisher meant to start a new line of history, run again with --allow-fork' },
          )
        fork = true
      }
    }
  }
  if (options.remember !== false) await recordSeen(name.name, record.sequence, record.value, env)
  return {
    name: name.name,
    value: record.value,
    sequence: record.sequence.toString(),
    validity: record.validity.toISOString(),
    ttlSeconds: Math.round(record.ttlMs / 1000),
    from,
    ...(seen ? { previous: { sequence: seen.sequence.toString(), value: seen.value } } : {}),
    fork,
    skipped,
  }
}

/** True when `ancestor` is on the parent chain of `value` (as far as the sources hold versions). */
async function isDescendant(value: CID, ancestor: CID, options: NameResolveOptions): Promise<boolean> {
  const list = options.source === undefined ? await openSources(options.from, { timeoutMs: options.timeoutMs }) : undefined
  const source = options.source ?? list!
  try {
    let at: CID | null = value
    for (let i = 0; at !== null && i <= MAX_FORK_WALK; i++) {
      if (at.equals(ancestor)) return true
      try {
        at = (await readVersion(source, at)).parent
      } catch (e) {
        if (isCairnError(e)) return false
        throw e
      }
    }
    return false
  } finally {
    await list?.close()
  }
}
