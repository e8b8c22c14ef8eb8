/**
 * One request, one response, over a libp2p stream: the byte-level transport under every
 * exchange (defineExchange in exchange.ts). Each side sends one length-prefixed frame
 * (it-length-prefixed over it-pipe), every read is bounded in size before it is buffered, and
 * the whole exchange is bounded in time: a stalled or hostile peer costs at most one timeout
 * and one frame of memory.
 *
 * The bytes carried are opaque here; the protocols decode and check them strictly.
 */
import type { IncomingStreamData, Libp2p, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import type { Logger } from '@libp2p/logger'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import type { Multiaddr } from '@multiformats/multiaddr'
import { ExchangeError, type ExchangeFailureKind } from './errors.js'

/** What the exchange needs of a libp2p node (a full node or a light requester). */
export type ExchangeLibp2p = Pick<Libp2p, 'dialProtocol' | 'handle' | 'unhandle'>

/** A peer to ask: its id (dialled through the peer store) or its addresses. */
export type ExchangePeer = PeerId | Multiaddr | Multiaddr[]

export interface RequestOptions {
  maxResponseBytes: number
  timeoutMs: number
  /** The caller's own cancellation, on top of the time limit. */
  signal?: AbortSignal
  /** What is asked for, for the error message (default "a response"). */
  subject?: string
}

function errorName (err: unknown): string {
  return err instanceof Error ? err.name : ''
}

/**
 * Sends `request` to `peer` on `protocol` and returns the single response frame. Throws
 * ExchangeError (a transport kind: DIAL_FAILED, TIMEOUT, ABORTED, OVERSIZED, NO_RESPONSE,
 * STREAM_FAILED), never a bare stream error.
 */
export async function requestOnce (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: ExchangePeer, protocol: string, request: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
  const timeout = AbortSignal.timeout(options.timeoutMs)
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal])
  const fail = (code: ExchangeFailureKind, reason: string, cause?: unknown): ExchangeError<ExchangeFailureKind> =>
    new ExchangeError({ code, protocol, peer: String(peer), subject: options.subject, reason, cause })
  const why = (): ExchangeError<ExchangeFailureKind> => timeout.aborted
    ? fail('TIMEOUT', `no response within ${options.timeoutMs} ms`)
    : fail('ABORTED', 'aborted by the caller')

  let stream: Stream
  try {
    stream = await libp2p.dialProtocol(peer, protocol, { signal })
  } catch (err) {
    if (signal.aborted) throw why()
    throw fail('DIAL_FAILED', `cannot open a stream: ${(err as Error).message}`, err)
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
    if (response === undefined) throw fail('NO_RESPONSE', 'the peer closed the stream without answering')
    // One frame is the whole answer; whatever the peer still sends is not read.
    await stream.close({ signal }).catch((err: unknown) => { stream.abort(err as Error) })
    return response
  } catch (err) {
    stream.abort(err as Error)
    if (err instanceof ExchangeError) throw err
    if (signal.aborted) throw why()
    if (errorName(err) === 'InvalidDataLengthError') {
      throw fail('OVERSIZED', `the peer announced a response over the ${options.maxResponseBytes}-byte bound`, err)
    }
    if (errorName(err) === 'UnexpectedEOFError') {
      throw fail('NO_RESPONSE', 'the peer closed the stream in the middle of its response', err)
    }
    throw fail('STREAM_FAILED', `the stream failed: ${(err as Error).message}`, err)
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
    const onAbort = (): void => { stream.abort(new Error(`${protocol} request from ${connection.remotePeer.toString()} not answered within ${timeoutMs} ms`)) }
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
