import { Args, Flags } from '@oclif/core'
import type { LineageGraph } from '../src/lineage/graph.js'
import type { LineageFormat } from '../src/lineage/render.js'
import { CairnCommand, fromFlag } from './_base.js'

export default class Lineage extends CairnCommand {
  static override summary = 'Show the releases behind a release: its history (parent) and what it was made from (derivedFrom).'
  static override description =
    "Walks `parent` and the card's `derivedFrom` links breadth-first, reading each version and card from the store and the --from " +
    'sources (every block checked against its CID). A release no source holds is shown as unreachable, which is not an error. ' +
    'Prints an indented tree, or Graphviz DOT (`--format dot | dot -Tsvg`) or Mermaid for a picture; --json gives the graph.'
  static override examples = [
    '<%= config.bin %> lineage',
    '<%= config.bin %> lineage v2 --depth 1',
    '<%= config.bin %> lineage bafy… --from http://127.0.0.1:8080',
    '<%= config.bin %> lineage --format dot | dot -Tsvg > lineage.svg',
    '<%= config.bin %> lineage --format mermaid',
    '<%= config.bin %> lineage --json',
  ]
  static override args = { ref: Args.string({ description: 'a CID, HEAD, HEAD~n or a tag', default: 'HEAD' }) }
  static override flags = {
    from: fromFlag,
    depth: Flags.integer({ summary: 'Follow at most this many links from the release.', min: 0 }),
    format: Flags.string({ summary: 'Output as text, Graphviz DOT or Mermaid.', options: ['text', 'dot', 'mermaid'], default: 'text' }),
  }

  async run(): Promise<LineageGraph> {
    const { args, flags } = await this.parse(Lineage)
    const { lineage } = await import('../src/lineage/lineage.js')
    const { renderLineage } = await import('../src/lineage/render.js')
    const graph = await lineage({ dir: flags.dir, ref: args.ref, depth: flags.depth, from: flags.from })
    if (!this.jsonEnabled()) this.log(renderLineage(graph, flags.format as LineageFormat).trimEnd())
    return graph
  }
}
