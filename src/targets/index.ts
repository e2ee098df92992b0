/**
 * Turning a target as the user writes it (`--to dir:./cars`, `--to kubo:http://127.0.0.1:5001`,
 * `--to storacha`) into a {@link Target}. Credentials come from the environment, never from the spec
 * that is echoed back.
 */
import { CairnError } from '../errors.js'
import { retryOptionsFromEnv } from '../util/retry.js'
import { createDirTarget } from './dir.js'
import { createKuboTarget, KUBO_AUTH_ENV } from './kubo.js'
import type { Target } from './interface.js'

/** The target forms {@link parseTarget} understands, for messages and `--help`. */
export const TARGET_FORMS = ['dir:<path>', 'kubo:<rpc-url>', 'storacha[:<space-did>]'] as const

/**
 * What the Storacha target module (`./storacha.js`, written separately) is expected to export: a
 * factory taking the space DID from the spec (if any) and the environment (agent key, proof, service
 * URLs), returning a target or a promise of one.
 */
export interface StorachaModule {
  createStorachaTarget(options: { readonly space?: string; readonly env: NodeJS.ProcessEnv }): Target | Promise<Target>
}

/**
 * Parses a target spec:
 * - `dir:<path>`: a folder of CAR files (docs/dir-target.md);
 * - `kubo:<rpc-url>`: a Kubo node or IPFS Cluster proxy; `CAIRN_KUBO_AUTH` gives the Authorization,
 *   `CAIRN_KUBO_TIMEOUT_MS` the idle timeout, `CAIRN_RETRIES` and `CAIRN_RETRY_DELAY_MS` the retries;
 * - `storacha` or `storacha:<space-did>`: Storacha (w3up), loaded on demand. Legacy: the service stopped
 *   taking new uploads in May 2026 (its refusal becomes a `PUBLISH_FAILED` that says so).
 *
 * Throws `USAGE` for anything else (listing the forms), or when the Storacha target is not part of
 * this build.
 */
export async function parseTarget(spec: string, env: NodeJS.ProcessEnv = process.env): Promise<Target> {
  const colon = spec.indexOf(':')
  const scheme = colon < 0 ? spec : spec.slice(0, colon)
  const rest = colon < 0 ? '' : spec.slice(colon + 1)
  switch (scheme) {
    case 'dir':
      if (!rest) throw usage(spec, 'dir: needs a folder, e.g. dir:./cars')
      return createDirTarget({ path: rest })
    case 'kubo': {
      if (!rest) throw usage(spec, 'kubo: needs the RPC URL, e.g. kubo:http://127.0.0.1:5001')
      const timeout = env.CAIRN_KUBO_TIMEOUT_MS
      return createKuboTarget({
        url: rest,
        auth: env[KUBO_AUTH_ENV] || undefined,
        timeoutMs: timeout && /^\d+$/.test(timeout.trim()) ? Number(timeout) : undefined,
        retry: retryOptionsFromEnv(env),
      })
    }
    case 'storacha': {
      let mod: StorachaModule
      // loaded only when used; a literal specifier, so that the CLI's bundle (bin/bundle.js) holds it
      try {
        mod = (await import('./storacha.js')) as StorachaModule
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
          throw new CairnError('USAGE', `The storacha target is not available in this build of cairn (${(e as Error).message})`, {
            subject: spec,
            cause: e,
          })
        }
        throw e
      }
      return await mod.createStorachaTarget({ space: rest || undefined, env })
    }
    default:
      throw usage(spec, `unknown target ${JSON.stringify(scheme)}`)
  }
}

function usage(spec: string, why: string): CairnError {
  return new CairnError('USAGE', `Cannot publish to ${JSON.stringify(spec)}: ${why} (expected ${TARGET_FORMS.join(', ')})`, {
    subject: spec,
    hint: 'e.g. --to dir:./cars or --to kubo:http://127.0.0.1:5001',
  })
}

export { createDirTarget, DEFAULT_DIR_SHARD_SIZE, type DirTargetOptions } from './dir.js'
export { createKuboTarget, type KuboTargetOptions } from './kubo.js'
export type { Target, PublishInput, PublishOptions, PublishProgress, Receipt, StoredShard } from './interface.js'
