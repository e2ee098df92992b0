import { Args } from '@oclif/core'
import type { StoreModeResult } from '../../src/store/set-mode.js'
import { STORE_MODES, type StoreMode } from '../../src/store/mode.js'
import { CairnCommand } from '../_base.js'

export default class StoreModeCommand extends CairnCommand {
  static override summary = "Show or set how builds store the files' blocks: copy, reflink or reference."
  static override description =
    '`copy` (the default) appends every block to the store: a second copy of the data. `reflink` stores each data file of 64 KiB ' +
    'or more as a copy-on-write clone (btrfs, XFS, APFS), which shares the disk blocks until either is written, and copies ' +
    'where the file system cannot clone. `reference` stores where the blocks lie in the data files themselves (a filestore): ' +
    'no copy at all, but editing or deleting a data file loses the blocks of the versions it fed unless they were published ' +
    '(`cairn store check` lists them). A change applies to later builds; stored blocks stay readable. See docs/store.md.'
  static override examples = [
    '<%= config.bin %> store mode',
    '<%= config.bin %> store mode reflink',
    '<%= config.bin %> store mode reference --json',
  ]
  static override args = {
    mode: Args.string({ description: 'the mode to set (default: show the mode)', options: [...STORE_MODES] }),
  }

  async run(): Promise<StoreModeResult> {
    const { args, flags } = await this.parse(StoreModeCommand)
    const { storeMode } = await import('../../src/store/set-mode.js')
    const r = await storeMode({ dir: flags.dir, set: args.mode as StoreMode | undefined })
    if (!this.jsonEnabled()) {
      this.log(r.previous ? `Store mode ${r.mode} (was ${r.previous}); later builds store blocks this way` : `Store mode ${r.mode}`)
      if (!r.reflinks.supported && r.mode === 'reflink') this.log(`reflinks: not here (${r.reflinks.reason}); blocks are copied`)
    }
    return r
  }
}
