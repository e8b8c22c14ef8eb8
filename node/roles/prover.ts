/**
 * The prover (an operator started with `--prove`, issue 16): for a task of tier zk or both whose
 * model's manifest names a circuit, it runs the model, proves with the model's circuit that the
 * committed input gives the committed output (a worker thread: node/inference/zk/proof-worker.ts),
 * puts the proof in its `proofs` stream channel and gossips the announcement on `proofs`. The
 * proof names this node's Ethereum account as the payee, so whoever posts it on chain, this
 * account is paid.
 *
 * One proof per task: the announcement is stored before it leaves the node, and a restarted node
 * sends the same bytes again (a Groth16 proof is randomised, so a second run would give other
 * bytes for the same result).
 */
import { logger } from '@libp2p/logger'
import { keccak256 } from 'viem'
import type { GossipRouter } from '../../protocols/gossip/index.js'
import {
  MAX_INLINE_OUTPUT_BYTES, TASK_TIERS, bytesEqual, bytesToUint256, decodeZkProofAnnouncement, encodeZkProofAnnouncement, fromHex, toHex, uint256ToBytes,
  type TaskAnnouncement, type ZkProofAnnouncement
} from '../../protocols/wire/index.js'
import type { NodeStore, StoreArea } from '../../storage/index.js'
import { parseTaskInput, type InferenceRunner, type ModelDir as LoadedModel } from '../inference/index.js'
import { ProofWorker, circuitInputOf, commitTensor, proofToBytes, type CommittedDtype } from '../inference/zk/index.js'
import type { NodeEvents } from './events.js'
import type { ModelService } from './model-service.js'
import { PROOF_CHANNEL, type StreamData } from './stream-data.js'

const log = logger('poi:prover')

/** Where a prover keeps the announcements it sent, by task id (hex). */
const OWN_PROOFS_AREA = 'own-proofs'

export interface ProverComponents {
  store: NodeStore
  gossip: GossipRouter
  models: ModelService
  streamData: StreamData
  events: NodeEvents
  /** The payee named in every proof: this node's Ethereum account. */
  payee: `0x${string}`
  /** The operator's loaded session of a model (shared, so a model is loaded once). */
  runner: (model: LoadedModel) => Promise<InferenceRunner>
  /** Hands this node's own proof to its own roles (gossipsub does not deliver a node's messages to itself). */
  onOwnProof?: (announcement: ZkProofAnnouncement) => void
}

/** Whether a task asks for a proof (tier zk or both). */
export function wantsProof (task: Pick<TaskAnnouncement, 'tier'>): boolean {
  return task.tier === TASK_TIERS.zk || task.tier === TASK_TIERS.both
}

export class Prover {
  private readonly worker = new ProofWorker()
  private readonly own: StoreArea
  private readonly inFlight = new Map<string, Promise<void>>()

  constructor (private readonly components: ProverComponents) {
    this.own = components.store.area(OWN_PROOFS_AREA)
  }

  async stop (): Promise<void> {
    await this.worker.close()
  }

  /** Proves the task's result and gossips the proof; at most one proof per task, ever. */
  async prove (taskId: Uint8Array, task: TaskAnnouncement): Promise<void> {
    const key = toHex(taskId)
    let running = this.inFlight.get(key)
    if (running === undefined) {
      running = this.proveOnce(key, taskId, task).finally(() => this.inFlight.delete(key))
      this.inFlight.set(key, running)
    }
    await running
  }

