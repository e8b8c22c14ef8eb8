/**
 * consensus: BLS keys and proofs of possession, attestations, operator sets, signature
 * verification (batched, off the main thread), quorum aggregation, QC and equivocation checks.
 *
 * Trust boundaries:
 * - untrusted: every Attestation / QuorumCertificate / EquivocationEvidence / genesis file and
 *   every SignatureSet; the verify* functions return false or a reason and never throw on them.
 * - trusted: an OperatorSet from parseGenesis / loadGenesis (keys validated, proofs of possession
 *   verified) or createOperatorSet (local data, keys validated); attestations passed to
 *   TaskAggregation.add, which the caller has verified first.
 */
export * from './constants.js'
export { InvalidPublicKeyError, InvalidSecretKeyError, AttestationFieldError, GenesisError, AggregationError, VerifierError, BatchFormatError } from './errors.js'
export {
  generateBlsSecretKey, blsSecretKeyFromBytes, blsSecretKeyFromHex, blsSecretKeyToHex, blsPublicKeyOf, blsSign,
  deserializeBlsPublicKey, validateBlsPublicKey, isValidBlsPublicKey, type BlsPublicKey
} from './keys.js'
export { PublicKeyCache, PUBLIC_KEY_CACHE_MAX_ENTRIES } from './pubkey-cache.js'
export { type SigningDomain, assertSigningDomain } from './domain.js'
export {
  type AttestationFields, type SignAttestationParameters,
  attestationMessage, assertAttestationFields, signAttestation, attestationSignatureSet
} from './attestation.js'
export {
  type G1Point, type G2Point, Eip2537EncodingError, EIP2537_FP_LENGTH, EIP2537_G1_LENGTH, EIP2537_G2_LENGTH,
  g1ToEip2537, g1FromEip2537, g2ToEip2537, g2FromEip2537, encodeG1, encodeG2, decodeG1, decodeG2
} from './eip2537.js'
export { proofOfPossessionMessage, signProofOfPossession, verifyProofOfPossession } from './proof-of-possession.js'
export {
  type Operator, type OperatorSet, type GenesisJson, type CreateOperatorSetParameters,
  parseGenesis, loadGenesis, genesisToJson, writeGenesis, createOperatorSet, operatorPublicKeys
} from './operator-set.js'
export { type SignatureSet, verifySignatureSets, MIN_SETS_TO_BATCH } from './signature-sets.js'
export {
  BufferedVerifier, type BufferedVerifierOptions,
  MAX_BUFFER_WAIT_MS, MAX_BUFFERED_SETS, DEFAULT_VERIFIER_WORKERS
} from './verifier.js'
export { encodeSignerBitmap, decodeSignerBitmap, type DecodedBitmap } from './bitmap.js'
export { TaskAggregation, type TaskAggregationParameters, type AddResult, type AggregationStatus } from './aggregation.js'
export { verifyCertificate, certificateSignatureSet, type VerifyCertificateOptions, type VerifyCertificateResult } from './certificate.js'
export { type EquivocationEvidence, verifyEquivocationEvidence } from './equivocation.js'
export {
  BATCH_DOMAIN_TAG, TAB_SEQUENCE_LIMIT, SEQUENCES_PER_WORD, TAB_CHARGE_COMPONENTS, VALIDATION_COMPONENTS,
  type BatchLeaf, type ModelCharge, type TabCharge, type BatchValidation, type BatchSummary,
  BatchTree, batchLeafHash, verifyBatchProof, assertBatchOrder, batchSummaryHash, batchDigest, sequenceWords
} from './batch.js'
export {
  BatchAggregation, signBatch, batchSigningMessage, verifyBatchCertificate, batchCertificateSignatureSet,
  type BatchSigningFields, type BatchSignatureShare, type BatchQuorumCertificate, type BatchAddResult,
  type BatchAggregationParameters, type VerifyBatchCertificateResult
} from './batch-aggregation.js'
