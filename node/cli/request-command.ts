/**
 * `poi request`: a light peer checks the input (against the model's manifest, from a model
 * directory or through the DHT) and the chain's ModelRegistry, announces a signed task, waits
 * for its quorum certificate, verifies it and prints the output. The work is the client
 * library's (PoiClient); this command turns flags into its options and prints what it returns.
 */
import { stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { hexToBytes } from 'viem'
import {
  InputError, loadModelDir, modelIdToString, parseModelId, readTaskInput, SHIPPED_MODEL_DIR,
  type ModelDir, type ModelManifest
} from '../inference/index.js'
import { to0xHex, uint256ToBytes32 } from '../../protocols/wire/index.js'
import { outputTensorLines } from '../client/index.js'
import { ModelNotFoundError } from '../models/index.js'
import { DEFAULT_TASK_TIMEOUT_MS, OutputNotFoundError, checkRequestBounds, type ZkResult } from '../requester/index.js'
import { DEFAULT_QUORUM_BPS } from '../../consensus/index.js'
import { FeeRefusedError, PoiClient } from '../client/index.js'
import { NODE_OPTIONS, UsageError, num, type OptionValues } from './args.js'
import { CliOutput } from './output.js'
import { requesterConfig } from './requester-setup.js'
import { AmountError, parseAmount } from './payment-setup.js'
import { resultLineFields } from './result-line.js'
import { formatPoiResult } from './summary.js'

// The errors and the fee now live in the client library; existing imports of them from here keep working.
export { ModelRefusedError, DepositTooLowError } from '../client/index.js'

const exists = async (path: string): Promise<boolean> => await stat(path).then(() => true, () => false)

/** `poi request`'s flags: the node options and these (declared with their help in program.ts, which refuses --chain with --genesis). */
const REQUEST_OPTIONS = {
  ...NODE_OPTIONS,
  model: { type: 'string' },
  input: { type: 'string' },
  timeout: { type: 'string' },
  quorum: { type: 'string' },
  fee: { type: 'string' },
  tab: { type: 'boolean' },
  tier: { type: 'string' }
} as const

/** `--tier`: replicated (a quorum certificate), zk (a Groth16 proof, checked here). `both` is not served by this version's nodes. */
const TIERS = ['replicated', 'zk'] as const

export async function runRequest (values: OptionValues<typeof REQUEST_OPTIONS>): Promise<void> {
  const out = new CliOutput(values.json === true)
  // What the nodes would refuse is refused here, before connecting to anything.
  const timeoutMs = (num(values.timeout, 'timeout') ?? DEFAULT_TASK_TIMEOUT_MS / 1000) * 1000
  const quorumBps = num(values.quorum, 'quorum') ?? DEFAULT_QUORUM_BPS
  // The timeout against the network's maximum task TTL is checked once connected (the client
  // asks the nodes over /poi/network/1/), still before the task is announced.
  checkRequestBounds({ timeoutMs, quorumBps })
  const tier = values.tier ?? 'replicated'
  if (!(TIERS as readonly string[]).includes(tier)) throw new UsageError(`--tier ${tier}: expected ${TIERS.join(' or ')}${tier === 'both' ? ' (tier both, a certificate and a proof that agree, settles on chain but this version\'s operators do not sign output commitments yet)' : ''}`)
  if (tier === 'zk' && values.tab === true) throw new UsageError('--tab pays replicated tasks from a credit tab; a zk task is paid from the deposit by its own proof')
  if (tier === 'zk' && values.quorum !== undefined) throw new UsageError('--quorum is the certificate\'s stake share; a zk task is answered by a proof, not a quorum')
  // Which contracts were accepted is said even with --json (on stderr): it is what the answer is trusted on.
  const config = await requesterConfig('request', values, (line) => out.notice(line))
  if (config.chain == null && values.genesis === undefined && !await exists(config.genesis)) {
    throw new UsageError('poi request needs to know the network\'s operators: give --chain <deployment.json> (a deployment file), ' +
      '--rpc <url> (the bootstrap node names the contracts, checked on that chain) or --genesis <file> (a network without a chain)')
  }
  if (config.chain == null && values.fee !== undefined) throw new UsageError('--fee needs a chain (--chain or --rpc): without one nothing is charged')
  const { modelId, manifest, zk } = await resolveModel(values.model)
  const input = await readInput(values.input, manifest)
  const id = modelIdToString(modelId)
  const client = await PoiClient.connect({ bootstrap: config.bootstrap, config, keystore: values.keystore, onProgress: (line) => out.progress(line) })
  try {
    // `--fee` is read in the network's payment asset, which only the chain knows.
    const asset = values.fee !== undefined ? await client.paymentAsset() : undefined
    const fee = values.fee !== undefined && asset !== undefined ? parseAmount(values.fee, asset, '--fee', true) : undefined
    if (tier === 'zk') {
      let r
      try {
        r = await client.requestZk({ model: modelId, input, timeoutMs, fee, manifest, verificationKey: zk?.verificationKey })
      } catch (err) {
        throw await inFlagTerms(err, client, modelId)
      }
      out.event({
        event: 'zk-result',
        taskId: to0xHex(r.taskId),
        modelId: id,
        prover: r.prover,
        inputCommitment: to0xHex(uint256ToBytes32(r.inputCommitment)),
        outputCommitment: to0xHex(uint256ToBytes32(r.outputCommitment)),
        proofRef: to0xHex(r.proofRef),
        output: to0xHex(r.output),
        outputTensors: outputTensorLines(r.output),
        latencyMs: Math.round(r.provedAt - r.announcedAt),
        verifyMs: Math.round(r.verifyMs),
        fee: r.fee
      }, formatZkResult(r, id) + `\nfee         ${r.feeDescription}`)
      return
    }
    let submitted
    try {
      submitted = await client.submit({ model: modelId, input, timeoutMs, quorumBps, fee, manifest, tab: values.tab === true })
    } catch (err) {
      throw await inFlagTerms(err, client, modelId)
    }
    const r = await submitted.result
    out.event({
      event: 'result',
      source: r.source,
      ...resultLineFields(r),
      modelId: id,
      latencyMs: r.latencyMs,
      ...(r.source === 'chain' && r.settlement !== undefined
        ? { onChain: { resultHash: r.resultHash, outputRef: r.outputRef, epoch: r.epoch, submitter: r.settlement.submitter, txHash: r.settlement.txHash } }
        : {}),
      fee: submitted.fee
    }, formatPoiResult(r, client.node.operatorSet, id) + `\nfee         ${submitted.feeDescription}`)
    // Certified, but what was asked for cannot be shown: the result is printed, and the command fails.
    if (r.output === undefined) throw new OutputNotFoundError(hexToBytes(r.outputRef), r.outputFailures ?? [])
  } finally {
    await client.close()
  }
}

/**
 * The client's request errors as this command's flags name them: a fee below the least one is
 * `--fee`'s, an unknown model `--model`'s, an input the model's manifest refuses `--input`'s.
 */
async function inFlagTerms (err: unknown, client: PoiClient, modelId: Uint8Array): Promise<unknown> {
  const id = modelIdToString(modelId)
  // The client's message starts `fee …`: the flag's name goes in front.
  if (err instanceof FeeRefusedError) return new AmountError(`--${err.message}`)
  if (err instanceof ModelNotFoundError) return new UsageError(`--model ${id}: no node provides this model (is it published, and is the node that holds it running?)`)
  if (err instanceof InputError) {
    const manifest = await client.manifest(modelId).catch(() => undefined)
    return new UsageError(`--input does not match model ${manifest?.name ?? id} (${id}): ${err.message}`)
  }
  return err
}

/**
 * `--model` takes a model id, a model directory or nothing (the shipped model); with a
 * directory (or none) the manifest lets the input be checked before it is announced.
 */
async function resolveModel (model: string | undefined): Promise<{ modelId: Uint8Array, manifest?: ModelManifest, zk?: ModelDir['zk'] }> {
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


/** A verified zk result as `poi request --tier zk` prints it. */
export function formatZkResult (r: ZkResult, modelId: string): string {
  return [
    `task        ${to0xHex(r.taskId)} (tier zk)`,
    `model       ${modelId}`,
    `proof       verified here in ${r.verifyMs.toFixed(0)} ms (Groth16, BN254), ${((r.provedAt - r.announcedAt) / 1000).toFixed(2)} s after the announcement`,
    `prover      ${r.prover} (paid at settlement)`,
    `input       commitment ${to0xHex(uint256ToBytes32(r.inputCommitment))}`,
    `output      commitment ${to0xHex(uint256ToBytes32(r.outputCommitment))}`,
    ...(outputTensorLines(r.output) ?? []).map(t => `            ${t.name} ${t.dtype}[${t.shape.join(',')}] ${JSON.stringify(t.values)}`)
  ].join('\n')
}
