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
/**
 * What a task asks to be proved by (issue 16, DESIGN §15), signed with it: a quorum certificate
 * of the operators (`replicated`), a Groth16 proof of the model's circuit (`zk`), or both,
 * agreeing on the result. The wire carries the number; contracts/src/TaskManager.sol the same.
 */
export const TASK_TIERS = { replicated: 0, zk: 1, both: 2 } as const
export type TaskTier = keyof typeof TASK_TIERS
/** The tier numbers, by number. */
export const TASK_TIER_NAMES: readonly TaskTier[] = ['replicated', 'zk', 'both']
/** A zk or both task's Poseidon commitment of its input: one BN254 field element, as 32 bytes big-endian. */
export const INPUT_COMMITMENT_BYTES = 32
/** The BN254 scalar field r (Groth16's public signals and circuit values live below it). */
export const BN254_SCALAR_FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617n
/** The BN254 base field q (a Groth16 proof's point coordinates live below it). */
export const BN254_BASE_FIELD = 21888242871839275222246405745257275088696311157297823662689037894645226208583n
/**
 * A Groth16 proof on the wire (ZkProofAnnouncement.proof): 8 coordinates of 32 bytes big-endian,
 * a.x a.y b.x.c1 b.x.c0 b.y.c1 b.y.c0 c.x c.y, the order of the on-chain verifier's calldata
 * (contracts/zk-verifier.ts proofCalldata). Each is below BN254_BASE_FIELD.
 */
export const ZK_PROOF_BYTES = 256
/** One coordinate of a proof point, or one field element: 32 bytes big-endian. */
export const ZK_FIELD_ELEMENT_BYTES = 32
/** The Poseidon commitment of a zk task's output tensor (public signal 2), below BN254_SCALAR_FIELD. */
export const OUTPUT_COMMITMENT_BYTES = 32
/** Stream reference of a proof body in its prover's `proofs` channel: keccak256 of the body. */
export const PROOF_REF_BYTES = 32
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

/** Largest encoded ZkProofBody: inline output + proof + fixed fields. Checked before decoding. */
export const MAX_ZK_PROOF_BODY_BYTES = MAX_INLINE_OUTPUT_BYTES + ZK_PROOF_BYTES + MESSAGE_HEADROOM_BYTES

/** Largest encoded ZkProofAnnouncement: a body and its 32-byte reference. Checked before decoding. */
export const MAX_ZK_PROOF_ANNOUNCEMENT_BYTES = MAX_ZK_PROOF_BODY_BYTES + PROOF_REF_BYTES + 2

/** Largest value of a protobuf uint64 field (chainId, deadline, nonce, epoch). */
export const UINT64_MAX = (1n << 64n) - 1n

/** Largest value of a protobuf uint32 field. */
export const UINT32_MAX = 0xffff_ffff

// ── batches and credit tabs (issue 15) ──────────────────────────────────────────────────────
/**
 * Leaves in one batch. A proposal carries its leaves (operators check each against a
 * certificate they hold), about 104 bytes each, so 1024 leaves are about 104 KiB and the whole
 * proposal stays well under one gossip RPC (GOSSIP_MAX_RPC_BYTES, 1 MiB); hashing the tree is
 * 2,047 keccaks (a few ms). The benchmark goes to 256 leaves per batch, past which the
 * gas per task is already dominated by what grows per requester and per model owner, not per
 * leaf: 1024 leaves 4 times that room. Also bounds validations (at most one per leaf).
 */
export const MAX_BATCH_LEAVES = 1024
/**
 * Requesters (tabs) in one batch: each costs an ecrecover and ~400 bytes of calldata on chain;
 * an aggregator closes a batch when it reaches this many requesters.
 */
export const MAX_BATCH_TABS = 256
/** Models one requester pays for in one batch (ModelCharge entries per tab); the aggregator closes a batch at this. */
export const MAX_TAB_MODELS = 16
/**
 * Settled-sequence bitmap words one tab carries (256 sequences each): a span of 4,096 of one
 * requester's sequences in one batch. A tab's tasks live at most a task TTL (minutes), so a
 * batch holds a narrow, recent span; a wider one would pay calldata and a storage slot per word
 * (the aggregator closes the batch instead).
 */
