/**
 * Trust end to end, through the CLI as child processes: a release signed, published to `dir:`, its name
 * published there, served by `cairn serve`, cloned by IPNS name into a fresh folder by a reader with
 * a config folder of its own, and verified `--signed-by` the name. Then `@helia/verified-fetch` (Node 22,
 * test/peers) resolves `ipns://<name>` with that same `cairn serve` as its delegated router and gateway.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { validateWith } from '../src/schemas.js'
import { binPath, ensureBuilt, spawnCairn } from './helpers/cli.js'
import { builtTemplate } from './helpers/dataset.js'
import { NODE22, PEERS_DIR, requirePeers } from './helpers/peers.js'
import { tempDirs } from './helpers/tmp.js'

const tmp = tempDirs('cairn-trust-e2e-')
afterEach(() => tmp.cleanup())
beforeAll(() => ensureBuilt())
const template = builtTemplate()
afterAll(() => template.dispose())

let server: ChildProcess | undefined
afterEach(() => {
  server?.kill()
  server = undefined
})

/** Starts `cairn serve` as a child on a free loopback port; resolves its URL (its first stdout line). */
function startServe(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const child = spawn(process.execPath, [binPath, 'serve', '--port', '0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  server = child
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString('utf8')
      const line = out.split('\n')[0]
      if (out.includes('\n')) resolve(line.trim())
    })
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${out}`)))
  })
}

describe('sign → publish dir: → name publish → serve → clone <name> → verify --signed-by <name>', () => {
  it('works end to end through the CLI, and verified-fetch resolves ipns://<name> through cairn serve', async () => {
    requirePeers()
    const ds = await template.copy(tmp)
    const base = await tmp.make()
    const publisher = { ...process.env, CAIRN_CONFIG_DIR: join(base, 'publisher'), CAIRN_KEY: '' }
    const reader = { ...process.env, CAIRN_CONFIG_DIR: join(base, 'reader'), CAIRN_KEY: '' }
    const cli = async (args: string[], env: NodeJS.ProcessEnv, cwd = ds.dir): Promise<any> => {
      const r = await spawnCairn([...args, '--json'], { cwd, env })
      expect(r.exitCode, `cairn ${args.join(' ')}: ${r.stdout.toString()}${r.stderr}`).toBe(0)
      return JSON.parse(r.stdout.toString('utf8'))
    }
    const cars = join(base, 'cars')
    const key = await cli(['key', 'new'], publisher)
    await cli(['sign'], publisher)
    const published = await cli(['publish', '--to', `dir:${cars}`], publisher)
    expect(published.details.signatures).toHaveLength(1)
    const named = await cli(['name', 'publish', '--to', `dir:${cars}`], publisher)
    expect(named.value['/']).toBe(ds.v2)

    const url = await startServe(['--dir-target', cars], reader)
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    const target = join(base, 'fresh', 'clone')
    const cloned = await cli(['clone', `ipns://${key.ipnsName}`, target, '--from', url], reader, base)
    expect(validateWith('cli/clone.schema.json', cloned)).toEqual([])
    expect(cloned).toMatchObject({ kind: 'version', cid: { '/': ds.v2 }, signatures: 1, name: { name: key.ipnsName, sequence: '0' } })
    const verified = await cli(['verify', '-C', target, '--signed-by', key.ipnsName], reader, base)
    expect(verified).toMatchObject({ ok: true, signatures: { status: 'signed', signer: { ipnsName: key.ipnsName } } })
    expect(validateWith('cli/verify.schema.json', verified)).toEqual([])
    // the reader's high-water mark now holds sequence 0
    const seen = JSON.parse(await readFile(join(base, 'reader', 'names', `${key.ipnsName}.json`), 'utf8'))
    expect(seen).toMatchObject({ sequence: '0', value: ds.v2 })

    // an independent client: @helia/verified-fetch under Node 22, cairn serve as router and gateway
    const file = 'train/part-000.parquet'
    const script = `
      import { createVerifiedFetch } from '@helia/verified-fetch'
      const [url, name, path] = process.argv.slice(1)
      const vf = await createVerifiedFetch({ gateways: [url], routers: [url], allowInsecure: true, allowLocal: true })
      try {
        const version = await vf('ipns://' + name, { headers: { accept: 'application/json' } })
        const manifest = await version.json()
        const res = await vf('ipfs://' + manifest.tree['/'] + '/' + path)
        if (res.status !== 200) throw new Error('status ' + res.status)
        process.stdout.write(JSON.stringify({ status: version.status, version: manifest.type, bytes: Buffer.from(await res.arrayBuffer()).toString('base64') }))
      } finally {
        await vf.stop()
      }
      // libp2p leaves timers behind that would hold the process for seconds more
      process.exit(0)
    `
    const out = await new Promise<string>((resolve, reject) => {
      const child = execFile(
        NODE22,
        ['--input-type=module', '-e', script, url, key.ipnsName, file],
        { cwd: PEERS_DIR, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      )
      child.stdin?.end()
    })
    const got = JSON.parse(out) as { status: number; version: string; bytes: string }
    expect(got.version).toBe('cairn.version')
    expect(Buffer.from(got.bytes, 'base64')).toEqual(await readFile(join(ds.dir, file)))
  }, 120_000)
})
