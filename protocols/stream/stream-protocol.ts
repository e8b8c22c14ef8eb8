/**
 * /poi/stream/1/: fetch one stream message from a peer, by message id or by payload reference.
 *
 * Request by msgId: the exact message a task's inputRef names. Request by payloadRef
 * (keccak256 of the payload): any stored message carrying that content, which is how an
 * output reference resolves whichever operator's channel holds the output (see payloadRefOf).
 *
 * Trust: the server's answer is untrusted. The client decodes it strictly, checks that it is
 * what was asked for (sha256 of the bytes = msgId, or keccak256 of the payload = payloadRef)
 * and that its author signed it, and only then returns it; anything else is an ExchangeError
 * (codes: StreamFetchErrorCode) and nothing is returned.
 */
import { logger } from '@libp2p/logger'
import {
  MAX_STREAM_MESSAGE_BYTES, MSG_ID_BYTES, PAYLOAD_REF_BYTES, STREAM_VERSION, decodeStreamMessage,
  payloadRefOf, streamMessageIdOfBytes, verifyStreamMessage, StreamMessageError, StreamRequest,
  StreamResponse, type StreamMessage, bytesEqual, defineCodec, ruleBoundedBytes, ruleExactBytes, ruleOneOf,
  ruleVersion, to0xHex, violation, WIRE_LENGTH_DELIMITED as L, WIRE_VARINT as V, type FieldViolation
} from '../wire/index.js'
import {
  MAX_STREAM_REQUEST_BYTES, MAX_STREAM_RESPONSE_BYTES, STREAM_PROTOCOL, STREAM_STATUS
} from './constants.js'
import {
  defineExchange, ExchangeServer, type ExchangeErrorCode, type ExchangeFetchOptions, type ExchangeLibp2p, type ExchangePeer,
  type ExchangeServerInit
} from '../exchange/index.js'

export type StreamLibp2p = ExchangeLibp2p

/** The codes a fetch of a stream message fails with (ExchangeError.code). */
export type StreamFetchErrorCode =
  | ExchangeErrorCode
  /** The peer does not have the message. Try another peer. */
  | 'NOT_FOUND'
  /** The returned message is not the one asked for: its hash differs from the requested id. */
  | 'WRONG_HASH'
  /** The returned message is the one asked for but fails its author check (bad signature, wrong author, bad field). */
  | 'INVALID_MESSAGE'

// ---------------------------------------------------------------------------------------------
// Wire codecs

const STATUSES = Object.values(STREAM_STATUS)
const EMPTY = new Uint8Array(0)

function checkRequest (req: StreamRequest): FieldViolation | undefined {
  const bad = ruleVersion(req.version, STREAM_VERSION)
  if (bad !== undefined) return bad
  const byId = req.msgId.length > 0
  const byPayload = req.payloadRef.length > 0
  if (byId === byPayload) return violation('INVALID_FIELD', 'msgId', 'set exactly one of msgId and payloadRef')
  return byId ? ruleExactBytes('msgId', req.msgId, MSG_ID_BYTES) : ruleExactBytes('payloadRef', req.payloadRef, PAYLOAD_REF_BYTES)
}

function checkResponse (res: StreamResponse): FieldViolation | undefined {
  const bad = ruleVersion(res.version, STREAM_VERSION) ?? ruleOneOf('status', res.status, STATUSES)
  if (bad !== undefined) return bad
  return res.status === STREAM_STATUS.FOUND
    ? ruleBoundedBytes('message', res.message, 1, MAX_STREAM_MESSAGE_BYTES)
    : ruleBoundedBytes('message', res.message, 0, 0)
}

const REQUEST_CODEC = defineCodec<StreamRequest>({
  name: 'StreamRequest',
  maxBytes: MAX_STREAM_REQUEST_BYTES,
  fields: { version: [1, V], msgId: [2, L], payloadRef: [3, L] },
  proto: StreamRequest,
  check: checkRequest
})

const RESPONSE_CODEC = defineCodec<StreamResponse>({
  name: 'StreamResponse',
  maxBytes: MAX_STREAM_RESPONSE_BYTES,
  fields: { version: [1, V], status: [2, V], message: [3, L] },
  proto: StreamResponse,
  check: checkResponse
})

export const encodeStreamRequest: (req: StreamRequest) => Uint8Array<ArrayBuffer> = REQUEST_CODEC.encode
export const decodeStreamRequest: (bytes: Uint8Array) => StreamRequest = REQUEST_CODEC.decode
export const encodeStreamResponse: (res: StreamResponse) => Uint8Array<ArrayBuffer> = RESPONSE_CODEC.encode
export const decodeStreamResponse: (bytes: Uint8Array) => StreamResponse = RESPONSE_CODEC.decode

const answer = (status: number, message: Uint8Array = EMPTY): StreamResponse =>
  ({ version: STREAM_VERSION, status, message: message as Uint8Array<ArrayBuffer> })

/** /poi/stream/1/: one StreamRequest, one StreamResponse. */
export const STREAM_EXCHANGE = defineExchange<StreamRequest, StreamResponse>({
  protocol: STREAM_PROTOCOL,
  request: REQUEST_CODEC,
  response: RESPONSE_CODEC,
  badRequest: answer(STREAM_STATUS.BAD_REQUEST),
  log: logger('poi:stream')
})

