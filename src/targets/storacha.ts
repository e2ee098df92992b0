/**
 * The `storacha` target: publishes a version through the maintained w3up client (`@storacha/client`)
 * into a Storacha space. The version's CAR is streamed from the store into the client's sharded upload
 * (the client holds at most one CAR shard in memory); the service stores each shard as a blob, then
 * registers a sharded DAG index and an upload (the version CID with its shard CIDs).
 *
 * Credentials, in this order (docs/storacha-target.md):
 * 1. an ed25519 agent key and a base64 space delegation from the options or the environment
 *    (`STORACHA_PRINCIPAL`, `STORACHA_PROOF`: what `storacha key create` and
 *    `storacha delegation create --base64` print), for CI and scripts;
 * 2. the agent state `cairn login <email>` keeps in the user's config folder
 *    (`$XDG_CONFIG_HOME/cairn/storacha`, else `~/.config/cairn/storacha`), readable by the user alone.
 *
 * Service overrides (`STORACHA_SERVICE_URL`, `STORACHA_SERVICE_DID`, `STORACHA_RECEIPTS_URL`) use the
 * names of the official CLI. This module is the one place where the client's `{ ok } | { error }`
 * results and thrown errors become {@link CairnError}s. No secret ever goes into a message, a receipt
 * or the `details` of an error.
 */
import { chmod, mkdir, readFile, stat, unlink } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { PassThrough } from 'node:stream'
import * as Storacha from '@storacha/client'
import * as Ed25519 from '@storacha/client/principal/ed25519'
import * as Proof from '@storacha/client/proof'
import {
  accessServiceConnection,
  filecoinServiceConnection,
  gatewayServiceConnection,
  uploadServiceConnection,
} from '@storacha/client/service'
import { StoreMemory } from '@storacha/client/stores/memory'
import type { AgentDataExport, CARMetadata, Delegation, Principal, ServiceConf } from '@storacha/client/types'
import { CID } from '../cid.js'
import { CairnError, isCairnError } from '../errors.js'
import { writeCar } from '../pack.js'
import { isTransient as isTransientNetwork, retry, retryOptionsFromEnv } from '../util/retry.js'
import type { BlockSource } from '../store/blocks.js'
import type { PublishInput, PublishOptions, Receipt, StoredShard, Target } from './interface.js'
import { writeFileAtomic } from '../util/atomic.js'

/** The environment variables the target reads (the official Storacha CLI's names). */
export const STORACHA_ENV = {
  principal: 'STORACHA_PRINCIPAL',
  proof: 'STORACHA_PROOF',
  serviceUrl: 'STORACHA_SERVICE_URL',
  serviceDid: 'STORACHA_SERVICE_DID',
  receiptsUrl: 'STORACHA_RECEIPTS_URL',
} as const

/** The production service's DID, used when a service URL is given without a DID. */
export const DEFAULT_SERVICE_DID = 'did:web:up.storacha.network'

/** The abilities a space delegation must grant for a publish (what the client's `uploadCAR` invokes). */
export const REQUIRED_ABILITIES = ['space/blob/add', 'space/index/add', 'filecoin/offer', 'upload/add'] as const

/** Format and version of the agent state file `cairn login` writes; other versions are refused. */
export const AGENT_STATE_FORMAT = { format: 'cairn-storacha-agent', v: 1 } as const

/** The agent state file inside the state folder. */
export const AGENT_STATE_FILE = 'agent.json'

