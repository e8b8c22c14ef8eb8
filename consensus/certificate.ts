/**
 * Off-chain verification of a QuorumCertificate against the operator set of its epoch: what a
 * light client (requester) runs before trusting a result. Every field of the QC is untrusted;
 * stake is recomputed from the set, never read from the QC. Never throws: bad input yields
 * { ok: false, reason }.
 */
import bls from './bls.js'
import type { Signature } from '@chainsafe/bls/types'
import { BLS_SIGNATURE_BYTES, BPS_DENOMINATOR, bytesToUint256, type QuorumCertificate } from '../protocols/wire/index.js'
import { decodeSignerBitmap } from './bitmap.js'
import { attestationMessage } from './attestation.js'
import {
  CERTIFICATE_VERSION, DEFAULT_MIN_SIGNERS, DEFAULT_QUORUM_BPS,
  HASH_LENGTH
} from './constants.js'
import { operatorPublicKeys, type OperatorSet } from './operator-set.js'
import type { SignatureSet } from './signature-sets.js'

export type VerifyCertificateOptions = {
  /** Stake share required, basis points (default DEFAULT_QUORUM_BPS = 6667); use the task's quorumBps. */
  quorumBps?: number
  /** Fewest signers accepted (default DEFAULT_MIN_SIGNERS = 3). */
  minSigners?: number
  /**
   * false: every check but the aggregate signature's pairing, which the caller runs on
   * certificateSignatureSet (a gossip validator, off the main thread). Default true.
   */
  checkSignature?: boolean
}

export type VerifyCertificateResult =
  | { ok: true, signers: number[], signedStake: bigint }
  | { ok: false, reason: string }

export function verifyCertificate (qc: QuorumCertificate, operatorSet: OperatorSet, options: VerifyCertificateOptions = {}): VerifyCertificateResult {
  try {
    return check(qc, operatorSet, options)
  } catch (err) {
    // check() guards every field; this only catches the unforeseen, so it is reported, not hidden
    return { ok: false, reason: `certificate could not be verified: ${(err as Error).message}` }
  }
}

function check (qc: QuorumCertificate, operatorSet: OperatorSet, options: VerifyCertificateOptions): VerifyCertificateResult {
  const quorumBps = options.quorumBps ?? DEFAULT_QUORUM_BPS
  const minSigners = options.minSigners ?? DEFAULT_MIN_SIGNERS
  if (!Number.isInteger(quorumBps) || quorumBps < 1 || quorumBps > BPS_DENOMINATOR) {
    return { ok: false, reason: `quorumBps must be an integer in 1..${BPS_DENOMINATOR}, got ${quorumBps}` }
  }

  if (qc.version !== CERTIFICATE_VERSION) return { ok: false, reason: `unsupported certificate version ${qc.version}` }
  for (const field of ['taskId', 'resultHash', 'outputRef'] as const) {
    if (!(qc[field] instanceof Uint8Array) || qc[field].length !== HASH_LENGTH) return { ok: false, reason: `${field} must be ${HASH_LENGTH} bytes` }
  }
  if (qc.epoch !== operatorSet.epoch) {
    return { ok: false, reason: `certificate epoch ${qc.epoch} does not match operator set epoch ${operatorSet.epoch}` }
  }

  const bitmap = decodeSignerBitmap(qc.signerBitmap, operatorSet.operators.length)
  if (!bitmap.ok) return bitmap
  const signers = bitmap.signers

  let claimedSigned: bigint
  let claimedTotal: bigint
  try {
    claimedSigned = bytesToUint256(qc.signedStake)
    claimedTotal = bytesToUint256(qc.totalStake)
  } catch (err) {
    return { ok: false, reason: `malformed stake field: ${(err as Error).message}` }
  }
  if (claimedTotal !== operatorSet.totalStake) {
    return { ok: false, reason: `totalStake ${claimedTotal} does not match the epoch's total stake ${operatorSet.totalStake}` }
  }
  const signedStake = signers.reduce((sum, index) => sum + operatorSet.operators[index].stake, 0n)
  if (claimedSigned !== signedStake) {
    return { ok: false, reason: `signedStake ${claimedSigned} does not match the signers' stake ${signedStake}` }
  }
  if (signers.length < minSigners) {
    return { ok: false, reason: `${signers.length} signers, at least ${minSigners} required` }
  }
  if (signedStake * BigInt(BPS_DENOMINATOR) < BigInt(quorumBps) * operatorSet.totalStake) {
    return { ok: false, reason: `signers hold ${signedStake} of ${operatorSet.totalStake} stake, below the quorum of ${quorumBps}/${BPS_DENOMINATOR}` }
  }

  if (!(qc.aggregateSig instanceof Uint8Array) || qc.aggregateSig.length !== BLS_SIGNATURE_BYTES) {
    return { ok: false, reason: `aggregateSig must be ${BLS_SIGNATURE_BYTES} bytes` }
  }
  let signature: Signature
  try {
    signature = bls.Signature.fromBytes(qc.aggregateSig, undefined, true)
  } catch (err) {
    return { ok: false, reason: `aggregateSig is not a valid G2 point: ${(err as Error).message}` }
  }
  if (options.checkSignature === false) return { ok: true, signers, signedStake }
  const keys = operatorPublicKeys(operatorSet)
  const message = attestationMessage(operatorSet.domain, qc)
  if (!signature.verifyAggregate(signers.map(index => keys[index]), message)) {
    return { ok: false, reason: 'aggregate signature does not verify for the signers in the bitmap on this task, result, epoch and domain' }
  }
  return { ok: true, signers, signedStake }
}

/**
 * The signature set that proves `qc`'s aggregate signature: the signers' aggregated public key,
 * the attestation message of its task, result and epoch, and the aggregate signature; null when
 * it cannot be built (bitmap or fields malformed, keys that aggregate to the identity). Run it
 * after verifyCertificate with `checkSignature: false`, which checks everything else.
 */
export function certificateSignatureSet (qc: QuorumCertificate, operatorSet: OperatorSet): SignatureSet | null {
  try {
    const bitmap = decodeSignerBitmap(qc.signerBitmap, operatorSet.operators.length)
    if (!bitmap.ok || bitmap.signers.length === 0) return null
    const keys = operatorPublicKeys(operatorSet)
    const publicKey = bls.PublicKey.aggregate(bitmap.signers.map(index => keys[index])).toBytes()
    return { publicKey, message: attestationMessage(operatorSet.domain, qc), signature: qc.aggregateSig }
  } catch {
    return null
  }
}
