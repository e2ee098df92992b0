// The block store's index logs: a block is in the store exactly when its index line is whole.
import { appendFile, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { cidFor, RAW } from '../src/cid.js'
import { BlockStore } from '../src/store/blocks.js'
import { tempDirs } from './helpers/tmp.js'

const dirs = tempDirs()
afterEach(() => dirs.cleanup())

const block = (text: string): { cid: ReturnType<typeof cidFor>; bytes: Uint8Array } => {
  const bytes = new TextEncoder().encode(text)
  return { cid: cidFor(RAW, bytes), bytes }
}

async function storeWith(...texts: string[]): Promise<{ root: string; idx: string }> {
  const root = await dirs.make()
  const store = new BlockStore(root)
  for (const t of texts) {
    const b = block(t)
    await store.put(b.cid, b.bytes)
  }
  await store.close()
  const [name] = (await readdir(join(root, 'packs'))).filter((n) => n.endsWith('.idx'))
  return { root, idx: join(root, 'packs', name) }
}

describe('block store index logs', () => {
  it('a new store instance finds every block whose line is whole, in one view and one by one', async () => {
    const { root } = await storeWith('one', 'two', 'three')
    const store = new BlockStore(root)
    const view = await store.snapshot()
    for (const t of ['one', 'two', 'three']) {
      const b = block(t)
      expect(view.has(b.cid)).toBe(true)
      expect(view.has(b.cid.bytes)).toBe(true)
      expect(await store.get(b.cid)).toEqual(b.bytes)
    }
    expect(view.has(block('four').cid)).toBe(false)
    expect(view.has(block('four').cid.bytes)).toBe(false)
  })

  it('ignores a torn last line until it is whole, and lines that are not <cid> <offset> <length>', async () => {
    const { root, idx } = await storeWith('one')
    const lines = (await readFile(idx, 'latin1')).split('\n')
    const [, offset, length] = lines[0].split(' ')
    const two = block('two')
    // a malformed line, then a torn one (the writer was killed mid-append)
    await appendFile(idx, `garbage\n${block('x').cid} 5\n\n${two.cid} ${offset}`)
    const store = new BlockStore(root)
    expect((await store.snapshot()).has(block('one').cid)).toBe(true)
    expect((await store.snapshot()).has(two.cid)).toBe(false)
    expect((await store.snapshot()).has(block('x').cid)).toBe(false)
    // the line completes (its bytes are those of "one", so reading it fails the hash check)
    await appendFile(idx, ` ${length}\n`)
    expect(await store.has(two.cid)).toBe(false) // as of the last look
    expect(await store.locationOf(two.cid)).toMatchObject({ offset: Number(offset), length: Number(length) })
    await expect(store.get(two.cid)).rejects.toMatchObject({ code: 'CORRUPT_BLOCK' })
    await store.close()
  })
})
