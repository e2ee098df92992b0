/**
 * What every cairn command shares: `--json` (CIDs as dag-json links), error mapping through
 * `_errors.ts`, and progress on stderr only when stderr is a terminal and `--json` is off.
 */
import { Command, Flags } from '@oclif/core'
import { CID } from '../src/cid.js'
import { describeError } from './_errors.js'

export abstract class CairnCommand extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    dir: Flags.directory({
      char: 'C',
      summary:
        'The dataset folder, or a folder inside it (default: found from the current folder). Other relative paths stay relative to the current folder.',
      helpGroup: 'GLOBAL',
      exists: true,
    }),
  }

  /**
   * Arguments come from argv only: oclif would otherwise read a missing positional argument from a
   * piped stdin (`echo oops | cairn tag` made a tag "oops"). Set here once, for every command.
   */
  public override async init(): Promise<void> {
    for (const arg of Object.values(this.ctor.args ?? {})) arg.ignoreStdin = true
    await super.init()
  }

  /** Prints the result of `run()` under `--json`, CIDs as `{"/": "…"}`. */
  protected override toSuccessJson(result: unknown): unknown {
    return toJsonValue(result)
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<void> {
    // the reader of our stdout went away (`cairn pack | head`): stop quietly, as a SIGPIPE would
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') {
      process.exitCode = 141
      return
    }
    const { exitCode, text, json } = describeError(err)
    process.exitCode = exitCode
    if (this.jsonEnabled()) this.logJson(json)
    else process.stderr.write(text + '\n')
  }

  /** A progress line on stderr, redrawn at most every 100 ms; a no-op under --json or off a terminal. */
  protected progress(): Progress {
    return new Progress(!this.jsonEnabled() && process.stderr.isTTY === true)
  }
}

/**
 * `--from`: where blocks come from, shared by clone, cat, diff and verify (src/sources/index.ts reads
 * each spec). Repeatable; sources are tried in the order given. No short form: `-f` is `--force`
 * wherever a command has one (one meaning per short flag, test/cli-consistency.test.ts).
 */
export const fromFlagOptions = {
  summary: 'A block source, tried in the order given (repeatable): http(s)://gateway, file.car, dir:<path>, a dataset folder.',
  multiple: true,
  multipleNonGreedy: true,
} as const
export const fromFlag = Flags.string(fromFlagOptions)

/** One redrawn line of progress on stderr. */
export class Progress {
  private last = 0
  private shown = false
  constructor(private readonly enabled: boolean) {}

  update(line: string, force = false): void {
    if (!this.enabled) return
    const now = Date.now()
    if (!force && now - this.last < 100) return
    this.last = now
    const width = process.stderr.columns ?? 80
    process.stderr.write('\r\x1b[2K' + line.slice(0, width - 1))
    this.shown = true
  }

  done(): void {
    if (this.enabled && this.shown) process.stderr.write('\r\x1b[2K')
    this.shown = false
  }
}

/** Converts CIDs to dag-json links and drops undefined, recursively. */
export function toJsonValue(value: unknown): unknown {
  const cid = CID.asCID(value)
  if (cid) return { '/': cid.toString() }
  if (Array.isArray(value)) return value.map(toJsonValue)
  if (value instanceof Date) return value.toISOString()
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, toJsonValue(v)]),
    )
  }
  return value
}

/** Human-readable bytes (KiB, MiB, GiB). */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`
}
