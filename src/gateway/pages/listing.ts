/** The listing of a plain UnixFS directory (HTML, or JSON), at most {@link MAX_ENTRIES} entries. */
import { listDirectory } from '../../cat.js'
import type { CID } from '../../cid.js'
import type { BlockSource } from '../../store/blocks.js'
import { esc, page } from './html.js'

export const MAX_ENTRIES = 10_000

/** One entry of a listing. */
export interface ListingEntry {
  readonly name: string
  readonly cid: string
}

/** The first {@link MAX_ENTRIES} entries of the directory `cid` (plain or HAMT), and whether there are more. */
export async function listing(source: BlockSource, cid: CID): Promise<{ entries: ListingEntry[]; truncated: boolean }> {
  const entries: ListingEntry[] = []
  for await (const e of listDirectory(source, cid)) {
    if (entries.length >= MAX_ENTRIES) return { entries, truncated: true }
    entries.push({ name: e.name, cid: e.cid.toString() })
  }
  return { entries, truncated: false }
}

/**
 * The HTML listing of `/ipfs/<root>/<segments>/`: breadcrumbs, a `..` link below the root, each
 * entry's name linking to its path and its CID linking to the CID alone.
 */
export function renderListing(root: string, segments: readonly string[], list: { entries: ListingEntry[]; truncated: boolean }): string {
  const enc = (parts: readonly string[]): string => parts.map((s) => encodeURIComponent(s)).join('/')
  const here = `/ipfs/${root}${segments.length > 0 ? '/' + enc(segments) : ''}`
  const crumbs = [`<a href="/ipfs/${esc(root)}">${esc(root)}</a>`]
  segments.forEach((s, i) => crumbs.push(`<a href="/ipfs/${esc(root)}/${esc(enc(segments.slice(0, i + 1)))}">${esc(s)}</a>`))
  const rows: string[] = []
  if (segments.length > 0) rows.push(`<tr><td><a href="${esc(here)}/..">..</a></td><td></td></tr>`)
  for (const e of list.entries) {
    rows.push(
      `<tr><td><a href="${esc(here)}/${esc(encodeURIComponent(e.name))}">${esc(e.name)}</a></td>` +
        `<td><a class="cid" href="/ipfs/${esc(e.cid)}?filename=${esc(encodeURIComponent(e.name))}">${esc(e.cid)}</a></td></tr>`,
    )
  }
  const more = list.truncated ? `<p class="muted">The first ${MAX_ENTRIES} entries.</p>` : ''
  return page(
    `Index of ${here}`,
    `<h1>Index of /ipfs/${crumbs.join('/')}</h1><div class="scroll"><table><thead><tr><th>name</th><th>CID</th></tr></thead><tbody>${rows.join('\n')}</tbody></table></div>${more}`,
  )
}
