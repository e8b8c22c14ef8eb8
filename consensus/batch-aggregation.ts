/**
 * Aggregation of operators' batch signatures into a batch certificate (issue 15, DESIGN §14).
 *
 * A batch certificate is a task QC's twin over one batch digest,
 *   keccak256(abi.encode("POI_BATCH_V1", chainId, taskManager, root, epoch, summaryHash)),
 * so every operator who signs the batch signs the same 32 bytes and one BLS aggregate covers
 * them all. Unlike a task there is no per-batch quorum: the network's quorumBps of the epoch's
 * stake (TaskManager.submitBatch uses the same), and at least minSigners signers, as for tasks.
 *
 * Pure state machine, as TaskAggregation: no network, no timers, no pairings. The caller checks
 * each signature against `signatureSet()` (BufferedVerifier, off the event loop) before add();
 * a signature over another summary, root or epoch hashes to another message and fails there.
 */
import bls from './bls.js'
import { BLS_SIGNATURE_BYTES, BPS_DENOMINATOR } from '../protocols/wire/index.js'
import { batchDigest } from './batch.js'
import { decodeSignerBitmap, encodeSignerBitmap } from './bitmap.js'
import { DEFAULT_MIN_SIGNERS } from './constants.js'
import { AggregationError } from './errors.js'
import { blsSign } from './keys.js'
import { operatorPublicKeys, type OperatorSet } from './operator-set.js'
import type { SignatureSet } from './signature-sets.js'

type Hex = `0x${string}`

/** What identifies the batch an operator signs: its root, epoch and settlement summary hash. */
export interface BatchSigningFields {
  root: Hex
  epoch: bigint
  summaryHash: Hex
}

/** One operator's BLS signature over a batch digest. */
export interface BatchSignatureShare {
  operatorIndex: number
  /** 96-byte compressed G2 signature over batchDigest(domain, root, epoch, summaryHash). */
  blsSig: Uint8Array
}

/** The batch's quorum certificate: what TaskManager.submitBatch checks with one pairing. */
export interface BatchQuorumCertificate extends BatchSigningFields {
  /** Operators who signed (encodeSignerBitmap, canonical). */
  signerBitmap: Uint8Array
  /** Aggregate of the signers' signatures (96-byte compressed G2). */
  aggregateSig: Uint8Array
  signedStake: bigint
  totalStake: bigint
}

export type BatchAddResult =
  | { kind: 'accepted' }
  | { kind: 'duplicate' }
  | { kind: 'unknown-operator' }

export interface BatchAggregationParameters extends BatchSigningFields {
  /** The operator set of the batch's epoch (the epoch of its leaves' certificates). */
  operatorSet: OperatorSet
  /** The network's quorum, basis points of the epoch's stake (TaskManager.quorumBps). */
  quorumBps: number
  /** Fewest distinct signers (default DEFAULT_MIN_SIGNERS, as for tasks). */
  minSigners?: number
}

/** The message an operator signs for a batch (32 bytes). */
export function batchSigningMessage (operatorSet: OperatorSet, fields: BatchSigningFields): Uint8Array {
  return batchDigest(operatorSet.domain, fields.root, fields.epoch, fields.summaryHash)
}

/** Signs a batch as operator `operatorIndex` of `operatorSet` (whose epoch must be the batch's). */
export function signBatch (secretKey: Uint8Array, operatorSet: OperatorSet, fields: BatchSigningFields, operatorIndex: number): BatchSignatureShare {
  if (fields.epoch !== operatorSet.epoch) throw new AggregationError(`the batch is of epoch ${fields.epoch} but the operator set is of epoch ${operatorSet.epoch}`)
  if (operatorSet.operators[operatorIndex] === undefined) throw new AggregationError(`operator ${operatorIndex} is not in the set of epoch ${operatorSet.epoch}`)
  return { operatorIndex, blsSig: Uint8Array.from(blsSign(secretKey, batchSigningMessage(operatorSet, fields))) }
}

export class BatchAggregation {
  readonly operatorSet: OperatorSet
  readonly fields: BatchSigningFields
  readonly quorumBps: number
  readonly minSigners: number
  private readonly message: Uint8Array
  private readonly shares = new Map<number, Uint8Array>()

  constructor (params: BatchAggregationParameters) {
    const { operatorSet, quorumBps, minSigners = DEFAULT_MIN_SIGNERS } = params
    if (!Number.isInteger(quorumBps) || quorumBps < 1 || quorumBps > BPS_DENOMINATOR) {
      throw new AggregationError(`quorumBps must be an integer in 1..${BPS_DENOMINATOR}, got ${quorumBps}`)
    }
    if (!Number.isInteger(minSigners) || minSigners < 1) throw new AggregationError(`minSigners must be a positive integer, got ${minSigners}`)
    if (params.epoch !== operatorSet.epoch) {
      throw new AggregationError(`the batch is of epoch ${params.epoch} but the operator set is of epoch ${operatorSet.epoch}: aggregate with the set of the leaves' epoch`)
    }
    this.operatorSet = operatorSet
    this.fields = { root: params.root, epoch: params.epoch, summaryHash: params.summaryHash }
    this.quorumBps = quorumBps
    this.minSigners = minSigners
    this.message = batchSigningMessage(operatorSet, this.fields)
  }

  /**
   * The set that proves `share` signed THIS batch (root, epoch and summary), or null when it
   * cannot be checked (unknown operator, wrong signature length): verify it before add().
   */
  signatureSet (share: BatchSignatureShare): SignatureSet | null {
    const operator = this.operatorSet.operators[share.operatorIndex]
    if (operator === undefined || !(share.blsSig instanceof Uint8Array) || share.blsSig.length !== BLS_SIGNATURE_BYTES) return null
    return { publicKey: operator.blsPublicKey, message: this.message, signature: share.blsSig }
  }

