#!/usr/bin/env node
import { realpathSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import {
  DEFAULT_QUORUM_BPS, createOperatorSet, loadGenesis, signProofOfPossession, writeGenesis,
  generateBlsSecretKey, blsPublicKeyOf, verifyCertificate, type OperatorSet
} from '../../consensus/index.js'
import { defaultConfig, readConfigFile, resolveConfig, type ChainConfig, type NodeConfig } from '../config.js'

/** Reading a handful of contract fields to check a deployment. */
const RPC_CHECK_TIMEOUT_MS = 10_000
import { ChainClient } from '../chain-client.js'
import { createPublicClient, http } from 'viem'
import { multiaddr } from '@multiformats/multiaddr'
import { DeploymentMismatchError, checkDeployment } from '../../contracts/index.js'
import { fetchNetworkInfo, type NetworkDeployment } from '../../protocols/network/index.js'
import { createPoiLibp2p } from '../p2p.js'
import { readDeployment } from '../deployment.js'
import { DEVNET_CHAIN_ID, DEVNET_TASK_MANAGER, STAKE_WEI, runDevnet } from './devnet.js'
import { listStoredModels, publishModelFile, showStoredModel } from './model-commands.js'
import { ModelNotFoundError, fetchManifest } from '../models/index.js'
import {
  InputError, loadModelDir, parseTaskInput, readTaskInput, type ModelManifest, modelIdToString,
  parseModelId, SHIPPED_MODEL_DIR
} from '../inference/index.js'
import { generateKeystore, loadKeystore, publicKeysOf, type Keystore } from '../keys.js'
import { PoiNode, preciseNow } from '../poi-node.js'
import { lookupResult, requestInference, waitForNetwork, DEFAULT_TASK_TIMEOUT_MS } from '../requester/index.js'
import { formatCertified, formatSummary } from './summary.js'

const USAGE = `poi — proof-of-inference node

Usage:
  poi keys generate --dir <keystore> [--force]   create libp2p, BLS and Ethereum keys (files mode 0600)
  poi keys show --dir <keystore>                 print peer id, BLS public key and address
  poi genesis create --out <file> --keystore <dir> [--keystore <dir> …] [--stake <wei>] [--chain-id <id>]
                                                 write an operator set from operators' keystores
  poi operator   [node options] [--aggregate]    run models and attest results (optionally aggregate too)
  poi aggregator [node options]                  build quorum certificates from attestations
  poi bootstrap  [node options]                  relay gossip and answer DHT queries (peer discovery)
  poi request --bootstrap <addr> (--rpc <url> | --chain <deployment.json> | --genesis <file>) --input <json|@file>
              [--model <id|dir>] [--timeout <s>] [--quorum <bps>] [--keystore <dir>] [--json]
                                                 announce a task, wait for its certificate, verify it
                                                 (inputs above 64 KiB go by stream reference, up to 1 MiB)
  poi result <task id> --bootstrap <addr> (--rpc <url> | --chain <deployment.json> | --genesis <file>) [--json]
                                                 ask full nodes for a task's certificate and output, verify
                                                 both (and, with --chain, against the on-chain result)
  poi models                                     list the models in the configured model directories
  poi model publish <file.onnx> --rule <rule> [--data-dir <dir>] [--name <n>] [--chain <deployment.json> --keystore <dir> [--fee <wei>]]
                                                 store a model as content-addressed shards in a node's data dir
                                                 (the node announces them on the DHT) and register it on-chain
  poi model ls [--data-dir <dir>]                models held in a node's block store
  poi model show <model id> [--data-dir <dir>]   a stored model's manifest
  poi devnet [--operators <n>] [--keep] [--dir <dir>] [--offchain] [--npm-models <keys|none>]
                                                 launch anvil, deploy, register operators and models, and run
                                                 tasks end to end with their certificates settled on-chain:
                                                 the shipped model, then real npm models (default ppocr-cls;
                                                 keys: silero-vad, ppocr-cls, ppocr-rec)

Node options:
  --config <file>       JSON config (keys: keystore, dataDir, listen, bootstrap, genesis, modelDirs, graceMs, maxTaskTtlMs)
  --keystore <dir>      default ~/.poi/keys
  --data-dir <dir>      default ~/.poi/data
  --listen <addr>       multiaddr, repeatable; default /ip4/127.0.0.1/tcp/0
  --bootstrap <addr>    multiaddr with /p2p/<peer id>, repeatable
  --genesis <file>      operator set; default ~/.poi/genesis.json (not used with --chain)
  --chain <file>        deployment JSON {rpcUrl, registry, taskManager, slashing, modelRegistry, deployedAtBlock}:
                        operator set from the on-chain registry; aggregators post certificates there; only
                        models active in the ModelRegistry run, and operators prefetch them at start
  --no-prefetch         (operators with --chain) fetch a registered model only when a task names it
  --rpc <url>           chain RPC endpoint: overrides the deployment file's; poi request and poi result
                        with --rpc and no --chain ask the bootstrap node for the contracts over
                        /poi/network/1/ and check them on the chain before using them
  --registry <address>  with --rpc: the OperatorRegistry the network must use (pins the bootstrap's answer)
  --model-dir <dir>     model directory (manifest.json + model.onnx), repeatable; default the shipped model.
                        Full nodes store these as content-addressed shards and announce them on the DHT
  --no-model-dir        start without local models: fetch each model through the DHT when a task names it
  --grace-ms <ms>       aggregation grace window after quorum (default 250)
  --json                print machine-readable event lines on stdout
  --probe               relay and report gossip latency probes (benchmarks)

Logs: quiet by default; DEBUG=poi:* for detail.`

/** The chain's ModelRegistry does not let this requester use the model. */
class ModelRefusedError extends Error {
  constructor (reason: string) {
    super(`the network will not run this task: ${reason}`)
    this.name = 'ModelRefusedError'
  }
}

class UsageError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

const NODE_OPTIONS = {
  config: { type: 'string' },
  keystore: { type: 'string' },
  'data-dir': { type: 'string' },
  listen: { type: 'string', multiple: true },
  bootstrap: { type: 'string', multiple: true },
  genesis: { type: 'string' },
  'model-dir': { type: 'string', multiple: true },
  'no-model-dir': { type: 'boolean' },
  'no-prefetch': { type: 'boolean' },
  'grace-ms': { type: 'string' },
  json: { type: 'boolean' },
  chain: { type: 'string' },
  rpc: { type: 'string' },
  registry: { type: 'string' },
  aggregate: { type: 'boolean' },
  probe: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
} satisfies ParseArgsConfig['options']

function parse<O extends NonNullable<ParseArgsConfig['options']>> (args: string[], options: O): ReturnType<typeof parseArgs<{ args: string[], options: O, strict: true, allowPositionals: true }>> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

function num (value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a non-negative number, got ${JSON.stringify(value)}`)
  return n
}

async function nodeConfig (values: Record<string, unknown>): Promise<NodeConfig> {
  const file = typeof values.config === 'string' ? await readConfigFile(values.config) : {}
  const deployment = typeof values.chain === 'string' ? await readDeployment(values.chain) : undefined
  // --rpc points a deployment file at another endpoint of the same chain.
  const chain = deployment != null && typeof values.rpc === 'string' ? { ...deployment, rpcUrl: values.rpc } : deployment
  const abs = (v: unknown): string | undefined => typeof v === 'string' ? resolve(v) : undefined
  return resolveConfig(file, {
    keystore: abs(values.keystore),
    dataDir: abs(values['data-dir']),
    listen: values.listen as string[] | undefined,
    bootstrap: values.bootstrap as string[] | undefined,
    genesis: abs(values.genesis),
    modelDirs: values['no-model-dir'] === true ? [] : (values['model-dir'] as string[] | undefined)?.map(d => resolve(d)),
    graceMs: num(values['grace-ms'] as string | undefined, 'grace-ms'),
    chain
  })
}

function emit (json: boolean, event: Record<string, unknown>, human: string): void {
  if (json) process.stdout.write(JSON.stringify(event, jsonValue) + '\n')
  else if (human !== '') console.log(human)
}

/** Bytes as 0x-hex, bigints as decimal strings. Reads the raw value: a Buffer's toJSON runs before a replacer sees it. */
function jsonValue (this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key]
  if (raw instanceof Uint8Array) return '0x' + Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex')
  return typeof value === 'bigint' ? value.toString() : value
}

/**
 * Where the operator set comes from: the chain's registry when a chain is
 * configured (then certificates can also be settled there), else the genesis file.
 */
async function operatorSource (config: NodeConfig, keystore: Keystore): Promise<{ operatorSet: OperatorSet, chain?: ChainClient }> {
  if (config.chain == null) return { operatorSet: await loadGenesis(config.genesis) }
  const chain = await ChainClient.connect(config.chain, keystore.account)
  return { operatorSet: await chain.operatorSet(), chain }
}

async function runRole (role: 'operator' | 'aggregator' | 'bootstrap', args: string[]): Promise<void> {
  const { values } = parse(args, NODE_OPTIONS)
  if (values.help === true) { console.log(USAGE); return }
  const config = await nodeConfig(values)
  const keystore = await loadKeystore(config.keystore)
  const aggregate = role === 'aggregator' || values.aggregate === true
  const { operatorSet, chain } = await operatorSource(config, keystore)
  const node = await PoiNode.start({
    operate: role === 'operator',
    aggregate,
    light: false,
    keystore,
    config,
    operatorSet,
    settlement: aggregate ? chain : undefined,
    modelGate: chain?.config.modelRegistry != null ? chain : undefined,
    probe: values.probe === true
  })
  const unwatch = chain?.watchEpochs(set => node.useOperatorSet(set), operatorSet.epoch)
  node.submitter?.addEventListener('confirmed', (e) => emit(values.json === true, { event: 'submitted', kind: e.detail.kind, id: e.detail.id, txHash: e.detail.txHash, gasUsed: e.detail.gasUsed },
    `${e.detail.kind} ${e.detail.id.slice(0, 16)}… settled on-chain in ${e.detail.txHash} (gas ${e.detail.gasUsed})`))
  node.submitter?.addEventListener('moot', (e) => emit(values.json === true, { event: 'submission-moot', kind: e.detail.kind, id: e.detail.id, reason: e.detail.lastError },
    `${e.detail.kind} ${e.detail.id.slice(0, 16)}… not submitted: ${e.detail.lastError ?? ''}`))
  const json = values.json === true
  const addrs = node.addresses()
  emit(json, { event: 'ready', role, peerId: node.libp2p.peerId.toString(), addrs, operatorIndex: node.operatorIndex ?? null, models: node.modelIds },
    `poi ${node.roles().join('+')} ${node.libp2p.peerId.toString()}${node.operatorIndex != null ? ` (operator ${node.operatorIndex})` : ''}\n` +
    addrs.map(a => `  listening on ${a}`).join('\n') + `\n  models: ${node.modelIds.join(', ')}`)
  // A fetch in progress, at most one line per tenth of the model (humans) or per phase (JSON).
  let lastShown = ''
  node.addEventListener('model-progress', (e) => {
    const p = e.detail.progress
    const tenth = p.bytesTotal > 0 ? Math.floor(10 * p.bytesDone / p.bytesTotal) : 0
    const key = `${p.phase}/${json ? 0 : tenth}`
    if (key === lastShown) return
    lastShown = key
    emit(json, { event: 'model-progress', modelId: modelIdToString(e.detail.modelId), ...p },
      `fetching model ${modelIdToString(e.detail.modelId).slice(0, 16)}…: ${p.phase}, ${p.chunksDone}/${p.chunksTotal} chunks, ${(p.bytesDone / 2 ** 20).toFixed(1)}/${(p.bytesTotal / 2 ** 20).toFixed(1)} MiB from ${p.providers} providers${p.dropped > 0 ? ` (${p.dropped} dropped)` : ''}`)
  })
  node.addEventListener('model', (e) => emit(json, { event: 'model', modelId: modelIdToString(e.detail.modelId), bytes: e.detail.bytes, fromStore: e.detail.fromStore, ms: e.detail.ms },
    `model ${modelIdToString(e.detail.modelId)} ${e.detail.fromStore ? 'loaded from the block store' : 'fetched through the DHT'} (${e.detail.bytes} bytes, ${e.detail.ms} ms)`))
  node.addEventListener('prefetch-failed', (e) => emit(json, { event: 'prefetch-failed', modelId: modelIdToString(e.detail.modelId), reason: e.detail.reason },
    `prefetching model ${modelIdToString(e.detail.modelId)} failed: ${e.detail.reason} (it is fetched again when a task names it)`))
  node.addEventListener('failed', (e) => {
    if (json) emit(true, { event: 'failed', taskId: e.detail.taskId, reason: e.detail.reason }, '')
    else console.error(`task 0x${Buffer.from(e.detail.taskId).toString('hex').slice(0, 16)}…: cannot attest: ${e.detail.reason}`)
  })
  node.addEventListener('task', (e) => emit(json, { event: 'task', taskId: e.detail.taskId, at: preciseNow() }, ''))
  node.addEventListener('probe', (e) => emit(json, { event: 'probe', ...e.detail }, ''))
  node.addEventListener('attested', (e) => emit(json, { event: 'attested', taskId: e.detail.attestation.taskId, resultHash: e.detail.attestation.resultHash, inferenceMs: e.detail.inferenceMs, signMs: e.detail.signMs, at: preciseNow() },
    `attested task 0x${Buffer.from(e.detail.attestation.taskId).toString('hex').slice(0, 16)}… result 0x${Buffer.from(e.detail.attestation.resultHash).toString('hex').slice(0, 16)}… (inference ${e.detail.inferenceMs.toFixed(1)} ms)`))
  node.addEventListener('certificate', (e) => {
    if (!e.detail.formedHere) return
    emit(json, { event: 'certificate', taskId: e.detail.certificate.taskId, resultHash: e.detail.certificate.resultHash, signerBitmap: e.detail.certificate.signerBitmap, verifyMs: e.detail.verifyMs, at: preciseNow() },
      `certificate formed for task 0x${Buffer.from(e.detail.certificate.taskId).toString('hex').slice(0, 16)}…`)
  })
  node.addEventListener('no-quorum', (e) => emit(json, { event: 'no-quorum', taskId: e.detail.taskId }, `task 0x${Buffer.from(e.detail.taskId).toString('hex').slice(0, 16)}… ended with NoQuorum`))
  node.addEventListener('evidence', (e) => emit(json, { event: 'evidence', taskId: e.detail.taskId, operatorIndex: e.detail.operatorIndex }, `equivocation by operator ${e.detail.operatorIndex} on task 0x${Buffer.from(e.detail.taskId).toString('hex').slice(0, 16)}… stored as evidence`))
  // Operators see why a message was refused without turning on debug logs.
  node.addEventListener('rejected', (e) => {
    if (json) emit(true, { event: 'rejected', ...e.detail }, '')
    else console.error(`${e.detail.verdict === 'reject' ? 'rejected' : 'ignored'} ${e.detail.topic} from ${e.detail.from}: ${e.detail.reason}`)
  })
  if (json) {
    // Lets a launcher wait for gossip meshes instead of sleeping.
    let last = ''
    node.libp2p.services.pubsub.addEventListener('gossipsub:heartbeat', () => {
      const mesh = { tasks: node.meshPeers('tasks'), attestations: node.meshPeers('attestations'), certificates: node.meshPeers('certificates'), attestationSubscribers: node.topicPeers('attestations') }
      const now = JSON.stringify(mesh)
      if (now !== last) { last = now; emit(true, { event: 'mesh', ...mesh }, '') }
    })
  }
  let unwatchModels: (() => void) | undefined
  if (role === 'operator' && chain?.config.modelRegistry != null && values['no-prefetch'] !== true) {
    // Registered models are fetched now, and new ones as they are registered,
    // not when the first task for them is already waiting.
    try {
      const head = await chain.publicClient.getBlockNumber()
      node.prefetchModels(await chain.activeModels(undefined, head))
      unwatchModels = chain.watchModels(ids => node.prefetchModels(ids), head)
    } catch (err) {
      console.error(`cannot list the registry's models to prefetch: ${(err as Error).message.split('\n')[0]}`)
    }
  }
  await new Promise<void>((resolve) => {
    const shutdown = (): void => {
      process.off('SIGINT', shutdown)
      process.off('SIGTERM', shutdown)
      unwatch?.()
      unwatchModels?.()
      node.stop().then(resolve, (err) => { console.error(`error while stopping: ${(err as Error).message}`); resolve() })
    }
    process.on('SIGINT', shutdown)
    process.on('SIGTERM', shutdown)
  })
}

