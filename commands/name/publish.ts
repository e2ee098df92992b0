import { Args, Flags } from '@oclif/core'
import { CairnCommand } from '../_base.js'

export default class NamePublish extends CairnCommand {
  static override summary = 'Point your IPNS name at a version: a signed IPNS V2 record put where readers look.'
  static override description =
    'The record (the ipns package; Ed25519; DAG-CBOR data; value /ipfs/<version>) gets a sequence one above any seen for the name, ' +
    'is valid for --lifetime (default 30 days) with a TTL of --ttl (default and minimum 5 minutes), and is kept in .cairn/ipns/<name>.ipns-record ' +
    '(so `cairn serve` answers for it), written to each dir: target (<dir>/ipns/<name>.ipns-record), put to each Kubo node ' +
    '(routing/put) and PUT to each delegated router (--router URL: /routing/v1/ipns/<name>). Readers use `cairn clone <name>` or `cairn name resolve`.'
  static override examples = [
    '<%= config.bin %> name publish --to dir:./release-cars',
    '<%= config.bin %> name publish v2 --key curator --to kubo:http://127.0.0.1:5001 --json',
    '<%= config.bin %> name publish --router http://127.0.0.1:8080 --lifetime 7d --ttl 1h',
  ]
  static override args = { ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag (default HEAD)' }) }
  static override flags = {
    key: Flags.string({ char: 'k', summary: 'The Ed25519 key whose name is published (default: CAIRN_KEY, else default).' }),
    to: Flags.string({
      char: 't',
      summary: 'Where to put the record: dir:<path> or kubo:<rpc-url> (repeatable).',
      multiple: true,
      multipleNonGreedy: true,
    }),
    router: Flags.string({
      summary: 'A Delegated Routing V1 endpoint to PUT the record to (repeatable).',
      multiple: true,
      multipleNonGreedy: true,
    }),
    lifetime: Flags.string({ summary: 'How long the record is valid: a number with s, m, h or d (default 30d).' }),
    ttl: Flags.string({ summary: 'How long readers may cache it: a number with s, m, h or d (default and minimum 5m).' }),
  }

  async run() {
    const { args, flags } = await this.parse(NamePublish)
    const { namePublish, parseDuration } = await import('../../src/names/publish.js')
    const result = await namePublish({
      dir: flags.dir,
      ref: args.ref,
      key: flags.key,
      to: flags.to,
      routers: flags.router,
      lifetimeMs: flags.lifetime === undefined ? undefined : parseDuration(flags.lifetime, '--lifetime'),
      ttlMs: flags.ttl === undefined ? undefined : parseDuration(flags.ttl, '--ttl'),
    })
    if (!this.jsonEnabled()) {
      this.log(`/ipns/${result.name} → /ipfs/${result.value} (sequence ${result.sequence}, valid until ${result.validity})`)
      for (const p of result.placed) this.log(`  put to ${p}`)
    }
    return result
  }
}
