/**
 * The protobuf wire-structure scan behind poi's one strict codec (codec.ts): step 2 of every
 * decode, for the gossip messages, stream messages and the request/response messages of
 * /poi/stream/1/, /poi/result/1/ and /poi/network/1/ alike.
 *
 * Trust boundary: `bytes` are untrusted and may be anything. The scan interprets only tags and
 * lengths (values are skipped, for the field rules to judge) and never throws: it reports what
 * it finds as neutral findings, which the codec maps to its error codes. Running it before the
 * generated protons decoder turns a cut field, a length past the end or a deprecated group into
 * a typed error instead of whatever the generic parser throws (or however deep it recurses).
 */
import { UINT32_MAX } from './constants.js'

export const WIRE_VARINT = 0
const WIRE_FIXED64 = 1
export const WIRE_LENGTH_DELIMITED = 2
const WIRE_FIXED32 = 5
/** The wire types poi's messages declare: integers and bytes, nothing fixed-width. */
export type WireType = typeof WIRE_VARINT | typeof WIRE_LENGTH_DELIMITED

/** A protobuf varint carries at most 64 bits: 10 groups of 7, the last one holding 1 bit. */
const MAX_VARINT_BYTES = 10
/** Each varint byte carries 7 bits of the value; the high bit says another byte follows. */
const VARINT_PAYLOAD_MASK = 0x7f
const VARINT_CONTINUATION_BIT = 0x80
const VARINT_BYTE_SCALE = 128
/** The last byte of a 10-byte varint may only hold bit 63: 0 or 1. */
const MAX_LAST_VARINT_BYTE = 1
/** A tag is `fieldNumber << 3 | wireType`: its low 3 bits take 8 wire type values. */
const WIRE_TYPE_VALUES = 8
/** Widths of the fixed wire types, which are only skipped. */
const FIXED64_BYTES = 8
const FIXED32_BYTES = 4

/**
 * What the scan can find:
 * - `truncated`: a varint or a declared length runs past the end of the bytes;
 * - `malformed`: bytes protobuf cannot parse as poi's messages: a varint longer than 10 bytes,
 *   a declared field with another wire type, a group (3, 4) or an undefined wire type (6, 7);
 * - `invalid-tag`: a well-formed varint no encoder writes as a tag: field number 0, or a tag
 *   over 32 bits;
 * - `varint-over-64-bits`: a 10-byte varint with bits above bit 63;
 * - `non-canonical`: parseable, but not what the canonical encoder writes: an unknown field
 *   number, or a field repeated or out of ascending order.
 * The first three end the scan; the scan goes on past the last two.
 */
export type WireFindingKind = WireFaultKind | 'varint-over-64-bits' | 'non-canonical'
/** The findings that end the scan. */
export type WireFaultKind = 'truncated' | 'malformed' | 'invalid-tag'

export interface WireFinding<K extends WireFindingKind = WireFindingKind> {
  readonly kind: K
  /**
   * The field whose tag, wire type or declared length is at fault; undefined when the fault is
   * in a varint (a tag or a value) rather than in what a field declares.
   */
  readonly fieldNumber: number | undefined
  /** What is wrong and where (byte offset), for an error message. */
  readonly reason: string
}

/**
 * The outcome of one scan. All three undefined: the structure is sound and canonical as far as
 * a scan can tell (values are for the field rules and the re-encoding to judge). A finding
 * noted before the scan ended precedes `fault` in the bytes.
 */
export interface WireScan {
  /** What ended the scan before the end of the bytes. */
  readonly fault: WireFinding<WireFaultKind> | undefined
  /** The first varint over 64 bits; its value is kept, inexact, and the scan goes on. */
  readonly firstOverflow: WireFinding<'varint-over-64-bits'> | undefined
  /** The first unknown, repeated or out-of-order field; the scan goes on. */
  readonly firstNonCanonical: WireFinding<'non-canonical'> | undefined
}

/** What the scan notes on its way: the first of each, kept once set. */
interface Notes {
  firstOverflow: WireScan['firstOverflow']
  firstNonCanonical: WireScan['firstNonCanonical']
}

interface Varint {
  /** Exact up to 2^53, which is all a tag or a length needs. */
  value: number
  next: number
}

function isFinding<K extends WireFindingKind> (read: Varint | WireFinding<K>): read is WireFinding<K> {
  return 'kind' in read
}

