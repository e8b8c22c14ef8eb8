import { to0xHex } from './bytes.js'
import { errorWithCode } from './errors.js'

/**
 * Amounts (stake, fees) travel as big-endian unsigned byte strings of at most
 * 32 bytes, with no leading zero bytes, so each value has exactly one encoding.
 */
export const UINT256_MAX_BYTES = 32

/** A value that is not a uint256, or bytes that are not its one encoding. */
export class Uint256Error extends errorWithCode('ERR_UINT256') {}

export function uint256ToBytes (value: bigint): Uint8Array<ArrayBuffer> {
  if (value < 0n) throw new Uint256Error(`uint256 cannot be negative: ${value}`)
  if (value >= 1n << 256n) throw new Uint256Error(`value does not fit in uint256: ${value}`)
  if (value === 0n) return new Uint8Array(0)
  let hex = value.toString(16)
  if (hex.length % 2 === 1) hex = '0' + hex
  return Uint8Array.from(Buffer.from(hex, 'hex'))
}

/** A uint256 as exactly 32 bytes big-endian (a bytes32 or a field element on the wire), not the shortest form. */
export function uint256ToBytes32 (value: bigint): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(32)
  const be = uint256ToBytes(value)
  out.set(be, 32 - be.length)
  return out
}

export function bytesToUint256 (bytes: Uint8Array): bigint {
  if (bytes.length > UINT256_MAX_BYTES) throw new Uint256Error(`uint256 has ${bytes.length} bytes, at most ${UINT256_MAX_BYTES} allowed`)
  if (bytes.length > 0 && bytes[0] === 0) throw new Uint256Error('uint256 has a leading zero byte (non-canonical)')
  if (bytes.length === 0) return 0n
  return BigInt(to0xHex(bytes))
}
