import { Flags } from '@oclif/core'
import { CairnCommand } from './_base.js'

export default class Serve extends CairnCommand {
  static override summary = "Serve the dataset's store (and dir: folders) as a trustless IPFS gateway."
  static override description =
    'Answers GET and HEAD /ipfs/{cid} with ?format=raw (one block) or ?format=car (dag-scope=block|entity|all), as the IPFS trustless-gateway ' +
    'spec says, so `cairn clone --from <url>` and any trustless client can fetch from it. Listens on 127.0.0.1 unless --host says otherwise; ' +
    'prints its URL (with --json: one line {url, host, port}) as soon as it listens and runs until interrupted (SIGINT, SIGTERM).'
  static override examples = [
    '<%= config.bin %> serve',
    '<%= config.bin %> serve --port 9090 --dir-target ./release-cars',
    '<%= config.bin %> serve --host 0.0.0.0 --port 8080',
    '<%= config.bin %> serve --port 0 --json',
  ]
  static override flags = {
    port: Flags.integer({ char: 'p', summary: 'Port to listen on (0: any free port).', default: 8080, min: 0, max: 65535 }),
    host: Flags.string({ summary: 'Address to listen on.', default: '127.0.0.1' }),
    'dir-target': Flags.string({ summary: 'A dir: target folder to serve as well (repeatable).', multiple: true, multipleNonGreedy: true }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Serve)
    const { serve } = await import('../src/serve.js')
    const handle = await serve({ dir: flags.dir, dirs: flags['dir-target'], port: flags.port, host: flags.host })
    // printed at once, not as run()'s result: serve returns only when stopped
    if (this.jsonEnabled()) process.stdout.write(JSON.stringify({ url: handle.url, host: flags.host, port: handle.port }) + '\n')
    else this.log(handle.url)
    if (!this.jsonEnabled()) process.stderr.write(`serving /ipfs/{cid} (format=raw, format=car) on ${handle.url}; Ctrl-C stops\n`)
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        resolve()
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    })
    await handle.close()
  }
}
