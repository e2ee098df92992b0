/**
 * Checks of a Croissant 1.1 document written from the specification's text (mlcommons/croissant,
 * docs/croissant-spec-1.1.md, "Croissant Format Specification, Version 1.1"), not from cairn's code:
 * the reference validator (Python `mlcroissant`) cannot be installed here. Each check quotes the rule
 * it enforces. Returns every violation found (an empty list for a conforming document).
 */

/** Appendix 1 of the specification: the recommended JSON-LD context, term by term. */
export const SPEC_CONTEXT: Readonly<Record<string, unknown>> = {
  '@language': 'en',
  '@vocab': 'http://schema.org/',
  sc: 'http://schema.org/',
  cr: 'http://mlcommons.org/croissant/',
  rai: 'http://mlcommons.org/croissant/RAI/',
  dct: 'http://purl.org/dc/terms/',
  annotation: 'cr:annotation',
  arrayShape: 'cr:arrayShape',
  citeAs: 'cr:citeAs',
  column: 'cr:column',
  conformsTo: 'dct:conformsTo',
  containedIn: 'cr:containedIn',
  data: { '@id': 'cr:data', '@type': '@json' },
  dataType: { '@id': 'cr:dataType', '@type': '@vocab' },
  equivalentProperty: 'cr:equivalentProperty',
  examples: { '@id': 'cr:examples', '@type': '@json' },
  excludes: 'cr:excludes',
  extract: 'cr:extract',
  field: 'cr:field',
  fileProperty: 'cr:fileProperty',
  fileObject: 'cr:fileObject',
  fileSet: 'cr:fileSet',
  format: 'cr:format',
  includes: 'cr:includes',
  isArray: 'cr:isArray',
  isLiveDataset: 'cr:isLiveDataset',
  jsonPath: 'cr:jsonPath',
  key: 'cr:key',
  md5: 'cr:md5',
  parentField: 'cr:parentField',
  recordSet: 'cr:recordSet',
  references: 'cr:references',
  regex: 'cr:regex',
  readLines: 'cr:readLines',
  sdVersion: 'cr:sdVersion',
  separator: 'cr:separator',
  source: 'cr:source',
  subField: 'cr:subField',
  transform: 'cr:transform',
  unArchive: 'cr:unArchive',
  value: 'cr:value',
}

/** "Commonly used atomic data types" and the ML types the specification lists. */
const DATA_TYPES = new Set([
  'sc:Boolean',
  'sc:Date',
  'sc:Time',
  'sc:DateTime',
  'sc:Float',
  'sc:Integer',
  'sc:Text',
  'sc:URL',
  'sc:ImageObject',
  'sc:VideoObject',
  'cr:BoundingBox',
  'cr:Split',
  'cr:Label',
])

/** schema.org properties the specification's tables name (Dataset, FileObject, FileSet, Person), and additionalProperty. */
const SCHEMA_ORG_TERMS = new Set([
  'name',
  'description',
  'license',
  'url',
  'creator',
  'datePublished',
  'keywords',
  'publisher',
  'version',
  'dateCreated',
  'dateModified',
  'sameAs',
  'sdLicense',
  'inLanguage',
  'distribution',
  'contentUrl',
  'contentSize',
  'encodingFormat',
  'sha256',
  'usageInfo',
  'additionalProperty',
])

type Obj = Record<string, unknown>

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v)
const many = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v])
const isUrl = (v: unknown): boolean => {
  if (typeof v !== 'string') return false
  try {
    new URL(v)
    return true
  } catch {
    return false
  }
}