/**
 * `--model` takes a model id, a model directory or nothing (the shipped
 * model); with a directory (or none) the manifest lets the input be checked
 * before it is announced.
 */
async function resolveModel (model: string | undefined): Promise<{ modelId: Uint8Array, manifest?: ModelManifest }> {
  if (model === undefined) return await loadModelDir(SHIPPED_MODEL_DIR)
  const isDir = await stat(model).then(s => s.isDirectory(), () => false)
  if (isDir) return await loadModelDir(resolve(model))
  try {
    return { modelId: parseModelId(model) }
  } catch (err) {
    throw new UsageError(`--model ${model} is neither a model directory nor a model id: ${(err as Error).message}`)
  }
}

/** `--input` is inline JSON, `@file.json`, or `@file` in the binary tensor format (POIT). */
async function readInput (input: string | undefined, manifest?: ModelManifest): Promise<Uint8Array> {
  if (input === undefined) throw new UsageError('--input is required: a JSON object like {"x":{"data":[…]}}, @file.json, or @file in the binary tensor format')
  try {
    return await readTaskInput(input, manifest)
  } catch (err) {
    if (err instanceof InputError) throw new UsageError(`--input: ${err.message}`)
    throw err
  }
}

async function ephemeralKeystore (): Promise<Keystore> {
  const privateKey = await generateKeyPair('Ed25519')
  const bls = generateBlsSecretKey()
  return { dir: '(memory)', privateKey, peerId: peerIdFromPrivateKey(privateKey), blsSecretKey: bls, blsPublicKey: blsPublicKeyOf(bls), account: privateKeyToAccount(generatePrivateKey()) }
}