export const MAX_TAB_SEQUENCE_WORDS = 16
/** Tab sequences (a tab task's nonce) lie in 1 … VOUCHER_SEQUENCE_LIMIT - 1 (consensus TAB_SEQUENCE_LIMIT, spec15: 2^40); other tasks' nonces are at least this. */
export const VOUCHER_SEQUENCE_LIMIT = 1n << 40n
/** A voucher's EIP-712 signature (r ‖ s ‖ v), like a task's. */
export const VOUCHER_SIGNATURE_BYTES = REQUESTER_SIGNATURE_BYTES
/** A batch's Merkle root, a summary hash, a model key, an ERC-8004 request hash: bytes32. */
export const BATCH_HASH_BYTES = 32
/** Stream reference of a batch's leaves (empty when none). */
export const BATCH_REF_BYTES = 32

/**
 * Encoded size bounds of the entries of batch messages, with their protobuf overhead (tag and
 * length bytes, varints at their widest): what the message bounds below add up.
 */
const UINT256_FIELD_BYTES = 34
const BYTES32_FIELD_BYTES = 34
const UINT64_FIELD_BYTES = 11
const UINT32_FIELD_BYTES = 6
/** taskId, resultHash, outputRef (or requestHash) and the entry's own tag and length. */
const BATCH_LEAF_ENTRY_BYTES = 3 * BYTES32_FIELD_BYTES + 2
/** modelKey, count, fees, two deadlines, the entry's tag and length. */
const MODEL_CHARGE_ENTRY_BYTES = BYTES32_FIELD_BYTES + UINT32_FIELD_BYTES + UINT256_FIELD_BYTES + 2 * UINT64_FIELD_BYTES + 2
/** requester, cumulative, sequence, signature, firstWord, the entry's tag and (up to 3-byte) length. */
const TAB_CHARGE_FIXED_BYTES = (ADDRESS_BYTES + 2) + UINT256_FIELD_BYTES + UINT64_FIELD_BYTES + (REQUESTER_SIGNATURE_BYTES + 2) + UINT64_FIELD_BYTES + 4
/** Tabs, their bitmap words and model charges (at most one per leaf: every charge counts one leaf or more) and the validations. */
const BATCH_SUMMARY_MAX_BYTES = MAX_BATCH_TABS * (TAB_CHARGE_FIXED_BYTES + MAX_TAB_SEQUENCE_WORDS * UINT256_FIELD_BYTES) +
  MAX_BATCH_LEAVES * MODEL_CHARGE_ENTRY_BYTES + MAX_BATCH_LEAVES * BATCH_LEAF_ENTRY_BYTES

/** Largest encoded BatchProposal (about 480 KiB): leaves, summary and fixed fields. Checked before decoding. */
export const MAX_BATCH_PROPOSAL_BYTES = MAX_BATCH_LEAVES * BATCH_LEAF_ENTRY_BYTES + BATCH_SUMMARY_MAX_BYTES + MESSAGE_HEADROOM_BYTES
/** Largest encoded BatchSignature: fixed fields only. */
export const MAX_BATCH_SIGNATURE_BYTES = MESSAGE_HEADROOM_BYTES
/** Largest encoded BatchCertificate: summary, signer bitmap and fixed fields. */
export const MAX_BATCH_CERTIFICATE_BYTES = BATCH_SUMMARY_MAX_BYTES + MAX_SIGNER_BITMAP_BYTES + MESSAGE_HEADROOM_BYTES
/** Largest message on the batches gossip topic: one of the three in an envelope (tag and 3-byte length). */
export const MAX_BATCH_GOSSIP_BYTES = Math.max(MAX_BATCH_PROPOSAL_BYTES, MAX_BATCH_CERTIFICATE_BYTES) + 4
