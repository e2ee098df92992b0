/** The request log: one entry per answered request, and its one-line text form. */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** One answered (or abandoned) request. */
export interface RequestEntry {
  readonly method: string
  /** The path and query as sent. */
  readonly url: string
  readonly status: number
  /** Body bytes written (a response cut short counts what went out). */
  readonly bytes: number
  /** Milliseconds from the request to the end of the response. */
  readonly ms: number
  /** True when the response did not complete (a client that left, a block missing midway, a timeout). */
  readonly aborted: boolean
}

/** `GET /ipfs/bafy…/tree/a.csv 206 1024 B 3 ms` (and ` aborted`), control characters of the URL escaped. */
export function formatEntry(e: RequestEntry): string {
  const url = e.url.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  return `${e.method} ${url} ${e.status} ${e.bytes} B ${e.ms.toFixed(0)} ms${e.aborted ? ' aborted' : ''}`
}

/** Calls `onEntry` once when the response finishes or its connection closes. */
export function track(req: IncomingMessage, res: ServerResponse, onEntry: (e: RequestEntry) => void): void {
  const start = performance.now()
  const socket = req.socket
  const before = socket.bytesWritten
  let done = false
  const finish = (aborted: boolean): void => {
    if (done) return
    done = true
    // the socket's count includes the headers; the body is what is left after them
    const headerBytes = (res as unknown as { _header?: string })._header?.length ?? 0
    onEntry({
      method: req.method ?? '',
      url: (req.url ?? '').slice(0, 2048),
      status: res.statusCode,
      bytes: Math.max(socket.bytesWritten - before - headerBytes, 0),
      ms: performance.now() - start,
      aborted,
    })
  }
  res.once('finish', () => finish(false))
  res.once('close', () => finish(!res.writableFinished))
}
