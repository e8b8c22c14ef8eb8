/**
 * What `poi request` and `poi result` need before they start a light node: the chain config
 * (from a deployment file, or asked of the bootstrap node and checked on the chain) and a key
 * (the keystore's, or a throwaway one). The asking and the throwaway key are the client
 * library's (node/client).
 */
import type { NodeConfig } from '../config.js'
import { loadKeystore, type Keystore } from '../keys.js'
import { chainFromBootstrap, throwawayKeystore } from '../client/index.js'
import { UsageError, nodeConfig } from './args.js'

export { NetworkDiscoveryError } from '../client/index.js'

/** What a requester with --rpc and no --chain needs: the chain config from the bootstrap node. */
export async function requesterConfig (command: string, values: Record<string, unknown>, log: (line: string) => void): Promise<NodeConfig> {
  const config = await nodeConfig(values)
  if (config.bootstrap.length === 0) throw new UsageError(`poi ${command} needs --bootstrap <multiaddr> of a running node`)
  if (config.chain != null || typeof values.rpc !== 'string') return config
  const pinned = values.registry
  if (pinned !== undefined && (typeof pinned !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(pinned))) throw new UsageError(`--registry must be a 0x-prefixed 20-byte address, got ${String(pinned)}`)
  return { ...config, chain: await chainFromBootstrap(values.rpc, config.bootstrap, pinned, log) }
}

/** `--keystore` when given, else a throwaway identity (a requester needs no registered key). */
export async function requesterKeystore (values: { keystore?: string }, config: NodeConfig): Promise<Keystore> {
  if (values.keystore !== undefined) return await loadKeystore(config.keystore)
  return await throwawayKeystore()
}
