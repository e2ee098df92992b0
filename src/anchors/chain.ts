/**
 * One EVM chain reached through its JSON-RPC endpoint, with viem (a maintained, typed client: it
 * encodes the ABI, signs, estimates fees and retries; cairn writes no JSON-RPC or ABI by hand). Every
 * failure of the chain or the endpoint becomes one {@link CairnError} here, in {@link chainError}, whose
 * message names the endpoint by its origin only: an RPC URL often holds an API key in its path.
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  HttpRequestError,
  InsufficientFundsError,
  TimeoutError,
  type Chain as ViemChain,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem'
import type { PrivateKeyAccount } from 'viem/accounts'
import { CairnError } from '../errors.js'
import { retryOptionsFromEnv } from '../util/retry.js'

/** How to reach a chain. */
export interface ChainOptions {
  /** The JSON-RPC endpoint: an http(s) URL. */
  readonly rpc: string
  /** Where retry settings are read from (`CAIRN_RETRIES`, `CAIRN_RETRY_DELAY_MS`; default `process.env`). */
  readonly env?: NodeJS.ProcessEnv
  /** How often to poll for receipts and blocks, in ms (default 1000). */
  readonly pollingIntervalMs?: number
}

/** An opened chain: the client, its id, and the endpoint as it may be shown. */
export interface Chain {
  readonly client: PublicClient
  readonly chainId: number
  /** The endpoint's origin (`https://host:port`), never its path or credentials. */
  readonly shown: string
  readonly retries: number
}

/** The origin of an RPC URL: what messages and receipts may say of it. */
export function showRpc(rpc: string): string {
  try {
    return new URL(rpc).origin
  } catch {
    return '(an unparsable URL)'
  }
}

/**
 * Connects to the chain at `options.rpc` and asks its chain id (retried on transient failures).
 * Throws `USAGE` for a URL that is not http(s), `ANCHOR_FAILED` when the endpoint is down after retries
 * or does not answer as an Ethereum JSON-RPC endpoint.
 */
export async function openChain(options: ChainOptions): Promise<Chain> {
  let url: URL
  try {
    url = new URL(options.rpc)
  } catch {
    throw new CairnError(
      'USAGE',
      `--chain ${JSON.stringify(showRpc(options.rpc))} is not a URL (expected http(s)://host:port of a JSON-RPC endpoint)`,
    )
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CairnError('USAGE', `--chain must be an http(s) JSON-RPC URL (found ${url.protocol})`, { subject: url.origin })
  const { retries = 5, minDelayMs = 500 } = retryOptionsFromEnv(options.env ?? process.env)
  const client = createPublicClient({
    transport: http(options.rpc, { retryCount: retries, retryDelay: minDelayMs, timeout: 30_000 }),
    pollingInterval: options.pollingIntervalMs ?? 1000,
  })
  const shown = url.origin
  const chain = { client, shown, retries, chainId: 0 }
  const chainId = await call(chain, 'ask the chain id', () => client.getChainId())
  if (!Number.isSafeInteger(chainId) || chainId <= 0)
    throw new CairnError('ANCHOR_FAILED', `${shown} answered chain id ${String(chainId)}, which is not a chain id`, { subject: shown })
  return { ...chain, chainId }
}

/** Runs one request to the chain, turning whatever fails into a {@link CairnError} (see {@link chainError}). */
export async function call<T>(chain: Pick<Chain, 'shown' | 'retries'>, what: string, fn: () => Promise<T>, from?: string): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw chainError(chain, what, e, from)
  }
}

/**
 * The one mapping of viem's errors to cairn's: an endpoint down or timing out after retries, an
 * account without the funds, a call the contract reverted, and anything else (an endpoint that
 * answers garbage) all become `ANCHOR_FAILED` with a message of their own. Never includes a URL's path,
 * a request body or a key.
 */
