/**
 * The in-toto Statement v1 a cairn signature covers: one subject, the version (its sha256 is the digest
 * inside the version CID, so the CID binds the card, the index, the tree, the files and the parent),
 * and the cairn release predicate (schemas/release-predicate.schema.json, docs/signing.md).
 */
import type { CID } from '../cid.js'
import { CairnError } from '../errors.js'
import type { Card, VersionManifest } from '../manifest.js'
import { validateWith } from '../schemas.js'

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
/** The predicate type of a cairn release. */
export const RELEASE_PREDICATE_TYPE = 'https://cairn.dev/attestation/release/v1'
/** DSSE payload type of in-toto statements. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json'

/** The cairn release predicate (CIDs as strings: in-toto predicates are plain JSON). */
export interface ReleasePredicate {
  readonly dataset: string
  readonly version: string
  readonly parent: string | null
  readonly created: string
  readonly card: string
  readonly index: string
  readonly tree: string
  readonly totals: { readonly shards: number; readonly bytes: number; readonly rows: number }
  readonly provenance: Card['provenance'] | null
  /** Who signed: the key's id and, for Ed25519 keys, its IPNS name. */
  readonly publisher: { readonly keyId: string; readonly ipnsName?: string }
}

export interface Statement {
  readonly _type: typeof STATEMENT_TYPE
  readonly subject: readonly { readonly name: string; readonly uri: string; readonly digest: { readonly sha256: string } }[]
  readonly predicateType: string
  readonly predicate: unknown
}

/** Hex of the sha2-256 digest inside a version CID. Throws `INVALID_MANIFEST` for another hash. */
export function versionDigest(cid: CID): string {
  if (cid.multihash.code !== 0x12 || cid.multihash.digest.length !== 32)
    throw new CairnError('INVALID_MANIFEST', `${cid} is not hashed with sha2-256; it cannot be signed or named`, {
      subject: cid.toString(),
    })
  return Buffer.from(cid.multihash.digest).toString('hex')
}

/** The statement for a version, its predicate validated against its schema. */
export function releaseStatement(root: CID, version: VersionManifest, card: Card, publisher: ReleasePredicate['publisher']): Statement {
  const predicate: ReleasePredicate = {
    dataset: version.name,
    version: root.toString(),
    parent: version.parent === null ? null : version.parent.toString(),
    created: version.created,
    card: version.card.toString(),
    index: version.index.toString(),
    tree: version.tree.toString(),
    totals: { shards: version.totals.shards, bytes: version.totals.bytes, rows: version.totals.rows },
    provenance: card.provenance ?? null,
    publisher,
  }
  const errors = validateWith('release-predicate.schema.json', predicate)
  if (errors.length > 0)
    throw new CairnError(
      'INVALID_MANIFEST',
      `The release predicate of ${root} is invalid: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
    )
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: `${version.name}@${root}`, uri: `ipfs://${root}`, digest: { sha256: versionDigest(root) } }],
    predicateType: RELEASE_PREDICATE_TYPE,
    predicate,
  }
}
