/**
 * Conversions between the compressed BLS12-381 points of @chainsafe/bls (what keys, signatures
 * and the wire use) and the EIP-2537 encoding the precompiles and contracts/src/BLS12381.sol take.
 *
 * EIP-2537: each Fp is 64 bytes big-endian (16 zero bytes, then the 48-byte value), an Fp2 is
 * c0 then c1, the point at infinity is all zeros. blst's uncompressed forms are G1 x‖y and
 * G2 x.c1‖x.c0‖y.c1‖y.c0 (48 bytes each, c1 first), with the infinity flag 0x40 in the first byte.
 * The objects below are solady's flattened structs (`BLS.G1Point`, `BLS.G2Point`) as viem wants
 * them for contract calls: each Fp split in a high word `_a` (top 16 bytes zero) and a low word `_b`.
 *
 * Trust: these are encodings, not validations. Decoding checks that a point is on the curve (blst
 * refuses anything else) but not that it is in the prime-order subgroup, and the point at
 * infinity passes: callers validate keys with `validateBlsPublicKey` and leave signatures to the
 * pairing, which does the subgroup check (off-chain blst, on-chain the precompile).
 */
import bls from './bls.js'
import { PointFormat } from '@chainsafe/bls/types'
import { bytesToHex, hexToBytes, isHex, type Hex } from 'viem'
import { BLS_SIGNATURE_BYTES, errorWithCode } from '../protocols/wire/index.js'
import { BLS_PUBLIC_KEY_LENGTH } from './constants.js'

/** A base-field element in EIP-2537: 48 significant bytes left-padded to 64. */
export const EIP2537_FP_LENGTH = 64
export const EIP2537_G1_LENGTH = 2 * EIP2537_FP_LENGTH
export const EIP2537_G2_LENGTH = 4 * EIP2537_FP_LENGTH
/** Bytes of a field element as blst serialises it. */
const FP_LENGTH = 48
const FP_PADDING = EIP2537_FP_LENGTH - FP_LENGTH
const WORD_LENGTH = 32
/** blst flags in the first byte of a serialised point (ZCash format). */
const COMPRESSED_FLAG = 0x80
const INFINITY_FLAG = 0x40
const FLAG_MASK = 0xe0

/** Bytes that are not an encoding of a point on the curve, or an encoding of the wrong size. */
export class Eip2537EncodingError extends errorWithCode('ERR_EIP2537_ENCODING') {
  readonly group: 'G1' | 'G2'

  constructor (group: 'G1' | 'G2', message: string) {
    super(`${group} point: ${message}`)
    this.group = group
  }
}

/** solady `BLS.G1Point`: x and y, each as (high word, low word). */
export interface G1Point {
  x_a: Hex
  x_b: Hex
  y_a: Hex
  y_b: Hex
}

/** solady `BLS.G2Point`: x = x_c0 + x_c1·u and y likewise, each Fp as (high word, low word). */
export interface G2Point {
  x_c0_a: Hex
  x_c0_b: Hex
  x_c1_a: Hex
  x_c1_b: Hex
  y_c0_a: Hex
  y_c0_b: Hex
  y_c1_a: Hex
  y_c1_b: Hex
}

/**
 * What differs between the two groups; everything else is one conversion over these. `blstOrder`
 * maps EIP-2537's Fp order (x then y, each Fp2 as c0 then c1) to blst's, which puts c1 first.
 */
interface Group<P> {
  name: 'G1' | 'G2'
  /** Compressed bytes (48 for G1, 96 for G2). */
  compressedLength: number
  /** Raw EIP-2537 bytes (128 for G1, 256 for G2). */
  rawLength: number
  /** solady's struct fields, in EIP-2537 word order. */
  fields: ReadonlyArray<keyof P>
  /** Names of the Fp coordinates in EIP-2537 order, for error messages. */
  coordinates: readonly string[]
  /** blstOrder[i]: where blst's uncompressed form holds EIP-2537's i-th Fp. */
  blstOrder: readonly number[]
  /** The point of blst bytes (compressed or uncompressed); throws if it is not on the curve. */
  fromBytes: (bytes: Uint8Array) => { toBytes: (format: PointFormat) => Uint8Array }
}

