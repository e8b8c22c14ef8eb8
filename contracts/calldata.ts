/**
 * Wire objects → the argument objects viem passes to the contracts.
 *
 * These builders translate, they do not judge: a QC with a bad bitmap or a forged signature still
 * becomes calldata (the contract is the judge, and the verifier-agreement test needs exactly
 * that). They throw CalldataError only when the input cannot be expressed on-chain at all
 * (a signature that is not a G2 point encoding, a QC for another epoch than `set`).
 */
import { bytesToHex, getAddress, keccak256, type Hex } from 'viem'
import {
  blsPublicKeyOf, g1ToEip2537, g2ToEip2537, signProofOfPossession, type BatchLeaf, type BatchSignatureShare, type BatchSigningFields, type EquivocationEvidence
} from '../consensus/index.js'
import type { Attestation, QuorumCertificate, TaskAnnouncement } from '../protocols/wire/index.js'
import { merkleProof, publicKeyHash, type G1Point, type G2Point, type OnChainOperatorSet } from './operator-tree.js'
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

/** TaskManager.Task: the signed task, `input` and `params` as their keccak256 (as EIP-712 encodes bytes). */
export type TaskArgs = {
  modelId: Hex
  inputHash: Hex
  inputRef: Hex
  paramsHash: Hex
  fee: bigint
  deadline: bigint
  quorumBps: number
  nonce: bigint
  requester: `0x${string}`
  validationRequest: Hex
  tier: number
  inputCommitment: Hex
}

/** Arguments of TaskManager.submitCertificate(qc, nonSigners, task, requesterSig). */
export type CertificateCalldata = readonly [CertificateArgs, NonSignerArgs[], TaskArgs, Hex]

/** SlashingManager.Member: an operator's leaf in one epoch's set. */
export type MemberArgs = { epoch: bigint, index: number, stake: bigint, proof: readonly Hex[] }

/** SlashingManager.Signed: one attestation with its signer's leaf in the epoch it names. */
export type SignedArgs = { member: MemberArgs, resultHash: Hex, outputRef: Hex, signature: G2Point }

/** SlashingManager.Evidence: two attestations by one operator, each against its own epoch's set. */
export type EvidenceArgs = {
  taskId: Hex
  operator: `0x${string}`
  pubkey: G1Point
  a: SignedArgs
  b: SignedArgs
}

/** SlashingManager.Accused: an operator named as a signer in both certificates. */
export type AccusedArgs = { operator: `0x${string}`, pubkey: G1Point, inA: MemberArgs, inB: MemberArgs }

/** Arguments of SlashingManager.submitConflictingCertificates. */
export type ConflictingCertificatesArgs = readonly [CertificateArgs, NonSignerArgs[], CertificateArgs, NonSignerArgs[], AccusedArgs[]]

/** Arguments of SlashingManager.submitCertificateAndAttestation. */
export type CertificateAndAttestationArgs = readonly [CertificateArgs, NonSignerArgs[], `0x${string}`, G1Point, MemberArgs, SignedArgs]

/** SlashingManager.BatchStatement: an operator's batch signature and the batch's leaf for the task. */
export type BatchStatementArgs = {
  member: MemberArgs
  root: Hex
  summaryHash: Hex
  resultHash: Hex
  outputRef: Hex
  leafProof: readonly Hex[]
  signature: G2Point
}

/** Arguments of SlashingManager.submitBatchLeafAndAttestation(taskId, operator, pubkey, batch, attestation). */
export type BatchLeafAndAttestationArgs = readonly [Hex, `0x${string}`, G1Point, BatchStatementArgs, SignedArgs]

/**
 * One operator's signed batch as evidence: the batch fields it signed, its share (BatchSignature),
 * and the batch's leaf for the disputed task with that leaf's Merkle proof (BatchTree.proof).
 */
