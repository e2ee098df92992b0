/**
 * `verify --signed-by`: is a version signed by a given key, or covered by the signature of a descendant
 * (the parent chain is a hash chain: a signed version's CID commits to its parent's, and so on)?
 */
import { join } from 'node:path'
import type { CID } from '../cid.js'
import { FallbackSource } from '../car/source.js'
import { STORE_DIR, withDataset, type Dataset } from '../dataset.js'
import { openSources } from '../sources/index.js'
import { CairnError, isCairnError } from '../errors.js'
import type { BlockSource } from '../store/blocks.js'
import { readVersion } from '../version.js'
import { looksLikeName, parseName } from '../names/name.js'
import { parseBundle, verifyBundle, type ParsedBundle } from './bundle.js'
import { publicFromEd25519Raw, readPublicKey, type PublicKeyInfo } from './keys.js'
import { fetchSignatures, keepBundle, readBundles, signedVersions, type KeptBundle } from './store.js'
import { RELEASE_PREDICATE_TYPE, versionDigest } from './statement.js'

/** How far back from a signed version the parent chain is walked to find the version asked about. */
export const MAX_COVER_DEPTH = 10_000

/** The `signatures` section of `verify --json`. */
export interface SignaturesReport {
  /** The version checked. */
  readonly version: CID
  /** `signed`: a bundle by the key names this version; `covered`: one names a descendant. */
  readonly status: 'signed' | 'covered'
  readonly signer: { readonly keyId: string; readonly ipnsName?: string; readonly given: string }
  /** The signed descendant, when `covered`. */
  readonly coveredBy?: CID
  /** Generations between the version and the signed descendant (0 when signed itself). */
  readonly depth: number
  /** Where the verified bundle was read. */
  readonly bundle: string
  /** Bundles by other keys found beside the release (not checked). */
  readonly others: number
}

/** What {@link checkSignedBy} is told. */
export interface CheckSignedByOptions {
  readonly dataset: Dataset
  readonly version: CID
  /** A public key (PEM text or file), a key name, or an IPNS name (`k51…`, `/ipns/…`, `ipns://…`). */
  readonly signedBy: string
  /** Where else to look for bundles and parent blocks (`--from`). */
  readonly from?: readonly string[]
  /** Blocks of versions (the store, then the sources). */
  readonly source: BlockSource
  readonly env?: NodeJS.ProcessEnv
}

/** The public key named by `spec`: an IPNS name (its key is inside it), a PEM, a key file or a key name. */
export async function signerKey(spec: string, env?: NodeJS.ProcessEnv): Promise<PublicKeyInfo> {
  if (looksLikeName(spec)) {
    const name = parseName(spec)
    return publicFromEd25519Raw(name.publicKey, name.name)
  }
  return readPublicKey(spec, env)
}

/**
 * Checks that a bundle by the key covers `version`: one over the version itself, else one over a
 * descendant among the signed versions known (the store's and the sources'), whose parent chain reaches
 * the version. Bundles fetched from sources that verify are kept in the store.
 *
 * @throws {CairnError} `SIGNATURE_INVALID` when a bundle that names the key does not verify (tampered)
 *   or verifies but is over another digest; `NOT_SIGNED` when no bundle by the key covers the version;
 *   `USAGE` for a signer that is not a key.
 */
export async function checkSignedBy(options: CheckSignedByOptions): Promise<SignaturesReport> {
  const key = await signerKey(options.signedBy, options.env)
  const signer = { keyId: key.keyId, ...(key.ipnsName ? { ipnsName: key.ipnsName } : {}), given: options.signedBy }
  const storeDir = join(options.dataset.root, STORE_DIR)

  const own = await bundlesOf(storeDir, options.version, options.from)
  const mine = own.filter((b) => b.parsed.keyHint === key.keyId)
  if (mine.length > 0) {
    // the store's copy comes first; a fetched one is checked and kept when the store has none
    const b = mine[0]
    checkOne(b, key, options.version)
    await keepIfFetched(storeDir, options.version, key, b)
    return { version: options.version, status: 'signed', signer, depth: 0, bundle: b.kept.from, others: own.length - mine.length }
  }

  // a signed descendant: any version signed by the key whose parent chain reaches this one
  for (const signed of await signedVersions(storeDir)) {
    if (signed.equals(options.version)) continue
    const bundles = (await bundlesOf(storeDir, signed)).filter((b) => b.parsed.keyHint === key.keyId)
    if (bundles.length === 0) continue
    const depth = await distance(options.source, signed, options.version)
    if (depth === undefined) continue
    checkOne(bundles[0], key, signed)
    return {
      version: options.version,
      status: 'covered',
      signer,
      coveredBy: signed,
      depth,
      bundle: bundles[0].kept.from,
      others: own.length,
    }
  }
  throw new CairnError(
    'NOT_SIGNED',
    `${options.version} is not signed by key ${key.keyId.slice(0, 16)}…${key.ipnsName ? ` (${key.ipnsName})` : ''}, nor covered by a signed descendant` +
      (own.length > 0 ? ` (${own.length} signature(s) by other keys beside it)` : ' (no signature beside it)'),
    {
      subject: options.version.toString(),
      hint: 'sign it with `cairn sign --key <name>`, or give the sources that hold its signatures with --from',
    },
  )
}

