/**
 * The way out when `cairn.json` is gone but `.cairn/` is still there: `init` writes back the card of
 * the version HEAD points at (every version holds its card as a block), keeping the store and its
 * history. `build` then gives the same version as before.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { CID } from '../cid.js'
import { CARD_FILE, STORE_DIR } from '../dataset.js'
import { ioError } from '../errors.js'
import type { Card } from '../manifest.js'
import { BlockStore } from '../store/blocks.js'
import { Refs } from '../store/refs.js'
import { readCardBlock, readVersion } from '../version.js'

/**
 * Writes HEAD's card to `<dir>/cairn.json` and returns it with the version it came from; undefined
 * (writing nothing) when HEAD points at no version yet. The card block is verified on read.
 *
 * @throws {CairnError} `MISSING_BLOCK`, `CORRUPT_BLOCK`, `INVALID_MANIFEST`, `INVALID_CARD`; `IO`.
 */
export async function restoreCardFromHead(dir: string): Promise<{ card: Card; version: CID } | undefined> {
  const storeDir = join(dir, STORE_DIR)
  const version = await new Refs(storeDir).head()
  if (version === undefined) return undefined
  const store = new BlockStore(storeDir)
  try {
    const card = await readCardBlock(store, (await readVersion(store, version)).card)
    await writeFile(join(dir, CARD_FILE), JSON.stringify(card, null, 2) + '\n').catch((e: unknown) => {
      throw ioError('write', join(dir, CARD_FILE), e)
    })
    return { card, version }
  } finally {
    await store.close()
  }
}
