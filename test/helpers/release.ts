/**
 * A two-version release for gateway, page and proof tests: Parquet, Arrow, JSONL and CSV shards, a
 * 3 MiB file of four blocks, a file name and a card holding HTML, and a folder of 3,500 files, which
 * the tree stores as a HAMT. v2 changes CSV rows, adds a file and edits the card.
 */
import { tableFromArrays, tableToIPC } from 'apache-arrow'
import { parquetWriteBuffer } from 'hyparquet-writer'
import { build, type CID } from '../../src/index.js'
import { FIXED_DATE, makeDataset, seededBytes, type TempDataset } from './dataset.js'

export const HAMT_FILES = 3500
export const hamtName = (i: number): string => `many/a-rather-long-file-name-for-the-hamt-${String(i).padStart(5, '0')}.txt`
export const SCRIPT_CARD = {
  cardVersion: 1,
  name: 'gateway-test',
  description: 'Rows <script>window.pwned = 1</script> & more',
  license: 'CC0-1.0',
  provenance: { generator: 'test <b>bold</b>', seed: 7 },
}

export interface Release {
  readonly ds: TempDataset
  readonly v1: CID
  readonly v2: CID
  /** The files of v2 by path. */
  readonly files: Record<string, Uint8Array>
}

/** Builds the release in a fresh dataset (the caller cleans up `ds`). */
export async function makeRelease(): Promise<Release> {
  const parquet = new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'id', data: Array.from({ length: 200 }, (_, i) => BigInt(i)), type: 'INT64', nullable: false },
        { name: 'prompt', data: Array.from({ length: 200 }, (_, i) => `question ${i} <i>?</i>`), type: 'STRING' },
      ],
    }),
  )
  const arrow = tableToIPC(tableFromArrays({ x: Int32Array.from([1, 2, 3]), label: ['one', 'two', '<three>'] }), 'file')
  const files: Record<string, Uint8Array> = {
    'data/train.parquet': parquet,
    'data/points.arrow': arrow,
    'data/rows.jsonl': Buffer.from('{"id":1,"text":"alpha"}\n{"id":2,"text":"<img src=x onerror=alert(1)>"}\n'),
    'data/table.csv': Buffer.from('id,score\n1,0.5\n2,3\n3,4\n'),
    'blobs/big.bin': seededBytes(3 * 1024 * 1024 + 17, 'gateway-big'),
    'html/<img src=x onerror=alert(1)>.txt': Buffer.from('a file whose name is HTML\n'),
    'deep/a/b/c/d/e.txt': Buffer.from('deep file\n'),
  }
  for (let i = 0; i < HAMT_FILES; i++) files[hamtName(i)] = Buffer.from(`hamt file ${i}\n`)
  const ds = await makeDataset(files, { card: { ...SCRIPT_CARD, description: 'first' } })
  const v1 = (await build({ dir: ds.dir, message: 'first release', date: FIXED_DATE })).version
  const v2Files = {
    'data/table.csv': Buffer.from('id,score\n1,0.5\n2,30\n4,5\n'),
    'data/added.jsonl': Buffer.from('{"id":9}\n'),
  }
  await ds.write(v2Files)
  const { writeFile } = await import('node:fs/promises')
  await writeFile(`${ds.dir}/cairn.json`, JSON.stringify(SCRIPT_CARD, null, 2) + '\n')
  const v2 = (await build({ dir: ds.dir, message: 'second <release>', date: new Date(FIXED_DATE.getTime() + 86_400_000) })).version
  return { ds, v1, v2, files: { ...files, ...v2Files } }
}
