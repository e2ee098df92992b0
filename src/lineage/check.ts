/**
 * What `build` checks of a card's lineage before anything is committed (docs/lineage.md):
 * - every link (`derivedFrom[].release`, `promptTemplate`, `model.weights`) is a CID;
 * - a `promptTemplate` given as `{"path": …}` is a file of the release being built;
 * - each `derivedFrom` release is a cairn version that the store or a `--from` source holds (verified
 *   block by block), or, with no `--from` and not in the store, is recorded unverified, saying so;
 * - each `select` glob matches at least one shard path of its source;
 * - no source derives, through its own lineage, from this dataset's history (HEAD or an ancestor):
 *   the release would then claim to derive from its own descendant.
 */
import { minimatch } from 'minimatch'
import { FallbackSource } from '../car/source.js'
import { tryParseCid, type CID } from '../cid.js'
import { CairnError, isCairnError } from '../errors.js'
import { walkEntries } from '../shard-index/prolly.js'
import type { Card } from '../manifest.js'
import type { BlockSource } from '../store/blocks.js'
import { openSources, type SourceList } from '../sources/index.js'
import { readVersion } from '../version.js'
import { derivedCid, isUnreachable, MAX_LINEAGE_NODES, walkLineage } from './graph.js'

/** What build learned of one `derivedFrom` entry. */
export interface SourceCheck {
  readonly release: CID
  readonly role: string
  /** `verified`: the version was read and checked; `unverified`: no source held it and none was given. */
  readonly status: 'verified' | 'unverified'
  /** For `unverified`: why. */
  readonly reason?: string
}

/** Where {@link checkLineage} looks. */
export interface LineageContext {
  /** The store first, then the `--from` sources (every block checked against its CID). */
  readonly source: BlockSource
  /** True when the user named sources (`--from`): a release none of them holds is then an error. */
  readonly sourcesGiven: boolean
  /** The version the build extends (HEAD), or null for a first version. */
  readonly head: CID | null
  /** The local store, for HEAD's history. */
  readonly store: BlockSource
  /** True when the release being built has a file at `path`. */
  hasPath(path: string): boolean
}

/**
 * Checks the card's lineage (see the module's comment). Returns one {@link SourceCheck} per
 * `derivedFrom` entry, in order.
 *
 * @throws {CairnError} `INVALID_CARD` naming the entry: a link that is not a CID, a prompt file that is
 *   not in the release, a release that is not a cairn version or that no given source holds, a
 *   selection that matches nothing, a cycle. Other errors of the sources (a corrupt block) as they are.
 */
export async function checkLineage(card: Card, context: LineageContext): Promise<SourceCheck[]> {
  checkProvenanceLinks(card, context)
  const entries = card.derivedFrom ?? []
  if (entries.length === 0) return []
  const history = context.head === null ? new Set<string>() : await ownHistory(context.store, context.head)
  const out: SourceCheck[] = []
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]
    const where = `cairn.json: derivedFrom[${i}].release`
    const release = derivedCid(entry)
    if (release === undefined) {
      throw invalid(`${where} ${JSON.stringify(entry.release['/'])} is not a CID`, 'write the source release as {"/": "<version CID>"}')
    }
    let manifest
    try {
      manifest = await readVersion(context.source, release)
    } catch (e) {
      if (!isUnreachable(e)) throw e
      // a source that failed otherwise than "I do not have it" (down, timing out) is a network failure
      if (context.sourcesGiven && isCairnError(e, 'FETCH_FAILED')) throw e
      if ((e as CairnError).code === 'INVALID_MANIFEST') {
        throw invalid(`${where} ${release} is not a cairn release: ${(e as Error).message}`, 'name the version CID of the source release')
      }
      if (context.sourcesGiven) {
        throw invalid(
          `${where} ${release} is in none of the sources given: ${(e as Error).message}`,
          'check the CID, or give a source that holds it with --from',
        )
      }
      const reason = 'no source was given (--from) and the store does not hold it'
      if (entry.select) {
        // a selection can only be checked against the source: without it, say so rather than guess
        out.push({ release, role: entry.role, status: 'unverified', reason: `${reason}; its selection was not checked` })
      } else out.push({ release, role: entry.role, status: 'unverified', reason })
      continue
    }
    if (history.has(release.toString())) {
      throw invalid(
        `${where} ${release} is this dataset's own history (HEAD or an ancestor): a release cannot derive from itself`,
        'its history is already linked as parent; name the release it was made from',
      )
    }
    for (const glob of entry.select ?? []) {
      if (!(await matchesAny(context.source, manifest.index, glob))) {
        throw invalid(
          `cairn.json: derivedFrom[${i}].select ${JSON.stringify(glob)} matches no shard of ${release}`,
          'list its shards with `cairn ls ' + release.toString() + '`',
        )
      }
    }
    const behind = await walkLineage(context.source, release)
    for (const node of behind.nodes) {
      if (node.depth > 0 && history.has(node.cid.toString())) {
        throw invalid(
          `cairn.json: derivedFrom[${i}] makes a cycle: ${release} derives from ${node.cid}, which is this dataset's own history, so this release would derive from its own descendant`,
          'remove the entry, or build from the release it was really made from',
        )
      }
    }
    out.push({ release, role: entry.role, status: 'verified' })
  }
  return out
}

