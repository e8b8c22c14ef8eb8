/**
 * Wire limits of poi protocol version 1.
 *
 * Every decoder checks these before trusting a byte from the network, and every encoder
 * checks them before sending, so a node never publishes what its peers would reject.
 * Raising a limit is a protocol change: old peers would reject the larger messages.
 */

/**
 * Version carried in every wire message. A decoder rejects any other value, so a
 * network running a changed encoding never half-understands this one.
 */
export const PROTOCOL_VERSION = 1

/** One KiB, to write limits the way they are specified. */
const KIB = 1024

/**
 * Largest input carried inline in a task announcement. Larger inputs travel as a stream
 * message and the task carries only its 32-byte reference: gossip copies every message to
 * every peer of the mesh, so big payloads belong on request/response streams.
 */
export const MAX_INLINE_INPUT_BYTES = 64 * KIB

/** Model-specific parameters (sampling settings, shapes): small by nature, bounded so they cannot smuggle an input past the input limit. */
export const MAX_PARAMS_BYTES = 4 * KIB

/** Largest canonical output carried inline in an attestation or certificate, for the same reason as the input limit. */
export const MAX_INLINE_OUTPUT_BYTES = 64 * KIB

/**
 * modelId is the CID of the model manifest. A CIDv1 with a sha2-256 multihash is 36 bytes;
 * 64 leaves room for a longer hash without admitting arbitrary blobs.
 */
export const MAX_MODEL_ID_BYTES = 64

/**
 * Operators an epoch can hold, which bounds the signer bitmap of a certificate
 * (one bit per operator, LSB first within each byte).
 */
export const MAX_OPERATORS = 1024

/** Bitmap bytes needed for MAX_OPERATORS operators (128). */
export const MAX_SIGNER_BITMAP_BYTES = MAX_OPERATORS / 8

/** Task id: the task's EIP-712 digest (protocols/wire/task.ts taskIdOf). */
export const TASK_ID_BYTES = 32
/** keccak256 of the canonical output. */
export const RESULT_HASH_BYTES = 32
/** Stream reference (message id) of the output. */
export const OUTPUT_REF_BYTES = 32
/** Stream reference (message id) of an input that is not inline. */
export const INPUT_REF_BYTES = 32
/** Ethereum address. */
export const ADDRESS_BYTES = 20
/** ERC-8004 validation request hash a task may name (bytes32). */
export const VALIDATION_REQUEST_BYTES = 32
/** secp256k1 signature r ‖ s ‖ v, as viem returns it for EIP-712. */
export const REQUESTER_SIGNATURE_BYTES = 65
/** Compressed G2 point of the Ethereum BLS12-381 scheme. */
export const BLS_SIGNATURE_BYTES = 96

/** Quorum shares are expressed in basis points out of this total. */
export const BPS_DENOMINATOR = 10_000

/**
 * Room for everything but the variable payloads: tags, length prefixes, 64-bit varints
 * (10 bytes each), fixed-size hashes, addresses and signatures. The fixed part of the largest
 * message is under 400 bytes, so 1 KiB never cuts a valid message.
 */
export const MESSAGE_HEADROOM_BYTES = 1 * KIB

/** Largest encoded TaskAnnouncement: inline input + params + fixed fields. Checked before decoding. */
export const MAX_TASK_ANNOUNCEMENT_BYTES = MAX_INLINE_INPUT_BYTES + MAX_PARAMS_BYTES + MAX_MODEL_ID_BYTES + MESSAGE_HEADROOM_BYTES

/** Largest encoded Attestation: inline output + fixed fields. Checked before decoding. */
export const MAX_ATTESTATION_BYTES = MAX_INLINE_OUTPUT_BYTES + MESSAGE_HEADROOM_BYTES

/** Largest encoded QuorumCertificate: inline output + signer bitmap + fixed fields. Checked before decoding. */
export const MAX_QUORUM_CERTIFICATE_BYTES = MAX_INLINE_OUTPUT_BYTES + MAX_SIGNER_BITMAP_BYTES + MESSAGE_HEADROOM_BYTES

/** Largest value of a protobuf uint64 field (chainId, deadline, nonce, epoch). */
export const UINT64_MAX = (1n << 64n) - 1n

/** Largest value of a protobuf uint32 field. */
export const UINT32_MAX = 0xffff_ffff