interface FoundBundle {
  readonly kept: KeptBundle
  readonly parsed: ParsedBundle
}

async function bundlesOf(storeDir: string, version: CID, from: readonly string[] = []): Promise<FoundBundle[]> {
  const kept = [...(await readBundles(storeDir, version)), ...(await fetchSignatures(from, version))]
  const out: FoundBundle[] = []
  for (const k of kept) {
    try {
      out.push({ kept: k, parsed: parseBundle(k.text, k.from) })
    } catch (e) {
      // a malformed bundle names no key: it cannot be the key's signature, and is counted nowhere
      if (!isCairnError(e, 'SIGNATURE_INVALID')) throw e
    }
  }
  return out
}

/** Verifies a bundle with the key and checks that it is a cairn release statement over `version`. */
function checkOne(b: FoundBundle, key: PublicKeyInfo, version: CID): void {
  verifyBundle(b.parsed, key, b.kept.from)
  const st = b.parsed.statement
  const digest = versionDigest(version)
  const subject = st.subject.find((s) => s?.digest?.sha256 !== undefined)
  if (st.predicateType !== RELEASE_PREDICATE_TYPE || subject === undefined)
    throw new CairnError('SIGNATURE_INVALID', `${b.kept.from} is not a cairn release signature (predicate ${st.predicateType})`, {
      subject: b.kept.from,
    })
  if (subject.digest.sha256 !== digest)
    throw new CairnError(
      'SIGNATURE_INVALID',
      `${b.kept.from} is a valid signature over another digest (sha256 ${subject.digest.sha256.slice(0, 16)}…, expected ${digest.slice(0, 16)}… of ${version})`,
      { subject: b.kept.from },
    )
}

async function keepIfFetched(storeDir: string, version: CID, key: PublicKeyInfo, b: FoundBundle): Promise<void> {
  if (!b.kept.from.startsWith(storeDir)) await keepBundle(storeDir, version, key.keyId, b.kept.text).catch(() => {})
}

/** Generations from `descendant` back to `ancestor`, or undefined when the chain (as far as blocks are held) does not reach it. */
async function distance(source: BlockSource, descendant: CID, ancestor: CID): Promise<number | undefined> {
  let at: CID | null = descendant
  for (let depth = 0; at !== null && depth <= MAX_COVER_DEPTH; depth++) {
    if (at.equals(ancestor)) return depth
    try {
      at = (await readVersion(source, at)).parent
    } catch (e) {
      if (isCairnError(e)) return undefined
      throw e
    }
  }
  return undefined
}

/**
 * The `--signed-by` step of `verify`, after the folder check: looks for bundles in the dataset holding
 * `datasetDir` (default: the current folder) and in `from`, walking parents through the store and
 * `from`. Throws as {@link checkSignedBy}, or `USAGE` for a CAR check (which names no dataset).
 */
export async function verifySignedBy(
  report: { readonly kind: 'folder' | 'car'; readonly version?: CID },
  signedBy: string,
  datasetDir: string | undefined,
  from: readonly string[] = [],
  env?: NodeJS.ProcessEnv,
): Promise<SignaturesReport> {
  if (report.kind !== 'folder' || report.version === undefined)
    throw new CairnError('USAGE', '--signed-by checks a version against a folder, not a CAR file')
  const version = report.version
  return withDataset(datasetDir, async (dataset) => {
    const sources = from.length > 0 ? await openSources(from) : undefined
    try {
      const source = sources === undefined ? dataset.store : new FallbackSource([dataset.store, sources])
      return await checkSignedBy({ dataset, version, signedBy, from, source, env })
    } finally {
      await sources?.close()
    }
  })
}
