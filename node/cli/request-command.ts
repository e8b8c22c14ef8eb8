/**
 * `poi request`: a light peer checks the input (against the model's manifest, from a model
 * directory or through the DHT) and the chain's ModelRegistry, announces a signed task, waits
 * for its quorum certificate, verifies it and prints the output.
 */
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { PoiError } from '../../protocols/wire/index.js'
import {
  InputError, loadModelDir, modelIdToString, parseModelId, parseTaskInput, readTaskInput, SHIPPED_MODEL_DIR,
  type ModelManifest
} from '../inference/index.js'
import { ModelNotFoundError, fetchManifest } from '../models/index.js'
import { readVault } from '../../contracts/index.js'
import type { ChainClient } from '../chain-client.js'
import { PoiNode } from '../poi-node.js'
import { DEFAULT_TASK_TIMEOUT_MS, OutputNotFoundError, checkRequestBounds, requestInference, waitForNetwork } from '../requester/index.js'
import { DEFAULT_QUORUM_BPS } from '../../consensus/index.js'
import { NODE_OPTIONS, UsageError, num, type OptionValues } from './args.js'
import { operatorSource, readChain } from './operator-source.js'
import { CliOutput } from './output.js'
import { requesterConfig, requesterKeystore } from './requester-setup.js'
import { AmountError, formatAmount, readAsset, readTaskFee, parseAmount } from './payment-setup.js'
import { certificateLineFields, outputTensorLines } from './result-line.js'
import { formatSummary } from './summary.js'

/** How long `poi request --model <id>` looks for the model's manifest before giving up. */
const MANIFEST_LOOKUP_TIMEOUT_MS = 15_000

const exists = async (path: string): Promise<boolean> => await stat(path).then(() => true, () => false)

/** The chain's ModelRegistry does not let this requester use the model. */
export class ModelRefusedError extends PoiError {
  constructor (reason: string) {
    super('ERR_MODEL_REFUSED', `the network will not run this task: ${reason}`)
  }
}

/** `poi request`'s flags: the node options and these (declared with their help in program.ts, which refuses --chain with --genesis). */
const REQUEST_OPTIONS = {
  ...NODE_OPTIONS,
  model: { type: 'string' },
  input: { type: 'string' },
  timeout: { type: 'string' },
  quorum: { type: 'string' },
  fee: { type: 'string' }
} as const

export async function runRequest (values: OptionValues<typeof REQUEST_OPTIONS>): Promise<void> {
  const out = new CliOutput(values.json === true)
  // What the nodes would refuse is refused here, before connecting to anything.
  const timeoutMs = (num(values.timeout, 'timeout') ?? DEFAULT_TASK_TIMEOUT_MS / 1000) * 1000
  const quorumBps = num(values.quorum, 'quorum') ?? DEFAULT_QUORUM_BPS
  // The timeout against the network's maximum task TTL is checked once connected (requestInference
  // asks the nodes over /poi/network/1/), still before the task is announced.
  checkRequestBounds({ timeoutMs, quorumBps })
  // Which contracts were accepted is said even with --json (on stderr): it is what the answer is trusted on.
  const config = await requesterConfig('request', values, (line) => out.notice(line))
  if (config.chain == null && values.genesis === undefined && !await exists(config.genesis)) {
    throw new UsageError('poi request needs to know the network\'s operators: give --chain <deployment.json> (a deployment file), ' +
      '--rpc <url> (the bootstrap node names the contracts, checked on that chain) or --genesis <file> (a network without a chain)')
  }
  const keystore = await requesterKeystore(values, config)
  const { operatorSet, chain } = await operatorSource(config, keystore)
  const { modelId, manifest } = await resolveModel(values.model)
  // Nodes drop tasks for models the registry does not allow; say why now rather than NoQuorum later.
  const refusal = await chain?.modelRefusal(modelId, keystore.account.address)
  if (refusal !== undefined) throw new ModelRefusedError(refusal)
  const { fee, line: feeLine } = await taskFee(chain, modelId, values.fee, keystore.account.address, values.keystore !== undefined, out)
  const input = await readInput(values.input, manifest)
  // With a chain, a certificate of an epoch the node has not adopted yet is checked against that
  // epoch's set read from the chain, and the node follows the chain's epochs while it runs.
  const node = await PoiNode.start({
    operate: false, aggregate: false, light: true, keystore, config, operatorSet,
    readOperatorSet: chain != null ? async (epoch) => await chain.operatorSet(epoch) : undefined
  })
  const unwatch = chain?.watchEpochs(set => { node.useOperatorSet(set) }, operatorSet.epoch)
  try {
    out.progress(`connecting to ${config.bootstrap.join(', ')} …`)
    await waitForNetwork(node)
    if (manifest == null) await checkInputAgainstNetwork(node, modelId, input, out)
    // With a chain, a task no full node shows a certificate for is looked up there before NoQuorum.
    const r = await requestInference(node, keystore.account, { modelId, input, timeoutMs, quorumBps, fee }, { onProgress: (line) => out.progress(line), chain })
    out.event({
      event: 'result',
      source: r.source,
      taskId: r.taskId,
      modelId: modelIdToString(modelId),
      resultHash: r.resultHash,
      outputRef: r.outputRef,
      output: r.output ?? null,
      outputTensors: outputTensorLines(r.output),
      signers: r.signers ?? null,
      ...certificateLineFields(r.certificate),
      epoch: r.epoch,
      signedStake: r.signedStake,
      totalStake: r.totalStake,
      latencyMs: r.certifiedAt - r.announcedAt,
      ...(r.source === 'chain'
        ? { onChain: { resultHash: r.resultHash, outputRef: r.outputRef, epoch: r.epoch, submitter: r.settlement.submitter, txHash: r.settlement.txHash } }
        : {}),
      fee
    }, formatSummary(r, operatorSet, modelIdToString(modelId)) + `\nfee         ${feeLine}`)
    // Certified, but what was asked for cannot be shown: the result is printed, and the command fails.
    if (r.output === undefined) throw new OutputNotFoundError(r.outputRef, r.source === 'chain' ? r.outputFailures : [])
  } finally {
    unwatch?.()
    await node.stop()
  }
}

