/**
 * A real local Ethereum node for tests: foundry's anvil (the binary that @foundry-rs/anvil-linux-amd64
 * ships), bound to 127.0.0.1 on a port the kernel picks (`--port 0`, read back from its banner), with
 * stdin closed, stopped by {@link Anvil.stop}. Its own RPC (evm_snapshot, evm_revert, anvil_setCode,
 * evm_mine…) is reached through viem's test client.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createTestClient, http, publicActions, type Hex } from 'viem'
import { repoRoot } from './tmp.js'

export const ANVIL_BIN = join(repoRoot, 'node_modules', '.bin', 'anvil')

export interface Anvil {
  /** http://127.0.0.1:<port> */
  readonly rpc: string
  readonly chainId: number
  /** The funded accounts' private keys, as anvil printed them. */
  readonly keys: readonly Hex[]
  /** anvil's own RPC (mine, snapshot, revert, setCode…) and the public actions. */
  readonly client: ReturnType<typeof testClientFor>
  stop(): Promise<void>
}

function testClientFor(rpc: string) {
  return createTestClient({ mode: 'anvil', transport: http(rpc, { retryCount: 0 }) }).extend(publicActions)
}

/** Starts anvil on 127.0.0.1 (chain id 31337 unless told), resolving once it listens. */
export async function startAnvil(options: { chainId?: number; args?: readonly string[] } = {}): Promise<Anvil> {
  const chainId = options.chainId ?? 31337
  const child: ChildProcess = spawn(
    ANVIL_BIN,
    ['--host', '127.0.0.1', '--port', '0', '--chain-id', String(chainId), ...(options.args ?? [])],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`anvil did not start in 20 s:\n${out}`)), 20_000)
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8')
      const m = /Listening on 127\.0\.0\.1:(\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')))
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`anvil exited with ${code}:\n${out}`))
    })
  })
  // keep draining its log so that it never blocks on a full pipe
  child.stdout!.resume()
  const keys = [...out.slice(out.indexOf('Private Keys')).matchAll(/\(\d+\) (0x[0-9a-f]{64})/g)].map((m) => m[1] as Hex)
  const rpc = `http://127.0.0.1:${port}`
  return {
    rpc,
    chainId,
    keys,
    client: testClientFor(rpc),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}
