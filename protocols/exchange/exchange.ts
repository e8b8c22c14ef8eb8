/**
 * defineExchange: a request/response protocol from its id, its two strict codecs and its
 * bounds. /poi/stream/1/, /poi/result/1/ and /poi/network/1/ are each one definition; it gives
 * the server (a Startable handler) and a typed fetch.
 *
 * Bounds (js-libp2p style): a request frame is bounded by the request codec's maxBytes, a
 * response frame by the response codec's, every exchange by a timeout (the definition's default,
 * or the caller's), every fetch by the caller's AbortSignal too, and streams per connection by
 * maxInbound/OutboundStreams.
 *
 * Trust boundary: on each side the other's bytes are untrusted and go through the strict codec.
 * A server answers a request that does not decode with the protocol's `badRequest` answer; a
 * fetch turns an answer that does not decode into INVALID_RESPONSE and a refusal into
 * BAD_REQUEST. What a decoded answer means (not found, the wrong message) is for the protocol
 * to check, with `exchange.error` for its own codes.
 */
import type { Libp2p, PeerId, Startable } from '@libp2p/interface'
import type { Logger } from '@libp2p/logger'
import type { StrictCodec } from '../wire/index.js'
import { EXCHANGE_MAX_INBOUND_STREAMS, EXCHANGE_MAX_OUTBOUND_STREAMS, EXCHANGE_TIMEOUT_MS } from './constants.js'
import { ExchangeError, type ExchangeErrorCode } from './errors.js'
import { requestOnce, serveOnce, type ExchangePeer } from './transport.js'

/** Every response of a poi exchange carries a status; one of them means "bad request". */
export interface ExchangeResponse {
  status: number
}

export interface ExchangeDefinition<Req, Res extends ExchangeResponse> {
  /** Protocol id, its version included: /poi/stream/1/. */
  readonly protocol: string
  readonly request: StrictCodec<Req>
  readonly response: StrictCodec<Res>
  /**
   * Default bound on one exchange: a fetch (dial included) and the serving of one request.
   * Default EXCHANGE_TIMEOUT_MS.
   */
  readonly timeoutMs?: number
  /** Default concurrent streams of the protocol per connection: EXCHANGE_MAX_IN/OUTBOUND_STREAMS. */
  readonly maxInboundStreams?: number
  readonly maxOutboundStreams?: number
  /**
   * The answer to a request that does not decode (another version, garbage). An answer with
   * its status is the peer refusing our request as malformed.
   */
  readonly badRequest: Res
  /** The protocol's logger, e.g. logger('poi:stream'). */
  readonly log: Logger
}

export interface ExchangeFetchOptions {
  /** The caller's cancellation, on top of the time limit. */
  signal?: AbortSignal
  /** Default: the definition's timeoutMs. */
  timeoutMs?: number
  /** What is asked for, for error messages ("stream message 0x12…"). */
  subject?: string
}

/** A definition with its defaults filled in. */
export type ResolvedExchangeDefinition<Req, Res extends ExchangeResponse> = Required<ExchangeDefinition<Req, Res>>

export interface Exchange<Req, Res extends ExchangeResponse> extends ResolvedExchangeDefinition<Req, Res> {
  /**
   * Sends `request` to `peer` and returns its decoded answer. Throws ExchangeError: a transport
   * kind (DIAL_FAILED, TIMEOUT, ABORTED, OVERSIZED, NO_RESPONSE, STREAM_FAILED),
   * INVALID_RESPONSE or BAD_REQUEST; EncodeError for a request that breaks the protocol's rules.
   */
  fetch: (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: ExchangePeer, request: Req, options?: ExchangeFetchOptions) => Promise<Res>
  /** An error of this protocol, for what the caller finds wrong with a decoded answer. */
  error: <C extends string>(code: C, peer: ExchangePeer, reason: string, options?: { subject?: string, cause?: unknown }) => ExchangeError<C>
  /** A server answering with `init.answer` while started. */
  server: (init: ExchangeServerInit<Req, Res>) => ExchangeServer<Req, Res>
}

export function defineExchange<Req, Res extends ExchangeResponse> (given: ExchangeDefinition<Req, Res>): Exchange<Req, Res> {
  const definition: ResolvedExchangeDefinition<Req, Res> = {
    timeoutMs: EXCHANGE_TIMEOUT_MS,
    maxInboundStreams: EXCHANGE_MAX_INBOUND_STREAMS,
    maxOutboundStreams: EXCHANGE_MAX_OUTBOUND_STREAMS,
    ...given
  }
  const { protocol, request, response } = definition
  const error = <C extends string>(code: C, peer: ExchangePeer, reason: string, options: { subject?: string, cause?: unknown } = {}): ExchangeError<C> =>
    new ExchangeError({ code, protocol, peer: String(peer), reason, ...options })

  const exchange: Exchange<Req, Res> = {
    ...definition,
    error,
    async fetch (libp2p, peer, req, options = {}) {
      const { subject } = options
      const bytes = await requestOnce(libp2p, peer, protocol, request.encode(req), {
        maxResponseBytes: response.maxBytes,
        timeoutMs: options.timeoutMs ?? definition.timeoutMs,
        signal: options.signal,
        subject
      })
      let answer: Res
      try {
        answer = response.decode(bytes)
      } catch (err) {
        throw error<ExchangeErrorCode>('INVALID_RESPONSE', peer, (err as Error).message, { subject, cause: err })
      }
      if (answer.status === definition.badRequest.status) {
        throw error<ExchangeErrorCode>('BAD_REQUEST', peer, `the peer refused the request as malformed (does it speak ${protocol}?)`, { subject })
      }
      return answer
    },
    server: (init) => new ExchangeServer(exchange, init)
  }
  return exchange
}

/** What the protocol's server needs: a libp2p node to register on, and how to answer. */
export interface ExchangeServerInit<Req, Res> {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
  /** One decoded request from `from` to its answer; throwing resets the stream (a bug or a store failure). */
  answer: (request: Req, from: PeerId) => Res | Promise<Res>
  /** Per request; default the definition's timeoutMs. */
  timeoutMs?: number
  maxInboundStreams?: number
  maxOutboundStreams?: number
}

/**
 * A protocol's handler, registered while started: each stream carries one request frame,
 * decoded strictly, and one answer, encoded strictly.
 */
export class ExchangeServer<Req, Res extends ExchangeResponse> implements Startable {
  private started = false

  constructor (private readonly exchange: ResolvedExchangeDefinition<Req, Res>, private readonly init: ExchangeServerInit<Req, Res>) {}

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    if (this.started) return
    const { protocol, request, log, timeoutMs, maxInboundStreams, maxOutboundStreams } = this.exchange
    await this.init.libp2p.handle(protocol, serveOnce({
      protocol,
      maxRequestBytes: request.maxBytes,
      timeoutMs: this.init.timeoutMs ?? timeoutMs,
      log,
      answer: async (bytes, { connection }) => this.exchange.response.encode(await this.answer(bytes, connection.remotePeer))
    }), {
      maxInboundStreams: this.init.maxInboundStreams ?? maxInboundStreams,
      maxOutboundStreams: this.init.maxOutboundStreams ?? maxOutboundStreams
    })
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    await this.init.libp2p.unhandle(this.exchange.protocol)
    this.started = false
  }

  private async answer (bytes: Uint8Array, from: PeerId): Promise<Res> {
    let req: Req
    try {
      req = this.exchange.request.decode(bytes)
    } catch (err) {
      this.exchange.log('bad request from %p: %s', from, (err as Error).message)
      return this.exchange.badRequest
    }
    return await this.init.answer(req, from)
  }
}
