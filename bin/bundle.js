#!/usr/bin/env node
// Bundles the CLI after tsc (`npm run build`): oclif, every command and the library modules they reach
// go into dist/cli/ as a few ES modules instead of ~400 files, because resolving, reading and compiling
// each file cost a command more than Node's own start (docs/cli.md, "A fast start"). Modules a command
// imports inside run() become chunks loaded only when it runs. The command list is read from
// dist/commands/ here, as oclif's pattern strategy read it at every start: a new command file is in
// the bundle without being listed anywhere. The library's entry (dist/src/index.js) is not bundled.
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

/**
 * Packages loaded from node_modules as they are, never bundled: big ones that only some commands load,
 * when they run (publishing, anchoring, signing, reading Arrow/Parquet/CSV rows, compiling a JSON
 * Schema). Bundling them would speed none of the hot commands, and keeping them out lets
 * test/cli-consistency.test.ts see by name which command loads them. `typescript` is what oclif loads
 * only to run commands from TypeScript sources, which a built CLI never does.
 */
const LOADED_ON_DEMAND = [
  '@storacha/client',
  'apache-arrow',
  'hyparquet',
  'ajv',
  'csv-parse',
  'viem',
  'ox',
  '@sigstore/verify',
  '@sigstore/bundle',
  'ipns',
  '@libp2p/crypto',
  'spdx-license-ids',
  'typescript',
]

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const out = join(dist, 'cli')

/** The compiled command files, as oclif's pattern `**\/*.js`, `!**\/_*.js` found them. */
function commandFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.isDirectory()) return commandFiles(join(dir, e.name))
    return e.name.endsWith('.js') && !e.name.startsWith('_') ? [join(dir, e.name)] : []
  })
}

const files = commandFiles(join(dist, 'commands')).sort()
const ids = files.map((f) => relative(join(dist, 'commands'), f).replace(/\.js$/, '').split('/').join(':'))
// the entry: oclif's explicit command strategy reads `commands` from it (package.json, oclif.commands),
// the command_not_found hook is `notFound`, and bin/run.js calls `run`
const entry = join(dist, 'cli-entry.js')
writeFileSync(
  entry,
  [
    `import { execute } from '@oclif/core'`,
    `import { commands as helpCommands } from '@oclif/plugin-help'`,
    ...files.map((f, i) => `import C${i} from './${relative(dist, f)}'`),
    `export { default as notFound } from './commands/_not-found.js'`,
    `export const commands = { ${ids.map((id, i) => `${JSON.stringify(id)}: C${i}`).join(', ')}, ...helpCommands }`,
    `/** Runs the CLI on process.argv; \`dir\` is the URL of bin/run.js (oclif finds package.json from it). */`,
    `export function run(dir) { return execute({ dir }) }`,
  ].join('\n') + '\n',
)
try {
  rmSync(out, { recursive: true, force: true })
  await build({
    // hash-pool.ts starts its threads from `new URL('./hash-worker.js', import.meta.url)`: the worker is
    // an entry of its own, beside the chunks
    entryPoints: { index: entry, 'hash-worker': join(dist, 'src', 'util', 'hash-worker.js') },
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: LOADED_ON_DEMAND,
    logLevel: 'warning',
    // oclif and some of its dependencies are CommonJS and call require(): give every chunk one
    banner: { js: `import { createRequire as __cairnRequire } from 'node:module'; const require = __cairnRequire(import.meta.url);` },
  })
} finally {
  rmSync(entry, { force: true })
}
asciiOnly(out)

/**
 * Rewrites every non-ASCII character of the bundle's files as a `\uXXXX` escape. Node 20 decodes a
 * module's source with a fast path only when it is all ASCII: one `…` in a comment made the 730 KB
 * oclif chunk take 25–60 ms to decode instead of 4–6, at every start (docs/cli.md, "A fast start").
 * esbuild escapes strings already; what is left is comments (where an escape is text like any other)
 * and regular expression literals (where `\uXXXX` is the same character). Characters outside the BMP,
 * or after a backslash, would need more care and are refused.
 */
function asciiOnly(dir) {
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.js')) continue
    const file = join(dir, name)
    const text = readFileSync(file, 'utf8')
    if (!/[^\x00-\x7f]/.test(text)) continue
    // after a backslash the escape would be read as `\\` and text
    if (/[\ud800-\udfff]|\\[^\x00-\x7f]/.test(text)) throw new Error(`${file}: a character outside the BMP or after a backslash`)
    writeFileSync(
      file,
      text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
    )
  }
}