async function runRequest (args: string[]): Promise<void> {
  const { values } = parse(args, {
    ...NODE_OPTIONS,
    model: { type: 'string' },
    input: { type: 'string' },
    timeout: { type: 'string' },
    quorum: { type: 'string' }
  })
  if (values.help === true) { console.log(USAGE); return }
  // Which contracts were accepted is said even with --json (on stderr): it is what the answer is trusted on.
  const config = await requesterConfig('request', values, (line) => { console.error(line) })
  const keystore = values.keystore !== undefined ? await loadKeystore(config.keystore) : await ephemeralKeystore()
  const { operatorSet, chain } = await operatorSource(config, keystore)
  const { modelId, manifest } = await resolveModel(values.model)
  // Nodes drop tasks for models the registry does not allow; say why now rather than NoQuorum later.
  const refusal = await chain?.modelRefusal(modelId, keystore.account.address)
  if (refusal !== undefined) throw new ModelRefusedError(refusal)
  const input = await readInput(values.input, manifest)
  const timeoutMs = (num(values.timeout, 'timeout') ?? DEFAULT_TASK_TIMEOUT_MS / 1000) * 1000
  const quorumBps = num(values.quorum, 'quorum')
  const json = values.json === true
  const log = (line: string): void => { if (!json) console.error(line) }
  const node = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore, config, operatorSet })
  try {
    log(`connecting to ${config.bootstrap.join(', ')} …`)
    await waitForNetwork(node)
    if (manifest == null) await checkInputAgainstNetwork(node, modelId, input, log)
    const result = await requestInference(node, keystore.account, { modelId, input, timeoutMs, quorumBps }, log)
    if (json) emit(true, { event: 'result', taskId: result.taskId, resultHash: result.certificate.resultHash, output: result.output, signers: result.signers, signedStake: result.signedStake, totalStake: result.totalStake, latencyMs: result.certifiedAt - result.announcedAt }, '')
    else console.log(formatSummary(result, operatorSet, modelIdToString(modelId)))
  } finally {
    await node.stop()
  }
}

