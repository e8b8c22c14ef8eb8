/**
 * Strict codecs for the three gossip messages.
 *
 * Trust boundary: the bytes given to `decodeX` are untrusted (they come from gossip, streams or
 * HTTP). A decoded message has passed every check below, so later layers may rely on field
 * sizes and ranges, but NOT on signatures: the EIP-712 signature of a task
 * (`verifyTaskSignature`) and the BLS signatures of attestations and certificates (consensus)
 * are checked by their owners.
 *
 * Decoding is strict in four steps, cheapest first:
 *  1. total size against the per-message limit, before any parsing (OVERSIZED);
 *  2. one pass over the protobuf wire structure (`scanWire` in wire.ts, shared with the stream
 *     codecs): cut fields (TRUNCATED), broken varints, groups, wrong wire types, field number 0
 *     (MALFORMED); unknown or repeated fields are noted for step 4;
 *  3. the version (UNKNOWN_VERSION), then every field's length and range
 *     (INVALID_FIELD, OVERSIZED for a payload over its limit, NON_CANONICAL for a value with
 *     two spellings such as a uint256 with a leading zero);
 *  4. canonical form: the message is re-encoded and must give back exactly the same bytes, which
 *     rejects unknown fields, trailing garbage, repeated fields, overlong varints and default
 *     values written out (NON_CANONICAL). One message has one encoding, so the gossip message id
 *     (a hash of the payload) and the taskId (a hash of the encoding) cannot be varied by a relay.
 *
 * Encoders run the same field checks before encoding, so a node never sends what peers reject.
 * Decoded byte fields are views into the given buffer (no copy).
 */
import {
  ADDRESS_BYTES, BLS_SIGNATURE_BYTES, BPS_DENOMINATOR, INPUT_REF_BYTES, MAX_ATTESTATION_BYTES,
  MAX_INLINE_INPUT_BYTES, MAX_INLINE_OUTPUT_BYTES, MAX_MODEL_ID_BYTES, MAX_OPERATORS, MAX_PARAMS_BYTES,
  MAX_QUORUM_CERTIFICATE_BYTES, MAX_SIGNER_BITMAP_BYTES, MAX_TASK_ANNOUNCEMENT_BYTES, OUTPUT_REF_BYTES,
  PROTOCOL_VERSION, REQUESTER_SIGNATURE_BYTES, RESULT_HASH_BYTES, TASK_ID_BYTES, UINT64_MAX
} from './constants.js'
import { Attestation, QuorumCertificate, TaskAnnouncement } from './messages.pb.js'
import { bytesToUint256, UINT256_MAX_BYTES } from './uint256.js'
import { firstDifference, scanWire, WIRE_LENGTH_DELIMITED, WIRE_VARINT, type WireFindingKind, type WireType } from './scan.js'

export type WireMessageType = 'TaskAnnouncement' | 'Attestation' | 'QuorumCertificate'

export type DecodeErrorCode =
  | 'OVERSIZED'
  | 'TRUNCATED'
  | 'MALFORMED'
  | 'UNKNOWN_VERSION'
  | 'NON_CANONICAL'
  | 'INVALID_FIELD'

/** Codes an encoder can raise: everything but the two that only raw bytes can cause. */
export type EncodeErrorCode = Exclude<DecodeErrorCode, 'TRUNCATED' | 'MALFORMED'>

/**
 * Bytes received from a peer are not a valid message. Gossip validation maps every
 * DecodeError to `reject` (the sender's score drops); `field` is set when one field is at fault.
 */
export class DecodeError extends Error {
  readonly code: DecodeErrorCode
  readonly messageType: WireMessageType
  readonly field: string | undefined

  constructor (messageType: WireMessageType, code: DecodeErrorCode, field: string | undefined, reason: string) {
    super(`cannot decode ${messageType}${field === undefined ? '' : `.${field}`}: ${reason} [${code}]`)
    this.name = 'DecodeError'
    this.code = code
    this.messageType = messageType
    this.field = field
  }
}

