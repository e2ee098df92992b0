/**
 * The local high-water mark of each IPNS name: the highest sequence and its value this user has seen
 * (resolved, cloned or published), in `<config>/names/<name>.json`. A record below it is a rollback;
 * a newer value whose history lacks the value seen is a fork.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { tryParseCid, type CID } from '../cid.js'
import { ioError } from '../errors.js'
import { configDir } from '../signing/keys.js'
import { writeFileAtomic } from '../util/atomic.js'

/** What was last seen of a name. */
export interface Seen {
  readonly sequence: bigint
  readonly value: CID
  readonly seenAt: string
}

function seenFile(name: string, env: NodeJS.ProcessEnv): string {
  return join(configDir(env), 'names', `${name}.json`)
}

/** The high-water mark of `name`, or undefined when never seen (an unreadable file counts as never seen). */
export async function readSeen(name: string, env: NodeJS.ProcessEnv = process.env): Promise<Seen | undefined> {
  const text = await readFile(seenFile(name, env), 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  try {
    const j = JSON.parse(text) as { sequence?: unknown; value?: unknown; seenAt?: unknown }
    const value = typeof j.value === 'string' ? tryParseCid(j.value) : undefined
    if (typeof j.sequence !== 'string' || !/^\d+$/.test(j.sequence) || value === undefined) return undefined
    return { sequence: BigInt(j.sequence), value, seenAt: String(j.seenAt ?? '') }
  } catch {
    return undefined
  }
}

/** Raises the high-water mark of `name` to `sequence`/`value` (never lowers it). Throws `IO`. */
export async function recordSeen(name: string, sequence: bigint, value: CID, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const before = await readSeen(name, env)
  if (before !== undefined && before.sequence > sequence) return
  const file = seenFile(name, env)
  try {
    await mkdir(join(file, '..'), { recursive: true, mode: 0o700 })
    await writeFileAtomic(
      file,
      JSON.stringify({ name, sequence: sequence.toString(), value: value.toString(), seenAt: new Date().toISOString() }, null, 2) + '\n',
    )
  } catch (e) {
    throw ioError('record the last seen record of', file, e)
  }
}
