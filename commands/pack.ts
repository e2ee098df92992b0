import { Args, Flags } from '@oclif/core'
import { pack, parseHistory } from '../src/index.js'
import { bytes, CairnCommand, fromFlag } from './_base.js'

export default class Pack extends CairnCommand {
  static override summary = 'Write a release as one CARv1 (version CID as its root): the version and its own DAG, without its parent.'
  static override description =
    "The CAR holds the version, its card, shard index, schemas, tree and files; the parent stays a link and is not included unless --history asks for ancestors (--history all: the whole DAG, as `ipfs dag export` makes it). Depth-first, no duplicate blocks; the same version always gives the same bytes. Without -o the CAR goes to stdout and the root CID to stderr. The tree CID is printed too: `ipfs-car unpack release.car --root <tree>` writes the files. In a clone, blocks the store lacks are read from the clone's files (checked against their CIDs); ancestors from --from or the sources the clone recorded."
  static override examples = [
    '<%= config.bin %> pack -o release.car',
    '<%= config.bin %> pack v1 > v1.car',
    '<%= config.bin %> pack HEAD -o out.car --json',
    '<%= config.bin %> pack -o full.car --history all',
  ]
  static override args = { ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }) }
  static override flags = {
    output: Flags.string({ char: 'o', summary: 'The CAR file to write (default: stdout).' }),
    history: Flags.string({ summary: 'Also include ancestors: all, or how many (default: none, the release alone).' }),
    from: fromFlag,
  }

  async run() {
    const { args, flags } = await this.parse(Pack)
    if (flags.output === undefined && this.jsonEnabled()) {
      this.error('--json needs -o: the CAR itself would go to stdout', { exit: 2 })
    }
    const progress = this.progress()
    const result = await pack({
      dir: flags.dir,
      ref: args.ref,
      output: flags.output ?? process.stdout,
      history: parseHistory(flags.history),
      from: flags.from,
      onProgress: (p) => progress.update(`pack: ${p.blocks} blocks, ${bytes(p.bytes)} of ~${bytes(p.totalBytes)}`),
    })
    progress.done()
    if (!this.jsonEnabled()) {
      if (flags.output === undefined) process.stderr.write(`${result.root}\ntree ${result.tree}\n`)
      else {
        this.log(`${result.root}  ${result.blocks} blocks, ${bytes(result.bytes)} → ${result.file}`)
        this.log(`tree ${result.tree}`)
      }
    }
    return result
  }
}