/** Options of {@link createStorachaTarget}. Each option overrides the environment variable of the same meaning. */
export interface StorachaTargetOptions {
  /** The agent's ed25519 private key, multibase (`Mg…`, as `storacha key create` prints it). Default `STORACHA_PRINCIPAL`. */
  readonly principal?: string
  /** A base64 delegation of the space to the agent (`storacha delegation create --base64`). Default `STORACHA_PROOF`. */
  readonly proof?: string
  /** The service's URL (default `STORACHA_SERVICE_URL`, else production). */
  readonly serviceUrl?: string
  /** The service's DID (default `STORACHA_SERVICE_DID`, else `did:web:up.storacha.network`). */
  readonly serviceDid?: string
  /** Where receipts are fetched (default `STORACHA_RECEIPTS_URL`, else `<service URL>/receipt/`). */
  readonly receiptsUrl?: string
  /** The folder holding `cairn login`'s agent state (default {@link defaultStorachaStateDir}). */
  readonly configDir?: string
  /**
   * The space to publish to (`storacha:<space DID>`). With a delegation it must be the delegated space;
   * with the login state it selects one of the agent's spaces. Default: the delegated or current space.
   */
  readonly space?: string
  /** The environment to read (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv
  /** Retries of a transient failure (connection reset, timeout, HTTP 5xx); default `CAIRN_RETRIES`, else 5. */
  readonly retries?: number
  /** The first retry's delay cap in milliseconds, doubled for each further retry; default `CAIRN_RETRY_DELAY_MS`, else 500. */
  readonly retryDelay?: number
}

/** Service endpoints resolved from options and environment; undefined fields mean production. */
export interface StorachaService {
  readonly serviceConf?: ServiceConf
  readonly receiptsEndpoint?: URL
  /** The service URL for messages (credentials in the URL removed), or undefined for production. */
  readonly url?: string
}

/**
 * The `storacha` target. Reads credentials and service settings from `options`, else from `options.env`
 * (default `process.env`), else from the login state in `options.configDir`. Its address is
 * `storacha:<space DID>`.
 *
 * Throws `AUTH` naming the missing or malformed variable (`STORACHA_PRINCIPAL`, `STORACHA_PROOF`) when
 * credentials are missing, unreadable, expired, delegated to another key or lacking an ability, or when
 * the login state is missing, unreadable or readable by other users; `USAGE` for a malformed
 * `STORACHA_SERVICE_URL`, `STORACHA_SERVICE_DID` or `STORACHA_RECEIPTS_URL`. Contacts no service.
 */
export async function createStorachaTarget(options: StorachaTargetOptions = {}): Promise<Target> {
  const env = options.env ?? process.env
  const service = storachaService(options, env)
  const { client, space } = await openClient(options, env, service)
  const address = `storacha:${space}`
  const fromEnv = retryOptionsFromEnv(env)
  const retries = options.retries ?? fromEnv.retries
  const minDelayMs = options.retryDelay ?? fromEnv.minDelayMs
  for (const [name, value] of [
    ['retries', retries],
    ['retryDelay', minDelayMs],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 0))
      throw new CairnError('USAGE', `${name} must be a whole number ≥ 0, got ${value}`)
  }
  const policy: Policy = { service, ...(retries !== undefined ? { retries } : {}), ...(minDelayMs !== undefined ? { minDelayMs } : {}) }
  return {
    address,
    publish: (input, publishOptions) => publishToStoracha(client, address, space, input, publishOptions ?? {}, policy),
  }
}

/** The folder of `cairn login`'s agent state: `$XDG_CONFIG_HOME/cairn/storacha`, else `~/.config/cairn/storacha`. */
export function defaultStorachaStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config')
  return join(base, 'cairn', 'storacha')
}

/**
 * Resolves the service connections from options and environment. Returns `{}` (production) when
 * nothing is overridden. Throws `USAGE` naming the malformed variable; a URL is never quoted back,
 * since it may carry credentials.
 */
