/**
 * Zero-knowledge proofs on gossip (issue 16, spec16n part B): every node, full or light, follows
 * the `proofs` topic and checks each proof off-chain before it is relayed or used; a prover
 * appends its proof body to its own `proofs` stream channel and gossips the announcement.
 *
 * A proof announcement is checked, cheapest first:
 *  1. it decodes (strict codec: lengths, fields below their moduli, proofRef = hash of the body);
 *  2. its task is known here (else ignored: it may come before the task, or after we forgot it),
 *     and no valid proof of it is held yet (a duplicate is ignored: Groth16 proofs can be
 *     re-randomised, so "another valid proof of the same statement" is no news);
 *  3. the task asked for the zk or both tier (else rejected: its requester signed `replicated`);
 *  4. the output is a canonical `exact` output of one int8/int32 tensor and outputCommitment is
 *     its commitment (else rejected);
 *  5. the model's verification key can be had (else ignored: not the sender's fault), and the
 *     output has the model's output dtype and shape (else rejected; the commitment does not hash
 *     the length, so the shape is what pins it);
 *  6. the proof verifies for [circuitId, the task's inputCommitment, outputCommitment, prover]
 *     (else rejected, naming ProofRejectedError's reason);
 *  7. a full node holds the body (fetched from the forwarder) before it forwards, as for outputs
 *     (DESIGN §4 "data before forwarding"), and serves it on /poi/stream/1/.
 *
 * Trust: the announcement is untrusted; the task (its signed tier and input commitment), and the
 * verification key the model service gives, are trusted.
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { GossipRouter, Verdict } from '../../protocols/gossip/index.js'
import {
  DecodeError, MAX_TRACKED_TASKS, PoiError, TASK_TIERS, decodeZkProofAnnouncement, encodeZkProofAnnouncement,
  encodeZkProofBody, fieldElementOf, toHex, to0xHex, uint256ToBytes, zkProofAnnouncementOf, type ZkProofAnnouncement, type ZkProofBody
} from '../../protocols/wire/index.js'
import { CanonicalOutputError, decodeCanonicalOutput, type ModelManifest } from '../inference/index.js'
import {
  ProofRejectedError, commitTensor, proofFromBytes, proofToBytes, publicSignalsOf, verifyProof, type ZkProof, type VerificationKey
} from '../inference/zk/index.js'
import type { NodeEvents, VerifiedZkProof } from './events.js'
import { displayModelId, type ModelService } from './model-service.js'
import type { StreamData } from './stream-data.js'
import type { TaskBook } from './task-book.js'

export type { VerifiedZkProof }

const log = logger('poi:zk-proofs')

/** The stream channel every prover appends its proof bodies to (as operators their outputs to `outputs`). */
export const PROOF_CHANNEL = 'proofs'

/**
 * Valid proofs remembered (one per task, the first): as many as tasks tracked. Each holds a
 * verified output, so its size is the model's output size (a zk model's is tens of bytes), not
 * whatever a sender chooses; the oldest is dropped first.
 */
export const MAX_REMEMBERED_ZK_PROOFS = MAX_TRACKED_TASKS

/** Checks one proof against its verification key; resolves, or throws ProofRejectedError. Off the event loop in the node. */
export type ProofCheck = (vkey: VerificationKey, proof: ZkProof, expected: { circuitId: bigint, inputCommitment: bigint, outputCommitment: bigint, prover: bigint }) => Promise<void>

export interface ZkProofsComponents {
  gossip: GossipRouter
  tasks: TaskBook
  events: NodeEvents
  models: Pick<ModelService, 'zkVerifier'>
  streamData: StreamData
  /** How a proof is verified (default: verifyProof on this thread; the node passes a ProofVerifier's worker). */
  check?: ProofCheck
}

export interface ZkProofsInit {
  /** A light peer neither holds nor serves proof bodies, and cannot prove. */
  light: boolean
}

/** A proof cannot be announced: from a light node, for another input than its task's, or with an output it does not commit to. */
export class ZkProofAnnounceError extends PoiError {
  static readonly code = 'ERR_ZK_PROOF_ANNOUNCE'
  declare readonly code: typeof ZkProofAnnounceError.code
  constructor (message: string) {
    super(ZkProofAnnounceError.code, message)
  }
}

/** What an accepted announcement leaves for onMessage. */
interface Checked { announcement: ZkProofAnnouncement, proof: ZkProof, verifyMs: number }

export class ZkProofs implements Startable {
  /** The first valid proof per task (task id hex), oldest first. */
  private readonly proofs = new Map<string, VerifiedZkProof>()
  /** Announcements validated and waiting for onMessage, by proofRef hex. */
  private readonly accepted = new Map<string, Checked>()
  private readonly check: ProofCheck

  constructor (private readonly components: ZkProofsComponents, private readonly init: ZkProofsInit) {
    this.check = components.check ?? (async (vkey, proof, expected) => { await verifyProof(vkey, proof, expected) })
  }

