/**
 * Running the cairn CLI from tests: in-process through `@oclif/test`'s `runCommand` (the compiled
 * commands in `dist/`), or as a child process `node bin/run.js`. Both report the exit code the
 * process would exit with.
 */
import { execFile, execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { format } from 'node:util'
import { runCommand } from '@oclif/test'
import { repoRoot } from './tmp.js'

/** The CLI entry point. */
export const binPath: string = join(repoRoot, 'bin', 'run.js')

/** Builds `dist/` with `npm run build` when it is missing (never when it exists: other work may be in progress). */
export function ensureBuilt(): void {
  if (existsSync(join(repoRoot, 'dist', 'cli', 'index.js'))) return
  execFileSync('npm', ['run', 'build'], { cwd: repoRoot, stdio: 'inherit' })
}

/** What a command did: its output, the exit code it set, and the error it threw (if it did). */
export interface CliResult {
  readonly stdout: string
  readonly stderr: string
  readonly exitCode: number
  readonly error?: Error
}

/** Options of {@link cairn}. */
export interface CairnOptions {
  /** Environment variables set for the run (undefined: unset), restored afterwards. */
  readonly env?: Readonly<Record<string, string | undefined>>
}

/**
 * Runs `cairn <args>` in this process. `runCommand` joins and re-splits its arguments on
 * whitespace, so arguments holding spaces are quoted here (they must not hold `"`).
 */
export async function cairn(args: readonly string[], options: CairnOptions = {}): Promise<CliResult> {
  for (const a of args) if (a.includes('"')) throw new Error(`cairn() test helper: argument ${a} holds a double quote`)
  const quoted = args.map((a) => (/\s/.test(a) || a === '' ? `"${a}"` : a))
  const saved = new Map<string, string | undefined>()
  for (const [k, v] of Object.entries(options.env ?? {})) {
    saved.set(k, process.env[k])
    if (v === undefined) delete process.env[k]
    else process.env[k] = v
  }
  process.exitCode = undefined
  // oclif writes through console.log/console.error, which vitest intercepts unless the config sets
  // disableConsoleIntercept; route them to the streams runCommand captures.
  const consoleSaved = { log: console.log, info: console.info, warn: console.warn, error: console.error }
  console.log = console.info = (...a: unknown[]) => void process.stdout.write(format(...a) + '\n')
  console.warn = console.error = (...a: unknown[]) => void process.stderr.write(format(...a) + '\n')
  try {
    const { stdout, stderr, error } = await runCommand(quoted, { root: repoRoot })
    const thrown = (error as { oclif?: { exit?: number } } | undefined)?.oclif?.exit
    const exitCode = thrown ?? (error ? 1 : Number(process.exitCode ?? 0))
    return { stdout, stderr, exitCode, error }
  } finally {
    Object.assign(console, consoleSaved)
    process.exitCode = undefined
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
}

/** The JSON a `--json` run printed on stdout. */
export function parseJson<T = unknown>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T
  } catch (e) {
    throw new Error(`stdout is not JSON (${(e as Error).message}):\n${result.stdout}\nstderr:\n${result.stderr}`)
  }
}

/** What a child process `node bin/run.js …` did; stdout as bytes (a CAR may go there). */
export interface SpawnResult {
  readonly stdout: Buffer
  readonly stderr: string
  readonly exitCode: number
}

/** Spawns `node bin/run.js <args>` in `cwd`, stdin closed, stdout and stderr pipes (not terminals). */
export function spawnCairn(
  args: readonly string[],
  options: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv },
): Promise<SpawnResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [binPath, ...args],
      { cwd: options.cwd, env: options.env ?? process.env, encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0
        if (err && typeof code !== 'number') return reject(err)
        resolve({ stdout, stderr: stderr.toString('utf8'), exitCode: code as number })
      },
    )
    child.stdin?.end()
  })
}
