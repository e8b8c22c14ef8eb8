/**
 * Feeless off-chain streams (DESIGN §8): channels of signed, hash-linked messages, referenced
 * on-chain and in tasks by their 32-byte msgId, fetched from peers over /poi/stream/1/.
 *
 * Trust boundaries:
 * - bytes from a peer are untrusted: `decodeStreamMessage` checks structure,
 *   `verifyStreamMessage` the author; `fetchStreamMessage` does both and checks the answer
 *   hashes to the requested id before returning anything.
 * - a StreamStore only holds verified, correctly linked messages, so its reads are trusted.
 */
export * from './constants.js'
export {
  StreamServer, STREAM_EXCHANGE, fetchStreamMessage, fetchStreamMessageByPayload,
  encodeStreamRequest, decodeStreamRequest, encodeStreamResponse, decodeStreamResponse
} from './stream-protocol.js'
/** @deprecated A fetch fails with the ExchangeError every exchange throws; this is its old name. */
export { ExchangeError as StreamFetchError } from '../exchange/index.js'
export { MemoryMessageSource } from './memory-source.js'
export type {
  StreamFetchErrorCode, StreamServerInit, StreamMessageSource, FetchStreamMessageOptions, FetchedStreamMessage, StreamLibp2p
} from './stream-protocol.js'
