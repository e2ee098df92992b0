import { CairnCommand } from '../_base.js'

export default class KeyList extends CairnCommand {
  static override summary = 'List the signing keys in your config folder (public facts only).'
  static override description =
    'Each key with its type, key id (sha256 of its public key) and, for Ed25519 keys, its IPNS name. A key file readable by others is refused with the chmod that fixes it.'
  static override examples = ['<%= config.bin %> key list', '<%= config.bin %> key list --json']

  async run() {
    const { listKeys } = await import('../../src/signing/keys.js')
    const keys = await listKeys()
    if (!this.jsonEnabled()) {
      if (keys.length === 0) this.log('no keys (make one with `cairn key new`)')
      for (const k of keys) this.log(`${k.name}  ${k.type}  ${k.keyId.slice(0, 16)}…${k.ipnsName ? `  ${k.ipnsName}` : ''}`)
    }
    return { keys }
  }
}
