/**
 * The checks behind the three gossip topics, as pure functions over their inputs: bytes from
 * the network, the operator set and what the caller knows (clock, deadlines, earlier
 * results). They decide `reject` (the sender is at fault: malformed, bad signature, unknown
 * operator, wrong epoch) or `ignore` (late, duplicate, or a refusal an honest peer may not
 * share) with a reason, or accept with the decoded message. The effects that may follow an
 * accept (fetching stream data, reading the model registry, storing) are the relay's.
 *
 * Trust boundary: `bytes` are untrusted; the operator sets in the contexts are trusted.
 */
import { keccak256 } from 'viem'
import {
  attestationSignatureSet, certificateSignatureSet, verifyCertificate, DEFAULT_QUORUM_BPS, type OperatorSet, type SignatureSet
} from '../../consensus/index.js'
import {
  decodeAttestation, decodeQuorumCertificate, decodeTaskAnnouncement, taskIdOf, toHex, to0xHex, verifyTaskSignature,
  bytesEqual, DecodeError, TASK_TIERS, TASK_TIER_NAMES, MAX_CONFLICTING_CERTIFICATE_PAIRS_PER_TASK, type Attestation, type QuorumCertificate, type TaskAnnouncement
} from '../wire/index.js'

/** What a validator decided: the decoded message, or why not (`reject` penalises the sender). */
export type Validation<T> =
  | { verdict: 'accept', message: T }
  | { verdict: 'reject' | 'ignore', reason: string, duplicate?: true, taskId?: Uint8Array }

const refuse = (reason: string, verdict: 'reject' | 'ignore' = 'reject'): { verdict: 'reject' | 'ignore', reason: string } => ({ verdict, reason })

/** The decoded message, or the reason it does not decode (a `reject`: only a faulty or hostile peer sends it). */
function decodeWith<T> (decode: (bytes: Uint8Array) => T, bytes: Uint8Array): { message: T } | { verdict: 'reject', reason: string } {
  try {
    return { message: decode(bytes) }
  } catch (err) {
    return { verdict: 'reject', reason: err instanceof DecodeError ? err.message : `undecodable: ${String(err)}` }
  }
}

export interface TaskCheckContext {
  /** Whether this node already tracks the task (a duplicate is ignored before any check). */
  known: (taskId: Uint8Array) => boolean
  /** Whether this node tracked the task and forgot it: a replay, ignored before any check. */
  forgotten?: (taskId: Uint8Array) => boolean
  /** The chain and TaskManager this network signs tasks for. */
  chainId: bigint
  taskManager: `0x${string}`
  /** Unix milliseconds. */
  now: number
  /** The farthest deadline this node accepts, from now. */
  maxTaskTtlMs: number
  /** Whether the task's model id could name a model (held here, or a CID this node could fetch). */
  isModelId: (modelId: Uint8Array) => boolean
  /** A model id as a log line shows it. */
  displayModelId: (modelId: Uint8Array) => string
  /**
   * Why this node cannot check zk proofs for a model (`model <id> has no zk circuit`, or why its
   * verification key cannot be had by `deadline`, unix ms), or undefined when it can. Asked only
   * for a signed zk or both task. Without it, such tasks are ignored.
   */
  zkRefusal?: (modelId: Uint8Array, deadline: number) => Promise<string | undefined>
}