export function storachaService(
  options: Pick<StorachaTargetOptions, 'serviceUrl' | 'serviceDid' | 'receiptsUrl'>,
  env: NodeJS.ProcessEnv = process.env,
): StorachaService {
  const urlText = nonEmpty(options.serviceUrl) ?? nonEmpty(env[STORACHA_ENV.serviceUrl])
  const didText = nonEmpty(options.serviceDid) ?? nonEmpty(env[STORACHA_ENV.serviceDid])
  const receiptsText = nonEmpty(options.receiptsUrl) ?? nonEmpty(env[STORACHA_ENV.receiptsUrl])
  if (didText !== undefined && !/^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$/.test(didText)) {
    throw new CairnError('USAGE', `${STORACHA_ENV.serviceDid} is not a DID (expected e.g. ${DEFAULT_SERVICE_DID})`, {
      subject: STORACHA_ENV.serviceDid,
    })
  }
  const receiptsEndpoint = receiptsText === undefined ? undefined : httpUrl(receiptsText, STORACHA_ENV.receiptsUrl, true)
  if (urlText === undefined) {
    if (didText !== undefined) {
      throw new CairnError('USAGE', `${STORACHA_ENV.serviceDid} is set but ${STORACHA_ENV.serviceUrl} is not`, {
        subject: STORACHA_ENV.serviceUrl,
      })
    }
    return receiptsEndpoint ? { receiptsEndpoint } : {}
  }
  const url = httpUrl(urlText, STORACHA_ENV.serviceUrl, false)
  const id = { did: () => (didText ?? DEFAULT_SERVICE_DID) as `did:${string}:${string}` } as Principal
  const serviceConf: ServiceConf = {
    access: accessServiceConnection({ id, url }),
    upload: uploadServiceConnection({ id, url }),
    filecoin: filecoinServiceConnection({ id, url }),
    gateway: gatewayServiceConnection({ id, url }),
  }
  return { serviceConf, receiptsEndpoint: receiptsEndpoint ?? new URL('receipt/', withSlash(url)), url: `${url.origin}${url.pathname}` }
}

function httpUrl(text: string, name: string, directory: boolean): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new CairnError('USAGE', `${name} is not a URL (expected http://… or https://…)`, { subject: name })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CairnError('USAGE', `${name} is not an http(s) URL (it uses ${url.protocol})`, { subject: name })
  }
  return directory ? withSlash(url) : url
}

function withSlash(url: URL): URL {
  const copy = new URL(url.href)
  if (!copy.pathname.endsWith('/')) copy.pathname += '/'
  return copy
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim()
}

// ---------------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------------

async function openClient(
  options: StorachaTargetOptions,
  env: NodeJS.ProcessEnv,
  service: StorachaService,
): Promise<{ client: Storacha.Client; space: `did:${string}:${string}` }> {
  const principalText = nonEmpty(options.principal) ?? nonEmpty(env[STORACHA_ENV.principal])
  const proofText = nonEmpty(options.proof) ?? nonEmpty(env[STORACHA_ENV.proof])
  const stateDir = resolve(options.configDir ?? defaultStorachaStateDir(env))
  const wanted = nonEmpty(options.space)
  if (wanted !== undefined && !/^did:key:z[1-9A-HJ-NP-Za-km-z]+$/.test(wanted)) {
    throw new CairnError('USAGE', `storacha:${wanted} does not name a space (expected storacha:did:key:z…)`, { subject: wanted })
  }
  if (principalText === undefined && proofText === undefined) return openLoginState(stateDir, service, wanted)
  if (principalText === undefined) {
    throw new CairnError(
      'AUTH',
      `${STORACHA_ENV.principal} is not set (${STORACHA_ENV.proof} is): both are needed to publish to Storacha`,
      {
        subject: STORACHA_ENV.principal,
        hint: 'set it to the agent key `storacha key create` printed, the key the delegation in STORACHA_PROOF was made for',
      },
    )
  }
  if (proofText === undefined) {
    throw new CairnError(
      'AUTH',
      `${STORACHA_ENV.proof} is not set (${STORACHA_ENV.principal} is): both are needed to publish to Storacha`,
      {
        subject: STORACHA_ENV.proof,
        hint: 'set it to a space delegation for the agent: `storacha delegation create <agent DID> -c space/blob/add -c space/index/add -c filecoin/offer -c upload/add --base64`',
      },
    )
  }
  const principal = parsePrincipal(principalText)
  const proof = await parseProof(proofText)
  checkProof(proof, principal.did())
  const client = await Storacha.create({ principal, store: new StoreMemory(), ...clientService(service) })
  const space = await client.addSpace(proof)
  if (wanted !== undefined && space.did() !== wanted) {
    throw new CairnError('AUTH', `${STORACHA_ENV.proof} delegates space ${space.did()}, not ${wanted}`, {
      subject: STORACHA_ENV.proof,
      hint: `publish to storacha:${space.did()} (or just storacha), or set ${STORACHA_ENV.proof} to a delegation of ${wanted}`,
    })
  }
  await client.setCurrentSpace(space.did())
  return { client, space: space.did() }
}

