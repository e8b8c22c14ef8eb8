/**
 * `poi models`, `poi model publish|ls|show`: the models a node runs, and models stored as
 * content-addressed shards in a node's data directory (and registered on-chain).
 */
import { readFile, stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import * as ort from 'onnxruntime-node'
import { formatEther, formatGwei, isAddress, isAddressEqual, type Account, type Chain, type Transport, type WalletClient } from 'viem'
import { ModelRegistryError, estimateRegisterModel, registerModel, readModel } from '../../contracts/index.js'
import { PoiError } from '../../protocols/wire/index.js'
import { BlockStore, NodeStore } from '../../storage/index.js'
import { ControlClient, controlSocketPath } from '../api/index.js'
import { ChainClient } from '../chain-client.js'
import { defaultConfig, type ChainConfig } from '../config.js'
import { readDeployment } from '../deployment.js'
import {
  MODEL_FILE, ModelDirError, UNOWNED, encodeManifest, installedOnnxruntimeVersion, isTensorDtype, loadModelDir, modelIdOf, modelIdToString, parseAgreementRule, parseModelId, zkFilesOf,
  type ModelManifest, type TensorSpec, type ZkFiles
} from '../inference/index.js'
import { loadKeystore, type Keystore } from '../keys.js'
import { buildManifest, listModels, loadModel, modelCids, storeModel } from '../models/index.js'
import { UsageError, nodeConfig, type OptionValues } from './args.js'
import { CliOutput } from './output.js'

export class PublishError extends PoiError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_PUBLISH', message, options)
  }
}

/** `poi model publish|ls|show`'s flags (declared with their help in program.ts). */
const MODEL_OPTIONS = {
  'data-dir': { type: 'string' }, rule: { type: 'string' }, name: { type: 'string' }, fee: { type: 'string' },
  chain: { type: 'string' }, keystore: { type: 'string' }, owner: { type: 'string' }, json: { type: 'boolean' }
} as const
type ModelValues = OptionValues<typeof MODEL_OPTIONS>

const dataDirOf = (values: ModelValues): string => resolve(values['data-dir'] ?? defaultConfig().dataDir)

