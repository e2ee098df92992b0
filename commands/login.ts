import { Args, Flags } from '@oclif/core'
import { login } from '../src/login.js'
import { CairnCommand } from './_base.js'

export default class Login extends CairnCommand {
  static override summary = 'Log in to Storacha (legacy) by email, so that `publish --to storacha` works on this machine.'
  static override description =
    'Storacha is a legacy target: the service stopped taking new uploads in May 2026 and is moving its users to Filecoin Onchain Cloud; publish to dir: or kubo: instead. ' +
    'Creates an agent key in your config folder ($XDG_CONFIG_HOME/cairn/storacha, else ~/.config/cairn/storacha; mode 0700, readable by you alone), ' +
    'emails you a confirmation link and waits until you click it, then selects a space of your account or creates and provisions one. ' +
    'In CI, set STORACHA_PRINCIPAL and STORACHA_PROOF instead. STORACHA_SERVICE_URL, STORACHA_SERVICE_DID and STORACHA_RECEIPTS_URL point at another service.'
  static override examples = [
    '<%= config.bin %> login you@example.com',
    '<%= config.bin %> login you@example.com --space did:key:z6Mk…',
    '<%= config.bin %> login you@example.com --space datasets --json',
  ]
  static override args = { email: Args.string({ description: 'your Storacha account email', required: true }) }
  static override flags = {
    space: Flags.string({
      summary:
        'The space to publish to, by DID or name (created under that name when missing; default: the current space, else a new space "cairn").',
    }),
  }

  async run() {
    const { args, flags } = await this.parse(Login)
    const result = await login({
      email: args.email,
      space: flags.space,
      // an instruction the user must see, so on stderr even under --json
      onWaiting: ({ email }) => process.stderr.write(`To log in, click the link in the email sent to ${email} (waiting…)\n`),
    })
    if (!this.jsonEnabled()) {
      this.log(`Logged in as ${result.account}`)
      this.log(`  agent ${result.agent} (state in ${result.stateDir})`)
      this.log(
        `  space ${result.space}${result.spaceName ? ` "${result.spaceName}"` : ''}${result.spaceCreated ? ' (created and provisioned)' : ''}`,
      )
    }
    return result
  }
}
