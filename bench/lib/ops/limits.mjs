/**
 * The limits: what the hardware allows on the same bytes, with nothing of cairn's work.
 * - `limit.sha256`: one worker thread per core, each hashing whole files with large sequential reads.
 * - `limit.copy`: `fs.copyFile` of every file (in-kernel on Linux), as many at once as libuv allows.
 * - `limit.stat`: list the folder and `lstat` every file once, as any rebuild that notices every changed
 *   file must (size, mtime, ctime and inode in nanoseconds and full precision: `bigint`), nothing else.
 * Listing the files is part of the timed work, as cairn's scan is.
 */
import { lstatSync, readdirSync } from 'node:fs'
import { copyFile, mkdir } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { dirname, join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { listShards, totalBytes } from '../files.mjs'

const READ_SIZE = 4 << 20

export const limitOps = {
  'limit.sha256': {
    async run(p) {
      const files = listShards(p.dir)
      const threads = Math.max(1, Math.min(p.threads ?? availableParallelism(), files.length))
      const counter = new SharedArrayBuffer(4)
      const workerUrl = new URL('../sha256-worker.mjs', import.meta.url)
      const parts = await Promise.all(
        Array.from(
          { length: threads },
          () =>
            new Promise((resolve, reject) => {
              const w = new Worker(workerUrl, { workerData: { files: files.map((f) => f.abs), counter, readSize: READ_SIZE } })
              w.once('message', resolve)
              w.once('error', reject)
              w.once('exit', (code) => code !== 0 && reject(new Error(`sha256 worker exited with ${code}`)))
            }),
        ),
      )
      const xor = Buffer.alloc(32)
      for (const part of parts) {
        const d = Buffer.from(part.xor, 'hex')
        for (let k = 0; k < 32; k++) xor[k] ^= d[k]
      }
      const bytes = parts.reduce((n, x) => n + x.bytes, 0)
      if (bytes !== totalBytes(files)) throw new Error(`hashed ${bytes} bytes, expected ${totalBytes(files)}`)
      return { threads, files: files.length, bytes, digestXor: xor.toString('hex') }
    },
  },

  'limit.stat': {
    run(p) {
      let files = 0
      let bytes = 0n
      const walk = (dir) => {
        for (const e of readdirSync(dir, { withFileTypes: true })) {
          if (e.name.startsWith('.') || (dir === p.dir && e.name === 'cairn.json')) continue
          const abs = join(dir, e.name)
          if (e.isDirectory()) walk(abs)
          else if (e.isFile()) {
            bytes += lstatSync(abs, { bigint: true }).size
            files++
          }
        }
      }
      walk(p.dir)
      return { files, bytes: Number(bytes) }
    },
  },

  'limit.copy': {
    async run(p) {
      const files = listShards(p.dir)
      const dirs = new Set(files.map((f) => dirname(join(p.dest, f.rel))))
      for (const d of dirs) await mkdir(d, { recursive: true })
      let next = 0
      const worker = async () => {
        while (next < files.length) {
          const f = files[next++]
          await copyFile(f.abs, join(p.dest, f.rel))
        }
      }
      const width = Math.max(4, availableParallelism())
      await Promise.all(Array.from({ length: Math.min(width, files.length) }, worker))
      return { files: files.length, bytes: totalBytes(files), concurrency: width }
    },
  },
}
