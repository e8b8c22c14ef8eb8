/**
 * Strict decoding for the request/response messages of /poi/stream/1/ and /poi/result/1/ and
 * for stream messages, on the same rules as protocols/codec.ts and with the same wire scan
 * (protocols/wire.ts): size before parsing, one pass over the wire structure, field rules, then
 * the canonical re-encoding must give back exactly the input bytes. One message has one
 * encoding, which is what makes `msgId = sha256(bytes)` a stable reference.
 *
 * Trust boundary: the bytes are untrusted. A decoded message has passed its field rules but no
 * signature check.
 */
import { firstDifference, scanWire, WIRE_LENGTH_DELIMITED, WIRE_VARINT, type WireFindingKind, type WireType } from './scan.js'

export { WIRE_LENGTH_DELIMITED, WIRE_VARINT }

export type MessageDecodeErrorCode = 'OVERSIZED' | 'MALFORMED' | 'UNKNOWN_VERSION' | 'NON_CANONICAL' | 'INVALID_FIELD'

/** Bytes received from a peer are not a valid message of `messageType`. */
export class MessageDecodeError extends Error {
  readonly code: MessageDecodeErrorCode
  readonly messageType: string
  readonly field: string | undefined

  constructor (messageType: string, code: MessageDecodeErrorCode, field: string | undefined, reason: string) {
    super(`cannot decode ${messageType}${field === undefined ? '' : `.${field}`}: ${reason} [${code}]`)
    this.name = 'MessageDecodeError'
    this.code = code
    this.messageType = messageType
    this.field = field
  }
}

/**
 * A message built locally breaks a rule its peers check, so it is not sent: a bug or a bad
 * argument in the caller, never a network condition.
 */
export class MessageEncodeError extends Error {
  readonly code: MessageDecodeErrorCode
  readonly messageType: string
  readonly field: string | undefined

  constructor (messageType: string, violation: FieldRuleViolation) {
    super(`cannot encode ${messageType}.${violation.field}: ${violation.reason} [${violation.code}]`)
    this.name = 'MessageEncodeError'
    this.code = violation.code
    this.messageType = messageType
    this.field = violation.field
  }
}

/** The first rule a decoded message breaks. */
export interface FieldRuleViolation {
  code: Exclude<MessageDecodeErrorCode, 'MALFORMED'>
  field: string
  reason: string
}

export interface StrictCodec<T> {
  readonly messageType: string
  readonly maxBytes: number
  /** Wire type of each field number, as in the .proto file. */
  readonly fields: ReadonlyMap<number, WireType>
  readonly encode: (msg: T) => Uint8Array
  readonly decode: (bytes: Uint8Array) => T
  readonly check: (msg: T) => FieldRuleViolation | undefined
}

/** The code for each wire finding this decoder reports. */
const FINDING_CODES: Record<Exclude<WireFindingKind, 'varint-over-64-bits'>, MessageDecodeErrorCode> = {
  truncated: 'MALFORMED',
  malformed: 'MALFORMED',
  // A tag no encoder writes is read as a field number this message does not declare.
  'invalid-tag': 'NON_CANONICAL',
  'non-canonical': 'NON_CANONICAL'
}

/**
 * Walks the top-level fields: only the declared field numbers with their wire types, in
 * increasing order, each once, and every length inside the buffer. Unlike codec.ts, the first
 * unknown or repeated field is reported at once, before the field rules. A varint over 64 bits
 * is left to protons, which keeps its low bits: the value then fails its field rule or the
 * canonical re-encoding (no canonical varint has bits above 63), so it never decodes.
 */
function scan<T> (codec: StrictCodec<T>, bytes: Uint8Array): void {
  const { fault, firstNonCanonical } = scanWire(bytes, codec.fields)
  // A field noted as non-canonical comes before any fault (the scan goes on past it, not past a fault).
  const first = firstNonCanonical ?? fault
  if (first !== undefined) throw new MessageDecodeError(codec.messageType, FINDING_CODES[first.kind], undefined, first.reason)
}

/** Decodes untrusted bytes; throws MessageDecodeError. Byte fields are views into `bytes`. */
export function decodeCanonical<T> (codec: StrictCodec<T>, bytes: Uint8Array): T {
  if (!(bytes instanceof Uint8Array)) {
    throw new MessageDecodeError(codec.messageType, 'MALFORMED', undefined, `expected a Uint8Array, got ${typeof bytes}`)
  }
  if (bytes.length > codec.maxBytes) {
    throw new MessageDecodeError(codec.messageType, 'OVERSIZED', undefined, `message has ${bytes.length} bytes, at most ${codec.maxBytes} allowed`)
  }
  scan(codec, bytes)
  let msg: T
  try {
    msg = codec.decode(bytes)
  } catch (err) {
    throw new MessageDecodeError(codec.messageType, 'MALFORMED', undefined, `protobuf decoding failed: ${(err as Error).message}`)
  }
  const bad = codec.check(msg)
  if (bad !== undefined) throw new MessageDecodeError(codec.messageType, bad.code, bad.field, bad.reason)
  const at = firstDifference(codec.encode(msg), bytes)
  if (at !== -1) {
    throw new MessageDecodeError(codec.messageType, 'NON_CANONICAL', undefined,
      `bytes differ from the canonical encoding at offset ${at} (overlong varint or a default value written out)`)
  }
  return msg
}

// Field rules shared by the codecs of this folder and of protocols/result.

export function ruleVersion (version: number, supported: number): FieldRuleViolation | undefined {
  return version === supported
    ? undefined
    : { code: 'UNKNOWN_VERSION', field: 'version', reason: `version ${version} is not supported, this node speaks version ${supported}` }
}

export function ruleExactBytes (field: string, value: Uint8Array, length: number): FieldRuleViolation | undefined {
  return value instanceof Uint8Array && value.length === length
    ? undefined
    : { code: 'INVALID_FIELD', field, reason: `has ${value instanceof Uint8Array ? value.length : typeof value} bytes, expected exactly ${length}` }
}

export function ruleBoundedBytes (field: string, value: Uint8Array, min: number, max: number): FieldRuleViolation | undefined {
  if (!(value instanceof Uint8Array)) return { code: 'INVALID_FIELD', field, reason: `expected bytes, got ${typeof value}` }
  if (value.length > max) return { code: 'OVERSIZED', field, reason: `has ${value.length} bytes, at most ${max} allowed` }
  if (value.length < min) return { code: 'INVALID_FIELD', field, reason: `has ${value.length} bytes, at least ${min} required` }
  return undefined
}

export function ruleOneOf (field: string, value: number, allowed: readonly number[]): FieldRuleViolation | undefined {
  return allowed.includes(value) ? undefined : { code: 'INVALID_FIELD', field, reason: `${value} is not one of ${allowed.join(', ')}` }
}
