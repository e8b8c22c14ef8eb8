/**
 * Wire objects → the argument objects viem passes to the contracts.
 *
 * These builders translate, they do not judge: a QC with a bad bitmap or a forged signature still
 * becomes calldata (the contract is the judge, and the verifier-agreement test needs exactly
 * that). They throw CalldataError only when the input cannot be expressed on-chain at all
 * (a signature that is not a G2 point encoding, a QC for another epoch than `set`).
 */
import { bytesToHex, getAddress, type Hex } from 'viem'
import { blsPublicKeyOf, g1ToEip2537, g2ToEip2537, signProofOfPossession, type EquivocationEvidence } from '../consensus/index.js'
import type { Attestation, QuorumCertificate } from '../protocols/wire/index.js'
import { merkleProof, type G1Point, type G2Point, type OnChainOperatorSet } from './operator-tree.js'
import { PoiError } from '../protocols/wire/index.js'

/** TaskManager.Certificate */
export type CertificateArgs = {
  taskId: Hex
  resultHash: Hex
  outputRef: Hex
  epoch: bigint
  signerBitmap: Hex
  signature: G2Point
}

/** TaskManager.NonSigner */
export type NonSignerArgs = {
  index: number
  operator: `0x${string}`
  pubkey: G1Point
  stake: bigint
  proof: readonly Hex[]
}

/** SlashingManager.Signed */
export type SignedArgs = { resultHash: Hex, outputRef: Hex, signature: G2Point }

/** SlashingManager.Evidence */
export type EvidenceArgs = {
  epoch: bigint
  taskId: Hex
  index: number
  operator: `0x${string}`
  pubkey: G1Point
  stake: bigint
  proof: readonly Hex[]
  a: SignedArgs
  b: SignedArgs
}

/** OperatorRegistry.register arguments (msg.value is the stake, passed separately). */
export type RegistrationArgs = { pubkey: G1Point, proofOfPossession: G2Point }

export class CalldataError extends PoiError {
  constructor (message: string) {
    super('ERR_CALLDATA', message)
  }
}

/** Indices in [0, count) whose bit is clear: the operators that did not sign. */
export function nonSignerIndices (signerBitmap: Uint8Array, count: number): number[] {
  const indices: number[] = []
  for (let i = 0; i < count; i++) {
    const byte = i >> 3
    if (byte >= signerBitmap.length || (signerBitmap[byte] & (1 << (i & 7))) === 0) indices.push(i)
  }
  return indices
}

/** The non-signer entry for operator `index` of `set`, with its proof against the epoch root. */
export function nonSignerArgs (set: OnChainOperatorSet, index: number): NonSignerArgs {
  const operator = set.operators[index]
  if (operator === undefined) throw new CalldataError(`operator ${index} is not in epoch ${set.epoch} (${set.operators.length} operators)`)
  return {
    index,
    operator: operator.address,
    pubkey: g1ToEip2537(operator.blsPublicKey),
    stake: operator.stake,
    proof: merkleProof(set.leaves, index)
  }
}

/** Arguments of TaskManager.submitCertificate(qc, nonSigners) for a QC of `set`'s epoch. */
export function certificateCalldata (qc: QuorumCertificate, set: OnChainOperatorSet): readonly [CertificateArgs, NonSignerArgs[]] {
  if (qc.epoch !== set.epoch) {
    throw new CalldataError(`certificate is for epoch ${qc.epoch} but the operator set is epoch ${set.epoch}; read the set of the certificate's epoch (readOperatorSet)`)
  }
  const certificate: CertificateArgs = {
    taskId: hash32(qc.taskId, 'taskId'),
    resultHash: hash32(qc.resultHash, 'resultHash'),
    outputRef: hash32(qc.outputRef, 'outputRef'),
    epoch: qc.epoch,
    signerBitmap: bytesToHex(qc.signerBitmap),
    signature: signature(qc.aggregateSig, 'aggregateSig')
  }
  const nonSigners = nonSignerIndices(qc.signerBitmap, set.operators.length).map(index => nonSignerArgs(set, index))
  return [certificate, nonSigners]
}

/** Argument of SlashingManager.submitEvidence for equivocation found in epoch `set.epoch`. */
export function evidenceCalldata (evidence: EquivocationEvidence, set: OnChainOperatorSet): EvidenceArgs {
  if (evidence.epoch !== set.epoch) {
    throw new CalldataError(`evidence is for epoch ${evidence.epoch} but the operator set is epoch ${set.epoch}`)
  }
  const member = nonSignerArgs(set, evidence.operatorIndex)
  return {
    epoch: evidence.epoch,
    taskId: hash32(evidence.taskId, 'taskId'),
    index: member.index,
    operator: member.operator,
    pubkey: member.pubkey,
    stake: member.stake,
    proof: member.proof,
    a: signed(evidence.a, 'a'),
    b: signed(evidence.b, 'b')
  }
}

/** Registration arguments for the BLS key `secretKey` and the operator account `address`. */
export function registrationCalldata (secretKey: Uint8Array, address: `0x${string}`): RegistrationArgs {
  const account = getAddress(address)
  return {
    pubkey: g1ToEip2537(blsPublicKeyOf(secretKey)),
    proofOfPossession: g2ToEip2537(signProofOfPossession(secretKey, account))
  }
}

function signed (attestation: Attestation, which: 'a' | 'b'): SignedArgs {
  return {
    resultHash: hash32(attestation.resultHash, `${which}.resultHash`),
    outputRef: hash32(attestation.outputRef, `${which}.outputRef`),
    signature: signature(attestation.blsSig, `${which}.blsSig`)
  }
}

function hash32 (bytes: Uint8Array, field: string): Hex {
  if (bytes.length !== 32) throw new CalldataError(`${field} must be 32 bytes, got ${bytes.length}`)
  return bytesToHex(bytes)
}

function signature (bytes: Uint8Array, field: string): G2Point {
  try {
    return g2ToEip2537(bytes)
  } catch (err) {
    throw new CalldataError(`${field} cannot be sent on-chain: ${(err as Error).message}`)
  }
}