/**
 * A message built locally would be rejected by peers, so it is not encoded. This is a bug or
 * a bad input in the caller (an input too large to inline: put it in a stream and pass
 * `inputRef`), never a network condition.
 */
export class EncodeError extends Error {
  readonly code: EncodeErrorCode
  readonly messageType: WireMessageType
  readonly field: string | undefined

  constructor (messageType: WireMessageType, code: EncodeErrorCode, field: string | undefined, reason: string) {
    super(`cannot encode ${messageType}${field === undefined ? '' : `.${field}`}: ${reason} [${code}]`)
    this.name = 'EncodeError'
    this.code = code
    this.messageType = messageType
    this.field = field
  }
}

/** The first rule a message breaks, shared by decoders and encoders. */
export interface FieldViolation {
  code: EncodeErrorCode
  field: string
  reason: string
}

// ---------------------------------------------------------------------------------------------
// Field rules

function violation (code: EncodeErrorCode, field: string, reason: string): FieldViolation {
  return { code, field, reason }
}

function checkVersion (version: unknown): FieldViolation | undefined {
  if (version !== PROTOCOL_VERSION) {
    return violation('UNKNOWN_VERSION', 'version', `version ${String(version)} is not supported, this node speaks version ${PROTOCOL_VERSION}`)
  }
  return undefined
}

function notBytes (field: string, value: unknown): FieldViolation | undefined {
  return value instanceof Uint8Array ? undefined : violation('INVALID_FIELD', field, `expected bytes, got ${typeof value}`)
}

function checkExactBytes (field: string, value: Uint8Array, length: number): FieldViolation | undefined {
  return notBytes(field, value) ??
    (value.length === length ? undefined : violation('INVALID_FIELD', field, `has ${value.length} bytes, expected exactly ${length}`))
}

function checkBoundedBytes (field: string, value: Uint8Array, min: number, max: number): FieldViolation | undefined {
  const bad = notBytes(field, value)
  if (bad !== undefined) return bad
  if (value.length > max) return violation('OVERSIZED', field, `has ${value.length} bytes, at most ${max} allowed`)
  if (value.length < min) return violation('INVALID_FIELD', field, min === 1 ? 'must not be empty' : `has ${value.length} bytes, at least ${min} required`)
  return undefined
}

function checkUint64 (field: string, value: bigint, min: bigint = 0n): FieldViolation | undefined {
  if (typeof value !== 'bigint') return violation('INVALID_FIELD', field, `expected a bigint, got ${typeof value}`)
  if (value < min || value > UINT64_MAX) return violation('INVALID_FIELD', field, `${value} is outside ${min}..2^64-1`)
  return undefined
}

function checkUint32 (field: string, value: number, min: number, max: number): FieldViolation | undefined {
  if (!Number.isInteger(value) || value < min || value > max) {
    return violation('INVALID_FIELD', field, `${String(value)} is not an integer in ${min}..${max}`)
  }
  return undefined
}

/** uint256 amounts: at most 32 bytes, no leading zero byte (zero is the empty string). */
function checkUint256 (field: string, value: Uint8Array): FieldViolation | undefined {
  const bad = notBytes(field, value)
  if (bad !== undefined) return bad
  if (value.length > UINT256_MAX_BYTES) return violation('OVERSIZED', field, `uint256 has ${value.length} bytes, at most ${UINT256_MAX_BYTES} allowed`)
  if (value.length > 0 && value[0] === 0) return violation('NON_CANONICAL', field, 'uint256 has a leading zero byte')
  return undefined
}

