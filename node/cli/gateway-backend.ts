/**
 * TEMPORARY: the gateway's backend until PoiClient (node/client/, branch h-client) lands, built
 * from the requester's own pieces: a light PoiNode, requestInference and lookupResult. It does
 * what PoiClient.submit/result promise the gateway (checks the input against the model's
 * manifest, the fee against the chain's minimum, announces, verifies) so the gateway's tests
 * run end to end. Replaced by `PoiClient.connect` at the merge; nothing else imports it.
 */
import { fetchManifest, ModelNotFoundError } from '../models/index.js'
import { InputError, parseModelId, parseTaskInput, modelIdToString, type ModelManifest } from '../inference/index.js'
import { PoiError, bytesToUint256, fromHex, to0xHex, type TaskAnnouncement } from '../../protocols/wire/index.js'
import { PoiNode } from '../poi-node.js'
import { lookupResult, requestInference, waitForNetwork, connectedPeerIds } from '../requester/index.js'
import type { GatewayBackend, GatewayResult, GatewayTaskRequest, GatewaySubmitted, HealthCheck } from '../api/index.js'
import { loadKeystore } from '../keys.js'
import { operatorSource } from './operator-source.js'
import { readTaskFee } from './payment-setup.js'
import { requesterConfig } from './requester-setup.js'
import { outputTensorLines } from './result-line.js'

/** How long a manifest is looked up through the DHT before the model is called unknown. */
const MANIFEST_LOOKUP_TIMEOUT_MS = 15_000

