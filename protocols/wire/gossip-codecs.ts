/**
 * The three gossip messages (DESIGN §4) as strict codecs: a task announcement, an attestation
 * and a quorum certificate. Decoding follows codec.ts; the field rules below are the wire rules
 * of each message, shared by decoders, encoders and task signing (task.ts).
 */
import {
  ADDRESS_BYTES, BLS_SIGNATURE_BYTES, BN254_SCALAR_FIELD, BPS_DENOMINATOR, INPUT_COMMITMENT_BYTES, INPUT_REF_BYTES, TASK_TIERS, TASK_TIER_NAMES, MAX_ATTESTATION_BYTES, VALIDATION_REQUEST_BYTES,
  MAX_INLINE_INPUT_BYTES, MAX_INLINE_OUTPUT_BYTES, MAX_MODEL_ID_BYTES, MAX_OPERATORS, MAX_PARAMS_BYTES,
  MAX_QUORUM_CERTIFICATE_BYTES, MAX_SIGNER_BITMAP_BYTES, MAX_TASK_ANNOUNCEMENT_BYTES, OUTPUT_REF_BYTES,
  REQUESTER_SIGNATURE_BYTES, RESULT_HASH_BYTES, TASK_ID_BYTES, VOUCHER_SEQUENCE_LIMIT, VOUCHER_SIGNATURE_BYTES
} from './constants.js'
import {
  defineCodec, isAllZero, ruleBoundedBytes, ruleBytes, ruleExactBytes, ruleUint256, ruleUint32, ruleUint64,
  ruleVersion, violation, WIRE_LENGTH_DELIMITED as L, WIRE_VARINT as V, type FieldViolation
} from './codec.js'
import { Attestation, QuorumCertificate, TaskAnnouncement } from './messages.pb.js'
import { bytesToUint256 } from './uint256.js'
import { to0xHex } from './bytes.js'

export interface TaskCheckOptions {
  /** Check `requesterSig` too (false while signing and when computing the taskId). Default true. */
  signature?: boolean
}

/**
 * Every rule a TaskAnnouncement obeys on the wire; returns the first broken one.
 * Exported for `task.ts` (signing checks the task before signing it).
 */
export function checkTaskAnnouncement (task: TaskAnnouncement, options: TaskCheckOptions = {}): FieldViolation | undefined {
  const hasInput = task.input instanceof Uint8Array && task.input.length > 0
  const hasInputRef = task.inputRef instanceof Uint8Array && task.inputRef.length > 0
  const hasValidationRequest = task.validationRequest instanceof Uint8Array && task.validationRequest.length > 0
  return ruleVersion(task.version) ??
    // EIP-155 chain ids start at 1; 0 would make the EIP-712 domain valid on no chain.
    ruleUint64('chainId', task.chainId, 1n) ??
    ruleBoundedBytes('modelId', task.modelId, 1, MAX_MODEL_ID_BYTES) ??
    ruleBoundedBytes('input', task.input, 0, MAX_INLINE_INPUT_BYTES) ??
    (hasInputRef ? ruleExactBytes('inputRef', task.inputRef, INPUT_REF_BYTES) : ruleBytes('inputRef', task.inputRef)) ??
    // The EIP-712 struct writes an absent inputRef as bytes32(0), so an all-zero reference
    // would sign the same as none.
    (hasInputRef && isAllZero(task.inputRef) ? violation('INVALID_FIELD', 'inputRef', 'must not be all zero bytes') : undefined) ??
    (!hasInput && !hasInputRef ? violation('INVALID_FIELD', 'input', 'a task needs an input: set inline input or inputRef') : undefined) ??
    (hasInput && hasInputRef ? violation('INVALID_FIELD', 'inputRef', 'set either inline input or inputRef, not both') : undefined) ??
    ruleBoundedBytes('params', task.params, 0, MAX_PARAMS_BYTES) ??
    ruleUint256('fee', task.fee) ??
    ruleUint64('deadline', task.deadline, 1n) ??
    ruleUint32('quorumBps', task.quorumBps, 1, BPS_DENOMINATOR) ??
    ruleUint64('nonce', task.nonce) ??
    ruleExactBytes('requester', task.requester, ADDRESS_BYTES) ??
    (hasValidationRequest ? ruleExactBytes('validationRequest', task.validationRequest, VALIDATION_REQUEST_BYTES) : ruleBytes('validationRequest', task.validationRequest)) ??
    // Signed as bytes32(0) when absent, like inputRef: an all-zero hash would sign the same as none.
    (hasValidationRequest && isAllZero(task.validationRequest) ? violation('INVALID_FIELD', 'validationRequest', 'must not be all zero bytes') : undefined) ??
    (options.signature === false ? undefined : ruleExactBytes('requesterSig', task.requesterSig, REQUESTER_SIGNATURE_BYTES)) ??
    checkTaskTier(task) ??
    (task.voucher == null ? undefined : checkTaskVoucher(task))
}

