/**
 * Hashing threads. Reading and sha2-256 hashing are most of the work of importing files; a pool of
 * worker threads (hash-worker.js) does both with synchronous system calls, on as many cores as the
 * pool has threads, while the main thread lays out DAGs and writes the store. Buffers go to a thread
 * and come back transferred, never copied, and 1 MiB buffers are reused once released, so a build
 * allocates a few dozen of them however large the dataset.
 *
 * Workers start on first use and are unreferenced while idle, so an idle pool never keeps the process
 * alive. The result never depends on the number of threads: replies are matched to requests by id.
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { CairnError } from '../errors.js'
import { answer } from './hash-tasks.js'

/** The size of the buffers the pool lends for range reads, and reuses (the profile's chunk size). */
export const BUFFER_SIZE = 1_048_576
/** Released buffers kept for reuse, per pool. */
const FREE_BUFFERS = 64

/** A request to a hashing thread. */
export type WorkerTask =
  | {
      readonly id: number
      readonly kind: 'range'
      readonly fd: number
      readonly position: number
      readonly length: number
      readonly buffer: ArrayBuffer
    }
  | { readonly id: number; readonly kind: 'files'; readonly paths: string[]; readonly sizes: number[]; readonly buffer: ArrayBuffer }
  | { readonly id: number; readonly kind: 'hash'; readonly buffers: ArrayBuffer[]; readonly length: number }

/** A system error as it crosses the thread boundary. */
export interface WorkerError {
  readonly message: string
  readonly code?: string
  readonly errno?: number
  readonly syscall?: string
}

/** A hashing thread's answer; `digests` holds 32 bytes per range or file, in order. */
export type WorkerReply =
  | { readonly id: number; readonly kind: 'range'; readonly buffer: ArrayBuffer; readonly length: number; readonly digests: Uint8Array }
  | {
      readonly id: number
      readonly kind: 'files'
      readonly buffer: ArrayBuffer
      /** Offset, length and size (after the read) of each file. */
      readonly layout: Float64Array
      /** mtime (ns) and inode (as a signed 64-bit number) of each file, after the read. */
      readonly stamps: BigInt64Array
      readonly digests: Uint8Array
      /** Absent when every file was read; else null for each file read. */
      readonly errors?: (WorkerError | null)[]
    }
  | { readonly id: number; readonly kind: 'hash'; readonly buffers: ArrayBuffer[]; readonly digests: Uint8Array }
  | { readonly id: number; readonly kind: 'failed'; readonly buffers: ArrayBuffer[]; readonly error: WorkerError }

/** Bytes read and hashed by a thread. */
export interface Hashed {
  readonly bytes: Uint8Array
  readonly digest: Uint8Array
}

/**
 * Small files as a thread read and hashed them, in columns (no object per file): file `i`'s bytes in
 * {@link buffer}, its digest, and its size, mtime and inode after the read; or the error that stopped it.
 */
export class FilesRead {
  constructor(
    /** Holds every file's bytes: release it once none of them are needed. */
    readonly buffer: Uint8Array,
    private readonly layout: Float64Array,
    private readonly stamps: BigInt64Array,
    private readonly digests: Uint8Array,
    private readonly errors: readonly (WorkerError | null)[] | undefined,
  ) {}

  /** Why file `i` could not be read, or undefined when it was. */
  error(i: number): Error | undefined {
    const e = this.errors?.[i]
    return e ? toError(e) : undefined
  }

  bytes(i: number): Uint8Array {
    return this.buffer.subarray(this.layout[3 * i], this.layout[3 * i] + this.layout[3 * i + 1])
  }

  digest(i: number): Uint8Array {
    return this.digests.subarray(32 * i, 32 * i + 32)
  }

  /** The file's size, mtime and inode as its stat gave them after the read. */
  identity(i: number): { readonly size: number; readonly mtimeNs: bigint; readonly ino: bigint } {
    return { size: this.layout[3 * i + 2], mtimeNs: this.stamps[2 * i], ino: BigInt.asUintN(64, this.stamps[2 * i + 1]) }
  }

