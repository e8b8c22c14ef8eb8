/**
 * Limits and names of poi streams (DESIGN §8) and of the /poi/stream/1/ protocol.
 * Raising a size limit is a protocol change: older peers reject the larger messages.
 */

/** Version carried in every stream message, request and response; any other value is rejected. */
export const STREAM_VERSION = 1

const KIB = 1024
const MIB = 1024 * KIB

/** Protocol id of the fetch-by-id protocol; the version is part of the id (js-libp2p style). */
export const STREAM_PROTOCOL = '/poi/stream/1/'

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

/** A request is a version and one 32-byte id: 64 bytes is ample and keeps a server's read tiny. */
export const MAX_STREAM_REQUEST_BYTES = 64

/** A response is a status and at most one message. */
export const MAX_STREAM_RESPONSE_BYTES = MAX_STREAM_MESSAGE_BYTES + 16

/**
 * Domain tags. The author's key is its libp2p identity key, which also signs peer records and
 * noise handshakes; a fixed prefix keeps a stream signature from ever being valid as one of
 * those (and the other way round). The channel tag keeps channel addresses apart from any
 * other sha256 in the system.
 */
export const STREAM_SIGNATURE_DOMAIN = 'poi/stream/1/message'
export const STREAM_CHANNEL_DOMAIN = 'poi/stream/1/channel'

/** Status codes of StreamResponse.status. */
export const STREAM_STATUS = {
  FOUND: 0,
  NOT_FOUND: 1,
  BAD_REQUEST: 2
} as const

/**
 * Whole request/response exchange, dial excluded. A 1 MiB message on loopback takes
 * milliseconds; 10 s leaves room for a slow link without letting a stalled peer hold a
 * stream (and the caller) for long.
 */
export const STREAM_REQUEST_TIMEOUT_MS = 10_000

/**
 * Concurrent streams per connection for this protocol. A fetch is one short exchange; 32
 * inbound lets a peer pipeline a task's worth of fetches without letting it pin memory
 * (32 × 1 MiB at most in flight).
 */
export const STREAM_MAX_INBOUND_STREAMS = 32
export const STREAM_MAX_OUTBOUND_STREAMS = 32
