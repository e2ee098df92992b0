#!/usr/bin/env node
// Rebuilds every dataset in datasets/ in a temporary copy and writes its expected.json (version and
// shard CIDs). Run after a reviewed change to chunking or encoding: the diff of expected.json is the
// review. Needs `npm run build` first (it uses dist/).
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, init, ls } from '../dist/src/index.js'

const here = fileURLToPath(new URL('.', import.meta.url))
for (const name of readdirSync(here, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)) {
  const dir = join(here, name)
  const file = join(dir, 'expected.json')
  const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {}
  const sourceDateEpoch = previous.sourceDateEpoch ?? 1767225600
  const message = previous.message ?? `${name}: first release`
  const work = mkdtempSync(join(tmpdir(), 'cairn-expected-'))
  try {
    cpSync(dir, work, { recursive: true, filter: (src) => !src.endsWith('expected.json') })
    await init({ dir: work })
    const { version, manifest } = await build({ dir: work, message, date: new Date(sourceDateEpoch * 1000) })
    const shards = {}
    for await (const e of ls({ dir: work })) shards[e.path] = { cid: e.cid.toString(), size: e.size, format: e.format, rows: e.rows }
    const out = { sourceDateEpoch, message, version: version.toString(), tree: manifest.tree.toString(), totals: manifest.totals, shards }
    writeFileSync(file, JSON.stringify(out, null, 2) + '\n')
    console.log(`${name}: ${version}`)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}
