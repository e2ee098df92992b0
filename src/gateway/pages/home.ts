/** The page on `/`: the dataset's versions (from HEAD back) and tags, each linking to its release page. */
import type { CID } from '../../cid.js'
import type { Dataset } from '../../dataset.js'
import { isCairnError } from '../../errors.js'
import type { Totals } from '../../manifest.js'
import type { BlockSource } from '../../store/blocks.js'
import { readVersion } from '../../version.js'
import { esc, page } from './html.js'

/** Versions listed on `/`. */
export const HOME_VERSIONS = 100

/** The content of `/`. */
export interface HomeView {
  readonly name?: string
  readonly head?: string
  readonly versions: readonly {
    readonly cid: string
    readonly created: string
    readonly message: string
    readonly totals: Totals
    readonly tags: readonly string[]
  }[]
  readonly tags: readonly { readonly name: string; readonly cid: string }[]
}

/** Gathers `/` from the dataset's refs (none when only `dir:` folders are served). */
export async function homeView(dataset: Dataset | undefined, source: BlockSource): Promise<HomeView> {
  if (dataset === undefined) return { versions: [], tags: [] }
  const tags = (await dataset.refs.tags()).map((t) => ({ name: t.name, cid: t.cid.toString() }))
  const head = await dataset.refs.head()
  const versions: { cid: string; created: string; message: string; totals: Totals; tags: string[] }[] = []
  let name: string | undefined
  let at: CID | null | undefined = head
  while (at && versions.length < HOME_VERSIONS) {
    let v
    try {
      v = await readVersion(source, at)
    } catch (e) {
      if (isCairnError(e, 'MISSING_BLOCK')) break
      throw e
    }
    name ??= v.name
    const cid = at.toString()
    versions.push({
      cid,
      created: v.created,
      message: v.message,
      totals: v.totals,
      tags: tags.filter((t) => t.cid === cid).map((t) => t.name),
    })
    at = v.parent
  }
  return { name, head: head?.toString(), versions, tags }
}

/** Renders `/`. */
export function renderHome(h: HomeView): string {
  const parts = [`<h1>${esc(h.name ?? 'cairn gateway')}</h1>`]
  if (h.versions.length === 0) parts.push('<p class="muted">No dataset versions here; content is served under /ipfs/{cid}.</p>')
  else {
    parts.push(
      '<h2>Versions</h2><div class="scroll"><table id="versions"><thead><tr><th>version</th><th>created</th><th>message</th><th>files</th><th>tags</th></tr></thead><tbody>',
    )
    for (const v of h.versions) {
      parts.push(
        `<tr><td><a href="/ipfs/${esc(v.cid)}/"><code class="cid">${esc(v.cid)}</code></a></td><td>${esc(v.created)}</td><td class="wrap">${esc(v.message)}</td>` +
          `<td class="n">${v.totals.shards}</td><td>${esc(v.tags.join(', '))}</td></tr>`,
      )
    }
    parts.push('</tbody></table></div>')
  }
  if (h.tags.length > 0) {
    parts.push('<h2>Tags</h2><ul id="tags">')
    for (const t of h.tags) parts.push(`<li><a href="/ipfs/${esc(t.cid)}/">${esc(t.name)}</a> <code class="cid">${esc(t.cid)}</code></li>`)
    parts.push('</ul>')
  }
  return page(h.name ?? 'cairn gateway', parts.join('\n'))
}