/** Every violation of the checked rules in `doc`. `options.relativeUrls`: contentUrl may be relative (a document inside its dataset). */
export function croissantViolations(doc: unknown, options: { readonly relativeUrls?: boolean } = {}): string[] {
  const out: string[] = []
  if (!isObj(doc)) return ['the document is not a JSON object']
  // "@context ... A set of JSON-LD context definitions ... See the recommended JSON-LD context in Appendix 1."
  const context = doc['@context']
  if (!isObj(context)) out.push('@context: missing or not an object')
  else {
    for (const [term, value] of Object.entries(SPEC_CONTEXT)) {
      if (JSON.stringify(context[term]) !== JSON.stringify(value))
        out.push(`@context: ${term} is ${JSON.stringify(context[term])}, Appendix 1 says ${JSON.stringify(value)}`)
    }
    // "to use PROV-O ... their namespace should be first declared in the @context"
    const usesProv = JSON.stringify(doc).includes('"prov:')
    if (usesProv && context.prov !== 'http://www.w3.org/ns/prov#')
      out.push('@context: prov: is used but not declared as http://www.w3.org/ns/prov#')
  }
  // "The type of a croissant dataset must be schema.org/Dataset."
  if (doc['@type'] !== 'sc:Dataset' && doc['@type'] !== 'Dataset') out.push(`@type: ${JSON.stringify(doc['@type'])}, expected sc:Dataset`)
  // "Croissant datasets must declare that they conform to this specification ... "dct:conformsTo" : "http://mlcommons.org/croissant/1.1""
  const conforms = many(doc['dct:conformsTo'] ?? doc.conformsTo)
  if (!conforms.includes('http://mlcommons.org/croissant/1.1')) out.push('dct:conformsTo: does not name http://mlcommons.org/croissant/1.1')
  // Required: description, license, name, url, creator, datePublished (cardinalities ONE / MANY)
  if (typeof doc.name !== 'string' || doc.name === '') out.push('name: required Text, ONE')
  if (typeof doc.description !== 'string' || doc.description === '') out.push('description: required Text, ONE')
  const licenses = many(doc.license)
  if (licenses.length === 0 || !licenses.every((l) => isUrl(l) || isObj(l))) out.push('license: required, CreativeWork or URL')
  if (typeof doc.url !== 'string' || (!options.relativeUrls && !isUrl(doc.url))) out.push('url: required URL, ONE')
  const creators = many(doc.creator)
  if (
    creators.length === 0 ||
    !creators.every((c) => isObj(c) && ['sc:Person', 'sc:Organization', 'Person', 'Organization'].includes(c['@type'] as string))
  )
    out.push('creator: required, Organization or Person')
  if (typeof doc.datePublished !== 'string' || Number.isNaN(Date.parse(doc.datePublished)))
    out.push('datePublished: required Date or DateTime, ONE')
  // Recommended, checked when present: version (Number or Text, ONE), sameAs (URL, MANY)
  if (doc.version !== undefined && typeof doc.version !== 'string' && typeof doc.version !== 'number') out.push('version: Number or Text')
  for (const s of many(doc.sameAs)) if (!isUrl(s)) out.push(`sameAs: ${JSON.stringify(s)} is not a URL`)

  // "IDs must be unique within a Croissant dataset."
  const ids = new Map<string, number>()
  const collect = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(collect)
    else if (isObj(v)) {
      // an object with other properties than @id defines the ID; {"@id": …} alone is a reference
      if (typeof v['@id'] === 'string' && Object.keys(v).length > 1) ids.set(v['@id'], (ids.get(v['@id']) ?? 0) + 1)
      Object.values(v).forEach(collect)
    }
  }
  collect(doc.distribution)
  collect(doc.recordSet)
  for (const [id, n] of ids) if (n > 1) out.push(`@id ${JSON.stringify(id)} is defined ${n} times`)

  // "Croissant requires the distribution property to have values of type FileObject or FileSet."
  const distribution = many(doc.distribution)
  const resources = new Map<string, Obj>()
  for (const [i, r] of distribution.entries()) {
    if (!isObj(r) || (r['@type'] !== 'cr:FileObject' && r['@type'] !== 'cr:FileSet')) {
      out.push(`distribution[${i}]: not a cr:FileObject or cr:FileSet`)
      continue
    }
    if (typeof r['@id'] === 'string') resources.set(r['@id'], r)
    if (r['@type'] === 'cr:FileObject') {
      // FileObject: name (Text, ONE), contentUrl (URL, ONE), contentSize (Text, ONE, "Defaults to bytes if a unit is not specified"),
      // encodingFormat (Text, MANY, "given as a mime type"), sameAs (URL, MANY), sha256 (Text, ONE)
      if (typeof r.name !== 'string') out.push(`distribution[${i}]: name is required Text`)
      if (typeof r.contentUrl !== 'string' || (!options.relativeUrls && !isUrl(r.contentUrl)))
        out.push(`distribution[${i}]: contentUrl is not a URL`)
      if (typeof r.contentSize !== 'string' || !/^\d+(\s*(B|kB|KB|MB|GB|TB|KiB|MiB|GiB))?$/.test(r.contentSize))
        out.push(`distribution[${i}]: contentSize ${JSON.stringify(r.contentSize)} is not a size`)
      for (const f of many(r.encodingFormat))
        if (typeof f !== 'string' || !/^[a-z]+\/[A-Za-z0-9.+-]+$/.test(f))
          out.push(`distribution[${i}]: encodingFormat ${JSON.stringify(f)} is not a mime type`)
      if (typeof r.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(r.sha256))
        out.push(`distribution[${i}]: sha256 ${JSON.stringify(r.sha256)} is not a sha256 checksum`)
      for (const s of many(r.sameAs)) if (!isUrl(s)) out.push(`distribution[${i}]: sameAs ${JSON.stringify(s)} is not a URL`)
    } else {
      // FileSet: includes / excludes are glob patterns (Text, MANY)
      for (const g of [...many(r.includes), ...many(r.excludes)])
        if (typeof g !== 'string') out.push(`distribution[${i}]: includes/excludes must be Text`)
    }
  }

  // RecordSet: field (Field, MANY), key (Text, MANY: "fields whose values uniquely identify each record")
  for (const [i, rs] of many(doc.recordSet).entries()) {
    if (!isObj(rs) || rs['@type'] !== 'cr:RecordSet') {
      out.push(`recordSet[${i}]: not a cr:RecordSet`)
      continue
    }
    const fields = many(rs.field).filter(isObj)
    if (fields.length === 0) out.push(`recordSet[${i}]: no field`)
    const fieldIds = new Set(fields.map((f) => f['@id']))
    for (const k of many(rs.key)) {
      if (!isObj(k) || !fieldIds.has(k['@id'])) out.push(`recordSet[${i}]: key ${JSON.stringify(k)} is not one of its fields`)
    }
    for (const f of fields) {
      if (f['@type'] !== 'cr:Field') out.push(`recordSet[${i}]: a field is not a cr:Field`)
      // "we recommend prefixing their IDs with the ID of the containing object, with a '/' separator"
      if (typeof f['@id'] !== 'string' || !f['@id'].startsWith(`${String(rs['@id'])}/`))
        out.push(`recordSet[${i}]: field ${JSON.stringify(f['@id'])} is not prefixed by ${String(rs['@id'])}/`)
      for (const t of many(f.dataType))
        if (!DATA_TYPES.has(t as string)) out.push(`recordSet[${i}]: field ${String(f['@id'])} has dataType ${JSON.stringify(t)}`)
      // "source: DataSource or FileObject or FileSet ... fileObject: The name of the referenced FileObject"
      const src = f.source
      if (!isObj(src)) out.push(`recordSet[${i}]: field ${String(f['@id'])} has no source`)
      else {
        const ref = (isObj(src.fileObject) && src.fileObject['@id']) || (isObj(src.fileSet) && src.fileSet['@id'])
        if (typeof ref !== 'string' || !resources.has(ref))
          out.push(`recordSet[${i}]: field ${String(f['@id'])} sources ${JSON.stringify(ref)}, not a resource of the distribution`)
        else if (isObj(src.fileObject) && resources.get(ref)!['@type'] !== 'cr:FileObject')
          out.push(`recordSet[${i}]: fileObject ${ref} is a FileSet`)
        if (!isObj(src.extract) || typeof src.extract.column !== 'string')
          out.push(`recordSet[${i}]: field ${String(f['@id'])} extracts no column`)
      }
    }
  }
  // "Croissant terms should be prefixed with cr ... We use the JSON-LD context mechanism to define aliases":
  // every key is a JSON-LD keyword, a term of the context, a compact IRI with a declared prefix, or (through
  // @vocab) a schema.org property; for the last, the properties the specification names, and
  // additionalProperty ("Other properties from schema.org/Dataset or its parent classes can also be specified")
  if (isObj(context)) {
    const walk = (v: unknown, at: string): void => {
      if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${at}/${i}`))
      if (!isObj(v)) return
      for (const [k, x] of Object.entries(v)) {
        if (at === '' && k === '@context') continue
        const prefix = k.includes(':') ? k.slice(0, k.indexOf(':')) : undefined
        const ok =
          k.startsWith('@') || k in context || (prefix !== undefined && typeof context[prefix] === 'string') || SCHEMA_ORG_TERMS.has(k)
        if (!ok) out.push(`${at}/${k}: not a term of the context, a declared prefix, nor a schema.org property the specification names`)
        // @json values are data, not JSON-LD
        if (k !== 'data' && k !== 'examples') walk(x, `${at}/${k}`)
      }
    }
    walk(doc, '')
  }
  // PROV-O: "prov:wasDerivedFrom: Indicates that an entity ... was derived from another entity" (references by @id)
  for (const d of many(doc['prov:wasDerivedFrom']))
    if (!isObj(d) || !isUrl(d['@id'])) out.push(`prov:wasDerivedFrom: ${JSON.stringify(d)} is not an IRI reference`)
  const activity = doc['prov:wasGeneratedBy']
  if (activity !== undefined && (!isObj(activity) || activity['@type'] !== 'prov:Activity'))
    out.push('prov:wasGeneratedBy: not a prov:Activity')
  return out
}
