/**
 * `name publish`: point the publisher's IPNS name at a version, with a sequence that only grows, and
 * put the record where readers look (`dir:` targets, Kubo nodes, delegated routers). The record is
 * kept in the dataset's store too (`.cairn/ipns/<name>.ipns-record`), so `cairn serve` answers for it.
 */
import { join } from 'node:path'
import type { CID } from '../cid.js'
import { STORE_DIR, withDataset } from '../dataset.js'
import { CairnError } from '../errors.js'
import { loadKey } from '../signing/keys.js'
import { readVersion, resolveRef } from '../version.js'
import { parseName } from './name.js'
import { localBase, putToKubo, putToRouter, readRecordFile, writeRecordFile } from './places.js'
import { createRecord, DEFAULT_LIFETIME_MS, MIN_TTL_MS, validateRecord } from './record.js'
import { readSeen, recordSeen } from './seen.js'

/** What {@link namePublish} is told. */
export interface NamePublishOptions {
  readonly dir?: string
  /** The version the name points at (default `HEAD`). */
  readonly ref?: string
  /** The Ed25519 key (a name; default: `CAIRN_KEY`, else `default`). */
  readonly key?: string
  /** Targets: `dir:<path>`, `kubo:<rpc-url>`. */
  readonly to?: readonly string[]
  /** Delegated Routing V1 endpoints (`PUT <url>/routing/v1/ipns/<name>`). */
  readonly routers?: readonly string[]
  /** Validity from now, in ms (default 30 days). */
  readonly lifetimeMs?: number
  /** TTL in ms (default and minimum 5 minutes). */
  readonly ttlMs?: number
  readonly env?: NodeJS.ProcessEnv
}

/** What {@link namePublish} did. */
export interface NamePublishResult {
  readonly name: string
  readonly value: CID
  readonly sequence: string
  readonly validity: string
  readonly ttlSeconds: number
  readonly size: number
  /** Every place the record was put: the store's file, then each target and router. */
  readonly placed: readonly string[]
}

/**
 * Makes and puts the record. The sequence is one more than the highest seen for the name: in this
 * user's high-water mark, the store's record and each `dir:` target's record. Throws `BAD_REF`, `AUTH`
 * (key), `USAGE` (a target that is neither `dir:` nor `kubo:`), `PUBLISH_FAILED` (a router or node
 * refused, or kept failing: the places already done are named in the message), `IO`.
 */
export async function namePublish(options: NamePublishOptions = {}): Promise<NamePublishResult> {
  const env = options.env ?? process.env
  return withDataset(options.dir, async (dataset) => {
    const root = await resolveRef(dataset, options.ref)
    // only a cairn version may be named: a CID of anything else is refused here
    await readVersion(dataset.store, root)
    const key = await loadKey({ name: options.key, env, type: 'ed25519' })
    const name = parseName(key.ipnsName as string)
    const storeDir = join(dataset.root, STORE_DIR)
    for (const t of options.to ?? [])
      if (!t.startsWith('dir:') && !t.startsWith('kubo:'))
        throw new CairnError(
          'USAGE',
          `Cannot put an IPNS record to ${JSON.stringify(t)} (expected dir:<path> or kubo:<rpc-url>; routers go with --router)`,
        )

    let highest = (await readSeen(name.name, env))?.sequence ?? -1n
    for (const base of [storeDir, ...(await Promise.all((options.to ?? []).filter((t) => t.startsWith('dir:')).map(localBase)))]) {
      const bytes = await readRecordFile(base, name.name)
      if (bytes === undefined) continue
      try {
        const r = validateRecord(name, bytes, base, 0)
        if (r.sequence > highest) highest = r.sequence
      } catch {
        // a damaged record is replaced
      }
    }
    const sequence = highest + 1n
    const lifetimeMs = options.lifetimeMs ?? DEFAULT_LIFETIME_MS
    const ttlMs = options.ttlMs ?? MIN_TTL_MS
    const bytes = await createRecord(key, root, sequence, lifetimeMs, ttlMs)
    const record = validateRecord(name, bytes, 'the new record')

    const placed: string[] = [await writeRecordFile(storeDir, name.name, bytes)]
    await recordSeen(name.name, sequence, root, env)
    const fail = (e: unknown): never => {
      if (e instanceof CairnError && placed.length > 0)
        throw new CairnError(e.code, `${e.message} (already put: ${placed.join(', ')})`, { subject: e.subject, hint: e.hint, cause: e })
      throw e
    }
    for (const t of options.to ?? []) {
      if (t.startsWith('dir:')) placed.push(await writeRecordFile(await localBase(t), name.name, bytes).catch(fail))
      else {
        await putToKubo(t.slice(5), name.name, bytes, { env }).catch(fail)
        placed.push(t)
      }
    }
    for (const r of options.routers ?? []) {
      await putToRouter(r, name.name, bytes, { env }).catch(fail)
      placed.push(r)
    }
    return {
      name: name.name,
      value: root,
      sequence: sequence.toString(),
      validity: record.validity.toISOString(),
      ttlSeconds: Math.round(record.ttlMs / 1000),
      size: bytes.length,
      placed,
    }
  })
}

/** `90s`, `5m`, `1h`, `30d` (or plain seconds) to milliseconds, for `--lifetime` and `--ttl`. Throws `USAGE`. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/.exec(text.trim())
  if (!m) throw new CairnError('USAGE', `${flag} ${JSON.stringify(text)} is not a duration (e.g. 90s, 5m, 1h, 30d)`)
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd']
  return Math.round(Number(m[1]) * unit * 1000)
}
