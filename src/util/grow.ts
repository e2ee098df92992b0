/**
 * Columns of numbers that grow as items are added (the scan's stamps, the store's block locations,
 * the stat cache writer's facts): typed arrays that double when full.
 */
type Column = Uint8Array | Uint32Array | Float64Array | BigInt64Array

/** `column` when it has room for `length` elements, else a copy of it with room for at least twice as many. */
export function withRoom<T extends Column>(column: T, length: number): T {
  if (length <= column.length) return column
  const grown = new (column.constructor as new (n: number) => T)(Math.max(length, 2 * column.length))
  grown.set(column as never)
  return grown
}
