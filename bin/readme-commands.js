#!/usr/bin/env node
// Regenerates the README's command reference (between <!-- commands --> and <!-- commandsstop -->)
// from the commands' own metadata, so it is never edited by hand. Needs `npm run build` first.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Config } from '@oclif/core'

const root = fileURLToPath(new URL('..', import.meta.url))
const config = await Config.load(root)
const bin = config.bin
const sections = []
for (const c of [...config.commands].sort((a, b) => a.id.localeCompare(b.id))) {
  const args = Object.values(c.args ?? {}).map((a) => (a.required ? `<${a.name}>` : `[${a.name}]`))
  const lines = [`### \`${bin} ${c.id}\``, '', c.summary ?? '', '']
  if (c.description) lines.push(c.description, '')
  lines.push('```', `USAGE`, `  $ ${bin} ${[c.id, ...args].join(' ')} [FLAGS]`, '')
  const args2 = Object.values(c.args ?? {})
  if (args2.length > 0) {
    lines.push('ARGUMENTS')
    for (const a of args2) lines.push(`  ${a.name.padEnd(22)} ${a.description ?? ''}`)
    lines.push('')
  }
  lines.push('FLAGS')
  for (const [name, f] of Object.entries(c.flags ?? {})) {
    const head = `${f.char ? `-${f.char}, ` : '    '}--${name}${f.type === 'option' ? '=<value>' : ''}`
    lines.push(`  ${head.padEnd(30)} ${f.summary ?? f.description ?? ''}`)
  }
  lines.push('', 'EXAMPLES')
  for (const e of c.examples ?? []) lines.push(`  $ ${String(typeof e === 'string' ? e : e.command).replaceAll('<%= config.bin %>', bin)}`)
  lines.push('```', '')
  sections.push(lines.join('\n'))
}
const readme = readFileSync(`${root}/README.md`, 'utf8')
const start = '<!-- commands -->'
const stop = '<!-- commandsstop -->'
const a = readme.indexOf(start)
const b = readme.indexOf(stop)
if (a < 0 || b < a) throw new Error('README.md lacks the <!-- commands --> … <!-- commandsstop --> markers')
writeFileSync(`${root}/README.md`, readme.slice(0, a + start.length) + '\n\n' + sections.join('\n') + '\n' + readme.slice(b))
console.log(`README.md: ${sections.length} commands`)
