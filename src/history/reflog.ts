/**
 * The HEAD log (`.cairn/logs/HEAD`): one JSON line per move of HEAD, oldest first,
 * `{"from": "<cid>" | null, "to": "<cid>", "at": "<ISO time>", "op": "build" | "reset" | "clone", "message": "…"}`.
 * It is how a `reset` is seen and undone, and which versions `gc` keeps as recent. Lines are appended
 * (one `write` each); a torn or unreadable line is skipped, as the store's index logs are.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID, tryParseCid } from '../cid.js'
import { ioError } from '../errors.js'
import { writeFileAtomic } from '../util/atomic.js'

/** What moved HEAD. */
export type HeadMoveOp = 'build' | 'reset' | 'clone' | 'compose'

/** One move of HEAD. */
export interface HeadMove {
  readonly from: CID | null
  readonly to: CID
  /** When, ISO 8601 UTC. */
  readonly at: string
  readonly op: HeadMoveOp
  readonly message: string
}

/** The log's path in the store folder `storeRoot` (`.cairn`). */
export function headLogPath(storeRoot: string): string {
  return join(storeRoot, 'logs', 'HEAD')
}

/** Appends a move of HEAD. Throws `IO`. */
export async function appendHeadMove(storeRoot: string, move: Omit<HeadMove, 'at'>): Promise<void> {
  const file = headLogPath(storeRoot)
  const line = JSON.stringify({
    from: move.from?.toString() ?? null,
    to: move.to.toString(),
    at: new Date().toISOString(),
    op: move.op,
    message: move.message,
  })
  try {
    await mkdir(join(storeRoot, 'logs'), { recursive: true })
    await appendFile(file, line + '\n')
  } catch (e) {
    throw ioError('append to', file, e)
  }
}

/**
 * Keeps only the moves `keep` accepts (e.g. those whose versions `gc` kept), rewriting the log
 * atomically. Throws `IO`.
 */
export async function filterHeadLog(storeRoot: string, keep: (move: HeadMove) => boolean): Promise<void> {
  const moves = await readHeadLog(storeRoot)
  const kept = moves.filter(keep)
  if (kept.length === moves.length) return
  const file = headLogPath(storeRoot)
  const text = kept
    .map((m) => JSON.stringify({ from: m.from?.toString() ?? null, to: m.to.toString(), at: m.at, op: m.op, message: m.message }) + '\n')
    .join('')
  try {
    await writeFileAtomic(file, text, { tmpDir: join(storeRoot, 'tmp'), flush: true })
  } catch (e) {
    throw ioError('write', file, e)
  }
}

/** Every move of HEAD, oldest first (none before the first build that kept a log). Throws `IO`. */
export async function readHeadLog(storeRoot: string): Promise<HeadMove[]> {
  const file = headLogPath(storeRoot)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw ioError('read', file, e)
  }
  const out: HeadMove[] = []
  for (const line of text.split('\n')) {
    const move = parseMove(line)
    if (move) out.push(move)
  }
  return out
}

function parseMove(line: string): HeadMove | undefined {
  if (line.trim() === '') return undefined
  let v: Record<string, unknown>
  try {
    v = JSON.parse(line) as Record<string, unknown>
  } catch {
    return undefined
  }
  const to = typeof v.to === 'string' ? tryParseCid(v.to) : undefined
  const from = v.from === null ? null : typeof v.from === 'string' ? tryParseCid(v.from) : undefined
  if (
    !to ||
    from === undefined ||
    typeof v.at !== 'string' ||
    (v.op !== 'build' && v.op !== 'reset' && v.op !== 'clone' && v.op !== 'compose')
  )
    return undefined
  return { from, to, at: v.at, op: v.op, message: typeof v.message === 'string' ? v.message : '' }
}

export { CID }
