/**
 * What `clone` adds for trust: cloning by IPNS name (resolve with validation, rollback and fork checks,
 * then clone the version, then raise the high-water mark), and bringing the release's signatures from
 * the sources into the clone's store.
 */
import { join } from 'node:path'
import type { CID } from '../cid.js'
import { STORE_DIR } from '../dataset.js'
import { isCairnError } from '../errors.js'
import { parseBundle } from '../signing/bundle.js'
import { fetchSignatures, keepBundle } from '../signing/store.js'
import { versionDigest } from '../signing/statement.js'
import { nameResolve, type NameResolveResult } from './resolve.js'
import { recordSeen } from './seen.js'
import { parseName } from './name.js'

/** What clone reports of the name it followed. */
export type ClonedName = Pick<NameResolveResult, 'name' | 'sequence' | 'validity' | 'from' | 'fork'>

/**
 * Resolves `name` for a clone from `from`, runs `cloneCid` on the value, and only then raises the
 * high-water mark (a failed clone leaves it where it was). Throws as `nameResolve` and `cloneCid` do.
 */
export async function cloneByName<T extends { readonly cid: CID }>(
  name: string,
  from: readonly string[],
  allowFork: boolean,
  cloneCid: (cid: string) => Promise<T>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<T & { readonly name: ClonedName }> {
  const resolved = await nameResolve({ name, from, allowFork, remember: false, env })
  const result = await cloneCid(resolved.value.toString())
  await recordSeen(parseName(name).name, BigInt(resolved.sequence), resolved.value, env)
  const { sequence, validity, fork } = resolved
  return { ...result, name: { name: resolved.name, sequence, validity, from: resolved.from, fork } }
}

/**
 * Copies the bundles the sources hold for `version` into the clone's store (`.cairn/signatures/`),
 * each one parsed first and kept only when its subject digest is the version's. Returns how many were
 * kept. Signatures are checked against a key later, by `verify --signed-by`. `timeoutMs` bounds each
 * gateway's answer (the clone's own gateway timeout, so that a gateway that hangs costs no more here
 * than it did for the blocks; default 30 s).
 */
export async function keepSourceSignatures(from: readonly string[], version: CID, cloneDir: string, timeoutMs?: number): Promise<number> {
  const digest = versionDigest(version)
  let kept = 0
  for (const b of await fetchSignatures(from, version, timeoutMs)) {
    try {
      const parsed = parseBundle(b.text, b.from)
      if (!parsed.statement.subject.some((s) => s?.digest?.sha256 === digest) || !/^[0-9a-f]{64}$/.test(parsed.keyHint)) continue
      await keepBundle(join(cloneDir, STORE_DIR), version, parsed.keyHint, b.text)
      kept++
    } catch (e) {
      if (!isCairnError(e)) throw e
    }
  }
  return kept
}