/** Reads a varint at `pos`; a finding returned ends the scan, an overflow is only noted. */
function readVarint (bytes: Uint8Array, pos: number, what: string, notes: Notes): Varint | WireFinding<'truncated' | 'malformed'> {
  let value = 0
  let scale = 1
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (pos + i >= bytes.length) {
      return { kind: 'truncated', fieldNumber: undefined, reason: `${what} varint at offset ${pos} is cut off at the end of the message` }
    }
    const b = bytes[pos + i]
    value += (b & VARINT_PAYLOAD_MASK) * scale
    scale *= VARINT_BYTE_SCALE
    if ((b & VARINT_CONTINUATION_BIT) === 0) {
      if (i === MAX_VARINT_BYTES - 1 && b > MAX_LAST_VARINT_BYTE) {
        notes.firstOverflow ??= { kind: 'varint-over-64-bits', fieldNumber: undefined, reason: `${what} varint at offset ${pos} exceeds 64 bits` }
      }
      return { value, next: pos + i + 1 }
    }
  }
  return { kind: 'malformed', fieldNumber: undefined, reason: `${what} varint at offset ${pos} is longer than ${MAX_VARINT_BYTES} bytes` }
}

/**
 * One pass over the top-level fields of `bytes`, checked against `fields` (the wire type of
 * each declared field number, as in the .proto file). A field number in `repeatable` (a
 * `repeated` field) may appear several times in a row, as the canonical encoder writes its
 * entries; anywhere else a repeat is non-canonical like for any other field.
 */
export function scanWire (bytes: Uint8Array, fields: ReadonlyMap<number, WireType>, repeatable: ReadonlySet<number> = new Set()): WireScan {
  const notes: Notes = { firstOverflow: undefined, firstNonCanonical: undefined }
  const end = (fault: WireFinding<WireFaultKind> | undefined): WireScan => ({ fault, ...notes })
  let pos = 0
  let lastField = 0
  while (pos < bytes.length) {
    const tagAt = pos
    const tag = readVarint(bytes, pos, 'field tag', notes)
    if (isFinding(tag)) return end(tag)
    pos = tag.next
    if (tag.value > UINT32_MAX) {
      return end({ kind: 'invalid-tag', fieldNumber: undefined, reason: `field tag at offset ${tagAt} exceeds 32 bits` })
    }
    const fieldNumber = Math.floor(tag.value / WIRE_TYPE_VALUES)
    const wireType = tag.value % WIRE_TYPE_VALUES
    if (fieldNumber === 0) {
      return end({ kind: 'invalid-tag', fieldNumber: undefined, reason: `field number 0 at offset ${tagAt}` })
    }
    const expected = fields.get(fieldNumber)
    if (expected !== undefined && expected !== wireType) {
      return end({ kind: 'malformed', fieldNumber, reason: `field ${fieldNumber} at offset ${tagAt} has wire type ${wireType}, expected ${expected}` })
    }
    if (expected === undefined) {
      notes.firstNonCanonical ??= { kind: 'non-canonical', fieldNumber, reason: `unknown field number ${fieldNumber} at offset ${tagAt}` }
    } else if (fieldNumber < lastField || (fieldNumber === lastField && !repeatable.has(fieldNumber))) {
      notes.firstNonCanonical ??= { kind: 'non-canonical', fieldNumber, reason: `field ${fieldNumber} at offset ${tagAt} is repeated or out of order` }
    }
    lastField = Math.max(lastField, fieldNumber)

    let length: number
    switch (wireType) {
      case WIRE_VARINT: {
        const value = readVarint(bytes, pos, `field ${fieldNumber}`, notes)
        if (isFinding(value)) return end(value)
        pos = value.next
        continue
      }
      case WIRE_LENGTH_DELIMITED: {
        const declared = readVarint(bytes, pos, `field ${fieldNumber} length`, notes)
        if (isFinding(declared)) return end(declared)
        pos = declared.next
        length = declared.value
        break
      }
      // Fixed widths are only ever skipped: poi declares none, but an unknown field of one is
      // parseable (and non-canonical).
      case WIRE_FIXED64:
        length = FIXED64_BYTES
        break
      case WIRE_FIXED32:
        length = FIXED32_BYTES
        break
      default:
        // 3 and 4 are the deprecated groups (never used by poi, and nested groups cost stack
        // depth to skip), 6 and 7 do not exist.
        return end({ kind: 'malformed', fieldNumber, reason: `wire type ${wireType} at offset ${tagAt} is not allowed` })
    }
    if (length > bytes.length - pos) {
      return end({ kind: 'truncated', fieldNumber, reason: `field ${fieldNumber} declares ${length} bytes at offset ${pos}, only ${bytes.length - pos} remain` })
    }
    pos += length
  }
  return end(undefined)
}

/**
 * Offset of the first byte where `a` and `b` differ (the shorter length if one is a prefix of
 * the other), or -1 if they are equal: where a received message leaves its canonical encoding.
 */
export function firstDifference (a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return a.length === b.length ? -1 : n
}
