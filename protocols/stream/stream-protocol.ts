/**
 * /poi/stream/1/: fetch one stream message from a peer, by message id or by payload reference.
 *
 * Request by msgId: the exact message a task's inputRef names. Request by payloadRef
 * (keccak256 of the payload): any stored message carrying that content, which is how an
 * output reference resolves whichever operator's channel holds the output (see payloadRefOf).
 *
 * Trust: the server's answer is untrusted. The client decodes it strictly, checks that it is
 * what was asked for (sha256 of the bytes = msgId, or keccak256 of the payload = payloadRef)
 * and that its author signed it, and only then returns it; anything else is a
 * StreamFetchError and nothing is returned.
 */
import type { PeerId, Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { Multiaddr } from '@multiformats/multiaddr'
import {
  MAX_STREAM_MESSAGE_BYTES, MSG_ID_BYTES, PAYLOAD_REF_BYTES, STREAM_VERSION, decodeStreamMessage,
  payloadRefOf, streamMessageIdOfBytes, verifyStreamMessage, StreamMessageError, StreamRequest,
  StreamResponse, type StreamMessage, decodeCanonical, MessageEncodeError, ruleBoundedBytes,
  ruleExactBytes, ruleOneOf, ruleVersion, WIRE_LENGTH_DELIMITED as L, WIRE_VARINT as V,
  type FieldRuleViolation, type StrictCodec
} from '../wire/index.js'
import {
  MAX_STREAM_REQUEST_BYTES, MAX_STREAM_RESPONSE_BYTES, STREAM_MAX_INBOUND_STREAMS,
  STREAM_MAX_OUTBOUND_STREAMS, STREAM_PROTOCOL, STREAM_REQUEST_TIMEOUT_MS, STREAM_STATUS
} from './constants.js'
import { ExchangeFailure, ExchangeServer, requestOnce, type ExchangeFailureKind, type ExchangeLibp2p } from '../exchange/index.js'

const log = logger('poi:stream')
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

export type StreamLibp2p = ExchangeLibp2p

export type StreamFetchErrorCode =
  | ExchangeFailureKind
  /** The peer does not have the message. Try another peer. */
  | 'NOT_FOUND'
  /** The peer says our request is malformed (a version this peer does not speak). */
  | 'BAD_REQUEST'
  /** The response is not a valid StreamResponse (garbage, wrong version, non-canonical). */
  | 'INVALID_RESPONSE'
  /** The returned message is not the one asked for: its hash differs from the requested id. */
  | 'WRONG_HASH'
  /** The returned message is the one asked for but fails its author check (bad signature, wrong author, bad field). */
  | 'INVALID_MESSAGE'

/** A fetch that returned nothing usable; the peer may be lying, offline or simply lack the message. */
export class StreamFetchError extends Error {
  readonly code: StreamFetchErrorCode
  readonly peer: string
  /** The requested msgId or payloadRef, hex. */
  readonly ref: string

  constructor (code: StreamFetchErrorCode, peer: string, ref: string, reason: string, cause?: unknown) {
    super(`fetching stream message ${ref} from ${peer}: ${reason} [${code}]`)
    this.name = 'StreamFetchError'
    this.code = code
    this.peer = peer
    this.ref = ref
    this.cause = cause
  }
}

// ---------------------------------------------------------------------------------------------
// Wire codecs

const STATUSES = Object.values(STREAM_STATUS)

function checkRequest (req: StreamRequest): FieldRuleViolation | undefined {
  const bad = ruleVersion(req.version, STREAM_VERSION)
  if (bad !== undefined) return bad
  const byId = req.msgId.length > 0
  const byPayload = req.payloadRef.length > 0
  if (byId === byPayload) return { code: 'INVALID_FIELD', field: 'msgId', reason: 'set exactly one of msgId and payloadRef' }
  return byId ? ruleExactBytes('msgId', req.msgId, MSG_ID_BYTES) : ruleExactBytes('payloadRef', req.payloadRef, PAYLOAD_REF_BYTES)
}

function checkResponse (res: StreamResponse): FieldRuleViolation | undefined {
  const bad = ruleVersion(res.version, STREAM_VERSION) ?? ruleOneOf('status', res.status, STATUSES)
  if (bad !== undefined) return bad
  return res.status === STREAM_STATUS.FOUND
    ? ruleBoundedBytes('message', res.message, 1, MAX_STREAM_MESSAGE_BYTES)
    : ruleBoundedBytes('message', res.message, 0, 0)
}

const REQUEST_CODEC: StrictCodec<StreamRequest> = {
  messageType: 'StreamRequest',
  maxBytes: MAX_STREAM_REQUEST_BYTES,
  fields: new Map([[1, V], [2, L], [3, L]]),
  encode: (msg) => StreamRequest.encode(msg),
  decode: (bytes) => StreamRequest.decode(bytes),
  check: checkRequest
}

const RESPONSE_CODEC: StrictCodec<StreamResponse> = {
  messageType: 'StreamResponse',
  maxBytes: MAX_STREAM_RESPONSE_BYTES,
  fields: new Map([[1, V], [2, V], [3, L]]),
  encode: (msg) => StreamResponse.encode(msg),
  decode: (bytes) => StreamResponse.decode(bytes),
  check: checkResponse
}

export function encodeStreamRequest (req: StreamRequest): Uint8Array {
  const bad = checkRequest(req)
  if (bad !== undefined) throw new MessageEncodeError('StreamRequest', bad)
  return StreamRequest.encode(req)
}

export function decodeStreamRequest (bytes: Uint8Array): StreamRequest {
  return decodeCanonical(REQUEST_CODEC, bytes)
}

export function encodeStreamResponse (res: StreamResponse): Uint8Array {
  const bad = checkResponse(res)
  if (bad !== undefined) throw new MessageEncodeError('StreamResponse', bad)
  return StreamResponse.encode(res)
}

export function decodeStreamResponse (bytes: Uint8Array): StreamResponse {
  return decodeCanonical(RESPONSE_CODEC, bytes)
}

// ---------------------------------------------------------------------------------------------
// Server

/** Where a server finds messages: canonical bytes as stored (StreamStore implements this). */
export interface StreamMessageSource {
  getBytes: (msgId: Uint8Array) => Promise<Uint8Array | undefined>
  getBytesByPayloadRef: (payloadRef: Uint8Array) => Promise<Uint8Array | undefined>
}

export interface StreamServerInit {
  libp2p: StreamLibp2p
  messages: StreamMessageSource
  /** Per request, default STREAM_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number
  maxInboundStreams?: number
  maxOutboundStreams?: number
}

/** Answers /poi/stream/1/ from a message source while started. */
export class StreamServer implements Startable {
  private readonly init: StreamServerInit
  private readonly server: ExchangeServer

  constructor (init: StreamServerInit) {
    this.init = init
    this.server = new ExchangeServer({
      libp2p: init.libp2p,
      protocol: STREAM_PROTOCOL,
      maxRequestBytes: MAX_STREAM_REQUEST_BYTES,
      timeoutMs: init.timeoutMs ?? STREAM_REQUEST_TIMEOUT_MS,
      maxInboundStreams: init.maxInboundStreams ?? STREAM_MAX_INBOUND_STREAMS,
      maxOutboundStreams: init.maxOutboundStreams ?? STREAM_MAX_OUTBOUND_STREAMS,
      log,
      answer: async (request, from) => await this.answer(request, from)
    })
  }

  isStarted (): boolean {
    return this.server.isStarted()
  }

  async start (): Promise<void> {
    await this.server.start()
  }

  async stop (): Promise<void> {
    await this.server.stop()
  }

  private async answer (request: Uint8Array, from: PeerId): Promise<Uint8Array> {
    let req: StreamRequest
    try {
      req = decodeStreamRequest(request)
    } catch (err) {
      log('bad request from %p: %s', from, (err as Error).message)
      return StreamResponse.encode({ version: STREAM_VERSION, status: STREAM_STATUS.BAD_REQUEST, message: new Uint8Array(0) })
    }
    const bytes = req.msgId.length > 0
      ? await this.init.messages.getBytes(req.msgId)
      : await this.init.messages.getBytesByPayloadRef(req.payloadRef)
    if (bytes === undefined) {
      return StreamResponse.encode({ version: STREAM_VERSION, status: STREAM_STATUS.NOT_FOUND, message: new Uint8Array(0) })
    }
    return StreamResponse.encode({ version: STREAM_VERSION, status: STREAM_STATUS.FOUND, message: bytes as Uint8Array<ArrayBuffer> })
  }
}

// ---------------------------------------------------------------------------------------------
// Client

export interface FetchStreamMessageOptions {
  signal?: AbortSignal
  /** Default STREAM_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number
}

export interface FetchedStreamMessage {
  message: StreamMessage
  msgId: Uint8Array
}

type Peer = PeerId | Multiaddr | Multiaddr[]

async function fetchVerified (libp2p: Pick<StreamLibp2p, 'dialProtocol'>, peer: Peer, request: StreamRequest, ref: Uint8Array, options: FetchStreamMessageOptions): Promise<FetchedStreamMessage> {
  const peerName = String(peer)
  const refHex = `0x${hex(ref)}`
  const fail = (code: StreamFetchErrorCode, reason: string, cause?: unknown): StreamFetchError => new StreamFetchError(code, peerName, refHex, reason, cause)

  let responseBytes: Uint8Array
  try {
    responseBytes = await requestOnce(libp2p, peer, STREAM_PROTOCOL, encodeStreamRequest(request), {
      maxResponseBytes: MAX_STREAM_RESPONSE_BYTES,
      timeoutMs: options.timeoutMs ?? STREAM_REQUEST_TIMEOUT_MS,
      signal: options.signal
    })
  } catch (err) {
    if (err instanceof ExchangeFailure) throw fail(err.kind, err.message, err)
    throw err
  }

  let response: StreamResponse
  try {
    response = decodeStreamResponse(responseBytes)
  } catch (err) {
    throw fail('INVALID_RESPONSE', (err as Error).message, err)
  }
  if (response.status === STREAM_STATUS.NOT_FOUND) throw fail('NOT_FOUND', 'the peer does not have it; try another provider')
  if (response.status === STREAM_STATUS.BAD_REQUEST) throw fail('BAD_REQUEST', `the peer refused the request as malformed (does it speak ${STREAM_PROTOCOL} version ${STREAM_VERSION}?)`)

  const bytes = response.message
  const msgId = streamMessageIdOfBytes(bytes)
  // Identity first: bytes that are not what we asked for are never decoded further.
  if (request.msgId.length > 0 && hex(msgId) !== hex(request.msgId)) {
    throw fail('WRONG_HASH', `the peer answered with message 0x${hex(msgId)}`)
  }
  let message: StreamMessage
  try {
    message = decodeStreamMessage(bytes)
  } catch (err) {
    throw fail('INVALID_MESSAGE', (err as Error).message, err)
  }
  if (request.payloadRef.length > 0) {
    const got = payloadRefOf(message.payload)
    if (hex(got) !== hex(request.payloadRef)) throw fail('WRONG_HASH', `the peer answered with a message whose payload hashes to 0x${hex(got)}`)
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
 * `msgId` and its author signed it for its own channel. Throws StreamFetchError otherwise
 * (NOT_FOUND, WRONG_HASH, INVALID_MESSAGE, INVALID_RESPONSE, OVERSIZED, TIMEOUT, ...).
 */
export async function fetchStreamMessage (libp2p: Pick<StreamLibp2p, 'dialProtocol'>, peer: Peer, msgId: Uint8Array, options: FetchStreamMessageOptions = {}): Promise<StreamMessage> {
  if (!(msgId instanceof Uint8Array) || msgId.length !== MSG_ID_BYTES) throw new TypeError(`msgId must be ${MSG_ID_BYTES} bytes`)
  const request: StreamRequest = { version: STREAM_VERSION, msgId: Uint8Array.from(msgId), payloadRef: new Uint8Array(0) }
  return (await fetchVerified(libp2p, peer, request, msgId, options)).message
}

/**
 * Fetches any message whose payload has keccak256 `payloadRef` (an output reference), proven
 * the same way: payload hash checked, author signature checked. Returns it with its msgId.
 */
export async function fetchStreamMessageByPayload (libp2p: Pick<StreamLibp2p, 'dialProtocol'>, peer: Peer, payloadRef: Uint8Array, options: FetchStreamMessageOptions = {}): Promise<FetchedStreamMessage> {
  if (!(payloadRef instanceof Uint8Array) || payloadRef.length !== PAYLOAD_REF_BYTES) throw new TypeError(`payloadRef must be ${PAYLOAD_REF_BYTES} bytes`)
  const request: StreamRequest = { version: STREAM_VERSION, msgId: new Uint8Array(0), payloadRef: Uint8Array.from(payloadRef) }
  return await fetchVerified(libp2p, peer, request, payloadRef, options)
}
