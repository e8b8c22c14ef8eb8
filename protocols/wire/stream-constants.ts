/**
 * Limits and names of poi stream messages (DESIGN §8); the /poi/stream/1/ protocol's own are in protocols/stream.
 * Raising a size limit is a protocol change: older peers reject the larger messages.
 */

/** Version carried in every stream message, request and response; any other value is rejected. */
export const STREAM_VERSION = 1

const KIB = 1024
const MIB = 1024 * KIB

/**
 * Largest payload of one stream message. Inputs above the 64 KiB inline limit of a task go
 * here; 1 MiB holds the inputs of the models this network runs (an OCR line image as float32,
 * 3×48×320×4 = 180 KiB; a VAD window is a few KiB) and keeps one message well under the
 * 4 MiB default frame bound of it-length-prefixed, so one message is one bounded read.
 * Larger data would span several messages of a channel.
 */
export const MAX_STREAM_PAYLOAD_BYTES = 1 * MIB

/** Channel names are labels ("inputs", "outputs"), not data. */
export const MAX_CHANNEL_NAME_BYTES = 64

/** sha256 message id and channel address. */
export const MSG_ID_BYTES = 32
export const CHANNEL_ADDRESS_BYTES = 32
/** keccak256 of a payload. */
export const PAYLOAD_REF_BYTES = 32
/** Raw Ed25519 public key. */
export const ED25519_PUBLIC_KEY_BYTES = 32
/** Ed25519 signature (RFC 8032). */
export const ED25519_SIGNATURE_BYTES = 64

/** prevId of the first message (seq 0) of every channel. */
export const GENESIS_PREV_ID: Uint8Array = new Uint8Array(MSG_ID_BYTES)

/**
 * Fixed fields of a message (tags, lengths, 32-byte hashes and key, 64-byte signature, a
 * 10-byte varint, the channel name) take under 300 bytes; 1 KiB never cuts a valid one.
 */
const STREAM_MESSAGE_HEADROOM_BYTES = 1 * KIB

/** Largest canonical StreamMessage, checked before any parsing. */
export const MAX_STREAM_MESSAGE_BYTES = MAX_STREAM_PAYLOAD_BYTES + STREAM_MESSAGE_HEADROOM_BYTES

/**
 * Domain tags. The author's key is its libp2p identity key, which also signs peer records and
 * noise handshakes; a fixed prefix keeps a stream signature from ever being valid as one of
 * those (and the other way round). The channel tag keeps channel addresses apart from any
 * other sha256 in the system.
 */
export const STREAM_SIGNATURE_DOMAIN = 'poi/stream/1/message'
export const STREAM_CHANNEL_DOMAIN = 'poi/stream/1/channel'

