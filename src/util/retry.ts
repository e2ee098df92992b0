/**
 * Retrying transient failures (connection reset or refused, socket hang up, HTTP 5xx, timeouts) with
 * exponential backoff and full jitter. Anything else fails at once. Targets and sources wrap each
 * network request in {@link retry}; when retries run out the caller gets one {@link CairnError} naming
 * what was tried, how often, and the last error.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { CairnError, isCairnError, type ErrorCode } from '../errors.js'

/** How {@link retry} retries. Every field has a default; tests shorten the delays. */
export interface RetryOptions {
  /** Retries after the first attempt (default 5: six attempts in all). */
  readonly retries?: number
  /** The delay cap before the first retry, in ms (default 500); doubles for each further retry. */
  readonly minDelayMs?: number
  /** The largest delay cap, in ms (default 30 000). */
  readonly maxDelayMs?: number
  /** Which errors are worth another attempt (default {@link isTransient}). */
  readonly isTransient?: (error: unknown) => boolean
  /** Called before each wait: a line for progress (`retrying after ECONNRESET (2/5)`). */
  readonly onRetry?: (info: RetryInfo) => void
  /** Stops waiting and attempting; the abort reason is thrown. */
  readonly signal?: AbortSignal
  /** A number in [0, 1) (default `Math.random`), for tests that want fixed delays. */
  readonly random?: () => number
}

/** What {@link RetryOptions.onRetry} is told. */
export interface RetryInfo {
  /** The retry about to happen, 1-based. */
  readonly retry: number
  readonly retries: number
  readonly delayMs: number
  readonly error: unknown
  /** `retrying after ECONNRESET (2/5)` */
  readonly message: string
}

/** What {@link retry} says when it gives up. */
export interface RetryFailure {
  /** The error code thrown when retries run out (default `PUBLISH_FAILED`). */
  readonly code?: ErrorCode
  /** What was attempted, for the message: `publishing bafy… to kubo:http://127.0.0.1:5001`. */
  readonly what: string
  readonly subject?: string
  readonly hint?: string
}

/** Error codes of Node.js sockets and DNS that say "try again later". */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
])

/**
 * An HTTP response that is an error, as targets raise it: `status` decides whether it is transient
 * (5xx, 408, 429) or a refusal (other 4xx).
 */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
    this.name = 'HttpStatusError'
  }
}

/**
 * True for failures another attempt may cure: socket errors (reset, refused, hang up, timeouts), DNS
 * "try again", HTTP 5xx, 408 and 429 ({@link HttpStatusError} or any error with a numeric `status`),
 * errors marked `transient: true`, and errors whose `cause` is one of these (fetch wraps them so).
 * A {@link CairnError} is never transient: it is already a decision.
 */
export function isTransient(error: unknown): boolean {
  for (let e = error, depth = 0; e !== null && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isCairnError(e)) return false
    const { code, status, transient, message } = e as { code?: unknown; status?: unknown; transient?: unknown; message?: unknown }
    if (transient === true) return true
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true
    if (typeof status === 'number' && (status >= 500 || status === 408 || status === 429)) return true
    if (typeof message === 'string' && /socket hang up|other side closed|premature close/i.test(message)) return true
  }
  return false
}

/** A short description of an error for messages: its code and message, never a stack. */
export function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code
    const cause = (error as { cause?: unknown }).cause
    const own = code && !error.message.includes(code) ? `${code}: ${error.message}` : error.message
    return cause instanceof Error && !own.includes(cause.message) ? `${own} (${describeFailure(cause)})` : own
  }
  return String(error)
}

/**
 * Calls `fn` (given the attempt number, 1-based) until it succeeds, retrying transient failures after
 * a random delay in [0, min(maxDelayMs, minDelayMs·2^(retry-1))] (full jitter). A failure that is not
 * transient is rethrown at once, unchanged. When retries run out it throws `CairnError`
 * (`failure.code`, default `PUBLISH_FAILED`): "<what> failed after N attempts: <last error>", the last
 * error as its cause. An abort of `options.signal` throws the abort reason.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, failure: RetryFailure, options: RetryOptions = {}): Promise<T> {
  const retries = options.retries ?? 5
  const minDelay = options.minDelayMs ?? 500
  const maxDelay = options.maxDelayMs ?? 30_000
  const transient = options.isTransient ?? isTransient
  const random = options.random ?? Math.random
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted()
    try {
      return await fn(attempt)
    } catch (e) {
      if (options.signal?.aborted) throw options.signal.reason
      if (!transient(e)) throw e
      if (attempt > retries) {
        throw new CairnError(
          failure.code ?? 'PUBLISH_FAILED',
          `${failure.what} failed after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${describeFailure(e)}`,
          {
            subject: failure.subject,
            hint: failure.hint ?? 'the service kept failing; check that it is up and reachable, then run the command again',
            cause: e,
          },
        )
      }
      const cap = Math.min(maxDelay, minDelay * 2 ** (attempt - 1))
      const delayMs = Math.round(cap * random())
      const short = (e as { code?: unknown }).code
      const reason =
        typeof short === 'string'
          ? short
          : typeof (e as { status?: unknown }).status === 'number'
            ? `HTTP ${(e as { status: number }).status}`
            : describeFailure(e)
      options.onRetry?.({ retry: attempt, retries, delayMs, error: e, message: `retrying after ${reason} (${attempt}/${retries})` })
      await sleep(delayMs, undefined, options.signal ? { signal: options.signal } : undefined)
    }
  }
}

/**
 * Retry settings from the environment, for the CLI and for tests that run it: `CAIRN_RETRIES`
 * (retries after the first attempt) and `CAIRN_RETRY_DELAY_MS` (the first delay cap). Unset or
 * unparsable values are left to the defaults.
 */
export function retryOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<RetryOptions, 'retries' | 'minDelayMs'> {
  const num = (v: string | undefined): number | undefined => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : undefined)
  const retries = num(env.CAIRN_RETRIES)
  const minDelayMs = num(env.CAIRN_RETRY_DELAY_MS)
  return { ...(retries !== undefined ? { retries } : {}), ...(minDelayMs !== undefined ? { minDelayMs } : {}) }
}
