/**
 * `sign`: a Sigstore bundle over a version (docs/signing.md), kept in the dataset's store beside the
 * release and, on request, written to a file too.
 */
import { join, resolve } from 'node:path'
import type { CID } from '../cid.js'
import { STORE_DIR, withDataset } from '../dataset.js'
import { ioError } from '../errors.js'
import { writeFileAtomic } from '../util/atomic.js'
import { readCardBlock, readVersion, resolveRef } from '../version.js'
import { BUNDLE_MEDIA_TYPE, signStatement } from './bundle.js'
import { loadKey } from './keys.js'
import { writeOmsSignature } from './oms.js'
import { keepBundle } from './store.js'
import { RELEASE_PREDICATE_TYPE, releaseStatement, versionDigest } from './statement.js'

/** What {@link sign} is told. */
export interface SignOptions {
  /** The dataset folder or a folder inside it (default: the current folder). */
  readonly dir?: string
  /** The version to sign (default `HEAD`). */
  readonly ref?: string
  /** The key's name in the config folder (default: `CAIRN_KEY`, else the key named `default`). */
  readonly key?: string
  /** Also write the bundle to this file. */
  readonly output?: string
  /**
   * Also write an OpenSSF Model Signing v1.0 signature of the version's files, signed with this
   * ECDSA P-256 key (its name), to `omsOutput` (default `.cairn/oms/<version>.sig`: a file in the data
   * folder would be an extra file to `verify` and part of the next build).
   */
  readonly omsKey?: string
  readonly omsOutput?: string
  readonly env?: NodeJS.ProcessEnv
}

/** What {@link sign} did. Holds no secret. */
export interface SignResult {
  readonly version: CID
  readonly dataset: string
  /** The statement's subject digest (hex sha256 inside the version CID). */
  readonly digest: string
  readonly mediaType: typeof BUNDLE_MEDIA_TYPE
  readonly predicateType: typeof RELEASE_PREDICATE_TYPE
  readonly signer: { readonly key: string; readonly keyId: string; readonly ipnsName?: string }
  /** Where the bundle was kept in the store. */
  readonly kept: string
  /** The file given with `output`, when given. */
  readonly output?: string
  /** The OpenSSF Model Signing signature file, when asked for. */
  readonly oms?: { readonly file: string; readonly files: number; readonly keyId: string }
}

/**
 * Signs the version `ref` with the key and keeps the bundle in `.cairn/signatures/`. Signing again with
 * the same key replaces that key's bundle; other keys' bundles stay (a release may carry several).
 * Throws `BAD_REF`, `AUTH` (no key, unreadable key, key file open to others), `MISSING_BLOCK`,
 * `INVALID_MANIFEST`, `IO`. Nothing is kept when signing fails.
 */
export async function sign(options: SignOptions = {}): Promise<SignResult> {
  const env = options.env ?? process.env
  return withDataset(options.dir, async (dataset) => {
    const root = await resolveRef(dataset, options.ref)
    const version = await readVersion(dataset.store, root)
    const card = await readCardBlock(dataset.store, version.card)
    const key = await loadKey({ name: options.key, env, type: 'ed25519' })
    const publisher = key.ipnsName === undefined ? { keyId: key.keyId } : { keyId: key.keyId, ipnsName: key.ipnsName }
    const bundle = signStatement(releaseStatement(root, version, card, publisher), key)
    const text = JSON.stringify(bundle, null, 2) + '\n'
    let oms: SignResult['oms']
    if (options.omsKey !== undefined) {
      const omsKey = await loadKey({ name: options.omsKey, env, type: 'ecdsa-p256' })
      const file = resolve(options.omsOutput ?? join(dataset.root, STORE_DIR, 'oms', `${root}.sig`))
      oms = { file, ...(await writeOmsSignature(dataset, root, version, omsKey, file)), keyId: omsKey.keyId }
    }
    let output: string | undefined
    if (options.output !== undefined) {
      output = resolve(options.output)
      try {
        await writeFileAtomic(output, text)
      } catch (e) {
        throw ioError('write the signature to', output, e)
      }
    }
    const kept = await keepBundle(join(dataset.root, STORE_DIR), root, key.keyId, text)
    return {
      version: root,
      dataset: version.name,
      digest: versionDigest(root),
      mediaType: BUNDLE_MEDIA_TYPE,
      predicateType: RELEASE_PREDICATE_TYPE,
      signer: { key: key.name, keyId: key.keyId, ...(key.ipnsName ? { ipnsName: key.ipnsName } : {}) },
      kept,
      ...(output ? { output } : {}),
      ...(oms ? { oms } : {}),
    }
  })
}