function isAllZero (bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0)
}

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
  return checkVersion(task.version) ??
    // EIP-155 chain ids start at 1; 0 would make the EIP-712 domain valid on no chain.
    checkUint64('chainId', task.chainId, 1n) ??
    checkBoundedBytes('modelId', task.modelId, 1, MAX_MODEL_ID_BYTES) ??
    checkBoundedBytes('input', task.input, 0, MAX_INLINE_INPUT_BYTES) ??
    (hasInputRef ? checkExactBytes('inputRef', task.inputRef, INPUT_REF_BYTES) : notBytes('inputRef', task.inputRef)) ??
    // The EIP-712 struct writes an absent inputRef as bytes32(0), so an all-zero reference
    // would sign the same as none.
    (hasInputRef && isAllZero(task.inputRef) ? violation('INVALID_FIELD', 'inputRef', 'must not be all zero bytes') : undefined) ??
    (!hasInput && !hasInputRef ? violation('INVALID_FIELD', 'input', 'a task needs an input: set inline input or inputRef') : undefined) ??
    (hasInput && hasInputRef ? violation('INVALID_FIELD', 'inputRef', 'set either inline input or inputRef, not both') : undefined) ??
    checkBoundedBytes('params', task.params, 0, MAX_PARAMS_BYTES) ??
    checkUint256('fee', task.fee) ??
    checkUint64('deadline', task.deadline, 1n) ??
    checkUint32('quorumBps', task.quorumBps, 1, BPS_DENOMINATOR) ??
    checkUint64('nonce', task.nonce) ??
    checkExactBytes('requester', task.requester, ADDRESS_BYTES) ??
    (options.signature === false ? undefined : checkExactBytes('requesterSig', task.requesterSig, REQUESTER_SIGNATURE_BYTES))
}

/** Every rule an Attestation obeys on the wire; returns the first broken one. */
export function checkAttestation (att: Attestation): FieldViolation | undefined {
  return checkVersion(att.version) ??
    checkExactBytes('taskId', att.taskId, TASK_ID_BYTES) ??
    checkExactBytes('resultHash', att.resultHash, RESULT_HASH_BYTES) ??
    checkExactBytes('outputRef', att.outputRef, OUTPUT_REF_BYTES) ??
    checkUint64('epoch', att.epoch) ??
    checkUint32('operatorIndex', att.operatorIndex, 0, MAX_OPERATORS - 1) ??
    checkExactBytes('blsSig', att.blsSig, BLS_SIGNATURE_BYTES) ??
    checkBoundedBytes('output', att.output, 0, MAX_INLINE_OUTPUT_BYTES)
}

