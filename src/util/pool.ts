/**
 * Files worked on at once by default (build, verify). Reading and writing go through libuv's thread
 * pool, so more files than cores in flight keep the disk and both hashing threads busy; each holds at
 * most a few 1 MiB chunks, so memory stays bounded.
 */
export const DEFAULT_JOBS = 8

/**
 * Runs `fn` over `items` with at most `limit` calls in flight; results keep the input order. The first
 * failure stops new calls from starting and is rethrown once the calls in flight have settled.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  let failure: { error: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const i = next++
      try {
        results[i] = await fn(items[i], i)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  if (failure) throw failure.error
  return results
}

/**
 * Maps `items` through `fn` with at most `limit` calls in flight and yields the results in input
 * order, so a consumer can take each result as soon as all before it are done: memory holds the
 * window, not the whole list. A failure is thrown at its turn; if the consumer stops or a call fails,
 * the calls still in flight are awaited first (none is left unobserved).
 */
export async function* mapOrdered<T, R>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const window: Promise<R>[] = []
  try {
    for (const item of items) {
      const p = fn(item)
      p.catch(() => {}) // observed below, in turn
      window.push(p)
      if (window.length >= limit) yield await (window.shift() as Promise<R>)
    }
    while (window.length > 0) yield await (window.shift() as Promise<R>)
  } finally {
    await Promise.allSettled(window)
  }
}
