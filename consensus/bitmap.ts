/**
 * Signer bitmap of a QuorumCertificate: bit i (LSB first within each byte) set = operator i
 * signed. Canonical form has no trailing zero bytes, so each signer set has exactly one
 * encoding (the QC's hash, and the contract's calldata, never vary for the same signers).
 */

export function encodeSignerBitmap (signers: Iterable<number>): Uint8Array<ArrayBuffer> {
  const indices = [...signers]
  for (const index of indices) {
    if (!Number.isInteger(index) || index < 0) throw new RangeError(`signer index must be a non-negative integer, got ${index}`)
  }
  const length = indices.length === 0 ? 0 : Math.max(...indices) + 1
  const bitmap = new Uint8Array(Math.ceil(length / 8))
  for (const index of indices) bitmap[index >> 3] |= 1 << (index & 7)
  return bitmap
}

export type DecodedBitmap = { ok: true, signers: number[] } | { ok: false, reason: string }

/** Signer indices in ascending order, or why the bitmap is not canonical for a set of `operatorCount`. */
export function decodeSignerBitmap (bitmap: Uint8Array, operatorCount: number): DecodedBitmap {
  if (bitmap.length === 0) return { ok: false, reason: 'signer bitmap is empty' }
  if (bitmap[bitmap.length - 1] === 0) return { ok: false, reason: 'signer bitmap has a trailing zero byte (non-canonical)' }
  if (bitmap.length > Math.ceil(operatorCount / 8)) {
    return { ok: false, reason: `signer bitmap has ${bitmap.length} bytes, the epoch has only ${operatorCount} operators` }
  }
  const signers: number[] = []
  for (let byte = 0; byte < bitmap.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      if ((bitmap[byte] & (1 << bit)) === 0) continue
      const index = byte * 8 + bit
      if (index >= operatorCount) return { ok: false, reason: `signer bitmap names operator ${index}, the epoch has only ${operatorCount} operators` }
      signers.push(index)
    }
  }
  return { ok: true, signers }
}
