import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createOperatorSet, type OperatorSet } from '../../consensus/index.js'
import { ChainClient } from '../../node/chain-client.js'
import { resolveConfig, type NodeConfig } from '../../node/config.js'
import { generateKeystore, loadKeystore, type Keystore } from '../../node/keys.js'
import type { EventStreamInit } from '../../node/api/index.js'
import { PoiNode, type PoiNodeOptions } from '../../node/poi-node.js'
import { TOPICS, type GossipRouter, type TopicHandler } from '../../protocols/gossip/index.js'
import { waitForNetwork } from '../../node/requester/index.js'
import { freshKeysAsync } from './keys.js'
import type { BatchSettlementChain } from '../../node/roles/index.js'
import { nextEpoch, registerAll, type PoiChain } from './poi-chain.js'
import { until } from './wait.js'
import { DEVNET_CHAIN_ID as TEST_CHAIN_ID, DEVNET_TASK_MANAGER as TEST_TASK_MANAGER, STAKE_WEI as STAKE } from '../../node/cli/devnet.js'

export { DEVNET_CHAIN_ID as TEST_CHAIN_ID, DEVNET_TASK_MANAGER as TEST_TASK_MANAGER, STAKE_WEI as STAKE } from '../../node/cli/devnet.js'
export { until } from './wait.js'

export interface TestNetwork {
  root: string
  operatorSet: OperatorSet
  keys: Keystore[]
  bootstrap: PoiNode
  bootstrapAddr: string
  operators: Array<PoiNode | undefined>
  aggregator: PoiNode
  requester: PoiNode
  requesterKeys: Keystore
  /** Starts an extra full node (not operating) with the given keystore. */
  extraNode: (keys: Keystore, name: string) => Promise<PoiNode>
  /**
   * Starts another aggregator with fresh keys (funded on the chain and posting from its own
   * account, with `chain`); the caller waits for its meshes.
   */
  extraAggregator: (name: string, overrides?: AggregatorOverrides) => Promise<PoiNode>
  /** With `chain`: a read-only client of it (the operator set, tabs, settlements). */
  chainClient?: ChainClient
  /** The account an aggregator started here sends from. */
  accountOf: (node: PoiNode) => `0x${string}` | undefined
  stop: () => Promise<void>
}

/** What one aggregator does differently from the network's defaults. */
export interface AggregatorOverrides {
  /** Config settings over the network's (batchMaxLeaves, batchMaxWaitMs, …). */
  config?: Partial<NodeConfig>
  /** PoiNode options over the defaults (e.g. batchBackupDelayMs). */
  node?: Partial<PoiNodeOptions>
  /** With `chain`: what the aggregator settles batches through, from its own funded client (e.g. one that refuses to post them). */
  batchSettlement?: (own: ChainClient) => BatchSettlementChain
}

export interface TestNetworkOptions {
  operators: number
  /** Indices of operators in the set that are not started. */
  offline?: number[]
  graceMs?: number
  /** Operators start without any model and must fetch it through the DHT (the bootstrap node holds it). */
  operatorsWithoutModels?: boolean
  /** false: the bootstrap and extra nodes do not aggregate as backups (to test the aggregator alone). */
  backupAggregation?: boolean
  /** Every node's maximum task TTL (default: the config's, DEFAULT_MAX_TASK_TTL_MS). */
  maxTaskTtlMs?: number
  /** Every full node serves the HTTP API on a free loopback port (node.http.url). */
  http?: boolean
  /** Limits of every full node's `GET /v1/events` (with `http`), e.g. lowered to test a client that stops reading. */
  eventStream?: EventStreamInit
  /**
   * Settle on this anvil chain (startPoiChain, with more accounts than operators): the operators
   * are registered on it with their BLS keys (from anvil account 1 on) and the next epoch
   * started; every full node reads the chain (its operator set, tab sequences), and aggregators
   * post certificates and batches from their own funded accounts. Without it: a genesis
   * operator set of epoch 0 and no chain.
   */
  chain?: PoiChain
  /** The first aggregator's overrides (as for extraAggregator). */
  aggregator?: AggregatorOverrides
}

/** Gas money for an aggregator of a network on anvil. */
const AGGREGATOR_FUNDING_WEI = 100n * 10n ** 18n

