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
 * Marks a promise started ahead of its use (a read-ahead) as handled: its failure is reported where it
 * is awaited, never as an unhandled rejection when an earlier failure means it is never awaited.
 */
export function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {})
  return p
}

/**
 * Runs `fn` over the items of `items`, sync or async, as they come, with at most `limit` calls in
 * flight: memory holds the items in flight, never the whole sequence. The first failure (of `fn` or
 * of the sequence) stops new calls from starting, ends the sequence, and is rethrown once the calls in
 * flight have settled.
 */
export async function forEachLimit<T>(items: Iterable<T> | AsyncIterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const iterator = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]()
  let done = false
  let failure: { error: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (failure === undefined && !done) {
      let next: IteratorResult<T>
      try {
        next = await iterator.next()
      } catch (error) {
        failure ??= { error }
        return
      }
      if (next.done === true) {
        done = true
        return
      }
      try {
        await fn(next.value)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker))
  if (failure) {
    try {
      await iterator.return?.()
    } catch {
      // the first failure is the one to report
    }
    throw failure.error
  }
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
