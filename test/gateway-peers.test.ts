/**
 * `cairn serve` against clients we did not write: @helia/verified-fetch (Node 22, test/peers) reading
 * ipfs://<version>/tree/<path> and ipfs://<version>/card through it as its only gateway; Python's
 * fsspec (Debian's python3-fsspec and python3-aiohttp) reading a Parquet footer by seeking from the
 * end; and Chromium driven by playwright-core on the release page (card, files, a preview row, the
 * diff, a card holding <script> shown as text, a phone-width screenshot kept in the test's folder).
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serve, type ServeHandle } from '../src/index.js'
import { openDataset } from '../src/dataset.js'
import { readVersion } from '../src/version.js'
import { hamtName, makeRelease, type Release } from './helpers/release.js'
import { NODE22, PEERS_DIR, requirePeers } from './helpers/peers.js'

const run = promisify(execFile)
let rel: Release
let server: ServeHandle
let shots: string

beforeAll(async () => {
  rel = await makeRelease()
  server = await serve({ dir: rel.ds.dir, port: 0 })
  shots = await mkdtemp(join(tmpdir(), 'cairn-gateway-peers-'))
}, 180_000)

afterAll(async () => {
  await server?.close()
  await rel?.ds.cleanup()
  // the screenshot stays for a person to look at: its folder is printed by the browser test
})

describe('@helia/verified-fetch through cairn serve', () => {
  it('fetches ipfs://<version>/tree/<path> (plain, deep, HAMT) and ipfs://<version>/card byte-identical', async () => {
    requirePeers()
    const paths = ['data/train.parquet', 'deep/a/b/c/d/e.txt', hamtName(999), 'blobs/big.bin']
    const urls = [...paths.map((p) => `ipfs://${rel.v2}/tree/${p}`), `ipfs://${rel.v2}/card`]
    const { stdout } = await run(NODE22, [join(PEERS_DIR, 'verified-fetch-client.mjs'), server.url, ...urls], {
      cwd: PEERS_DIR,
      env: { ...process.env, NODE_PATH: join(PEERS_DIR, 'node_modules') },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 240_000,
    })
    const results = JSON.parse(stdout) as { url: string; status: number; body: string }[]
    for (const [i, p] of paths.entries()) {
      expect(results[i].status, p).toBe(200)
      expect(Buffer.from(results[i].body, 'base64').equals(Buffer.from(rel.files[p])), p).toBe(true)
    }
    const dataset = await openDataset(rel.ds.dir)
    const card = await dataset.store.get((await readVersion(dataset.store, rel.v2)).card)
    await dataset.store.close()
    const got = results[paths.length]
    expect(got.status).toBe(200)
    // verified-fetch answers a dag-json block as JSON: the same data model as the card block's bytes
    expect(JSON.parse(Buffer.from(got.body, 'base64').toString())).toEqual(JSON.parse(Buffer.from(card).toString()))
  }, 300_000)
})

describe('fsspec (Python) over HTTP', () => {
  it('opens the Parquet shard by URL and reads its footer by seeking from the end: the bytes equal the file', async () => {
    const url = `${server.url}/ipfs/${rel.v2}/tree/data/train.parquet`
    const script = [
      'import sys, fsspec',
      'url = sys.argv[1]',
      'fs = fsspec.filesystem("http")',
      'size = fs.size(url)',
      'with fs.open(url, "rb", block_size=4096) as f:',
      '    f.seek(-8, 2)',
      '    tail = f.read(8)',
      '    footer_len = int.from_bytes(tail[:4], "little")',
      '    f.seek(-(8 + footer_len), 2)',
      '    footer = f.read(footer_len)',
      '    f.seek(0)',
      '    head = f.read(4)',
      'sys.stdout.write("%d %s %s %s" % (size, tail.hex(), footer.hex(), head.hex()))',
    ].join('\n')
    const { stdout } = await run('/usr/bin/python3', ['-c', script, url], { timeout: 60_000 })
    const [size, tail, footer, head] = stdout.trim().split(' ')
    const file = Buffer.from(rel.files['data/train.parquet'])
    expect(Number(size)).toBe(file.length)
    expect(Buffer.from(tail, 'hex').equals(file.subarray(file.length - 8))).toBe(true)
    expect(Buffer.from(tail, 'hex').subarray(4).toString()).toBe('PAR1')
    const footerLength = file.readUInt32LE(file.length - 8)
    expect(Buffer.from(footer, 'hex').equals(file.subarray(file.length - 8 - footerLength, file.length - 8))).toBe(true)
    expect(Buffer.from(head, 'hex').toString()).toBe('PAR1')
  }, 90_000)
})

describe('the release page in Chromium (playwright-core)', () => {
  it('shows the card (a <script> as text), the file table, a preview row and the diff, at phone width; one screenshot', async () => {
    expect(existsSync('/usr/bin/chromium')).toBe(true)
    const { chromium } = await import('playwright-core')
    const profile = join(shots, 'profile')
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 390, height: 844 },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    try {
      const page = browser.pages()[0] ?? (await browser.newPage())
      const alerts: string[] = []
      page.on('dialog', (d) => {
        alerts.push(d.message())
        void d.dismiss()
      })
      const res = await page.goto(`${server.url}/`)
      expect(res?.status()).toBe(200)
      await page.click(`a[href="/ipfs/${rel.v2}/"]`)
      await page.waitForSelector('#files')
      expect(await page.textContent('h1')).toBe('gateway-test')
      expect(await page.textContent('.card')).toContain('Rows <script>window.pwned = 1</script> & more')
      expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined()
      expect(await page.locator('script').count()).toBe(0)
      expect(await page.locator('#files tbody tr').count()).toBe(1000)
      expect(await page.textContent('#files')).toContain('data/train.parquet')
      expect(await page.textContent('#files')).toContain('html/<img src=x onerror=alert(1)>.txt')
      expect(await page.locator('table.preview[data-path="data/train.parquet"] tbody tr').first().textContent()).toBe(
        '0question 0 <i>?</i>',
      )
      expect(await page.textContent('#diff')).toMatch(/1 added, 0 removed, 1 modified/)
      expect(await page.textContent('#diff')).toContain('data/table.csv')
      expect(await page.textContent('#history')).toContain('first release')
      // phone width: the page itself does not scroll sideways (wide tables scroll in their own box)
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
      const shot = join(shots, 'release-page-phone.png')
      await page.screenshot({ path: shot, fullPage: false })
      expect((await stat(shot)).size).toBeGreaterThan(10_000)
      expect(alerts).toEqual([])
      // a download link serves the file
      const href = await page.getAttribute('#files a[href$="data/table.csv"]', 'href')
      const file = await fetch(server.url + href)
      expect(Buffer.from(await file.arrayBuffer()).equals(Buffer.from(rel.files['data/table.csv']))).toBe(true)
      console.log(`release page screenshot: ${shot}`)
    } finally {
      await browser.close()
      await rm(profile, { recursive: true, force: true })
    }
  }, 120_000)
})