/** The requester's deposit cannot pay the task's fee: full nodes ignore such tasks. */
export class DepositTooLowError extends PoiError {
  constructor (message: string) {
    super('ERR_DEPOSIT_TOO_LOW', message)
  }
}

/**
 * The task's fee: `--fee`, or by default the model's fee plus the network's minimum, read from
 * the chain (0 without a chain: nothing is charged). With a chain, the requester's available
 * deposit must cover it (full nodes ignore tasks it does not cover), and a `--fee` below the
 * minimum is refused here as the TaskManager would refuse its certificate.
 */
async function taskFee (
  chain: ChainClient | undefined, modelId: Uint8Array, given: string | undefined, requester: `0x${string}`, ownKey: boolean, out: CliOutput
): Promise<{ fee: bigint, line: string }> {
  if (chain == null) {
    if (given !== undefined) throw new UsageError('--fee needs a chain (--chain or --rpc): without one nothing is charged')
    return { fee: 0n, line: 'none (no chain)' }
  }
  const [asset, terms] = await Promise.all([readAsset(chain), readTaskFee(chain, modelId)])
  const fee = given !== undefined ? parseAmount(given, asset, '--fee', true) : terms.fee
  const parts = `model fee ${formatAmount(terms.modelFee, asset)} + network minimum ${formatAmount(terms.minTaskFee, asset)}`
  if (fee < terms.fee) throw new AmountError(`--fee ${formatAmount(fee, asset)} is below this model's least fee ${formatAmount(terms.fee, asset)} (${parts}): nodes refuse it`)
  const vault = await readChain(`the deposit of ${requester}`, chain.config.rpcUrl, async () => await readVault(chain.publicClient, chain.config.taskManager, requester))
  if (vault.available < fee) {
    throw new DepositTooLowError(`the deposit of ${requester} (${formatAmount(vault.available, asset)} available) does not cover the fee ${formatAmount(fee, asset)}: ` +
      (ownKey ? 'run `poi deposit <amount>` with this keystore first' : 'pass --keystore <dir> of an account that has deposited (`poi deposit <amount>`); without it the task is signed by a throwaway key with no deposit'))
  }
  const line = `${formatAmount(fee, asset)}${given === undefined ? ` (${parts})` : ''}, paid from the deposit of ${requester}`
  out.progress(`fee ${line}`)
  return { fee, line }
}

/**
 * `--model` takes a model id, a model directory or nothing (the shipped model); with a
 * directory (or none) the manifest lets the input be checked before it is announced.
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

/**
 * A model named only by id: fetch its manifest (one small block) from its providers through
 * the DHT and check the input against its input spec, so a wrong input is a clear error now
 * instead of NoQuorum at the deadline.
 */
async function checkInputAgainstNetwork (node: PoiNode, modelId: Uint8Array, input: Uint8Array, out: CliOutput): Promise<void> {
  const id = modelIdToString(modelId)
  out.progress(`looking up the manifest of model ${id} through the DHT …`)
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
