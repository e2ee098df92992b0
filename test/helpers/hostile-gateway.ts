/**
 * A hostile trustless gateway on loopback (docs/hostile-input.md): each mode serves a DAG or a body
 * made to exhaust a client. Blocks it sends hash right (only the `huge-section` and `endless-body`
 * modes send bytes that are not blocks), so what stops a client is a bound, not a hash check.
 *
 * - `huge-section`: a CAR whose first section claims 2 GiB, then bytes without end; raw blocks other
 *   than the root never end either.
 * - `endless-body`: a CAR of valid sections of blocks nobody asked for, without end; raw blocks as above.
 * - `dag-bomb`: a directory 40 levels deep, each level linking the next twice (2^40 paths, 41 blocks).
 * - `file-bomb`: a file 40 levels deep, each node linking the next twice (declares 2^50 bytes).
 * - `deep-directory`: folders nested 100,000 deep.
 * - `deep-file`: a file DAG 100,000 levels deep (one byte at the bottom).
 * - `long-names`: a directory with an entry named by 10,000 characters.
 * - `cairn-entries`: a plain UnixFS directory with `.cairn/` and `cairn.json` at its top.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { varint } from 'multiformats'
import * as dagCbor from '@ipld/dag-cbor'

export type HostileMode =
  'huge-section' | 'endless-body' | 'dag-bomb' | 'file-bomb' | 'deep-directory' | 'deep-file' | 'long-names' | 'cairn-entries'

export interface Block {
  readonly cid: CID
  readonly bytes: Uint8Array
}

/** A DAG: its root and every block, by CID string. */
export interface Dag {
  readonly root: CID
  readonly blocks: Map<string, Uint8Array>
}

export async function rawBlock(bytes: Uint8Array): Promise<Block> {
  return { cid: CID.create(1, 0x55, await sha256.digest(bytes)), bytes }
}

export async function pbBlock(data: UnixFS, links: readonly { name?: string; cid: CID; size: number }[]): Promise<Block> {
  const bytes = dagPb.encode(
    dagPb.prepare({ Data: data.marshal(), Links: links.map((l) => ({ Name: l.name, Hash: l.cid, Tsize: l.size })) }),
  )
  return { cid: CID.create(1, 0x70, await sha256.digest(bytes)), bytes }
}

/** The DAG of a mode (not for the two modes that send no DAG past their root). */
export async function hostileDag(mode: HostileMode): Promise<Dag> {
  const blocks = new Map<string, Uint8Array>()
  const add = (b: Block): CID => {
    blocks.set(b.cid.toString(), b.bytes)
    return b.cid
  }
  const leaf = await rawBlock(new TextEncoder().encode('hello from the bottom\n'))
  add(leaf)
  let root: CID
  switch (mode) {
    case 'dag-bomb': {
      let at = add(await pbBlock(new UnixFS({ type: 'directory' }), [{ name: 'f.txt', cid: leaf.cid, size: leaf.bytes.length }]))
      for (let i = 0; i < 40; i++) {
        at = add(
          await pbBlock(new UnixFS({ type: 'directory' }), [
            { name: 'a', cid: at, size: 1 },
            { name: 'b', cid: at, size: 1 },
          ]),
        )
      }
      root = at
      break
    }
    case 'file-bomb': {
      const chunk = await rawBlock(new Uint8Array(1024).fill(0x61))
      add(chunk)
      let at = chunk.cid
      let size = 1024n
      for (let i = 0; i < 40; i++) {
        const node = new UnixFS({ type: 'file', blockSizes: [size, size] })
        at = add(
          await pbBlock(node, [
            { cid: at, size: 1 },
            { cid: at, size: 1 },
          ]),
        )
        size *= 2n
      }
      root = at
      break
    }
    case 'deep-directory': {
      let at = add(await pbBlock(new UnixFS({ type: 'directory' }), [{ name: 'f.txt', cid: leaf.cid, size: leaf.bytes.length }]))
      for (let i = 0; i < 100_000; i++) at = add(await pbBlock(new UnixFS({ type: 'directory' }), [{ name: 'd', cid: at, size: 1 }]))
      root = at
      break
    }
    case 'deep-file': {
      const one = await rawBlock(Uint8Array.of(0x7a))
      let at = add(one)
      for (let i = 0; i < 100_000; i++) at = add(await pbBlock(new UnixFS({ type: 'file', blockSizes: [1n] }), [{ cid: at, size: 1 }]))
      root = at
      break
    }
    case 'long-names':
      root = add(
        await pbBlock(new UnixFS({ type: 'directory' }), [
          { name: 'ok.txt', cid: leaf.cid, size: leaf.bytes.length },
          { name: 'x'.repeat(10_000), cid: leaf.cid, size: leaf.bytes.length },
        ]),
      )
      break
    case 'cairn-entries': {
      const store = add(await pbBlock(new UnixFS({ type: 'directory' }), [{ name: 'HEAD', cid: leaf.cid, size: leaf.bytes.length }]))
      root = add(
        await pbBlock(new UnixFS({ type: 'directory' }), [
          { name: '.cairn', cid: store, size: 1 },
          { name: 'cairn.json', cid: leaf.cid, size: leaf.bytes.length },
          { name: 'data.txt', cid: leaf.cid, size: leaf.bytes.length },
        ]),
      )
      break
    }
    default: {
      // a root that is a real file of two leaves: the body of everything below it is what is hostile
      const second = await rawBlock(new TextEncoder().encode('second leaf\n'))
      add(second)
      root = add(
        await pbBlock(new UnixFS({ type: 'file', blockSizes: [BigInt(leaf.bytes.length), BigInt(second.bytes.length)] }), [
          { cid: leaf.cid, size: leaf.bytes.length },
          { cid: second.cid, size: second.bytes.length },
        ]),
      )
    }
  }
  return { root, blocks }
}