/** A task announcement: well-formed, for this chain, live, for a plausible model, signed by its requester. */
export async function checkTask (bytes: Uint8Array, ctx: TaskCheckContext): Promise<Validation<{ task: TaskAnnouncement, taskId: Uint8Array }>> {
  const decoded = decodeWith(decodeTaskAnnouncement, bytes)
  if (!('message' in decoded)) return decoded
  const task = decoded.message
  const taskId = taskIdOf(task, ctx.taskManager)
  const id = toHex(taskId)
  // A refusal names its task, so the node can tell the task's requester why (not for duplicates).
  const refuseTask = (reason: string, verdict: 'reject' | 'ignore' = 'reject'): Validation<never> => ({ ...refuse(reason, verdict), taskId })
  if (ctx.known(taskId)) return { verdict: 'ignore', reason: `task ${id} already known`, duplicate: true }
  if (ctx.forgotten?.(taskId) === true) return refuseTask(`task ${id} is a replay of a task this node already forgot`, 'ignore')
  if (task.chainId !== ctx.chainId) return refuseTask(`task ${id} is for chain ${task.chainId}, this network is chain ${ctx.chainId}`)
  const deadline = Number(task.deadline)
  if (deadline <= ctx.now) return refuseTask(`task ${id} arrived after its deadline (${new Date(deadline).toISOString()})`, 'ignore')
  // The next two are this node's own policy (its --max-task-ttl, the models it knows), not
  // faults every node sees: ignored, not rejected, so an honest requester that asked for the
  // wrong model or a long deadline is told why without losing gossip score, and with it its
  // place in the meshes that would bring its next task's certificate.
  if (deadline > ctx.now + ctx.maxTaskTtlMs) {
    return refuseTask(`task ${id} deadline is ${Math.round((deadline - ctx.now) / 1000)} s away, more than the ${ctx.maxTaskTtlMs / 1000} s this node accepts`, 'ignore')
  }
  if (!ctx.isModelId(task.modelId)) return refuseTask(`task ${id} names unknown model ${ctx.displayModelId(task.modelId)}`, 'ignore')
  if (!await verifyTaskSignature(task, ctx.taskManager)) {
    // Not named: anyone can send a task's fields with a bad signature, and its requester's own copy is good.
    return refuse(`task ${id} has a bad requester signature (requester ${to0xHex(task.requester)})`)
  }
  // A zk or both task (issue 16) is relayed only by nodes that can check its proof, so proofs for
  // it are checked on every hop: the model's manifest must name a circuit (after the signature,
  // so a forged task cannot make this node fetch a verification key). Ignored, not rejected: a
  // node that has not fetched the key yet, or whose fetch failed, is not the sender's fault.
  // Tier both settles a certificate whose result is the proof's output commitment; this version's
  // operators sign keccak256 of the output, so such a task could only end NoQuorum: said now.
  if (task.tier === TASK_TIERS.both) {
    return refuseTask(`task ${id} asks for the both tier: this version's operators do not sign output commitments yet; ask for the zk or the replicated tier`, 'ignore')
  }
  if (task.tier !== TASK_TIERS.replicated) {
    const refusal = ctx.zkRefusal === undefined ? 'this node does not check zk proofs' : await ctx.zkRefusal(task.modelId, deadline)
    if (refusal !== undefined) return refuseTask(`task ${id} asks for the ${TASK_TIER_NAMES[task.tier]} tier: ${refusal}`, 'ignore')
  }
  return { verdict: 'accept', message: { task, taskId } }
}

export interface AttestationPrecheckContext {
  /** The current epoch's operator set. */
  operatorSet: OperatorSet
  /**
   * The previous epoch's set while its attestations are still accepted (a grace period after an
   * epoch change, so tasks announced before it still certify); undefined otherwise.
   */
  previousSet?: OperatorSet
  /** Whether this node tracked the task and forgot it: a replay, ignored before any signature work. */
  forgotten?: (taskId: Uint8Array) => boolean
}

export interface AttestationCheckContext extends AttestationPrecheckContext {
  /** Unix milliseconds. */
  now: number
  /** The task's deadline plus the slack this node allows, when it knows the task. */
  acceptUntil: (taskId: Uint8Array) => number | undefined
  /** The result hash (hex) of the first valid attestation seen from this operator for this task. */
  firstResult: (taskId: Uint8Array, operatorIndex: number) => string | undefined
  /** Checks one attestation's BLS signature set (batched, off the main thread, in the node). */
  verify: (set: SignatureSet, att: Attestation) => Promise<boolean>
}

