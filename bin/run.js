#!/usr/bin/env node
// `cairn --version` is answered before oclif loads (its modules take longer than Node's own start),
// with the line oclif prints: name/version platform-arch node-version (test/cli-consistency.test.ts).
const argv = process.argv.slice(2)
if (argv.length === 1 && argv[0] === '--version') {
  const { readFileSync } = await import('node:fs')
  const { release } = await import('node:os')
  const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  const platform = process.platform === 'linux' && release().toLowerCase().includes('microsoft') ? 'wsl' : process.platform
  process.stdout.write(`${pjson.name}/${pjson.version} ${platform}-${process.arch} node-${process.version}\n`)
} else {
  // Node ≥ 22.1 keeps the compiled code of modules on disk (V8's code cache): later starts skip most of
  // the compiling of oclif and the library. A no-op where Node lacks it.
  const { enableCompileCache } = await import('node:module')
  enableCompileCache?.()
  // a reader that went away (`cairn pack | head -c 100`) ends cairn as SIGPIPE ends other tools:
  // quietly, exit 141 (128 + SIGPIPE). Registered before oclif's own listener, which would swallow the
  // EPIPE and let the command run on into errors about a closed stream. An EPIPE after cairn itself
  // ended stdout (pack does, and oclif's flush writes after it) is no reader leaving: it is swallowed,
  // as oclif does. Node keeps stdout's writableEnded false after end(), hence the flag.
  let stdoutEnded = false
  const end = process.stdout.end.bind(process.stdout)
  process.stdout.end = (...args) => {
    stdoutEnded = true
    return end(...args)
  }
  process.stdout.on('error', (e) => {
    if (e.code === 'EPIPE' && !stdoutEnded) process.exit(141)
  })
  // oclif, the commands and the library modules they use, bundled into a few files by bin/bundle.js
  // (docs/cli.md, "A fast start")
  // oclif checks the Node version against its own package.json at load, which in the bundle is not there to
  // read: it found nothing, after loading semver (~10 ms of every start). npm checks cairn's engines.
  process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1'
  const { run } = await import('../dist/cli/index.js')
  await run(import.meta.url)
}
