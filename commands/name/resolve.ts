import { Args, Flags } from '@oclif/core'
import { CairnCommand, fromFlag } from '../_base.js'

export default class NameResolve extends CairnCommand {
  static override summary = 'Resolve an IPNS name to the version it points at, checking its record.'
  static override description =
    'The record is fetched from every --from source (a cairn serve or gateway URL: /routing/v1/ipns/<name>, then /ipns/<name>?format=ipns-record; ' +
    'a dir: folder or dataset: ipns/<name>.ipns-record) and checked: its signature by the key inside the name, at most 10 KiB, not expired. ' +
    'The highest valid sequence wins. A record older than one seen before is refused (rollback), and so is a new version whose history ' +
    'does not hold the version seen before (fork), unless --allow-fork. Exit 9 for a refusal, 5 for an invalid record, 7 when no source knows the name.'
  static override examples = [
    '<%= config.bin %> name resolve k51… --from http://127.0.0.1:8080',
    '<%= config.bin %> name resolve ipns://k51… --from dir:./release-cars --json',
  ]
  static override args = { name: Args.string({ description: 'k51…, /ipns/k51… or ipns://k51…', required: true }) }
  static override flags = {
    from: fromFlag,
    'allow-fork': Flags.boolean({ summary: 'Accept a version whose history does not hold the one seen before.' }),
  }

  async run() {
    const { args, flags } = await this.parse(NameResolve)
    const { nameResolve } = await import('../../src/names/resolve.js')
    const result = await nameResolve({ name: args.name, from: flags.from ?? [], allowFork: flags['allow-fork'] })
    if (!this.jsonEnabled()) {
      this.log(`/ipfs/${result.value}`)
      process.stderr.write(
        `${result.name}: sequence ${result.sequence}, valid until ${result.validity}, from ${result.from}${result.fork ? ' (FORK accepted)' : ''}\n`,
      )
    }
    return result
  }
}
