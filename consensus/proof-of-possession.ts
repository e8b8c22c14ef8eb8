/**
 * Proof of possession (DESIGN §3): each operator signs its own address and public key when it
 * registers. Without it, a rogue key pk' = pk_evil - pk_honest would let one operator forge an
 * aggregate signature "from" others.
 *
 * message = keccak256(abi.encode("POI_POP_V1", address, pubkey)), types (string, address, BLS.G1Point):
 * the key is its 128-byte EIP-2537 encoding (four bytes32 words), so OperatorRegistry hashes the
 * `BLS.G1Point` it receives with no decompression on-chain.
 * Separation from attestations comes from the domain tag inside the hashed message (the hash-to-
 * curve tag is the same POP ciphersuite for both, as the EIP-2537 contract path uses one tag).
 */
import { encodeAbiParameters, hexToBytes, isAddress, keccak256 } from 'viem'
import { BLS_SIGNATURE_BYTES } from '../protocols/wire/index.js'
import { BLS_PUBLIC_KEY_LENGTH, PROOF_OF_POSSESSION_DOMAIN_TAG } from './constants.js'
import { g1ToEip2537, type G1Point } from './eip2537.js'
import { AttestationFieldError } from './errors.js'
import { blsPublicKeyOf, blsSign } from './keys.js'
import { verifySignatureSets } from './signature-sets.js'

const POP_ABI = [
  { type: 'string' },
  { type: 'address' },
  {
    type: 'tuple',
    components: [{ name: 'x_a', type: 'bytes32' }, { name: 'x_b', type: 'bytes32' }, { name: 'y_a', type: 'bytes32' }, { name: 'y_b', type: 'bytes32' }]
  }
] as const

export function proofOfPossessionMessage (address: `0x${string}`, publicKey: Uint8Array): Uint8Array {
  if (!isAddress(address, { strict: false })) {
    throw new AttestationFieldError('address', `must be a 20-byte 0x address, got ${String(address)}`)
  }
  if (publicKey.length !== BLS_PUBLIC_KEY_LENGTH) {
    throw new AttestationFieldError('publicKey', `must be ${BLS_PUBLIC_KEY_LENGTH} bytes, got ${publicKey.length}`)
  }
  let point: G1Point
  try {
    point = g1ToEip2537(publicKey)
  } catch (err) {
    throw new AttestationFieldError('publicKey', (err as Error).message)
  }
  return hexToBytes(keccak256(encodeAbiParameters(POP_ABI, [PROOF_OF_POSSESSION_DOMAIN_TAG, address, point])))
}

/** 96-byte proof of possession of `secretKey` for the operator account `address`. */
export function signProofOfPossession (secretKey: Uint8Array, address: `0x${string}`): Uint8Array {
  return blsSign(secretKey, proofOfPossessionMessage(address, blsPublicKeyOf(secretKey)))
}

/** True only if `pop` is a valid signature by `publicKey` over (address, publicKey). Never throws. */
export function verifyProofOfPossession (publicKey: Uint8Array, address: `0x${string}`, pop: Uint8Array): boolean {
  if (pop.length !== BLS_SIGNATURE_BYTES) return false
  let message: Uint8Array
  try {
    message = proofOfPossessionMessage(address, publicKey)
  } catch {
    return false
  }
  return verifySignatureSets([{ publicKey, message, signature: pop }])[0] === true
}
