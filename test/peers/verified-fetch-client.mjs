// Run by test/gateway-peers.test.ts with Node 22: @helia/verified-fetch (an independent IPFS client)
// fetches each ipfs:// URL through one trustless gateway and nothing else. Its Helia node is HTTP only
// (createHeliaLight + @helia/http's withHTTP, no libp2p: the default node would dial public peers,
// mDNS and UPnP), no delegated router (the default goes to the internet) but one empty router (with no
// router at all, Helia's provider lookup waits forever before it tries the fallback), the gateway as
// its only recursive gateway, and allowInsecure/allowLocal, without which http://127.0.0.1 is skipped.
// Prints [{ url, status, type, body (base64) }] as JSON on stdout.
import { withHTTP } from '@helia/http'
import { createVerifiedFetchWithHelia } from '@helia/verified-fetch'
import { createHeliaLight } from 'helia'

const [gateway, ...requests] = process.argv.slice(2)
const helia = withHTTP(await createHeliaLight({}), {
  delegatedRouters: [],
  recursiveGateways: [gateway],
  allowInsecure: true,
  allowLocal: true,
})
helia.addRouter({ name: 'empty', async *findProviders() {} })
await helia.start()
const verifiedFetch = await createVerifiedFetchWithHelia(helia)
const out = []
try {
  for (const request of requests) {
    const [url, accept] = request.split(' ')
    const res = await verifiedFetch(url, { signal: AbortSignal.timeout(60_000), headers: accept ? { accept } : {} })
    const body = Buffer.from(await res.arrayBuffer())
    out.push({ url, status: res.status, type: res.headers.get('content-type'), body: body.toString('base64') })
  }
} finally {
  await verifiedFetch.stop()
  await helia.stop()
}
process.stdout.write(JSON.stringify(out))
