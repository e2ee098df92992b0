// Golden CIDs: each datasets/<name> rebuilt in a temporary copy must give exactly the version and
// shard CIDs checked in beside it (expected.json). A change to chunking or encoding shows up here and
// is reviewed as a diff of expected.json (regenerate with `node datasets/update-expected.mjs`).
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { build, init, ls } from '../src/index.js'

const root = fileURLToPath(new URL('../datasets/', import.meta.url))
const names = readdirSync(root, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
const work = mkdtempSync(join(tmpdir(), 'cairn-datasets-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe.each(names)('datasets/%s', (name) => {
  const expected = JSON.parse(readFileSync(join(root, name, 'expected.json'), 'utf8')) as {
    sourceDateEpoch: number
    message: string
    version: string
    tree: string
    totals: { shards: number; bytes: number; rows: number }
    shards: Record<string, { cid: string; size: number; format: string; rows?: number }>
  }

  it('rebuilds to the checked-in version, tree and shard CIDs', async () => {
    const dir = join(work, name)
    cpSync(join(root, name), dir, { recursive: true, filter: (src) => !src.endsWith('expected.json') })
    await init({ dir })
    const result = await build({ dir, message: expected.message, date: new Date(expected.sourceDateEpoch * 1000) })
    const shards: Record<string, unknown> = {}
    for await (const e of ls({ dir }))
      shards[e.path] = JSON.parse(JSON.stringify({ cid: e.cid.toString(), size: e.size, format: e.format, rows: e.rows }))
    expect(shards).toEqual(expected.shards)
    expect(result.manifest.totals).toEqual(expected.totals)
    expect(result.manifest.tree.toString()).toBe(expected.tree)
    expect(result.version.toString()).toBe(expected.version)
  })
})