/** How long `poi request --model <id>` looks for the model's manifest before giving up. */
const MANIFEST_LOOKUP_TIMEOUT_MS = 15_000

/**
 * A model named only by id: fetch its manifest (one small block) from its
 * providers through the DHT and check the input against its input spec, so
 * a wrong input is a clear error now instead of NoQuorum at the deadline.
 */
async function checkInputAgainstNetwork (node: PoiNode, modelId: Uint8Array, input: Uint8Array, log: (line: string) => void): Promise<void> {
  const id = modelIdToString(modelId)
  log(`looking up the manifest of model ${id} through the DHT …`)
  let manifest: ModelManifest
  try {
    manifest = await fetchManifest(node.libp2p, modelId, { signal: AbortSignal.timeout(MANIFEST_LOOKUP_TIMEOUT_MS) })
  } catch (err) {
    if (err instanceof ModelNotFoundError) throw new UsageError(`--model ${id}: no node provides this model (is it published, and is the node that holds it running?)`)
    throw err
  }
  try {
    parseTaskInput(input, manifest.inputs)
  } catch (err) {
    if (err instanceof InputError) throw new UsageError(`--input does not match model ${manifest.name} (${id}): ${err.message}`)
    throw err
  }
}

/** The bootstrap node could not say which contracts the network uses. */
class NetworkDiscoveryError extends Error {
  constructor (message: string, cause?: unknown) {
    super(message)
    this.name = 'NetworkDiscoveryError'
    this.cause = cause
  }
}

