/**
 * The /poi/stream/1/ protocol: its id, frame bounds and statuses. Message limits are wire facts
 * (protocols/wire/stream-constants.ts); time and stream bounds are the exchange defaults
 * (protocols/exchange/constants.ts).
 */
import { MAX_STREAM_MESSAGE_BYTES } from '../wire/index.js'
import { EXCHANGE_TIMEOUT_MS } from '../exchange/index.js'

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
 * Bound of one fetch, the exchange default (EXCHANGE_TIMEOUT_MS): a 1 MiB message is one short
 * exchange. Exported because the relay bounds how long it holds stream data by it.
 */
export const STREAM_REQUEST_TIMEOUT_MS = EXCHANGE_TIMEOUT_MS
