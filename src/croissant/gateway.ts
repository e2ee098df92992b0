/**
 * Where `export croissant` points `contentUrl` unless told: a path gateway that resolves
 * `/ipfs/<cid>/<path>`. A module of its own so that the command's help can name it without loading
 * the exporter (commands load their library code inside run(): docs/cli.md).
 */
export const DEFAULT_CROISSANT_GATEWAY = 'https://ipfs.io'