  /** True when file `i` had this size, mtime and inode after the read (compared without making an object). */
  same(i: number, size: number, mtimeNs: bigint, ino: bigint): boolean {
    return this.layout[3 * i + 2] === size && this.stamps[2 * i] === mtimeNs && this.stamps[2 * i + 1] === BigInt.asIntN(64, ino)
  }
}

interface Thread {
  readonly worker: Worker
  readonly waiting: Map<number, { resolve: (r: WorkerReply) => void; reject: (e: unknown) => void }>
}

/**
 * Places for chunks read ahead, shared by every file a pool imports at once: an importer takes a place
 * before it asks for a chunk and gives it back once the chunk has gone into the layout. Memory for
 * read-ahead is then bounded by the pool, however many files are in flight. First come, first served,
 * so the earliest chunk asked for is always the next to get a place (no importer waits on itself).
 */
export class Places {
  private free: number
  private readonly queue: (() => void)[] = []
  constructor(readonly size: number) {
    this.free = size
  }
  take(): Promise<void> {
    if (this.free > 0) {
      this.free--
      return Promise.resolve()
    }
    return new Promise((resolve) => this.queue.push(resolve))
  }
  give(): void {
    const next = this.queue.shift()
    if (next) next()
    else this.free++
  }
}

export class HashPool {
  /** Chunks in flight for the files this pool imports (see {@link Places}). */
  readonly readAhead: Places
  private readonly threads: Thread[] = []
  private readonly free: ArrayBuffer[] = []
  private nextId = 0

  /**
   * `size`: the most threads it starts (default: the number of CPUs); 0 for none, the calling thread
   * doing each task itself, synchronously (for work smaller than a thread's start: tens of ms, ~10 MiB).
   */
  constructor(readonly size: number = availableParallelism()) {
    if (!Number.isInteger(size) || size < 0) {
      throw new CairnError('USAGE', `jobs must be a whole number of threads (got ${size})`)
    }
    this.readAhead = new Places(4 * size + 4)
  }

  /** Reads up to `length` (≤ {@link BUFFER_SIZE}) bytes of the open file `fd` at `position` and hashes them. */
  async readRange(fd: number, position: number, length: number): Promise<Hashed> {
    const reply = await this.run({ id: this.nextId++, kind: 'range', fd, position, length, buffer: this.buffer(length) })
    if (reply.kind !== 'range') throw unexpected(reply)
    return { bytes: new Uint8Array(reply.buffer, 0, reply.length), digest: reply.digests.subarray(0, 32) }
  }

  /**
   * Reads and hashes whole files of the given sizes, in one round trip to a thread. A file that
   * turns out longer than its size is read only up to it; its stat (returned) tells the caller.
   */
  async readFiles(paths: string[], sizes: number[]): Promise<FilesRead> {
    let total = 0
    for (const size of sizes) total += size
    const reply = await this.run({ id: this.nextId++, kind: 'files', paths, sizes, buffer: this.buffer(total) })
    if (reply.kind !== 'files') throw unexpected(reply)
    return new FilesRead(new Uint8Array(reply.buffer), reply.layout, reply.stamps, reply.digests, reply.errors)
  }

  /**
   * Hashes `bytes` (sha2-256) on a thread and returns the digest. The bytes are copied into the pool's
   * reused buffers (as many 1 MiB buffers as they need, hashed in order) before this returns, so the
   * caller may overwrite `bytes` at once, while the promise is pending. The buffers come back to the pool
   * with the answer: no fresh memory per call, unlike WebCrypto's `digest`, which copies its input into
   * new pages every time.
   */
  hash(bytes: Uint8Array): Promise<Uint8Array> {
    const buffers: ArrayBuffer[] = []
    for (let at = 0; at < bytes.length; at += BUFFER_SIZE) {
      const part = bytes.subarray(at, at + BUFFER_SIZE)
      const buffer = this.buffer(BUFFER_SIZE)
      new Uint8Array(buffer).set(part)
      buffers.push(buffer)
    }
    return this.run({ id: this.nextId++, kind: 'hash', buffers, length: bytes.length }).then((reply) => {
      if (reply.kind !== 'hash') throw unexpected(reply)
      for (const buffer of reply.buffers) this.release(new Uint8Array(buffer))
      return reply.digests.subarray(0, 32)
    })
  }