const G1: Group<G1Point> = {
  name: 'G1',
  compressedLength: BLS_PUBLIC_KEY_LENGTH,
  rawLength: EIP2537_G1_LENGTH,
  fields: ['x_a', 'x_b', 'y_a', 'y_b'],
  coordinates: ['x', 'y'],
  blstOrder: [0, 1],
  fromBytes: (bytes) => bls.PublicKey.fromBytes(bytes, undefined, false)
}

const G2: Group<G2Point> = {
  name: 'G2',
  compressedLength: BLS_SIGNATURE_BYTES,
  rawLength: EIP2537_G2_LENGTH,
  fields: ['x_c0_a', 'x_c0_b', 'x_c1_a', 'x_c1_b', 'y_c0_a', 'y_c0_b', 'y_c1_a', 'y_c1_b'],
  coordinates: ['x.c0', 'x.c1', 'y.c0', 'y.c1'],
  // blst x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0
  blstOrder: [1, 0, 3, 2],
  fromBytes: (bytes) => bls.Signature.fromBytes(bytes, undefined, false)
}

/** Compressed (48-byte) G1 point → EIP-2537 struct. Throws Eip2537EncodingError if it is not a point on the curve. */
export function g1ToEip2537 (compressed: Uint8Array): G1Point {
  return decodeG1(rawFromCompressed(G1, compressed))
}

/** EIP-2537 struct (or its 128 raw bytes) → compressed 48-byte G1 point. Throws Eip2537EncodingError if it is not on the curve. */
export function g1FromEip2537 (point: G1Point | Uint8Array): Uint8Array {
  return compressedFromRaw(G1, point instanceof Uint8Array ? checkedRaw(G1, point) : encodeG1(point))
}

/** Compressed (96-byte) G2 point → EIP-2537 struct. Throws Eip2537EncodingError if it is not a point on the curve. */
export function g2ToEip2537 (compressed: Uint8Array): G2Point {
  return decodeG2(rawFromCompressed(G2, compressed))
}

/** EIP-2537 struct (or its 256 raw bytes) → compressed 96-byte G2 point. Throws Eip2537EncodingError if it is not on the curve. */
export function g2FromEip2537 (point: G2Point | Uint8Array): Uint8Array {
  return compressedFromRaw(G2, point instanceof Uint8Array ? checkedRaw(G2, point) : encodeG2(point))
}

/**
 * The 128 raw EIP-2537 bytes of a G1 point: `abi.encode(BLS.G1Point)`, the precompile input.
 * A Uint8Array argument is a compressed 48-byte point.
 */
export function encodeG1 (point: G1Point | Uint8Array): Uint8Array {
  return point instanceof Uint8Array ? rawFromCompressed(G1, point) : rawFromStruct(G1, point)
}

/**
 * The 256 raw EIP-2537 bytes of a G2 point: `abi.encode(BLS.G2Point)`, the precompile input.
 * A Uint8Array argument is a compressed 96-byte point.
 */
export function encodeG2 (point: G2Point | Uint8Array): Uint8Array {
  return point instanceof Uint8Array ? rawFromCompressed(G2, point) : rawFromStruct(G2, point)
}

/** 128 raw EIP-2537 bytes → struct (layout only; no curve check). */
export function decodeG1 (raw: Uint8Array): G1Point {
  return structFromRaw(G1, raw)
}

/** 256 raw EIP-2537 bytes → struct (layout only; no curve check). */
export function decodeG2 (raw: Uint8Array): G2Point {
  return structFromRaw(G2, raw)
}

/** A solady point struct: every field a 32-byte word. */
type PointStruct<P> = { [K in keyof P]: Hex }

function structFromRaw<P extends PointStruct<P>> (group: Group<P>, raw: Uint8Array): P {
  const words = bytesToWords(checkedRaw(group, raw))
  const point: Partial<PointStruct<P>> = {}
  group.fields.forEach((field, i) => { point[field] = words[i] })
  return point as P
}

