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
import bls from '@chainsafe/bls'
import { PointFormat } from '@chainsafe/bls/types'
import { bytesToHex, hexToBytes, isHex, type Hex } from 'viem'
import { BLS_SIGNATURE_BYTES, PoiError } from '../protocols/wire/index.js'
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
export class Eip2537EncodingError extends PoiError {
  static readonly code = 'ERR_EIP2537_ENCODING'
  declare readonly code: typeof Eip2537EncodingError.code
  readonly group: 'G1' | 'G2'

  constructor (group: 'G1' | 'G2', message: string) {
    super(Eip2537EncodingError.code, `${group} point: ${message}`)
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

const G1_FIELDS = ['x_a', 'x_b', 'y_a', 'y_b'] as const satisfies ReadonlyArray<keyof G1Point>
const G2_FIELDS = ['x_c0_a', 'x_c0_b', 'x_c1_a', 'x_c1_b', 'y_c0_a', 'y_c0_b', 'y_c1_a', 'y_c1_b'] as const satisfies ReadonlyArray<keyof G2Point>

/** Compressed (48-byte) G1 point → EIP-2537 struct. Throws Eip2537EncodingError if it is not a point on the curve. */
export function g1ToEip2537 (compressed: Uint8Array): G1Point {
  return decodeG1(g1RawFromCompressed(compressed))
}

/** EIP-2537 struct (or its 128 raw bytes) → compressed 48-byte G1 point. Throws Eip2537EncodingError if it is not on the curve. */
export function g1FromEip2537 (point: G1Point | Uint8Array): Uint8Array {
  const raw = point instanceof Uint8Array ? checkedRaw(point, EIP2537_G1_LENGTH, 'G1') : encodeG1(point)
  if (raw.every(b => b === 0)) return infinityCompressed(BLS_PUBLIC_KEY_LENGTH)
  const uncompressed = new Uint8Array(2 * FP_LENGTH)
  uncompressed.set(unpadFp(raw, 0, 'G1', 'x'), 0)
  uncompressed.set(unpadFp(raw, 1, 'G1', 'y'), FP_LENGTH)
  try {
    return bls.PublicKey.fromBytes(uncompressed, undefined, false).toBytes(PointFormat.compressed)
  } catch (err) {
    throw new Eip2537EncodingError('G1', `${bytesToHex(raw)} is not a point on the curve: ${(err as Error).message}`)
  }
}

/** Compressed (96-byte) G2 point → EIP-2537 struct. Throws Eip2537EncodingError if it is not a point on the curve. */
export function g2ToEip2537 (compressed: Uint8Array): G2Point {
  return decodeG2(g2RawFromCompressed(compressed))
}

/** EIP-2537 struct (or its 256 raw bytes) → compressed 96-byte G2 point. Throws Eip2537EncodingError if it is not on the curve. */
export function g2FromEip2537 (point: G2Point | Uint8Array): Uint8Array {
  const raw = point instanceof Uint8Array ? checkedRaw(point, EIP2537_G2_LENGTH, 'G2') : encodeG2(point)
  if (raw.every(b => b === 0)) return infinityCompressed(BLS_SIGNATURE_BYTES)
  // EIP-2537 order x.c0, x.c1, y.c0, y.c1 → blst order x.c1, x.c0, y.c1, y.c0
  const uncompressed = new Uint8Array(4 * FP_LENGTH)
  uncompressed.set(unpadFp(raw, 1, 'G2', 'x.c1'), 0)
  uncompressed.set(unpadFp(raw, 0, 'G2', 'x.c0'), FP_LENGTH)
  uncompressed.set(unpadFp(raw, 3, 'G2', 'y.c1'), 2 * FP_LENGTH)
  uncompressed.set(unpadFp(raw, 2, 'G2', 'y.c0'), 3 * FP_LENGTH)
  try {
    return bls.Signature.fromBytes(uncompressed, undefined, false).toBytes(PointFormat.compressed)
  } catch (err) {
    throw new Eip2537EncodingError('G2', `${bytesToHex(raw)} is not a point on the curve: ${(err as Error).message}`)
  }
}

/**
 * The 128 raw EIP-2537 bytes of a G1 point: `abi.encode(BLS.G1Point)`, the precompile input.
 * A Uint8Array argument is a compressed 48-byte point.
 */
export function encodeG1 (point: G1Point | Uint8Array): Uint8Array {
  if (point instanceof Uint8Array) return g1RawFromCompressed(point)
  return wordsToBytes(G1_FIELDS.map(f => point[f]), 'G1')
}

/**
 * The 256 raw EIP-2537 bytes of a G2 point: `abi.encode(BLS.G2Point)`, the precompile input.
 * A Uint8Array argument is a compressed 96-byte point.
 */
export function encodeG2 (point: G2Point | Uint8Array): Uint8Array {
  if (point instanceof Uint8Array) return g2RawFromCompressed(point)
  return wordsToBytes(G2_FIELDS.map(f => point[f]), 'G2')
}

/** 128 raw EIP-2537 bytes → struct (layout only; no curve check). */
export function decodeG1 (raw: Uint8Array): G1Point {
  const w = bytesToWords(checkedRaw(raw, EIP2537_G1_LENGTH, 'G1'))
  return { x_a: w[0], x_b: w[1], y_a: w[2], y_b: w[3] }
}

/** 256 raw EIP-2537 bytes → struct (layout only; no curve check). */
export function decodeG2 (raw: Uint8Array): G2Point {
  const w = bytesToWords(checkedRaw(raw, EIP2537_G2_LENGTH, 'G2'))
  return { x_c0_a: w[0], x_c0_b: w[1], x_c1_a: w[2], x_c1_b: w[3], y_c0_a: w[4], y_c0_b: w[5], y_c1_a: w[6], y_c1_b: w[7] }
}

function g1RawFromCompressed (compressed: Uint8Array): Uint8Array {
  if (compressed.length !== BLS_PUBLIC_KEY_LENGTH) {
    throw new Eip2537EncodingError('G1', `a compressed G1 point is ${BLS_PUBLIC_KEY_LENGTH} bytes, got ${compressed.length}`)
  }
  let uncompressed: Uint8Array
  try {
    uncompressed = bls.PublicKey.fromBytes(compressed, undefined, false).toBytes(PointFormat.uncompressed)
  } catch (err) {
    throw new Eip2537EncodingError('G1', `${bytesToHex(compressed)} is not a compressed point on the curve: ${(err as Error).message}`)
  }
  const raw = new Uint8Array(EIP2537_G1_LENGTH)
  if ((uncompressed[0] & INFINITY_FLAG) !== 0) return raw
  raw.set(uncompressed.subarray(0, FP_LENGTH), FP_PADDING)
  raw.set(uncompressed.subarray(FP_LENGTH), EIP2537_FP_LENGTH + FP_PADDING)
  return raw
}

function g2RawFromCompressed (compressed: Uint8Array): Uint8Array {
  if (compressed.length !== BLS_SIGNATURE_BYTES) {
    throw new Eip2537EncodingError('G2', `a compressed G2 point is ${BLS_SIGNATURE_BYTES} bytes, got ${compressed.length}`)
  }
  let u: Uint8Array
  try {
    u = bls.Signature.fromBytes(compressed, undefined, false).toBytes(PointFormat.uncompressed)
  } catch (err) {
    throw new Eip2537EncodingError('G2', `${bytesToHex(compressed)} is not a compressed point on the curve: ${(err as Error).message}`)
  }
  const raw = new Uint8Array(EIP2537_G2_LENGTH)
  if ((u[0] & INFINITY_FLAG) !== 0) return raw
  // blst x.c1 ‖ x.c0 ‖ y.c1 ‖ y.c0 → EIP-2537 x.c0 ‖ x.c1 ‖ y.c0 ‖ y.c1
  const order = [1, 0, 3, 2]
  order.forEach((from, to) => raw.set(u.subarray(from * FP_LENGTH, (from + 1) * FP_LENGTH), to * EIP2537_FP_LENGTH + FP_PADDING))
  return raw
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

function checkedRaw (raw: Uint8Array, length: number, group: 'G1' | 'G2'): Uint8Array {
  if (raw.length !== length) throw new Eip2537EncodingError(group, `an EIP-2537 ${group} point is ${length} bytes, got ${raw.length}`)
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