  start (): void {
    this.components.gossip.handle('proofs', {
      validate: async (data, from) => await this.validate(data, from),
      onMessage: (data) => { this.onMessage(data) }
    })
  }

  stop (): void {
    this.accepted.clear()
  }

  /** The first valid proof this node saw (or made) for a task. */
  proofOf (taskId: Uint8Array | string): VerifiedZkProof | undefined {
    return this.proofs.get(typeof taskId === 'string' ? taskId.replace(/^0x/, '').toLowerCase() : toHex(taskId))
  }

  /**
   * Announces a proof this node made for a task it tracks (spec16n part C: an operator with
   * `--prove`): appends the body to this node's `proofs` channel (served on /poi/stream/1/),
   * gossips the announcement, remembers it as the task's proof and dispatches `proof`. The proof
   * is not verified here: the prover checks its own work before (a receiver rejects a bad one).
   */
  async announce (taskId: Uint8Array, proof: ZkProof, output: Uint8Array): Promise<{ proofRef: Uint8Array, recipients: number }> {
    if (this.init.light) throw new ZkProofAnnounceError('a light node keeps no stream channel: it cannot serve the proof body its announcement refers to')
    const signals = publicSignalsOf(proof)
    // what every receiver would reject at once is not sent (the pairing is the receivers' to check)
    const task = this.components.tasks.get(taskId)?.task
    if (task != null && fieldElementOf(task.inputCommitment) !== signals.inputCommitment) {
      throw new ZkProofAnnounceError(`the proof is about input commitment ${signals.inputCommitment}, task ${toHex(taskId)} commits to ${fieldElementOf(task.inputCommitment)}`)
    }
    const tensor = outputTensor(output)
    if (typeof tensor === 'string' || commitTensor(tensor.values, tensor.dtype) !== signals.outputCommitment) {
      throw new ZkProofAnnounceError(`the output is not the one the proof commits to (${typeof tensor === 'string' ? tensor : 'another commitment'})`)
    }
    const body: ZkProofBody = {
      version: 1,
      taskId: Uint8Array.from(taskId),
      prover: addressBytes(signals.prover),
      proof: Uint8Array.from(proofToBytes(proof)),
      outputCommitment: fieldBytes(signals.outputCommitment),
      output: Uint8Array.from(output)
    }
    const announcement = zkProofAnnouncementOf(body)
    const bytes = encodeZkProofAnnouncement(announcement)
    await this.components.streamData.appendOwn(PROOF_CHANNEL, encodeZkProofBody(body))
    const recipients = await this.components.gossip.publish('proofs', bytes)
    this.remember({ taskId, prover: to0xHex(body.prover), outputCommitment: signals.outputCommitment, proof, output, proofRef: announcement.proofRef, verifyMs: 0, provedHere: true })
    return { proofRef: announcement.proofRef, recipients }
  }

  private refuse (from: string, reason: string, verdict: 'reject' | 'ignore'): Verdict {
    log('proof from %s: %s (%s)', from, verdict, reason)
    this.components.events.safeDispatchEvent('rejected', { detail: { topic: 'proof', reason, from, verdict } })
    return verdict
  }

  private async validate (data: Uint8Array, from: string): Promise<Verdict> {
    let announcement: ZkProofAnnouncement
    try {
      announcement = decodeZkProofAnnouncement(data)
    } catch (err) {
      return this.refuse(from, err instanceof DecodeError ? err.message : `undecodable: ${String(err)}`, 'reject')
    }
    const id = toHex(announcement.taskId)
    const entry = this.components.tasks.get(announcement.taskId)
    if (entry == null) return this.refuse(from, `proof for task ${id}: the task is not known here`, 'ignore')
    if (this.proofs.has(id)) return 'ignore'
    const { task } = entry
    if (task.tier === TASK_TIERS.replicated) return this.refuse(from, `proof for task ${id}: the task asked for the replicated tier, not a proof`, 'reject')
    const output = outputTensor(announcement.output)
    if (typeof output === 'string') return this.refuse(from, `proof for task ${id}: ${output}`, 'reject')
    const outputCommitment = fieldElementOf(announcement.outputCommitment)
    if (commitTensor(output.values, output.dtype) !== outputCommitment) {
      return this.refuse(from, `proof for task ${id}: outputCommitment is not the commitment of the output it carries`, 'reject')
    }
    let verifier: { circuitId: bigint, verificationKey: VerificationKey, manifest: ModelManifest }
    try {
      verifier = await this.components.models.zkVerifier(task.modelId, entry.deadline)
    } catch (err) {
      return this.refuse(from, `proof for task ${id}: cannot check proofs for model ${displayModelId(task.modelId)}: ${(err as Error).message}`, 'ignore')
    }
    const shapeError = outputShapeError(output, verifier.manifest)
    if (shapeError !== undefined) return this.refuse(from, `proof for task ${id}: ${shapeError}`, 'reject')
    const expected = {
      circuitId: verifier.circuitId,
      inputCommitment: fieldElementOf(task.inputCommitment),
      outputCommitment,
      prover: fieldElementOf(announcement.prover)
    }
    let proof: ZkProof
    const started = performance.now()
    try {
      proof = proofFromBytes(announcement.proof, expected)
      await this.check(verifier.verificationKey, proof, expected)
    } catch (err) {
      if (err instanceof ProofRejectedError) return this.refuse(from, `proof for task ${id} rejected (${err.reason}): ${err.message}`, 'reject')
      // this node could not check it (its verifier closed or died): not the sender's fault
      return this.refuse(from, `proof for task ${id}: not checked here: ${(err as Error).message}`, 'ignore')
    }
    const verifyMs = performance.now() - started
    if (!this.init.light) {
      const missing = await this.components.streamData.hold('proof', announcement.proofRef, from, Math.max(entry.deadline, Date.now()) + HOLD_SLACK_MS)
      if (missing !== undefined) return this.refuse(from, `proof for task ${id}: ${missing.reason}`, missing.verdict)
    }
    this.accepted.set(toHex(announcement.proofRef), { announcement, proof, verifyMs })
    return 'accept'
  }

