/**
 * The operator role: runs a task's model on its input with the pinned runtime, signs the hash
 * of the canonical output with its BLS key and gossips the attestation. At most one result
 * per task, ever: the signed attestation is stored before it leaves the node, and a restarted
 * node sends the same bytes again instead of signing anew.
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { signAttestation } from '../../consensus/index.js'
import { outputRefOf, type GossipRouter } from '../../protocols/gossip/index.js'
import {
  MAX_INLINE_OUTPUT_BYTES, MAX_STREAM_PAYLOAD_BYTES, encodeAttestation, toHex, type Attestation, type TaskAnnouncement
} from '../../protocols/wire/index.js'
import type { NodeStore } from '../../storage/index.js'
import { InferenceRunner, type ModelDir as LoadedModel } from '../inference/index.js'
import type { AttestationLedger } from './attestation-ledger.js'
import type { Epochs } from './epochs.js'
import type { NodeEvents } from './events.js'
import type { ModelService } from './model-service.js'
import { createProver, wantsProof, type Prover, type ProverComponents } from './prover.js'
import { OUTPUT_CHANNEL, type StreamData } from './stream-data.js'
import { testFaultFromEnv, warnTestFault, wrongResult, type TestFault } from './test-faults.js'

const log = logger('poi:operator')

export interface OperatorComponents {
  blsSecretKey: Uint8Array
  store: NodeStore
  gossip: GossipRouter
  epochs: Epochs
  models: ModelService
  streamData: StreamData
  ledger: AttestationLedger
  events: NodeEvents
  /** Counts this node's own attestation toward a certificate when it aggregates too. */
  onOwnAttestation?: (attestation: Attestation) => void
  /**
   * `--prove` (issue 16): proves tasks of tier zk with the model's circuit, naming this account as
   * the payee. Without it the operator leaves zk tasks to provers.
   */
  prove?: { payee: `0x${string}`, announce: ProverComponents['announce'] }
}

export class Operator implements Startable {
  private readonly runners = new Map<string, Promise<InferenceRunner>>()
  /** The chaos suite's byzantine behaviour (node/roles/test-faults.ts); undefined for every real operator. */
  private fault: TestFault | undefined
  private readonly prover: Prover | undefined

  constructor (private readonly components: OperatorComponents) {
    const { prove, store, models, streamData, events } = components
    this.prover = prove !== undefined
      ? createProver({ store, models, streamData, events, payee: prove.payee, announce: prove.announce, runner: async (model) => await this.runner(model) })
      : undefined
  }

  /** Whether this operator proves zk tasks (`--prove`). */
  get proves (): boolean { return this.prover !== undefined }

  /**
   * Loads (and hash-checks) every model given to the node before it joins: a bad model file
   * stops the operator here with its path, not at its first task.
   */
  async start (): Promise<void> {
    this.fault = testFaultFromEnv(process.env)
    if (this.fault !== undefined) warnTestFault(this.fault)
    for (const model of this.components.models.all()) await this.runner(model)
  }

  /** Closes every ONNX session; a session that fails to close is logged, not thrown. */
  async stop (): Promise<void> {
    await this.prover?.stop()
    const runners = [...this.runners.values()]
    this.runners.clear()
    for (const pending of runners) {
      try {
        await (await pending).close()
      } catch (err) {
        log.error('closing an inference session failed: %s', (err as Error).message)
      }
    }
  }

  /** Loads a model's session ahead of its first task (after a prefetch). */
  async warm (model: LoadedModel): Promise<void> {
    await this.runner(model)
  }

