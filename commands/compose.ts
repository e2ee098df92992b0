import { Args, Flags } from '@oclif/core'
import type { ComposePart, ComposeResult } from '../src/compose/compose.js'
import { CairnError } from '../src/errors.js'
import { bytes, CairnCommand, fromFlag } from './_base.js'

export default class Compose extends CairnCommand {
  static override summary = 'Make one version from parts built elsewhere, reading only their index and folder blocks.'
  static override description =
    'Each part is a version (built by one worker on its share of the files and published). The composed version holds every ' +
    "part's files, each under its --at folder, and equals CID for CID what one build over all the files gives; no file of " +
    'a part is fetched, and every block read is checked against its CID. Blocks come from the store, then --from. Its card is this ' +
    "dataset's cairn.json and its parent HEAD; HEAD moves to it. Two parts with a file at the same path, a part built with another " +
    "profile, or a part whose shards were checked under other shard rules than this card's are refused, and nothing changes. " +
    'See docs/compose.md for the recipe with a pool of workers.'
  static override examples = [
    '<%= config.bin %> compose bafy…part1 bafy…part2 -m "nightly, 2 workers" --from dir:/srv/cars',
    '<%= config.bin %> compose --at train=bafy…a --at test=bafy…b -m "train and test" --from http://127.0.0.1:8080',
    '<%= config.bin %> compose bafy…a bafy…b --date 2026-01-01T00:00:00Z --json',
  ]
  static override strict = false
  static override args = {
    parts: Args.string({ description: 'the parts: version CIDs (or refs of this dataset), their files at the top of the composition' }),
  }
  static override flags = {
    at: Flags.string({
      summary: 'A part whose files go under a folder: <folder>=<cid> (repeatable).',
      multiple: true,
      multipleNonGreedy: true,
    }),
    message: Flags.string({ char: 'm', summary: 'What this version is.' }),
    date: Flags.string({ summary: 'The version time: ISO 8601 or seconds since 1970.' }),
    'allow-empty': Flags.boolean({ summary: 'Make a version even when the composition equals HEAD.' }),
    from: fromFlag,
  }

  async run(): Promise<ComposeResult> {
    const { argv, flags } = await this.parse(Compose)
    const parts: ComposePart[] = [...(argv as string[]).map((ref) => ({ ref })), ...(flags.at ?? []).map(parseAt)]
    const progress = this.progress()
    const { compose } = await import('../src/compose/compose.js')
    const { parseDate } = await import('./build.js')
    const result = await compose({
      dir: flags.dir,
      parts,
      message: flags.message,
      date: flags.date === undefined ? undefined : parseDate(flags.date),
      allowEmpty: flags['allow-empty'],
      from: flags.from,
      onProgress: (p) => progress.update(`compose: ${p.files}/${p.totalFiles} files`),
    })
    progress.done()
    if (!this.jsonEnabled()) {
      for (const l of result.lineage) {
        this.logToStderr(`derived from ${l.release} (${l.role}): ${l.status === 'verified' ? 'verified' : `unverified: ${l.reason}`}`)
      }
      const t = result.manifest.totals
      this.logToStderr(
        result.unchanged
          ? 'the composition equals HEAD: no new version'
          : `${result.parts.length} parts: ${t.shards} shards, ${bytes(t.bytes)}, ${t.rows} rows`,
      )
      this.logToStderr(`tree ${result.manifest.tree}`)
      this.log(result.version.toString())
    }
    return result
  }
}

/** `--at <folder>=<ref>`. Throws `USAGE`. */
function parseAt(text: string): ComposePart {
  const eq = text.lastIndexOf('=')
  if (eq <= 0 || eq === text.length - 1) {
    throw new CairnError('USAGE', `--at ${JSON.stringify(text)}: expected <folder>=<cid>, e.g. --at train=bafy…`, { subject: text })
  }
  return { at: text.slice(0, eq), ref: text.slice(eq + 1) }
}
