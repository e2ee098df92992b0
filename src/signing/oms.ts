/**
 * OpenSSF Model Signing v1.0 signatures (sigstore/model-transparency): an in-toto statement with
 * predicate type `https://model_signing/signature/v1.0`, one resource per file with the plain sha256 of
 * its bytes, `serialization.method: files`, in a Sigstore bundle signed with an ECDSA P-256 key, so that
 * `model_signing verify key --signature model.sig --public_key key.pub <folder>` can check a cloned
 * folder. Per-file sha256 comes from the shared digest cache (src/digests/sha256.ts: the CID's own
 * digest for one-block files, else the store's blocks read once and the digest kept), never from
 * re-reading the data folder.
 */
import { createHash } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { CID } from '../cid.js'
import type { Dataset } from '../dataset.js'
import { CairnError, ioError, isCairnError } from '../errors.js'
import { walkEntries } from '../shard-index/prolly.js'
import type { VersionManifest } from '../manifest.js'
import { fileSha256s } from '../digests/sha256.js'
import { writeFileAtomic } from '../util/atomic.js'
import { signStatement } from './bundle.js'
import type { SigningKey } from './keys.js'

export const OMS_PREDICATE_TYPE = 'https://model_signing/signature/v1.0'
/** Paths of a cloned dataset that are not files of the release, and the signature itself. */
export const OMS_IGNORE_PATHS = ['.cairn', 'cairn.json', 'model.sig'] as const

/**
 * Writes the OMS signature of the version's files to `file`. Throws `MISSING_BLOCK` when the store
 * lacks a file's blocks (a clone made without `--store-blocks` holds only the metadata), `IO`.
 */
export async function writeOmsSignature(
  dataset: Dataset,
  root: CID,
  version: VersionManifest,
  key: SigningKey,
  file: string,
): Promise<{ files: number }> {
  const resources: { name: string; algorithm: 'sha256'; digest: string }[] = []
  try {
    const entries: { path: string; cid: CID }[] = []
    for await (const entry of walkEntries(dataset.store, version.index)) entries.push({ path: entry.path, cid: entry.cid })
    const digests = await fileSha256s(
      dataset.store,
      entries.map((e) => e.cid),
    )
    for (const e of entries) resources.push({ name: e.path, algorithm: 'sha256', digest: digests.get(e.cid.toString()) as string })
  } catch (e) {
    if (!isCairnError(e, 'MISSING_BLOCK')) throw e
    throw new CairnError('MISSING_BLOCK', `${e.message}: the store lacks the files' blocks, which --oms hashes`, {
      subject: e.subject,
      hint: 'sign with --oms in the dataset that built the version, or in a clone made with --store-blocks',
      cause: e,
    })
  }
  // model_signing canonicalises resources by name (code-point order) and hashes their digests in that order
  resources.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const root256 = createHash('sha256')
  for (const r of resources) root256.update(Buffer.from(r.digest, 'hex'))
  const statement = {
    _type: 'https://in-toto.io/Statement/v1' as const,
    subject: [{ name: version.name, digest: { sha256: root256.digest('hex') } }],
    predicateType: OMS_PREDICATE_TYPE,
    predicate: {
      serialization: { method: 'files', hash_type: 'sha256', allow_symlinks: false, ignore_paths: [...OMS_IGNORE_PATHS] },
      resources,
      cairn: { version: root.toString() },
    },
  }
  // model_signing's key hint is the sha256 of the public key's PEM text
  const hint = createHash('sha256').update(key.publicKeyPem).digest('hex')
  const bundle = signStatement(statement as never, { ...key, keyId: hint })
  try {
    await mkdir(dirname(file), { recursive: true })
    await writeFileAtomic(file, JSON.stringify(bundle) + '\n')
  } catch (e) {
    throw ioError('write the model signature', file, e)
  }
  return { files: resources.length }
}
