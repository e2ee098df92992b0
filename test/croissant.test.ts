/**
 * `export croissant` and `build --croissant`: the document is checked against the Croissant 1.1
 * specification's text (test/helpers/croissant-spec.ts), every `sha256` against `sha256sum` of the
 * file, every `contentUrl` fetched through `cairn serve` on loopback, and a second export reads no data.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Writable } from 'node:stream'
import { build, cat, serve, type ServeHandle } from '../src/index.js'
import { validateWith } from '../src/schemas.js'
import { cairn, parseJson } from './helpers/cli.js'
import { croissantViolations } from './helpers/croissant-spec.js'
import { FIXED_DATE, jsonl, makeDataset, seededBytes, tempDir, type TempDataset } from './helpers/dataset.js'

type Doc = Record<string, unknown> & { distribution: Record<string, string>[]; recordSet: Record<string, unknown>[] }

function sha256sum(file: string): string {
  return execFileSync('sha256sum', ['-b', file], { stdio: ['ignore', 'pipe', 'pipe'] })
    .toString()
    .split(' ')[0]
}

const card = {
  cardVersion: 1,
  name: 'croissant-test',
  description: 'A small dataset exported as Croissant.',
  license: 'CC-BY-4.0',
  authors: ['Ada Lovelace'],
  provenance: {
    generator: 'gen.mjs',
    model: { name: 'tiny-lm', digest: `sha256:${'cd'.repeat(32)}` },
    promptTemplate: { path: 'prompt.txt' },
    seed: 42,
  },
  rai: { dataLimitations: 'Synthetic rows only.', hasSyntheticData: true },
  shards: [
    { glob: 'train/*.jsonl', primaryKey: ['id'] },
    { glob: 'scores.csv', primaryKey: ['id', 'run'] },
  ],
}

describe('export croissant', () => {
  let ds: TempDataset
  let gateway: ServeHandle
  let version: string
  const rows = Array.from({ length: 50 }, (_, i) => ({ id: i, text: `t${i}`, score: i / 10, ok: i % 3 === 0 }))

  beforeAll(async () => {
    ds = await makeDataset(
      {
        'train/a.jsonl': jsonl(rows.slice(0, 25)),
        'train/b.jsonl': jsonl(rows.slice(25)),
        'scores.csv': 'id,run,value\n1,1,0.5\n2,1,0.25\n',
        'prompt.txt': 'Write a row.',
        'weights/big file.bin': seededBytes(3 * 1024 * 1024 + 99, 'croissant-big'),
      },
      { card },
    )
    version = (await build({ dir: ds.dir, date: FIXED_DATE, message: 'v1' })).version.toString()
    gateway = await serve({ dir: ds.dir, port: 0 })
  })
  afterAll(async () => {
    await gateway?.close()
    await ds?.cleanup()
  })

  let doc: Doc
  it('writes a document that meets the Croissant 1.1 rules, --json validating against its schema', async () => {
    const out = join(await tempDir(), 'metadata.json')
    const r = await cairn(['export', 'croissant', '-C', ds.dir, '--gateway', gateway.url, '-o', out, '--json'])
    expect(r.exitCode, r.stderr).toBe(0)
    const json = parseJson<{ hashed: number; files: number; warnings: string[]; document: Doc }>(r)
    expect(validateWith('cli/export-croissant.schema.json', json)).toEqual([])
    doc = JSON.parse(await readFile(out, 'utf8')) as Doc
    expect(doc).toEqual(json.document)
    expect(croissantViolations(doc)).toEqual([])
    expect(json.files).toBe(5)
    expect(json.warnings).toEqual([])
    // the one file larger than a block was read for its sha256; the others' digests are in their CIDs
    expect(json.hashed).toBe(1)
    expect(doc['dct:conformsTo']).toBe('http://mlcommons.org/croissant/1.1')
    expect(doc.sameAs).toBe(`ipfs://${version}`)
    expect(doc.version).toBe(version)
    expect(doc.license).toBe('https://spdx.org/licenses/CC-BY-4.0.html')
    expect(doc.creator).toEqual([{ '@type': 'sc:Person', name: 'Ada Lovelace' }])
    expect(doc['rai:dataLimitations']).toBe('Synthetic rows only.')
    expect(doc['rai:hasSyntheticData']).toBe(true)
  })

  it('gives each file the sha256 that sha256sum prints, its size, and its CID', async () => {
    const files = doc.distribution.filter((d) => d['@type'] === 'cr:FileObject')
    expect(files.map((f) => f.name).sort()).toEqual(['prompt.txt', 'scores.csv', 'train/a.jsonl', 'train/b.jsonl', 'weights/big file.bin'])
    const ls = parseJson<{ path: string; cid: { '/': string }; size: number }[]>(await cairn(['ls', '-C', ds.dir, '--json']))
    for (const f of files) {
      expect(f.sha256, f.name).toBe(sha256sum(join(ds.dir, f.name)))
      const entry = ls.find((e) => e.path === f.name)!
      expect(f.sameAs).toBe(`ipfs://${entry.cid['/']}`)
      expect(f.contentSize).toBe(`${entry.size} B`)
    }
    expect(files.find((f) => f.name === 'scores.csv')!.encodingFormat).toBe('text/csv')
    expect(files.find((f) => f.name === 'train/a.jsonl')!.encodingFormat).toBe('application/jsonlines')
  })

  it("has a RecordSet per shard rule, fields typed from the shard schemas, keyed by the card's primaryKey", () => {
    const [train, scores] = doc.recordSet as {
      '@id': string
      key: unknown
      field: { '@id': string; dataType: string; source: Record<string, unknown> }[]
    }[]
    expect(train.key).toEqual({ '@id': 'records-0/id' })
    expect(Object.fromEntries(train.field.map((f) => [f['@id'], f.dataType]))).toEqual({
      'records-0/id': 'sc:Integer',
      'records-0/text': 'sc:Text',
      'records-0/score': 'sc:Float',
      'records-0/ok': 'sc:Boolean',
    })
    // two shards: a FileSet with the rule's glob
    expect(train.field[0].source).toEqual({ fileSet: { '@id': 'records-0-files' }, extract: { column: 'id' } })
    expect(doc.distribution.find((d) => d['@id'] === 'records-0-files')).toMatchObject({ '@type': 'cr:FileSet', includes: 'train/*.jsonl' })
    expect(scores.key).toEqual([{ '@id': 'records-1/id' }, { '@id': 'records-1/run' }])
    expect(scores.field[2].source).toEqual({ fileObject: { '@id': 'scores.csv' }, extract: { column: 'value' } })
  })

  it('states provenance in PROV-O: the generation with model weights by digest and the prompt file', () => {
    const activity = doc['prov:wasGeneratedBy'] as Record<string, unknown>
    expect(activity['@type']).toBe('prov:Activity')
    expect(activity['prov:wasAssociatedWith']).toEqual([
      { '@type': 'prov:SoftwareAgent', 'prov:label': 'gen.mjs' },
      { '@type': 'prov:SoftwareAgent', 'prov:label': 'tiny-lm', sha256: 'cd'.repeat(32) },
    ])
    expect(activity['prov:used']).toEqual([
      {
        '@type': 'prov:Entity',
        'prov:label': 'prompt template',
        '@id': 'prompt.txt',
        contentUrl: `${gateway.url}/ipfs/${version}/tree/prompt.txt`,
      },
    ])
    expect(activity.additionalProperty).toEqual([{ '@type': 'sc:PropertyValue', name: 'seed', 'sc:value': 42 }])
    // a first version: nothing to derive from
    expect(doc['prov:wasDerivedFrom']).toBeUndefined()
  })

  it('every contentUrl resolves through cairn serve to the same bytes', async () => {
    for (const f of doc.distribution.filter((d) => d['@type'] === 'cr:FileObject')) {
      const expected = await readFile(join(ds.dir, f.name))
      expect(f.contentUrl).toBe(`${gateway.url}/ipfs/${version}/tree/${f.name.split('/').map(encodeURIComponent).join('/')}`)
      // the plain path gateway answers the file's bytes at its standard address, each block verified
      const direct = await fetch(f.contentUrl)
      expect(direct.status, f.name).toBe(200)
      const bytes = Buffer.from(await direct.arrayBuffer())
      expect(bytes.equals(expected), f.name).toBe(true)
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(f.sha256)
    }
  })

  it('hashes once: a second export reads no data and gives the same document', async () => {
    const r = await cairn(['export', 'croissant', '-C', ds.dir, '--gateway', gateway.url, '--json'])
    const json = parseJson<{ hashed: number; document: Doc }>(r)
    expect(json.hashed).toBe(0)
    expect(json.document).toEqual(doc)
  })

  it('names the parent and derivedFrom releases as prov:wasDerivedFrom ipfs:// IRIs, with the role', async () => {
    const derived = await makeDataset(
      { 'x.jsonl': jsonl(rows.slice(0, 5)) },
      {
        card: {
          ...card,
          name: 'derived',
          provenance: undefined,
          derivedFrom: [{ release: { '/': version }, role: 'filtered-from', select: ['train/*.jsonl'] }],
        },
      },
    )
    try {
      const v1 = (await build({ dir: derived.dir, date: FIXED_DATE, from: [gateway.url] })).version.toString()
      await derived.write({ 'y.jsonl': jsonl(rows.slice(5, 8)) })
      await build({ dir: derived.dir, date: FIXED_DATE, from: [gateway.url] })
      const r = await cairn(['export', 'croissant', '-C', derived.dir, '--gateway', gateway.url, '--json'])
      const d = parseJson<{ document: Doc; warnings: string[] }>(r).document
      expect(croissantViolations(d)).toEqual([])
      expect(d['prov:wasDerivedFrom']).toEqual([{ '@id': `ipfs://${v1}` }, { '@id': `ipfs://${version}` }])
      expect(d['prov:qualifiedDerivation']).toEqual([
        {
          '@type': 'prov:Derivation',
          'prov:entity': { '@id': `ipfs://${version}` },
          'prov:hadRole': { '@type': 'prov:Role', 'prov:label': 'filtered-from' },
          includes: ['train/*.jsonl'],
        },
      ])
    } finally {
      await derived.cleanup()
    }
  })

  it('warns of the required properties a card lacks', async () => {
    const bare = await makeDataset({ 'a.txt': 'a' }, { card: { cardVersion: 1, name: 'bare' } })
    try {
      await build({ dir: bare.dir, date: FIXED_DATE })
      const r = await cairn(['export', 'croissant', '-C', bare.dir, '--gateway', gateway.url])
      expect(r.exitCode).toBe(0)
      expect(r.stderr).toMatch(/warning: license: the card has none/)
      expect(r.stderr).toMatch(/warning: creator/)
      expect(JSON.parse(r.stdout)).toMatchObject({ name: 'bare', description: 'bare' })
    } finally {
      await bare.cleanup()
    }
  })
})

describe('build --croissant', () => {
  it('puts the document into the release as croissant.json, describing every other file with its sha256', async () => {
    const ds = await makeDataset(
      { 'train/a.jsonl': jsonl([{ id: 1 }, { id: 2 }]), 'big.bin': seededBytes(1024 * 1024 + 5, 'bc') },
      { card: { ...card, provenance: undefined } },
    )
    try {
      const r = await cairn(['build', '-C', ds.dir, '--croissant', '--date', '2025-01-02T03:04:05Z', '--json'])
      expect(r.exitCode, r.stderr).toBe(0)
      const result = parseJson<{ version: { '/': string }; croissant: string }>(r)
      expect(validateWith('cli/build.schema.json', result)).toEqual([])
      const ls = parseJson<{ path: string }[]>(await cairn(['ls', '-C', ds.dir, '--json']))
      expect(ls.map((e) => e.path)).toContain('croissant.json')
      // the document in the release is the file on disk
      const parts: Buffer[] = []
      const output = new Writable({
        write(chunk: Buffer, _enc, done) {
          parts.push(chunk)
          done()
        },
      })
      await cat({ cid: `${result.version['/']}/croissant.json`, from: [ds.dir], output })
      const inRelease = JSON.parse(Buffer.concat(parts).toString('utf8')) as Doc
      expect(inRelease).toEqual(JSON.parse(await readFile(join(ds.dir, 'croissant.json'), 'utf8')))
      expect(croissantViolations(inRelease, { relativeUrls: true })).toEqual([])
      const files = inRelease.distribution.filter((d) => d['@type'] === 'cr:FileObject')
      expect(files.map((f) => f.name).sort()).toEqual(['big.bin', 'train/a.jsonl'])
      for (const f of files) {
        expect(f.contentUrl).toBe(f.name)
        expect(f.sha256).toBe(sha256sum(join(ds.dir, f.name)))
      }
      // a second build changes nothing, whatever the clock says
      const again = parseJson<{ unchanged: boolean; version: { '/': string } }>(
        await cairn(['build', '-C', ds.dir, '--croissant', '--json']),
      )
      expect(again.unchanged).toBe(true)
      expect(again.version).toEqual(result.version)
      // a changed file: a new document, describing the new bytes
      await ds.write({ 'train/a.jsonl': jsonl([{ id: 1 }, { id: 2 }, { id: 3 }]) })
      const third = parseJson<{ unchanged: boolean }>(await cairn(['build', '-C', ds.dir, '--croissant', '--json']))
      expect(third.unchanged).toBe(false)
      const doc3 = JSON.parse(await readFile(join(ds.dir, 'croissant.json'), 'utf8')) as Doc
      expect(doc3.distribution.find((f) => f.name === 'train/a.jsonl')!.sha256).toBe(sha256sum(join(ds.dir, 'train/a.jsonl')))
      expect(parseJson<{ unchanged: boolean }>(await cairn(['build', '-C', ds.dir, '--croissant', '--json'])).unchanged).toBe(true)
    } finally {
      await ds.cleanup()
    }
  })
})

describe('export croissant, the command', () => {
  it('--help lists examples', async () => {
    const r = await cairn(['export', 'croissant', '--help'])
    expect(r.exitCode).toBe(0)
    expect(r.stdout.split('\nEXAMPLES\n')[1]).toContain('cairn export croissant -o metadata.json')
  })

  it('outside a dataset: exit 3 with a hint, nothing written', async () => {
    const dir = await tempDir()
    const r = await cairn(['export', 'croissant', '-C', dir, '-o', join(dir, 'm.json'), '--json'])
    expect(r.exitCode).toBe(3)
    expect(parseJson<{ error: { code: string } }>(r).error.code).toBe('NOT_A_DATASET')
  })
})

describe('the specification checks themselves', () => {
  it('find what a broken document lacks', () => {
    const broken = {
      '@context': { '@vocab': 'http://schema.org/' },
      '@type': 'sc:Dataset',
      name: 'x',
      distribution: [{ '@type': 'cr:FileObject', '@id': 'a', name: 'a', contentUrl: 'not a url', sha256: 'placeholder', bogus: 1 }],
      recordSet: [
        {
          '@type': 'cr:RecordSet',
          '@id': 'r',
          key: { '@id': 'r/nope' },
          field: [{ '@type': 'cr:Field', '@id': 'r/f', dataType: 'sc:Text', source: { fileObject: { '@id': 'b' } } }],
        },
      ],
    }
    const found = croissantViolations(broken).join('\n')
    for (const expected of [
      /@context: cr is undefined/,
      /dct:conformsTo: does not name/,
      /description: required/,
      /license: required/,
      /creator: required/,
      /datePublished: required/,
      /contentUrl is not a URL/,
      /sha256 "placeholder" is not a sha256 checksum/,
      /key .* is not one of its fields/,
      /sources "b", not a resource/,
      /\/distribution\/0\/bogus: not a term/,
    ]) {
      expect(found).toMatch(expected)
    }
  })
})