/**
 * A requester given only a bootstrap address and an RPC URL: asks the
 * bootstrap node which contracts the network uses (/poi/network/1/) and
 * checks that they form one poi deployment on that chain (checkDeployment)
 * before trusting them. The bootstrap address already names the network;
 * a deployment file (--chain) pins the contracts instead.
 */
async function chainFromBootstrap (rpcUrl: string, bootstrapAddrs: string[], pinnedRegistry: string | undefined, log: (line: string) => void): Promise<ChainConfig> {
  const libp2p = await createPoiLibp2p({ privateKey: await generateKeyPair('Ed25519'), listen: [], bootstrap: [], dhtClientMode: true })
  let deployment: NetworkDeployment | undefined
  const failures: string[] = []
  try {
    await libp2p.start()
    for (const addr of bootstrapAddrs) {
      try {
        deployment = await fetchNetworkInfo(libp2p, multiaddr(addr))
        if (deployment === undefined) throw new NetworkDiscoveryError(`the bootstrap node ${addr} runs without a chain (from a genesis file): use --genesis <file>`)
        break
      } catch (err) {
        if (err instanceof NetworkDiscoveryError) throw err
        failures.push(`${addr}: ${(err as Error).message}`)
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
  return { rpcUrl, registry: deployment.registry, taskManager: deployment.taskManager, slashing: deployment.slashing, modelRegistry: deployment.modelRegistry, deployedAtBlock: deployment.deployedAtBlock }
}

/** What a requester with --rpc and no --chain needs: the chain config from the bootstrap node. */
async function requesterConfig (command: string, values: Record<string, unknown>, log: (line: string) => void): Promise<NodeConfig> {
  const config = await nodeConfig(values)
  if (config.bootstrap.length === 0) throw new UsageError(`poi ${command} needs --bootstrap <multiaddr> of a running node`)
  if (config.chain != null || typeof values.rpc !== 'string') return config
  const pinned = values.registry
  if (pinned !== undefined && (typeof pinned !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(pinned))) throw new UsageError(`--registry must be a 0x-prefixed 20-byte address, got ${String(pinned)}`)
  return { ...config, chain: await chainFromBootstrap(values.rpc, config.bootstrap, pinned, log) }
}

/** No full node could show a verified certificate for the task. */
class ResultNotFoundError extends Error {
  constructor (taskId: string) {
    super(`no connected full node has a certificate for task ${taskId} that verifies (unknown task, not certified yet, or certified in an epoch this node cannot check)`)
    this.name = 'ResultNotFoundError'
  }
}

/**
 * `poi result <task id>`: a light peer asks full nodes over /poi/result/1/,
 * verifies the certificate against the operator set of its epoch and the
 * output against the certified result hash, and with a chain also checks
 * the on-chain result. Nothing a node says is taken on trust.
 */
async function runResult (args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...NODE_OPTIONS, quorum: { type: 'string' } })
  if (values.help === true) { console.log(USAGE); return }
  const id = positionals[0]
  if (id === undefined || !/^(0x)?[0-9a-fA-F]{64}$/.test(id)) throw new UsageError('usage: poi result <task id: 32 bytes hex> --bootstrap <addr> (--chain <file> | --genesis <file>)')
  const taskId = Uint8Array.from(Buffer.from(id.replace(/^0x/, ''), 'hex'))
  // Which contracts were accepted is said even with --json (on stderr): it is what the answer is trusted on.
  const config = await requesterConfig('result', values, (line) => { console.error(line) })
  const keystore = values.keystore !== undefined ? await loadKeystore(config.keystore) : await ephemeralKeystore()
  const { operatorSet, chain } = await operatorSource(config, keystore)
  const quorumBps = num(values.quorum, 'quorum')
  const json = values.json === true
  const node = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore, config, operatorSet })
  try {
    await waitForNetwork(node)
    const setOf = async (epoch: bigint): Promise<OperatorSet | undefined> => chain != null
      ? await chain.operatorSet(epoch).catch(() => undefined)
      : epoch === operatorSet.epoch ? operatorSet : undefined
    const found = await lookupResult(node, taskId, quorumBps ?? DEFAULT_QUORUM_BPS, setOf)
    if (found == null) throw new ResultNotFoundError(`0x${Buffer.from(taskId).toString('hex')}`)
    const verdict = verifyCertificate(found.certificate, found.set, { quorumBps })
    if (!verdict.ok) throw new Error(`certificate failed verification: ${verdict.reason}`)
    const onChain = chain != null ? await chain.result(taskId) : undefined
    const certified = `0x${Buffer.from(found.certificate.resultHash).toString('hex')}`
    if (onChain != null && onChain.resultHash.toLowerCase() !== certified) {
      throw new Error(`the chain settled task 0x${Buffer.from(taskId).toString('hex')} with result ${onChain.resultHash}, not the certified ${certified}`)
    }
    if (json) {
      emit(true, { event: 'result', taskId, resultHash: found.certificate.resultHash, output: found.output, signers: verdict.signers, epoch: found.certificate.epoch, onChain: onChain ?? null }, '')
    } else {
      console.log(formatCertified(taskId, found.certificate, found.output, verdict.signers, found.set).join('\n'))
      console.log(chain == null ? 'on-chain    (no --chain given)' : onChain != null ? `on-chain    settled, same result (epoch ${onChain.epoch}, outputRef ${onChain.outputRef})` : 'on-chain    not settled yet')
    }
  } finally {
    await node.stop()
  }
}

