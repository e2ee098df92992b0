import type { ReferenceCheck } from '../../src/store/reference-loss.js'
import { CairnCommand } from '../_base.js'
import { EXIT } from '../_errors.js'

export default class StoreCheck extends CairnCommand {
  static override summary = 'List the data files a reference-mode store lost blocks with, and the versions that lost them.'
  static override description =
    'Looks at every data file the store references (store mode `reference`): a file edited since its build has its blocks ' +
    'hashed again, and a deleted file loses them all. Prints each lost file with the versions (from HEAD, the tags and ' +
    'their history) whose blocks it held. Exit 0 when nothing is lost, 1 when something is. Reads only.'
  static override examples = ['<%= config.bin %> store check', '<%= config.bin %> store check --json']

  async run(): Promise<ReferenceCheck> {
    const { flags } = await this.parse(StoreCheck)
    const { checkReferences } = await import('../../src/store/reference-loss.js')
    const r = await checkReferences({ dir: flags.dir })
    if (!this.jsonEnabled()) {
      this.log(`${r.files} referenced files, ${r.blocks} blocks: ${r.lost.length === 0 ? 'all intact' : `${r.lost.length} lost`}`)
      for (const l of r.lost) {
        this.log(`${l.why.padEnd(10)} ${l.path} (${l.blocks} blocks)`)
        for (const v of l.versions) this.log(`           lost by version ${v}`)
      }
    }
    if (r.lost.length > 0) process.exitCode = EXIT.differences
    return r
  }
}
