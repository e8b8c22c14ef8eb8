import { mkdtemp, mkdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createOperatorSet, signProofOfPossession, writeGenesis, type OperatorSet } from '../consensus/index.js'
import { resolveConfig } from './config.js'
import { loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from './inference/index.js'
import { ChildNode, prepareNodeDir, type NodeEvent } from './launcher.js'
import { PoiNode } from './poi-node.js'
import { requestInference, waitForNetwork } from './requester.js'
import { formatSummary } from './summary.js'

export const DEFAULT_DEVNET_OPERATORS = 4
const DEVNET_CHAIN_ID = 31337n
/** No chain yet: the signing domain names a fixed placeholder contract address. */
const DEVNET_TASK_MANAGER = '0x00000000000000000000000000000000000005e1' as const
const STAKE_WEI = 32n * 10n ** 18n
const READY_TIMEOUT_MS = 30_000
/** Gossipsub grafts on its 1 s heartbeat; a few heartbeats give every node a mesh. */
const MESH_TIMEOUT_MS = 15_000
const DEVNET_TASK_TIMEOUT_MS = 30_000

/** A deterministic example input for the shipped 16-feature classifier. */
export function exampleInput (seed = 1): Uint8Array {
  const data = Array.from({ length: 16 }, (_, i) => Math.round(Math.sin(seed * 7.1 + i * 1.3) * 1000) / 1000)
  return new TextEncoder().encode(JSON.stringify({ x: { dims: [1, 16], data } }))
}

export interface LocalNetwork {
  root: string
  genesisPath: string
  operatorSet: OperatorSet
  bootstrap: ChildNode
  bootstrapAddr: string
  operators: ChildNode[]
  aggregator: ChildNode
  stop: () => Promise<void>
}

export interface LocalNetworkOptions {
  root: string
  operators: number
  graceMs?: number
  progress?: (line: string) => void
  /** Extra flags per operator (e.g. --model-dir). */
  operatorArgs?: (index: number) => string[]
  /** Extra flags for every node (e.g. --probe). */
  nodeArgs?: string[]
}

/**
 * Starts a bootstrap node, n operators and one aggregator as separate
 * processes on 127.0.0.1, each with fresh keys and its own data directory,
 * and waits until every node has gossip mesh peers on every topic.
 */
export async function startLocalNetwork (opts: LocalNetworkOptions): Promise<LocalNetwork> {
  const progress = opts.progress ?? (() => {})
  const root = resolve(opts.root)
  await mkdir(root, { recursive: true })
  progress(`generating keys for 1 bootstrap, ${opts.operators} operators and 1 aggregator in ${root}`)
  const bootDir = await prepareNodeDir(root, 'bootstrap')
  const opDirs = []
  for (let i = 0; i < opts.operators; i++) opDirs.push(await prepareNodeDir(root, `operator-${i}`))
  const aggDir = await prepareNodeDir(root, 'aggregator')
  const operatorSet = createOperatorSet({
    epoch: 0n,
    domain: { chainId: DEVNET_CHAIN_ID, taskManager: DEVNET_TASK_MANAGER },
    operators: opDirs.map(d => ({ address: d.keys.account.address, blsPublicKey: d.keys.blsPublicKey, stake: STAKE_WEI, peerId: d.keys.peerId.toString() }))
  })
  const genesisPath = join(root, 'genesis.json')
  await writeGenesis(genesisPath, operatorSet, opDirs.map(d => signProofOfPossession(d.keys.blsSecretKey, d.keys.account.address)))

  const children: ChildNode[] = []
  const stop = async (): Promise<void> => { await Promise.all(children.map(async c => await c.stop())) }
  const common = (d: { keystore: string, dataDir: string }): string[] => ['--keystore', d.keystore, '--data-dir', d.dataDir, '--genesis', genesisPath, '--listen', '/ip4/127.0.0.1/tcp/0', ...(opts.nodeArgs ?? [])]
  try {
    progress('starting bootstrap node')
    const bootstrap = new ChildNode('bootstrap', ['bootstrap', ...common(bootDir)], join(root, 'bootstrap.log'))
    children.push(bootstrap)
    const ready = await bootstrap.ready(READY_TIMEOUT_MS)
    const bootstrapAddr = ready.addrs.find(a => a.includes('/tcp/')) ?? ready.addrs[0]
    progress(`bootstrap ${bootstrapAddr}`)
    const grace = opts.graceMs != null ? ['--grace-ms', String(opts.graceMs)] : []
    const operators = opDirs.map((d, i) => new ChildNode(`operator-${i}`, ['operator', ...common(d), '--bootstrap', bootstrapAddr, ...(opts.operatorArgs?.(i) ?? [])], join(root, `operator-${i}.log`)))
    children.push(...operators)
    const aggregator = new ChildNode('aggregator', ['aggregator', ...common(aggDir), '--bootstrap', bootstrapAddr, ...grace], join(root, 'aggregator.log'))
    children.push(aggregator)
    progress(`starting ${operators.length} operators and an aggregator`)
    await Promise.all([...operators, aggregator].map(async c => await c.ready(READY_TIMEOUT_MS)))
    progress('all nodes up; waiting for gossip meshes')
    // Operators only publish attestations (to known subscribers); relays and aggregators mesh on them.
    const meshed = (c: ChildNode) => (e: NodeEvent): boolean => e.event === 'mesh' && (e.tasks as number) > 0 && (e.certificates as number) > 0 &&
      (operators.includes(c) ? (e.attestationSubscribers as number) > 0 : (e.attestations as number) > 0)
    await Promise.all(children.map(async c => await c.waitFor(meshed(c), MESH_TIMEOUT_MS, 'gossip mesh')))
    return { root, genesisPath, operatorSet, bootstrap, bootstrapAddr, operators, aggregator, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

export interface DevnetOptions {
  operators?: number
  keep?: boolean
  dir?: string
}

/** `poi devnet` / `npm start`: a whole network on this machine, one task end to end. */
export async function runDevnet (opts: DevnetOptions): Promise<number> {
  const started = Date.now()
  const n = opts.operators ?? DEFAULT_DEVNET_OPERATORS
  if (n < 3) throw new Error(`a devnet needs at least 3 operators (a certificate needs 3 signers), got ${n}`)
  const root = opts.dir != null ? resolve(opts.dir) : await mkdtemp(join(tmpdir(), 'poi-devnet-'))
  const progress = (line: string): void => { console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`) }
  const net = await startLocalNetwork({ root, operators: n, progress })
  let requester: PoiNode | undefined
  let code = 1
  try {
    const model = await loadModelDir(SHIPPED_MODEL_DIR)
    const keys = (await prepareNodeDir(root, 'requester')).keys
    const config = resolveConfig({ keystore: keys.dir, dataDir: join(root, 'requester', 'data'), genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], listen: [] })
    requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: keys, config, operatorSet: net.operatorSet })
    progress('requester (light peer) connecting')
    await waitForNetwork(requester)
    progress(`sending a task for model ${model.manifest.name}`)
    const result = await requestInference(requester, keys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: DEVNET_TASK_TIMEOUT_MS }, progress)
    console.log('\n' + formatSummary(result, net.operatorSet, `${model.manifest.name} (${modelIdToString(model.modelId)})`) + '\n')
    code = 0
  } catch (err) {
    console.error(`devnet: ${(err as Error).message}\nnode logs are in ${root}`)
  } finally {
    await requester?.stop()
  }
  if (opts.keep === true) {
    console.log(`network left running (Ctrl-C to stop). Bootstrap: ${net.bootstrapAddr}\ntry: poi request --bootstrap ${net.bootstrapAddr} --genesis ${net.genesisPath} --input '${new TextDecoder().decode(exampleInput(2))}'`)
    await new Promise<void>(resolve => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
  }
  await net.stop()
  if (opts.dir == null && opts.keep !== true && code === 0) await rm(root, { recursive: true, force: true })
  progress(code === 0 ? 'done' : 'failed')
  return code
}
