/**
 * `poi models`, `poi model publish|ls|show`: the models a node runs, and models stored as
 * content-addressed shards in a node's data directory (and registered on-chain).
 */
import { readFile } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import * as ort from 'onnxruntime-node'
import { isAddress, type Account, type Chain, type Transport, type WalletClient } from 'viem'
import { registerModel, readModel } from '../../contracts/index.js'
import { PoiError } from '../../protocols/wire/index.js'
import { BlockStore, NodeStore } from '../../storage/index.js'
import { ChainClient } from '../chain-client.js'
import { defaultConfig, type ChainConfig } from '../config.js'
import { readDeployment } from '../deployment.js'
import {
  UNOWNED, encodeManifest, installedOnnxruntimeVersion, isTensorDtype, loadModelDir, modelIdToString, parseAgreementRule, parseModelId,
  type ModelManifest, type TensorSpec
} from '../inference/index.js'
import { loadKeystore, type Keystore } from '../keys.js'
import { listModels, loadModel, publishModel } from '../models/index.js'
import { UsageError, nodeConfig, type OptionValues } from './args.js'
import { CliOutput } from './output.js'

export class PublishError extends PoiError {
  constructor (message: string) {
    super('ERR_PUBLISH', message)
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
  if (file === undefined || values.rule === undefined) throw new UsageError('usage: poi model publish <file.onnx> --rule <exact|grid:k|argmax|topk:n> [--data-dir <node data dir>] [--name <name>] [--keystore <dir>] [--owner <address>] [--chain <deployment.json> [--fee <wei>]] (--chain needs --keystore)')
  if (values.fee !== undefined && !/^\d+$/.test(values.fee)) throw new UsageError(`--fee must be an amount in wei, got ${values.fee}`)
  if (values.owner !== undefined && !isAddress(values.owner, { strict: false })) throw new UsageError(`--owner must be an Ethereum address (0x + 40 hex digits), got ${values.owner}`)
  const fee = values.fee !== undefined ? BigInt(values.fee) : undefined
  const chain = values.chain !== undefined ? await readDeployment(values.chain) : undefined
  const keystore = values.keystore !== undefined ? await loadKeystore(resolve(values.keystore)) : undefined
  const out = new CliOutput(values.json === true)
  const owner = values.owner as `0x${string}` | undefined
  const r = await publishModelFile({ file, rule: values.rule, dataDir, name: values.name, chain, keystore, owner, fee }, (line) => out.progress(line))
  out.event({ event: 'published', modelId: r.modelId, owner: r.manifest.owner, chunks: r.chunks, registeredTx: r.registeredTx ?? null },
    `${r.modelId}\n(a node started with --data-dir ${dataDir} serves it and announces it on the DHT)`)
}

/** `poi model ls [--data-dir <dir>]`. */
export async function runModelLs (values: ModelValues): Promise<void> {
  for (const m of await listStoredModels(dataDirOf(values))) console.log(`${m.modelId}  ${m.manifest.name}  ${m.manifest.size} bytes  ${m.manifest.chunks.length} chunks  rule ${m.manifest.agreement}`)
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
    console.log(`${modelIdToString(m.modelId)}  ${m.manifest.name}  ${m.manifest.size} bytes  rule ${m.manifest.agreement}  (${dir})`)
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
  file: string
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
}

export interface PublishResult {
  modelId: string
  manifest: ModelManifest
  chunks: number
  registeredTx?: `0x${string}`
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

/**
 * `poi model publish`: splits an ONNX file into content-addressed blocks in
 * a node's data directory (the node announces them on the DHT when it runs)
 * and, with a chain, registers the model id in the ModelRegistry, passing the
 * manifest block as proof that the keystore's account is the owner it names.
 */
export async function publishModelFile (p: PublishParams, progress: (line: string) => void = () => {}): Promise<PublishResult> {
  const owner = publishOwner(p)
  if (p.chain != null && p.chain.modelRegistry == null) throw new PublishError('the deployment names no modelRegistry; redeploy or publish without --chain')
  const path = resolve(p.file)
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
  const store = await NodeStore.open(p.dataDir)
  let published
  try {
    published = await publishModel(BlockStore.of(store), bytes, {
      owner,
      name: p.name ?? basename(path).replace(/\.onnx$/, ''),
      runtime: { onnxruntime: installedOnnxruntimeVersion(), ...DEFAULT_PUBLISH_RUNTIME },
      agreement,
      inputs: specs.inputs,
      outputs: specs.outputs
    })
  } finally {
    await store.close()
  }
  const modelId = modelIdToString(published.modelId)
  progress(`stored ${published.cids.length - 1} chunks and the manifest of ${modelId} in ${p.dataDir}`)
  if (owner === UNOWNED) {
    progress(`the manifest names no owner (${UNOWNED}, no --keystore or --owner): nodes can serve ${modelId} off-chain, but no account can register it on a chain; publish with --keystore to own it`)
  } else {
    progress(`owner ${owner}: only this account can register ${modelId} on-chain`)
  }
  let registeredTx: `0x${string}` | undefined
  if (p.chain?.modelRegistry != null && p.keystore != null) {
    const client = await ChainClient.connect(p.chain, p.keystore.account)
    const existing = await readModel(client.publicClient, p.chain.modelRegistry, published.modelId)
    if (existing != null) {
      progress(`already registered on-chain by ${existing.owner}`)
    } else {
      const wallet = client.walletClient as WalletClient<Transport, Chain, Account>
      const { receipt } = await registerModel(wallet, client.publicClient, p.chain.modelRegistry, published.modelId, encodeManifest(published.manifest), p.fee ?? 0n)
      registeredTx = receipt.transactionHash
      progress(`registered in ModelRegistry ${p.chain.modelRegistry} (tx ${registeredTx})`)
    }
  }
  return { modelId, manifest: published.manifest, chunks: published.cids.length - 1, registeredTx }
}

/** `poi model ls`: the models a node's block store holds. */
export async function listStoredModels (dataDir: string): Promise<Array<{ modelId: string, manifest: ModelManifest }>> {
  const store = await NodeStore.open(dataDir)
  try {
    return (await listModels(BlockStore.of(store))).map(m => ({ modelId: m.modelId, manifest: m.manifest }))
  } finally {
    await store.close()
  }
}

/** `poi model show`: one model's manifest from a node's block store. */
export async function showStoredModel (dataDir: string, id: string): Promise<ModelManifest> {
  let modelId: Uint8Array
  try {
    modelId = parseModelId(id)
  } catch (err) {
    throw new PublishError(`${id} is not a model id: ${(err as Error).message}`)
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
