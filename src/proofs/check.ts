/** `verify --proof`: checks offline that a proof CAR shows a file belongs to a version. */
import { CarBlockSource } from '../car/source.js'
import type { CID } from '../cid.js'
import { CairnError } from '../errors.js'
import type { Field, FormatName } from '../formats/interface.js'
import { decodeManifest } from '../manifest.js'
import { walkProof } from './blocks.js'

/** What a proof showed. */
export interface ProofReport {
  readonly kind: 'proof'
  readonly ok: true
  readonly version: CID
  readonly path: string
  readonly cid: CID
  readonly size: number
  readonly format: FormatName
  readonly rows?: number
  readonly schema?: readonly Field[]
  /** Blocks the proof holds, and those the check used. */
  readonly blocks: number
  readonly used: number
}

/**
 * Checks that the CAR at `proof` proves `path` in `version`, reading nothing but the CAR: every block
 * used is hashed against its CID, the header's root must be `version`, and the tree and the index
 * must name the same file. Returns the file's facts; a proof that does not hold throws.
 *
 * @throws {CairnError} `VERIFY_FAILED` when the root is another version or the tree and the index
 *   disagree; `MISSING_BLOCK` when a block of the walk is not in the proof (one removed, or swapped
 *   for another); `CORRUPT_BLOCK` when a block's bytes do not match its CID; `USAGE` when the
 *   version has no such file; `BAD_CAR` / `IO` for a file that is not a readable CAR.
 */
export async function verifyProof(proof: string, version: CID, path: string): Promise<ProofReport> {
  const car = await CarBlockSource.open(proof)
  try {
    if (car.roots.length !== 1 || !car.roots[0].equals(version)) {
      throw new CairnError(
        'VERIFY_FAILED',
        `${proof} is a proof for ${car.roots.map(String).join(', ') || 'no root'}, not for ${version}`,
        {
          subject: proof,
        },
      )
    }
    const found = await walkProof(car, version, path.replace(/^\/+|\/+$/g, ''))
    const e = found.entry
    const schema = e.schema ? decodeManifest('cairn.schema', e.schema, await car.get(e.schema)).fields : undefined
    return {
      kind: 'proof',
      ok: true,
      version,
      path: found.path,
      cid: found.cid,
      size: e.size,
      format: e.format,
      rows: e.rows,
      schema,
      blocks: car.size,
      used: found.blocks.length,
    }
  } finally {
    await car.close()
  }
}
