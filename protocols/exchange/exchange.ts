/**
 * One request, one response, over a libp2p stream: the shape shared by /poi/stream/1/ and
 * /poi/result/1/. Each side sends one length-prefixed frame (it-length-prefixed over it-pipe),
 * every read is bounded in size before it is buffered, and the whole exchange is bounded in
 * time: a stalled or hostile peer costs at most one timeout and one frame of memory.
 *
 * The bytes carried are opaque here; the protocols decode and check them strictly.
 */
import type { IncomingStreamData, Libp2p, PeerId, Startable, Stream, StreamHandler } from '@libp2p/interface'
import type { Logger } from '@libp2p/logger'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What the exchange needs of a libp2p node (a full node or a light requester). */
export type ExchangeLibp2p = Pick<Libp2p, 'dialProtocol' | 'handle' | 'unhandle'>

export type ExchangeFailureKind =
  /** Could not open a stream for the protocol: peer unreachable or not speaking it. */
  | 'DIAL_FAILED'
  /** The time limit of the exchange passed. */
  | 'TIMEOUT'
  /** The caller's signal aborted the exchange. */
  | 'ABORTED'
  /** The peer announced a frame larger than the response bound. */
  | 'OVERSIZED'
  /** The peer closed the stream without a complete response frame. */
  | 'NO_RESPONSE'
  /** The stream failed (reset, broken length prefix). */
  | 'STREAM_FAILED'

/** Why an exchange gave no response; each protocol turns it into its own typed error. */
export class ExchangeFailure extends Error {
  readonly kind: ExchangeFailureKind
  constructor (kind: ExchangeFailureKind, message: string, cause?: unknown) {
    super(message)
    this.name = 'ExchangeFailure'
    this.kind = kind
    this.cause = cause
  }
}

export interface RequestOptions {
  maxResponseBytes: number
  timeoutMs: number
  /** The caller's own cancellation, on top of the time limit. */
  signal?: AbortSignal
}

function errorName (err: unknown): string {
  return err instanceof Error ? err.name : ''
}

/**
 * Sends `request` to `peer` on `protocol` and returns the single response frame. Throws
 * ExchangeFailure, never a bare stream error.
 */
export async function requestOnce (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: PeerId | Multiaddr | Multiaddr[], protocol: string, request: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
  const timeout = AbortSignal.timeout(options.timeoutMs)
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal])
  const why = (): ExchangeFailure => timeout.aborted
    ? new ExchangeFailure('TIMEOUT', `no response on ${protocol} within ${options.timeoutMs} ms`)
    : new ExchangeFailure('ABORTED', `request on ${protocol} aborted by the caller`)

  let stream: Stream
  try {
    stream = await libp2p.dialProtocol(peer, protocol, { signal })
  } catch (err) {
    if (signal.aborted) throw why()
    throw new ExchangeFailure('DIAL_FAILED', `cannot open ${protocol} to ${String(peer)}: ${(err as Error).message}`, err)
  }

  const onAbort = (): void => { stream.abort(why()) }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    const response = await pipe(
      [request],
      (source) => lp.encode(source),
      stream,
      (source) => lp.decode(source, { maxDataLength: options.maxResponseBytes }),
      async (source) => {
        for await (const frame of source) return frame.subarray()
        return undefined
      }
    )
    if (response === undefined) throw new ExchangeFailure('NO_RESPONSE', `peer closed ${protocol} without answering`)
    // One frame is the whole answer; whatever the peer still sends is not read.
    await stream.close({ signal }).catch((err: unknown) => { stream.abort(err as Error) })
    return response
  } catch (err) {
    stream.abort(err as Error)
    if (err instanceof ExchangeFailure) throw err
    if (signal.aborted) throw why()
    if (errorName(err) === 'InvalidDataLengthError') {
      throw new ExchangeFailure('OVERSIZED', `peer announced a response over the ${options.maxResponseBytes}-byte bound of ${protocol}`, err)
    }
    if (errorName(err) === 'UnexpectedEOFError') {
      throw new ExchangeFailure('NO_RESPONSE', `peer closed ${protocol} in the middle of its response`, err)
    }
    throw new ExchangeFailure('STREAM_FAILED', `${protocol} stream failed: ${(err as Error).message}`, err)
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

export interface ServeOptions {
  protocol: string
  maxRequestBytes: number
  timeoutMs: number
  log: Logger
  /** Turns one request into one response; it must not throw for a bad request (answer it). */
  answer: (request: Uint8Array, data: IncomingStreamData) => Promise<Uint8Array>
}

/** A stream handler that reads one bounded request frame and writes one response frame. */
export function serveOnce (options: ServeOptions): StreamHandler {
  const { protocol, maxRequestBytes, timeoutMs, log, answer } = options
  return (data: IncomingStreamData): void => {
    const { stream, connection } = data
    const signal = AbortSignal.timeout(timeoutMs)
    const onAbort = (): void => { stream.abort(new ExchangeFailure('TIMEOUT', `${protocol} request from ${connection.remotePeer.toString()} not done within ${timeoutMs} ms`)) }
    signal.addEventListener('abort', onAbort, { once: true })
    void pipe(
      stream,
      (source) => lp.decode(source, { maxDataLength: maxRequestBytes }),
      async function * (source) {
        for await (const frame of source) {
          yield await answer(frame.subarray(), data)
          return // one request per stream
        }
      },
      (source) => lp.encode(source),
      stream
    ).catch((err: unknown) => {
      log('%s from %p failed: %s', protocol, connection.remotePeer, (err as Error).message)
      stream.abort(err as Error)
    }).finally(() => {
      signal.removeEventListener('abort', onAbort)
    })
  }
}

export interface ExchangeServerInit {
  libp2p: Pick<Libp2p, 'handle' | 'unhandle'>
  protocol: string
  maxRequestBytes: number
  timeoutMs: number
  maxInboundStreams: number
  maxOutboundStreams: number
  log: Logger
  /** Turns one request from `from` into one response; it must not throw for a bad request (answer it). */
  answer: (request: Uint8Array, from: PeerId) => Uint8Array | Promise<Uint8Array>
}

/**
 * A request/response protocol's handler, registered while started: the Startable shape the
 * servers of /poi/stream/1/, /poi/result/1/ and /poi/network/1/ share.
 */
export class ExchangeServer implements Startable {
  private started = false

  constructor (private readonly init: ExchangeServerInit) {}

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    if (this.started) return
    const { libp2p, protocol, maxRequestBytes, timeoutMs, log, answer } = this.init
    await libp2p.handle(protocol, serveOnce({
      protocol,
      maxRequestBytes,
      timeoutMs,
      log,
      answer: async (request, { connection }) => await answer(request, connection.remotePeer)
    }), {
      maxInboundStreams: this.init.maxInboundStreams,
      maxOutboundStreams: this.init.maxOutboundStreams
    })
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    await this.init.libp2p.unhandle(this.init.protocol)
    this.started = false
  }
}