/** `poi model publish <file.onnx> --rule <rule> …`. */
export async function runModelPublish (values: ModelValues, positionals: string[]): Promise<void> {
  const dataDir = dataDirOf(values)
  const file = positionals[0]
  const usage = 'usage: poi model publish <file.onnx> --rule <exact|grid:k|argmax|topk:n> [--name <name>] [--owner <address>] | <model dir>, then [--data-dir <node data dir>] [--keystore <dir>] [--chain <deployment.json> [--fee <wei>]] (--chain needs --keystore)'
  if (file === undefined) throw new UsageError(usage)
  const fromDir = await isDirectory(resolve(file))
  if (fromDir) {
    for (const flag of ['rule', 'name'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag}: ${resolve(file)} is a model directory, whose manifest.json fixes the ${flag} (and the model id); drop --${flag}, or publish its model.onnx with --${flag}`)
    }
  } else if (values.rule === undefined) {
    throw new UsageError(`--rule is required to publish a .onnx file (${usage})`)
  }
  if (values.fee !== undefined && !/^\d+$/.test(values.fee)) throw new UsageError(`--fee must be an amount in wei, got ${values.fee}`)
  if (values.owner !== undefined && !isAddress(values.owner, { strict: false })) throw new UsageError(`--owner must be an Ethereum address (0x + 40 hex digits), got ${values.owner}`)
  const fee = values.fee !== undefined ? BigInt(values.fee) : undefined
  const chain = values.chain !== undefined ? await readDeployment(values.chain) : undefined
  const keystore = values.keystore !== undefined ? await loadKeystore(resolve(values.keystore)) : undefined
  const out = new CliOutput(values.json === true)
  const owner = values.owner as `0x${string}` | undefined
  const rerun = `\`${['poi model publish', resolve(file), ...(values.rule !== undefined ? ['--rule', values.rule] : []), '--data-dir', dataDir,
    ...(values.name !== undefined ? ['--name', JSON.stringify(values.name)] : []), ...(values.owner !== undefined ? ['--owner', values.owner] : []),
    ...(values.keystore !== undefined ? ['--keystore', resolve(values.keystore)] : []), ...(values.chain !== undefined ? ['--chain', resolve(values.chain)] : []),
    ...(values.fee !== undefined ? ['--fee', values.fee] : [])].join(' ')}\``
  const r = await publishModelFile({ file, rule: values.rule ?? '', dataDir, name: values.name, chain, keystore, owner, fee, rerun }, (line) => out.progress(line))
  out.event({ event: 'published', modelId: r.modelId, owner: r.manifest.owner, chunks: r.chunks, registeredTx: r.registeredTx ?? null, via: r.path, announced: r.announced },
    `${r.modelId}\n${r.path === 'node'
      ? `(published through the node running on ${dataDir}: it serves it and ${r.announced ? 'has announced it on the DHT' : 'announces it on the DHT as soon as it has DHT peers'})`
      : `(stored in ${dataDir}, where no node runs: a node started with --data-dir ${dataDir} serves it and announces it on the DHT)`}`)
}

/** `poi model ls [--data-dir <dir>]`. */
export async function runModelLs (values: ModelValues): Promise<void> {
  const dataDir = dataDirOf(values)
  const { models, path } = await listStoredModels(dataDir)
  if (path === 'node') console.error(`(from the node running on ${dataDir}, which announces each on the DHT)`)
  for (const m of models) console.log(`${m.modelId}  ${m.manifest.name}  ${m.manifest.size} bytes  ${m.manifest.chunks.length} chunks  rule ${m.manifest.agreement}${m.manifest.zk !== undefined ? `  zk circuit ${m.manifest.zk.circuitId}` : ''}`)
}

/** `poi model show <model id> [--data-dir <dir>]`. */
export async function runModelShow (values: ModelValues, positionals: string[]): Promise<void> {
  if (positionals[0] === undefined) throw new UsageError('usage: poi model show <model id> [--data-dir <dir>]')
  console.log(JSON.stringify(await showStoredModel(dataDirOf(values), positionals[0]), null, 2))
}

/** `poi models`: the models in the configured model directories (what a node started the same way runs). */
export async function runModels (values: { config?: string, 'model-dir'?: string[] }): Promise<void> {
  const config = await nodeConfig(values)
  for (const dir of config.modelDirs) {
    const m = await loadModelDir(dir)
    console.log(`${modelIdToString(m.modelId)}  ${m.manifest.name}  ${m.manifest.size} bytes  rule ${m.manifest.agreement}${m.zk !== undefined ? '  zk' : ''}  (${dir})`)
  }
}

/** Runtime options a published manifest pins unless told otherwise (bit-identical outputs across runs were measured with these). */
export const DEFAULT_PUBLISH_RUNTIME = { graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' } as const

/** Input and output specs read from the model itself, so the manifest cannot disagree with it. */
async function tensorSpecsOf (bytes: Uint8Array, path: string): Promise<{ inputs: TensorSpec[], outputs: TensorSpec[] }> {
  let session: ort.InferenceSession
  try {
    session = await ort.InferenceSession.create(bytes)
  } catch (err) {
    throw new PublishError(`${path} is not a model onnxruntime ${installedOnnxruntimeVersion()} can load: ${(err as Error).message}`)
  }
  try {
    const spec = (meta: readonly ort.InferenceSession.ValueMetadata[]): TensorSpec[] => meta.map(m => {
      if (!m.isTensor) throw new PublishError(`${path}: ${m.name} is not a tensor; only tensor inputs and outputs are supported`)
      if (!isTensorDtype(m.type)) throw new PublishError(`${path}: ${m.name} has element type ${String(m.type)}, which poi does not support`)
      return { name: m.name, dtype: m.type, shape: m.shape.map(d => typeof d === 'number' && d >= 0 ? d : null) }
    })
    return { inputs: spec(session.inputMetadata), outputs: spec(session.outputMetadata) }
  } finally {
    await session.release()
  }
}

export interface PublishParams {
  /** A .onnx file (the manifest is built from it and `rule`), or a model directory (its manifest as it is, and its zk/ files). */
  file: string
  /** The agreement rule of a .onnx file; unused for a model directory. */
  rule: string
  dataDir: string
  name?: string
  chain?: ChainConfig
  /** Pays for the registration; without `owner`, its account is the owner the manifest names. */
  keystore?: Keystore
  /**
   * The owner the manifest names, when it is not the keystore's account (e.g. publishing on a
   * node for an owner whose key lives elsewhere, who registers the id later). Without it and
   * without a keystore the manifest names UNOWNED: it runs off-chain but no account can register it.
   */
  owner?: `0x${string}`
  fee?: bigint
  /** The command that finishes this publish (for messages after a partial failure); the CLI passes the one it ran. */
  rerun?: string
}

export interface PublishResult {
  modelId: string
  manifest: ModelManifest
  chunks: number
  /** The registration sent now; undefined without a chain or when this owner had registered the id already. */
  registeredTx?: `0x${string}`
  /** Through the running node, or straight into the store (no node running on the data directory). */
  path: PublishPath
  /** Every block announced on the DHT now (only a running node announces). */
  announced: boolean
}

/**
 * The owner a published manifest names: --owner, else the keystore's account, else UNOWNED. With
 * a chain the keystore's account registers, so it must be that owner (the contract would refuse).
 */
export function publishOwner (p: Pick<PublishParams, 'chain' | 'keystore' | 'owner'>): `0x${string}` {
  const owner = p.owner?.toLowerCase() as `0x${string}` | undefined
  const account = p.keystore?.account.address.toLowerCase() as `0x${string}` | undefined
  if (p.chain != null) {
    if (p.keystore == null || account === undefined) throw new PublishError('registering on-chain needs --keystore (its Ethereum account is the model\'s owner and pays the transaction)')
    if (owner !== undefined && owner !== account) {
      throw new PublishError(`--owner ${owner} is not the --keystore account ${account}: only the owner the manifest names can register it; drop --owner, or publish without --chain and let ${owner} register the id`)
    }
  }
  return owner ?? account ?? UNOWNED
}

/** How a model reached the node's store: through the running node's control socket, or by opening the store (no node running). */
export type PublishPath = 'node' | 'store'

/**
 * `poi model publish`, atomic from the user's view (issue 11 item 6):
 *  1. the manifest and model id are computed from the file, nothing written;
 *  2. the store is made reachable first: the node running on the data directory (its control
 *     socket answers), or the store itself, opened and held (no node runs there);
 *  3. with a chain, the registration is preflighted (already registered by this owner: skipped;
 *     by another owner: PublishError; the contract's refusals and the gas against the
 *     account's balance: checked by simulating), then sent;
 *  4. the model is stored (by the node, which announces it on the DHT at once, or in the store,
 *     announced when a node starts on it).
 * A failure before 4 leaves nothing behind; a store failing after a registration says how to
 * finish (a rerun sees the registration and only stores).
 */
export async function publishModelFile (p: PublishParams, progress: (line: string) => void = () => {}): Promise<PublishResult> {
  if (p.chain != null && p.chain.modelRegistry == null) throw new PublishError('the deployment names no modelRegistry; redeploy or publish without --chain')
  const path = resolve(p.file)
  const { manifest, bytes, zk, modelFile } = await isDirectory(path) ? await modelOfDir(path, p) : await modelOfFile(path, p)
  const owner = manifest.owner
  const modelIdBytes = modelIdOf(manifest)
  const modelId = modelIdToString(modelIdBytes)
  const rerun = p.rerun ?? 'the same `poi model publish` command'
  const target = await openPublishTarget(p.dataDir)
  let registeredTx: `0x${string}` | undefined
  let stored: { path: PublishPath, unannounced: number }
  try {
    if (p.chain?.modelRegistry != null && p.keystore != null) {
      registeredTx = await registerPublished({ chain: p.chain, registry: p.chain.modelRegistry, keystore: p.keystore, modelId: modelIdBytes, manifest, fee: p.fee ?? 0n, rerun }, progress)
    }
    try {
      stored = await target.store(modelFile, manifest, bytes, progress, zk)
    } catch (err) {
      if (registeredTx === undefined) throw err
      throw new PublishError(`${modelId} is registered on-chain (tx ${registeredTx}) but not stored in ${p.dataDir}: ${oneLine(err)}. Fix that and rerun ${rerun}: it finds the registration and only stores the model`, { cause: err })
    }
  } finally {
    await target.close()
  }
  if (owner === UNOWNED) {
    progress(`the manifest names no owner (${UNOWNED}, no --keystore or --owner): nodes can serve ${modelId} off-chain, but no account can register it on a chain; publish with --keystore to own it`)
  } else if (p.chain == null) {
    progress(`owner ${owner}: only this account can register ${modelId} on-chain`)
  }
  return { modelId, manifest, chunks: manifest.chunks.length, registeredTx, path: stored.path, announced: stored.path === 'node' && stored.unannounced === 0 }
}

async function isDirectory (path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory()
  } catch {
    return false
  }
}

interface ModelToPublish {
  manifest: ModelManifest
  bytes: Uint8Array
  /** The circuit's files, for a model directory whose manifest has a zk section. */
  zk?: ZkFiles
  /** The model file a running node reads (and, for a zk model, zk/ beside it). */
  modelFile: string
}

/** A .onnx file: the manifest is built from its bytes, the rule and the owner publishOwner picks. */
async function modelOfFile (path: string, p: PublishParams): Promise<ModelToPublish> {
  const owner = publishOwner(p)
  let bytes: Uint8Array
  try {
    bytes = new Uint8Array(await readFile(path))
  } catch (err) {
    throw new PublishError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  let agreement
  try {
    agreement = parseAgreementRule(p.rule)
  } catch (err) {
    throw new PublishError(`--rule ${p.rule}: ${(err as Error).message} (rules: exact, grid:<k>, argmax, topk:<n>)`)
  }
  const specs = await tensorSpecsOf(bytes, path)
  const manifest = buildManifest(bytes, {
    owner,
    name: p.name ?? basename(path).replace(/\.onnx$/, ''),
    runtime: { onnxruntime: installedOnnxruntimeVersion(), ...DEFAULT_PUBLISH_RUNTIME },
    agreement,
    inputs: specs.inputs,
    outputs: specs.outputs
  })
  return { manifest, bytes, modelFile: path }
}

/**
 * A model directory: its manifest as it is (the owner it names must be --owner's and, with a
 * chain, the keystore's account), its model and, with a zk section, zk/'s files, all checked by
 * loadModelDir (sizes, hashes, the circuit id against the model).
 */
async function modelOfDir (dir: string, p: PublishParams): Promise<ModelToPublish> {
  let model
  try {
    model = await loadModelDir(dir)
  } catch (err) {
    if (err instanceof ModelDirError) throw new PublishError(err.message, { cause: err })
    throw err
  }
  const { manifest } = model
  const named = manifest.owner
  const wanted = p.owner?.toLowerCase()
  if (wanted !== undefined && wanted !== named) throw new PublishError(`--owner ${wanted}: the manifest in ${dir} names ${named} (its id hashes the owner); drop --owner, or publish the .onnx file`)
  if (p.chain != null) {
    const account = p.keystore?.account.address.toLowerCase()
    if (account === undefined) throw new PublishError('registering on-chain needs --keystore (its Ethereum account is the model\'s owner and pays the transaction)')
    if (account !== named) throw new PublishError(`the manifest in ${dir} names owner ${named}, not the --keystore account ${account}: only the owner the manifest names can register it; publish without --chain and let ${named} register the id`)
  }
  return { manifest, bytes: model.modelBytes, zk: zkFilesOf(model.zk), modelFile: join(dir, MODEL_FILE) }
}

/** Where `publishModelFile` stores: a running node (control socket) or the store itself, held open from before the registration. */
interface PublishTarget {
  store: (file: string, manifest: ModelManifest, bytes: Uint8Array, progress: (line: string) => void, zk?: ZkFiles) => Promise<{ path: PublishPath, unannounced: number }>
  close: () => Promise<void>
}

async function openPublishTarget (dataDir: string): Promise<PublishTarget> {
  const node = await ControlClient.find(dataDir)
  if (node != null) {
    return {
      store: async (file, manifest, _bytes, progress) => {
        progress(`a node runs on ${dataDir}: publishing through it (${node.path})`)
        const r = await node.publish(file, manifest, progress)
        progress(r.unannounced === 0
          ? `the node stored ${r.modelId} and announced it on the DHT (${r.provided} blocks): other nodes can fetch it now`
          : `the node stored ${r.modelId}; ${r.unannounced} of ${r.provided + r.unannounced} blocks are not announced yet (no DHT peer answered), it keeps trying`)
        return { path: 'node', unannounced: r.unannounced }
      },
      close: async () => {}
    }
  }
  let store: NodeStore
  try {
    store = await NodeStore.open(dataDir)
  } catch (err) {
    throw new PublishError(`cannot open the store in ${dataDir}, and no node answers on ${controlSocketPath(dataDir)}: ${oneLine(err)}`, { cause: err })
  }
  return {
    store: async (_file, manifest, bytes, progress, zk) => {
      const blocks = modelCids(manifest).length
      await storeModel(BlockStore.of(store), manifest, bytes, zk)
      progress(`no node answers on ${controlSocketPath(dataDir)}: stored ${blocks - 1} chunks${manifest.zk !== undefined ? ' (the model and its zk circuit files)' : ''} and the manifest in ${dataDir} directly`)
      return { path: 'store', unannounced: blocks }
    },
    close: async () => { await store.close() }
  }
}

interface Registration {
  chain: ChainConfig
  registry: `0x${string}`
  keystore: Keystore
  modelId: Uint8Array
  manifest: ModelManifest
  fee: bigint
  /** The command that finishes the publish, for error messages. */
  rerun: string
}

/**
 * Registers the model id unless this account already did (then nothing is sent). Everything
 * that can refuse is asked first: the registry (the model's owner, the contract's checks, by
 * simulation) and the account's balance against the gas. Returns the transaction's hash when
 * one was sent. Every failure is a one-line PublishError saying what to do.
 */
async function registerPublished (r: Registration, progress: (line: string) => void): Promise<`0x${string}` | undefined> {
  const id = modelIdToString(r.modelId)
  const account = r.keystore.account.address
  const rpc = r.chain.rpcUrl
  const client = await ChainClient.connect(r.chain, r.keystore.account)
  const chainId = client.publicClient.chain?.id ?? r.chain.chainId ?? 'unknown'
  const existing = await onChain(`reading model ${id} from the ModelRegistry`, rpc, async () => await readModel(client.publicClient, r.registry, r.modelId))
  if (existing != null) {
    if (!isAddressEqual(existing.owner, account)) {
      throw new PublishError(`model ${id} is registered on chain ${chainId} by ${existing.owner}, not by ${account}: only its owner manages it; publish without --chain to serve it, or ask ${existing.owner}`)
    }
    progress(`already registered on chain ${chainId} by ${account} (this manifest: the id is its hash; fee ${existing.fee} wei): not registering again`)
    return undefined
  }
  const manifestBytes = encodeManifest(r.manifest)
  const balance = await onChain(`reading the balance of ${account}`, rpc, async () => await client.publicClient.getBalance({ address: account }))
  const fund = `fund it, then rerun ${r.rerun}`
  if (balance === 0n) throw new PublishError(`account ${account} has 0 ETH on chain ${chainId}, and registering ${id} costs gas: ${fund}`)
  let gas: bigint
  try {
    gas = await estimateRegisterModel(client.publicClient, account, r.registry, r.modelId, manifestBytes, r.fee)
  } catch (err) {
    if (err instanceof ModelRegistryError) throw new PublishError(`the ModelRegistry refuses to register ${id}: ${oneLine(err)}`, { cause: err })
    throw chainFailure(`estimating the registration of ${id}`, rpc, err, fund)
  }
  const { maxFeePerGas } = await onChain('reading the gas price', rpc, async () => await client.publicClient.estimateFeesPerGas())
  const cost = gas * maxFeePerGas
  if (balance < cost) {
    throw new PublishError(`account ${account} has ${formatEther(balance)} ETH on chain ${chainId}; registering ${id} needs up to ${formatEther(cost)} ETH (${gas} gas at ${formatGwei(maxFeePerGas)} gwei): ${fund}`)
  }
  progress(`registering ${id} in ModelRegistry ${r.registry} (${gas} gas, up to ${formatEther(cost)} ETH)`)
  const wallet = client.walletClient as WalletClient<Transport, Chain, Account>
  let tx: `0x${string}`
  try {
    tx = (await registerModel(wallet, client.publicClient, r.registry, r.modelId, manifestBytes, r.fee)).receipt.transactionHash
  } catch (err) {
    if (err instanceof ModelRegistryError) throw new PublishError(`the ModelRegistry refuses to register ${id}: ${oneLine(err)}`, { cause: err })
    throw chainFailure(`registering ${id}`, rpc, err, `nothing was stored; rerun ${r.rerun}`)
  }
  progress(`registered in ModelRegistry ${r.registry} (tx ${tx})`)
  return tx
}

/** A chain read, its viem error turned into one PublishError line. */
async function onChain<T> (what: string, rpc: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch (err) {
    throw chainFailure(what, rpc, err, 'check the RPC and rerun')
  }
}

function chainFailure (what: string, rpc: string, err: unknown, next: string): PublishError {
  if (err instanceof PoiError) return new PublishError(`${what}: ${oneLine(err)}; ${next}`, { cause: err })
  const text = (err as Error).message ?? String(err)
  if (/insufficient funds/i.test(text)) return new PublishError(`${what}: the account cannot pay the gas; ${next}`, { cause: err })
  return new PublishError(`${what} on ${rpc} failed: ${oneLine(err)}; ${next}`, { cause: err })
}

/** The first line of an error (viem's `shortMessage` when it has one): what a user reads, not a dump. */
function oneLine (err: unknown): string {
  const short = (err as { shortMessage?: unknown }).shortMessage
  const text = typeof short === 'string' && short !== '' ? short : (err as Error).message ?? String(err)
  return text.split('\n')[0]
}

/** `poi model ls`: the models a node's block store holds, asked of the node running on it, or read from the store when none is. */
export async function listStoredModels (dataDir: string): Promise<{ models: Array<{ modelId: string, manifest: ModelManifest }>, path: PublishPath }> {
  const node = await ControlClient.find(dataDir)
  if (node != null) return { models: (await node.models()).models, path: 'node' }
  const store = await NodeStore.open(dataDir)
  try {
    return { models: (await listModels(BlockStore.of(store))).map(m => ({ modelId: m.modelId, manifest: m.manifest })), path: 'store' }
  } finally {
    await store.close()
  }
}

/** `poi model show`: one model's manifest from a node's block store (asked of the node running on it, if one is). */
export async function showStoredModel (dataDir: string, id: string): Promise<ModelManifest> {
  let modelId: Uint8Array
  try {
    modelId = parseModelId(id)
  } catch (err) {
    throw new PublishError(`${id} is not a model id: ${(err as Error).message}`)
  }
  const node = await ControlClient.find(dataDir)
  if (node != null) {
    const held = (await node.models()).models.find(m => m.modelId === modelIdToString(modelId))
    if (held == null) throw new PublishError(`model ${id} is not in the store of the node running on ${dataDir}; publish it with \`poi model publish\` or let the node fetch it`)
    return held.manifest
  }
  const store = await NodeStore.open(dataDir)
  try {
    const model = await loadModel(BlockStore.of(store), modelId)
    if (model == null) throw new PublishError(`model ${id} is not in ${dataDir}; publish it with \`poi model publish\` or let a node fetch it`)
    return model.manifest
  } finally {
    await store.close()
  }
}
