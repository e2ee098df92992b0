/**
 * The store-modes case (#19 part 5): the same 1 GiB (64 files of 16 MiB) built cold in each store mode,
 * `copy`, `reflink` and `reference`, with the store's size after each build: apparent bytes (what `ls`
 * shows), allocated bytes (what `du` shows: a clone's shared extents count in full there) and the free
 * space the file system lost (statfs before and after, synced), the only honest size of a clone. Run as
 * root with mkfs.xfs (Debian xfsprogs), the data lives on a loop-mounted XFS image with reflinks, so
 * that the reflink row clones; otherwise the data stays in the bench's folder and the reflink row
 * reports that it copied. The data (and the image) are removed afterwards.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import { generateFiles } from '../lib/data.mjs'
import { measure, notApplicable } from '../lib/measure.mjs'

const MiB = 2 ** 20
const MODES = ['copy', 'reflink', 'reference']

/** `c`: `{ name, title, spec: { count, size, perDir } }`. */
export async function runModesCase(ctx, c) {
  const base = { case: c.name, tool: 'cairn' }
  if (!ctx.has('storeMode')) {
    for (const m of MODES) notApplicable(ctx, { ...base, op: `build cold, store mode ${m}` }, 'the library has no store modes')
    return
  }
  const bytes = c.spec.count * c.spec.size
  const work = join(ctx.dataDir, `${c.dataName}-xfs`)
  const mnt = join(work, 'mnt')
  const xfs = mountXfs(work, mnt, bytes, ctx.log)
  const root = join(xfs ? mnt : ctx.dataDir, c.dataName)
  try {
    ctx.log(`  generating ${c.title} in ${root}${xfs ? ' (a loop-mounted XFS image with reflinks)' : ''} …`)
    generateFiles(root, c.dataName, c.spec, ctx.seed)
    let version
    for (const mode of MODES) {
      let free = 0
      const rec = await measure(ctx, {
        ...base,
        op: `build cold, store mode ${mode}`,
        childOp: 'modes.build',
        bytes,
        before: () => {
          rmSync(join(root, '.cairn'), { recursive: true, force: true })
          execFileSync('sync')
          free = freeBytes(root)
        },
        params: () => ({ lib: ctx.lib, dir: root, storeMode: mode }),
        check: (i) => {
          if (i.shards !== c.spec.count) return `${i.shards} shards, expected ${c.spec.count}`
          version ??= i.version
          return i.version !== version ? `version ${i.version} differs from the copy mode's ${version}` : undefined
        },
      })
      if (!rec.info) continue
      execFileSync('sync')
      const lost = free - freeBytes(root)
      const { apparent, allocated } = sizes(join(root, '.cairn'))
      const pct = (n) => `${((100 * n) / bytes).toFixed(1)}%`
      rec.store = { apparent, allocated, fsDelta: lost, dataBytes: bytes, fs: xfs ? 'xfs (loop, reflink=1)' : 'the bench folder' }
      rec.note =
        `store ${gib(apparent)} apparent, ${gib(allocated)} allocated, file system used ${gib(lost)} (${pct(lost)} of the data)` +
        (mode === 'reflink' && !rec.info.reflinks.supported ? `; no reflinks here: ${rec.info.reflinks.reason}` : '')
      // the mode's promise, checked like any result: reflink (where it clones) and reference add < 5% of the data
      const promised = mode === 'reference' || (mode === 'reflink' && rec.info.reflinks.supported)
      if (promised && lost > 0.05 * bytes) rec.problems.push(`the store took ${pct(lost)} of the data's size in mode ${mode} (expected < 5%)`)
      ctx.log(`  ${c.name} · ${mode}: ${rec.note}`)
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
    if (xfs) unmountXfs(work, mnt)
  }
}

/** Mounts a fresh sparse XFS image with reflinks at `mnt`; false when this process cannot (not root, no mkfs.xfs). */
function mountXfs(work, mnt, bytes, log) {
  if (process.getuid?.() !== 0) return false
  try {
    execFileSync('mkfs.xfs', ['-V'], { stdio: ['ignore', 'ignore', 'ignore'] })
  } catch {
    log('  (no mkfs.xfs: the data stays in the bench folder, reflink mode copies)')
    return false
  }
  if (existsSync(mnt)) unmountXfs(work, mnt)
  mkdirSync(mnt, { recursive: true })
  const img = join(work, 'xfs.img')
  // the data, a copy of it (copy mode's store), and room for XFS's own metadata
  const size = Math.max(2 * bytes + 512 * MiB, 400 * MiB)
  execFileSync('truncate', ['-s', String(size), img], { stdio: ['ignore', 'ignore', 'inherit'] })
  execFileSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', img], { stdio: ['ignore', 'ignore', 'inherit'] })
  execFileSync('mount', ['-o', 'loop', img, mnt], { stdio: ['ignore', 'ignore', 'inherit'] })
  return true
}

function unmountXfs(work, mnt) {
  try {
    execFileSync('umount', [mnt], { stdio: ['ignore', 'ignore', 'ignore'] })
  } catch {
    // not mounted
  }
  rmSync(work, { recursive: true, force: true })
}

function freeBytes(path) {
  const s = statfsSync(path)
  return Number(s.bavail) * Number(s.bsize)
}

/** Apparent and allocated bytes of every file under `dir`. */
function sizes(dir) {
  let apparent = 0
  let allocated = 0
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      if (e.isDirectory()) walk(p)
      else {
        const st = lstatSync(p)
        apparent += st.size
        allocated += st.blocks * 512
      }
    }
  }
  walk(dir)
  return { apparent, allocated }
}

const gib = (n) => `${(n / 2 ** 30).toFixed(n < 2 ** 27 ? 4 : 2)} GiB`
