import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createOperatorSet, type OperatorSet } from '../../consensus/index.js'
import { resolveConfig } from '../../node/config.js'
import { generateKeystore, loadKeystore, type Keystore } from '../../node/keys.js'
import type { EventStreamInit } from '../../node/api/index.js'
import { PoiNode, type PoiNodeOptions } from '../../node/poi-node.js'
import { TOPICS, type GossipRouter, type TopicHandler } from '../../protocols/gossip/index.js'
import { waitForNetwork } from '../../node/requester/index.js'
import { freshKeysAsync } from './keys.js'
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
  stop: () => Promise<void>
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
}

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
  const operatorSet = createOperatorSet({
    epoch: 0n,
    domain: { chainId: TEST_CHAIN_ID, taskManager: TEST_TASK_MANAGER },
    operators: keys.map(k => ({ address: k.account.address, blsPublicKey: k.blsPublicKey, stake: STAKE }))
  })
  const configFor = (name: string, bootstrap: string[], light = false, noModels = false): ReturnType<typeof resolveConfig> => resolveConfig({
    ...(noModels ? { modelDirs: [] } : {}),
    keystore: join(root, name, 'keys'),
    dataDir: join(root, name, 'data'),
    genesis: join(root, 'genesis.json'),
    listen: light ? [] : ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    graceMs: opts.graceMs ?? 250,
    ...(opts.maxTaskTtlMs !== undefined ? { maxTaskTtlMs: opts.maxTaskTtlMs } : {}),
    ...(opts.http === true && !light ? { http: '127.0.0.1:0' } : {})
  })
  const fresh = async (name: string): Promise<Keystore> => {
    await generateKeystore(join(root, name, 'keys'))
    return await loadKeystore(join(root, name, 'keys'))
  }
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map(async n => await n.stop()))
    await rm(root, { recursive: true, force: true })
  }
  try {
    const bootKeys = await fresh('bootstrap')
    const bootstrap = await PoiNode.start({ operate: false, aggregate: false, light: false, keystore: bootKeys, config: configFor('bootstrap', []), operatorSet, backupAggregation: opts.backupAggregation, eventStream: opts.eventStream })
    nodes.push(bootstrap)
    const bootstrapAddr = bootstrap.addresses()[0]
    const operators: Array<PoiNode | undefined> = []
    for (let i = 0; i < opts.operators; i++) {
      if (opts.offline?.includes(i) === true) { operators.push(undefined); continue }
      const n = await PoiNode.start({ operate: true, aggregate: false, light: false, keystore: keys[i], config: configFor(`op${i}`, [bootstrapAddr], false, opts.operatorsWithoutModels === true), operatorSet, eventStream: opts.eventStream })
      nodes.push(n)
      operators.push(n)
    }
    const aggregator = await PoiNode.start({ operate: false, aggregate: true, light: false, keystore: await fresh('aggregator'), config: configFor('aggregator', [bootstrapAddr]), operatorSet, eventStream: opts.eventStream })
    nodes.push(aggregator)
    const requesterKeys = await fresh('requester')
    const requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: requesterKeys, config: configFor('requester', [bootstrapAddr], true), operatorSet })
    nodes.push(requester)
    const extraNode = async (k: Keystore, name: string): Promise<PoiNode> => {
      const n = await PoiNode.start({ operate: false, aggregate: false, light: false, keystore: k, config: configFor(name, [bootstrapAddr]), operatorSet, backupAggregation: opts.backupAggregation, eventStream: opts.eventStream })
      nodes.push(n)
      return n
    }
    const full = nodes.filter(n => n !== requester)
    const isOperator = (n: PoiNode): boolean => operators.includes(n)
    await until(() => full.every(n => n.meshPeers('tasks') > 0 && n.meshPeers('certificates') > 0 &&
      (isOperator(n) ? n.topicPeers('attestations') > 0 : n.meshPeers('attestations') > 0)), MESH_TIMEOUT_MS, 'gossip meshes on every full node')
    // Every test may announce at once: the requester knows task subscribers and has a certificate mesh.
    await waitForNetwork(requester, { timeoutMs: MESH_TIMEOUT_MS })
    return { root, operatorSet, keys, bootstrap, bootstrapAddr, operators, aggregator, requester, requesterKeys, extraNode, stop }
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
