import { Args, Flags } from '@oclif/core'
import { CairnError } from '../src/errors.js'
import { bytes, CairnCommand, fromFlag } from './_base.js'
import { limitsFrom, maxEntriesFlag, maxFileBytesFlag } from './_limits.js'

export default class Clone extends CairnCommand {
  static override summary = 'Fetch a release (or any UnixFS file or directory) by CID, verifying every block.'
  static override description =
    'Sources (--from: gateway URLs, CAR files, dir:<path> folders, dataset folders; default: public trustless gateways) are asked at once: ' +
    'each block or file goes to the source answering fastest, one that is slow or stalls is hedged (another is asked too), and one that ' +
    'fails on a block (timeout, wrong bytes, an HTML page, a truncated CAR) is reported, dropped for a while, and its work done by the others. ' +
    'Each file is written to a temporary name and renamed when every block matched its CID. A cairn version becomes a dataset folder ' +
    '(cairn.json, .cairn/ with the metadata, HEAD at the version) where `cairn verify` and `cairn diff` work at once. ' +
    'Running the same clone again resumes it: files already complete are re-hashed and kept. The clone records its sources and ' +
    '--include/--exclude in .cairn/clone.json: log, show, ls fetch older versions from them, pack, publish and serve read the files ' +
    'it wrote. History (ancestors) is not fetched unless --history asks for it.'
  static override examples = [
    '<%= config.bin %> clone bafy… ./data',
    '<%= config.bin %> clone v2 ../data-v2',
    '<%= config.bin %> clone bafy… ./data --from http://127.0.0.1:8080 --from release.car',
    '<%= config.bin %> clone k51… ./data --from http://127.0.0.1:8080',
    "<%= config.bin %> clone bafy… ./data --include 'train/*' --exclude '*.tmp' --jobs 16 --json",
  ]
  static override args = {
    cid: Args.string({
      description:
        'a cairn version CID, any UnixFS file or directory CID, an IPNS name (k51…, /ipns/k51…, ipns://k51…), or in a dataset a ref (HEAD, HEAD~n, a tag)',
      required: true,
    }),
    dir: Args.string({ description: 'the folder to write (default: the dataset name, or the CID)' }),
  }
  static override flags = {
    from: fromFlag,
    jobs: Flags.integer({ char: 'j', summary: 'Files fetched at once (default 8).', min: 1 }),
    include: Flags.string({ summary: 'Clone only paths matching this glob (repeatable).', multiple: true, multipleNonGreedy: true }),
    exclude: Flags.string({ summary: 'Skip paths matching this glob (repeatable).', multiple: true, multipleNonGreedy: true }),
    'store-blocks': Flags.boolean({ summary: "Also keep every file's blocks in the clone's store (so pack/serve/publish work there)." }),
    timeout: Flags.integer({ summary: 'Seconds to wait for a gateway to answer (default 30).', min: 1 }),
    'max-entries': maxEntriesFlag,
    'max-file-bytes': maxFileBytesFlag,
    'allow-fork': Flags.boolean({ summary: 'Cloning by IPNS name: accept a version whose history does not hold the one seen before.' }),
    history: Flags.string({ summary: "Also fetch ancestors' releases into the store: all, or how many (default: none)." }),
  }

  async run() {
    const { args, flags } = await this.parse(Clone)
    const progress = this.progress()
    const { clone } = await import('../src/clone.js')
    const { parseHistory } = await import('../src/release/links.js')
    const { resolveAddress, sourcesFor } = await import('../src/address/index.js')
    const { looksLikeName } = await import('../src/names/name.js')
    // an IPNS name goes to clone as it is (resolved and validated there); a ref of the dataset at hand
    // (`cairn clone v2 ../v2-copy`) is resolved here, with that dataset's store as the first source
    const at = looksLikeName(args.cid) ? undefined : await resolveAddress(args.cid, { dir: flags.dir, findDataset: true })
    if (at !== undefined && at.path !== '')
      throw new CairnError('USAGE', `clone takes a version or a CID, not a path inside one (${args.cid})`)
    const result = await clone({
      cid: at === undefined ? args.cid : at.root.toString(),
      dir: args.dir,
      from: at?.dataset === undefined ? flags.from : sourcesFor(at, flags.from),
      jobs: flags.jobs,
      include: flags.include,
      exclude: flags.exclude,
      storeFileBlocks: flags['store-blocks'],
      limits: limitsFrom(flags),
      allowFork: flags['allow-fork'],
      history: parseHistory(flags.history),
      sourceOptions: flags.timeout === undefined ? undefined : { timeoutMs: flags.timeout * 1000, idleTimeoutMs: flags.timeout * 1000 },
      onProgress: (p) => {
        if (p.kind === 'metadata') progress.update(`clone: ${p.blocks} metadata blocks`)
        else if (p.kind === 'files')
          progress.update(`clone: ${p.files}/${p.totalFiles} files, ${bytes(p.bytes)}${p.totalBytes ? ` of ${bytes(p.totalBytes)}` : ''}`)
        else if (!this.jsonEnabled()) {
          progress.done()
          process.stderr.write(`warning: ${p.failure.message} (trying another source)\n`)
        }
      },
    })
    progress.done()
    if (!this.jsonEnabled()) {
      if (result.name) this.log(`/ipns/${result.name.name} (sequence ${result.name.sequence}, from ${result.name.from}) →`)
      this.log(`${result.cid} → ${result.dir}`)
      if (result.signatures) this.log(`  ${result.signatures} signature(s) kept in .cairn/signatures (check with cairn verify --signed-by)`)
      this.log(
        `  ${result.written} file(s) written (${bytes(result.bytes)}), ${result.skipped} already complete` +
          (result.excluded ? `, ${result.excluded} excluded` : '') +
          (result.resumed ? ' (resumed)' : ''),
      )
      for (const u of result.unsupported) this.log(`  skipped ${u.path}: ${u.reason}`)
    }
    return result
  }
}
