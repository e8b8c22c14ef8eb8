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
import {
  MAX_INLINE_OUTPUT_BYTES, TASK_TIERS, fieldElementOf, fromHex, toHex, to0xHex, type TaskAnnouncement
} from '../../protocols/wire/index.js'
import type { NodeStore, StoreArea } from '../../storage/index.js'
import { parseTaskInput, type InferenceRunner, type ModelDir as LoadedModel } from '../inference/index.js'
import { ProofWorker, circuitInputOf, commitTensor, parseZkProof, type CommittedDtype, type ZkProof } from '../inference/zk/index.js'
import type { NodeEvents } from './events.js'
import type { ModelService } from './model-service.js'
import type { StreamData } from './stream-data.js'

const log = logger('poi:prover')

/** Where a prover keeps the proofs it announced, by task id (hex). */
const OWN_PROOFS_AREA = 'own-proofs'

export interface ProverComponents {
  store: NodeStore
  models: ModelService
  streamData: StreamData
  events: NodeEvents
  /** The payee named in every proof: this node's Ethereum account. */
  payee: `0x${string}`
  /** The operator's loaded session of a model (shared, so a model is loaded once). */
  runner: (model: LoadedModel) => Promise<InferenceRunner>
  /** Puts the proof in this node's `proofs` channel and gossips its announcement (ZkProofs.announce). */
  announce: (taskId: Uint8Array, proof: ZkProof, output: Uint8Array) => Promise<unknown>
}

/** Whether a task asks for a proof (tier zk or both). */
export function wantsProof (task: Pick<TaskAnnouncement, 'tier'>): boolean {
  return task.tier === TASK_TIERS.zk || task.tier === TASK_TIERS.both
}

/** What a prover stores of its own proof, so a restart announces the same proof again. */
interface OwnProof { proof: ZkProof, output: string }

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

  /** Proves the task's result and announces the proof; at most one proof per task, ever. */
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
    const { models, streamData, events, payee } = this.components
    const stored = await this.own.get(key)
    if (stored !== undefined) {
      // Proved before a restart: the same proof again, never a second one.
      const own = JSON.parse(new TextDecoder().decode(stored)) as OwnProof
      await this.components.announce(taskId, parseZkProof(own.proof), fromHex(own.output) ?? new Uint8Array(0))
      return
    }
    let proof: ZkProof
    let output: Uint8Array
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
      if (inputCommitment !== fieldElementOf(task.inputCommitment)) {
        throw new Error(`the task's input commitment ${to0xHex(task.inputCommitment)} is not the commitment of its input: no proof can match it, so none is made`)
      }
      const result = await (await this.components.runner(model)).run(input)
      const values = result.outputs[outputSpec.name].data
      if (!(values instanceof Int32Array) && !(values instanceof Int8Array)) throw new Error(`output ${outputSpec.name} is ${outputSpec.dtype}: the circuit commits int8 or int32 values`)
      if (result.canonical.length > MAX_INLINE_OUTPUT_BYTES) throw new Error(`the ${result.canonical.length}-byte output is above the ${MAX_INLINE_OUTPUT_BYTES}-byte limit a proof announcement carries`)
      const circuitInput = circuitInputOf({
        circuitId: zk.circuitId,
        inputShape: [1, x.length],
        outputShape: [1, values.length],
        outputDtype: outputSpec.dtype as CommittedDtype
      }, x, values, BigInt(payee))
      const proved = await this.worker.prove(zk.circuitId.toString(16), { wasm: zk.wasm, zkey: zk.zkey }, { ...circuitInput, x: Array.from(circuitInput.x) })
      proof = proved.proof
      output = result.canonical
      times = { inferenceMs: result.inferenceMs, provingMs: proved.provingMs }
    } catch (err) {
      log.error('task %s: cannot prove: %s', key, (err as Error).message)
      events.safeDispatchEvent('failed', { detail: { taskId, reason: `cannot prove: ${(err as Error).message}` } })
      return
    }
    // Stored before it leaves the node: a restart announces this proof again.
    const own: OwnProof = { proof, output: toHex(output) }
    await this.own.put([[key, new TextEncoder().encode(JSON.stringify(own))]], { sync: true })
    events.safeDispatchEvent('proved', { detail: { taskId, prover: payee, inferenceMs: times.inferenceMs, provingMs: times.provingMs } })
    await this.components.announce(taskId, proof, output)
  }
}

export function createProver (components: ProverComponents): Prover {
  return new Prover(components)
}
