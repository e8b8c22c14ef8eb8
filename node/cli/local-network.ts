/**
 * A whole poi network on this machine, each node its own process on 127.0.0.1 with fresh keys:
 * a bootstrap node, operators and an aggregator, with the operator set from a genesis file or
 * from a local anvil chain the contracts are deployed to. `poi devnet`, the end-to-end tests
 * and the benchmarks start it.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { createPublicClient, createWalletClient, defineChain, http, type Chain, type PublicClient, type Transport, type WalletClient } from 'viem'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { createOperatorSet, signProofOfPossession, writeGenesis, type OperatorSet } from '../../consensus/index.js'
import {
  ANVIL_PRIVATE_KEYS, DEPLOYMENT_FIELDS, DeploymentMismatchError, advanceEpoch, checkDeployment, deployPoi, deposit, parseDeployment,
  readCurrentEpoch, readOperatorSet, registerModel, registerOperator, startAnvil, type Anvil, type Deployment, type PoiDeployment
} from '../../contracts/index.js'
import { ChainClient } from '../chain-client.js'
import { writeDeployment } from '../deployment.js'
import { encodeManifest, loadModelDir, SHIPPED_MODEL_DIR } from '../inference/index.js'
import type { Keystore } from '../keys.js'
import { guardWithPipe, own } from './children.js'
import { DEVNET_STATE_INTERVAL_S, DevnetResumeError } from './devnet-state.js'
import { ChildNode, openNodeDir, prepareNodeDir, type MeshEvent } from './launcher.js'
import { DEVNET_CHAIN_ID, DEVNET_TASK_MANAGER, STAKE_WEI } from './network-defaults.js'

/**
 * A node is ready in 2-3 s on a quiet machine; five starting at once on two busy cores took
 * over 30 s here (each loads libp2p, onnxruntime and viem before it listens).
 */
const READY_TIMEOUT_MS = 60_000
/** Gossipsub grafts on its 1 s heartbeat; a few heartbeats give every node a mesh. */
const MESH_TIMEOUT_MS = 15_000

export interface LocalNetwork {
  root: string
  /** The operator set file (genesis mode) or the deployment file (chain mode) nodes were given. */
  genesisPath: string
  operatorSet: OperatorSet
  /** Chain mode: the anvil chain, the deployed contracts and a read-only client. */
  chain?: {
    anvil: Anvil
    deployment: PoiDeployment
    deploymentPath: string
    client: ChainClient
    /** Sends `wei` of ETH from the deployer (anvil's first account) to `to`, e.g. a requester that will deposit. */
    fund: (to: `0x${string}`, wei: bigint) => Promise<void>
  }
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
  /** Extra flags for the aggregator (e.g. --batch-max-leaves). */
  aggregatorArgs?: string[]
  /**
   * Run a local anvil chain: deploy the contracts, fund and register the
   * operators, start epoch 1, and point every node at it (--chain).
   */
  chain?: boolean
  /**
   * Models the bootstrap node holds besides the shipped one (model
   * directories); with a chain they are registered in the ModelRegistry too.
   */
  extraModels?: Array<{ dir: string, modelId: Uint8Array }>
  /**
   * Chain mode: anvil keeps its state in this file (dumped every DEVNET_STATE_INTERVAL_S and when
   * it stops), so the network can be resumed.
   */
  stateFile?: string
  /**
   * Resume the network made before in `root`: its keys, data and (chain mode) the chain from
   * `stateFile` and the contracts of `<root>/deployment.json`, nothing deployed, funded or
   * registered again; a new epoch starts.
   */
  resume?: boolean
  /** How long each node may take to print its ready line; default READY_TIMEOUT_MS (larger networks on few cores, or a loaded machine, need more). */
  readyTimeoutMs?: number
  /** How long every node may take to find its gossip meshes once all are up; default MESH_TIMEOUT_MS. */
  meshTimeoutMs?: number
  /**
   * Start the operators and the aggregator this many at a time, each wave ready before the next
   * starts; default all at once. Tens of processes loading their modules together on two cores
   * each take far longer to be ready than a few at a time do.
   */
  startWave?: number
  /** Extra environment per operator (the chaos suite's POI_TEST_FAULT, node/roles/test-faults.ts; NODE_OPTIONS to compare V8 settings side by side). */
  operatorEnv?: (index: number) => NodeJS.ProcessEnv
}

/** The deployment file of a chain-mode network, in its root. */
export const DEPLOYMENT_FILE = 'deployment.json'

/**
 * Starts a bootstrap node, n operators and one aggregator as separate
 * processes on 127.0.0.1, each with fresh keys and its own data directory,
 * and waits until every node has gossip mesh peers on every topic.
 */
