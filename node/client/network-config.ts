/**
 * What a requester needs before it starts a light node: the chain config asked of the bootstrap
 * node and checked on the chain (when only an RPC URL is given), and a key (the keystore's, or
 * a throwaway one).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createPublicClient, http } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { blsPublicKeyOf, generateBlsSecretKey } from '../../consensus/index.js'
import { DeploymentMismatchError, checkDeployment, type Deployment } from '../../contracts/index.js'
import { fetchNetworkInfo } from '../../protocols/network/index.js'
import { deploymentOfNetworkInfo } from '../network-info.js'
import { PoiError } from '../../protocols/wire/index.js'
import type { ChainConfig } from '../config.js'
import type { Keystore } from '../keys.js'
import { createPoiLibp2p } from '../p2p.js'
import { peerIdentityOf } from '../peer-identity.js'

/** Reading a handful of contract fields to check a deployment. */
const RPC_CHECK_TIMEOUT_MS = 10_000

/** The bootstrap node could not say which contracts the network uses, or they do not check out. */
export class NetworkDiscoveryError extends PoiError {
  constructor (message: string, cause?: unknown) {
    super('ERR_NETWORK_DISCOVERY', message, { cause })
  }
}

/**
 * A requester given only a bootstrap address and an RPC URL: asks the bootstrap node which
 * contracts the network uses (/poi/network/1/) and checks that they form one poi deployment on
 * that chain (checkDeployment) before trusting them. The bootstrap address already names the
 * network; a deployment file (--chain) pins the contracts instead.
 */
export async function chainFromBootstrap (rpcUrl: string, bootstrapAddrs: string[], pinnedRegistry: string | undefined, log: (line: string) => void): Promise<ChainConfig> {
  const libp2p = await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [], bootstrap: [], dhtClientMode: true })
  let deployment: Deployment | undefined
  const failures: string[] = []
  try {
    await libp2p.start()
    for (const addr of bootstrapAddrs) {
      try {
        deployment = deploymentOfNetworkInfo(await fetchNetworkInfo(libp2p, multiaddr(addr)))
        if (deployment === undefined) throw new NetworkDiscoveryError(`the bootstrap node ${addr} runs without a chain (from a genesis file): use --genesis <file>`)
        break
      } catch (err) {
        if (err instanceof NetworkDiscoveryError) throw err
        // A node with another key at the bootstrap's address is not asked anything: say so plainly.
        const expected = multiaddr(addr).getPeerId()
        const refused = peerIdentityOf(libp2p)?.mismatches().findLast(m => m.expected === expected)
        if (refused !== undefined && bootstrapAddrs.length === 1) throw new NetworkDiscoveryError(`the bootstrap node is not the one --bootstrap names: ${refused.message}`, refused)
        failures.push(`${addr}: ${refused?.message ?? (err as Error).message}`)
      }
    }
  } finally {
    await libp2p.stop()
  }
  if (deployment === undefined) throw new NetworkDiscoveryError(`no bootstrap node said which contracts the network uses: ${failures.join('; ')}`)
  // checkDeployment proves the addresses form one poi deployment; only a pin proves it is the intended one.
  if (pinnedRegistry !== undefined && deployment.registry.toLowerCase() !== pinnedRegistry.toLowerCase()) {
    throw new NetworkDiscoveryError(`the bootstrap node names OperatorRegistry ${deployment.registry}, not the ${pinnedRegistry} given with --registry`)
  }
  const publicClient = createPublicClient({ transport: http(rpcUrl, { timeout: RPC_CHECK_TIMEOUT_MS }) })
  try {
    await checkDeployment(publicClient, deployment)
  } catch (err) {
    if (err instanceof DeploymentMismatchError) throw new NetworkDiscoveryError(`the contracts the bootstrap node names do not check out on ${rpcUrl}: ${err.message}`, err)
    throw new NetworkDiscoveryError(`cannot check the network's contracts on ${rpcUrl}: ${(err as Error).message.split('\n')[0]}`, err)
  }
  log(`network: chain ${deployment.chainId}, OperatorRegistry ${deployment.registry}, TaskManager ${deployment.taskManager} (named by the bootstrap node, checked on-chain)`)
  return { rpcUrl, chainId: Number(deployment.chainId), registry: deployment.registry, taskManager: deployment.taskManager, slashing: deployment.slashing, modelRegistry: deployment.modelRegistry, deployedAtBlock: deployment.deployedAtBlock }
}

/** A throwaway identity: a requester needs no registered key, but without a deposit it can only use a fee-less network. */
export async function throwawayKeystore (): Promise<Keystore> {
  const privateKey = await generateKeyPair('Ed25519')
  const bls = generateBlsSecretKey()
  return { dir: '(memory)', privateKey, peerId: peerIdFromPrivateKey(privateKey), blsSecretKey: bls, blsPublicKey: blsPublicKeyOf(bls), account: privateKeyToAccount(generatePrivateKey()) }
}
