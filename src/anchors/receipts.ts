/**
 * What anchoring leaves in the store, under `.cairn/anchors/`:
 * - `contracts/<chain id>.json`: the anchor contract `cairn anchor deploy` deployed on that chain;
 * - `receipts/<version cid>/<chain id>-<tx hash>.json`: one receipt per confirmed anchor.
 * Both are written to a temporary name and renamed, and only after the chain confirmed them, so a
 * failed or killed anchor leaves nothing. Readers validate every file (schemas/anchor-receipt.schema.json)
 * and reject what they do not understand, naming the file.
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { CID, tryParseCid } from '../cid.js'
import { STORE_DIR } from '../dataset.js'
import { CairnError, ioError } from '../errors.js'
import { validateWith } from '../schemas.js'
import { writeFileAtomic } from '../util/atomic.js'
import { versionDigest, type Hex } from './digest.js'

/** The format version of receipt and contract files; readers reject others. */
export const ANCHOR_RECEIPT_VERSION = 1

/** The arguments of `anchor(bytes32 dataset, bytes32 version, bytes32 parent, uint64 sequence)`. */
export interface AnchorArgs {
  readonly dataset: Hex
  readonly version: Hex
  readonly parent: Hex
  readonly sequence: number
}

/** A confirmed anchor as recorded (schemas/anchor-receipt.schema.json). */
export interface AnchorReceipt {
  readonly version: CID
  readonly chainId: number
  /** The contract's address, EIP-55 checksummed. */
  readonly contract: Hex
  readonly txHash: Hex
  readonly blockNumber: number
  readonly blockHash: Hex
  readonly logIndex: number
  readonly sender: Hex
  /** The block's timestamp (ISO 8601): the release's public time. */
  readonly blockTime: string
  /** When this machine recorded the receipt. */
  readonly anchoredAt: string
  /** The name whose sha2-256 is `args.dataset`. */
  readonly datasetName: string
  readonly parentVersion: CID | null
  readonly args: AnchorArgs
}

/** An anchor contract deployed on a chain, as recorded (schemas/cli/anchor-deploy.schema.json). */
export interface ContractRecord {
  readonly chainId: number
  readonly address: Hex
  readonly txHash: Hex
  readonly blockNumber: number
  readonly blockHash: Hex
  readonly deployer: Hex
  readonly deployedAt: string
  /** The compiler that made the bytecode deployed (`solc-js 0.8.37+commit…`). */
  readonly compiler: string
}

/** The folder of anchor files in the store of the dataset at `root`. */
export function anchorsDir(root: string): string {
  return join(root, STORE_DIR, 'anchors')
}

/** Records a confirmed anchor, atomically. Throws `IO`. */
export async function writeReceipt(root: string, receipt: AnchorReceipt): Promise<string> {
  const dir = join(anchorsDir(root), 'receipts', receipt.version.toString())
  const file = join(dir, `${receipt.chainId}-${receipt.txHash}.json`)
  const { version, parentVersion, ...rest } = receipt
  const json = {
    receiptVersion: ANCHOR_RECEIPT_VERSION,
    version: { '/': version.toString() },
    parentVersion: parentVersion ? { '/': parentVersion.toString() } : null,
    ...rest,
  }
  try {
    await mkdir(dir, { recursive: true })
    await writeFileAtomic(file, JSON.stringify(json, null, 2) + '\n')
  } catch (e) {
    throw ioError('record the anchor receipt in', file, e)
  }
  return file
}

/**
 * The receipts recorded for `version`, or for every version when it is undefined, oldest block time
 * first. Throws `INVALID_MANIFEST` for a receipt file that is not valid (naming it), `IO`.
 */
export async function readReceipts(root: string, version?: CID): Promise<AnchorReceipt[]> {
  const base = join(anchorsDir(root), 'receipts')
  const versions = version ? [version.toString()] : (await listDir(base)).filter((n) => tryParseCid(n) !== undefined)
  const out: AnchorReceipt[] = []
  for (const v of versions) {
    const dir = join(base, v)
    for (const name of (await listDir(dir)).filter((n) => n.endsWith('.json')).sort()) out.push(await readReceipt(join(dir, name), v))
  }
  return out.sort(
    (a, b) => a.blockTime.localeCompare(b.blockTime) || a.chainId - b.chainId || a.blockNumber - b.blockNumber || a.logIndex - b.logIndex,
  )
}

