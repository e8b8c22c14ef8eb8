/**
 * Requesting a zk-tier task (issue 16): the task commits to its input (a Poseidon commitment of
 * the int8 values, signed with the task), a prover (an operator run with `--prove`) proves that
 * the model's circuit maps that input to its output, and this requester checks the proof itself
 * with the model's verification key before it trusts the output: no quorum is involved, and no
 * node that relayed the proof is trusted.
 */
import type { PrivateKeyAccount } from 'viem/accounts'
import { PoiError, bytesEqual, signTask, taskIdOf, to0xHex, uint256ToBytes32 } from '../../protocols/wire/index.js'
import { decodeCanonicalOutput, parseTaskInput, type ModelManifest } from '../inference/index.js'
import { ProofRejectedError, commitTensor, publicSignalsOf, type VerificationKey, type ZkProof } from '../inference/zk/index.js'
import { preciseNow, type PoiNode } from '../poi-node.js'
import type { VerifiedZkProof } from '../roles/index.js'
import { raceAbort, throwIfAborted } from './abort.js'
import { DEFAULT_TASK_TIMEOUT_MS } from './constants.js'
import { AnnounceError, RequestAbortedError, TaskRefusedError, formatDuration } from './errors.js'
import { checkRequestBounds } from './params.js'
import { watchRefusal } from './refusal-watch.js'
import { randomTaskNonce, type Progress } from './requester.js'
import { waitForNetwork } from './network-wait.js'

/** The model's input is not one int8 tensor, or the manifest names no circuit: it cannot be asked for a proof. */
export class NotZkCapableError extends PoiError {
  constructor (message: string) {
    super('ERR_NOT_ZK_CAPABLE', message)
  }
}

/** No valid proof of the task reached this node by its deadline. */
export class NoProofError extends PoiError {
  readonly taskId: Uint8Array
  /** Proofs that arrived for the task and were refused here, with why. */
  readonly refused: string[]
  constructor (taskId: Uint8Array, timeoutMs: number, refused: string[]) {
    super('ERR_NO_PROOF', `no valid proof of task ${to0xHex(taskId)} within ${formatDuration(timeoutMs)}${refused.length > 0 ? ` (refused: ${refused.join('; ')})` : ''}: is an operator of the network running with --prove for this model?`)
    this.taskId = taskId
    this.refused = refused
  }
}

export interface ZkRequestParams {
  modelId: Uint8Array
  input: Uint8Array
  /** The model's manifest: its input spec says how to read the input's int8 values. */
  manifest: ModelManifest
  /** The model's verification key and circuit id (its manifest's zk section; ModelService.zkVerifier). */
  verificationKey: VerificationKey
  circuitId: bigint
  timeoutMs?: number
  fee?: bigint
}

export interface ZkRequestOptions {
  onProgress?: Progress
  signal?: AbortSignal
  connectTimeoutMs?: number
}

/** A zk-tier result, its proof verified here. */
export interface ZkResult {
  taskId: Uint8Array
  /** Canonical output; its commitment is the proof's output signal. */
  output: Uint8Array
  inputCommitment: bigint
  outputCommitment: bigint
  /** The payee the proof names. */
  prover: `0x${string}`
  proof: ZkProof
  /** keccak256 of the proof body in the prover's `proofs` stream channel. */
  proofRef: Uint8Array
  announcedAt: number
  /** When the valid proof was known here. */
  provedAt: number
  /** This node's off-chain verification of the proof, ms. */
  verifyMs: number
}

/** The commitment a zk task carries: Poseidon over the model input's int8 values (node/inference/zk/commitments.ts). */
export function zkInputCommitment (input: Uint8Array, manifest: ModelManifest): bigint {
  if (manifest.inputs.length !== 1 || manifest.inputs[0].dtype !== 'int8') {
    throw new NotZkCapableError(`model ${manifest.name} takes ${manifest.inputs.map(i => `${i.name}: ${i.dtype}`).join(', ')}: a zk task's input is one int8 tensor`)
  }
  const x = parseTaskInput(input, manifest.inputs)[manifest.inputs[0].name].data
  return commitTensor(x as Int8Array, 'int8')
}

/** The commitment of a canonical output (exact int8 or int32 values), as a proof's output signal. */
export function zkOutputCommitment (canonical: Uint8Array, manifest: ModelManifest): bigint {
  const spec = manifest.outputs[0]
  const decoded = decodeCanonicalOutput(canonical).outputs
  const tensor = decoded[0]
  if (decoded.length !== 1 || tensor.encoding !== 'exact' || (spec.dtype !== 'int32' && spec.dtype !== 'int8')) {
    throw new NotZkCapableError(`model ${manifest.name}'s output is not one exact int8/int32 tensor: a proof commits such a tensor`)
  }
  const values = tensor.values.map(Number)
  return spec.dtype === 'int32' ? commitTensor(Int32Array.from(values), 'int32') : commitTensor(Int8Array.from(values), 'int8')
}

