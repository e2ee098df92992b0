/**
 * Sigstore bundles (`application/vnd.dev.sigstore.bundle.v0.3+json`) holding a DSSE envelope over an
 * in-toto statement, made with `@sigstore/bundle` and checked with `@sigstore/verify` offline: the trust
 * material is the one public key the caller names (no certificate authority, no transparency log).
 */
import { createPublicKey } from 'node:crypto'
import { bundleFromJSON, bundleToJSON, toDSSEBundle, type SerializedBundle } from '@sigstore/bundle'
import { toSignedEntity, Verifier, type TrustMaterial } from '@sigstore/verify'
import { CairnError } from '../errors.js'
import type { PublicKeyInfo, SigningKey } from './keys.js'
import { IN_TOTO_PAYLOAD_TYPE, STATEMENT_TYPE, type Statement } from './statement.js'

/** The media type of the bundles cairn writes. */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json'
/** A bundle larger than this is refused unread. */
export const MAX_BUNDLE_BYTES = 256 * 1024

/** DSSE pre-authentication encoding (DSSE v1 protocol). */
export function preAuthEncoding(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8')
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload])
}

/** Signs `statement` with `key` and returns the bundle as JSON. */
export function signStatement(statement: Statement, key: SigningKey): SerializedBundle {
  const payload = Buffer.from(JSON.stringify(statement), 'utf8')
  const signature = Buffer.from(key.sign(preAuthEncoding(IN_TOTO_PAYLOAD_TYPE, payload)))
  return bundleToJSON(toDSSEBundle({ artifact: payload, artifactType: IN_TOTO_PAYLOAD_TYPE, signature, keyHint: key.keyId }))
}

/** What a bundle says, once parsed (not yet verified). */
export interface ParsedBundle {
  readonly json: SerializedBundle
  readonly statement: Statement
  /** The key hint (keyid) the bundle names. */
  readonly keyHint: string
}

/**
 * Parses a bundle's JSON and its statement without checking the signature. Throws `SIGNATURE_INVALID`
 * for anything that is not a v0.3 DSSE bundle over an in-toto Statement v1.
 */
export function parseBundle(text: string | Uint8Array, what: string): ParsedBundle {
  const bad = (why: string): CairnError =>
    new CairnError('SIGNATURE_INVALID', `${what} is not a cairn signature: ${why}`, { subject: what })
  const size = typeof text === 'string' ? Buffer.byteLength(text) : text.length
  if (size > MAX_BUNDLE_BYTES) throw bad(`${size} bytes (at most ${MAX_BUNDLE_BYTES})`)
  let json: SerializedBundle
  try {
    json = JSON.parse(typeof text === 'string' ? text : Buffer.from(text).toString('utf8')) as SerializedBundle
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`)
  }
  if (json?.mediaType !== BUNDLE_MEDIA_TYPE) throw bad(`media type ${JSON.stringify(json?.mediaType)} (expected ${BUNDLE_MEDIA_TYPE})`)
  let bundle
  try {
    bundle = bundleFromJSON(json)
  } catch (e) {
    throw bad((e as Error).message)
  }
  if (bundle.content.$case !== 'dsseEnvelope') throw bad('no DSSE envelope')
  const env = bundle.content.dsseEnvelope
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) throw bad(`payload type ${JSON.stringify(env.payloadType)}`)
  if (env.signatures.length !== 1) throw bad(`${env.signatures.length} signatures in the envelope (expected 1)`)
  let statement: Statement
  try {
    statement = JSON.parse(Buffer.from(env.payload).toString('utf8')) as Statement
  } catch {
    throw bad('the payload is not JSON')
  }
  if (statement?._type !== STATEMENT_TYPE || !Array.isArray(statement.subject)) throw bad('the payload is not an in-toto Statement v1')
  const material = bundle.verificationMaterial.content
  const keyHint = material.$case === 'publicKey' ? material.publicKey.hint : env.signatures[0].keyid
  return { json, statement, keyHint }
}

/**
 * Verifies a bundle with `@sigstore/verify` against one public key, offline. Returns normally when the
 * DSSE signature over the payload verifies with `key`; throws `SIGNATURE_INVALID` naming what failed
 * (a tampered payload or signature, a signature by another key).
 */
export function verifyBundle(parsed: ParsedBundle, key: PublicKeyInfo, what: string): void {
  const publicKey = createPublicKey(key.publicKeyPem)
  const trust: TrustMaterial = {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    // the bundle's hint only selects; the key checked is always the caller's
    publicKey: () => ({ publicKey, validFor: () => true }),
  }
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 })
  try {
    verifier.verify(toSignedEntity(bundleFromJSON(parsed.json)))
  } catch (e) {
    const reason = (e as Error).message
    const other = parsed.keyHint !== '' && parsed.keyHint !== key.keyId
    throw new CairnError(
      'SIGNATURE_INVALID',
      other
        ? `${what} was signed by another key (key id ${parsed.keyHint.slice(0, 16)}…, expected ${key.keyId.slice(0, 16)}…): ${reason}`
        : `${what} does not verify with key ${key.keyId.slice(0, 16)}… (tampered payload or signature): ${reason}`,
      { subject: what },
    )
  }
}
