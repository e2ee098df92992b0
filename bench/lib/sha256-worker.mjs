/**
 * One worker of the sha256 limit: takes the next file from a shared counter, reads it with large
 * sequential reads into one reused buffer and hashes it, until no file is left. Reports the bytes it
 * hashed and an XOR of the digests (so the work cannot be optimised away and runs can be compared).
 */
import { createHash } from 'node:crypto'
import { closeSync, openSync, readSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'

const { files, counter, readSize } = workerData
const next = new Int32Array(counter)
const buf = Buffer.allocUnsafe(readSize)
const xor = Buffer.alloc(32)
let bytes = 0
let count = 0
for (;;) {
  const i = Atomics.add(next, 0, 1)
  if (i >= files.length) break
  const fd = openSync(files[i], 'r')
  try {
    const h = createHash('sha256')
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      h.update(n === buf.length ? buf : buf.subarray(0, n))
      bytes += n
    }
    const d = h.digest()
    for (let k = 0; k < 32; k++) xor[k] ^= d[k]
    count++
  } finally {
    closeSync(fd)
  }
}
parentPort.postMessage({ bytes, count, xor: xor.toString('hex') })
