import { Flags } from '@oclif/core'
import type { RequestEntry } from '../src/gateway/log.js'
import { CairnCommand } from './_base.js'

export default class Serve extends CairnCommand {
  static override summary =
    "Serve the dataset's store (and dir: folders) as an IPFS gateway: trustless, plain bytes with ranges, and release pages."
  static override description =
    'Answers GET and HEAD /ipfs/{cid}/{path} by IPLD pathing (/ipfs/<version>/tree/<file>, /ipfs/<version>/card): ?format=raw and ?format=car ' +
    '(dag-scope=block|entity|all, entity-bytes) as the trustless-gateway spec says, so `cairn clone --from <url>` and any trustless client can fetch; ' +
    'without a format, plain file bytes (Content-Length, Range, ETag) for data tools such as fsspec and DuckDB, directory listings, and a release ' +
    'page for browsers (/ lists the versions). Logs each request on stderr unless --quiet. Listens on 127.0.0.1 unless --host says otherwise; ' +
    'prints its URL and runs until interrupted (SIGINT, SIGTERM).'
  static override examples = [
    '<%= config.bin %> serve',
    '<%= config.bin %> serve --port 9090 --dir-target ./release-cars',
    '<%= config.bin %> serve --quiet --port 0',
    '<%= config.bin %> serve --host 0.0.0.0 --port 8080',
    '<%= config.bin %> serve --port 0 --json',
  ]
  static override flags = {
    port: Flags.integer({ char: 'p', summary: 'Port to listen on (0: any free port).', default: 8080, min: 0, max: 65535 }),
    host: Flags.string({ summary: 'Address to listen on (a warning is printed for one that is not loopback).', default: '127.0.0.1' }),
    'dir-target': Flags.string({ summary: 'A dir: target folder to serve as well (repeatable).', multiple: true, multipleNonGreedy: true }),
    quiet: Flags.boolean({ char: 'q', summary: 'No request log on stderr.', default: false }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(Serve)
    const { serve } = await import('../src/serve.js')
    const { formatEntry } = await import('../src/gateway/log.js')
    const log = flags.quiet ? undefined : (e: RequestEntry) => process.stderr.write(`${new Date().toISOString()} ${formatEntry(e)}\n`)
    const handle = await serve({ dir: flags.dir, dirs: flags['dir-target'], port: flags.port, host: flags.host, onRequest: log })
    // printed at once, not as run()'s result: serve returns only when stopped
    if (this.jsonEnabled()) process.stdout.write(JSON.stringify({ url: handle.url, host: flags.host, port: handle.port }) + '\n')
    else this.log(handle.url)
    if (!handle.loopback) {
      process.stderr.write(
        `warning: listening on ${flags.host}, which is not a loopback address: anyone who can reach it can read every block of this store\n`,
      )
    }
    if (!this.jsonEnabled()) process.stderr.write(`serving /ipfs/{cid}/{path} and / on ${handle.url}; Ctrl-C stops\n`)
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