function rawFromStruct<P extends PointStruct<P>> (group: Group<P>, point: P): Uint8Array {
  return wordsToBytes(group.fields.map(field => point[field]), group.name)
}

function rawFromCompressed<P> (group: Group<P>, compressed: Uint8Array): Uint8Array {
  if (compressed.length !== group.compressedLength) {
    throw new Eip2537EncodingError(group.name, `a compressed ${group.name} point is ${group.compressedLength} bytes, got ${compressed.length}`)
  }
  let uncompressed: Uint8Array
  try {
    uncompressed = group.fromBytes(compressed).toBytes(PointFormat.uncompressed)
  } catch (err) {
    throw new Eip2537EncodingError(group.name, `${bytesToHex(compressed)} is not a compressed point on the curve: ${(err as Error).message}`)
  }
  const raw = new Uint8Array(group.rawLength)
  if ((uncompressed[0] & INFINITY_FLAG) !== 0) return raw
  group.blstOrder.forEach((from, to) => raw.set(uncompressed.subarray(from * FP_LENGTH, (from + 1) * FP_LENGTH), to * EIP2537_FP_LENGTH + FP_PADDING))
  return raw
}

function compressedFromRaw<P> (group: Group<P>, raw: Uint8Array): Uint8Array {
  if (raw.every(b => b === 0)) return infinityCompressed(group.compressedLength)
  const uncompressed = new Uint8Array(group.blstOrder.length * FP_LENGTH)
  // In blst's order, so that the first bad coordinate reported is the first blst would read.
  for (let at = 0; at < group.blstOrder.length; at++) {
    const index = group.blstOrder.indexOf(at)
    uncompressed.set(unpadFp(raw, index, group.name, group.coordinates[index]), at * FP_LENGTH)
  }
  try {
    return group.fromBytes(uncompressed).toBytes(PointFormat.compressed)
  } catch (err) {
    throw new Eip2537EncodingError(group.name, `${bytesToHex(raw)} is not a point on the curve: ${(err as Error).message}`)
  }
}

function infinityCompressed (length: number): Uint8Array {
  const out = new Uint8Array(length)
  out[0] = COMPRESSED_FLAG | INFINITY_FLAG
  return out
}

/** The 48-byte value of the index-th 64-byte Fp of `raw`; its 16 padding bytes must be zero. */
function unpadFp (raw: Uint8Array, index: number, group: 'G1' | 'G2', coordinate: string): Uint8Array {
  const start = index * EIP2537_FP_LENGTH
  if (raw.subarray(start, start + FP_PADDING).some(b => b !== 0)) {
    throw new Eip2537EncodingError(group, `${coordinate}: the top ${FP_PADDING} bytes of an EIP-2537 field element must be zero`)
  }
  const value = raw.slice(start + FP_PADDING, start + EIP2537_FP_LENGTH)
  // blst reads flag bits from the first byte; a field element below p never has them set
  if ((value[0] & FLAG_MASK) !== 0) {
    throw new Eip2537EncodingError(group, `${coordinate} is not below the field modulus`)
  }
  return value
}

function checkedRaw<P> (group: Group<P>, raw: Uint8Array): Uint8Array {
  if (raw.length !== group.rawLength) throw new Eip2537EncodingError(group.name, `an EIP-2537 ${group.name} point is ${group.rawLength} bytes, got ${raw.length}`)
  return raw
}

function wordsToBytes (words: Hex[], group: 'G1' | 'G2'): Uint8Array {
  const out = new Uint8Array(words.length * WORD_LENGTH)
  words.forEach((word, i) => {
    if (!isHex(word, { strict: true }) || word.length !== 2 + 2 * WORD_LENGTH) {
      throw new Eip2537EncodingError(group, `word ${i} of the ${group} point must be a 0x-prefixed 32-byte hex string, got ${String(word)}`)
    }
    out.set(hexToBytes(word), i * WORD_LENGTH)
  })
  return out
}

function bytesToWords (raw: Uint8Array): Hex[] {
  const words: Hex[] = []
  for (let i = 0; i < raw.length; i += WORD_LENGTH) words.push(bytesToHex(raw.subarray(i, i + WORD_LENGTH)))
  return words
}
