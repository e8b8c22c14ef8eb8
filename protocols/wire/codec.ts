/**
 * The one strict codec of poi. Every message that crosses the network (the three gossip
 * messages, stream messages, and the requests and responses of /poi/stream/1/, /poi/result/1/
 * and /poi/network/1/) is a `defineCodec` definition: its protons codec, its size bound, the
 * wire type of each field and its field rules. The definition gives `decode` and `encode`.
 *
 * Trust boundary: the bytes given to `decode` are untrusted (gossip, streams, HTTP). A decoded
 * message has passed every check below, so later layers may rely on field sizes and ranges,
 * but NOT on signatures: those are checked by their owners (verifyTaskSignature,
 * verifyStreamMessage, consensus).
 *
 * Decoding is strict in four steps, cheapest first:
 *  1. total size against the message's bound, before any parsing (OVERSIZED);
 *  2. one pass over the protobuf wire structure (`scanWire` in scan.ts): cut fields
 *     (TRUNCATED), broken or over-64-bit varints, groups, wrong wire types, field number 0
 *     (MALFORMED); unknown, repeated or out-of-order fields are noted for step 4;
 *  3. the version (UNKNOWN_VERSION), then every field's length and range (INVALID_FIELD,
 *     OVERSIZED for a payload over its limit, NON_CANONICAL for a value with two spellings such
 *     as a uint256 with a leading zero);
 *  4. canonical form: a field noted in step 2 is reported, then the message is re-encoded and
 *     must give back exactly the same bytes, which rejects trailing garbage, overlong varints
 *     and default values written out (NON_CANONICAL). One message has one encoding, so a hash
 *     of the bytes (gossip message id, taskId, stream msgId) cannot be varied by a relay.
 *
 * The version is checked before step 4 so that a newer peer's message (another version, with
 * fields this node does not know) is reported as UNKNOWN_VERSION rather than NON_CANONICAL.
 * Encoders run the same field rules first, so a node never sends what its peers reject.
 * Decoded byte fields are views into the given buffer (no copy).
 */
import { PROTOCOL_VERSION, UINT32_MAX, UINT64_MAX } from './constants.js'
import { PoiError } from './errors.js'
import { firstDifference, scanWire, WIRE_LENGTH_DELIMITED, WIRE_VARINT, type WireFindingKind, type WireType } from './scan.js'
import { UINT256_MAX_BYTES } from './uint256.js'

export { WIRE_LENGTH_DELIMITED, WIRE_VARINT }
export type { WireType }

export type DecodeErrorCode =
  | 'OVERSIZED'
  | 'TRUNCATED'
  | 'MALFORMED'
  | 'UNKNOWN_VERSION'
  | 'NON_CANONICAL'
  | 'INVALID_FIELD'

/** Codes an encoder can raise: everything but the two that only raw bytes can cause. */
export type EncodeErrorCode = Exclude<DecodeErrorCode, 'TRUNCATED' | 'MALFORMED'>

/** The first rule a message breaks, shared by decoders and encoders. */
export interface FieldViolation {
  code: EncodeErrorCode
  field: string
  reason: string
}

/** What a decode and an encode failure share: the message type, the field at fault, the code. */
abstract class CodecError<C extends DecodeErrorCode> extends PoiError {
  declare readonly code: C
  readonly messageType: string
  readonly field: string | undefined

  protected constructor (action: 'decode' | 'encode', messageType: string, code: C, field: string | undefined, reason: string) {
    super(code, `cannot ${action} ${messageType}${field === undefined ? '' : `.${field}`}: ${reason} [${code}]`)
    this.messageType = messageType
    this.field = field
  }
}

/**
 * Bytes received from a peer are not a valid message. Gossip validation maps every
 * DecodeError to `reject` (the sender's score drops); `field` is set when one field is at fault.
 */
export class DecodeError extends CodecError<DecodeErrorCode> {
  constructor (messageType: string, code: DecodeErrorCode, field: string | undefined, reason: string) {
    super('decode', messageType, code, field, reason)
  }

  static of (messageType: string, { code, field, reason }: FieldViolation): DecodeError {
    return new DecodeError(messageType, code, field, reason)
  }
}

/**
 * A message built locally would be rejected by peers, so it is not encoded. This is a bug or
 * a bad input in the caller (an input too large to inline: put it in a stream and pass
 * `inputRef`), never a network condition.
 */
export class EncodeError extends CodecError<EncodeErrorCode> {
  constructor (messageType: string, code: EncodeErrorCode, field: string | undefined, reason: string) {
    super('encode', messageType, code, field, reason)
  }

