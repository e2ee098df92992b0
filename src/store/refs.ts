/**
 * Refs: mutable names for version CIDs. `HEAD` lives in `.cairn/HEAD`, tags in `.cairn/refs/tags/`.
 * Each ref file holds one CID and a newline, and is replaced atomically (write a temp file, rename).
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { CID, tryParseCid } from '../cid.js'
import { CairnError, ioError } from '../errors.js'
import { appendHeadMove, type HeadMoveOp } from '../history/reflog.js'
import { writeFileAtomic } from '../util/atomic.js'

// HEAD and HEAD~n are refs of their own, and a name that parses as a CID would be shadowed by it
const TAG_NAME = /^(?![.-])(?!HEAD$)[A-Za-z0-9._-]{1,128}$/

/** Reads and writes the refs of one store (`root` is the `.cairn` folder). */
export class Refs {
  constructor(readonly root: string) {}

  /** The CID HEAD points at, or undefined before the first build. */
  async head(): Promise<CID | undefined> {
    return this.read(join(this.root, 'HEAD'), 'HEAD')
  }

  /**
   * Points HEAD at `cid`, atomically, and records the move in the HEAD log (src/history/reflog.ts) so
   * that it can be seen and undone.
   */
  async setHead(cid: CID, why: { readonly op: HeadMoveOp; readonly message?: string } = { op: 'build' }): Promise<void> {
    const from = (await this.head().catch(() => undefined)) ?? null
    await this.write(join(this.root, 'HEAD'), cid)
    if (!from?.equals(cid)) await appendHeadMove(this.root, { from, to: cid, op: why.op, message: why.message ?? '' })
  }

  /** Deletes tag `name`; returns the CID it pointed at, or undefined when there was no such tag. Throws `IO`. */
  async deleteTag(name: string): Promise<CID | undefined> {
    const cid = await this.tag(name)
    if (!cid) return undefined
    const file = join(this.root, 'refs', 'tags', name)
    try {
      await unlink(file)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('delete', file, e)
    }
    return cid
  }

  /** The CID of tag `name`, or undefined. */
  async tag(name: string): Promise<CID | undefined> {
    if (!TAG_NAME.test(name)) return undefined
    return this.read(join(this.root, 'refs', 'tags', name), `tag ${name}`)
  }

  /** Sets tag `name` to `cid`. Throws `USAGE` for a name that is not `[A-Za-z0-9._-]` (not leading `.`/`-`). */
  async setTag(name: string, cid: CID): Promise<void> {
    if (!TAG_NAME.test(name) || tryParseCid(name) !== undefined) {
      throw new CairnError(
        'USAGE',
        `Invalid tag name ${JSON.stringify(name)} (expected 1–128 of A–Z a–z 0–9 . _ -, not starting with . or -, not HEAD, not a CID)`,
      )
    }
    await mkdir(join(this.root, 'refs', 'tags'), { recursive: true })
    await this.write(join(this.root, 'refs', 'tags', name), cid)
  }

  /** Every tag with its CID, sorted by name. */
  async tags(): Promise<{ name: string; cid: CID }[]> {
    let names: string[]
    try {
      names = await readdir(join(this.root, 'refs', 'tags'))
    } catch {
      return []
    }
    const out: { name: string; cid: CID }[] = []
    for (const name of names.filter((n) => TAG_NAME.test(n)).sort()) {
      const cid = await this.tag(name)
      if (cid) out.push({ name, cid })
    }
    return out
  }

  private async read(file: string, what: string): Promise<CID | undefined> {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw ioError('read', file, e)
    }
    try {
      return CID.parse(text.trim())
    } catch {
      throw new CairnError('BAD_REF', `${what} in ${file} does not hold a CID (found ${JSON.stringify(text.slice(0, 80))})`, {
        subject: file,
      })
    }
  }

  private async write(file: string, cid: CID): Promise<void> {
    try {
      await mkdir(join(this.root, 'tmp'), { recursive: true })
      await writeFileAtomic(file, cid.toString() + '\n', { tmpDir: join(this.root, 'tmp'), flush: true })
    } catch (e) {
      throw ioError('write', file, e)
    }
  }
}