function parsePrincipal(text: string): ReturnType<typeof Ed25519.parse> {
  try {
    return Ed25519.parse(text)
  } catch {
    // the parser's own message quotes the input: never pass it on
    throw new CairnError(
      'AUTH',
      `${STORACHA_ENV.principal} is not an ed25519 private key (expected the multibase string \`storacha key create\` prints, starting with "Mg")`,
      {
        subject: STORACHA_ENV.principal,
      },
    )
  }
}

async function parseProof(text: string): Promise<Delegation> {
  try {
    return (await Proof.parse(text)) as Delegation
  } catch {
    throw new CairnError(
      'AUTH',
      `${STORACHA_ENV.proof} is not a base64 UCAN delegation (expected what \`storacha delegation create … --base64\` prints)`,
      {
        subject: STORACHA_ENV.proof,
      },
    )
  }
}

function checkProof(proof: Delegation, agent: string): void {
  const audience = proof.audience.did()
  if (audience !== agent) {
    throw new CairnError(
      'AUTH',
      `${STORACHA_ENV.proof} delegates to ${audience}, not to the agent key in ${STORACHA_ENV.principal} (${agent})`,
      {
        subject: STORACHA_ENV.proof,
        hint: `create the delegation for ${agent}, or set ${STORACHA_ENV.principal} to the key it was made for`,
      },
    )
  }
  if (Number.isFinite(proof.expiration) && proof.expiration * 1000 < Date.now()) {
    throw new CairnError('AUTH', `${STORACHA_ENV.proof} expired on ${new Date(proof.expiration * 1000).toISOString()}`, {
      subject: STORACHA_ENV.proof,
      hint: 'create a new delegation',
    })
  }
  const granted = proof.capabilities.map((c) => c.can)
  const missing = REQUIRED_ABILITIES.filter((ability) => !granted.some((can) => grants(can, ability)))
  if (missing.length > 0) {
    throw new CairnError(
      'AUTH',
      `${STORACHA_ENV.proof} does not grant ${missing.join(', ')} (it grants ${granted.join(', ') || 'nothing'})`,
      {
        subject: STORACHA_ENV.proof,
        hint: `create the delegation with -c ${REQUIRED_ABILITIES.join(' -c ')}`,
      },
    )
  }
}

function grants(can: string, ability: string): boolean {
  return can === ability || can === '*' || (can.endsWith('/*') && ability.startsWith(can.slice(0, -1)))
}

function clientService(service: StorachaService): { serviceConf?: ServiceConf; receiptsEndpoint?: URL } {
  return {
    ...(service.serviceConf ? { serviceConf: service.serviceConf } : {}),
    ...(service.receiptsEndpoint ? { receiptsEndpoint: service.receiptsEndpoint } : {}),
  }
}

async function openLoginState(
  stateDir: string,
  service: StorachaService,
  wanted: string | undefined,
): Promise<{ client: Storacha.Client; space: `did:${string}:${string}` }> {
  const store = new AgentStateStore(stateDir)
  const state = await store.load()
  if (state === undefined) {
    throw new CairnError(
      'AUTH',
      `No Storacha credentials: ${STORACHA_ENV.principal} and ${STORACHA_ENV.proof} are not set, and there is no login state in ${stateDir}`,
      {
        subject: STORACHA_ENV.principal,
        hint: `set ${STORACHA_ENV.principal} and ${STORACHA_ENV.proof} (CI), or run \`cairn login <email>\``,
      },
    )
  }
  // publishing never changes the saved state (selecting a space below included): work on a copy
  const copy = new StoreMemory()
  await copy.save(state)
  const client = await Storacha.create({ store: copy, ...clientService(service) })
  if (wanted !== undefined) {
    const found = client.spaces().find((s) => s.did() === wanted)
    if (!found) {
      throw new CairnError('AUTH', `The login state in ${stateDir} has no access to space ${wanted}`, {
        subject: wanted,
        hint: `run \`cairn login <email> --space ${wanted}\` with an account that owns it, or publish to storacha (the logged-in space)`,
      })
    }
    await client.setCurrentSpace(found.did())
    return { client, space: found.did() }
  }
  const space = client.currentSpace()
  if (!space) {
    throw new CairnError('AUTH', `The login state in ${stateDir} has no space to publish to`, {
      subject: stateDir,
      hint: 'run `cairn login <email>` again: it selects or creates a space',
    })
  }
  return { client, space: space.did() }
}

