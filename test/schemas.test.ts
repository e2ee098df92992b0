import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import { formatErrors, packageRoot, validateWith } from '../src/schemas.js'
// @ts-expect-error: a plain JS build script, without type declarations
import { generate, OUTPUT } from '../bin/compile-schemas.js'

const link = { '/': 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e' }

/** Values to validate, valid and not, per precompiled schema. */
const samples: [string, unknown][] = [
  ['card.schema.json', { cardVersion: 1, name: 'd' }],
  ['card.schema.json', { cardVersion: 2, name: '-d', extra: true }],
  ['card.schema.json', { cardVersion: 1, name: 'd', shards: [{ glob: '' }], provenance: { seed: 1.5 } }],
  ['card.schema.json', 'not an object'],
  [
    'version.schema.json',
    {
      type: 'cairn.version',
      v: 1,
      name: 'd',
      parent: null,
      created: '2026-01-01T00:00:00Z',
      message: '',
      profile: 'unixfs-v1-2025',
      card: link,
      index: link,
      tree: link,
      totals: { shards: 0, bytes: 0, rows: 0 },
    },
  ],
  ['version.schema.json', { type: 'cairn.version', v: 1, parent: 'bafy', created: 'yesterday', totals: { shards: -1 } }],
  ['index-node.schema.json', { type: 'cairn.index', v: 1, level: 0, entries: [{ path: 'a.bin', cid: link, size: 1, format: 'bytes' }] }],
  ['index-node.schema.json', { type: 'cairn.index', v: 1, level: 0, entries: [{ path: '../a', cid: 'x', size: -1, format: 'zip' }] }],
  ['shard-schema.schema.json', { type: 'cairn.schema', v: 1, format: 'csv', fields: [] }],
  ['shard-schema.schema.json', { type: 'cairn.schema', v: 1, format: 'bytes' }],
  [
    'anchor-receipt.schema.json',
    {
      receiptVersion: 1,
      version: link,
      chainId: 31337,
      contract: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
      txHash: `0x${'ab'.repeat(32)}`,
      blockNumber: 2,
      blockHash: `0x${'cd'.repeat(32)}`,
      logIndex: 0,
      sender: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266',
      blockTime: '2026-12-07T21:44:23.000Z',
      anchoredAt: '2026-12-07T21:44:24.123Z',
      datasetName: 'tiny-instruct',
      parentVersion: null,
      args: { dataset: `0x${'01'.repeat(32)}`, version: `0x${'02'.repeat(32)}`, parent: `0x${'00'.repeat(32)}`, sequence: 1 },
    },
  ],
  ['anchor-receipt.schema.json', { receiptVersion: 1, version: link, chainId: 0, txHash: '0xAB', blockNumber: 'twelve', extra: true }],
  [
    'release-predicate.schema.json',
    {
      dataset: 'd',
      version: link['/'],
      parent: null,
      created: '2026-01-01T00:00:00Z',
      card: link['/'],
      index: link['/'],
      tree: link['/'],
      totals: { shards: 0, bytes: 0, rows: 0 },
      provenance: null,
      publisher: { keyId: '0'.repeat(64), ipnsName: 'k51qzi5uqu5dkt6xwxvrjwix33xwq74zgedgbu6dvn3x7xu4wdduvppdz8ilkt' },
    },
  ],
  ['release-predicate.schema.json', { dataset: '', version: link, parent: 'x', totals: { shards: -1 }, publisher: { keyId: 'AB' } }],
]

describe('precompiled schemas', () => {
  it('src/schemas.generated.ts is compiled from the current schemas/ (else run `npm run schemas`)', () => {
    expect(readFileSync(OUTPUT, 'utf8') === (generate() as string), 'src/schemas.generated.ts is stale: run `npm run schemas`').toBe(true)
  })

  // the oracle: the same schemas compiled at run time by ajv
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true })
  for (const name of readdirSync(join(packageRoot, 'schemas')).filter((n) => n.endsWith('.schema.json'))) {
    ajv.addSchema(JSON.parse(readFileSync(join(packageRoot, 'schemas', name), 'utf8')) as object)
  }

  it.each(samples)('%s: the same verdict and errors as ajv at run time (#%#)', (name, value) => {
    const validate = ajv.getSchema(`https://cairn.dev/schemas/${name}`)!
    const expected = validate(value) ? [] : formatErrors(validate.errors)
    expect(validateWith(name, value)).toEqual(expected)
  })

  it('has a valid and an invalid sample for every persisted schema but the shared definitions', () => {
    const names = readdirSync(join(packageRoot, 'schemas')).filter((n) => n.endsWith('.schema.json') && n !== 'defs.schema.json')
    for (const name of names) {
      const verdicts = samples.filter(([n]) => n === name).map(([n, v]) => validateWith(n, v).length === 0)
      expect(verdicts, name).toContain(true)
      expect(verdicts, name).toContain(false)
    }
  })
})