// ---------------------------------------------------------------------------------------------
// Server

/** Where a server finds messages: canonical bytes as stored (StreamStore implements this). */
export interface StreamMessageSource {
  getBytes: (msgId: Uint8Array) => Promise<Uint8Array | undefined>
  getBytesByPayloadRef: (payloadRef: Uint8Array) => Promise<Uint8Array | undefined>
}

export interface StreamServerInit extends Omit<ExchangeServerInit<StreamRequest, StreamResponse>, 'answer'> {
  messages: StreamMessageSource
}

/** Answers /poi/stream/1/ from a message source while started. */
export class StreamServer extends ExchangeServer<StreamRequest, StreamResponse> {
  constructor ({ messages, ...init }: StreamServerInit) {
    super(STREAM_EXCHANGE, {
      ...init,
      answer: async (req) => {
        const bytes = req.msgId.length > 0 ? await messages.getBytes(req.msgId) : await messages.getBytesByPayloadRef(req.payloadRef)
        return bytes === undefined ? answer(STREAM_STATUS.NOT_FOUND) : answer(STREAM_STATUS.FOUND, bytes)
      }
    })
  }
}

// ---------------------------------------------------------------------------------------------
// Client

/** The caller's signal and time limit (default EXCHANGE_TIMEOUT_MS). */
export type FetchStreamMessageOptions = Pick<ExchangeFetchOptions, 'signal' | 'timeoutMs'>

export interface FetchedStreamMessage {
  message: StreamMessage
  msgId: Uint8Array
}

async function fetchVerified (libp2p: Pick<StreamLibp2p, 'dialProtocol'>, peer: ExchangePeer, request: StreamRequest, ref: Uint8Array, options: FetchStreamMessageOptions): Promise<FetchedStreamMessage> {
  const subject = `stream message ${request.msgId.length > 0 ? '' : 'with payload '}${to0xHex(ref)}`
  const fail = (code: StreamFetchErrorCode, reason: string, cause?: unknown): Error => STREAM_EXCHANGE.error(code, peer, reason, { subject, cause })

  const response = await STREAM_EXCHANGE.fetch(libp2p, peer, request, { ...options, subject })
  if (response.status === STREAM_STATUS.NOT_FOUND) throw fail('NOT_FOUND', 'the peer does not have it; try another provider')

  const bytes = response.message
  const msgId = streamMessageIdOfBytes(bytes)
  // Identity first: bytes that are not what we asked for are never decoded further.
  if (request.msgId.length > 0 && !bytesEqual(msgId, request.msgId)) {
    throw fail('WRONG_HASH', `the peer answered with message ${to0xHex(msgId)}`)
  }
  let message: StreamMessage
  try {
    message = decodeStreamMessage(bytes)
  } catch (err) {
    throw fail('INVALID_MESSAGE', (err as Error).message, err)
  }
  if (request.payloadRef.length > 0) {
    const got = payloadRefOf(message.payload)
    if (!bytesEqual(got, request.payloadRef)) throw fail('WRONG_HASH', `the peer answered with a message whose payload hashes to ${to0xHex(got)}`)
  }
  try {
    await verifyStreamMessage(message)
  } catch (err) {
    if (err instanceof StreamMessageError) throw fail('INVALID_MESSAGE', err.message, err)
    throw err
  }
  return { message, msgId }
}

/**
 * Fetches message `msgId` from `peer` and returns it only once it is proven: its bytes hash to
 * `msgId` and its author signed it for its own channel. Throws ExchangeError otherwise
 * (NOT_FOUND, WRONG_HASH, INVALID_MESSAGE, INVALID_RESPONSE, OVERSIZED, TIMEOUT, ...).
 */
export async function fetchStreamMessage (libp2p: Pick<StreamLibp2p, 'dialProtocol'>, peer: ExchangePeer, msgId: Uint8Array, options: FetchStreamMessageOptions = {}): Promise<StreamMessage> {
  if (!(msgId instanceof Uint8Array) || msgId.length !== MSG_ID_BYTES) throw new TypeError(`msgId must be ${MSG_ID_BYTES} bytes`)
  const request: StreamRequest = { version: STREAM_VERSION, msgId: Uint8Array.from(msgId), payloadRef: new Uint8Array(0) }
  return (await fetchVerified(libp2p, peer, request, msgId, options)).message
}

/**
 * Fetches any message whose payload has keccak256 `payloadRef` (an output reference), proven
 * the same way: payload hash checked, author signature checked. Returns it with its msgId.
 */
export async function fetchStreamMessageByPayload (libp2p: Pick<StreamLibp2p, 'dialProtocol'>, peer: ExchangePeer, payloadRef: Uint8Array, options: FetchStreamMessageOptions = {}): Promise<FetchedStreamMessage> {
  if (!(payloadRef instanceof Uint8Array) || payloadRef.length !== PAYLOAD_REF_BYTES) throw new TypeError(`payloadRef must be ${PAYLOAD_REF_BYTES} bytes`)
  const request: StreamRequest = { version: STREAM_VERSION, msgId: new Uint8Array(0), payloadRef: Uint8Array.from(payloadRef) }
  return await fetchVerified(libp2p, peer, request, payloadRef, options)
}