export interface SignedBatchLeaf {
  batch: BatchSigningFields
  share: BatchSignatureShare
  leaf: BatchLeaf
  proof: readonly Hex[]
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

const ZERO_BYTES32: Hex = `0x${'00'.repeat(32)}`

/**
 * TaskManager.Task of a signed task announcement. A fee that is not a uint256 (longer than 32
 * bytes) or a requester that is not 20 bytes cannot be expressed: CalldataError.
 */
export function taskArgs (task: TaskAnnouncement): TaskArgs {
  if (task.requester.length !== 20) throw new CalldataError(`task requester must be a 20-byte address, got ${task.requester.length} bytes`)
  if (task.fee.length > 32) throw new CalldataError(`task fee must fit in a uint256, got ${task.fee.length} bytes`)
  const optional32 = (bytes: Uint8Array, field: string): Hex => bytes.length === 0 ? ZERO_BYTES32 : hash32(bytes, field)
  return {
    modelId: bytesToHex(task.modelId),
    inputHash: keccak256(task.input),
    inputRef: optional32(task.inputRef, 'inputRef'),
    paramsHash: keccak256(task.params),
    fee: task.fee.length === 0 ? 0n : BigInt(bytesToHex(task.fee)),
    deadline: task.deadline,
    quorumBps: task.quorumBps,
    nonce: task.nonce,
    requester: getAddress(bytesToHex(task.requester)),
    validationRequest: optional32(task.validationRequest, 'validationRequest'),
    tier: task.tier,
    inputCommitment: optional32(task.inputCommitment, 'inputCommitment')
  }
}

/**
 * Arguments of TaskManager.submitCertificate for a QC of `set`'s epoch over `task` (the task whose
 * id the QC names; the contract recomputes the id and checks the requester's signature).
 */
export function certificateCalldata (qc: QuorumCertificate, set: OnChainOperatorSet, task: TaskAnnouncement): CertificateCalldata {
  const [certificate, nonSigners] = qcCalldata(qc, set)
  return [certificate, nonSigners, taskArgs(task), bytesToHex(task.requesterSig)]
}

/** The certificate and its non-signers for a QC of `set`'s epoch (what the SlashingManager takes). */
export function qcCalldata (qc: QuorumCertificate, set: OnChainOperatorSet): readonly [CertificateArgs, NonSignerArgs[]] {
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

/**
 * Argument of SlashingManager.submitEvidence. Each attestation is proven against the set of the
 * epoch it names: `set` for `evidence.a`, `setB` (default `set`) for `evidence.b`, so equivocation
 * across epochs is evidence too. The operator's index may differ between the two epochs; its
 * address and key may not (the contract takes one of each).
 */
export function evidenceCalldata (evidence: EquivocationEvidence, set: OnChainOperatorSet, setB: OnChainOperatorSet = set): EvidenceArgs {
  const a = signedBy(evidence.a, set, 'a')
  const b = signedBy(evidence.b, setB, 'b')
  if (!sameOperator(a.operator, b.operator)) {
    throw new CalldataError(`attestation a is by operator ${a.operator.operator} (epoch ${set.epoch}) but b by ${b.operator.operator} (epoch ${setB.epoch}): not one operator`)
  }
  return { taskId: hash32(evidence.taskId, 'taskId'), operator: a.operator.operator, pubkey: a.operator.pubkey, a: a.signed, b: b.signed }
}

/**
 * Arguments of SlashingManager.submitConflictingCertificates for two certificates of one task with
 * different results, `a` of `setA`'s epoch and `b` of `setB`'s. Accuses every operator (same
 * address and key) whose bit is set in both bitmaps; throws CalldataError if there is none.
 */
export function conflictingCertificatesCalldata (
  a: QuorumCertificate, setA: OnChainOperatorSet, b: QuorumCertificate, setB: OnChainOperatorSet
): ConflictingCertificatesArgs {
  const [certA, nonSignersA] = qcCalldata(a, setA)
  const [certB, nonSignersB] = qcCalldata(b, setB)
  const accused: AccusedArgs[] = []
  for (let i = 0; i < setA.operators.length; i++) {
    if (!bitSet(a.signerBitmap, i)) continue
    const inA = nonSignerArgs(setA, i)
    const j = setB.operators.findIndex((op, k) => bitSet(b.signerBitmap, k) && sameOperator(inA, nonSignerArgs(setB, k)))
    if (j < 0) continue
    accused.push({ operator: inA.operator, pubkey: inA.pubkey, inA: memberOf(setA, inA), inB: memberOf(setB, nonSignerArgs(setB, j)) })
  }
  if (accused.length === 0) throw new CalldataError('no operator is named as a signer in both certificates')
  return [certA, nonSignersA, certB, nonSignersB, accused]
}

/**
 * Arguments of SlashingManager.submitCertificateAndAttestation: certificate `qc` (of `set`'s epoch)
 * and an attestation for the same task with another result by an operator `qc` names, proven
 * against `attestationSet` (the set of the attestation's epoch; default `set`).
 */
export function certificateAndAttestationCalldata (
  qc: QuorumCertificate, set: OnChainOperatorSet, attestation: Attestation, attestationSet: OnChainOperatorSet = set
): CertificateAndAttestationArgs {
  const [certificate, nonSigners] = qcCalldata(qc, set)
  const signer = signedBy(attestation, attestationSet, 'attestation')
  const index = set.operators.findIndex((_, k) => sameOperator(signer.operator, nonSignerArgs(set, k)))
  if (index < 0) throw new CalldataError(`operator ${signer.operator.operator} is not in the certificate's epoch ${set.epoch}`)
  return [certificate, nonSigners, signer.operator.operator, signer.operator.pubkey, memberOf(set, nonSignerArgs(set, index)), signer.signed]
}

/**
 * Arguments of SlashingManager.submitBatchLeafAndAttestation: an operator's signature over a batch
 * (of `set`'s epoch) whose leaf for a task has one result, and the same operator's attestation for
 * that task with another, proven against `attestationSet` (default `set`).
 */
export function batchLeafAndAttestationCalldata (
  signed: SignedBatchLeaf, set: OnChainOperatorSet, attestation: Attestation, attestationSet: OnChainOperatorSet = set
): BatchLeafAndAttestationArgs {
  if (signed.batch.epoch !== set.epoch) throw new CalldataError(`the batch is for epoch ${signed.batch.epoch} but the operator set is epoch ${set.epoch}`)
  const signer = signedBy(attestation, attestationSet, 'attestation')
  const inBatch = nonSignerArgs(set, signed.share.operatorIndex)
  if (!sameOperator(signer.operator, inBatch)) {
    throw new CalldataError(`the batch signer (operator ${signed.share.operatorIndex} of epoch ${set.epoch}) is not the attester ${signer.operator.operator}`)
  }
  const taskId = hash32(attestation.taskId, 'attestation.taskId')
  if (BigInt(signed.leaf.taskId) !== BigInt(taskId)) throw new CalldataError(`the batch leaf is for task ${signed.leaf.taskId}, the attestation for ${taskId}`)
  return [taskId, signer.operator.operator, signer.operator.pubkey, {
    member: memberOf(set, inBatch),
    root: signed.batch.root,
    summaryHash: signed.batch.summaryHash,
    resultHash: signed.leaf.resultHash,
    outputRef: signed.leaf.outputRef,
    leafProof: signed.proof,
    signature: signature(signed.share.blsSig, 'batch signature')
  }, signer.signed]
}

/** Registration arguments for the BLS key `secretKey` and the operator account `address`. */
export function registrationCalldata (secretKey: Uint8Array, address: `0x${string}`): RegistrationArgs {
  const account = getAddress(address)
  return {
    pubkey: g1ToEip2537(blsPublicKeyOf(secretKey)),
    proofOfPossession: g2ToEip2537(signProofOfPossession(secretKey, account))
  }
}

/** `attestation` with its signer's leaf in `set`, which must be the set of the epoch it names. */
function signedBy (attestation: Attestation, set: OnChainOperatorSet, which: string): { operator: NonSignerArgs, signed: SignedArgs } {
  if (attestation.epoch !== set.epoch) {
    throw new CalldataError(`${which} is for epoch ${attestation.epoch} but the operator set is epoch ${set.epoch}`)
  }
  const operator = nonSignerArgs(set, attestation.operatorIndex)
  return {
    operator,
    signed: {
      member: memberOf(set, operator),
      resultHash: hash32(attestation.resultHash, `${which}.resultHash`),
      outputRef: hash32(attestation.outputRef, `${which}.outputRef`),
      signature: signature(attestation.blsSig, `${which}.blsSig`)
    }
  }
}

function memberOf (set: OnChainOperatorSet, leaf: NonSignerArgs): MemberArgs {
  return { epoch: set.epoch, index: leaf.index, stake: leaf.stake, proof: leaf.proof }
}

/** One operator across epochs: same account and same BLS key (its index and stake may differ). */
function sameOperator (x: NonSignerArgs, y: NonSignerArgs): boolean {
  return getAddress(x.operator) === getAddress(y.operator) && publicKeyHash(x.pubkey) === publicKeyHash(y.pubkey)
}

function bitSet (bitmap: Uint8Array, index: number): boolean {
  const byte = index >> 3
  return byte < bitmap.length && (bitmap[byte] & (1 << (index & 7))) !== 0
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