  /** Runs the model and gossips a signed result, at most one result per task, ever. */
  async attest (taskId: Uint8Array, task: TaskAnnouncement): Promise<void> {
    // A zk task is settled by a proof, not a certificate: provers prove it, other operators leave it.
    if (wantsProof(task)) {
      await this.prover?.prove(taskId, task)
      return
    }
    const { store, gossip, epochs, models, streamData, ledger, events } = this.components
    const operatorIndex = epochs.operatorIndex
    if (operatorIndex == null) return
    const previous = await store.getOwnAttestation(taskId)
    if (previous != null) {
      // Already signed (before a restart, say): send the same bytes again, never a new signature.
      await gossip.publish('attestations', encodeAttestation(previous))
      return
    }
    let result
    try {
      const model = models.held(task.modelId) ?? await models.obtain(task.modelId, Number(task.deadline))
      const runner = await this.runner(model)
      // An operator on another onnxruntime than the manifest pins signs nothing the rule cannot absorb.
      const refusal = runner.attestRefusal()
      if (refusal !== undefined) {
        this.fail(taskId, refusal)
        return
      }
      result = await runner.run(await streamData.taskInput(task))
      if (this.fault === 'wrong-result') result = { ...result, ...wrongResult(result.canonical) }
    } catch (err) {
      this.fail(taskId, (err as Error).message)
      return
    }
    // An output above the inline limit travels only in this operator's stream channel, so it
    // must be there before the attestation names it.
    const inline = result.canonical.length <= MAX_INLINE_OUTPUT_BYTES
    if (!inline) {
      try {
        await streamData.appendOwn(OUTPUT_CHANNEL, result.canonical)
      } catch (err) {
        this.fail(taskId, `the ${result.canonical.length}-byte output cannot go in a stream message (at most ${MAX_STREAM_PAYLOAD_BYTES} bytes): ${(err as Error).message}`)
        return
      }
    }
    const set = epochs.current
    const signStart = performance.now()
    const attestation = signAttestation(this.components.blsSecretKey, set.domain, {
      taskId,
      resultHash: result.resultHash,
      outputRef: outputRefOf(result.canonical),
      epoch: set.epoch,
      operatorIndex,
      output: inline ? result.canonical : new Uint8Array(0)
    })
    const signMs = performance.now() - signStart
    if (this.fault === 'equivocate') await this.equivocate(attestation)
    // Stored before it leaves the node: a crash after gossiping must not let the restarted
    // node sign a second, different result.
    await store.putOwnAttestation(attestation)
    ledger.remember(attestation)
    events.safeDispatchEvent('attested', { detail: { attestation, inferenceMs: result.inferenceMs, signMs } })
    await gossip.publish('attestations', encodeAttestation(attestation))
    // The output in this operator's own channel: anyone can resolve the certificate's
    // outputRef (keccak256 of the canonical output) over /poi/stream/1/. After gossiping, so
    // it is off the critical path.
    if (inline) await streamData.appendOwn(OUTPUT_CHANNEL, result.canonical)
    this.components.onOwnAttestation?.(attestation)
  }

  /**
   * Test fault only: gossips a second, wrong result for the task signed with the same key, ahead
   * of the right one (so no aggregator ever counts this operator before it sees both). Never stored.
   */
  private async equivocate (honest: Attestation): Promise<void> {
    const wrong = wrongResult(honest.output.length > 0 ? honest.output : honest.resultHash)
    const set = this.components.epochs.current
    const conflicting = signAttestation(this.components.blsSecretKey, set.domain, {
      taskId: honest.taskId, resultHash: wrong.resultHash, outputRef: wrong.resultHash, epoch: honest.epoch, operatorIndex: honest.operatorIndex, output: wrong.canonical
    })
    await this.components.gossip.publish('attestations', encodeAttestation(conflicting))
  }

  private fail (taskId: Uint8Array, reason: string): void {
    log.error('task %s: cannot attest: %s', toHex(taskId), reason)
    this.components.events.safeDispatchEvent('failed', { detail: { taskId, reason } })
  }

  private async runner (model: LoadedModel): Promise<InferenceRunner> {
    const id = toHex(model.modelId)
    let r = this.runners.get(id)
    if (r == null) {
      r = InferenceRunner.load(model.modelBytes, model.manifest)
      this.runners.set(id, r)
      r.catch(() => this.runners.delete(id))
    }
    return await r
  }
}

export function createOperator (components: OperatorComponents): Operator {
  return new Operator(components)
}
