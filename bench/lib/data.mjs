/**
 * Deterministic synthetic datasets. Every byte comes from ChaCha20 run over zeros with a key derived
 * from (seed, dataset, stream label), so the same flags always give the same files, on any machine,
 * and no two files share content (nothing deduplicates).
 *
 * A dataset folder holds its files under `shards/`, the card `cairn.json` (written by `cairn init`
 * the first time) and a hidden marker `.bench-data.json`. The marker is written last and removed
 * before the bench changes a file, so a folder with a marker is complete and pristine, and a run that
 * was interrupted regenerates it.
 */
import { createCipheriv, createHash } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'

const MARKER = '.bench-data.json'
const FORMAT = 1
const CHUNK = 4 << 20

/** A file dataset: `count` files of `size` bytes each, `perDir` files per sub-folder. */
export function describeFiles(spec) {
  const files = []
  for (let i = 0; i < spec.count; i++) {
    const dir = `shards/d${String(Math.floor(i / spec.perDir)).padStart(4, '0')}`
    files.push({ index: i, path: `${dir}/part-${String(i).padStart(6, '0')}.bin`, size: spec.size })
  }
  return files
}

/** A ChaCha20 keystream for (seed, dataset, label): the key is sha256 of the three, the nonce is `n`. */
export function keystream(seed, dataset, label, n = 0) {
  const key = createHash('sha256').update(`cairn-bench\0${seed}\0${dataset}\0${label}`).digest()
  const iv = Buffer.alloc(16) // 4-byte block counter (0), then the 12-byte nonce
  iv.writeUInt32LE(n >>> 0, 4)
  iv.writeUInt32LE(Math.floor(n / 0x1_0000_0000), 8)
  return createCipheriv('chacha20', key, iv)
}

const zeros = Buffer.alloc(CHUNK)

/** Writes one file of `size` bytes from `stream` (large sequential writes). */
function writeStreamFile(abs, size, stream) {
  const fd = openSync(abs, 'w')
  try {
    for (let done = 0; done < size;) {
      const n = Math.min(CHUNK, size - done)
      const bytes = stream.update(n === CHUNK ? zeros : zeros.subarray(0, n))
      writeSync(fd, bytes)
      done += n
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * The content of file `f` of dataset `name`: `variant` 0 is the original, any other number a
 * same-size replacement (used by "build after changing one shard").
 */
export function writeDatasetFile(root, name, seed, f, variant = 0) {
  const abs = join(root, f.path)
  mkdirSync(join(abs, '..'), { recursive: true })
  writeStreamFile(abs, f.size, keystream(seed, name, variant === 0 ? 'file' : `variant-${variant}`, f.index))
  return abs
}

/** True when `root` holds the complete, unmodified dataset described by `spec`. */
export function isPristine(root, spec, seed) {
  const file = join(root, MARKER)
  if (!existsSync(file)) return false
  try {
    const m = JSON.parse(readFileSync(file, 'utf8'))
    return m.format === FORMAT && m.seed === seed && m.count === spec.count && m.size === spec.size && m.perDir === spec.perDir
  } catch {
    return false
  }
}

/** Marks the dataset as about to be modified (see the module comment). */
export function markDirty(root) {
  rmSync(join(root, MARKER), { force: true })
}

/** Marks the dataset complete and pristine. */
export function markPristine(root, spec, seed) {
  writeFileSync(
    join(root, MARKER),
    JSON.stringify({ format: FORMAT, seed, count: spec.count, size: spec.size, perDir: spec.perDir }) + '\n',
  )
}

/**
 * Generates the dataset from scratch (everything in `root` is removed first). Small files come from
 * one keystream per file too: the nonce is the file number, so any file can be rewritten alone.
 */
export function generateFiles(root, name, spec, seed) {
  rmSync(root, { recursive: true, force: true })
  mkdirSync(root, { recursive: true })
  const files = describeFiles(spec)
  let dir = ''
  for (const f of files) {
    const abs = join(root, f.path)
    const d = join(abs, '..')
    if (d !== dir) {
      mkdirSync(d, { recursive: true })
      dir = d
    }
    if (f.size <= CHUNK) writeFileSync(abs, keystream(seed, name, 'file', f.index).update(zeros.subarray(0, f.size)))
    else writeStreamFile(abs, f.size, keystream(seed, name, 'file', f.index))
  }
  return files
}
