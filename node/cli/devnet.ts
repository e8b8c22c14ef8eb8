/**
 * `poi devnet` (`npm start`): a whole network on this machine (node/cli/local-network.ts), a
 * task for the shipped model end to end with its certificate settled on-chain, then tasks for
 * real models from npm. What it reports it has waited for: the operators' model fetches are
 * counted once every operator has finished (or failed) each one.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { hexToBytes } from 'viem'
import type { PrivateKeyAccount } from 'viem/accounts'
import { MAX_INLINE_INPUT_BYTES, PoiError, to0xHex } from '../../protocols/wire/index.js'
import { resolveConfig } from '../config.js'
import { NpmModelNotInstalledError, modelDirFromNpm, npmModelSampleInput } from '../fixtures/index.js'
import { encodeTensorFile, formatCanonicalOutput, loadModelDir, modelIdToString, SHIPPED_MODEL_DIR } from '../inference/index.js'
import { PoiNode } from '../poi-node.js'
import { fetchOutput, requestInference, waitForNetwork, type RequestResult } from '../requester/index.js'
import { UsageError, num, parse } from './args.js'
import { prepareNodeDir } from './launcher.js'
import { fundRequester, startLocalNetwork, type LocalNetwork } from './local-network.js'
import { waitForModels, type ModelOutcome } from './model-wait.js'
import { formatSummary } from './summary.js'

// Kept here for the tests and benchmarks that import them from the devnet.
export { DEVNET_CHAIN_ID, DEVNET_TASK_MANAGER, STAKE_WEI } from './network-defaults.js'
export { DEVNET_REQUESTER_DEPOSIT_WEI, fundRequester, startLocalNetwork } from './local-network.js'
export type { LocalNetwork, LocalNetworkOptions } from './local-network.js'

export const DEFAULT_DEVNET_OPERATORS = 4
/** A certificate needs 3 signers. */
const MIN_DEVNET_OPERATORS = 3
const DEVNET_TASK_TIMEOUT_MS = 30_000
/** How long the devnet waits for the aggregator's transaction after the QC formed. */
const SETTLEMENT_TIMEOUT_MS = 30_000
/**
 * How long every operator may take to fetch every registered model through the DHT, from the
 * moment the network is up: the 579 KB classifier takes well under a second on loopback, and
 * 7.5 s was seen with the machine busy.
 */
const MODEL_FETCH_TIMEOUT_MS = 60_000

/**
 * The PaddleOCR text-direction classifier: a real model (579 KB, so it travels as a shard)
 * whose 110 KB sample input is above the inline limit, so the default devnet also sends an
 * input by stream reference.
 */
export const DEFAULT_DEVNET_NPM_MODELS = ['ppocr-cls']

/** A deterministic example input for the shipped 16-feature classifier. */
export function exampleInput (seed = 1): Uint8Array {
  const data = Array.from({ length: 16 }, (_, i) => Math.round(Math.sin(seed * 7.1 + i * 1.3) * 1000) / 1000)
  return new TextEncoder().encode(JSON.stringify({ x: { dims: [1, 16], data } }))
}