async function runKeys (args: string[]): Promise<void> {
  const [sub, ...rest] = args
  const { values } = parse(rest, { dir: { type: 'string' }, force: { type: 'boolean' } })
  if (values.dir === undefined) throw new UsageError(`poi keys ${sub ?? ''} needs --dir <keystore>`)
  if (sub === 'generate') {
    const pub = await generateKeystore(resolve(values.dir), { force: values.force })
    console.log(`keystore written to ${resolve(values.dir)}\n  peer id        ${pub.peerId}\n  BLS public key ${pub.blsPublicKey}\n  address        ${pub.address}`)
  } else if (sub === 'show') {
    const pub = publicKeysOf(await loadKeystore(resolve(values.dir)))
    console.log(`peer id        ${pub.peerId}\nBLS public key ${pub.blsPublicKey}\naddress        ${pub.address}`)
  } else {
    throw new UsageError('usage: poi keys generate|show --dir <keystore>')
  }
}


async function runGenesis (args: string[]): Promise<void> {
  const [sub, ...rest] = args
  const { values } = parse(rest, { out: { type: 'string' }, keystore: { type: 'string', multiple: true }, stake: { type: 'string' }, 'chain-id': { type: 'string' } })
  if (sub !== 'create' || values.out === undefined || values.keystore === undefined) throw new UsageError('usage: poi genesis create --out <file> --keystore <dir> [--keystore <dir> …]')
  const stake = BigInt(values.stake ?? STAKE_WEI)
  const chainId = BigInt(values['chain-id'] ?? DEVNET_CHAIN_ID)
  const stores = await Promise.all(values.keystore.map(async d => await loadKeystore(resolve(d))))
  const set = createOperatorSet({
    epoch: 0n,
    domain: { chainId, taskManager: DEVNET_TASK_MANAGER },
    operators: stores.map(k => ({ address: k.account.address, blsPublicKey: k.blsPublicKey, stake, peerId: k.peerId.toString() }))
  })
  await writeGenesis(resolve(values.out), set, stores.map(k => signProofOfPossession(k.blsSecretKey, k.account.address)))
  console.log(`genesis with ${stores.length} operators written to ${resolve(values.out)}`)
}

