/**
 * What an operator signs for a task result, and how an Attestation is built and checked.
 *
 * message = keccak256(abi.encode("POI_ATTESTATION_V1", chainId, taskManager, taskId,
 *                                resultHash, outputRef, epoch))
 * with ABI types (string, uint256, address, bytes32, bytes32, bytes32, uint64). The contract
 * rebuilds exactly these bytes, so off-chain and on-chain verification agree.
 */
import { bytesToHex, encodeAbiParameters, hexToBytes, keccak256 } from 'viem'
import type { Attestation } from '../protocols/wire/index.js'
import { ATTESTATION_DOMAIN_TAG, ATTESTATION_VERSION, HASH_LENGTH } from './constants.js'
import { assertSigningDomain, type SigningDomain } from './domain.js'
import { AttestationFieldError } from './errors.js'
import { blsSign } from './keys.js'
import type { OperatorSet } from './operator-set.js'
import type { SignatureSet } from './signature-sets.js'

/** The signed part of an attestation (and of a QC). */
export type AttestationFields = {
  taskId: Uint8Array
  resultHash: Uint8Array
  outputRef: Uint8Array
  epoch: bigint
}

const UINT64_LIMIT = 1n << 64n

const ATTESTATION_ABI = [
  { type: 'string' },
  { type: 'uint256' },
  { type: 'address' },
  { type: 'bytes32' },
  { type: 'bytes32' },
  { type: 'bytes32' },
  { type: 'uint64' }
] as const

/** Throws AttestationFieldError naming the first field that cannot be signed. */
export function assertAttestationFields (fields: AttestationFields): void {
  for (const name of ['taskId', 'resultHash', 'outputRef'] as const) {
    const value = fields[name]
    if (!(value instanceof Uint8Array) || value.length !== HASH_LENGTH) {
      throw new AttestationFieldError(name, `must be ${HASH_LENGTH} bytes, got ${value instanceof Uint8Array ? value.length : typeof value}`)
    }
  }
  if (typeof fields.epoch !== 'bigint' || fields.epoch < 0n || fields.epoch >= UINT64_LIMIT) {
    throw new AttestationFieldError('epoch', `must be a uint64 bigint, got ${String(fields.epoch)}`)
  }
}

/** The 32-byte message operators BLS-sign for a result. Throws AttestationFieldError on malformed fields. */
export function attestationMessage (domain: SigningDomain, fields: AttestationFields): Uint8Array {
  assertSigningDomain(domain)
  assertAttestationFields(fields)
  const encoded = encodeAbiParameters(ATTESTATION_ABI, [
    ATTESTATION_DOMAIN_TAG,
    domain.chainId,
    domain.taskManager,
    bytesToHex(fields.taskId),
    bytesToHex(fields.resultHash),
    bytesToHex(fields.outputRef),
    fields.epoch
  ])
  return hexToBytes(keccak256(encoded))
}

export type SignAttestationParameters = AttestationFields & {
  operatorIndex: number
  /** Canonical output, carried inline so receivers can recompute resultHash. */
  output: Uint8Array
}

/** Builds and signs a version-1 Attestation. */
export function signAttestation (secretKey: Uint8Array, domain: SigningDomain, params: SignAttestationParameters): Attestation {
  if (!Number.isInteger(params.operatorIndex) || params.operatorIndex < 0 || params.operatorIndex > 0xffff_ffff) {
    throw new AttestationFieldError('operatorIndex', `must be a uint32, got ${params.operatorIndex}`)
  }
  const message = attestationMessage(domain, params)
  return {
    version: ATTESTATION_VERSION,
    taskId: copy(params.taskId),
    resultHash: copy(params.resultHash),
    outputRef: copy(params.outputRef),
    epoch: params.epoch,
    operatorIndex: params.operatorIndex,
    blsSig: copy(blsSign(secretKey, message)),
    output: copy(params.output)
  }
}

/**
 * The signature set that proves `attestation`, or null when it cannot be checked at all
 * (unknown operator, wrong epoch, malformed fields): the gossip validator rejects those without
 * spending a pairing.
 */
export function attestationSignatureSet (attestation: Attestation, operatorSet: OperatorSet): SignatureSet | null {
  if (attestation.epoch !== operatorSet.epoch) return null
  const operator = operatorSet.operators[attestation.operatorIndex]
  if (operator === undefined) return null
  let message: Uint8Array
  try {
    message = attestationMessage(operatorSet.domain, attestation)
  } catch {
    return null
  }
  return { publicKey: operator.blsPublicKey, message, signature: attestation.blsSig }
}

function copy (bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(bytes)
}
