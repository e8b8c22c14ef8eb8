/**
 * Equivocation: one operator signed two different results for the same task in the same epoch.
 * Both attestations are the proof; the SlashingManager contract re-checks the same conditions.
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
 * True iff the evidence proves equivocation against `operatorSet` (the set of the evidence's
 * epoch): same task, operator and epoch in both attestations, different result hashes, and both
 * signatures valid. Never throws on malformed evidence.
 */
export function verifyEquivocationEvidence (evidence: EquivocationEvidence, operatorSet: OperatorSet): boolean {
  const { a, b } = evidence
  if (evidence.epoch !== operatorSet.epoch || a.epoch !== evidence.epoch || b.epoch !== evidence.epoch) return false
  if (a.operatorIndex !== evidence.operatorIndex || b.operatorIndex !== evidence.operatorIndex) return false
  if (!sameBytes(a.taskId, evidence.taskId) || !sameBytes(b.taskId, evidence.taskId)) return false
  if (sameBytes(a.resultHash, b.resultHash)) return false
  const setA = attestationSignatureSet(a, operatorSet)
  const setB = attestationSignatureSet(b, operatorSet)
  if (setA === null || setB === null) return false
  return verifySignatureSets([setA, setB]).every(valid => valid)
}

/** Evidence is untrusted: a field that is not bytes makes it invalid, not an exception. */
function sameBytes (x: unknown, y: unknown): boolean {
  return x instanceof Uint8Array && y instanceof Uint8Array && bytesEqual(x, y)
}