  private onMessage (data: Uint8Array): void {
    const announcement = decodeZkProofAnnouncement(data)
    const ref = toHex(announcement.proofRef)
    const checked = this.accepted.get(ref)
    this.accepted.delete(ref)
    if (checked == null || this.proofs.has(toHex(announcement.taskId))) return
    this.remember({
      taskId: announcement.taskId,
      prover: to0xHex(announcement.prover),
      outputCommitment: fieldElementOf(announcement.outputCommitment),
      proof: checked.proof,
      output: announcement.output,
      proofRef: announcement.proofRef,
      verifyMs: checked.verifyMs,
      provedHere: false
    })
  }

  private remember (verified: VerifiedZkProof): void {
    const id = toHex(verified.taskId)
    if (this.proofs.has(id)) return
    this.proofs.set(id, verified)
    while (this.proofs.size > MAX_REMEMBERED_ZK_PROOFS) this.proofs.delete(this.proofs.keys().next().value as string)
    log('task %s: proof by %s (verified in %d ms)', id, verified.prover, Math.round(verified.verifyMs))
    this.components.events.safeDispatchEvent('proof', { detail: verified })
  }
}

/** A forwarder may be slow to serve a body it holds: the fetch gets this long past the task's deadline. */
const HOLD_SLACK_MS = 10_000

/** The one int8/int32 tensor of an `exact` canonical output, or why not. */
function outputTensor (canonical: Uint8Array): { values: Int8Array | Int32Array, dtype: 'int8' | 'int32', name: string, dims: number[] } | string {
  let decoded
  try {
    decoded = decodeCanonicalOutput(canonical)
  } catch (err) {
    if (err instanceof CanonicalOutputError) return err.message
    throw err
  }
  if (decoded.rule !== 'exact') return `the output is canonicalised by ${decoded.rule}, but a proof commits to exact values`
  if (decoded.outputs.length !== 1) return `the output has ${decoded.outputs.length} tensors; a zk model has one`
  const [tensor] = decoded.outputs
  if (tensor.encoding !== 'exact' || (tensor.dtype !== 'int8' && tensor.dtype !== 'int32')) return `the output tensor "${tensor.name}" is ${tensor.dtype}, not int8 or int32`
  if (tensor.values.length === 0) return `the output tensor "${tensor.name}" is empty`
  const values = tensor.dtype === 'int8' ? Int8Array.from(tensor.values, Number) : Int32Array.from(tensor.values, Number)
  return { values, dtype: tensor.dtype, name: tensor.name, dims: tensor.dims }
}

/** Why an output tensor is not the model's output (name, dtype, shape), or undefined. */
function outputShapeError (output: { dtype: string, name: string, dims: number[] }, manifest: ModelManifest): string | undefined {
  const spec = manifest.outputs[0]
  if (manifest.outputs.length !== 1 || spec === undefined) return `the model has ${manifest.outputs.length} outputs; a zk model has one`
  const dims = spec.shape.map(d => d ?? -1)
  if (output.name !== spec.name || output.dtype !== spec.dtype || output.dims.length !== dims.length || output.dims.some((d, i) => d !== dims[i])) {
    return `the output "${output.name}" ${output.dtype}[${output.dims.join(', ')}] is not the model's output "${spec.name}" ${spec.dtype}[${dims.join(', ')}]`
  }
  return undefined
}

/** A field element as 32 bytes big-endian. */
function fieldBytes (value: bigint): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(32)
  const be = uint256ToBytes(value)
  out.set(be, 32 - be.length)
  return out
}

/** A 20-byte address from public signal 3. */
function addressBytes (value: bigint): Uint8Array<ArrayBuffer> {
  if (value >= 1n << 160n) throw new ZkProofAnnounceError(`the proof's prover signal ${value} is not a 20-byte address`)
  return fieldBytes(value).slice(12)
}

export function createZkProofs (components: ZkProofsComponents, init: ZkProofsInit): ZkProofs {
  return new ZkProofs(components, init)
}