  /** Records a share whose signature the caller has verified against signatureSet(share). */
  add (share: BatchSignatureShare): BatchAddResult {
    if (this.operatorSet.operators[share.operatorIndex] === undefined) return { kind: 'unknown-operator' }
    if (this.shares.has(share.operatorIndex)) return { kind: 'duplicate' }
    this.shares.set(share.operatorIndex, Uint8Array.from(share.blsSig))
    return { kind: 'accepted' }
  }

  get signers (): number[] { return [...this.shares.keys()].sort((a, b) => a - b) }

  get signedStake (): bigint {
    return this.signers.reduce((sum, i) => sum + this.operatorSet.operators[i]!.stake, 0n)
  }

  /** Whether the signers meet the quorum: the network's share of the stake and minSigners. */
  quorumReached (): boolean {
    return this.shares.size >= this.minSigners &&
      this.signedStake * BigInt(BPS_DENOMINATOR) >= BigInt(this.quorumBps) * this.operatorSet.totalStake
  }

  /** True when every operator of the epoch signed (the grace window can end early). */
  allSigned (): boolean { return this.shares.size === this.operatorSet.operators.length }

  /** Aggregates the shares. Throws AggregationError without quorum. */
  buildCertificate (): BatchQuorumCertificate {
    if (!this.quorumReached()) {
      throw new AggregationError(`batch ${this.fields.root}: ${this.shares.size} signers with ${this.signedStake} of ${this.operatorSet.totalStake} stake, ` +
        `below the quorum (${this.quorumBps}/${BPS_DENOMINATOR}, at least ${this.minSigners} signers): wait for more signatures`)
    }
    const signers = this.signers
    let aggregateSig: Uint8Array
    try {
      aggregateSig = bls.aggregateSignatures(signers.map(i => this.shares.get(i)!))
    } catch (err) {
      throw new AggregationError(`cannot aggregate the signatures of batch ${this.fields.root}: ${(err as Error).message}; were the shares verified before add()?`)
    }
    return {
      ...this.fields,
      signerBitmap: encodeSignerBitmap(signers),
      aggregateSig: Uint8Array.from(aggregateSig),
      signedStake: this.signedStake,
      totalStake: this.operatorSet.totalStake
    }
  }
}

export type VerifyBatchCertificateResult = { ok: true, signers: number[], signedStake: bigint } | { ok: false, reason: string }

/**
 * Checks a batch certificate received from the network against the operator set of its epoch:
 * bitmap, quorum and signer count from the set (never from the certificate), and the aggregate
 * signature (with `checkSignature: false` the caller verifies batchCertificateSignatureSet off
 * the event loop). Never throws.
 */
export function verifyBatchCertificate (qc: BatchQuorumCertificate, operatorSet: OperatorSet, options: { quorumBps: number, minSigners?: number, checkSignature?: boolean }): VerifyBatchCertificateResult {
  try {
    if (qc.epoch !== operatorSet.epoch) return { ok: false, reason: `batch certificate epoch ${qc.epoch} does not match operator set epoch ${operatorSet.epoch}` }
    const bitmap = decodeSignerBitmap(qc.signerBitmap, operatorSet.operators.length)
    if (!bitmap.ok) return bitmap
    const signers = bitmap.signers
    const signedStake = signers.reduce((sum, i) => sum + operatorSet.operators[i]!.stake, 0n)
    const minSigners = options.minSigners ?? DEFAULT_MIN_SIGNERS
    if (signers.length < minSigners) return { ok: false, reason: `${signers.length} signers, at least ${minSigners} required` }
    if (signedStake * BigInt(BPS_DENOMINATOR) < BigInt(options.quorumBps) * operatorSet.totalStake) {
      return { ok: false, reason: `signers hold ${signedStake} of ${operatorSet.totalStake} stake, below the quorum of ${options.quorumBps}/${BPS_DENOMINATOR}` }
    }
    if (options.checkSignature === false) return { ok: true, signers, signedStake }
    const set = batchCertificateSignatureSet(qc, operatorSet)
    if (set === null) return { ok: false, reason: 'the aggregate signature or the signers\' keys are malformed' }
    const signature = bls.Signature.fromBytes(set.signature, undefined, true)
    if (!signature.verify(bls.PublicKey.fromBytes(set.publicKey), set.message)) {
      return { ok: false, reason: 'aggregate signature does not verify for the signers in the bitmap on this batch root, summary, epoch and domain' }
    }
    return { ok: true, signers, signedStake }
  } catch (err) {
    return { ok: false, reason: `batch certificate could not be verified: ${(err as Error).message}` }
  }
}

/** The signature set proving a batch certificate's aggregate signature, or null when it cannot be built. */
export function batchCertificateSignatureSet (qc: BatchSigningFields & Pick<BatchQuorumCertificate, 'signerBitmap' | 'aggregateSig'>, operatorSet: OperatorSet): SignatureSet | null {
  try {
    const bitmap = decodeSignerBitmap(qc.signerBitmap, operatorSet.operators.length)
    if (!bitmap.ok || bitmap.signers.length === 0 || qc.aggregateSig.length !== BLS_SIGNATURE_BYTES) return null
    const keys = operatorPublicKeys(operatorSet)
    const publicKey = bls.PublicKey.aggregate(bitmap.signers.map(i => keys[i]!)).toBytes()
    return { publicKey, message: batchSigningMessage(operatorSet, qc), signature: qc.aggregateSig }
  } catch {
    return null
  }
}

