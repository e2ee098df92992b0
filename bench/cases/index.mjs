/**
 * The wide index case: two versions of N shard entries (1,000,000 by default) differing in 10,
 * built once through the library's index functions (`index.setup`, one run, reported but kept out of
 * the targets: its memory is the bench's own million entries), then the diff of the two versions,
 * each run in a fresh process reading from the on-disk store, with the blocks it read.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { measure, notApplicable } from '../lib/measure.mjs'

/** `c`: `{ name, title, entries, changed }`. */
export async function runIndexCase(ctx, c) {
  const dir = join(ctx.dataDir, c.dataName)
  rmSync(dir, { recursive: true, force: true })
  const base = { case: c.name, tool: 'cairn' }
  const setup = await measure(ctx, {
    ...base,
    op: `build 2 indexes (setup)`,
    childOp: 'index.setup',
    runs: 1,
    excludeFromTargets: true,
    params: () => ({ lib: ctx.lib, libDir: ctx.libDir, dir, entries: c.entries, changed: c.changed, seed: ctx.seed }),
  })
  const s = setup.info
  if (s) {
    setup.note = `entries ${(s.genMs / 1000).toFixed(1)} s; index A ${(s.buildAms / 1000).toFixed(1)} s, B ${(s.buildBms / 1000).toFixed(1)} s; tree B ${((s.treeBms ?? 0) / 1000).toFixed(1)} s`
  }
  const op = `diff 2 versions (${c.changed} changed)`
  if (!ctx.has('diff')) return notApplicable(ctx, { ...base, op }, 'the library has no diff')
  if (!s) return notApplicable(ctx, { ...base, op }, 'the setup failed')
  const d = await measure(ctx, {
    ...base,
    op,
    childOp: 'cairn.diff',
    params: () => ({ lib: ctx.lib, dir, a: s.versionA, b: s.versionB }),
    check: (i) =>
      i.counts?.modified !== c.changed || i.shards !== c.changed
        ? `counts ${JSON.stringify(i.counts)}, expected ${c.changed} modified`
        : undefined,
  })
  if (d.info) {
    const i = d.info
    d.note = `read ${i.blocksRead ?? '?'} blocks (${i.indexNodesRead} index nodes, depth ${i.depth})`
  }
  const proofOp = `prove 1 file of ${c.entries.toLocaleString('en')}`
  if (!ctx.has('prove')) notApplicable(ctx, { ...base, op: proofOp }, 'the library has no prove')
  else {
    const pr = await measure(ctx, {
      ...base,
      op: proofOp,
      childOp: 'cairn.prove',
      params: () => ({
        lib: ctx.lib,
        dir,
        version: s.versionB,
        path: s.changedAt[0],
        output: join(ctx.dataDir, `${c.dataName}-proof.car`),
      }),
      check: (i) => (i.verified ? undefined : 'the proof did not verify'),
    })
    if (pr.info)
      pr.note = `proof ${pr.info.bytes.toLocaleString('en')} B (${(pr.info.bytes / 1024).toFixed(1)} KiB) in ${pr.info.blocks} blocks`
  }
  if (!ctx.keep) rmSync(dir, { recursive: true, force: true })
  if (ctx.has('prove')) await proofLayouts(ctx, c, base)
}

/**
 * The proof of one file in three layouts of the same number of files (docs/gateway.md, "Size"): one
 * flat folder (a HAMT), 1,000 × 1,000 and 100 × 100 × 100, each a release of its own, with the proof
 * split into its tree and index parts and the index part recomputed for fanout 16 (one run each: the
 * sizes do not vary between runs).
 */
async function proofLayouts(ctx, c, base) {
  for (const layout of ['flat', '1000x1000', '100x100x100']) {
    const dir = join(ctx.dataDir, `${c.dataName}-proof-${layout}`)
    const r = await measure(ctx, {
      ...base,
      op: `prove 1 file of ${c.entries.toLocaleString('en')}, ${layout} (setup included)`,
      childOp: 'index.proofLayout',
      runs: 1,
      excludeFromTargets: true,
      params: () => ({ lib: ctx.lib, libDir: ctx.libDir, dir, entries: c.entries, layout, seed: ctx.seed }),
    })
    const i = r.info
    if (i) {
      const f = (x) => x.toLocaleString('en')
      r.note =
        `proof ${f(i.proofBytes)} B in ${i.proofBlocks} blocks: tree ${f(i.parts.tree.bytes)} B (${i.parts.tree.blocks}), ` +
        `index ${f(i.parts.index.bytes)} B (${i.parts.index.blocks}; over 200 files ${f(i.fanouts[64].mean)} B mean, ${f(i.fanouts[64].max)} max), ` +
        `version + schema ${f(i.parts.version.bytes + i.parts.schema.bytes)} B; ` +
        `index at fanout 16: ${f(i.fanouts[16].bytes)} B (${i.fanouts[16].levels} nodes; ${f(i.fanouts[16].mean)} B mean, ${f(i.fanouts[16].max)} max)`
    }
    rmSync(dir, { recursive: true, force: true })
  }
}