async function runModel (args: string[]): Promise<void> {
  const [sub, ...rest] = args
  const { values, positionals } = parse(rest, {
    'data-dir': { type: 'string' }, rule: { type: 'string' }, name: { type: 'string' }, fee: { type: 'string' },
    chain: { type: 'string' }, keystore: { type: 'string' }, json: { type: 'boolean' }
  })
  const dataDir = resolve(values['data-dir'] ?? defaultConfig().dataDir)
  if (sub === 'publish') {
    const file = positionals[0]
    if (file === undefined || values.rule === undefined) throw new UsageError('usage: poi model publish <file.onnx> --rule <exact|grid:k|argmax|topk:n> [--data-dir <node data dir>] [--name <name>] [--chain <deployment.json> --keystore <dir> [--fee <wei>]]')
    let fee: bigint | undefined
    try {
      fee = values.fee !== undefined ? BigInt(values.fee) : undefined
    } catch {
      throw new UsageError(`--fee must be an amount in wei, got ${values.fee}`)
    }
    const chain = values.chain !== undefined ? await readDeployment(values.chain) : undefined
    const keystore = values.keystore !== undefined ? await loadKeystore(resolve(values.keystore)) : undefined
    const r = await publishModelFile({ file, rule: values.rule, dataDir, name: values.name, chain, keystore, fee }, (line) => { if (values.json !== true) console.error(line) })
    if (values.json === true) emit(true, { event: 'published', modelId: r.modelId, chunks: r.chunks, registeredTx: r.registeredTx ?? null }, '')
    else console.log(`${r.modelId}\n(a node started with --data-dir ${dataDir} serves it and announces it on the DHT)`)
  } else if (sub === 'ls') {
    for (const m of await listStoredModels(dataDir)) console.log(`${m.modelId}  ${m.manifest.name}  ${m.manifest.size} bytes  ${m.manifest.chunks.length} chunks  rule ${m.manifest.agreement}`)
  } else if (sub === 'show') {
    if (positionals[0] === undefined) throw new UsageError('usage: poi model show <model id> [--data-dir <dir>]')
    console.log(JSON.stringify(await showStoredModel(dataDir, positionals[0]), null, 2))
  } else {
    throw new UsageError('usage: poi model publish|ls|show …')
  }
}