/** A running hostile gateway. */
export interface HostileGateway {
  readonly url: string
  readonly root: CID
  /** Bytes written to clients so far (an endless body stops when the client goes). */
  readonly sent: () => number
  close(): Promise<void>
}

/** Starts a hostile gateway in `mode` on 127.0.0.1 (an ephemeral port). */
export async function hostileGateway(mode: HostileMode): Promise<HostileGateway> {
  const dag = await hostileDag(mode)
  let sent = 0
  const endless = mode === 'huge-section' || mode === 'endless-body'
  const open = new Set<ServerResponse>()
  const write = async (res: ServerResponse, chunk: Uint8Array): Promise<boolean> => {
    if (res.destroyed) return false
    sent += chunk.length
    if (!res.write(chunk)) {
      await new Promise<void>((done) => {
        res.once('drain', done)
        res.once('close', done)
      })
    }
    return !res.destroyed
  }
  const forever = async (res: ServerResponse, next: () => Promise<Uint8Array>): Promise<void> => {
    while (await write(res, await next())) {
      // until the client goes away
    }
  }
  const junk = new Uint8Array(64 * 1024).fill(0x5a)
  let counter = 0
  const server = createServer((req, res) => {
    open.add(res)
    res.on('close', () => open.delete(res))
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x')
      const m = /^\/ipfs\/([^/]+)$/.exec(url.pathname)
      let cid: CID
      try {
        cid = CID.parse(m?.[1] ?? '')
      } catch {
        res.writeHead(400).end()
        return
      }
      const format = url.searchParams.get('format')
      const bytes = dag.blocks.get(cid.toString())
      if (format === 'raw') {
        if (endless && !cid.equals(dag.root)) {
          res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw' })
          return forever(res, async () => junk)
        }
        if (bytes === undefined) return void res.writeHead(404).end()
        res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw', 'content-length': bytes.length }).end(bytes)
        return
      }
      if (format !== 'car') return void res.writeHead(400).end()
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=n' })
      const header = dagCbor.encode({ version: 1, roots: [cid] })
      if (
        !(await write(
          res,
          Uint8Array.from([...varint.encodeTo(header.length, new Uint8Array(varint.encodingLength(header.length))), ...header]),
        ))
      )
        return
      if (mode === 'huge-section') {
        const length = 2 ** 31
        if (!(await write(res, varint.encodeTo(length, new Uint8Array(varint.encodingLength(length)))))) return
        return forever(res, async () => junk)
      }
      if (mode === 'endless-body') {
        return forever(res, async () => {
          const b = await rawBlock(new TextEncoder().encode(`block nobody asked for #${counter++} `.repeat(64)))
          return section(b)
        })
      }
      // the DAG under the CID, depth first, each block once
      const seen = new Set<string>()
      const stack = [cid]
      while (stack.length > 0) {
        const at = stack.pop() as CID
        const key = at.toString()
        if (seen.has(key)) continue
        seen.add(key)
        const b = dag.blocks.get(key)
        if (b === undefined) continue
        if (!(await write(res, section({ cid: at, bytes: b })))) return
        if (at.code === 0x70) {
          const links = dagPb.decode(b).Links
          for (let i = links.length - 1; i >= 0; i--) stack.push(links[i].Hash)
        }
      }
      res.end()
    })().catch(() => res.destroy())
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    root: dag.root,
    sent: () => sent,
    close: () =>
      new Promise<void>((done) => {
        for (const res of open) res.destroy()
        server.closeAllConnections()
        server.close(() => done())
      }),
  }
}

/** One CAR section: varint(length of CID + block), the CID, the block. */
export function section(b: Block): Uint8Array {
  const n = b.cid.bytes.length + b.bytes.length
  const out = new Uint8Array(varint.encodingLength(n) + n)
  varint.encodeTo(n, out)
  out.set(b.cid.bytes, out.length - n)
  out.set(b.bytes, out.length - b.bytes.length)
  return out
}

/** A whole CARv1 of `blocks` with `roots` (header fields may be added, for tests of the header rule). */
export function carOf(roots: readonly CID[], blocks: readonly Block[], extraHeader: Record<string, unknown> = {}): Uint8Array {
  const header = dagCbor.encode({ version: 1, roots: [...roots], ...extraHeader })
  const prefix = new Uint8Array(varint.encodingLength(header.length))
  varint.encodeTo(header.length, prefix)
  const parts = [prefix, header, ...blocks.map(section)]
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}
