/** The release page as HTML, from a {@link ReleaseView}. */
import { esc, hrefPath, page, size } from './html.js'
import { MAX_FILES, type ReleaseView } from './release.js'

/** Renders the release page. */
export function renderRelease(v: ReleaseView): string {
  const base = `/ipfs/${v.version}`
  const fileLink = (path: string): string => `${base}/tree/${hrefPath(path)}`
  const card = v.card
  const provenance = card.provenance ? JSON.stringify(card.provenance, null, 2) : undefined
  const parts: string[] = []
  parts.push(`<nav><a href="/">all versions</a><a href="${base}/tree/">files</a><a href="${base}?format=car">CAR</a></nav>`)
  parts.push(`<h1>${esc(card.name)}</h1>`)
  parts.push(`<p class="muted">version <code class="cid">${esc(v.version)}</code><br>${esc(v.created)} · ${esc(v.message)}</p>`)
  parts.push('<h2>Card</h2><dl class="card">')
  parts.push(`<dt>Name</dt><dd>${esc(card.name)}</dd>`)
  if (card.description !== undefined) parts.push(`<dt>Description</dt><dd>${esc(card.description)}</dd>`)
  if (card.license !== undefined) parts.push(`<dt>License</dt><dd>${esc(card.license)}</dd>`)
  if (card.authors !== undefined) parts.push(`<dt>Authors</dt><dd>${esc(card.authors.join(', '))}</dd>`)
  if (card.homepage !== undefined) parts.push(`<dt>Homepage</dt><dd>${esc(card.homepage)}</dd>`)
  if (provenance !== undefined) parts.push(`<dt>Provenance</dt><dd><code>${esc(provenance)}</code></dd>`)
  parts.push('</dl>')
  parts.push(
    `<h2>Totals</h2><p id="totals">${v.totals.shards.toLocaleString('en')} files · ${esc(size(v.totals.bytes))} · ${v.totals.rows.toLocaleString('en')} rows</p>`,
  )

  parts.push(
    '<h2>Files</h2><div class="scroll"><table id="files"><thead><tr><th>path</th><th>size</th><th>format</th><th>rows</th><th>CID</th></tr></thead><tbody>',
  )
  for (const f of v.files) {
    parts.push(
      `<tr><td><a href="${esc(fileLink(f.path))}" download>${esc(f.path)}</a></td><td class="n">${esc(size(f.size))}</td><td>${esc(f.format)}</td>` +
        `<td class="n">${f.rows === undefined ? '' : f.rows.toLocaleString('en')}</td><td><code class="cid">${esc(f.cid)}</code></td></tr>`,
    )
  }
  parts.push('</tbody></table></div>')
  if (v.filesTruncated)
    parts.push(`<p class="muted">The first ${MAX_FILES} files; browse them all under <a href="${base}/tree/">tree/</a>.</p>`)

  if (v.schemas.length > 0) {
    parts.push('<h2>Schemas</h2>')
    for (const s of v.schemas) {
      const users = v.files.filter((f) => f.schema === s.cid).map((f) => f.path)
      parts.push(
        `<p class="muted">${esc(s.format)} · <code class="cid">${esc(s.cid)}</code> · ${esc(users.slice(0, 5).join(', '))}${users.length > 5 ? ' …' : ''}</p>`,
      )
      parts.push('<div class="scroll"><table class="schema"><thead><tr><th>column</th><th>type</th><th>nullable</th></tr></thead><tbody>')
      for (const f of s.fields) parts.push(`<tr><td>${esc(f.name)}</td><td>${esc(f.type)}</td><td>${f.nullable ? 'yes' : 'no'}</td></tr>`)
      parts.push('</tbody></table></div>')
    }
  }

  if (v.previews.length > 0) {
    parts.push('<h2>Preview</h2>')
    for (const p of v.previews) {
      parts.push(`<h3><a href="${esc(fileLink(p.path))}">${esc(p.path)}</a> <span class="muted">(${esc(p.format)})</span></h3>`)
      if (p.skipped !== undefined) {
        parts.push(`<p class="muted">no preview: ${esc(p.skipped)}</p>`)
        continue
      }
      parts.push(`<div class="scroll"><table class="preview" data-path="${esc(p.path)}"><thead><tr>`)
      for (const c of p.columns) parts.push(`<th>${esc(c)}</th>`)
      parts.push('</tr></thead><tbody>')
      for (const row of p.rows)
        parts.push(`<tr>${row.map((c) => `<td class="wrap">${esc(c.length > 300 ? c.slice(0, 300) + '…' : c)}</td>`).join('')}</tr>`)
      parts.push('</tbody></table></div>')
    }
  }

  parts.push('<h2>History</h2><ol id="history">')
  parts.push(
    `<li><code class="cid">${esc(v.version)}</code> ${esc(v.created)} · ${esc(v.message)} <span class="muted">(this version)</span></li>`,
  )
  for (const h of v.history) {
    parts.push(
      `<li><a href="/ipfs/${esc(h.cid)}/"><code class="cid">${esc(h.cid)}</code></a> ${esc(h.created)} · ${esc(h.message)} · ${h.totals.shards} files</li>`,
    )
  }
  parts.push('</ol>')

  parts.push('<h2>Changes against the parent</h2><div id="diff">')
  if (v.diff !== undefined) {
    const c = v.diff.counts
    parts.push(
      `<p>against <a href="/ipfs/${esc(v.diff.parent)}/"><code class="cid">${esc(v.diff.parent)}</code></a>: ${c.added} added, ${c.removed} removed, ${c.modified} modified, ${c.renamed} renamed</p>`,
    )
    parts.push('<div class="scroll"><table><thead><tr><th>change</th><th>path</th><th>rows</th></tr></thead><tbody>')
    for (const s of v.diff.shards) {
      const rows = s.rows ? `+${s.rows.added} −${s.rows.removed} ~${s.rows.changed} (${s.rows.unchanged} unchanged)` : ''
      const path = s.from !== undefined ? `${s.from} → ${s.path}` : s.path
      parts.push(`<tr><td class="${esc(s.status)}">${esc(s.status)}</td><td>${esc(path)}</td><td>${esc(rows)}</td></tr>`)
    }
    parts.push('</tbody></table></div>')
    if (v.diff.card.length > 0)
      parts.push(`<p>card: ${v.diff.card.map((c) => `${esc(c.kind)} <code>${esc(c.path)}</code>`).join(', ')}</p>`)
  } else if (v.diffSkipped !== undefined) {
    parts.push(`<p class="muted">${esc(v.diffSkipped)}</p>`)
  } else {
    parts.push('<p class="muted">the first version: every file is new</p>')
  }
  parts.push('</div>')
  return page(`${card.name} · ${v.version}`, parts.join('\n'))
}