/** The devnet found something wrong in what it ran (the chain and the certificate disagree, …). */
export class DevnetError extends PoiError {
  constructor (message: string) {
    super('ERR_DEVNET', message)
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

/** `poi devnet [--operators <n>] [--keep] [--dir <dir>] [--offchain] [--npm-models <keys|none>]` */
export async function runDevnetCommand (args: string[]): Promise<number> {
  const { values } = parse(args, { operators: { type: 'string' }, keep: { type: 'boolean' }, dir: { type: 'string' }, offchain: { type: 'boolean' }, 'npm-models': { type: 'string' } })
  const npm = values['npm-models']
  const npmModels = npm === undefined ? undefined : npm === 'none' ? [] : npm.split(',').map(k => k.trim()).filter(k => k !== '')
  return await runDevnet({ operators: num(values.operators, 'operators'), keep: values.keep === true, dir: values.dir, offchain: values.offchain === true, npmModels })
}

interface ExtraModel { key: string, dir: string, modelId: Uint8Array, name: string }

/** `poi devnet` / `npm start`: a whole network on this machine, tasks end to end. */
export async function runDevnet (opts: DevnetOptions): Promise<number> {
  const started = Date.now()
  const n = opts.operators ?? DEFAULT_DEVNET_OPERATORS
  if (n < MIN_DEVNET_OPERATORS) throw new UsageError(`a devnet needs at least ${MIN_DEVNET_OPERATORS} operators (a certificate needs ${MIN_DEVNET_OPERATORS} signers), got ${n}`)
  const root = opts.dir != null ? resolve(opts.dir) : await mkdtemp(join(tmpdir(), 'poi-devnet-'))
  const progress = (line: string): void => { console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`) }
  // Real models are dev dependencies: without them (a production install) the devnet runs the shipped model only.
  const extraModels: ExtraModel[] = []
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
    const mlp = modelIdToString(model.modelId)
    // On a chain, operators prefetch every registered model from the start: wait for all of them.
    const prefetched = net.chain != null
      ? waitForModels(net.operators, [mlp, ...extraModels.map(m => modelIdToString(m.modelId))], MODEL_FETCH_TIMEOUT_MS)
      : undefined
    prefetched?.catch(() => {}) // awaited below; a failure before then must not go unhandled
    const keys = (await prepareNodeDir(root, 'requester')).keys
    const config = resolveConfig({ keystore: keys.dir, dataDir: join(root, 'requester', 'data'), genesis: net.genesisPath, bootstrap: [net.bootstrapAddr], listen: [], chain: net.chain?.client.config })
    // On a chain, full nodes admit only tasks a deposit pays for, at the model's fee plus the network minimum.
    if (net.chain != null) await fundRequester(net.chain, keys.account)
    requester = await PoiNode.start({ operate: false, aggregate: false, light: true, keystore: keys, config, operatorSet: net.operatorSet })
    progress('requester (light peer) connecting')
    await waitForNetwork(requester)
    progress(`sending a task for model ${model.manifest.name}`)
    const result = await requestInference(requester, keys.account, { modelId: model.modelId, input: exampleInput(), fee: await net.chain?.client.minimumFee(model.modelId), timeoutMs: DEVNET_TASK_TIMEOUT_MS }, { onProgress: progress })
    console.log('\n' + formatSummary(result, net.operatorSet, `${model.manifest.name} (${mlp})`))
    // Without a chain there is no prefetch: the task made the operators fetch the model.
    const outcomes = await (prefetched ?? waitForModels(net.operators, [mlp], MODEL_FETCH_TIMEOUT_MS, { taskId: to0xHex(result.taskId) }))
    console.log(modelFetchLine(outcomes.filter(o => o.modelId === mlp), net.operators.length) + '\n')
    if (net.chain != null) await reportSettlement(net, requester, result, progress)
    for (const m of extraModels) await runExtraModelTask(net, requester, keys.account, m, progress)
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

/** "model shards: 4 of 4 operators fetched the model through the DHT …", from every operator's outcome. */
export function modelFetchLine (outcomes: readonly ModelOutcome[], operators: number): string {
  const fetched = outcomes.flatMap(o => 'fetched' in o && !o.fetched.fromStore ? [o.fetched] : [])
  const failed = outcomes.flatMap(o => 'failed' in o ? [`${o.node}: ${o.failed}`] : [])
  return `model shards: ${fetched.length} of ${operators} operators fetched the model through the DHT from the bootstrap node` +
    (fetched.length > 0 ? ` (${Math.max(...fetched.map(e => e.ms))} ms at most)` : '') +
    (failed.length > 0 ? `; not fetched: ${failed.join('; ')}` : '')
}

/** Waits for the aggregator's transaction and checks the chain against the off-chain certificate. */
async function reportSettlement (net: LocalNetwork, requester: PoiNode, result: RequestResult, progress: (line: string) => void): Promise<void> {
  const chain = net.chain!
  progress('waiting for the aggregator to settle the certificate on-chain')
  const onChain = await chain.client.waitForAcceptance(result.taskId, SETTLEMENT_TIMEOUT_MS)
  const offChain = to0xHex(result.certificate.resultHash)
  const same = onChain.resultHash.toLowerCase() === offChain
  // The chain holds only the reference; the output itself is off-chain, in the operators' stream channels.
  const resolved = await fetchOutput(requester, hexToBytes(onChain.outputRef), hexToBytes(onChain.resultHash))
    .then(output => `resolves over /poi/stream/1/ to the ${output.length}-byte output with that result hash`)
    .catch((err: Error) => `NOT resolved: ${err.message}`)
  console.log([
    '',
    `on-chain    TaskManager ${chain.deployment.taskManager} (chain ${chain.anvil.chainId})`,
    `  tx        ${onChain.txHash}`,
    `  gas used  ${onChain.gasUsed}`,
    `  result    ${onChain.resultHash} (epoch ${onChain.epoch}, ${same ? 'matches the off-chain certificate' : 'DIFFERS from the off-chain certificate ' + offChain})`,
    `  outputRef ${onChain.outputRef} (${resolved})`,
    `  posted by ${onChain.submitter}`,
    ''
  ].join('\n'))
  if (!same) throw new DevnetError('the on-chain result differs from the verified off-chain certificate')
  if (resolved.startsWith('NOT')) throw new DevnetError(`the on-chain outputRef does not resolve: ${resolved}`)
}

/** A task for a real model from npm with its sample input (by stream reference when large), and a short summary. */
async function runExtraModelTask (net: LocalNetwork, requester: PoiNode, account: PrivateKeyAccount, m: ExtraModel, progress: (line: string) => void): Promise<void> {
  const input = encodeTensorFile(npmModelSampleInput(m.key))
  progress(`sending a task for ${m.name}, a real model from npm, with its ${input.length}-byte sample input`)
  const r = await requestInference(requester, account, { modelId: m.modelId, input, fee: await net.chain?.client.minimumFee(m.modelId), timeoutMs: DEVNET_TASK_TIMEOUT_MS }, { onProgress: progress })
  const settled = net.chain != null ? await net.chain.client.waitForAcceptance(r.taskId, SETTLEMENT_TIMEOUT_MS) : undefined
  console.log([
    '',
    `${m.name} (${modelIdToString(m.modelId)})`,
    `  input     ${input.length} bytes, ${input.length > MAX_INLINE_INPUT_BYTES ? 'by stream reference' : 'inline in the task'}`,
    `  output    ${formatCanonicalOutput(r.output)}${r.certificate.output.length === 0 ? ' (by stream reference)' : ''}`,
    `  verified  ${r.signers.length} of ${net.operatorSet.operators.length} operators signed, ${(r.certifiedAt - r.announcedAt).toFixed(1)} ms after the announcement`,
    ...(settled != null ? [`  on-chain  ${settled.txHash} (${settled.resultHash.toLowerCase() === to0xHex(r.certificate.resultHash) ? 'same result' : 'DIFFERENT result'})`] : []),
    ''
  ].join('\n'))
}
