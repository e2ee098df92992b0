/**
 * The `clone` case (`npm run bench -- --case clone`, never run by default): only the clone lines of
 * the `large` and `small` datasets (docs/multi-source.md): `clone from serve` and `clone from 3
 * sources (1 MB/s, stalls at 10 MiB, serve)`, reported under those cases' names so that their
 * targets apply. The dataset folders are shared with those cases (generated when missing); the
 * version cloned is whatever a build of the folder gives (untimed: a rebuild when one exists).
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describeFiles, generateFiles, isPristine, markPristine } from '../lib/data.mjs'
import { failed } from '../lib/measure.mjs'
import { runChild } from '../lib/proc.mjs'
import { cloneFromServe } from './files.mjs'

/** `c`: `{ name, datasets: [{ name, dataName, spec }] }`. */
export async function runCloneCase(ctx, c) {
  for (const d of c.datasets) {
    const root = join(ctx.dataDir, d.dataName)
    const out = join(ctx.outDir, `clone-${d.dataName}`)
    rmSync(out, { recursive: true, force: true })
    mkdirSync(out, { recursive: true })
    const base = { case: d.name, bytes: d.spec.count * d.spec.size }
    if (!isPristine(root, d.spec, ctx.seed)) {
      ctx.log(`  generating ${d.name} in ${root} …`)
      generateFiles(root, d.name, d.spec, ctx.seed)
      markPristine(root, d.spec, ctx.seed)
    }
    const fresh = !existsSync(join(root, '.cairn'))
    const built = await runChild('cairn.build', { lib: ctx.lib, dir: root, fresh }, { workDir: ctx.workDir })
    if (built.error || !built.info?.version) {
      failed(ctx, { ...base, tool: 'cairn', op: 'clone from serve' }, `build failed: ${built.error}`)
      continue
    }
    ctx.log(`  ${d.name}: cloning ${built.info.version}`)
    await cloneFromServe(ctx, base, root, out, built.info.version, describeFiles(d.spec).length, base.bytes, true)
    rmSync(out, { recursive: true, force: true })
  }
}