  static of (messageType: string, { code, field, reason }: FieldViolation): EncodeError {
    return new EncodeError(messageType, code, field, reason)
  }
}

// ---------------------------------------------------------------------------------------------
// The codec definition

/**
 * Field number and wire type of every field of T, as in its .proto file; `'repeated'` marks a
 * repeated field (its entries follow one another on the wire).
 */
export type FieldTable<T> = { readonly [K in keyof T & string]-?: readonly [fieldNumber: number, wireType: WireType, repeated?: 'repeated'] }

/** What protons generates for a message (`TaskAnnouncement`, `StreamRequest`, ...). */
export interface ProtoCodec<T> {
  encode: (msg: T) => Uint8Array<ArrayBuffer>
  decode: (bytes: Uint8Array) => T
}

export interface CodecDefinition<T> {
  /** The message's name in errors, as in the .proto file. */
  readonly name: string
  /** Largest encoding accepted or produced; checked before any parsing. */
  readonly maxBytes: number
  readonly fields: FieldTable<T>
  readonly proto: ProtoCodec<T>
  /** Every rule a message obeys on the wire; returns the first broken one. */
  readonly check: (msg: T) => FieldViolation | undefined
}

export interface StrictCodec<T> {
  readonly name: string
  readonly maxBytes: number
  /** Decodes untrusted bytes; throws DecodeError. Byte fields are views into `bytes`. */
  readonly decode: (bytes: Uint8Array) => T
  /** The canonical encoding; throws EncodeError for a message peers would reject. */
  readonly encode: (msg: T) => Uint8Array<ArrayBuffer>
  readonly check: (msg: T) => FieldViolation | undefined
}

/** Step 2's code for each finding that stops decoding there. */
const STRUCTURE_CODES: Record<Exclude<WireFindingKind, 'non-canonical'>, DecodeErrorCode> = {
  truncated: 'TRUNCATED',
  malformed: 'MALFORMED',
  'invalid-tag': 'MALFORMED',
  'varint-over-64-bits': 'MALFORMED'
}

/** A strict codec for one message; its `decode` and `encode` may be passed around unbound. */
export function defineCodec<T> (definition: CodecDefinition<T>): StrictCodec<T> {
  const { name, maxBytes, proto, check } = definition
  const entries = Object.entries(definition.fields) as Array<[string, readonly [number, WireType, 'repeated'?]]>
  const wireTypes = new Map(entries.map(([, [n, wireType]]) => [n, wireType]))
  const names = new Map(entries.map(([field, [n]]) => [n, field]))
  const repeatable = new Set(entries.filter(([, [, , repeated]]) => repeated === 'repeated').map(([, [n]]) => n))

  /**
   * Step 2. Throws for bytes protobuf cannot parse; returns the first unknown, repeated or
   * out-of-order field (reported in step 4) or undefined.
   */
  function scanStructure (bytes: Uint8Array): string | undefined {
    const scan = scanWire(bytes, wireTypes, repeatable)
    // An overflowing varint comes before any fault (the scan goes on past it, not past a fault).
    const broken = scan.firstOverflow ?? scan.fault
    if (broken !== undefined) {
      const field = broken.fieldNumber === undefined ? undefined : names.get(broken.fieldNumber)
      throw new DecodeError(name, STRUCTURE_CODES[broken.kind], field, broken.reason)
    }
    return scan.firstNonCanonical?.reason
  }

  function decode (bytes: Uint8Array): T {
    if (!(bytes instanceof Uint8Array)) {
      throw new DecodeError(name, 'MALFORMED', undefined, `expected a Uint8Array, got ${typeof bytes}`)
    }
    if (bytes.length > maxBytes) {
      throw new DecodeError(name, 'OVERSIZED', undefined, `message has ${bytes.length} bytes, at most ${maxBytes} allowed`)
    }
    const issue = scanStructure(bytes)
    let msg: T
    try {
      msg = proto.decode(bytes)
    } catch (err) {
      // A repeated field past the decode limits its codec passes to protons (batches) is
      // OVERSIZED; otherwise the scan accepted the structure, so protons should too (kept typed
      // in case it does not, or for a fault inside a nested message, which the scan does not enter).
      const oversized = (err as Error).name === 'MaxLengthError'
      throw new DecodeError(name, oversized ? 'OVERSIZED' : 'MALFORMED', undefined, `protobuf decoding failed: ${(err as Error).message}`)
    }
    const bad = check(msg)
    if (bad !== undefined) throw DecodeError.of(name, bad)
    if (issue !== undefined) throw new DecodeError(name, 'NON_CANONICAL', undefined, issue)
    const at = firstDifference(proto.encode(msg), bytes)
    if (at !== -1) {
      throw new DecodeError(name, 'NON_CANONICAL', undefined,
        `bytes differ from the canonical encoding at offset ${at} (trailing bytes, overlong varint or a default value written out)`)
    }
    return msg
  }

  function encode (msg: T): Uint8Array<ArrayBuffer> {
    const bad = check(msg)
    if (bad !== undefined) throw EncodeError.of(name, bad)
    const bytes = proto.encode(msg)
    // Unreachable while the field limits add up below maxBytes; kept so a future field cannot
    // silently produce messages every peer drops.
    if (bytes.length > maxBytes) {
      throw new EncodeError(name, 'OVERSIZED', undefined, `message has ${bytes.length} bytes, at most ${maxBytes} allowed`)
    }
    return bytes
  }

  return { name, maxBytes, decode, encode, check }
}

