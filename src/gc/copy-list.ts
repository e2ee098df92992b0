/**
 * The blocks gc copies out of the packs it deletes: CIDs appended to a temporary file (unlinked as
 * soon as it is open, so a killed gc leaves nothing), read back in order. A pack whose blocks all turn
 * out live is rolled back: its entries are dropped.
 */
import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { ioError } from '../errors.js'

const BUFFER = 1 << 16
/** A record: the CID's length (one byte), then its bytes. */
const MAX_CID = 255

export class CopyList {
  private readonly fd: number
  private readonly buffer = Buffer.allocUnsafe(BUFFER)
  private buffered = 0
  /** Bytes written to the file. */
  private written = 0
  private n = 0

  /** Opens the list's file in `dir`. Throws `IO`. */
  constructor(private readonly dir: string) {
    const file = join(dir, `.cairn-gc-copy-${process.pid}-${randomBytes(6).toString('hex')}`)
    try {
      this.fd = openSync(file, 'w+', 0o600)
      unlinkSync(file)
    } catch (e) {
      throw ioError('create', file, e)
    }
  }

  /** Blocks listed. */
  get count(): number {
    return this.n
  }

  /** Where the list is now, for {@link rollback}. */
  mark(): { readonly bytes: number; readonly count: number } {
    return { bytes: this.written + this.buffered, count: this.n }
  }

  /** Drops what was listed since `mark`. */
  rollback(mark: { readonly bytes: number; readonly count: number }): void {
    if (mark.bytes >= this.written) this.buffered = mark.bytes - this.written
    else {
      this.buffered = 0
      this.written = mark.bytes
    }
    this.n = mark.count
  }

  /** Lists a block by its CID bytes (a CID longer than 255 bytes is not a store key). */
  push(cid: Uint8Array): void {
    if (cid.length > MAX_CID) return
    if (this.buffered + 1 + cid.length > BUFFER) this.flush()
    this.buffer[this.buffered] = cid.length
    this.buffer.set(cid, this.buffered + 1)
    this.buffered += 1 + cid.length
    this.n++
  }

  /** The listed CIDs' bytes, in order (each a fresh array). Throws `IO`. */
  *cids(): Generator<Uint8Array> {
    this.flush()
    const end = this.written
    const buf = Buffer.allocUnsafe(BUFFER)
    let at = 0
    let held = 0
    let start = 0
    for (;;) {
      if (held - start < 1 + MAX_CID && at < end) {
        buf.copy(buf, 0, start, held)
        held -= start
        start = 0
        const n = this.read(buf, held, Math.min(BUFFER - held, end - at), at)
        at += n
        held += n
      }
      if (start >= held) return
      const len = buf[start]
      yield new Uint8Array(buf.subarray(start + 1, start + 1 + len))
      start += 1 + len
    }
  }

  close(): void {
    closeSync(this.fd)
  }

  private flush(): void {
    try {
      for (let off = 0; off < this.buffered;) off += writeSync(this.fd, this.buffer, off, this.buffered - off, this.written + off)
    } catch (e) {
      throw ioError('write a temporary file in', this.dir, e)
    }
    this.written += this.buffered
    this.buffered = 0
  }

  private read(into: Buffer, offset: number, length: number, position: number): number {
    try {
      const n = readSync(this.fd, into, offset, length, position)
      if (n === 0) throw new Error('the file ended early')
      return n
    } catch (e) {
      throw ioError('read a temporary file in', this.dir, e)
    }
  }
}