export async function startLocalNetwork (opts: LocalNetworkOptions): Promise<LocalNetwork> {
  const progress = opts.progress ?? (() => {})
  const root = resolve(opts.root)
  await mkdir(root, { recursive: true })
  const resume = opts.resume === true
  progress(resume
    ? `reusing the keys of 1 bootstrap, ${opts.operators} operators and 1 aggregator in ${root}`
    : `generating keys for 1 bootstrap, ${opts.operators} operators and 1 aggregator in ${root}`)
  const nodeDir = resume ? openNodeDir : prepareNodeDir
  const bootDir = await nodeDir(root, 'bootstrap')
  const opDirs = []
  for (let i = 0; i < opts.operators; i++) opDirs.push(await nodeDir(root, `operator-${i}`))
  const aggDir = await nodeDir(root, 'aggregator')
  const children: ChildNode[] = []
  let chain: LocalNetwork['chain']
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(async c => await c.stop()))
    await chain?.anvil.stop()
  }
  let operatorSet: OperatorSet
  let genesisPath: string
  let source: string[]
  try {
    if (opts.chain === true) {
      chain = resume
        ? await resumeChain(root, opDirs.map(d => d.keys), opts.stateFile, progress)
        : await startChain(root, opDirs.map(d => d.keys), [aggDir.keys], (opts.extraModels ?? []).map(m => m.dir), opts.stateFile, progress)
      operatorSet = await chain.client.operatorSet()
      genesisPath = chain.deploymentPath
      source = ['--chain', chain.deploymentPath]
    } else {
      operatorSet = createOperatorSet({
        epoch: 0n,
        domain: { chainId: DEVNET_CHAIN_ID, taskManager: DEVNET_TASK_MANAGER },
        operators: opDirs.map(d => ({ address: d.keys.account.address, blsPublicKey: d.keys.blsPublicKey, stake: STAKE_WEI, peerId: d.keys.peerId.toString() }))
      })
      genesisPath = join(root, 'genesis.json')
      if (resume) progress(`resuming the devnet in ${root} (off-chain: the operator set of ${genesisPath})`)
      // Rewritten on a resume too: the same keys give the same file.
      await writeGenesis(genesisPath, operatorSet, opDirs.map(d => signProofOfPossession(d.keys.blsSecretKey, d.keys.account.address)))
      source = ['--genesis', genesisPath]
    }
  } catch (err) {
    await stop()
    throw err
  }
  // Every node serves its HTTP API and network page on a free loopback port (ChildNode.httpUrl, from its ready line).
  const common = (d: { keystore: string, dataDir: string }): string[] => ['--keystore', d.keystore, '--data-dir', d.dataDir, ...source, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '127.0.0.1:0', ...(opts.nodeArgs ?? [])]
  try {
    progress('starting bootstrap node')
    const modelDirs = (opts.extraModels ?? []).length === 0 ? [] : [SHIPPED_MODEL_DIR, ...opts.extraModels!.map(m => m.dir)].flatMap(d => ['--model-dir', d])
    const bootstrap = new ChildNode('bootstrap', ['bootstrap', ...common(bootDir), ...modelDirs], join(root, 'bootstrap.log'))
    children.push(bootstrap)
    const readyTimeoutMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS
    const ready = await bootstrap.ready(readyTimeoutMs)
    const bootstrapAddr = ready.addrs.find(a => a.includes('/tcp/')) ?? ready.addrs[0]
    progress(`bootstrap ${bootstrapAddr}`)
    const grace = opts.graceMs != null ? ['--grace-ms', String(opts.graceMs)] : []
    // Operators start without the model: the bootstrap node holds it and
    // announces its shards on the DHT, and operators fetch it for the first task.
    const starts = [
      ...opDirs.map((d, i) => () => new ChildNode(`operator-${i}`, ['operator', ...common(d), '--bootstrap', bootstrapAddr, ...(opts.operatorArgs?.(i) ?? ['--no-model-dir'])], join(root, `operator-${i}.log`), opts.operatorEnv?.(i))),
      () => new ChildNode('aggregator', ['aggregator', ...common(aggDir), '--bootstrap', bootstrapAddr, ...grace, ...(opts.aggregatorArgs ?? [])], join(root, 'aggregator.log'))
    ]
    const wave = Math.max(1, opts.startWave ?? starts.length)
    progress(`starting ${opDirs.length} operators and an aggregator${wave < starts.length ? ` (${wave} at a time)` : ''}`)
    for (let i = 0; i < starts.length; i += wave) {
      const started = starts.slice(i, i + wave).map(start => start())
      children.push(...started)
      await Promise.all(started.map(async c => await c.ready(readyTimeoutMs)))
      if (wave < starts.length) progress(`${Math.min(i + wave, starts.length)} of ${starts.length} ready`)
    }
    const operators = children.slice(1, 1 + opDirs.length)
    const aggregator = children[children.length - 1]
    progress('all nodes up; waiting for gossip meshes')
    // Operators only publish attestations (to known subscribers); relays and aggregators mesh on them.
    const meshed = (c: ChildNode) => (e: MeshEvent): boolean => e.tasks > 0 && e.certificates > 0 &&
      (operators.includes(c) ? e.attestationSubscribers > 0 : e.attestations > 0)
    await Promise.all(children.map(async c => await c.waitForEvent('mesh', meshed(c), opts.meshTimeoutMs ?? MESH_TIMEOUT_MS, 'gossip mesh')))
    return { root, genesisPath, operatorSet, chain, bootstrap, bootstrapAddr, operators, aggregator, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/**
 * The devnet's treasury: anvil's second account, so its credit is not mixed with the model
 * owner's (the deployer, anvil's first account, registers the models).
 */
export const DEVNET_TREASURY = privateKeyToAccount(ANVIL_PRIVATE_KEYS[1]).address
/**
 * Devnet chain parameters: epochs may advance at once, exits wait a minute; fees as deployed
 * by default (protocolFeeBps, minTaskFee) with a treasury of its own.
 */
const DEVNET_DEPLOY = { epochDuration: 0n, exitDelay: 60n, minStake: 10n ** 18n, treasury: DEVNET_TREASURY }
/**
 * The shipped model's owner fee on the devnet: non-zero, so a paid task's fee splits three ways
 * (owner, treasury, signers). The npm models are registered free (their tasks pay the minimum).
 */
export const DEVNET_MODEL_FEE = 10n ** 15n
/** Gas money for every node that sends transactions. */
const DEVNET_FUNDING_WEI = 1_000n * 10n ** 18n
/**
 * Starts anvil, deploys the contracts from anvil's first account, funds the
 * operators and aggregators, registers each operator with its own keys
 * (stake + BLS key + proof of possession) and starts epoch 1. The same account
 * registers the models, so their manifests must name it as owner (the shipped
 * and fixture models do: DEVNET_MODEL_OWNER in node/fixtures).
 */
async function startChain (root: string, operators: Keystore[], others: Keystore[], extraModelDirs: string[], stateFile: string | undefined, progress: (line: string) => void): Promise<NonNullable<LocalNetwork['chain']>> {
  progress('starting anvil (prague) on 127.0.0.1')
  const anvil = await startOwnedAnvil({ dumpState: stateFile })
  try {
    const { publicClient, deployer } = anvilClients(anvil)
    progress('deploying OperatorRegistry, TaskManager, SlashingManager, ModelRegistry and the ERC-8004 Identity and Validation registries')
    const deployment = await deployPoi(deployer, publicClient, DEVNET_DEPLOY)
    for (const k of [...operators, ...others]) {
      const hash = await deployer.sendTransaction({ to: k.account.address, value: DEVNET_FUNDING_WEI })
      await publicClient.waitForTransactionReceipt({ hash })
    }
    progress(`registering ${operators.length} operators with ${STAKE_WEI / 10n ** 18n} ETH stake each`)
    for (const k of operators) {
      const wallet = createWalletClient({ chain: deployer.chain, transport: http(anvil.rpcUrl), account: k.account })
      await registerOperator(wallet, publicClient, deployment.registry, k.blsSecretKey, STAKE_WEI)
    }
    const { epoch } = await advanceEpoch(deployer, publicClient, deployment.registry)
    progress(`epoch ${epoch} started with ${operators.length} operators`)
    // Nodes on a chain run only models active in the ModelRegistry.
    // The shipped model charges an owner fee, so a paid task's fee splits three ways; the others are free.
    for (const dir of [SHIPPED_MODEL_DIR, ...extraModelDirs]) {
      const model = await loadModelDir(dir)
      await registerModel(deployer, publicClient, deployment.modelRegistry, model.modelId, encodeManifest(model.manifest), dir === SHIPPED_MODEL_DIR ? DEVNET_MODEL_FEE : 0n)
    }
    progress(`${1 + extraModelDirs.length} model(s) registered in the ModelRegistry`)
    const deploymentPath = join(root, DEPLOYMENT_FILE)
    await writeDeployment(deploymentPath, { rpcUrl: anvil.rpcUrl, ...deployment })
    const client = await ChainClient.connect({ rpcUrl: anvil.rpcUrl, ...deployment })
    return { anvil, deployment, deploymentPath, client, fund: funder(publicClient, deployer) }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}

/** anvil for a local network: owned like the nodes (node/cli/children.ts), stopped with the devnet and killed by a guard if the devnet dies. */
async function startOwnedAnvil (state: { loadState?: string, dumpState?: string }): Promise<Anvil> {
  return await startAnvil({
    ...state,
    stateIntervalS: state.dumpState != null ? DEVNET_STATE_INTERVAL_S : undefined,
    onSpawn: proc => { own(proc); guardWithPipe(proc) }
  })
}

/** A reader and the deployer's wallet (anvil's first account) on `anvil`. */
export function anvilClients (anvil: Anvil): { publicClient: PublicClient, deployer: WalletClient<Transport, Chain, PrivateKeyAccount> } {
  const chainDef = defineChain({ id: anvil.chainId, name: 'anvil', nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [anvil.rpcUrl] } } })
  const transport = http(anvil.rpcUrl)
  const publicClient = createPublicClient({ chain: chainDef, transport, pollingInterval: 100 }) as PublicClient
  const deployer = createWalletClient({ chain: chainDef, transport, account: privateKeyToAccount(ANVIL_PRIVATE_KEYS[0]) })
  return { publicClient, deployer }
}

/** Sends ETH from the deployer, e.g. gas money and a deposit for a requester. */
function funder (publicClient: PublicClient, deployer: WalletClient<Transport, Chain, PrivateKeyAccount>): (to: `0x${string}`, wei: bigint) => Promise<void> {
  return async (to, wei) => {
    await publicClient.waitForTransactionReceipt({ hash: await deployer.sendTransaction({ to, value: wei }) })
  }
}

/**
 * A network's chain as it was left: anvil loads `stateFile` (and keeps dumping to it), the
 * contracts are those of `<root>/deployment.json`, checked to be there, and the file gets
 * the new RPC URL. Nothing is deployed, funded or registered; a new epoch starts.
 */
async function resumeChain (root: string, operators: Keystore[], stateFile: string | undefined, progress: (line: string) => void): Promise<NonNullable<LocalNetwork['chain']>> {
  if (stateFile === undefined) throw new DevnetResumeError('resuming a chain needs the state file anvil dumped')
  const deploymentPath = join(root, DEPLOYMENT_FILE)
  const { deployment, json } = await readFullDeployment(deploymentPath)
  progress(`starting anvil (prague) on 127.0.0.1 from the state in ${stateFile}`)
  const anvil = await startOwnedAnvil({ loadState: stateFile, dumpState: stateFile })
  try {
    const { publicClient, deployer } = anvilClients(anvil)
    try {
      await checkDeployment(publicClient, deployment)
    } catch (err) {
      if (!(err instanceof DeploymentMismatchError)) throw err
      throw new DevnetResumeError(`the chain state in ${stateFile} does not hold the contracts of ${deploymentPath} (${err.message}): it was saved before the deployment finished or belongs to another devnet; pass --force to start over`)
    }
    const block = await publicClient.getBlockNumber()
    progress(`resuming the devnet in ${root} (chain at block ${block}, epoch ${await readCurrentEpoch(publicClient, deployment.registry)})`)
    // A new epoch for the resumed run: operators' joins and exits made meanwhile (poi operator
    // register|exit) take effect, and its tasks' rewards form a pool of their own, so a paid
    // task's split is exact (signers' rewards are a share of their epoch's pool, whose rounding
    // would otherwise mix with the earlier run's unclaimed fees).
    const { epoch } = await advanceEpoch(deployer, publicClient, deployment.registry)
    progress(`epoch ${epoch} started with ${(await readOperatorSet(publicClient, deployment, epoch)).operators.length} of the devnet's ${operators.length} operators`)
    // Only the URL changes (anvil listens on a new port): the rest of the file stays as written.
    await writeFile(deploymentPath, JSON.stringify({ ...json, rpcUrl: anvil.rpcUrl }, null, 2) + '\n')
    const client = await ChainClient.connect({ rpcUrl: anvil.rpcUrl, ...deployment })
    return { anvil, deployment, deploymentPath, client, fund: funder(publicClient, deployer) }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}

/** The devnet's own deployment file, with every contract a devnet deploys. */
async function readFullDeployment (path: string): Promise<{ deployment: PoiDeployment, json: object }> {
  let json: unknown
  try {
    json = JSON.parse(await readFile(path, 'utf8'))
  } catch (err) {
    throw new DevnetResumeError(`cannot read the devnet's deployment file ${path}: ${(err as Error).message}; pass --force to start over`)
  }
  const d = parseDeployment(json, { source: `deployment file ${path}`, otherKeys: ['rpcUrl'] })
  // a devnet deployed before governance has no governor or timelock, and needs none
  const missing = DEPLOYMENT_FIELDS.filter(f => f !== 'governor' && f !== 'timelock' && d[f] === undefined)
  if (missing.length > 0) throw new DevnetResumeError(`the devnet's deployment file ${path} lacks ${missing.join(', ')}; pass --force to start over`)
  return { deployment: d as PoiDeployment, json: json as object }
}