async function runModels (args: string[]): Promise<void> {
  const { values } = parse(args, { config: { type: 'string' }, 'model-dir': { type: 'string', multiple: true } })
  const config = await nodeConfig(values)
  for (const dir of config.modelDirs) {
    const m = await loadModelDir(dir)
    console.log(`${modelIdToString(m.modelId)}  ${m.manifest.name}  ${m.manifest.size} bytes  rule ${m.manifest.agreement}  (${dir})`)
  }
}

/**
 * Our typed errors (KeystoreError, GenesisError, NoQuorumError, …) carry a
 * message meant for the user; anything else is a bug and keeps its stack.
 */
const BUILTIN_ERRORS = new Set(['Error', 'TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'EvalError', 'URIError', 'AggregateError'])
function isTypedError (e: unknown): e is Error {
  return e instanceof Error && e.name.endsWith('Error') && !BUILTIN_ERRORS.has(e.name)
}

export async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case 'keys': await runKeys(rest); return 0
    case 'genesis': await runGenesis(rest); return 0
    case 'operator':
    case 'aggregator':
    case 'bootstrap': await runRole(cmd, rest); return 0
    case 'request': await runRequest(rest); return 0
    case 'result': await runResult(rest); return 0
    case 'models': await runModels(rest); return 0
    case 'model': await runModel(rest); return 0
    case 'devnet': {
      const { values } = parse(rest, { operators: { type: 'string' }, keep: { type: 'boolean' }, dir: { type: 'string' }, offchain: { type: 'boolean' }, 'npm-models': { type: 'string' } })
      const npm = values['npm-models']
      const npmModels = npm === undefined ? undefined : npm === 'none' ? [] : npm.split(',').map(k => k.trim()).filter(k => k !== '')
      return await runDevnet({ operators: num(values.operators, 'operators'), keep: values.keep === true, dir: values.dir, offchain: values.offchain === true, npmModels })
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h': console.log(USAGE); return cmd === undefined ? 2 : 0
    default: throw new UsageError(`unknown command "${cmd}"`)
  }
}

// Run when executed (directly or through the npm bin symlink), not when imported by tests.
const isMain = process.argv[1] != null && realpathSync(fileURLToPath(import.meta.url)) === realpathSync(process.argv[1])
if (isMain) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
    if (err instanceof UsageError) console.error(`poi: ${err.message}\n(run \`poi help\` for usage)`)
    else if (isTypedError(err)) console.error(`poi: ${err.message}`)
    else console.error(`poi: ${(err as Error)?.stack ?? String(err)}`)
    process.exitCode = 1
  })
}