export function chainError(chain: Pick<Chain, 'shown' | 'retries'>, what: string, e: unknown, from?: string): CairnError {
  if (e instanceof CairnError) return e
  const subject = chain.shown
  if (e instanceof BaseError) {
    const funds = e.walk((x) => x instanceof InsufficientFundsError)
    if (funds)
      return new CairnError(
        'ANCHOR_FAILED',
        `Cannot ${what}: the account ${from ?? ''} has not enough ETH on this chain to pay for the transaction`.replace('  ', ' '),
        { subject, hint: 'send ETH to that account on this chain, or use another key; nothing was sent' },
      )
    const reverted = e.walk((x) => x instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null
    if (reverted) {
      const reason = reverted.data?.errorName ?? reverted.reason ?? 'no reason given'
      return new CairnError('ANCHOR_FAILED', `Cannot ${what}: the contract reverted the call (${reason}); nothing was sent`, {
        subject,
        hint: 'check that --contract names a cairn anchor contract (deploy one with `cairn anchor deploy`)',
      })
    }
    const timeout = e.walk((x) => x instanceof TimeoutError)
    const http = e.walk((x) => x instanceof HttpRequestError) as HttpRequestError | null
    // no status and a cause other than fetch's network TypeError: the endpoint answered, but not JSON-RPC
    if (http && http.status === undefined && http.cause instanceof Error && !(http.cause instanceof TypeError)) {
      const what_ = http.cause instanceof SyntaxError ? 'something that is not JSON' : 'something that is not JSON-RPC'
      return new CairnError('ANCHOR_FAILED', `Cannot ${what}: ${subject} answered ${what_} (${firstLine(http.cause.message)})`, {
        subject,
        hint: 'is --chain an Ethereum JSON-RPC endpoint?',
        cause: e,
      })
    }
    if (timeout || (http && (http.status === undefined || http.status >= 500 || http.status === 429 || http.status === 408))) {
      const why = timeout ? 'timed out' : http?.status ? `HTTP ${http.status}` : 'unreachable'
      return new CairnError(
        'ANCHOR_FAILED',
        `Cannot ${what}: the JSON-RPC endpoint ${subject} is ${why === 'unreachable' ? 'unreachable' : `failing (${why})`} after ${chain.retries + 1} attempts`,
        {
          subject,
          hint: 'check that the node is up and --chain is right, then run the command again',
          cause: e,
        },
      )
    }
    if (http) {
      return new CairnError('ANCHOR_FAILED', `Cannot ${what}: ${subject} refused the request (HTTP ${http.status})`, { subject, cause: e })
    }
    return new CairnError(
      'ANCHOR_FAILED',
      `Cannot ${what}: ${subject} answered what is not a usable JSON-RPC answer (${firstLine(e.shortMessage)})`,
      {
        subject,
        hint: 'is --chain an Ethereum JSON-RPC endpoint?',
        cause: e,
      },
    )
  }
  return new CairnError(
    'ANCHOR_FAILED',
    `Cannot ${what}: ${subject} answered something that is not Ethereum JSON-RPC (${firstLine(String((e as Error)?.message ?? e))})`,
    {
      subject,
      hint: 'is --chain an Ethereum JSON-RPC endpoint?',
      cause: e,
    },
  )
}

function firstLine(text: string): string {
  const line = text.split('\n')[0].replace(/https?:\/\/\S+/g, (u) => showRpc(u))
  return line.length > 200 ? line.slice(0, 200) + '…' : line
}

/** A wallet client that signs with `account` locally and sends through the same endpoint. */
export function walletFor(
  chain: Chain,
  rpc: string,
  account: PrivateKeyAccount,
  env?: NodeJS.ProcessEnv,
): WalletClient<Transport, ViemChain, PrivateKeyAccount> {
  const { retries = 5, minDelayMs = 500 } = retryOptionsFromEnv(env ?? process.env)
  return createWalletClient({
    account,
    chain: defineChain({
      id: chain.chainId,
      name: `chain ${chain.chainId}`,
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [rpc] } },
    }),
    transport: http(rpc, { retryCount: retries, retryDelay: minDelayMs, timeout: 30_000 }),
    pollingInterval: chain.client.pollingInterval,
  })
}