/**
 * The checks of an attestation that cost no signature work: well-formed, not a replay of a
 * forgotten task, of the current epoch (or the previous one during its grace period), by a
 * known operator, with consistent output fields. Another epoch is ignored, not rejected:
 * honest nodes read an epoch change from the chain at different moments, so an honest relay
 * may forward attestations of an epoch this node has left or not reached yet.
 */
export function precheckAttestation (bytes: Uint8Array, ctx: AttestationPrecheckContext): Validation<Attestation> & { set?: OperatorSet } {
  const decoded = decodeWith(decodeAttestation, bytes)
  if (!('message' in decoded)) return decoded
  const att = decoded.message
  const id = toHex(att.taskId)
  if (ctx.forgotten?.(att.taskId) === true) return refuse(`attestation for task ${id} is a replay: this node already forgot the task`, 'ignore')
  const set = att.epoch === ctx.operatorSet.epoch ? ctx.operatorSet : att.epoch === ctx.previousSet?.epoch ? ctx.previousSet : undefined
  if (set == null) {
    return refuse(`attestation for task ${id} names epoch ${att.epoch}, current epoch is ${ctx.operatorSet.epoch}` +
      (ctx.previousSet != null ? ` (previous ${ctx.previousSet.epoch})` : ''), 'ignore')
  }
  if (att.operatorIndex >= set.operators.length) return refuse(`attestation for task ${id} names unknown operator ${att.operatorIndex}`)
  const badOutput = outputMismatch(att)
  if (badOutput !== undefined) return refuse(`attestation for task ${id} by operator ${att.operatorIndex}: ${badOutput}`)
  return { verdict: 'accept', message: att, set }
}

/**
 * An attestation: passes precheckAttestation, is not a repeat, on time, validly signed (against
 * its epoch's set). A second, different result by the same operator is accepted here: it is
 * equivocation evidence, which the caller records.
 */
export async function checkAttestation (bytes: Uint8Array, ctx: AttestationCheckContext): Promise<Validation<Attestation>> {
  const pre = precheckAttestation(bytes, ctx)
  if (pre.verdict !== 'accept') return pre
  const att = pre.message
  const set = pre.set ?? ctx.operatorSet
  const id = toHex(att.taskId)
  if (ctx.firstResult(att.taskId, att.operatorIndex) === toHex(att.resultHash)) {
    return { verdict: 'ignore', reason: `attestation for task ${id} by operator ${att.operatorIndex} already seen`, duplicate: true }
  }
  const acceptUntil = ctx.acceptUntil(att.taskId)
  if (acceptUntil !== undefined && ctx.now > acceptUntil) return refuse(`attestation for task ${id} arrived after the deadline`, 'ignore')
  const signatureSet = attestationSignatureSet(att, set)
  if (signatureSet == null || !await ctx.verify(signatureSet, att)) {
    return refuse(`attestation for task ${id}: bad BLS signature for operator ${att.operatorIndex}`)
  }
  return { verdict: 'accept', message: att }
}

export interface CertificateCheckContext {
  /** Whether this node tracked the task and forgot it: a replay, ignored before any check. */
  forgotten?: (taskId: Uint8Array) => boolean
  /**
   * Whether this node already holds a certificate for the task: then it is ignored before any
   * check, unless `held` shows it conflicts (see there).
   */
  settled: (taskId: Uint8Array) => boolean | Promise<boolean>
  /**
   * The result hash of the certificate this node holds for a settled task, and how many
   * conflicting pairs it keeps for it. A certificate with another result is not a duplicate: it
   * is checked in full and, valid, accepted as slashing evidence (the caller records and relays
   * it), until MAX_CONFLICTING_CERTIFICATE_PAIRS_PER_TASK pairs are held. Without it (a light
   * node keeps no evidence) every certificate of a settled task is a duplicate.
   */
  held?: (taskId: Uint8Array) => Promise<{ resultHash: Uint8Array, pairs: number } | undefined>
  /**
   * Checks the aggregate signature's set (batched, off the main thread, in the node). Without it
   * the pairing runs here, on the caller's thread.
   */
  verify?: (set: SignatureSet) => Promise<boolean>
  /**
   * The operator set of an epoch (recent epochs stay known; a node may read one it has not
   * adopted yet, e.g. the next epoch, from the chain). Undefined: this node cannot judge it.
   */
  operatorSetOf: (epoch: bigint) => OperatorSet | undefined | Promise<OperatorSet | undefined>
  /** The quorum the task asked for, when this node knows the task. */
  quorumBpsOf: (taskId: Uint8Array) => number | undefined
}

