/**
 * `check`: is every block of a release retrievable from each source or published target? The release
 * is walked from the dataset (store, clone files, src/release/source.ts), each block attributed to the
 * shard it belongs to (or to the release's metadata: version, card, index, schemas, tree), and each
 * place is asked about every block (src/release/probes.ts), a few at a time.
 */
import type { CID } from './cid.js'
import { CairnError, isCairnError } from './errors.js'
import { walkEntries } from './shard-index/prolly.js'
import { openProbe, type Probe } from './release/probes.js'
import { releaseLinks } from './release/links.js'
import { withDatasetSource } from './release/source.js'
import type { BlockSource } from './store/blocks.js'
import { readVersion, resolveRef } from './version.js'

/** The pseudo-shard of a release's own blocks (version, card, index nodes, schemas, tree folders). */
export const METADATA = '(metadata)'

/** Options of {@link check}. */
export interface CheckOptions {
  readonly dir?: string
  /** The version (default `HEAD`). */
  readonly ref?: string
  /** Sources to check: gateway URLs, `dir:` folders, CAR files, dataset folders. */
  readonly from?: readonly string[]
  /** Published targets to check: `dir:<path>`, `kubo:<rpc-url>`. */
  readonly to?: readonly string[]
  /** Questions in flight per place (default 8). */
  readonly concurrency?: number
  /** Gateway timeout per question in ms (default 30,000). */
  readonly timeoutMs?: number
  /** Where credentials come from (kubo: `CAIRN_KUBO_AUTH`); default `process.env`. */
  readonly env?: NodeJS.ProcessEnv
  readonly onProgress?: (progress: CheckProgress) => void
}

/** Progress: blocks asked about so far, over all places. */
export interface CheckProgress {
  readonly place: string
  readonly asked: number
  readonly total: number
}

/** One shard at one place that is not complete. */
export interface ShardState {
  readonly path: string
  readonly blocks: number
  /** Blocks the place said it lacks. */
  readonly missing: number
  /** Blocks the place could not be asked about (it did not answer). */
  readonly unreachable: number
  readonly status: 'missing' | 'unreachable'
}

/** What one place holds of the release. */
export interface PlaceReport {
  /** The place as named (`http://…`, `dir:/abs/path`, `kubo:http://…`, a file). */
  readonly place: string
  /** True when every block is there. */
  readonly complete: boolean
  readonly missingBlocks: number
  readonly unreachableBlocks: number
  /** The first error of a place that could not be asked (connection refused, timeouts, …). */
  readonly error?: string
  /** Shards (and the metadata) complete there. */
  readonly completeShards: number
  /** Every shard that is not, in path order ({@link METADATA} first). */
  readonly shards: readonly ShardState[]
  /** The first few missing block CIDs, for a closer look. */
  readonly missingExamples: readonly string[]
}

/** What {@link check} found. */
export interface CheckReport {
  readonly version: CID
  /** Blocks of the release, and its shards (the metadata not counted). */
  readonly blocks: number
  readonly shards: number
  /** True when every place holds the whole release. */
  readonly ok: boolean
  readonly places: readonly PlaceReport[]
}

interface Owned {
  readonly cid: CID
  /** Index into the shard list (0: metadata). */
  readonly shard: number
}

/**
 * Checks that every block of the release `ref` is at each place. Places that cannot be reached are
 * reported, not thrown. Throws `USAGE` (no place given, a place cairn cannot check), `BAD_REF`,
 * `MISSING_BLOCK` (the dataset itself lacks a block of the release: it cannot say what the release
 * holds), `NOT_A_DATASET`.
 */