async function readReceipt(file: string, folder: string): Promise<AnchorReceipt> {
  const raw = await readJson(file)
  const bad = (why: string): CairnError =>
    new CairnError('INVALID_MANIFEST', `${file} is not an anchor receipt: ${why}`, {
      subject: file,
      hint: 'receipts are written by `cairn anchor`; remove the file, or restore it, and check with `cairn verify --anchored`',
    })
  const errors = validateWith('anchor-receipt.schema.json', raw)
  if (errors.length > 0) throw bad(errors.map((e) => `${e.path || '/'} ${e.message}`).join('; '))
  const r = raw as Record<string, unknown> & { version: { '/': string }; parentVersion: { '/': string } | null; args: AnchorArgs }
  if (r.receiptVersion !== ANCHOR_RECEIPT_VERSION)
    throw bad(`receiptVersion ${JSON.stringify(r.receiptVersion)} (expected ${ANCHOR_RECEIPT_VERSION})`)
  const version = tryParseCid(r.version['/'])
  if (!version) throw bad('version is not a CID')
  if (version.toString() !== folder) throw bad(`it names version ${version}, but sits in the folder of ${folder}`)
  const parentVersion = r.parentVersion === null ? null : tryParseCid(r.parentVersion['/'])
  if (parentVersion === undefined) throw bad('parentVersion is not a CID')
  const digestOf = (cid: CID): Hex => {
    try {
      return versionDigest(cid)
    } catch {
      throw bad(`${cid} is not a version CID`)
    }
  }
  if (r.args.version !== digestOf(version)) throw bad(`args.version ${r.args.version} is not the digest of ${version}`)
  if (r.args.parent !== (parentVersion ? digestOf(parentVersion) : `0x${'00'.repeat(32)}`))
    throw bad(`args.parent ${r.args.parent} is not the digest of parentVersion`)
  const { receiptVersion: _, ...rest } = r
  return { ...(rest as unknown as AnchorReceipt), version, parentVersion }
}

/** Records the contract deployed on a chain (replacing an earlier one for that chain), atomically. */
export async function writeContractRecord(root: string, record: ContractRecord): Promise<void> {
  const dir = join(anchorsDir(root), 'contracts')
  const file = join(dir, `${record.chainId}.json`)
  try {
    await mkdir(dir, { recursive: true })
    await writeFileAtomic(file, JSON.stringify({ contractVersion: ANCHOR_RECEIPT_VERSION, ...record }, null, 2) + '\n')
  } catch (e) {
    throw ioError('record the contract in', file, e)
  }
}

/** The contract recorded for `chainId`, or undefined. Throws `INVALID_MANIFEST` for a file that is not valid. */
export async function readContractRecord(root: string, chainId: number): Promise<ContractRecord | undefined> {
  const file = join(anchorsDir(root), 'contracts', `${chainId}.json`)
  let raw: unknown
  try {
    raw = await readJson(file)
  } catch (e) {
    if (e instanceof CairnError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined
    throw e
  }
  const errors = validateWith('cli/anchor-deploy.schema.json', raw)
  const r = raw as ContractRecord & { contractVersion?: unknown }
  if (errors.length > 0 || r.contractVersion !== ANCHOR_RECEIPT_VERSION || r.chainId !== chainId)
    throw new CairnError(
      'INVALID_MANIFEST',
      `${file} is not an anchor contract record: ${errors.map((e) => `${e.path || '/'} ${e.message}`).join('; ') || 'wrong contractVersion or chainId'}`,
      { subject: file, hint: 'remove it and pass --contract, or deploy again with `cairn anchor deploy`' },
    )
  const { contractVersion: _, ...record } = r
  return record
}

// a receipt is under 2 KiB; anything much larger was not written by cairn and is not read whole
const MAX_RECORD_BYTES = 64 * 1024

async function readJson(file: string): Promise<unknown> {
  let text: string
  try {
    const size = (await stat(file)).size
    if (size > MAX_RECORD_BYTES)
      throw new CairnError('INVALID_MANIFEST', `${file} is ${size} bytes: not a record cairn wrote (at most ${MAX_RECORD_BYTES})`, {
        subject: file,
      })
    text = await readFile(file, 'utf8')
  } catch (e) {
    if (e instanceof CairnError) throw e
    throw ioError('read', file, e)
  }
  try {
    return JSON.parse(text) as unknown
  } catch (e) {
    throw new CairnError('INVALID_MANIFEST', `${file} is not JSON: ${(e as Error).message}`, { subject: file })
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw ioError('read', dir, e)
  }
}
