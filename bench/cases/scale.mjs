/**
 * A scale case (#19): build and status over many small files, against the stat-every-file limit of
 * the same run, for the memory and time targets of a streaming build: peak RSS < 256 MiB for build
 * cold, rebuild unchanged, build after one change and status; the unchanged rebuild within 1.5× and
 * the one-change build within 2× of `stat every file`; cold build time per file at 10⁶ no more than at
 * 10⁴. Only these operations run (pack, verify, clone of the same folders are other cases' work).
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { describeFiles, generateFiles, isPristine, markDirty, markPristine, writeDatasetFile } from '../lib/data.mjs'
import { measure, notApplicable } from '../lib/measure.mjs'
import { runChild } from '../lib/proc.mjs'

/** `c`: `{ name, title, spec: { count, size, perDir }, coldRuns? }`. */
export async function runScaleCase(ctx, c) {
  const root = join(ctx.dataDir, c.dataName)
  const files = describeFiles(c.spec)
  if (!isPristine(root, c.spec, ctx.seed)) {
    ctx.log(`  generating ${c.title} in ${root} …`)
    const t = performance.now()
    generateFiles(root, c.name, c.spec, ctx.seed)
    const init = await runChild('cairn.init', { lib: ctx.lib, dir: root, name: `bench-${c.name}` }, { workDir: ctx.workDir })
    if (init.error) throw new Error(`cairn init of ${root} failed: ${init.error}`)
    markPristine(root, c.spec, ctx.seed)
    ctx.log(`  generated in ${((performance.now() - t) / 1000).toFixed(1)} s`)
  }
  const base = { case: c.name, bytes: c.spec.count * c.spec.size }
  const lib = { lib: ctx.lib }
  await measure(ctx, {
    ...base,
    bytes: undefined,
    tool: 'limit',
    op: 'stat every file',
    childOp: 'limit.stat',
    params: () => ({ dir: root }),
    check: (i) => (i.files !== files.length ? `${i.files} files, expected ${files.length}` : undefined),
  })
  const cold = await measure(ctx, {
    ...base,
    tool: 'cairn',
    op: 'build cold',
    childOp: 'cairn.build',
    runs: c.coldRuns,
    before: () => rmSync(join(root, '.cairn'), { recursive: true, force: true }),
    params: () => ({ ...lib, dir: root, fresh: true }),
    check: (i) => (i.shards !== files.length ? `${i.shards} shards, expected ${files.length}` : undefined),
  })
  const v1 = cold.info?.version
  if (!v1) {
    for (const op of ['rebuild unchanged', 'build, 1 shard changed', 'status, 1 shard changed'])
      notApplicable(ctx, { ...base, tool: 'cairn', op }, 'build cold failed')
    return
  }
  await measure(ctx, {
    ...base,
    tool: 'cairn',
    op: 'rebuild unchanged',
    childOp: 'cairn.build',
    params: () => ({ ...lib, dir: root }),
    check: (i) => (!i.unchanged ? 'made a new version' : i.version !== v1 ? `HEAD ${i.version}, expected ${v1}` : undefined),
  })
  // the middle file gets new bytes (of the same size) before each run: a new variant each time
  const middle = files[files.length >> 1]
  let variant = 0
  markDirty(root)
  try {
    await measure(ctx, {
      ...base,
      tool: 'cairn',
      op: 'status, 1 shard changed',
      childOp: 'cairn.status',
      before: () => writeDatasetFile(root, c.name, ctx.seed, middle, ++variant),
      params: () => ({ ...lib, dir: root }),
      check: (i) => (i.modified !== 1 || i.added + i.removed !== 0 ? `counts ${JSON.stringify(i)}, expected 1 modified` : undefined),
    })
    await measure(ctx, {
      ...base,
      tool: 'cairn',
      op: 'build, 1 shard changed',
      childOp: 'cairn.build',
      before: () => writeDatasetFile(root, c.name, ctx.seed, middle, ++variant),
      params: () => ({ ...lib, dir: root }),
      check: (i) =>
        i.changes?.modified !== 1 || i.changes.added + i.changes.removed !== 0 ? `changes ${JSON.stringify(i.changes)}` : undefined,
    })
  } finally {
    writeDatasetFile(root, c.name, ctx.seed, middle, 0)
    markPristine(root, c.spec, ctx.seed)
  }
}
