import { Args, Flags } from '@oclif/core'
import { DEFAULT_CROISSANT_GATEWAY, exportCroissant, type ExportCroissantResult } from '../../src/index.js'
import { bytes, CairnCommand } from '../_base.js'

export default class ExportCroissant extends CairnCommand {
  static override summary = 'Write a release as a Croissant 1.1 JSON-LD document (metadata.json) that ML tooling loads.'
  static override description =
    'One cr:FileObject per shard with its contentUrl on the gateway (<gateway>/ipfs/<version>/tree/<path>), size, media type, ' +
    'sha256 of its bytes and sameAs ipfs://<file CID>; one cr:RecordSet per shard rule of the card, fields typed from the shard ' +
    'schemas and keyed by primaryKey; parent and derivedFrom as prov:wasDerivedFrom, the generator, model, prompt and seed as ' +
    'prov:wasGeneratedBy; the RAI notes of the card. Each sha256 is computed once from the store and kept there: a second ' +
    'export reads no data. Without -o the document goes to stdout.'
  static override examples = [
    '<%= config.bin %> export croissant -o metadata.json',
    '<%= config.bin %> export croissant v2 --gateway https://gateway.example.org -o metadata.json',
    '<%= config.bin %> export croissant --json',
  ]
  static override args = { ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }) }
  static override flags = {
    gateway: Flags.string({ summary: `Gateway base URL for the contentUrls (default ${DEFAULT_CROISSANT_GATEWAY}).` }),
    output: Flags.string({ char: 'o', summary: 'Write the document to this file (default: stdout).' }),
  }

  async run(): Promise<ExportCroissantResult> {
    const { args, flags } = await this.parse(ExportCroissant)
    const progress = this.progress()
    let hashed = 0
    const result = await exportCroissant({
      dir: flags.dir,
      ref: args.ref,
      gateway: flags.gateway,
      output: flags.output,
      onHashed: (cid, size) => progress.update(`sha256: ${++hashed} files read (${cid}, ${bytes(size)})`),
    })
    progress.done()
    if (!this.jsonEnabled()) {
      for (const w of result.warnings) this.logToStderr(`warning: ${w}`)
      if (flags.output === undefined) this.log(JSON.stringify(result.document, null, 2))
      else this.logToStderr(`${result.output}: ${result.files} files, ${result.hashed} read for their sha256`)
    }
    return result
  }
}
