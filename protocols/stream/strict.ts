/**
 * Strict decoding for the request/response messages of /poi/stream/1/ and /poi/result/1/ and
 * for stream messages, on the same rules as protocols/codec.ts (whose scanner is private to
 * the three gossip messages): size before parsing, one pass over the wire structure, field
 * rules, then the canonical re-encoding must give back exactly the input bytes. One message
 * has one encoding, which is what makes `msgId = sha256(bytes)` a stable reference.
 *
 * Trust boundary: the bytes are untrusted. A decoded message has passed its field rules but no
 * signature check.
 */

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

export const WIRE_VARINT = 0
export const WIRE_LENGTH_DELIMITED = 2
type WireType = typeof WIRE_VARINT | typeof WIRE_LENGTH_DELIMITED

export interface StrictCodec<T> {
  readonly messageType: string
  readonly maxBytes: number
  /** Wire type of each field number, as in the .proto file. */
  readonly fields: ReadonlyMap<number, WireType>
  readonly encode: (msg: T) => Uint8Array
  readonly decode: (bytes: Uint8Array) => T
  readonly check: (msg: T) => FieldRuleViolation | undefined
}

/** A protobuf varint carries at most 64 bits: 10 groups of 7. */
const MAX_VARINT_BYTES = 10

function readVarint (type: string, bytes: Uint8Array, pos: number): { value: number, next: number } {
  let value = 0
  let scale = 1
  for (let i = 0; i < MAX_VARINT_BYTES && pos + i < bytes.length; i++) {
    const b = bytes[pos + i]
    value += (b & 0x7f) * scale
    scale *= 128
    if ((b & 0x80) === 0) return { value, next: pos + i + 1 }
  }
  throw new MessageDecodeError(type, 'MALFORMED', undefined, `varint at offset ${pos} is cut off or longer than ${MAX_VARINT_BYTES} bytes`)
}

/**
 * Walks the top-level fields: only the declared field numbers with their wire types, in
 * increasing order, each once, and every length inside the buffer. Done before protons sees
 * the bytes so that a deprecated group or a length past the end is a typed MALFORMED, not
 * whatever the generic parser throws (or how deep it recurses).
 */
function scan (codec: StrictCodec<unknown>, bytes: Uint8Array): void {
  let pos = 0
  let last = 0
  while (pos < bytes.length) {
    const at = pos
    const tag = readVarint(codec.messageType, bytes, pos)
    pos = tag.next
    const fieldNumber = Math.floor(tag.value / 8)
    const wireType = tag.value % 8
    const expected = codec.fields.get(fieldNumber)
    if (expected === undefined) {
      throw new MessageDecodeError(codec.messageType, 'NON_CANONICAL', undefined, `unknown field number ${fieldNumber} at offset ${at}`)
    }
    if (expected !== wireType) {
      throw new MessageDecodeError(codec.messageType, 'MALFORMED', undefined, `field ${fieldNumber} at offset ${at} has wire type ${wireType}, expected ${expected}`)
    }
    if (fieldNumber <= last) {
      throw new MessageDecodeError(codec.messageType, 'NON_CANONICAL', undefined, `field ${fieldNumber} at offset ${at} is repeated or out of order`)
    }
    last = fieldNumber
    if (wireType === WIRE_VARINT) {
      pos = readVarint(codec.messageType, bytes, pos).next
    } else {
      const length = readVarint(codec.messageType, bytes, pos)
      if (length.value > bytes.length - length.next) {
        throw new MessageDecodeError(codec.messageType, 'MALFORMED', undefined, `field ${fieldNumber} declares ${length.value} bytes at offset ${length.next}, only ${bytes.length - length.next} remain`)
      }
      pos = length.next + length.value
    }
  }
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Decodes untrusted bytes; throws MessageDecodeError. Byte fields are views into `bytes`. */
export function decodeCanonical<T> (codec: StrictCodec<T>, bytes: Uint8Array): T {
  if (!(bytes instanceof Uint8Array)) {
    throw new MessageDecodeError(codec.messageType, 'MALFORMED', undefined, `expected a Uint8Array, got ${typeof bytes}`)
  }
  if (bytes.length > codec.maxBytes) {
    throw new MessageDecodeError(codec.messageType, 'OVERSIZED', undefined, `message has ${bytes.length} bytes, at most ${codec.maxBytes} allowed`)
  }
  scan(codec as StrictCodec<unknown>, bytes)
  let msg: T
  try {
    msg = codec.decode(bytes)
  } catch (err) {
    throw new MessageDecodeError(codec.messageType, 'MALFORMED', undefined, `protobuf decoding failed: ${(err as Error).message}`)
  }
  const bad = codec.check(msg)
  if (bad !== undefined) throw new MessageDecodeError(codec.messageType, bad.code, bad.field, bad.reason)
  if (!sameBytes(codec.encode(msg), bytes)) {
    throw new MessageDecodeError(codec.messageType, 'NON_CANONICAL', undefined, 'bytes differ from the canonical encoding (overlong varint or a default value written out)')
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
