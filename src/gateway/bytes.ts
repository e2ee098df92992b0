/**
 * Plain bytes of a UnixFS file, as a path gateway answers them for data tools (fsspec, DuckDB, curl):
 * `Content-Length`, a content type from the file's name (or its first bytes), the CID as `ETag`,
 * `Accept-Ranges`, and one `Range` → 206 reading only the blocks that hold it (416 past the end).
 * Every block is checked against its CID before a byte of it is written; a block that fails midway
 * aborts the response, so a client never takes unverified or partial bytes for whole ones.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname } from 'node:path'
import type { CID } from '../cid.js'
import type { BlockSource } from '../store/blocks.js'
import { fileRange, fileSize } from './file-range.js'
import { immutable, notModified, send, write } from './http.js'

/** Content types by lower-cased extension: the shard formats first, then what browsers show. */
const TYPES: Record<string, string> = {
  '.parquet': 'application/vnd.apache.parquet',
  '.arrow': 'application/vnd.apache.arrow.file',
  '.feather': 'application/vnd.apache.arrow.file',
  '.ipc': 'application/vnd.apache.arrow.file',
  '.arrows': 'application/vnd.apache.arrow.stream',
  '.jsonl': 'application/jsonl',
  '.ndjson': 'application/x-ndjson',
  '.csv': 'text/csv; charset=utf-8',
  '.tsv': 'text/tab-separated-values; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.webp': 'image/webp',
  '.pdf': 'application/pdf',
  '.gz': 'application/gzip',
  '.zst': 'application/zstd',
  '.tar': 'application/x-tar',
  '.zip': 'application/zip',
  '.npy': 'application/octet-stream',
  '.car': 'application/vnd.ipld.car',
}

/** The content type of a file named `name` (no name, or an unknown extension: undefined). */
export function contentTypeOf(name: string | undefined): string | undefined {
  return name === undefined ? undefined : TYPES[extname(name).toLowerCase()]
}

/**
 * text/plain unless the bytes hold a "binary data byte" (0x00-0x08, 0x0B, 0x0E-0x1A, 0x1C-0x1F): the
 * rule of Go's http.DetectContentType, which Kubo's gateway and the conformance suite follow.
 */
export function sniff(head: Uint8Array): string {
  for (const b of head) {
    if (b <= 0x08 || b === 0x0b || (b >= 0x0e && b <= 0x1a) || (b >= 0x1c && b <= 0x1f)) return 'application/octet-stream'
  }
  return 'text/plain; charset=utf-8'
}

/** One satisfiable range `[from, to)`, 'none' (no or an unusable Range: the whole file) or 'unsatisfiable'. */
export function parseRange(header: string | undefined, size: number): { from: number; to: number } | 'none' | 'unsatisfiable' {
  if (header === undefined) return 'none'
  const m = /^\s*bytes\s*=\s*([^,]*)/i.exec(header)
  if (m === null) return 'none'
  // several ranges: the first is served (the spec allows answering only it)
  const one = /^\s*(\d*)\s*-\s*(\d*)\s*$/.exec(m[1])
  if (one === null || (one[1] === '' && one[2] === '')) return 'none'
  if (one[1] === '') {
    const n = Number(one[2])
    if (n === 0) return 'unsatisfiable'
    return { from: Math.max(size - n, 0), to: size }
  }
  const from = Number(one[1])
  const last = one[2] === '' ? Math.max(size - 1, from) : Number(one[2])
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(last) || last < from) return 'none'
  if (from >= size) return 'unsatisfiable'
  return { from, to: Math.min(last, size - 1) + 1 }
}

/**
 * Answers GET/HEAD for the UnixFS file `cid` (`name`: its last path segment, for the type).
 * `roots`: the CIDs of the path, for `X-Ipfs-Roots`. Fails before the status with the source's errors.
 */
export async function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  source: BlockSource,
  cid: CID,
  name: string | undefined,
  roots: readonly string[],
  path: string,
): Promise<void> {
  const size = await fileSize(source, cid)
  const range = parseRange(req.method === 'GET' || req.method === 'HEAD' ? req.headers.range : undefined, size)
  let type = contentTypeOf(name)
  if (type === undefined) {
    const head: Uint8Array[] = []
    // sniff where the client reads: a range must be served even when blocks outside it are missing
    const [first, end] = typeof range === 'object' ? [range.from, Math.min(range.to, range.from + 512)] : [0, Math.min(512, size)]
    for await (const b of fileRange(source, cid, first, end)) head.push(b.content)
    type = sniff(Buffer.concat(head))
  }
  const etag = `"${cid}"`
  if (notModified(req, res, etag)) return
  immutable(res, etag, roots, path)
  res.setHeader('Accept-Ranges', 'bytes')
  res.setHeader('Content-Type', type)
  if (name !== undefined && !/[\\"\u0000-\u001f\u007f]/.test(name) && type.startsWith('application/')) {
    res.setHeader('Content-Disposition', `inline; filename*=UTF-8''${encodeURIComponent(name)}`)
  }
  if (range === 'unsatisfiable') return send(res, 416, `the file has ${size} bytes\n`, { 'Content-Range': `bytes */${size}` })
  const { from, to } = range === 'none' ? { from: 0, to: size } : range
  res.statusCode = range === 'none' ? 200 : 206
  if (range !== 'none') res.setHeader('Content-Range', `bytes ${from}-${to - 1}/${size}`)
  res.setHeader('Content-Length', to - from)
  if (req.method === 'HEAD' || to === from) return void res.end()
  try {
    for await (const b of fileRange(source, cid, from, to)) if (b.content.length > 0) await write(res, b.content)
    res.end()
  } catch {
    // a block missing or damaged midway (or the client left): the response is cut short, never completed
    res.destroy()
  }
}