// ---------------------------------------------------------------------------------------------
// Field rules: each returns the violation, or undefined when the value obeys the rule. A
// message's `check` chains them with `??`, so it reports the first broken rule.

export function violation (code: EncodeErrorCode, field: string, reason: string): FieldViolation {
  return { code, field, reason }
}

/** The message's version is the one this node speaks (PROTOCOL_VERSION unless the message has its own). */
export function ruleVersion (version: unknown, supported: number = PROTOCOL_VERSION): FieldViolation | undefined {
  if (version !== supported) {
    return violation('UNKNOWN_VERSION', 'version', `version ${String(version)} is not supported, this node speaks version ${supported}`)
  }
  return undefined
}

export function ruleBytes (field: string, value: unknown): FieldViolation | undefined {
  return value instanceof Uint8Array ? undefined : violation('INVALID_FIELD', field, `expected bytes, got ${typeof value}`)
}

export function ruleExactBytes (field: string, value: Uint8Array, length: number): FieldViolation | undefined {
  return ruleBytes(field, value) ??
    (value.length === length ? undefined : violation('INVALID_FIELD', field, `has ${value.length} bytes, expected exactly ${length}`))
}

/** `min`..`max` bytes; over `max` is OVERSIZED (a payload over its limit), under `min` INVALID_FIELD. */
export function ruleBoundedBytes (field: string, value: Uint8Array, min: number, max: number): FieldViolation | undefined {
  const bad = ruleBytes(field, value)
  if (bad !== undefined) return bad
  if (value.length > max) return violation('OVERSIZED', field, `has ${value.length} bytes, at most ${max} allowed`)
  if (value.length < min) return violation('INVALID_FIELD', field, min === 1 ? 'must not be empty' : `has ${value.length} bytes, at least ${min} required`)
  return undefined
}

export function ruleUint64 (field: string, value: bigint, min: bigint = 0n): FieldViolation | undefined {
  if (typeof value !== 'bigint') return violation('INVALID_FIELD', field, `expected a bigint, got ${typeof value}`)
  if (value < min || value > UINT64_MAX) return violation('INVALID_FIELD', field, `${value} is outside ${min}..2^64-1`)
  return undefined
}

export function ruleUint32 (field: string, value: number, min: number = 0, max: number = UINT32_MAX): FieldViolation | undefined {
  if (!Number.isInteger(value) || value < min || value > max) {
    return violation('INVALID_FIELD', field, `${String(value)} is not an integer in ${min}..${max}`)
  }
  return undefined
}

/** uint256 amounts: at most 32 bytes, no leading zero byte (zero is the empty string). */
export function ruleUint256 (field: string, value: Uint8Array): FieldViolation | undefined {
  const bad = ruleBytes(field, value)
  if (bad !== undefined) return bad
  if (value.length > UINT256_MAX_BYTES) return violation('OVERSIZED', field, `uint256 has ${value.length} bytes, at most ${UINT256_MAX_BYTES} allowed`)
  if (value.length > 0 && value[0] === 0) return violation('NON_CANONICAL', field, 'uint256 has a leading zero byte')
  return undefined
}

/** An enumerated value (a response status) is one of `allowed`. */
export function ruleOneOf (field: string, value: number, allowed: readonly number[]): FieldViolation | undefined {
  return allowed.includes(value) ? undefined : violation('INVALID_FIELD', field, `${value} is not one of ${allowed.join(', ')}`)
}

/** Whether every byte is zero: a reference that names nothing (a chain's first link, an unset bytes32). */
export function isAllZero (bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0)
}
