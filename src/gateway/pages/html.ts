/**
 * Server-rendered HTML: every text that comes from outside (file names, card fields, cell values,
 * commit messages) goes through {@link esc}, so a card holding `<script>` shows as text. No script
 * is needed to read a page; the layout fits a phone's width (wide tables scroll on their own).
 */

/** Escapes text for HTML element content and double-quoted attribute values. */
export function esc(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
}

/** A path's segments percent-encoded for an href (each segment on its own, `/` kept between). */
export function hrefPath(path: string): string {
  return path
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/')
}

/** Bytes for people: 1.5 MiB. */
export function size(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`
}

/** A whole page around `body` (already escaped HTML). */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:72rem;padding:1rem;color:#1b1f24;background:#fff;overflow-wrap:anywhere}
h1{font-size:1.5rem;margin:.2rem 0 .6rem}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #d8dee4;padding-bottom:.2rem}
code,.cid{font:12.5px ui-monospace,SFMono-Regular,Menlo,monospace}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:13.5px;min-width:100%}
th,td{border:1px solid #d8dee4;padding:.25rem .5rem;text-align:left;vertical-align:top;white-space:nowrap}
td.wrap{white-space:normal;min-width:12rem}
th{background:#f6f8fa}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#57606a}.card dt{font-weight:600}.card dd{margin:0 0 .5rem 0;white-space:pre-wrap}
.added{color:#116329}.removed{color:#a40e26}.modified{color:#9a6700}.renamed{color:#0550ae}
nav a{margin-right:.6rem}
</style>
</head>
<body>
${body}
</body>
</html>
`
}
