/**
 * The /poi/stream/1/ protocol: its id, frame bounds, statuses and timeouts. Message limits
 * are wire facts (protocols/wire/stream-constants.ts).
 */
import { MAX_STREAM_MESSAGE_BYTES } from '../wire/index.js'

/** Protocol id of the fetch-by-id protocol; the version is part of the id (js-libp2p style). */
export const STREAM_PROTOCOL = '/poi/stream/1/'

/** A request is a version and one 32-byte id: 64 bytes is ample and keeps a server's read tiny. */
export const MAX_STREAM_REQUEST_BYTES = 64

/** A response is a status and at most one message. */
export const MAX_STREAM_RESPONSE_BYTES = MAX_STREAM_MESSAGE_BYTES + 16

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
