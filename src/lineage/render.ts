/**
 * The lineage graph as text for people, and as Graphviz DOT or Mermaid for a picture. Each is a pure
 * function of the graph: the same graph always gives the same text.
 */
import type { CID } from '../cid.js'
import type { LineageEdge, LineageGraph, LineageNode } from './graph.js'

/** Output formats of {@link renderLineage}. */
export type LineageFormat = 'text' | 'dot' | 'mermaid'

/** The graph in `format`, ending with a newline. */
export function renderLineage(graph: LineageGraph, format: LineageFormat): string {
  if (format === 'dot') return toDot(graph)
  if (format === 'mermaid') return toMermaid(graph)
  return toText(graph)
}

/** An indented tree from the root: each release once; a release seen before is named, not repeated. */
function toText(graph: LineageGraph): string {
  const byCid = new Map(graph.nodes.map((n) => [n.cid.toString(), n]))
  const out = new Map<string, LineageEdge[]>()
  for (const e of graph.edges) {
    const k = e.from.toString()
    out.set(k, [...(out.get(k) ?? []), e])
  }
  const lines: string[] = []
  const shown = new Set<string>()
  // an explicit stack, not recursion: a history of thousands of versions is a chain thousands deep
  const stack: { cid: CID; prefix: string; via: string }[] = [{ cid: graph.root, prefix: '', via: '' }]
  while (stack.length > 0) {
    const { cid, prefix, via } = stack.pop()!
    const key = cid.toString()
    const again = shown.has(key)
    lines.push(`${prefix}${via}${describe(cid, byCid.get(key))}${again ? ' (see above)' : ''}`)
    if (again) continue
    shown.add(key)
    const edges = out.get(key) ?? []
    for (let i = edges.length - 1; i >= 0; i--) {
      const e = edges[i]
      const label = e.kind === 'parent' ? 'parent: ' : `${e.role}${e.select ? ` [${e.select.join(', ')}]` : ''}: `
      stack.push({ cid: e.to, prefix: prefix + '  ', via: label })
    }
  }
  if (graph.truncated) lines.push('… (more lineage beyond --depth or the walk limit)')
  return lines.join('\n') + '\n'
}

function describe(cid: CID, node: LineageNode | undefined): string {
  if (node === undefined) return `${cid} (not read: beyond --depth)`
  if (!node.reachable) return `${cid} (unreachable: ${node.reason ?? 'no source holds it'})`
  return `${cid} ${node.name} ${node.created}${node.message ? ` "${node.message}"` : ''}`
}

function label(node: LineageNode | undefined, cid: CID): string {
  const short = shortCid(cid)
  if (node === undefined) return `${short}\\n(beyond depth)`
  if (!node.reachable) return `${short}\\n(unreachable)`
  return `${node.name}\\n${short}\\n${node.created?.slice(0, 10)}`
}

function shortCid(cid: CID): string {
  const s = cid.toString()
  return s.length > 16 ? `${s.slice(0, 8)}…${s.slice(-6)}` : s
}

/** Every CID of the graph in a stable order (nodes as walked, then targets not read). */
function allCids(graph: LineageGraph): CID[] {
  const seen = new Set<string>()
  const out: CID[] = []
  for (const c of [...graph.nodes.map((n) => n.cid), ...graph.edges.map((e) => e.to)]) {
    if (seen.has(c.toString())) continue
    seen.add(c.toString())
    out.push(c)
  }
  return out
}

function toDot(graph: LineageGraph): string {
  const byCid = new Map(graph.nodes.map((n) => [n.cid.toString(), n]))
  const lines = ['digraph lineage {', '  rankdir=BT;', '  node [shape=box, fontname="monospace"];']
  for (const cid of allCids(graph)) {
    const node = byCid.get(cid.toString())
    const style = node?.reachable === false ? ', style=dashed, color=gray' : cid.equals(graph.root) ? ', penwidth=2' : ''
    lines.push(`  ${dotId(cid)} [label=${dotString(label(node, cid))}${style}];`)
  }
  for (const e of graph.edges) {
    const l = e.kind === 'parent' ? 'parent' : e.role + (e.select ? `\\n${e.select.join(', ')}` : '')
    lines.push(`  ${dotId(e.from)} -> ${dotId(e.to)} [label=${dotString(l)}${e.kind === 'parent' ? ', style=dotted' : ''}];`)
  }
  lines.push('}')
  return lines.join('\n') + '\n'
}

function dotId(cid: CID): string {
  return `"${cid.toString()}"`
}

/** A DOT string: quotes and backslashes other than the `\n` line breaks escaped. */
function dotString(text: string): string {
  return '"' + text.replace(/\\(?!n)/g, '\\\\').replace(/"/g, '\\"') + '"'
}

function toMermaid(graph: LineageGraph): string {
  const byCid = new Map(graph.nodes.map((n) => [n.cid.toString(), n]))
  const ids = new Map<string, string>()
  allCids(graph).forEach((c, i) => ids.set(c.toString(), `n${i}`))
  const lines = ['flowchart BT']
  for (const cid of allCids(graph)) {
    const node = byCid.get(cid.toString())
    lines.push(`  ${ids.get(cid.toString())}["${mermaidText(label(node, cid)).replaceAll('\\n', '<br/>')}"]`)
  }
  for (const e of graph.edges) {
    const text = e.kind === 'parent' ? 'parent' : e.role + (e.select ? ` ${e.select.join(', ')}` : '')
    const arrow = e.kind === 'parent' ? '-.->' : '-->'
    lines.push(`  ${ids.get(e.from.toString())} ${arrow}|"${mermaidText(text)}"| ${ids.get(e.to.toString())}`)
  }
  for (const node of graph.nodes) if (!node.reachable) lines.push(`  style ${ids.get(node.cid.toString())} stroke-dasharray: 5 5`)
  return lines.join('\n') + '\n'
}

/** Mermaid label text: its quote and the characters Mermaid reads as markup, as entity codes. */
function mermaidText(text: string): string {
  return text.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;')
}
