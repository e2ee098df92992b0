/**
 * The library's public API (src/index.ts, the package's entry): the verbs, their options and results,
 * and the data model, nothing else (#19 part 6). Both lists are written out, so that any change to the
 * API shows up here as a reviewed diff. Values are read from the module as it loads; types, which leave
 * no trace at run time, from the TypeScript compiler's view of the same file.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import * as lib from '../src/index.js'
import { repoRoot } from './helpers/tmp.js'

/** Every value the entry exports: the verbs, and the data model's classes and constants. */
const VALUES = [
  'CID',
  'CairnError',
  'PROFILE',
  'RELEASE_PREDICATE_TYPE',
  'STORE_MODES',
  'anchor',
  'anchorCalldataFor',
  'anchors',
  'build',
  'buildWithCroissant',
  'cat',
  'check',
  'checkReferences',
  'clone',
  'compose',
  'deleteTag',
  'deployAnchorContract',
  'diff',
  'du',
  'exportCroissant',
  'gc',
  'headLog',
  'init',
  'isCairnError',
  'lineage',
  'listKeys',
  'log',
  'logHistory',
  'login',
  'ls',
  'namePublish',
  'nameResolve',
  'newKey',
  'pack',
  'prove',
  'publish',
  'published',
  'reset',
  'restore',
  'serve',
  'show',
  'sign',
  'status',
  'storeMode',
  'tag',
  'tags',
  'verify',
  'verifyAnchored',
  'verifyProof',
  'verifySignedBy',
]

/** Every type the entry exports: the verbs' options, progress and results, and the data model. */
const TYPES = [
  'AnchorArgs',
  'AnchorOptions',
  'AnchorProgress',
  'AnchorReceipt',
  'AnchorReport',
  'AnchorResult',
  'AnchorsOptions',
  'BlockSource',
  'BranchEntry',
  'BranchNode',
  'BuildOptions',
  'BuildProgress',
  'BuildResult',
  'CalldataOptions',
  'CalldataResult',
  'CarProblem',
  'CarReport',
  'Card',
  'CardState',
  'CatOptions',
  'CatResult',
  'ChangeCounts',
  'ChangeSummary',
  'ChangedRow',
  'CheckOptions',
  'CheckProgress',
  'CheckReport',
  'CloneOptions',
  'CloneProgress',
  'CloneResult',
  'CloneSkippedEntry',
  'ClonedName',
  'ComposeOptions',
  'ComposePart',
  'ComposeProgress',
  'ComposeResult',
  'ComposedPart',
  'ContractRecord',
  'CroissantDocument',
  'DagLimits',
  'DeployOptions',
  'DiffOptions',
  'DiffProgress',
  'DiffResult',
  'DuPart',
  'DuResult',
  'ErrorCode',
  'ExportCroissantOptions',
  'ExportCroissantResult',
  'Field',
  'FieldChange',
  'FolderReport',
  'FormatName',
  'FoundAnchor',
  'GatewayHandler',
  'GatewayOptions',
  'GcOptions',
  'GcResult',
  'HeadMove',
  'HeadMoveOp',
  'Hex',
  'History',
  'HistoryReport',
  'IndexNode',
  'InitOptions',
  'InitResult',
  'JsonLd',
  'KeyEntry',
  'KeyType',
  'LeafNode',
  'LineageEdge',
  'LineageGraph',
  'LineageNode',
  'LineageOptions',
  'Link',
  'LogEntry',
  'LogOptions',
  'LogResult',
  'LoginOptions',
  'LoginResult',
  'LostFile',
  'LsOptions',
  'ModifiedFile',
  'NamePublishOptions',
  'NamePublishResult',
  'NameResolveOptions',
  'NameResolveResult',
  'PackOptions',
  'PackProgress',
  'PackResult',
  'PlaceReport',
  'ProofReport',
  'ProveOptions',
  'ProveResult',
  'PublicKeyInfo',
  'PublishInput',
  'PublishOptions',
  'PublishProgress',
  'PublishedOptions',
  'Receipt',
  'ReferenceCheck',
  'ReleasePredicate',
  'RequestEntry',
  'ResetOptions',
  'ResetResult',
  'RestoreOptions',
  'RestoreResult',
  'RowDiff',
  'SchemaBlock',
  'SchemaChange',
  'ServeHandle',
  'ServeOptions',
  'ShardChange',
  'ShardEntry',
  'ShardRule',
  'ShardSchema',
  'ShardSide',
  'ShardState',
  'ShowOptions',
  'ShowResult',
  'SignOptions',
  'SignResult',
  'SignaturesReport',
  'SourceCheck',
  'SourceFailure',
  'SourceOptions',
  'StatusOptions',
  'StatusResult',
  'StoreMode',
  'StoreModeOptions',
  'StoreModeResult',
  'StoredShard',
  'TagEntry',
  'TagOptions',
  'Target',
  'TargetPublishOptions',
  'Totals',
  'ValueChange',
  'VerifyAnchoredOptions',
  'VerifyCarOptions',
  'VerifyFolderOptions',
  'VerifyReport',
  'VersionManifest',
  'VersionSide',
]

/** Values that are not verbs: the data model's classes and constants. */
const DATA_MODEL_VALUES = ['CID', 'CairnError', 'PROFILE', 'RELEASE_PREDICATE_TYPE']

/** The names the TypeScript compiler sees exported from src/index.ts, values and types alike. */
function compilerExports(): string[] {
  const entry = join(repoRoot, 'src', 'index.ts')
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    // the names come from the entry's own export lists: the modules they point at need not be read
    noResolve: true,
    types: [],
  })
  const checker = program.getTypeChecker()
  const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!
  return checker
    .getExportsOfModule(module)
    .map((s) => s.name)
    .sort()
}

describe('the public API', () => {
  it('exports exactly these values', () => {
    expect(Object.keys(lib).sort()).toEqual([...VALUES].sort())
  })

  it('every value but the data model is a verb: a function', () => {
    const record = lib as unknown as Record<string, unknown>
    const notFunctions = VALUES.filter((name) => typeof record[name] !== 'function' || DATA_MODEL_VALUES.includes(name))
    expect(notFunctions.sort()).toEqual(['PROFILE', 'RELEASE_PREDICATE_TYPE', 'STORE_MODES', 'CID', 'CairnError'].sort())
    expect(typeof lib.PROFILE).toBe('string')
    expect(typeof lib.RELEASE_PREDICATE_TYPE).toBe('string')
  })

  it('names every export (no `export *`, which would let a module widen the API unseen)', () => {
    expect(readFileSync(join(repoRoot, 'src', 'index.ts'), 'utf8')).not.toMatch(/export\s+\*/)
  })

  it('exports exactly these types', { timeout: 60_000 }, () => {
    const all = compilerExports()
    expect(all.filter((name) => !VALUES.includes(name))).toEqual([...TYPES].sort())
    // the compiler and the loaded module agree on the values
    expect(all.filter((name) => VALUES.includes(name))).toEqual([...VALUES].sort())
  })

  it('keeps internal helpers inside', () => {
    const record = lib as unknown as Record<string, unknown>
    for (const name of [
      'MAX_ANCESTORS',
      'classify',
      'FallbackSource',
      'retry',
      'isTransient',
      'HttpStatusError',
      'receiptPath',
      'RECEIPT_VERSION',
      'readCarBlocks',
      'exportFile',
      'releaseLinks',
      'openSources',
      'openDataset',
    ]) {
      expect(record[name], name).toBeUndefined()
    }
  })
})
