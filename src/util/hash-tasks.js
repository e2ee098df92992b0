// @ts-check
/**
 * What a hashing thread does (see hash-pool.ts): it reads file bytes with synchronous system calls
 * straight into a buffer the main thread lent it and hashes them with sha2-256, or hashes bytes the
 * main thread copied into lent buffers. Run by each worker thread (hash-worker.js), and by the calling
 * thread itself for a pool of no threads (work too small to be worth starting one).
 *
 * Plain JavaScript, type-checked by tsc through JSDoc, so that the worker can load it from `src/`
 * (under the test runner) as from `dist/` (compiled).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { createHash } from 'node:crypto'

/** @typedef {import('./hash-pool.js').WorkerTask} WorkerTask */
/** @typedef {import('./hash-pool.js').WorkerReply} WorkerReply */

/**
 * The answer to a task; a failure is an answer too (`failed`, with the task's buffers).
 * @param {WorkerTask} task
 * @returns {WorkerReply}
 */
export function answer(task) {
  try {
    return task.kind === 'range' ? readRange(task) : task.kind === 'files' ? readFiles(task) : hashBuffers(task)
  } catch (e) {
    return { id: task.id, kind: 'failed', buffers: task.kind === 'hash' ? task.buffers : [task.buffer], error: describe(e) }
  }
}

/**
 * Reads up to `length` bytes of an open file at `position` (fewer at its end) and hashes them.
 * @param {Extract<WorkerTask, { kind: 'range' }>} task
 * @returns {WorkerReply}
 */
function readRange(task) {
  const bytes = new Uint8Array(task.buffer, 0, task.length)
  const n = readFully(task.fd, bytes, task.position)
  const digests = new Uint8Array(32)
  digests.set(sha256(bytes.subarray(0, n)))
  return { id: task.id, kind: 'range', buffer: task.buffer, length: n, digests }
}

/**
 * Reads whole small files one after the other into the buffer: open, read, fstat, close, with no
 * round trip to the main thread in between. The answer is in columns (typed arrays, transferred): for
 * each file its offset, length and size after the read, its mtime and inode, its digest; a file that
 * cannot be read is reported on its own, in `errors`.
 * @param {Extract<WorkerTask, { kind: 'files' }>} task
 * @returns {WorkerReply}
 */
function readFiles(task) {
  const n = task.paths.length
  const digests = new Uint8Array(32 * n)
  const layout = new Float64Array(3 * n)
  const stamps = new BigInt64Array(2 * n)
  /** @type {(import('./hash-pool.js').WorkerError | null)[] | undefined} */
  let errors
  let offset = 0
  for (let i = 0; i < n; i++) {
    const want = task.sizes[i]
    try {
      const fd = openSync(task.paths[i], 'r')
      try {
        const bytes = new Uint8Array(task.buffer, offset, want)
        const length = readFully(fd, bytes, 0)
        // stat after the read: a file that changed since the scan shows it here (the caller compares)
        const st = fstatSync(fd, { bigint: true })
        digests.set(sha256(bytes.subarray(0, length)), 32 * i)
        layout[3 * i] = offset
        layout[3 * i + 1] = length
        layout[3 * i + 2] = Number(st.size)
        stamps[2 * i] = st.mtimeNs
        stamps[2 * i + 1] = BigInt.asIntN(64, st.ino)
        offset += length
      } finally {
        closeSync(fd)
      }
    } catch (e) {
      errors ??= new Array(n).fill(null)
      errors[i] = describe(e)
    }
  }
  return { id: task.id, kind: 'files', buffer: task.buffer, layout, stamps, digests, errors }
}

/**
 * Hashes the first `length` bytes of the buffers taken in order (all of each but the last): bytes the
 * main thread copied there, read elsewhere.
 * @param {Extract<WorkerTask, { kind: 'hash' }>} task
 * @returns {WorkerReply}
 */
function hashBuffers(task) {
  const hash = createHash('sha256')
  let left = task.length
  for (const buffer of task.buffers) {
    const n = Math.min(left, buffer.byteLength)
    hash.update(new Uint8Array(buffer, 0, n))
    left -= n
  }
  const digests = new Uint8Array(32)
  digests.set(hash.digest())
  return { id: task.id, kind: 'hash', buffers: task.buffers, digests }
}

/**
 * @param {number} fd
 * @param {Uint8Array} into
 * @param {number} position
 */
function readFully(fd, into, position) {
  let filled = 0
  while (filled < into.length) {
    const n = readSync(fd, into, filled, into.length - filled, position + filled)
    if (n === 0) break
    filled += n
  }
  return filled
}

/** @param {Uint8Array} bytes */
function sha256(bytes) {
  return createHash('sha256').update(bytes).digest()
}

/**
 * What the main thread needs of an error to rebuild it: Node's system error fields survive.
 * @param {unknown} e
 * @returns {import('./hash-pool.js').WorkerError}
 */
function describe(e) {
  const err = /** @type {NodeJS.ErrnoException} */ (e)
  return { message: String(err?.message ?? e), code: err?.code, errno: err?.errno, syscall: err?.syscall }
}
