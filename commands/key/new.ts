import { Args, Flags } from '@oclif/core'
import { CairnCommand } from '../_base.js'

export default class KeyNew extends CairnCommand {
  static override summary = 'Make a signing key (Ed25519 by default) in your config folder, readable by you alone.'
  static override description =
    'The key is written to $XDG_CONFIG_HOME/cairn/keys/<name>.pem (else ~/.config/cairn/keys/; CAIRN_CONFIG_DIR overrides) with mode 0600. ' +
    'Ed25519 keys sign releases (`cairn sign`) and IPNS names (`cairn name publish`); an ECDSA P-256 key signs OpenSSF Model Signing ' +
    'statements (`cairn sign --oms-key`). The private key is never printed; this prints the public facts.'
  static override examples = [
    '<%= config.bin %> key new',
    '<%= config.bin %> key new curator --json',
    '<%= config.bin %> key new oms --type ecdsa-p256',
  ]
  static override args = { name: Args.string({ description: 'the key name (default: default)' }) }
  static override flags = {
    type: Flags.string({ summary: 'The key type.', options: ['ed25519', 'ecdsa-p256'], default: 'ed25519' }),
  }

  async run() {
    const { args, flags } = await this.parse(KeyNew)
    const { newKey } = await import('../../src/signing/keys.js')
    const key = await newKey({ name: args.name, type: flags.type as 'ed25519' | 'ecdsa-p256' })
    if (!this.jsonEnabled()) {
      this.log(`${key.name}  ${key.type}  ${key.file}`)
      this.log(`  key id     ${key.keyId}`)
      if (key.ipnsName) this.log(`  IPNS name  ${key.ipnsName}`)
    }
    return key
  }
}