/** A request the network would refuse, naming the field at fault (what PoiClient's errors carry). */
export class GatewayFieldError extends PoiError {
  constructor (code: string, readonly field: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

export interface ConnectedBackend {
  backend: GatewayBackend
  peerId: string
  address: `0x${string}`
  health: () => Promise<HealthCheck[]>
  close: () => Promise<void>
}

export async function connectGatewayBackend (values: Record<string, unknown>, progress: (line: string) => void): Promise<ConnectedBackend> {
  const config = await requesterConfig('gateway', values, progress)
  const keystore = await loadKeystore(config.keystore)
  const { operatorSet, chain } = await operatorSource(config, keystore)
  const node = await PoiNode.start({
    operate: false, aggregate: false, light: true, keystore, config, operatorSet,
    readOperatorSet: chain != null ? async (epoch) => await chain.operatorSet(epoch) : undefined
  })
  const unwatch = chain?.watchEpochs(set => { node.useOperatorSet(set) }, operatorSet.epoch)
  const manifests = new Map<string, ModelManifest>()
  const manifestOf = async (modelId: Uint8Array): Promise<ModelManifest> => {
    const key = modelIdToString(modelId)
    const known = manifests.get(key)
    if (known !== undefined) return known
    try {
      const m = await fetchManifest(node.libp2p, modelId, { signal: AbortSignal.timeout(MANIFEST_LOOKUP_TIMEOUT_MS) })
      manifests.set(key, m)
      return m
    } catch (err) {
      if (err instanceof ModelNotFoundError) throw new GatewayFieldError(err.code, 'model', err.message, { cause: err })
      throw err
    }
  }
  try {
    progress(`connecting to ${config.bootstrap.join(', ')} …`)
    await waitForNetwork(node)
  } catch (err) {
    unwatch?.()
    await node.stop()
    throw err
  }
  const resultOf = (r: { taskId: Uint8Array, resultHash: Uint8Array, outputRef: Uint8Array, epoch: bigint, signedStake: bigint, totalStake: bigint, output: Uint8Array | undefined },
    extra: Partial<GatewayResult>): GatewayResult => ({
    taskId: to0xHex(r.taskId), resultHash: to0xHex(r.resultHash), outputRef: to0xHex(r.outputRef), source: 'gossip',
    epoch: r.epoch, signedStake: r.signedStake, totalStake: r.totalStake, output: r.output, outputTensors: outputTensorLines(r.output), ...extra
  })

  const backend: GatewayBackend = {
    submit: async (request: GatewayTaskRequest): Promise<GatewaySubmitted> => {
      let modelId: Uint8Array
      try {
        modelId = parseModelId(request.model)
      } catch (err) {
        throw new GatewayFieldError('ERR_INVALID_MODEL_ID', 'model', `model ${request.model} is not a model id: ${(err as Error).message}`)
      }
      const manifest = await manifestOf(modelId)
      const input = request.input instanceof Uint8Array ? request.input : new TextEncoder().encode(JSON.stringify(request.input))
      try {
        parseTaskInput(input, manifest.inputs)
      } catch (err) {
        if (err instanceof InputError) throw new GatewayFieldError(err.code, 'input', err.message, { cause: err })
        throw err
      }
      let fee = request.fee ?? 0n
      if (chain != null) {
        const terms = await readTaskFee(chain, modelId)
        if (request.fee !== undefined && request.fee < terms.fee) throw new GatewayFieldError('ERR_FEE_TOO_LOW', 'fee', `fee ${request.fee} wei is below this model's least fee ${terms.fee} wei (model fee + network minimum): nodes refuse it`)
        fee = request.fee ?? terms.fee
      } else if (request.fee !== undefined && request.fee !== 0n) {
        throw new GatewayFieldError('ERR_FEE_WITHOUT_CHAIN', 'fee', 'this network has no chain: nothing is charged, leave out fee')
      }
      // The task id is known once requestInference announces: the node it is handed reports it.
      let announced!: (task: TaskAnnouncement, taskId: Uint8Array) => void
      const onAnnounce = new Promise<{ task: TaskAnnouncement, taskId: Uint8Array }>(resolve => { announced = (task, taskId) => { resolve({ task, taskId }) } })
      const watched = new Proxy(node, {
        get (target, prop) {
          if (prop === 'announce') {
            return async (task: TaskAnnouncement): Promise<Uint8Array> => {
              const taskId = await target.announce(task)
              announced(task, taskId)
              return taskId
            }
          }
          const v: unknown = Reflect.get(target, prop, target)
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
        }
      })
      const result = requestInference(watched, keystore.account, { modelId, input, fee, timeoutMs: request.timeoutMs, quorumBps: request.quorumBps }, { chain })
        .then(r => resultOf(r, { source: r.source, modelId: modelIdToString(modelId), certificate: r.certificate, signers: r.signers, latencyMs: r.certifiedAt - r.announcedAt, fee }))
      result.catch(() => {})
      const first = await Promise.race([onAnnounce, result.then(() => undefined)])
      if (first === undefined) throw new PoiError('ERR_INTERNAL', 'the task settled before it was announced')
      return { taskId: to0xHex(first.taskId), deadline: Number(first.task.deadline), result }
    },
    result: async (taskId: string, options?: { signal?: AbortSignal }): Promise<GatewayResult> => {
      const id = fromHex(taskId)
      if (id == null) throw new GatewayFieldError('ERR_BAD_TASK_ID', 'id', `${taskId} is not a task id`)
      const found = await lookupResult(node, id, { signal: options?.signal })
      const output = found.output
      const qc = found.certificate
      return resultOf({ taskId: id, resultHash: qc.resultHash, outputRef: qc.outputRef, epoch: qc.epoch, signedStake: bytesToUint256(qc.signedStake), totalStake: bytesToUint256(qc.totalStake), output },
        { source: 'full-node', certificate: qc })
    }
  }
  const health = async (): Promise<HealthCheck[]> => {
    const peers = connectedPeerIds(node).length
    return [
      { name: 'peers', ok: peers > 0, detail: `${peers} connected peer${peers === 1 ? '' : 's'}` },
      { name: 'operator-set', ok: node.operatorSet.operators.length > 0, detail: `epoch ${node.operatorSet.epoch}, ${node.operatorSet.operators.length} operators` }
    ]
  }
  return {
    backend,
    peerId: node.libp2p.peerId.toString(),
    address: keystore.account.address,
    health,
    close: async () => { unwatch?.(); await node.stop() }
  }
}
