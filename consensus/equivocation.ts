/**
 * Equivocation: one operator signed two different results for the same task, in one epoch or in
 * two (the operator's index may differ between epochs; its address and key may not). Both
 * attestations are the proof; the SlashingManager contract re-checks the same conditions.
 */
import { bytesEqual, type Attestation } from '../protocols/wire/index.js'
import { attestationSignatureSet } from './attestation.js'
import type { OperatorSet } from './operator-set.js'
import { verifySignatureSets } from './signature-sets.js'

export type EquivocationEvidence = {
  taskId: Uint8Array
  operatorIndex: number
  epoch: bigint
  a: Attestation
  b: Attestation
}

/**
 * True iff the evidence proves equivocation: `operatorSet` is the set of the evidence's epoch (that
 * of attestation a, by operator `operatorIndex`), `operatorSetB` (default `operatorSet`) the set of
 * b's epoch; same task in both, the same operator (address and key) in both sets, different result
 * hashes, and both signatures valid. Never throws on malformed evidence.
 */
export function verifyEquivocationEvidence (evidence: EquivocationEvidence, operatorSet: OperatorSet, operatorSetB: OperatorSet = operatorSet): boolean {
  const { a, b } = evidence
  if (evidence.epoch !== operatorSet.epoch || a.epoch !== evidence.epoch || b.epoch !== operatorSetB.epoch) return false
  if (a.operatorIndex !== evidence.operatorIndex) return false
  const opA = operatorSet.operators[a.operatorIndex]
  const opB = operatorSetB.operators[b.operatorIndex]
  if (opA === undefined || opB === undefined || opA.address.toLowerCase() !== opB.address.toLowerCase() || !sameBytes(opA.blsPublicKey, opB.blsPublicKey)) return false
  if (!sameBytes(a.taskId, evidence.taskId) || !sameBytes(b.taskId, evidence.taskId)) return false
  if (sameBytes(a.resultHash, b.resultHash)) return false
  const setA = attestationSignatureSet(a, operatorSet)
  const setB = attestationSignatureSet(b, operatorSetB)
  if (setA === null || setB === null) return false
  return verifySignatureSets([setA, setB]).every(valid => valid)
}

/** Evidence is untrusted: a field that is not bytes makes it invalid, not an exception. */
function sameBytes (x: unknown, y: unknown): boolean {
  return x instanceof Uint8Array && y instanceof Uint8Array && bytesEqual(x, y)
}