/**
 * A task's tier (issue 16): 0 replicated with no input commitment; 1 zk or 2 both with a 32-byte
 * input commitment below the BN254 field (a public signal of the proof), never a tab task (a
 * proof settles singly, not in a batch).
 */
export function checkTaskTier (task: TaskAnnouncement): FieldViolation | undefined {
  const commitment = task.inputCommitment
  const bad = ruleUint32('tier', task.tier, 0, TASK_TIER_NAMES.length - 1) ?? ruleBytes('inputCommitment', commitment)
  if (bad !== undefined) return bad
  if (task.tier === TASK_TIERS.replicated) {
    return commitment.length === 0 ? undefined : violation('INVALID_FIELD', 'inputCommitment', 'only a zk or both task commits to its input; a replicated task leaves it empty')
  }
  const tier = TASK_TIER_NAMES[task.tier]
  return ruleExactBytes('inputCommitment', commitment, INPUT_COMMITMENT_BYTES) ??
    // a field element as 32 bytes big-endian: leading zero bytes are its spelling, not padding
    (BigInt(to0xHex(commitment)) >= BN254_SCALAR_FIELD ? violation('INVALID_FIELD', 'inputCommitment', 'is not below the BN254 scalar field, so no proof can have it as a public signal') : undefined) ??
    (task.nonce < VOUCHER_SEQUENCE_LIMIT ? violation('INVALID_FIELD', 'nonce', `a ${tier} task settles singly with its proof, not from a credit tab: its nonce must be at least 2^40`) : undefined)
}

/**
 * A tab task's voucher (issue 15): well-formed, for the task's own nonce, which is a tab
 * sequence (1 .. 2^40-1), and at least the task's fee (a cumulative amount below this task's fee
 * cannot cover it, whatever was settled before). Its signature is checked by the operators'
 * admission (node/roles/payment-gate.ts), which knows the TaskManager it is for.
 */
export function checkTaskVoucher (task: TaskAnnouncement): FieldViolation | undefined {
  const voucher = task.voucher
  if (voucher == null) return undefined
  const bad = ruleUint256('voucher.cumulative', voucher.cumulative) ??
    ruleUint64('voucher.sequence', voucher.sequence, 1n) ??
    (voucher.sequence >= VOUCHER_SEQUENCE_LIMIT
      ? violation('INVALID_FIELD', 'voucher.sequence', `${voucher.sequence} is not a tab sequence (1 .. 2^40-1)`)
      : undefined) ??
    (voucher.sequence !== task.nonce
      ? violation('INVALID_FIELD', 'voucher.sequence', `${voucher.sequence} is not the task's nonce ${task.nonce} (a tab task's nonce is its sequence)`)
      : undefined) ??
    ruleExactBytes('voucher.signature', voucher.signature, VOUCHER_SIGNATURE_BYTES)
  if (bad !== undefined) return bad
  if (ruleUint256('fee', task.fee) === undefined && bytesToUint256(voucher.cumulative) < bytesToUint256(task.fee)) {
    return violation('INVALID_FIELD', 'voucher.cumulative', 'is below the task\'s fee, so it cannot cover it')
  }
  return undefined
}

/** Every rule an Attestation obeys on the wire; returns the first broken one. */
export function checkAttestation (att: Attestation): FieldViolation | undefined {
  return ruleVersion(att.version) ??
    ruleExactBytes('taskId', att.taskId, TASK_ID_BYTES) ??
    ruleExactBytes('resultHash', att.resultHash, RESULT_HASH_BYTES) ??
    ruleExactBytes('outputRef', att.outputRef, OUTPUT_REF_BYTES) ??
    ruleUint64('epoch', att.epoch) ??
    ruleUint32('operatorIndex', att.operatorIndex, 0, MAX_OPERATORS - 1) ??
    ruleExactBytes('blsSig', att.blsSig, BLS_SIGNATURE_BYTES) ??
    ruleBoundedBytes('output', att.output, 0, MAX_INLINE_OUTPUT_BYTES)
}