/**
 * A quorum certificate: well-formed, with consistent output fields, valid for its epoch's
 * operator set and quorum. A second certificate for a settled task is a duplicate when it
 * repeats the held result; with another result it is checked like the first (see `held`).
 */
export async function checkCertificate (bytes: Uint8Array, ctx: CertificateCheckContext): Promise<Validation<QuorumCertificate>> {
  const decoded = decodeWith(decodeQuorumCertificate, bytes)
  if (!('message' in decoded)) return decoded
  const qc = decoded.message
  const id = toHex(qc.taskId)
  if (ctx.forgotten?.(qc.taskId) === true) return refuse(`certificate for task ${id} is a replay: this node already forgot the task`, 'ignore')
  if (await ctx.settled(qc.taskId)) {
    const held = await ctx.held?.(qc.taskId)
    if (held == null || bytesEqual(held.resultHash, qc.resultHash)) return { verdict: 'ignore', reason: `task ${id} already certified here`, duplicate: true }
    if (held.pairs >= MAX_CONFLICTING_CERTIFICATE_PAIRS_PER_TASK) {
      return { verdict: 'ignore', reason: `task ${id} already has a conflicting certificate pair kept as evidence here`, duplicate: true }
    }
  }
  const badOutput = outputMismatch(qc)
  if (badOutput !== undefined) return refuse(`certificate for task ${id}: ${badOutput}`)
  const set = await ctx.operatorSetOf(qc.epoch)
  // Ignored, not rejected: a relay that saw the epoch change first is honest.
  if (set == null) return refuse(`certificate for task ${id} names epoch ${qc.epoch}, which this node does not know`, 'ignore')
  const verdict = verifyCertificate(qc, set, { quorumBps: ctx.quorumBpsOf(qc.taskId) ?? DEFAULT_QUORUM_BPS, checkSignature: ctx.verify == null })
  if (!verdict.ok) return refuse(`certificate for task ${id}: ${verdict.reason}`)
  if (ctx.verify != null) {
    const signatureSet = certificateSignatureSet(qc, set)
    if (signatureSet == null || !await ctx.verify(signatureSet)) {
      return refuse(`certificate for task ${id}: aggregate signature does not verify for the signers in the bitmap on this task, result, epoch and domain`)
    }
  }
  return { verdict: 'accept', message: qc }
}

/**
 * Where the output lives: the keccak256 of the canonical output, which is the payload
 * reference of the stream message that carries it (and equals the result hash, since both
 * hash the same bytes).
 */
export function outputRefOf (canonical: Uint8Array): Uint8Array {
  return keccak256(canonical, 'bytes')
}

/**
 * Why a signed result's output fields do not fit together, or undefined. The inline output
 * may be absent (an output above the inline limit travels only in the operator's stream
 * channel); when present it must hash to the result hash, and the reference must always be
 * that same hash.
 */
export function outputMismatch (signed: { resultHash: Uint8Array, outputRef: Uint8Array, output: Uint8Array }): string | undefined {
  if (!bytesEqual(signed.outputRef, signed.resultHash)) return 'outputRef is not the content address of the output (it must equal resultHash)'
  if (signed.output.length > 0 && !bytesEqual(outputRefOf(signed.output), signed.resultHash)) return 'output does not hash to resultHash'
  return undefined
}
