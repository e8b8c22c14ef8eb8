/**
 * BLS12-381 keys (Ethereum consensus scheme, blst-native through @chainsafe/bls).
 *
 * Trust boundary: secret keys come from the local keystore and are trusted once parsed here;
 * public key bytes come from genesis files, the chain or the wire and are untrusted until
 * `validateBlsPublicKey` (or `deserializeBlsPublicKey`) accepted them. The infinity point is
 * rejected: it would verify any aggregate it is added to.
 */
import bls from './bls.js'
import type { PublicKey } from '@chainsafe/bls/types'
import { bytesToHex, hexToBytes, isHex } from 'viem'
import { BLS_PUBLIC_KEY_LENGTH, BLS_SECRET_KEY_LENGTH } from './constants.js'
import { InvalidPublicKeyError, InvalidSecretKeyError } from './errors.js'

export type { PublicKey as BlsPublicKey } from '@chainsafe/bls/types'

/** A fresh secret key from the OS CSPRNG (32 bytes, big-endian scalar). */
export function generateBlsSecretKey (): Uint8Array {
  return bls.SecretKey.fromKeygen().toBytes()
}

/** Checks that `bytes` is a usable secret key (32 bytes, non-zero, below the group order) and returns a copy. */
export function blsSecretKeyFromBytes (bytes: Uint8Array): Uint8Array {
  if (bytes.length !== BLS_SECRET_KEY_LENGTH) {
    throw new InvalidSecretKeyError(`BLS secret key must be ${BLS_SECRET_KEY_LENGTH} bytes, got ${bytes.length}`)
  }
  try {
    return bls.SecretKey.fromBytes(bytes).toBytes()
  } catch (err) {
    // never echo the key bytes: they are secret
    throw new InvalidSecretKeyError(`BLS secret key is not a valid scalar (zero or not below the group order): ${(err as Error).message}`)
  }
}

export function blsSecretKeyFromHex (hex: string): Uint8Array {
  if (!isHex(hex, { strict: true })) {
    throw new InvalidSecretKeyError('BLS secret key must be a 0x-prefixed hex string')
  }
  return blsSecretKeyFromBytes(hexToBytes(hex))
}

export function blsSecretKeyToHex (secretKey: Uint8Array): `0x${string}` {
  return bytesToHex(blsSecretKeyFromBytes(secretKey))
}

/** Compressed (48-byte) G1 public key of a secret key. */
export function blsPublicKeyOf (secretKey: Uint8Array): Uint8Array {
  return secretKeyOf(secretKey).toPublicKey().toBytes()
}

/** Signs `message` (hashed to G2 with the POP ciphersuite tag); returns the 96-byte compressed signature. */
export function blsSign (secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return secretKeyOf(secretKey).sign(message).toBytes()
}

/**
 * Parses and validates an untrusted public key: exactly 48 bytes (compressed), on the curve,
 * in the prime-order subgroup, not the point at infinity.
 */
export function deserializeBlsPublicKey (bytes: Uint8Array): PublicKey {
  if (bytes.length !== BLS_PUBLIC_KEY_LENGTH) {
    throw new InvalidPublicKeyError(`BLS public key must be ${BLS_PUBLIC_KEY_LENGTH} bytes (compressed G1), got ${bytes.length}`)
  }
  try {
    // third argument: validate = infinity check + subgroup check
    return bls.PublicKey.fromBytes(bytes, undefined, true)
  } catch (err) {
    throw new InvalidPublicKeyError(`BLS public key ${bytesToHex(bytes)} is invalid: ${(err as Error).message}`)
  }
}

export function validateBlsPublicKey (bytes: Uint8Array): void {
  deserializeBlsPublicKey(bytes)
}

export function isValidBlsPublicKey (bytes: Uint8Array): boolean {
  try {
    deserializeBlsPublicKey(bytes)
    return true
  } catch {
    return false
  }
}

function secretKeyOf (secretKey: Uint8Array): ReturnType<typeof bls.SecretKey.fromBytes> {
  if (secretKey.length !== BLS_SECRET_KEY_LENGTH) {
    throw new InvalidSecretKeyError(`BLS secret key must be ${BLS_SECRET_KEY_LENGTH} bytes, got ${secretKey.length}`)
  }
  try {
    return bls.SecretKey.fromBytes(secretKey)
  } catch (err) {
    throw new InvalidSecretKeyError(`BLS secret key is not a valid scalar: ${(err as Error).message}`)
  }
}