/**
 * The agent's state as `cairn login` keeps it: one JSON file (format {@link AGENT_STATE_FORMAT}) in a
 * folder of mode 0700, the file of mode 0600, replaced atomically on each save. It fits the client's
 * storage driver by shape. `load` throws `AUTH` when the file is unreadable, of another format, or
 * readable by other users.
 */
export class AgentStateStore {
  /** The state file. */
  readonly file: string

  /** `dir` is the state folder (created on the first save). */
  constructor(readonly dir: string) {
    this.file = join(dir, AGENT_STATE_FILE)
  }

  /** Nothing to open: each call reads or writes the file. (Part of the client's storage-driver shape.) */
  async open(): Promise<void> {}
  /** Nothing to close. */
  async close(): Promise<void> {}

  /** Removes the state file. */
  async reset(): Promise<void> {
    await unlink(this.file).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw stateError(`Cannot remove ${this.file}: ${e.code ?? e.message}`, this.file)
    })
  }

  /** Writes the state: folder 0700, file 0600, written to a temporary name and renamed. */
  async save(data: AgentDataExport): Promise<void> {
    const text = JSON.stringify({ ...AGENT_STATE_FORMAT, agent: data }, encodeValue, 2) + '\n'
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 })
      // mkdir's mode is masked by the umask and ignored for an existing folder
      if (process.platform !== 'win32') await chmod(this.dir, 0o700)
      await writeFileAtomic(this.file, text, { mode: 0o600 })
    } catch (e) {
      throw stateError(`Cannot write the login state ${this.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, this.file)
    }
  }

  /** The saved state, or undefined when there is none. */
  async load(): Promise<AgentDataExport | undefined> {
    let text: string
    try {
      if (process.platform !== 'win32') {
        const { mode } = await stat(this.file)
        if ((mode & 0o077) !== 0) {
          throw stateError(
            `The login state ${this.file} is readable by other users (mode ${(mode & 0o777).toString(8)})`,
            this.file,
            `run \`chmod 600 ${this.file}\``,
          )
        }
      }
      text = await readFile(this.file, 'utf8')
    } catch (e) {
      if (isCairnError(e)) throw e
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw stateError(`Cannot read the login state ${this.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, this.file)
    }
    let parsed: { format?: unknown; v?: unknown; agent?: unknown }
    try {
      parsed = JSON.parse(text, decodeValue) as typeof parsed
    } catch {
      throw stateError(`The login state ${this.file} is not valid JSON`, this.file)
    }
    if (
      parsed?.format !== AGENT_STATE_FORMAT.format ||
      parsed.v !== AGENT_STATE_FORMAT.v ||
      typeof parsed.agent !== 'object' ||
      parsed.agent === null
    ) {
      throw stateError(
        `The login state ${this.file} has format ${JSON.stringify(parsed?.format)} version ${JSON.stringify(parsed?.v)} (expected ${AGENT_STATE_FORMAT.format} version ${AGENT_STATE_FORMAT.v})`,
        this.file,
      )
    }
    return parsed.agent as AgentDataExport
  }
}

function stateError(message: string, file: string, hint = 'run `cairn login <email>` again'): CairnError {
  return new CairnError('AUTH', message, { subject: file, hint })
}

// Maps and byte arrays do not survive JSON: tag them.
function encodeValue(this: unknown, _key: string, value: unknown): unknown {
  if (value instanceof Map) return { $map: [...value.entries()] }
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') }
  if (value instanceof ArrayBuffer) return { $arraybuffer: Buffer.from(value).toString('base64') }
  return value
}

function decodeValue(_key: string, value: unknown): unknown {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const v = value as Record<string, unknown>
    const keys = Object.keys(v)
    if (keys.length === 1 && keys[0] === '$map' && Array.isArray(v.$map)) return new Map(v.$map as [unknown, unknown][])
    if (keys.length === 1 && keys[0] === '$bytes' && typeof v.$bytes === 'string') return new Uint8Array(Buffer.from(v.$bytes, 'base64'))
    if (keys.length === 1 && keys[0] === '$arraybuffer' && typeof v.$arraybuffer === 'string') {
      const bytes = Buffer.from(v.$arraybuffer, 'base64')
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
    }
  }
  return value
}

// ---------------------------------------------------------------------------------------------------
// Publishing
// ---------------------------------------------------------------------------------------------------

interface Policy {
  readonly retries?: number
  readonly minDelayMs?: number
  readonly service: StorachaService
}

async function publishToStoracha(
  client: Storacha.Client,
  address: string,
  space: string,
  input: PublishInput,
  options: PublishOptions,
  policy: Policy,
): Promise<Receipt> {
  const shardSize = options.shardSize
  if (shardSize !== undefined && (!Number.isSafeInteger(shardSize) || shardSize < 1024)) {
    throw new CairnError('USAGE', `Shard size ${shardSize} is not a whole number of bytes ≥ 1024`)
  }
  const where = policy.service.url ? ` (service ${policy.service.url})` : ''
  try {
    return await retry(
      () => publishOnce(client, address, space, input, options),
      { what: `Publishing ${input.root} to ${address}${where}`, subject: address },
      {
        ...(policy.retries !== undefined ? { retries: policy.retries } : {}),
        ...(policy.minDelayMs !== undefined ? { minDelayMs: policy.minDelayMs } : {}),
        isTransient,
        ...(options.signal ? { signal: options.signal } : {}),
        onRetry: (info) => options.onProgress?.({ shards: 0, bytes: 0, message: info.message }),
      },
    )
  } catch (e) {
    if (isCairnError(e)) throw e
    const action = { what: `Publishing ${input.root} to ${address}`, subject: address, service: policy.service }
    throw storachaError(e, options.signal?.aborted ? { ...action, note: '(aborted)' } : action)
  }
}

async function publishOnce(
  client: Storacha.Client,
  address: string,
  space: string,
  input: PublishInput,
  options: PublishOptions,
): Promise<Receipt> {
  const shards: StoredShard[] = []
  const pieces: string[] = []
  const putChecksums = new Set<string>()
  let newBlocks = 0
  let newBytes = 0
  let bytes = 0
  const car = carBlob(input.source, input.root)
  // Wrap fetch only to learn which shards were really sent: the service skips the HTTP PUT of a blob it holds.
  const recordingFetch: typeof fetch = (url, init) => {
    if (init?.method === 'PUT') {
      const headers = new Headers(init.headers)
      const checksum = headers.get('x-amz-checksum-sha256')
      if (checksum) putChecksums.add(checksum)
    }
    return fetch(url, init)
  }
  let root: { toString(): string; bytes: Uint8Array }
  try {
    root = await client.uploadCAR(car, {
      ...(options.shardSize !== undefined ? { shardSize: options.shardSize } : {}),
      fetch: recordingFetch,
      ...(options.signal ? { signal: options.signal } : {}),
      onShardStored: (meta: CARMetadata) => {
        const cid = CID.decode(meta.cid.bytes)
        const sent = putChecksums.has(Buffer.from(meta.cid.multihash.digest).toString('base64'))
        if (sent) {
          newBytes += meta.size
          // slices hold every block of the CAR plus the CAR itself
          newBlocks += Math.max(0, meta.slices.size - 1)
        }
        bytes += meta.size
        shards.push({ cid, size: meta.size })
        if (meta.piece) pieces.push(meta.piece.toString())
        options.onProgress?.({
          shards: shards.length,
          bytes,
          message: `shard ${shards.length} stored (${meta.size} B${sent ? '' : ', already held'})`,
        })
      },
    })
  } catch (e) {
    // a failure reading the version's blocks (MISSING_BLOCK, CORRUPT_BLOCK, IO) is the store's, not the service's
    const carError = car.error()
    if (carError && isCairnError(carError)) throw carError
    throw e
  } finally {
    car.close()
  }
  if (root.toString() !== input.root.toString()) {
    throw new CairnError('PUBLISH_FAILED', `${address} registered the upload under ${root}, expected ${input.root}`, { subject: address })
  }
  return {
    target: address,
    root: input.root,
    publishedAt: new Date().toISOString(),
    shards,
    newBlocks,
    newBytes,
    details: { space, ...(pieces.length > 0 ? { pieces } : {}) },
  }
}

/**
 * A Blob-like the client reads once per upload attempt: each `stream()` walks the DAG afresh and
 * streams the CAR through a pull-based ReadableStream, so only what the client asked for is read.
 */
function carBlob(source: BlockSource, root: CID): { stream(): ReadableStream<Uint8Array>; error(): unknown; close(): void } {
  let failure: unknown
  const open: PassThrough[] = []
  return {
    stream() {
      const pass = new PassThrough()
      open.push(pass)
      void writeCar(source, root, pass).catch((e: unknown) => {
        failure ??= e
        pass.destroy(e instanceof Error ? e : new Error(String(e)))
      })
      const chunks = pass[Symbol.asyncIterator]() as AsyncIterator<Buffer>
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          const next = await chunks.next()
          if (next.done) controller.close()
          else controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength))
        },
        cancel() {
          pass.destroy()
        },
      })
    },
    error: () => failure,
    close() {
      for (const pass of open) if (!pass.destroyed) pass.destroy()
    },
  }
}

// ---------------------------------------------------------------------------------------------------
// Errors: the client's results and throws become CairnErrors here, once
// ---------------------------------------------------------------------------------------------------

/** Error names with which the service (or the local UCAN checks) rejects credentials. */
const AUTH_NAMES = new Set([
  'Unauthorized',
  'InvalidAudience',
  'Expired',
  'NotValidBefore',
  'InvalidSignature',
  'UnavailableProof',
  'Revoked',
  'DIDKeyResolutionError',
])

interface ErrorLike {
  name?: unknown
  message?: unknown
  code?: unknown
  status?: unknown
  cause?: unknown
}

/** The error and its causes, outermost first. */
function chain(e: unknown): ErrorLike[] {
  const out: ErrorLike[] = []
  let at: unknown = e
  while (at && typeof at === 'object' && out.length < 8 && !out.includes(at as ErrorLike)) {
    out.push(at as ErrorLike)
    at = (at as ErrorLike).cause
  }
  return out
}

/** The shared rule (resets, timeouts, 5xx), plus the client's own message for a failed blob PUT. */
function isTransient(e: unknown): boolean {
  return isTransientNetwork(e) || chain(e).some((x) => typeof x.message === 'string' && /^upload failed: 5\d\d$/.test(x.message))
}

/** One line from an error chain: `failed space/blob/add invocation: InsufficientStorage: did:key:… has no storage provider`. */
function describe(e: unknown): string {
  const parts: string[] = []
  for (const x of chain(e)) {
    const name = typeof x.name === 'string' && x.name !== 'Error' && x.name !== 'TypeError' ? x.name : undefined
    const message = typeof x.message === 'string' ? x.message : undefined
    const code = typeof x.code === 'string' ? x.code : undefined
    const part = [name, message].filter(Boolean).join(': ') + (code && !message?.includes(code) ? ` (${code})` : '')
    if (part && !parts.some((p) => p.includes(part))) parts.push(part)
  }
  if (parts.length === 0) parts.push(String(e))
  return parts.join(': ')
}

/**
 * The service refusing new writes: Storacha stopped taking uploads in May 2026 (legacy target). Its
 * refusal is recognised by an HTTP 410 Gone, or by an error whose name or message says writes or
 * uploads are disabled (the wording is the service's, so several forms are taken).
 */
function writesRefused(e: unknown): boolean {
  return chain(e).some((x) => {
    const message = typeof x.message === 'string' ? x.message : ''
    const name = typeof x.name === 'string' ? x.name : ''
    return (
      x.status === 410 ||
      /→ 410$/.test(message) ||
      /(Disabled|Sunset|ReadOnly|Deprecated|Decommission)/.test(name) ||
      /(new )?(writes|uploads) (are |have been )?(disabled|paused|stopped|no longer)|no longer accepts?|read[- ]only mode|sunset|Filecoin Onchain Cloud/i.test(
        message,
      )
    )
  })
}

/** What a Storacha call was doing, for {@link storachaError}'s message. */
export interface StorachaAction {
  /** `Publishing bafy… to storacha:did:key:…`, `Logging in to Storacha as a@b.c`. */
  readonly what: string
  /** The error's subject: the target address, the email. */
  readonly subject: string
  readonly service: StorachaService
  /** Appended after "failed", e.g. `(aborted)`. */
  readonly note?: string
}

/**
 * The one conversion of what the Storacha client threw (its `{ error }` results arrive wrapped as
 * causes) into a {@link CairnError}: a shard size smaller than a block → `USAGE`; a UCAN rejection
 * (`Unauthorized`, `Expired`, …) → `AUTH`; anything else → `PUBLISH_FAILED` with the service's error
 * names and messages (`InsufficientStorage: did:key:… has no storage provider`). A `CairnError` passes
 * unchanged. Never quotes a credential: the client's errors hold DIDs and CIDs, not keys.
 */
export function storachaError(e: unknown, action: StorachaAction): CairnError {
  if (isCairnError(e)) return e
  const where = action.service.url ? ` (service ${action.service.url})` : ''
  const tooBig = chain(e).find((x) => typeof x.message === 'string' && x.message.startsWith('block will cause CAR to exceed shard size'))
  if (tooBig) {
    const block = String(tooBig.message).split(': ').pop()
    return new CairnError('USAGE', `The shard size is smaller than block ${block} (with its CAR framing)`, {
      subject: block,
      hint: 'use a larger shard size: cairn blocks are at most 1 MiB, so 2 MiB always fits (the default is 127 MiB)',
      cause: e,
    })
  }
  if (chain(e).some((x) => typeof x.name === 'string' && AUTH_NAMES.has(x.name))) {
    return new CairnError('AUTH', `${action.what}${where} was refused: ${describe(e)}`, {
      subject: action.subject,
      hint: `check that ${STORACHA_ENV.proof} (or the login state) delegates the space to the agent with ${REQUIRED_ABILITIES.join(', ')}`,
      cause: e,
    })
  }
  if (writesRefused(e)) {
    return new CairnError(
      'PUBLISH_FAILED',
      `${action.what}${where} was refused: the service no longer accepts new uploads (Storacha stopped new writes in May 2026 and is moving its users to Filecoin Onchain Cloud): ${describe(e)}`,
      {
        subject: action.subject,
        hint: 'publish to another target: dir:<path> (a folder of CARs any host can serve) or kubo:<rpc-url> (a Kubo node or IPFS Cluster); what is already on Storacha stays readable through gateways',
        cause: e,
      },
    )
  }
  const refused = chain(e).some((x) => x.name === 'InsufficientStorage')
  return new CairnError('PUBLISH_FAILED', `${action.what}${where} failed${action.note ? ` ${action.note}` : ''}: ${describe(e)}`, {
    subject: action.subject,
    hint: refused
      ? 'the space has no storage provider: provision it with your account (`storacha space provision`) or run `cairn login <email>`'
      : undefined,
    cause: e,
  })
}