/** Every rule a QuorumCertificate obeys on the wire; returns the first broken one. */
export function checkQuorumCertificate (qc: QuorumCertificate): FieldViolation | undefined {
  const bad = checkVersion(qc.version) ??
    checkExactBytes('taskId', qc.taskId, TASK_ID_BYTES) ??
    checkExactBytes('resultHash', qc.resultHash, RESULT_HASH_BYTES) ??
    checkExactBytes('outputRef', qc.outputRef, OUTPUT_REF_BYTES) ??
    checkUint64('epoch', qc.epoch) ??
    // Non-empty with a non-zero last byte: at least one signer, and one spelling per signer set.
    checkBoundedBytes('signerBitmap', qc.signerBitmap, 1, MAX_SIGNER_BITMAP_BYTES) ??
    (qc.signerBitmap[qc.signerBitmap.length - 1] === 0 ? violation('NON_CANONICAL', 'signerBitmap', 'ends with a zero byte (trim trailing zero bytes)') : undefined) ??
    checkExactBytes('aggregateSig', qc.aggregateSig, BLS_SIGNATURE_BYTES) ??
    checkUint256('signedStake', qc.signedStake) ??
    checkUint256('totalStake', qc.totalStake) ??
    checkBoundedBytes('output', qc.output, 0, MAX_INLINE_OUTPUT_BYTES)
  if (bad !== undefined) return bad
  if (bytesToUint256(qc.signedStake) > bytesToUint256(qc.totalStake)) {
    return violation('INVALID_FIELD', 'signedStake', 'exceeds totalStake')
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Wire structure scan

interface FieldTable {
  /** Wire type by field number, as in messages.proto: what the scan accepts. */
  readonly wireTypes: ReadonlyMap<number, WireType>
  /** Name by field number, for the `field` of a DecodeError about a field's wire type or length. */
  readonly names: ReadonlyMap<number, string>
}

interface MessageSpec<T> {
  readonly type: WireMessageType
  readonly maxBytes: number
  readonly fields: FieldTable
  readonly encode: (msg: T) => Uint8Array<ArrayBuffer>
  readonly decode: (bytes: Uint8Array) => T
  readonly check: (msg: T) => FieldViolation | undefined
}

function fields (...specs: Array<[number, string, WireType]>): FieldTable {
  return {
    wireTypes: new Map(specs.map(([n, , wireType]) => [n, wireType])),
    names: new Map(specs.map(([n, name]) => [n, name]))
  }
}

const V = WIRE_VARINT
const L = WIRE_LENGTH_DELIMITED

const TASK_SPEC: MessageSpec<TaskAnnouncement> = {
  type: 'TaskAnnouncement',
  maxBytes: MAX_TASK_ANNOUNCEMENT_BYTES,
  fields: fields([1, 'version', V], [2, 'chainId', V], [3, 'modelId', L], [4, 'input', L], [5, 'inputRef', L],
    [6, 'params', L], [7, 'fee', L], [8, 'deadline', V], [9, 'quorumBps', V], [10, 'nonce', V],
    [11, 'requester', L], [12, 'requesterSig', L]),
  encode: (msg) => TaskAnnouncement.encode(msg),
  decode: (bytes) => TaskAnnouncement.decode(bytes),
  check: (msg) => checkTaskAnnouncement(msg)
}

const ATTESTATION_SPEC: MessageSpec<Attestation> = {
  type: 'Attestation',
  maxBytes: MAX_ATTESTATION_BYTES,
  fields: fields([1, 'version', V], [2, 'taskId', L], [3, 'resultHash', L], [4, 'outputRef', L], [5, 'epoch', V],
    [6, 'operatorIndex', V], [7, 'blsSig', L], [8, 'output', L]),
  encode: (msg) => Attestation.encode(msg),
  decode: (bytes) => Attestation.decode(bytes),
  check: checkAttestation
}

const QUORUM_CERTIFICATE_SPEC: MessageSpec<QuorumCertificate> = {
  type: 'QuorumCertificate',
  maxBytes: MAX_QUORUM_CERTIFICATE_BYTES,
  fields: fields([1, 'version', V], [2, 'taskId', L], [3, 'resultHash', L], [4, 'outputRef', L], [5, 'epoch', V],
    [6, 'signerBitmap', L], [7, 'aggregateSig', L], [8, 'signedStake', L], [9, 'totalStake', L], [10, 'output', L]),
  encode: (msg) => QuorumCertificate.encode(msg),
  decode: (bytes) => QuorumCertificate.decode(bytes),
  check: checkQuorumCertificate
}

/** Step 2's code for each finding that stops decoding there. */
const STRUCTURE_CODES: Record<Exclude<WireFindingKind, 'non-canonical'>, DecodeErrorCode> = {
  truncated: 'TRUNCATED',
  malformed: 'MALFORMED',
  'invalid-tag': 'MALFORMED',
  'varint-over-64-bits': 'MALFORMED'
}

/**
 * Step 2. Throws TRUNCATED/MALFORMED for bytes protobuf cannot parse; returns the first unknown,
 * repeated or out-of-order field (a NON_CANONICAL message, reported only after the version and
 * fields are checked, so an unsupported version is reported as such) or undefined.
 */
function scanStructure<T> (spec: MessageSpec<T>, bytes: Uint8Array): string | undefined {
  const scan = scanWire(bytes, spec.fields.wireTypes)
  // An overflowing varint comes before any fault (the scan goes on past it, not past a fault).
  const broken = scan.firstOverflow ?? scan.fault
  if (broken !== undefined) {
    const field = broken.fieldNumber === undefined ? undefined : spec.fields.names.get(broken.fieldNumber)
    throw new DecodeError(spec.type, STRUCTURE_CODES[broken.kind], field, broken.reason)
  }
  return scan.firstNonCanonical?.reason
}

function decodeStrict<T> (spec: MessageSpec<T>, bytes: Uint8Array): T {
  if (!(bytes instanceof Uint8Array)) {
    throw new DecodeError(spec.type, 'MALFORMED', undefined, `expected a Uint8Array, got ${typeof bytes}`)
  }
  if (bytes.length > spec.maxBytes) {
    throw new DecodeError(spec.type, 'OVERSIZED', undefined, `message has ${bytes.length} bytes, at most ${spec.maxBytes} allowed`)
  }
  const issue = scanStructure(spec, bytes)

  let msg: T
  try {
    msg = spec.decode(bytes)
  } catch (err) {
    // The scan accepted the structure, so protons should too; kept typed in case it does not.
    throw new DecodeError(spec.type, 'MALFORMED', undefined, `protobuf decoding failed: ${(err as Error).message}`)
  }

  const bad = spec.check(msg)
  if (bad !== undefined) throw new DecodeError(spec.type, bad.code, bad.field, bad.reason)

  if (issue !== undefined) throw new DecodeError(spec.type, 'NON_CANONICAL', undefined, issue)
  const canonical = spec.encode(msg)
  const at = firstDifference(canonical, bytes)
  if (at !== -1) {
    throw new DecodeError(spec.type, 'NON_CANONICAL', undefined,
      `bytes differ from the canonical encoding at offset ${at} (trailing bytes, overlong varint or a default value written out)`)
  }
  return msg
}

function encodeStrict<T> (spec: MessageSpec<T>, msg: T): Uint8Array<ArrayBuffer> {
  const bad = spec.check(msg)
  if (bad !== undefined) throw new EncodeError(spec.type, bad.code, bad.field, bad.reason)
  const bytes = spec.encode(msg)
  // Unreachable while the field limits add up below maxBytes; kept so a future field cannot
  // silently produce messages every peer drops.
  if (bytes.length > spec.maxBytes) {
    throw new EncodeError(spec.type, 'OVERSIZED', undefined, `message has ${bytes.length} bytes, at most ${spec.maxBytes} allowed`)
  }
  return bytes
}

// ---------------------------------------------------------------------------------------------
// Public codecs

/** Decodes a task announcement from untrusted bytes; throws DecodeError. Does not check the signature. */
export function decodeTaskAnnouncement (bytes: Uint8Array): TaskAnnouncement {
  return decodeStrict(TASK_SPEC, bytes)
}

/** Canonical encoding of a signed task announcement; throws EncodeError if peers would reject it. */
export function encodeTaskAnnouncement (task: TaskAnnouncement): Uint8Array<ArrayBuffer> {
  return encodeStrict(TASK_SPEC, task)
}

/** Decodes an attestation from untrusted bytes; throws DecodeError. Does not check the BLS signature. */
export function decodeAttestation (bytes: Uint8Array): Attestation {
  return decodeStrict(ATTESTATION_SPEC, bytes)
}

/** Canonical encoding of an attestation; throws EncodeError if peers would reject it. */
export function encodeAttestation (attestation: Attestation): Uint8Array<ArrayBuffer> {
  return encodeStrict(ATTESTATION_SPEC, attestation)
}

/** Decodes a quorum certificate from untrusted bytes; throws DecodeError. Does not check the aggregate signature or stakes against an epoch. */
export function decodeQuorumCertificate (bytes: Uint8Array): QuorumCertificate {
  return decodeStrict(QUORUM_CERTIFICATE_SPEC, bytes)
}

/** Canonical encoding of a quorum certificate; throws EncodeError if peers would reject it. */
export function encodeQuorumCertificate (certificate: QuorumCertificate): Uint8Array<ArrayBuffer> {
  return encodeStrict(QUORUM_CERTIFICATE_SPEC, certificate)
}
