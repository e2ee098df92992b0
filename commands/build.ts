import { Flags } from '@oclif/core'
import { CairnError } from '../src/errors.js'
import { bytes, CairnCommand, fromFlag } from './_base.js'

export default class Build extends CairnCommand {
  static override summary = 'Build a new version of the dataset and move HEAD to it.'
  static override description =
    'Imports every file (IPIP-499 unixfs-v1-2025), reads rows and schemas of Parquet, Arrow, JSONL and CSV shards, validates ' +
    'JSONL/CSV rows against the card, stores the shard index, the tree and the version manifest, and prints the version CID. ' +
    'On any error nothing is committed. The created time comes from --date, else SOURCE_DATE_EPOCH, else the clock. ' +
    'Each derivedFrom release of the card is checked in the store and the --from sources (a missing one is an error when --from ' +
    'is given, else it is recorded unverified, saying so); --croissant puts the Croissant 1.1 document of the files into the release.'
  static override examples = [
    '<%= config.bin %> build -m "first release"',
    'SOURCE_DATE_EPOCH=1700000000 <%= config.bin %> build -m "reproducible"',
    '<%= config.bin %> build --date 2026-01-01T00:00:00Z --json',
    '<%= config.bin %> build -m "filtered" --from http://127.0.0.1:8080',
    '<%= config.bin %> build --croissant',
  ]
  static override flags = {
    message: Flags.string({ char: 'm', summary: 'What this version is.' }),
    date: Flags.string({ summary: 'The version time: ISO 8601 or seconds since 1970.' }),
    jobs: Flags.integer({
      char: 'j',
      summary: 'Threads that read and hash files (default: one per CPU, or one per CPU but one when most files are small).',
      min: 1,
    }),
    'allow-empty': Flags.boolean({ summary: 'Make a version even when nothing changed.' }),
    'max-errors': Flags.integer({
      summary: 'Invalid rows listed (with file and line) before the rest are only counted.',
      default: 20,
      min: 1,
    }),
    from: fromFlag,
    croissant: Flags.boolean({ summary: 'Also put the Croissant 1.1 document of the files into the release, as croissant.json.' }),
  }

  async run() {
    const { flags } = await this.parse(Build)
    const progress = this.progress()
    const build = flags.croissant
      ? (await import('../src/croissant/export.js')).buildWithCroissant
      : (await import('../src/build.js')).build
    const result = await build({
      dir: flags.dir,
      message: flags.message,
      date: flags.date === undefined ? undefined : parseDate(flags.date),
      jobs: flags.jobs,
      allowEmpty: flags['allow-empty'],
      maxErrors: flags['max-errors'],
      from: flags.from,
      onProgress: (p) =>
        progress.update(`build: ${p.files}/${p.totalFiles} files, ${bytes(p.bytes)}/${bytes(p.totalBytes)} ${p.path ?? ''}`),
    })
    progress.done()
    if (!this.jsonEnabled()) {
      for (const s of result.skipped) this.logToStderr(`skipped ${s.path}: ${s.reason}`)
      for (const l of result.lineage) {
        this.logToStderr(`derived from ${l.release} (${l.role}): ${l.status === 'verified' ? 'verified' : `unverified: ${l.reason}`}`)
      }
      const t = result.manifest.totals
      const c = result.changes
      this.logToStderr(
        result.unchanged
          ? 'nothing changed since HEAD'
          : `${t.shards} shards, ${bytes(t.bytes)}, ${t.rows} rows (+${c.added} added, ~${c.modified} modified, -${c.removed} removed)`,
      )
      this.logToStderr(`tree ${result.manifest.tree}`)
      this.log(result.version.toString())
    }
    return result
  }
}

/** `--date`: ISO 8601 or seconds since 1970, between 1970 and 9999. Throws `USAGE`. */
export function parseDate(text: string): Date {
  const date = /^\d+$/.test(text) ? new Date(Number(text) * 1000) : new Date(text)
  if (Number.isNaN(date.getTime()) || date.getUTCFullYear() > 9999 || date.getUTCFullYear() < 1970)
    throw new CairnError(
      'USAGE',
      `--date ${JSON.stringify(text)}: expected ISO 8601 (2026-01-31T12:00:00Z) or seconds since 1970, between 1970 and 9999`,
    )
  return date
}