/** Gossipsub grafts on its 1 s heartbeat; a few heartbeats are enough, this much leaves room for a loaded machine. */
const MESH_TIMEOUT_MS = 20_000

/**
 * Real libp2p nodes over TCP on 127.0.0.1, in this process: a bootstrap node,
 * n operators (some may be left offline), an aggregator and a light requester. Resolves once
 * every full node has its gossip meshes and the requester can announce (waitForNetwork).
 */
export async function startTestNetwork (opts: TestNetworkOptions): Promise<TestNetwork> {
  const root = await mkdtemp(join(tmpdir(), 'poi-test-'))
  const nodes: PoiNode[] = []
  const keys: Keystore[] = []
  for (let i = 0; i < opts.operators; i++) {
    await generateKeystore(join(root, `op${i}`, 'keys'))
    keys.push(await loadKeystore(join(root, `op${i}`, 'keys')))
  }
  let chainClient: ChainClient | undefined
  let operatorSet: OperatorSet
  if (opts.chain != null) {
    await registerAll(opts.chain, keys.map(k => k.blsSecretKey), keys.map(() => STAKE))
    await nextEpoch(opts.chain)
    chainClient = await ChainClient.connect({ rpcUrl: opts.chain.anvil.rpcUrl, ...opts.chain.deployment })
    operatorSet = await chainClient.operatorSet()
  } else {
    operatorSet = createOperatorSet({
      epoch: 0n,
      domain: { chainId: TEST_CHAIN_ID, taskManager: TEST_TASK_MANAGER },
      operators: keys.map(k => ({ address: k.account.address, blsPublicKey: k.blsPublicKey, stake: STAKE }))
    })
  }
  const reader = chainClient
  /** What every full node reads from the chain, when there is one. */
  const chainReads: Partial<PoiNodeOptions> = reader == null
    ? {}
    : {
        tabSettled: async (requester, sequence) => await reader.tabSettled(requester, sequence),
        networkQuorumBps: async () => await reader.networkQuorumBps(),
        readOperatorSet: async (epoch) => await reader.operatorSet(epoch)
      }
  const configFor = (name: string, bootstrap: string[], light = false, noModels = false): ReturnType<typeof resolveConfig> => resolveConfig({
    ...(noModels ? { modelDirs: [] } : {}),
    keystore: join(root, name, 'keys'),
    dataDir: join(root, name, 'data'),
    genesis: join(root, 'genesis.json'),
    listen: light ? [] : ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    graceMs: opts.graceMs ?? 250,
    ...(opts.maxTaskTtlMs !== undefined ? { maxTaskTtlMs: opts.maxTaskTtlMs } : {}),
    ...(opts.http === true && !light ? { http: '127.0.0.1:0' } : {}),
    ...(reader != null ? { chain: reader.config } : {})
  })
  const fresh = async (name: string): Promise<Keystore> => {
    await generateKeystore(join(root, name, 'keys'))
    return await loadKeystore(join(root, name, 'keys'))
  }
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map(async n => await n.stop()))
    await rm(root, { recursive: true, force: true })
  }
  /** An aggregator; with a chain, funded and posting from its own account. */
  const accounts = new Map<PoiNode, `0x${string}`>()
  const startAggregator = async (name: string, bootstrap: string, overrides: AggregatorOverrides = {}): Promise<PoiNode> => {
    const k = await fresh(name)
    let sender: ChainClient | undefined
    if (opts.chain != null && reader != null) {
      const { publicClient, wallets } = opts.chain
      await publicClient.waitForTransactionReceipt({ hash: await wallets[0].sendTransaction({ to: k.account.address, value: AGGREGATOR_FUNDING_WEI }) })
      sender = await ChainClient.connect(reader.config, k.account)
    }
    const n = await PoiNode.start({
      operate: false, aggregate: true, light: false, keystore: k, config: resolveConfig(configFor(name, [bootstrap]), overrides.config ?? {}), operatorSet, eventStream: opts.eventStream,
      ...chainReads, settlement: sender, batchSettlement: sender != null && overrides.batchSettlement != null ? overrides.batchSettlement(sender) : sender, ...overrides.node
    })
    nodes.push(n)
    accounts.set(n, k.account.address)
    return n
  }
  try {
    const bootKeys = await fresh('bootstrap')
    const bootstrap = await PoiNode.start({ operate: false, aggregate: false, light: false, keystore: bootKeys, config: configFor('bootstrap', []), operatorSet, backupAggregation: opts.backupAggregation, eventStream: opts.eventStream, ...chainReads })
    nodes.push(bootstrap)
    const bootstrapAddr = bootstrap.addresses()[0]
    const operators: Array<PoiNode | undefined> = []
    for (let i = 0; i < opts.operators; i++) {
      if (opts.offline?.includes(i) === true) { operators.push(undefined); continue }
      const n = await PoiNode.start({ operate: true, aggregate: false, light: false, keystore: keys[i], config: configFor(`op${i}`, [bootstrapAddr], false, opts.operatorsWithoutModels === true), operatorSet, eventStream: opts.eventStream, ...chainReads })
      nodes.push(n)
      operators.push(n)
    }
    const aggregator = await startAggregator('aggregator', bootstrapAddr, opts.aggregator)
    const requesterKeys = await fresh('requester')
    const requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: requesterKeys, config: configFor('requester', [bootstrapAddr], true), operatorSet })
    nodes.push(requester)
    const extraNode = async (k: Keystore, name: string): Promise<PoiNode> => {
      const n = await PoiNode.start({ operate: false, aggregate: false, light: false, keystore: k, config: configFor(name, [bootstrapAddr]), operatorSet, backupAggregation: opts.backupAggregation, eventStream: opts.eventStream, ...chainReads })
      nodes.push(n)
      return n
    }
    const full = nodes.filter(n => n !== requester)
    const isOperator = (n: PoiNode): boolean => operators.includes(n)
    await until(() => full.every(n => n.meshPeers('tasks') > 0 && n.meshPeers('certificates') > 0 &&
      (isOperator(n) ? n.topicPeers('attestations') > 0 : n.meshPeers('attestations') > 0)), MESH_TIMEOUT_MS, 'gossip meshes on every full node')
    // Every test may announce at once: the requester knows task subscribers and has a certificate mesh.
    await waitForNetwork(requester, { timeoutMs: MESH_TIMEOUT_MS })
    const extraAggregator = async (name: string, overrides?: AggregatorOverrides): Promise<PoiNode> => await startAggregator(name, bootstrapAddr, overrides)
    return { root, operatorSet, keys, bootstrap, bootstrapAddr, operators, aggregator, requester, requesterKeys, extraNode, extraAggregator, chainClient, accountOf: (n) => accounts.get(n), stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/**
 * One full node (not operating, no models) in this process on `operatorSet`, with a fresh key and
 * its data under `root/name`: the aggregator, observer or attacker of the slashing-evidence tests
 * (conflicting certificates, batch leaves against attestations). With `settlement` and
 * `aggregate` it is a funded aggregator whose submitter posts the evidence it keeps.
 */
export async function startFullNode (
  root: string, name: string,
  opts: { operatorSet: OperatorSet, aggregate: boolean, bootstrap: string[], settlement?: PoiNodeOptions['settlement'] }
): Promise<PoiNode> {
  const config = resolveConfig({
    keystore: join(root, name, 'keys'), dataDir: join(root, name, 'data'), genesis: join(root, 'genesis.json'),
    listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: opts.bootstrap, modelDirs: []
  })
  return await PoiNode.start({
    operate: false, aggregate: opts.aggregate, light: false, keystore: await freshKeysAsync(), config, operatorSet: opts.operatorSet,
    settlement: opts.settlement, backupAggregation: false
  })
}

/** A node's gossip router, to publish what an attacker (or a test standing in for operators) sends. */
export function routerOf (node: PoiNode): GossipRouter {
  return (node as unknown as { router: GossipRouter }).router
}

/** The handler a node runs for a topic's messages, to watch (or wrap) what its validator says and what it handles. */
export function topicHandlerOf (node: PoiNode, topic: keyof typeof TOPICS): TopicHandler {
  const handler = (routerOf(node) as unknown as { handlers: Map<string, TopicHandler> }).handlers.get(TOPICS[topic])
  if (handler === undefined) throw new Error(`the node handles no ${topic} topic`)
  return handler
}