  /** Gives a buffer back for reuse once nothing refers to the bytes read into it any more. */
  release(bytes: Uint8Array): void {
    const buffer = bytes.buffer
    if (
      buffer instanceof ArrayBuffer &&
      buffer.byteLength === BUFFER_SIZE &&
      this.free.length < FREE_BUFFERS &&
      !this.free.includes(buffer)
    ) {
      this.free.push(buffer)
    }
  }

  /** Starts every thread now rather than on first use, so that they boot while the caller does other work. */
  warm(): void {
    while (this.threads.length < this.size) this.start()
  }

  /** Stops the threads. The pool starts new ones if used again. */
  async close(): Promise<void> {
    const threads = this.threads.splice(0)
    await Promise.all(threads.map((t) => t.worker.terminate()))
  }

  private buffer(length: number): ArrayBuffer {
    if (length <= BUFFER_SIZE) return this.free.pop() ?? new ArrayBuffer(BUFFER_SIZE)
    return new ArrayBuffer(length)
  }

  private run(task: WorkerTask): Promise<WorkerReply> {
    if (this.size === 0) {
      const reply = answer(task)
      return reply.kind === 'failed' ? Promise.reject(this.failed(reply)) : Promise.resolve(reply)
    }
    const thread = this.pick()
    return new Promise<WorkerReply>((resolve, reject) => {
      // posted first: if posting throws, nothing is left waiting (a reply cannot come before this returns)
      thread.worker.postMessage(task, task.kind === 'hash' ? task.buffers : [task.buffer])
      thread.waiting.set(task.id, { resolve, reject })
      if (thread.waiting.size === 1) thread.worker.ref()
    })
  }

  /** The thread with the fewest tasks waiting; a new one while the pool is below its size and all are busy. */
  private pick(): Thread {
    let best: Thread | undefined
    for (const t of this.threads) if (!best || t.waiting.size < best.waiting.size) best = t
    if (best && (best.waiting.size === 0 || this.threads.length >= this.size)) return best
    return this.start()
  }

  /** The error of a failed task, its buffers taken back. */
  private failed(reply: Extract<WorkerReply, { kind: 'failed' }>): Error {
    for (const buffer of reply.buffers) this.release(new Uint8Array(buffer))
    return toError(reply.error)
  }

  private start(): Thread {
    // no inherited flags: the worker is plain JavaScript, and flags such as --input-type would stop it
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url), { execArgv: [] })
    const thread: Thread = { worker, waiting: new Map() }
    const settle = (reply: WorkerReply): void => {
      const w = thread.waiting.get(reply.id)
      if (!w) return
      thread.waiting.delete(reply.id)
      if (thread.waiting.size === 0) worker.unref()
      if (reply.kind === 'failed') w.reject(this.failed(reply))
      else w.resolve(reply)
    }
    const fail = (error: unknown): void => {
      const i = this.threads.indexOf(thread)
      if (i >= 0) this.threads.splice(i, 1)
      for (const w of thread.waiting.values()) w.reject(error)
      thread.waiting.clear()
    }
    worker.on('message', settle)
    worker.on('error', fail)
    worker.on('exit', (code) => fail(new Error(`a hashing thread exited (code ${code})`)))
    // unreferenced after its listeners are attached: a 'message' listener references the worker again,
    // and a thread started ahead of its first task (warm) would keep the process alive
    worker.unref()
    this.threads.push(thread)
    return thread
  }
}

/** The pool of `threads` threads shared by everything in this process that imports files. */
export function hashPool(threads: number = availableParallelism()): HashPool {
  let pool = shared.get(threads)
  if (!pool) {
    pool = new HashPool(threads)
    shared.set(threads, pool)
  }
  return pool
}

const shared = new Map<number, HashPool>()

/** A thread's system error as an Error with Node's usual fields (`code`, `errno`, `syscall`). */
function toError(e: WorkerError): Error {
  return Object.assign(new Error(e.message), { code: e.code, errno: e.errno, syscall: e.syscall })
}

function unexpected(reply: WorkerReply): Error {
  return new Error(`a hashing thread answered ${reply.kind} to a different request`)
}
