// The manifest codec writes dag-json by JSON.stringify of the sorted JSON form; these tests hold it to
// byte-identity with @ipld/dag-json (an implementation we did not write), both ways.
import * as dagJson from '@ipld/dag-json'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { cidFor, DAG_JSON, RAW } from '../src/cid.js'
import { checkShardPath, decodeManifest, encodeManifest, type IndexNode, type ShardEntry, type VersionManifest } from '../src/manifest.js'

const path = fc
  .array(
    fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
      .filter((s) => !/[\u0000-\u001f\u007f/\\]/.test(s) && s !== '.' && s !== '..'),
    {
      minLength: 1,
      maxLength: 3,
    },
  )
  .map((segments) => segments.join('/'))

const entry = fc.record({
  path,
  seed: fc.string(),
  size: fc.nat(),
  format: fc.constantFrom('parquet', 'arrow', 'jsonl', 'csv', 'bytes'),
  rows: fc.option(fc.nat(), { nil: undefined }),
})

describe('manifest codec', () => {
  it('index leaves encode to the same bytes as @ipld/dag-json and decode back', () => {
    fc.assert(
      fc.property(fc.uniqueArray(entry, { selector: (e) => e.path, maxLength: 20 }), (raw) => {
        const entries: ShardEntry[] = raw
          .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)))
          .map((e) => ({
            path: e.path,
            cid: cidFor(RAW, Buffer.from(e.seed)),
            size: e.size,
            format: e.format,
            ...(e.format !== 'bytes' && e.rows !== undefined ? { rows: e.rows, schema: cidFor(DAG_JSON, Buffer.from(e.seed + 's')) } : {}),
          }))
        const node: IndexNode = { type: 'cairn.index', v: 1, level: 0, entries }
        const block = encodeManifest<'cairn.index'>(node)
        expect(Buffer.from(block.bytes).equals(Buffer.from(dagJson.encode(node)))).toBe(true)
        expect(dagJson.decode(block.bytes)).toEqual(decodeManifest('cairn.index', block.cid, block.bytes))
      }),
      { seed: 499, numRuns: 200 },
    )
  })

  it('versions (with a null parent and unicode text) encode like @ipld/dag-json', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.nat(), (message, name, n) => {
        const link = cidFor(DAG_JSON, Buffer.from(name))
        const v: VersionManifest = {
          type: 'cairn.version',
          v: 1,
          name,
          parent: n % 2 === 0 ? null : link,
          created: '2026-01-01T00:00:00.000Z',
          message,
          profile: 'unixfs-v1-2025',
          card: link,
          index: link,
          tree: link,
          totals: { shards: n, bytes: n * 3, rows: n * 7 },
        }
        const block = encodeManifest<'cairn.version'>(v)
        expect(Buffer.from(block.bytes).equals(Buffer.from(dagJson.encode(v)))).toBe(true)
        expect(decodeManifest('cairn.version', block.cid, block.bytes)).toEqual(dagJson.decode(block.bytes))
      }),
      { seed: 2025, numRuns: 300 },
    )
  })
})

describe('shard paths', () => {
  it.each(['a', 'a/b', '..a', 'a..', '.a/b', 'a/.../b', '...', 'a/b.c/d', 'dir/\ufffd.bin'])('%j is a shard path', (p) => {
    expect(() => checkShardPath(p)).not.toThrow()
  })

  it.each([
    ['', 'is empty'],
    ['/a', 'is absolute'],
    ['a\\b', 'contains a backslash'],
    ['a\u0001b', 'contains a control character'],
    ['a//b', 'has an empty, "." or ".." segment'],
    ['a/', 'has an empty, "." or ".." segment'],
    ['.', 'has an empty, "." or ".." segment'],
    ['./a', 'has an empty, "." or ".." segment'],
    ['a/.', 'has an empty, "." or ".." segment'],
    ['..', 'has an empty, "." or ".." segment'],
    ['../a', 'has an empty, "." or ".." segment'],
    ['a/../b', 'has an empty, "." or ".." segment'],
    ['a/\ud800', 'is not valid Unicode'],
  ])('%j: BAD_PATH, it %s', (p, problem) => {
    expect(() => checkShardPath(p)).toThrow(`shard path ${JSON.stringify(p)} ${problem}`)
  })
})
