/**
 * `login`: interactive set-up of the `storacha` target. Creates (or reuses) an agent key in the user's
 * config folder, asks the Storacha service to email a confirmation link, waits until the link is
 * clicked, then selects a space of the account or creates and provisions one. The agent's state is
 * kept by {@link AgentStateStore}: a folder of mode 0700 holding one file of mode 0600. The
 * `storacha` target uses it when no `STORACHA_PRINCIPAL` / `STORACHA_PROOF` is given. This module loads
 * the Storacha client only when {@link login} runs, so re-exporting it costs nothing at start-up.
 */
import { resolve } from 'node:path'
import { CairnError } from './errors.js'
// types only: the Storacha client takes ~0.5 s to load, so it is imported when login runs
import type { StorachaTargetOptions } from './targets/storacha.js'

/** The name of the space `login` creates when the account has none. */
export const DEFAULT_SPACE_NAME = 'cairn'

/** Options of {@link login}. */
export interface LoginOptions extends Pick<StorachaTargetOptions, 'serviceUrl' | 'serviceDid' | 'receiptsUrl' | 'configDir' | 'env'> {
  /** The account's email address. */
  readonly email: string
  /** The space to select, by DID or name; created (under this name) when the account has none by that name. */
  readonly space?: string
  /** Called when a confirmation email is about to be requested (not when the state already has a session for the account). */
  readonly onWaiting?: (info: { readonly email: string }) => void
  /** Stops waiting for the confirmation. */
  readonly signal?: AbortSignal
}

/** What {@link login} did. No secret: DIDs only. */
export interface LoginResult {
  /** The account, `did:mailto:…`. */
  readonly account: string
  /** The agent's DID (its key stays in the state folder). */
  readonly agent: string
  /** The space the `storacha` target publishes to. */
  readonly space: string
  readonly spaceName?: string
  /** True when login created and provisioned the space. */
  readonly spaceCreated: boolean
  /** The folder holding the agent's state. */
  readonly stateDir: string
}

/**
 * Logs the agent in as `email` and selects a space for publishing. Resolves once the emailed link is
 * clicked (or the account already has a session in the state). Throws `USAGE` for an email that is not
 * one, `AUTH` when the state folder cannot be read or written or the service refuses the login,
 * `PUBLISH_FAILED` when the service cannot be reached or refuses to provision the space.
 */
export async function login(options: LoginOptions): Promise<LoginResult> {
  const email = options.email.trim()
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
    throw new CairnError('USAGE', `${JSON.stringify(options.email)} is not an email address`, { hint: 'cairn login you@example.com' })
  }
  const env = options.env ?? process.env
  const { AgentStateStore, defaultStorachaStateDir, storachaError, storachaService } = await import('./targets/storacha.js')
  const Storacha = await import('@storacha/client')
  const service = storachaService(options, env)
  const stateDir = resolve(options.configDir ?? defaultStorachaStateDir(env))
  const store = new AgentStateStore(stateDir)
  // load first: a state folder we cannot trust must fail before any network call
  await store.load()
  try {
    const client = await Storacha.create({
      store,
      ...(service.serviceConf ? { serviceConf: service.serviceConf } : {}),
      ...(service.receiptsEndpoint ? { receiptsEndpoint: service.receiptsEndpoint } : {}),
    })
    // with a session for this account in the state, the client logs in without sending an email
    const accountDid = Storacha.Account.fromEmail(email as `${string}@${string}`)
    if (!(accountDid in client.accounts())) options.onWaiting?.({ email })
    const account = await client.login(email as `${string}@${string}`, options.signal ? { signal: options.signal } : {})
    const wanted = options.space
    let space = client.spaces().find((s) => s.did() === wanted || (wanted !== undefined && s.name === wanted))
    space ??= wanted === undefined ? (client.currentSpace() ?? client.spaces()[0]) : undefined
    let spaceCreated = false
    if (!space) {
      if (wanted?.startsWith('did:')) {
        throw new CairnError('AUTH', `${account.did()} has no access to space ${wanted}`, { subject: wanted })
      }
      const created = await client.createSpace(wanted ?? DEFAULT_SPACE_NAME, { account })
      spaceCreated = true
      await client.setCurrentSpace(created.did())
      space = client.currentSpace()
    } else {
      await client.setCurrentSpace(space.did())
    }
    if (!space) throw new CairnError('AUTH', `No space could be selected for ${account.did()}`)
    return { account: account.did(), agent: client.did(), space: space.did(), spaceName: space.name || undefined, spaceCreated, stateDir }
  } catch (e) {
    throw storachaError(e, { what: `Logging in to Storacha as ${email}`, subject: email, service })
  }
}
