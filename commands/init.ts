import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Args, Flags } from '@oclif/core'
import { CairnError } from '../src/errors.js'
import type { ShardRule } from '../src/manifest.js'
import type { StoreMode } from '../src/store/mode.js'
import { CairnCommand } from './_base.js'

export default class Init extends CairnCommand {
  static override summary = 'Make a folder a dataset: write cairn.json (the card) and create the store .cairn/.'
  static override description =
    'Writes the dataset card from flags, without prompts, and validates it against schemas/card.schema.json. ' +
    'An existing cairn.json is validated and kept. Row schemas (JSON Schema files) and primary keys are declared per shard glob.'
  static override examples = [
    '<%= config.bin %> init ./data --name tiny-instruct --license CC0-1.0 --author "Ada Lovelace"',
    '<%= config.bin %> init --generator gen.py --model llama-3-8b --seed 42 --param temperature=0.7',
    '<%= config.bin %> init --schema "**/*.jsonl=row.schema.json" --key "**/*.jsonl=id"',
    '<%= config.bin %> init ./data --store-mode reference',
  ]
  static override args = { dir: Args.directory({ description: 'the dataset folder (default: the current folder)' }) }
  static override flags = {
    name: Flags.string({ summary: 'Dataset name (default: the folder name).' }),
    description: Flags.string({ summary: 'What the dataset is.' }),
    license: Flags.string({ summary: 'SPDX license expression, e.g. CC-BY-4.0.' }),
    author: Flags.string({ summary: 'An author (repeatable).', multiple: true }),
    generator: Flags.string({ summary: 'Provenance: the program that generated the data.' }),
    model: Flags.string({ summary: 'Provenance: the model that generated the data.' }),
    'prompt-template': Flags.string({ summary: 'Provenance: the prompt template.' }),
    seed: Flags.string({ summary: 'Provenance: the random seed.' }),
    param: Flags.string({ summary: 'Provenance: a generation parameter key=value (repeatable).', multiple: true }),
    schema: Flags.string({ summary: 'A row schema: glob=path/to/schema.json (repeatable).', multiple: true }),
    key: Flags.string({ summary: 'A primary key: glob=col[,col…] (repeatable).', multiple: true }),
    'store-mode': Flags.string({
      summary: "How builds store the files' blocks: copy (default), reflink or reference (see `cairn store mode`).",
      options: ['copy', 'reflink', 'reference'],
    }),
  }

  async run() {
    const { args, flags } = await this.parse(Init)
    const seed = flags.seed !== undefined && /^-?\d+$/.test(flags.seed) ? Number(flags.seed) : flags.seed
    const { init } = await import('../src/dataset.js')
    const result = await init({
      dir: args.dir ?? flags.dir,
      name: flags.name,
      description: flags.description,
      license: flags.license,
      authors: flags.author,
      provenance: {
        generator: flags.generator,
        model: flags.model,
        promptTemplate: flags['prompt-template'],
        seed,
        parameters: flags.param ? Object.fromEntries(flags.param.map((p) => splitPair(p, 'param', parseValue))) : undefined,
      },
      shards: rules(flags.schema ?? [], flags.key ?? []),
      checkCard: true,
      storeMode: flags['store-mode'] as StoreMode | undefined,
    })
    if (flags['store-mode'] === 'reflink' && !this.jsonEnabled()) {
      const { probeReflink } = await import('../src/store/reflink-pack.js')
      const why = await probeReflink(join(result.dir, '.cairn'))
      if (why) this.warn(`store mode reflink: ${why}; builds will copy the files' blocks (see \`cairn store mode\`)`)
    }
    if (!this.jsonEnabled()) {
      this.log(
        result.restoredFrom
          ? `Wrote back cairn.json from HEAD (${result.restoredFrom}); the store and its history are kept`
          : result.cardWritten
            ? `Initialised dataset ${result.card.name} in ${result.dir}`
            : `Initialised the store in ${result.dir} (kept its cairn.json)`,
      )
    }
    return result
  }
}

function splitPair<T>(text: string, flag: string, value: (s: string) => T): [string, T] {
  const at = text.indexOf('=')
  if (at <= 0) throw new CairnError('USAGE', `--${flag} ${JSON.stringify(text)}: expected key=value`)
  return [text.slice(0, at), value(text.slice(at + 1))]
}

function parseValue(s: string): unknown {
  try {
    return JSON.parse(s)
  } catch {
    return s
  }
}

function rules(schemas: string[], keys: string[]): ShardRule[] {
  const byGlob = new Map<string, { glob: string; rowSchema?: Record<string, unknown>; primaryKey?: string[] }>()
  const rule = (glob: string) => byGlob.get(glob) ?? byGlob.set(glob, { glob }).get(glob)!
  for (const s of schemas) {
    const [glob, file] = splitPair(s, 'schema', (f) => f)
    try {
      rule(glob).rowSchema = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    } catch (e) {
      throw new CairnError('USAGE', `--schema ${glob}=${file}: cannot read a JSON Schema from ${file}: ${(e as Error).message}`)
    }
  }
  for (const k of keys) {
    const [glob, cols] = splitPair(k, 'key', (c) => c.split(',').filter(Boolean))
    rule(glob).primaryKey = cols
  }
  return [...byGlob.values()]
}