/** Every rule a QuorumCertificate obeys on the wire; returns the first broken one. */
export function checkQuorumCertificate (qc: QuorumCertificate): FieldViolation | undefined {
  const bad = ruleVersion(qc.version) ??
    ruleExactBytes('taskId', qc.taskId, TASK_ID_BYTES) ??
    ruleExactBytes('resultHash', qc.resultHash, RESULT_HASH_BYTES) ??
    ruleExactBytes('outputRef', qc.outputRef, OUTPUT_REF_BYTES) ??
    ruleUint64('epoch', qc.epoch) ??
    // Non-empty with a non-zero last byte: at least one signer, and one spelling per signer set.
    ruleBoundedBytes('signerBitmap', qc.signerBitmap, 1, MAX_SIGNER_BITMAP_BYTES) ??
    (qc.signerBitmap[qc.signerBitmap.length - 1] === 0 ? violation('NON_CANONICAL', 'signerBitmap', 'ends with a zero byte (trim trailing zero bytes)') : undefined) ??
    ruleExactBytes('aggregateSig', qc.aggregateSig, BLS_SIGNATURE_BYTES) ??
    ruleUint256('signedStake', qc.signedStake) ??
    ruleUint256('totalStake', qc.totalStake) ??
    ruleBoundedBytes('output', qc.output, 0, MAX_INLINE_OUTPUT_BYTES)
  if (bad !== undefined) return bad
  if (bytesToUint256(qc.signedStake) > bytesToUint256(qc.totalStake)) {
    return violation('INVALID_FIELD', 'signedStake', 'exceeds totalStake')
  }
  return undefined
}

const TASK_ANNOUNCEMENT_CODEC = defineCodec<TaskAnnouncement>({
  name: 'TaskAnnouncement',
  maxBytes: MAX_TASK_ANNOUNCEMENT_BYTES,
  fields: {
    version: [1, V], chainId: [2, V], modelId: [3, L], input: [4, L], inputRef: [5, L], params: [6, L], fee: [7, L],
    deadline: [8, V], quorumBps: [9, V], nonce: [10, V], requester: [11, L], requesterSig: [12, L],
    validationRequest: [13, L], voucher: [14, L], tier: [15, V], inputCommitment: [16, L]
  },
  proto: TaskAnnouncement,
  check: (task) => checkTaskAnnouncement(task)
})

const ATTESTATION_CODEC = defineCodec<Attestation>({
  name: 'Attestation',
  maxBytes: MAX_ATTESTATION_BYTES,
  fields: { version: [1, V], taskId: [2, L], resultHash: [3, L], outputRef: [4, L], epoch: [5, V], operatorIndex: [6, V], blsSig: [7, L], output: [8, L] },
  proto: Attestation,
  check: checkAttestation
})

const QUORUM_CERTIFICATE_CODEC = defineCodec<QuorumCertificate>({
  name: 'QuorumCertificate',
  maxBytes: MAX_QUORUM_CERTIFICATE_BYTES,
  fields: {
    version: [1, V], taskId: [2, L], resultHash: [3, L], outputRef: [4, L], epoch: [5, V],
    signerBitmap: [6, L], aggregateSig: [7, L], signedStake: [8, L], totalStake: [9, L], output: [10, L]
  },
  proto: QuorumCertificate,
  check: checkQuorumCertificate
})

/** Decodes a task announcement from untrusted bytes; throws DecodeError. Does not check the signature. */
export const decodeTaskAnnouncement: (bytes: Uint8Array) => TaskAnnouncement = TASK_ANNOUNCEMENT_CODEC.decode

/** Canonical encoding of a signed task announcement; throws EncodeError if peers would reject it. */
export const encodeTaskAnnouncement: (task: TaskAnnouncement) => Uint8Array<ArrayBuffer> = TASK_ANNOUNCEMENT_CODEC.encode

/** Decodes an attestation from untrusted bytes; throws DecodeError. Does not check the BLS signature. */
export const decodeAttestation: (bytes: Uint8Array) => Attestation = ATTESTATION_CODEC.decode

/** Canonical encoding of an attestation; throws EncodeError if peers would reject it. */
export const encodeAttestation: (attestation: Attestation) => Uint8Array<ArrayBuffer> = ATTESTATION_CODEC.encode

/** Decodes a quorum certificate from untrusted bytes; throws DecodeError. Does not check the aggregate signature or stakes against an epoch. */
export const decodeQuorumCertificate: (bytes: Uint8Array) => QuorumCertificate = QUORUM_CERTIFICATE_CODEC.decode

/** Canonical encoding of a quorum certificate; throws EncodeError if peers would reject it. */
export const encodeQuorumCertificate: (certificate: QuorumCertificate) => Uint8Array<ArrayBuffer> = QUORUM_CERTIFICATE_CODEC.encode
