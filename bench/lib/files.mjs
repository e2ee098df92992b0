/**
 * Listing a dataset folder the way cairn sees it: every regular file, recursively, except hidden
 * entries (`.cairn/`, the bench marker) and the card `cairn.json` at the top. The limits (sha256,
 * copy) use it so they touch exactly the bytes cairn imports.
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** `{ rel, abs, size }` for every shard file under `root`, in sorted order. */
export function listShards(root) {
  const out = []
  const walk = (rel) => {
    const dir = rel === '' ? root : join(root, rel)
    const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const e of entries) {
      if (e.name.startsWith('.')) continue
      const path = rel === '' ? e.name : `${rel}/${e.name}`
      if (path === 'cairn.json') continue
      if (e.isDirectory()) walk(path)
      else if (e.isFile()) out.push({ rel: path, abs: join(root, path), size: statSync(join(root, path)).size })
    }
  }
  walk('')
  return out
}

/** Total bytes of `files`. */
export function totalBytes(files) {
  return files.reduce((n, f) => n + f.size, 0)
}
