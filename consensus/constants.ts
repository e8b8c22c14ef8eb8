/**
 * Sizes and defaults of the BLS consensus layer.
 *
 * Scheme: Ethereum consensus BLS, ciphersuite `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`
 * (the @chainsafe/bls default), public keys in G1, signatures in G2. What the wire carries
 * (the signature length BLS_SIGNATURE_BYTES, quorum shares out of BPS_DENOMINATOR) is defined
 * once, in protocols/wire.
 */

/** Compressed G1 point. */
export const BLS_PUBLIC_KEY_LENGTH = 48
/** Scalar, big-endian. */
export const BLS_SECRET_KEY_LENGTH = 32

/** taskId, resultHash and outputRef are all keccak256 / sha256 sized. */
export const HASH_LENGTH = 32

/** The only Attestation / QuorumCertificate wire version this code produces and accepts. */
export const ATTESTATION_VERSION = 1
export const CERTIFICATE_VERSION = 1

/** Domain tags: first ABI field of each signed message, so no signature can be reused as another kind. */
export const ATTESTATION_DOMAIN_TAG = 'POI_ATTESTATION_V1'
export const PROOF_OF_POSSESSION_DOMAIN_TAG = 'POI_POP_V1'

/** DESIGN §5: two thirds of the stake, rounded up in basis points. */
export const DEFAULT_QUORUM_BPS = 6667
/**
 * DESIGN §5: a QC needs at least 3 signers whatever their stake, so one or two whales cannot
 * certify a result alone.
 */
export const DEFAULT_MIN_SIGNERS = 3
