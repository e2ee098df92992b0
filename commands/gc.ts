import { Flags } from '@oclif/core'
import type { GcResult } from '../src/gc/gc.js'
import { bytes, CairnCommand } from './_base.js'

export default class Gc extends CairnCommand {
  static override summary = 'Remove blocks no ref, tag or kept version reaches (a dry run unless --now).'
  static override description =
    'Kept: the releases of HEAD, every tag and every version in the HEAD log (see `cairn reset --list`), with the releases of ' +
    'their ancestors (all of them, or the first N with --keep-history N; older versions keep their version block and card, so ' +
    '`cairn log` still works). Without --now nothing is deleted and the bytes that would be freed are printed. Packs are never ' +
    'rewritten in place: a gc killed midway leaves every kept block in the store, and the next gc finishes the job. Takes the ' +
    "dataset's lock: refused while a build runs."
  static override examples = [
    '<%= config.bin %> gc',
    '<%= config.bin %> gc --now',
    '<%= config.bin %> gc --now --keep-history 3',
    '<%= config.bin %> gc --now --expire-head-log --json',
  ]
  static override flags = {
    now: Flags.boolean({ summary: 'Delete now (default: a dry run).' }),
    'keep-history': Flags.integer({ summary: 'Keep the releases of only this many ancestors of each kept version.', min: 0 }),
    'expire-head-log': Flags.boolean({ summary: 'Do not keep versions only the HEAD log names (what `reset --undo` could go back to).' }),
  }

  async run(): Promise<GcResult> {
    const { flags } = await this.parse(Gc)
    const progress = this.progress()
    const { gc } = await import('../src/gc/gc.js')
    const result = await gc({
      dir: flags.dir,
      now: flags.now,
      keepHistory: flags['keep-history'],
      expireHeadLog: flags['expire-head-log'],
      onProgress: (p) => progress.update(`gc: ${p.phase} ${p.blocks} blocks`),
    })
    progress.done()
    if (!this.jsonEnabled()) {
      const what = `${result.garbageBlocks} of ${result.blocks} blocks unreachable (${bytes(result.garbageBytes)})`
      this.log(
        result.done
          ? `${what}: freed ${bytes(result.freedBytes)} (${result.packsDeleted} packs deleted, ${result.packsWritten} written)`
          : `${what}: gc --now would free ${bytes(result.freedBytes)} of ${bytes(result.storeBytes)}`,
      )
      if (result.missing > 0) this.logToStderr(`note: ${result.missing} blocks the kept versions link to are not in the store`)
    }
    return result
  }
}