export async function check(options: CheckOptions): Promise<CheckReport> {
  const specs = [
    ...(options.from ?? []).map((s) => ({ spec: s, kind: 'source' as const })),
    ...(options.to ?? []).map((s) => ({ spec: s, kind: 'target' as const })),
  ]
  if (specs.length === 0) throw new CairnError('USAGE', 'check needs at least one --from source or --to target to check')
  return withDatasetSource(options.dir, { recorded: false }, async ({ dataset, source }) => {
    const version = await resolveRef(dataset, options.ref, source)
    const { blocks, shards } = await releaseBlocks(source, version)
    const probes: Probe[] = []
    try {
      for (const s of specs) probes.push(await openProbe(s.spec, s.kind, { timeoutMs: options.timeoutMs, env: options.env ?? process.env }))
      const places = await Promise.all(probes.map((p) => checkPlace(p, blocks, shards, options)))
      return { version, blocks: blocks.length, shards: shards.length - 1, ok: places.every((p) => p.complete), places }
    } finally {
      await Promise.all(probes.map((p) => p.close()))
    }
  })
}

/** Every block of the release, each with the shard it belongs to; shard 0 is the metadata. */
async function releaseBlocks(source: BlockSource, version: CID): Promise<{ blocks: Owned[]; shards: string[] }> {
  const manifest = await readVersion(source, version)
  const shards = [METADATA]
  const owner = new Map<string, number>()
  for await (const e of walkEntries(source, manifest.index)) {
    if (!owner.has(e.cid.toString())) owner.set(e.cid.toString(), shards.length)
    shards.push(e.path)
  }
  const blocks: Owned[] = []
  const seen = new Set<string>()
  // depth-first from the version, the parent left out (releaseLinks); a file's blocks belong to the
  // first shard whose entry names it, whichever link reached them (index leaf or tree)
  const stack: { cid: CID; shard: number }[] = [{ cid: version, shard: 0 }]
  while (stack.length > 0) {
    const { cid, shard: inherited } = stack.pop() as { cid: CID; shard: number }
    const key = cid.toString()
    if (seen.has(key) || cid.multihash.code === 0x00) continue
    seen.add(key)
    const shard = owner.get(key) ?? inherited
    blocks.push({ cid, shard })
    if (cid.code === 0x55) continue
    const links = releaseLinks(cid, await source.get(cid), 0)
    for (let i = links.length - 1; i >= 0; i--) stack.push({ cid: links[i].cid, shard })
  }
  return { blocks, shards }
}

async function checkPlace(probe: Probe, blocks: readonly Owned[], shards: readonly string[], options: CheckOptions): Promise<PlaceReport> {
  const missing = new Uint32Array(shards.length)
  const unreachable = new Uint32Array(shards.length)
  const total = new Uint32Array(shards.length)
  for (const b of blocks) total[b.shard]++
  const examples: string[] = []
  let error: string | undefined
  let failures = 0
  let asked = 0
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < blocks.length) {
      const b = blocks[next++]
      // a place that failed a few times in a row is not asked any more: the rest counts as unreachable
      if (failures >= 3) {
        unreachable[b.shard]++
        continue
      }
      try {
        if (!(await probe.has(b.cid))) {
          missing[b.shard]++
          if (examples.length < 5) examples.push(b.cid.toString())
        }
        failures = 0
      } catch (e) {
        if (isCairnError(e, 'USAGE')) throw e
        failures++
        error ??= (e as Error).message
        unreachable[b.shard]++
      }
      asked++
      if (asked % 32 === 0) options.onProgress?.({ place: probe.name, asked, total: blocks.length })
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 8) }, worker))
  options.onProgress?.({ place: probe.name, asked, total: blocks.length })
  const states: ShardState[] = []
  let completeShards = 0
  shards.forEach((path, i) => {
    if (missing[i] === 0 && unreachable[i] === 0) {
      completeShards++
      return
    }
    states.push({
      path,
      blocks: total[i],
      missing: missing[i],
      unreachable: unreachable[i],
      status: unreachable[i] > 0 ? 'unreachable' : 'missing',
    })
  })
  const missingBlocks = missing.reduce((a, b) => a + b, 0)
  const unreachableBlocks = unreachable.reduce((a, b) => a + b, 0)
  return {
    place: probe.name,
    complete: missingBlocks === 0 && unreachableBlocks === 0,
    missingBlocks,
    unreachableBlocks,
    ...(error !== undefined ? { error } : {}),
    completeShards,
    shards: states,
    missingExamples: examples,
  }
}
