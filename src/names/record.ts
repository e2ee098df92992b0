/**
 * IPNS records (IPNS Record spec): made with the `ipns` package (V2: signature over the DAG-CBOR `data`
 * field), checked here with our own code (node's Ed25519 over `ipns-signature:` + data, the CBOR fields
 * against the protobuf ones, the embedded key against the name, expiry, size), so that the `ipns`
 * package's validator stays an independent oracle in tests.
 */
import { createPublicKey, verify as nodeVerify } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createIPNSRecord, marshalIPNSRecord, unmarshalIPNSRecord } from 'ipns'
import { CID } from 'multiformats/cid'
import { CairnError } from '../errors.js'
import type { SigningKey } from '../signing/keys.js'
import type { IpnsName } from './name.js'

/** Records larger than this are refused unread (the spec's limit). */
export const MAX_RECORD_BYTES = 10 * 1024
/** The media type of a serialized record. */
export const RECORD_MEDIA_TYPE = 'application/vnd.ipfs.ipns-record'
/** Default validity of a new record: 30 days. */
export const DEFAULT_LIFETIME_MS = 30 * 24 * 3600 * 1000
/** Default and smallest TTL of a new record: 5 minutes. */
export const MIN_TTL_MS = 5 * 60 * 1000

/** A record that passed {@link validateRecord}. */
export interface ValidRecord {
  readonly name: string
  /** The version the record points at (`/ipfs/<cid>`). */
  readonly value: CID
  readonly sequence: bigint
  /** End of validity. */
  readonly validity: Date
  /** TTL in milliseconds. */
  readonly ttlMs: number
  readonly bytes: Uint8Array
}

/**
 * Makes a V2 record of `key` pointing at `/ipfs/<value>`. Throws `USAGE` for a key that is not Ed25519
 * or a lifetime or TTL out of range.
 */
export async function createRecord(
  key: SigningKey,
  value: CID,
  sequence: bigint,
  lifetimeMs = DEFAULT_LIFETIME_MS,
  ttlMs = MIN_TTL_MS,
): Promise<Uint8Array> {
  if (key.seed === undefined) throw new CairnError('USAGE', `Key ${key.name} is ${key.type}; IPNS names need an Ed25519 key`)
  if (!(lifetimeMs > 0)) throw new CairnError('USAGE', `The validity must be positive (got ${lifetimeMs} ms)`)
  if (ttlMs < MIN_TTL_MS) throw new CairnError('USAGE', `The TTL must be at least 5 minutes (got ${ttlMs / 1000} s)`)
  const privateKey = await generateKeyPairFromSeed('Ed25519', key.seed)
  const record = await createIPNSRecord(privateKey, `/ipfs/${value}`, sequence, lifetimeMs, {
    v1Compatible: false,
    ttlNs: BigInt(ttlMs) * 1_000_000n,
  })
  return marshalIPNSRecord(record)
}

/**
 * Checks a serialized record for `name`: at most {@link MAX_RECORD_BYTES}; the V2 signature by the
 * name's own key over the CBOR data; the protobuf's V1 fields (when present) equal to the CBOR ones; an
 * embedded public key (when present) equal to the name's; a value `/ipfs/<cid>`; an EOL validity in the
 * future (`now`).
 *
 * @throws {CairnError} `RECORD_INVALID` saying which check failed; `RECORD_EXPIRED` when its validity
 *   has passed.
 */
export function validateRecord(name: IpnsName, bytes: Uint8Array, where: string, now = Date.now()): ValidRecord {
  const bad = (why: string): CairnError =>
    new CairnError('RECORD_INVALID', `The IPNS record for ${name.name} from ${where} is refused: ${why}`, { subject: name.name })
  if (bytes.length > MAX_RECORD_BYTES) throw bad(`${bytes.length} bytes (at most ${MAX_RECORD_BYTES})`)
  let record
  try {
    record = unmarshalIPNSRecord(bytes)
  } catch (e) {
    throw bad(`not a record (${(e as Error).message})`)
  }
  if (record.pubKey !== undefined && record.pubKey.length > 0) {
    const expected = Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x20]), name.publicKey])
    if (!Buffer.from(record.pubKey).equals(expected)) throw bad('its embedded public key is not the key of the name')
  }
  const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), name.publicKey])
  const signed = Buffer.concat([Buffer.from('ipns-signature:'), record.data])
  let ok = false
  try {
    ok = nodeVerify(null, signed, createPublicKey({ key: spki, format: 'der', type: 'spki' }), record.signatureV2)
  } catch {
    ok = false
  }
  if (!ok) throw bad('the signature (V2) does not verify with the key of the name (signed by another key, or altered)')
  let data: Record<string, unknown>
  try {
    data = dagCbor.decode(record.data)
  } catch (e) {
    throw bad(`its data is not DAG-CBOR (${(e as Error).message})`)
  }
  const value = Buffer.from(data.Value as Uint8Array).toString('utf8')
  const validity = Buffer.from(data.Validity as Uint8Array).toString('utf8')
  if (data.ValidityType !== 0) throw bad(`validity type ${String(data.ValidityType)} (expected 0, EOL)`)
  if (value !== record.value || validity !== record.validity) throw bad('its protobuf fields differ from its signed data')
  const m = /^\/ipfs\/([^/]+)$/.exec(value)
  const cid = m ? tryCid(m[1]) : undefined
  if (cid === undefined) throw bad(`its value ${JSON.stringify(value.slice(0, 100))} is not /ipfs/<cid>`)
  const end = parseRfc3339(validity)
  if (end === undefined) throw bad(`its validity ${JSON.stringify(validity.slice(0, 60))} is not an RFC 3339 time`)
  if (end.getTime() < now)
    throw new CairnError('RECORD_EXPIRED', `The IPNS record for ${name.name} from ${where} expired at ${end.toISOString()}`, {
      subject: name.name,
      hint: 'the publisher must run `cairn name publish` again',
    })
  const ttl = typeof data.TTL === 'bigint' ? data.TTL : BigInt((data.TTL as number | undefined) ?? 0)
  const sequence = typeof data.Sequence === 'bigint' ? data.Sequence : BigInt((data.Sequence as number | undefined) ?? 0)
  return { name: name.name, value: cid, sequence, validity: end, ttlMs: Number(ttl / 1_000_000n), bytes }
}

function tryCid(text: string): CID | undefined {
  try {
    return CID.parse(text)
  } catch {
    return undefined
  }
}

/** RFC 3339 with up to nanoseconds (`2026-01-01T00:00:00.123456789Z`), to a Date (milliseconds). */
function parseRfc3339(text: string): Date | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text)
  if (!m) return undefined
  const ms = m[2] ? `.${m[2].slice(0, 3).padEnd(3, '0')}` : ''
  const d = new Date(`${m[1]}${ms}${m[3]}`)
  return Number.isNaN(d.getTime()) ? undefined : d
}
