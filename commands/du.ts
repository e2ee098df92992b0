import type { DuResult } from '../src/gc/gc.js'
import { bytes, CairnCommand } from './_base.js'

export default class Du extends CairnCommand {
  static override summary = "Show the store's size: blocks and bytes, and what HEAD, the tags and the history reach."
  static override description =
    'Block bytes are counted once however many versions share a block. `unreachable` is what `cairn gc --now` would remove ' +
    'with its defaults. Reads only.'
  static override examples = ['<%= config.bin %> du', '<%= config.bin %> du --json']

  async run(): Promise<DuResult> {
    const { flags } = await this.parse(Du)
    const { du } = await import('../src/gc/gc.js')
    const r = await du({ dir: flags.dir })
    if (!this.jsonEnabled()) {
      const line = (name: string, p: { blocks: number; bytes: number }) =>
        `${name.padEnd(12)} ${String(p.blocks).padStart(9)} blocks  ${bytes(p.bytes)}`
      this.log(`${line('store', r.store)}  (${r.store.packs} packs, ${bytes(r.store.diskBytes)} on disk)`)
      this.log(line('HEAD', r.head))
      this.log(line('tags', r.tags))
      this.log(line('history', r.history))
      this.log(line('unreachable', r.unreachable))
    }
    return r
  }
}
