// @ts-check
/**
 * The body of a hashing thread (see hash-pool.ts): it answers each task (hash-tasks.js) and hands the
 * buffers back, transferred, never copied. It knows nothing of CIDs or the store: the main thread lays
 * out the DAG.
 *
 * Plain JavaScript, type-checked by tsc through JSDoc, so that the same file runs as a worker from
 * `src/` (under the test runner) and from `dist/` (compiled).
 */
import { parentPort } from 'node:worker_threads'
import { answer } from './hash-tasks.js'

const port = parentPort
if (!port) throw new Error('hash-worker.js runs only as a worker thread')

port.on('message', (/** @type {import('./hash-pool.js').WorkerTask} */ task) => {
  const reply = answer(task)
  const buffers = 'buffers' in reply ? reply.buffers : [reply.buffer]
  const digests = 'digests' in reply ? [/** @type {ArrayBuffer} */ (reply.digests.buffer)] : []
  const columns =
    reply.kind === 'files' ? [/** @type {ArrayBuffer} */ (reply.layout.buffer), /** @type {ArrayBuffer} */ (reply.stamps.buffer)] : []
  port.postMessage(reply, [...buffers, ...digests, ...columns])
})
