import { Args, Flags } from '@oclif/core'
import { CairnError } from '../../src/errors.js'
import { CairnCommand } from '../_base.js'

export default class KeyExport extends CairnCommand {
  static override summary = 'Print a public key as PEM (SPKI), with its key id and IPNS name.'
  static override description =
    'Only the public half is ever exported: give it to anyone who checks your signatures (`cairn verify --signed-by key.pub`). ' +
    'Without a name, the key in CAIRN_KEY or the key named default is used.'
  static override examples = ['<%= config.bin %> key export --public > key.pub', '<%= config.bin %> key export curator --public --json']
  static override args = { name: Args.string({ description: 'the key name (default: CAIRN_KEY, else default)' }) }
  static override flags = {
    public: Flags.boolean({ summary: 'Export the public key (the only export there is).' }),
  }

  async run() {
    const { args, flags } = await this.parse(KeyExport)
    if (!flags.public)
      throw new CairnError('USAGE', 'cairn key export only exports public keys: add --public', {
        hint: 'the private key stays in its file; copy the file itself to move it',
      })
    const { loadKey } = await import('../../src/signing/keys.js')
    const key = await loadKey({ name: args.name })
    const out = {
      name: key.name,
      type: key.type,
      publicKeyPem: key.publicKeyPem,
      keyId: key.keyId,
      ...(key.ipnsName ? { ipnsName: key.ipnsName } : {}),
    }
    if (!this.jsonEnabled()) {
      this.log(out.publicKeyPem.trimEnd())
      if (out.ipnsName) process.stderr.write(`IPNS name: ${out.ipnsName}\n`)
    }
    return out
  }
}