/** The links of `provenance` are CIDs, and a prompt file is a file of the release. */
function checkProvenanceLinks(card: Card, context: LineageContext): void {
  const p = card.provenance
  if (!p) return
  const prompt = p.promptTemplate
  if (prompt !== undefined && typeof prompt === 'object') {
    if ('path' in prompt) {
      if (!context.hasPath(prompt.path)) {
        throw invalid(
          `cairn.json: provenance.promptTemplate.path ${JSON.stringify(prompt.path)} is not a file of this dataset`,
          'add the prompt file to the dataset, or fix the path',
        )
      }
    } else if (tryParseCid(prompt['/']) === undefined) {
      throw invalid(`cairn.json: provenance.promptTemplate ${JSON.stringify(prompt['/'])} is not a CID`)
    }
  }
  const model = p.model
  if (model !== undefined && typeof model === 'object' && model.weights && tryParseCid(model.weights['/']) === undefined) {
    throw invalid(`cairn.json: provenance.model.weights ${JSON.stringify(model.weights['/'])} is not a CID`)
  }
}

/** HEAD and its ancestors (as far as the store holds them, at most {@link MAX_LINEAGE_NODES}). */
async function ownHistory(store: BlockSource, head: CID): Promise<Set<string>> {
  const out = new Set<string>()
  let at: CID | null = head
  while (at !== null && out.size < MAX_LINEAGE_NODES) {
    out.add(at.toString())
    try {
      at = (await readVersion(store, at)).parent
    } catch (e) {
      if (isUnreachable(e)) break
      throw e
    }
  }
  return out
}

/**
 * `list`, whose failure says `MISSING_BLOCK` when every source answered that it does not have the block
 * (so a release none of them holds is told apart from a source that is down, `FETCH_FAILED`).
 */
function heldOrNot(list: SourceList): BlockSource {
  return {
    get: async (cid) => {
      try {
        return await list.get(cid)
      } catch (e) {
        const mine = list.failures.filter((f) => f.cid === cid.toString())
        if (isCairnError(e, 'FETCH_FAILED') && mine.length > 0 && mine.every((f) => f.code === 'MISSING_BLOCK')) {
          throw new CairnError('MISSING_BLOCK', e.message, { subject: cid.toString() })
        }
        throw e
      }
    },
  }
}

async function matchesAny(source: BlockSource, index: CID, glob: string): Promise<boolean> {
  const options = { dot: true, matchBase: !glob.includes('/') }
  for await (const entry of walkEntries(source, index)) if (minimatch(entry.path, glob, options)) return true
  return false
}

function invalid(message: string, hint = 'fix cairn.json; nothing was committed'): CairnError {
  return new CairnError('INVALID_CARD', message, { subject: 'cairn.json', hint })
}

/** Options of {@link checkBuildLineage}. */
export interface BuildLineageOptions {
  readonly store: BlockSource
  readonly head: CID | null
  /** Sources given with `--from` (gateway URLs, CAR files, `dir:` folders, dataset folders). */
  readonly from?: readonly string[]
  readonly hasPath: (path: string) => boolean
}

/**
 * {@link checkLineage} for `build`: looks in the store, then in the `--from` sources (opened here and
 * closed before it returns). Nothing is read when the card declares no lineage.
 */
export async function checkBuildLineage(card: Card, options: BuildLineageOptions): Promise<SourceCheck[]> {
  const from = options.from ?? []
  if (from.length === 0 || (card.derivedFrom ?? []).length === 0) {
    return checkLineage(card, {
      source: options.store,
      sourcesGiven: false,
      store: options.store,
      head: options.head,
      hasPath: options.hasPath,
    })
  }
  const list = await openSources(from)
  try {
    const source = new FallbackSource([options.store, heldOrNot(list)])
    return await checkLineage(card, { source, sourcesGiven: true, store: options.store, head: options.head, hasPath: options.hasPath })
  } finally {
    await list.close()
  }
}