/**
 * Announces a zk-tier task and waits for a proof of it that verifies here against the model's
 * key, the task's input commitment and the commitment of the output it carries. A proof that
 * fails is counted and waited past (a relay may pass on garbage); TaskRefusedError when a full
 * node refuses the task, NoProofError at the deadline, RequestAbortedError on abort.
 */
export async function requestZkInference (node: PoiNode, account: PrivateKeyAccount, params: ZkRequestParams, options: ZkRequestOptions = {}): Promise<ZkResult> {
  const { onProgress: progress = () => {}, signal, connectTimeoutMs } = options
  const timeoutMs = params.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS
  checkRequestBounds({ timeoutMs, quorumBps: 10_000 })
  const inputCommitment = zkInputCommitment(params.input, params.manifest)
  await waitForNetwork(node, { timeoutMs: connectTimeoutMs, signal })
  const set = node.operatorSet
  const deadline = Date.now() + timeoutMs
  const task = await signTask(account, set.domain.taskManager, {
    chainId: set.domain.chainId,
    modelId: params.modelId,
    input: params.input,
    fee: params.fee ?? 0n,
    deadline: BigInt(deadline),
    quorumBps: 10_000,
    nonce: randomTaskNonce(),
    tier: 'zk',
    inputCommitment: uint256ToBytes32(inputCommitment)
  })
  const taskId = taskIdOf(task, set.domain.taskManager)
  const id = to0xHex(taskId)
  throwIfAborted(signal, `signing task ${id}`)

  const refused: string[] = []
  let settle!: (r: ZkResult | Error) => void
  const done = new Promise<ZkResult | Error>(resolve => { settle = resolve })
  const onProof = (evt: CustomEvent<VerifiedZkProof>): void => {
    if (!bytesEqual(evt.detail.taskId, taskId)) return
    checkProof(evt.detail).then(settle, (err: unknown) => {
      const reason = err instanceof ProofRejectedError || err instanceof NotZkCapableError ? err.message : String(err)
      refused.push(reason)
      progress(`a proof of task ${id} was refused here: ${reason}`)
    })
  }
  // The node that told us checked the proof with the key its model service holds; this requester checks it again with the key it was given.
  const checkProof = async (verified: VerifiedZkProof): Promise<ZkResult> => {
    const outputCommitment = zkOutputCommitment(verified.output, params.manifest)
    if (outputCommitment !== verified.outputCommitment) throw new ProofRejectedError('output', 'the proof\'s output commitment is not the commitment of the output it came with')
    const started = performance.now()
    await node.checkZkProof(params.verificationKey, verified.proof, { circuitId: params.circuitId, inputCommitment, outputCommitment })
    const verifyMs = performance.now() - started
    const { prover } = publicSignalsOf(verified.proof)
    return {
      taskId, output: verified.output, inputCommitment, outputCommitment, prover: `0x${prover.toString(16).padStart(40, '0')}`,
      proof: verified.proof, proofRef: verified.proofRef, announcedAt, provedAt: preciseNow(), verifyMs
    }
  }
  const refusal = watchRefusal(node, taskId)
  const onAbort = (): void => { settle(new RequestAbortedError(`waiting for a proof of task ${id}`, signal?.reason)) }
  const timer = setTimeout(() => { settle(new NoProofError(taskId, timeoutMs, refused)) }, Math.max(0, deadline - Date.now()))
  node.addEventListener('proof', onProof)
  signal?.addEventListener('abort', onAbort, { once: true })
  refusal.refused.then(settle, () => {})
  const announcedAt = preciseNow()
  try {
    await raceAbort(node.announce(task).catch((err: unknown) => { throw new AnnounceError(taskId, err) }), signal, `announcing task ${id}`)
    progress(`announced zk task ${id} (input commitment ${to0xHex(uint256ToBytes32(inputCommitment))}, deadline in ${formatDuration(timeoutMs)})`)
    const outcome = await done
    if (outcome instanceof TaskRefusedError || outcome instanceof Error) throw outcome
    return outcome
  } finally {
    clearTimeout(timer)
    node.removeEventListener('proof', onProof)
    signal?.removeEventListener('abort', onAbort)
    refusal.stop()
  }
}
