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
export type { StreamMessage } from './stream.js'
export {
  StreamMessageError, createStreamMessage, verifyStreamMessage, decodeStreamMessage, encodeStreamMessage,
  streamMessageId, streamMessageIdOfBytes, payloadRefOf, channelAddressOf, channelNameOf,
  streamMessageCid, msgIdFromCid
} from './message.js'
export type { StreamMessageErrorCode } from './message.js'
export {
  MessageDecodeError, MessageEncodeError, decodeCanonical, ruleVersion, ruleExactBytes, ruleBoundedBytes, ruleOneOf,
  WIRE_VARINT, WIRE_LENGTH_DELIMITED
} from './strict.js'
export type { MessageDecodeErrorCode, FieldRuleViolation, StrictCodec } from './strict.js'
export { requestOnce, serveOnce, ExchangeFailure, ExchangeServer } from './exchange.js'
export type { ExchangeFailureKind, ExchangeLibp2p, ExchangeServerInit, RequestOptions, ServeOptions } from './exchange.js'
export {
  StreamServer, StreamFetchError, fetchStreamMessage, fetchStreamMessageByPayload,
  encodeStreamRequest, decodeStreamRequest, encodeStreamResponse, decodeStreamResponse
} from './stream-protocol.js'
export { MemoryMessageSource } from './memory-source.js'
export type {
  StreamFetchErrorCode, StreamServerInit, StreamMessageSource, FetchStreamMessageOptions, FetchedStreamMessage, StreamLibp2p
} from './stream-protocol.js'
