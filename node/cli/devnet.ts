import { mkdtemp, mkdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createOperatorSet, signProofOfPossession, writeGenesis, type OperatorSet } from '../../consensus/index.js'
import { resolveConfig } from '../config.js'
import { encodeTensorFile, formatCanonicalOutput, loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../inference/index.js'
import { NpmModelNotInstalledError, modelDirFromNpm, npmModelSampleInput } from '../fixtures/index.js'
import { MAX_INLINE_INPUT_BYTES } from '../../protocols/wire/index.js'
import { createPublicClient, createWalletClient, defineChain, hexToBytes, http, type PublicClient } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import {
  ANVIL_PRIVATE_KEYS, advanceEpoch, deployPoi, registerModel, registerOperator, startAnvil, type Anvil,
  type PoiDeployment
} from '../../contracts/index.js'
import { ChainClient } from '../chain-client.js'
import { writeDeployment } from '../deployment.js'
import type { Keystore } from '../keys.js'
import { ChildNode, prepareNodeDir, type NodeEvent } from './launcher.js'
import { PoiNode } from '../poi-node.js'
import { fetchOutput, requestInference, waitForNetwork } from '../requester/index.js'
import { formatSummary } from './summary.js'

export const DEFAULT_DEVNET_OPERATORS = 4
export const DEVNET_CHAIN_ID = 31337n
/** No chain yet: the signing domain names a fixed placeholder contract address. */
export const DEVNET_TASK_MANAGER = '0x00000000000000000000000000000000000005e1' as const
export const STAKE_WEI = 32n * 10n ** 18n
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
  /** The operator set file (genesis mode) or the deployment file (chain mode) nodes were given. */
  genesisPath: string
  operatorSet: OperatorSet
  /** Chain mode: the anvil chain, the deployed contracts and a read-only client. */
  chain?: { anvil: Anvil, deployment: PoiDeployment, deploymentPath: string, client: ChainClient }
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
      chain = await startChain(root, opDirs.map(d => d.keys), [aggDir.keys], (opts.extraModels ?? []).map(m => m.modelId), progress)
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
      await writeGenesis(genesisPath, operatorSet, opDirs.map(d => signProofOfPossession(d.keys.blsSecretKey, d.keys.account.address)))
      source = ['--genesis', genesisPath]
    }
  } catch (err) {
    await stop()
    throw err
  }
  const common = (d: { keystore: string, dataDir: string }): string[] => ['--keystore', d.keystore, '--data-dir', d.dataDir, ...source, '--listen', '/ip4/127.0.0.1/tcp/0', ...(opts.nodeArgs ?? [])]
  try {
    progress('starting bootstrap node')
    const modelDirs = (opts.extraModels ?? []).length === 0 ? [] : [SHIPPED_MODEL_DIR, ...opts.extraModels!.map(m => m.dir)].flatMap(d => ['--model-dir', d])
    const bootstrap = new ChildNode('bootstrap', ['bootstrap', ...common(bootDir), ...modelDirs], join(root, 'bootstrap.log'))
    children.push(bootstrap)
    const ready = await bootstrap.ready(READY_TIMEOUT_MS)
    const bootstrapAddr = ready.addrs.find(a => a.includes('/tcp/')) ?? ready.addrs[0]
    progress(`bootstrap ${bootstrapAddr}`)
    const grace = opts.graceMs != null ? ['--grace-ms', String(opts.graceMs)] : []
    // Operators start without the model: the bootstrap node holds it and
    // announces its shards on the DHT, and operators fetch it for the first task.
    const operators = opDirs.map((d, i) => new ChildNode(`operator-${i}`, ['operator', ...common(d), '--bootstrap', bootstrapAddr, ...(opts.operatorArgs?.(i) ?? ['--no-model-dir'])], join(root, `operator-${i}.log`)))
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
    return { root, genesisPath, operatorSet, chain, bootstrap, bootstrapAddr, operators, aggregator, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** Devnet chain parameters: epochs may advance at once, exits wait a minute. */
const DEVNET_DEPLOY = { epochDuration: 0n, exitDelay: 60n, minStake: 10n ** 18n }
/** Gas money for every node that sends transactions. */
const DEVNET_FUNDING_WEI = 1_000n * 10n ** 18n

/**
 * Starts anvil, deploys the contracts from anvil's first account, funds the
 * operators and aggregators, registers each operator with its own keys
 * (stake + BLS key + proof of possession) and starts epoch 1.
 */
async function startChain (root: string, operators: Keystore[], others: Keystore[], extraModelIds: Uint8Array[], progress: (line: string) => void): Promise<NonNullable<LocalNetwork['chain']>> {
  progress('starting anvil (prague) on 127.0.0.1')
  const anvil = await startAnvil()
  try {
    const chainDef = defineChain({ id: anvil.chainId, name: 'anvil', nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [anvil.rpcUrl] } } })
    const transport = http(anvil.rpcUrl)
    const publicClient = createPublicClient({ chain: chainDef, transport, pollingInterval: 100 }) as PublicClient
    const deployer = createWalletClient({ chain: chainDef, transport, account: privateKeyToAccount(ANVIL_PRIVATE_KEYS[0]) })
    progress('deploying OperatorRegistry, TaskManager, SlashingManager and ModelRegistry')
    const deployment = await deployPoi(deployer, publicClient, DEVNET_DEPLOY)
    for (const k of [...operators, ...others]) {
      const hash = await deployer.sendTransaction({ to: k.account.address, value: DEVNET_FUNDING_WEI })
      await publicClient.waitForTransactionReceipt({ hash })
    }
    progress(`registering ${operators.length} operators with ${STAKE_WEI / 10n ** 18n} ETH stake each`)
    for (const k of operators) {
      const wallet = createWalletClient({ chain: chainDef, transport, account: k.account })
      await registerOperator(wallet, publicClient, deployment.registry, k.blsSecretKey, STAKE_WEI)
    }
    const { epoch } = await advanceEpoch(deployer, publicClient, deployment.registry)
    progress(`epoch ${epoch} started with ${operators.length} operators`)
    // Nodes on a chain run only models active in the ModelRegistry.
    const model = await loadModelDir(SHIPPED_MODEL_DIR)
    for (const id of [model.modelId, ...extraModelIds]) await registerModel(deployer, publicClient, deployment.modelRegistry, id, 0n)
    progress(`${1 + extraModelIds.length} model(s) registered in the ModelRegistry`)
    const deploymentPath = join(root, 'deployment.json')
    await writeDeployment(deploymentPath, { rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, ...deployment })
    const client = await ChainClient.connect({ rpcUrl: anvil.rpcUrl, registry: deployment.registry, taskManager: deployment.taskManager, slashing: deployment.slashing, modelRegistry: deployment.modelRegistry, deployedAtBlock: deployment.deployedAtBlock })
    return { anvil, deployment, deploymentPath, client }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}

export interface DevnetOptions {
  operators?: number
  keep?: boolean
  dir?: string
  /** Without a chain: the operator set from a genesis file, certificates only off-chain. */
  offchain?: boolean
  /** Real models from npm dev dependencies to run after the shipped one (NPM_MODELS keys); default DEFAULT_DEVNET_NPM_MODELS. */
  npmModels?: string[]
}

/**
 * The PaddleOCR text-direction classifier: a real model (579 KB, so it
 * travels as a shard) whose 110 KB sample input is above the inline limit,
 * so the default devnet also sends an input by stream reference.
 */
export const DEFAULT_DEVNET_NPM_MODELS = ['ppocr-cls']

/** How long the devnet waits for the aggregator's transaction after the QC formed. */
const SETTLEMENT_TIMEOUT_MS = 30_000

/** `poi devnet` / `npm start`: a whole network on this machine, one task end to end. */
export async function runDevnet (opts: DevnetOptions): Promise<number> {
  const started = Date.now()
  const n = opts.operators ?? DEFAULT_DEVNET_OPERATORS
  if (n < 3) throw new Error(`a devnet needs at least 3 operators (a certificate needs 3 signers), got ${n}`)
  const root = opts.dir != null ? resolve(opts.dir) : await mkdtemp(join(tmpdir(), 'poi-devnet-'))
  const progress = (line: string): void => { console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`) }
  // Real models are dev dependencies: without them (a production install) the devnet runs the shipped model only.
  const extraModels: Array<{ key: string, dir: string, modelId: Uint8Array, name: string }> = []
  for (const key of opts.npmModels ?? DEFAULT_DEVNET_NPM_MODELS) {
    try {
      const m = await modelDirFromNpm(key, join(root, 'models', key))
      extraModels.push({ key, dir: join(root, 'models', key), modelId: m.modelId, name: m.manifest.name })
    } catch (err) {
      if (!(err instanceof NpmModelNotInstalledError)) throw err
      progress(`skipping ${key}: ${err.message}`)
    }
  }
  const net = await startLocalNetwork({ root, operators: n, progress, chain: opts.offchain !== true, extraModels })
  let requester: PoiNode | undefined
  let code = 1
  try {
    const model = await loadModelDir(SHIPPED_MODEL_DIR)
    const keys = (await prepareNodeDir(root, 'requester')).keys
    const config = resolveConfig({ keystore: keys.dir, dataDir: join(root, 'requester', 'data'), genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], listen: [], chain: net.chain?.client.config })
    requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: keys, config, operatorSet: net.operatorSet })
    progress('requester (light peer) connecting')
    await waitForNetwork(requester)
    progress(`sending a task for model ${model.manifest.name}`)
    const result = await requestInference(requester, keys.account, { modelId: model.modelId, input: exampleInput(), timeoutMs: DEVNET_TASK_TIMEOUT_MS }, progress)
    console.log('\n' + formatSummary(result, net.operatorSet, `${model.manifest.name} (${modelIdToString(model.modelId)})`))
    const mlp = modelIdToString(model.modelId)
    const fetched = net.operators.map(c => c.events.find(e => e.event === 'model' && e.modelId === mlp && e.fromStore === false)).filter(e => e != null)
    console.log(`model shards: ${fetched.length} of ${net.operators.length} operators fetched the model through the DHT from the bootstrap node` +
      (fetched.length > 0 ? ` (${Math.max(...fetched.map(e => e.ms as number))} ms at most)` : '') + '\n')
    if (net.chain != null) {
      progress('waiting for the aggregator to settle the certificate on-chain')
      const onChain = await net.chain.client.waitForAcceptance(result.taskId, SETTLEMENT_TIMEOUT_MS)
      const offChain = `0x${Buffer.from(result.certificate.resultHash).toString('hex')}`
      const same = onChain.resultHash.toLowerCase() === offChain
      // The chain holds only the reference; the output itself is off-chain, in the operators' stream channels.
      const resolved = await fetchOutput(requester, hexToBytes(onChain.outputRef), hexToBytes(onChain.resultHash))
        .then(output => `resolves over /poi/stream/1/ to the ${output.length}-byte output with that result hash`)
        .catch((err: Error) => `NOT resolved: ${err.message}`)
      console.log([
        '',
        `on-chain    TaskManager ${net.chain.deployment.taskManager} (chain ${net.chain.anvil.chainId})`,
        `  tx        ${onChain.txHash}`,
        `  gas used  ${onChain.gasUsed}`,
        `  result    ${onChain.resultHash} (epoch ${onChain.epoch}, ${same ? 'matches the off-chain certificate' : 'DIFFERS from the off-chain certificate ' + offChain})`,
        `  outputRef ${onChain.outputRef} (${resolved})`,
        `  posted by ${onChain.submitter}`,
        ''
      ].join('\n'))
      if (!same) throw new Error('the on-chain result differs from the verified off-chain certificate')
      if (resolved.startsWith('NOT')) throw new Error(`the on-chain outputRef does not resolve: ${resolved}`)
    }
    for (const m of extraModels) {
      const input = encodeTensorFile(npmModelSampleInput(m.key))
      progress(`sending a task for ${m.name}, a real model from npm, with its ${input.length}-byte sample input`)
      const r = await requestInference(requester, keys.account, { modelId: m.modelId, input, timeoutMs: DEVNET_TASK_TIMEOUT_MS }, progress)
      const settled = net.chain != null ? await net.chain.client.waitForAcceptance(r.taskId, SETTLEMENT_TIMEOUT_MS) : undefined
      console.log([
        '',
        `${m.name} (${modelIdToString(m.modelId)})`,
        `  input     ${input.length} bytes, ${input.length > MAX_INLINE_INPUT_BYTES ? 'by stream reference' : 'inline in the task'}`,
        `  output    ${formatCanonicalOutput(r.output)}${r.certificate.output.length === 0 ? ' (by stream reference)' : ''}`,
        `  verified  ${r.signers.length} of ${net.operatorSet.operators.length} operators signed, ${(r.certifiedAt - r.announcedAt).toFixed(1)} ms after the announcement`,
        ...(settled != null ? [`  on-chain  ${settled.txHash} (${settled.resultHash === `0x${Buffer.from(r.certificate.resultHash).toString('hex')}` ? 'same result' : 'DIFFERENT result'})`] : []),
        ''
      ].join('\n'))
    }
    code = 0
  } catch (err) {
    console.error(`devnet: ${(err as Error).message}\nnode logs are in ${root}`)
  } finally {
    await requester?.stop()
  }
  if (opts.keep === true) {
    const source = net.chain != null ? `--rpc ${net.chain.client.config.rpcUrl}` : `--genesis ${net.genesisPath}`
    console.log(`network left running (Ctrl-C to stop). Bootstrap: ${net.bootstrapAddr}\ntry: poi request --bootstrap ${net.bootstrapAddr} ${source} --input '${new TextDecoder().decode(exampleInput(2))}'`)
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