  private async proveOnce (key: string, taskId: Uint8Array, task: TaskAnnouncement): Promise<void> {
    const { gossip, models, streamData, events, payee } = this.components
    const previous = await this.own.get(key)
    if (previous !== undefined) {
      // Proved before a restart: the same bytes again, never a second proof.
      await gossip.publish('proofs', previous)
      return
    }
    let announcement: ZkProofAnnouncement
    let body: Uint8Array
    let times: { inferenceMs: number, provingMs: number }
    try {
      const model = models.held(task.modelId) ?? await models.obtain(task.modelId, Number(task.deadline))
      const zk = model.zk
      if (zk === undefined) throw new Error(`model ${model.manifest.name} has no zk circuit in its manifest: it can be proved only once its owner attaches one (poi model zk-attach)`)
      const inputSpec = model.manifest.inputs[0]
      const outputSpec = model.manifest.outputs[0]
      const input = await streamData.taskInput(task)
      const x = parseTaskInput(input, model.manifest.inputs)[inputSpec.name].data
      if (!(x instanceof Int8Array)) throw new Error(`input ${inputSpec.name} is not int8: the circuit takes int8 values`)
      const inputCommitment = commitTensor(x, 'int8')
      if (inputCommitment !== bytesToUint256(task.inputCommitment)) {
        throw new Error(`the task's input commitment ${toHex(task.inputCommitment)} is not the commitment of its input (${inputCommitment.toString(16)}): no proof can match it, so none is made`)
      }
      const result = await (await this.components.runner(model)).run(input)
      const output = result.outputs[outputSpec.name].data
      if (!(output instanceof Int32Array) && !(output instanceof Int8Array)) throw new Error(`output ${outputSpec.name} is ${outputSpec.dtype}: the circuit commits int8 or int32 values`)
      if (result.canonical.length > MAX_INLINE_OUTPUT_BYTES) throw new Error(`the ${result.canonical.length}-byte output is above the ${MAX_INLINE_OUTPUT_BYTES}-byte limit a proof announcement carries`)
      const circuitInput = circuitInputOf({
        circuitId: zk.circuitId,
        inputShape: [1, x.length],
        outputShape: [1, output.length],
        outputDtype: outputSpec.dtype as CommittedDtype
      }, x, output, BigInt(payee))
      const { proof, provingMs } = await this.worker.prove(zk.circuitId.toString(16), { wasm: zk.wasm, zkey: zk.zkey }, { ...circuitInput, x: Array.from(circuitInput.x) })
      times = { inferenceMs: result.inferenceMs, provingMs }
      const proofBytes = proofToBytes(proof)
      body = zkProofBody(taskId, payee, proofBytes)
      announcement = {
        version: 1,
        taskId,
        prover: fromHex(payee.slice(2)) as Uint8Array,
        proof: proofBytes,
        outputCommitment: uint256ToBytes(circuitInput.outputCommitment),
        output: result.canonical,
        proofRef: keccak256(body, 'bytes')
      }
    } catch (err) {
      log.error('task %s: cannot prove: %s', key, (err as Error).message)
      events.safeDispatchEvent('failed', { detail: { taskId, reason: `cannot prove: ${(err as Error).message}` } })
      return
    }
    const bytes = encodeZkProofAnnouncement(announcement)
    // The proof in this node's channel first: the announcement names it (proofRef), and a full node fetches it from the forwarder.
    await streamData.appendOwn(PROOF_CHANNEL, body)
    // Stored before it leaves the node: a restart sends these bytes again.
    await this.own.put([[key, bytes]], { sync: true })
    events.safeDispatchEvent('proved', { detail: { taskId, prover: payee, inferenceMs: times.inferenceMs, provingMs: times.provingMs, proofBytes: announcement.proof.length } })
    await gossip.publish('proofs', bytes)
    this.components.onOwnProof?.(decodeZkProofAnnouncement(bytes))
  }
}

/**
 * What a prover puts in its `proofs` channel for a task: the task id, the payee and the proof
 * (32 + 20 + 256 bytes); the announcement's proofRef is its keccak256.
 */
export function zkProofBody (taskId: Uint8Array, payee: `0x${string}`, proof: Uint8Array): Uint8Array {
  const prover = fromHex(payee.slice(2))
  if (prover === undefined || prover.length !== 20) throw new TypeError(`the payee must be a 20-byte address, got ${payee}`)
  const body = new Uint8Array(taskId.length + prover.length + proof.length)
  body.set(taskId, 0)
  body.set(prover, taskId.length)
  body.set(proof, taskId.length + prover.length)
  return body
}

/** Whether `announcement.proofRef` names the body its fields make (a full node checks it against the stream copy). */
export function proofRefMatches (announcement: ZkProofAnnouncement): boolean {
  const payee = `0x${toHex(announcement.prover)}` as `0x${string}`
  return bytesEqual(keccak256(zkProofBody(announcement.taskId, payee, announcement.proof), 'bytes'), announcement.proofRef)
}

export function createProver (components: ProverComponents): Prover {
  return new Prover(components)
}
