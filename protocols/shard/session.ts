/**
 * The fetching side of /poi/shard/1/ (the wire format is in server.ts): one block per
 * fetchBlock, or many from one peer pipelined on one stream by a ShardSession.
 *
 * Trust boundary: the client distrusts the whole response: the frame length is checked against
 * the bound of the request it answers before the block is buffered, and the bytes are hashed
 * against the CID before a fetch returns them.
 */
import type { AbortOptions, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import * as lp from 'it-length-prefixed'
import type { CID } from 'multiformats/cid'
import { BadBlockError, BlockTooLargeError, MAX_BLOCK_BYTES, verifyBlock } from '../wire/index.js'
import { FETCH_BLOCK_TIMEOUT_MS, SESSION_CLOSE_TIMEOUT_MS, SHARD_PROTOCOL, ShardStatus } from './constants.js'
import {
  ShardBadBlockError, ShardError, ShardNotFoundError, ShardProtocolError, ShardTimeoutError, ShardTooLargeError
} from './errors.js'
import { lengthPrefix } from './frame.js'

const log = logger('poi:shard')

export interface FetchBlockOptions extends AbortOptions {
  /**
   * Largest block accepted, at most MAX_BLOCK_BYTES (the default). A fetcher that knows a
   * chunk's exact size passes it, so a provider cannot make it buffer more than that.
   */
  maxBytes?: number
}

/**
 * Fetch one block from one peer and verify it against its CID. Bounded in time by
 * `signal` (default FETCH_BLOCK_TIMEOUT_MS) and in size by `maxBytes`.
 * Throws ShardNotFoundError, ShardTooLargeError, ShardTimeoutError, ShardBadBlockError or
 * ShardProtocolError.
 */
export async function fetchBlock (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: PeerId, cid: CID, options: FetchBlockOptions = {}): Promise<Uint8Array> {
  const parts = await fetchBlockParts(libp2p, peer, cid, options)
  return parts.length === 1 ? parts[0] : new Uint8Array(Buffer.concat(parts))
}

/**
 * `fetchBlock`, returning the verified block as the pieces it arrived in (transport frames),
 * so a caller assembling a large file copies each byte once. One stream for one block: a
 * caller fetching many blocks from a peer should use a ShardSession.
 */
export async function fetchBlockParts (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: PeerId, cid: CID, options: FetchBlockOptions = {}): Promise<Uint8Array[]> {
  const session = new ShardSession(libp2p, peer)
  try {
    return await session.fetch(cid, options)
  } finally {
    session.close()
  }
}

function describeReason (reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason)
}

interface PendingRequest {
  cid: CID
  cidText: string
  maxBytes: number
  signal: AbortSignal
  /** The caller passed no signal: the default timeout is ours to name in the error. */
  defaultSignal: boolean
  settled: boolean
  onAbort: () => void
  resolve: (parts: Uint8Array[]) => void
  reject: (err: ShardError) => void
}

/**
 * Requests waiting to be written to one stream: the stream's sink drains it. Requests queued
 * while the previous write was under way go out together, in one muxer frame.
 */
class RequestWriter implements AsyncIterable<Uint8Array> {
  private readonly queued: Uint8Array[] = []
  private ended = false
  private wake: (() => void) | undefined

  push (frame: Uint8Array): void {
    this.queued.push(frame)
    this.notify()
  }

  end (): void {
    this.ended = true
    this.notify()
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Uint8Array> {
    while (true) {
      if (this.queued.length > 0) {
        // requests are a few dozen bytes: copying them together costs less than a frame each
        yield Buffer.concat(this.queued.splice(0))
        continue
      }
      if (this.ended) return
      await new Promise<void>(resolve => { this.wake = resolve })
    }
  }
}

/**
 * Block fetches from one peer over one /poi/shard/1/ stream, opened on the first fetch and
 * reopened when the peer closes it. Fetches may overlap: their requests are pipelined and the
 * responses arrive in request order. Each fetch keeps its own bounds (its signal, default
 * FETCH_BLOCK_TIMEOUT_MS, and its maxBytes) and its own typed errors, as with fetchBlockParts.
 * A fetch that times out or a response that breaks the protocol abandons the stream; the other
 * fetches written on it fail with ShardProtocolError, later ones go out on a new stream.
 * close() when done: it fails whatever is still pending and closes the stream.
 */
export class ShardSession {
  readonly peerText: string
  private readonly closer = new AbortController()
  private stream: Stream | undefined
  private writer: RequestWriter | undefined
  private opening = false
  /** Fetches whose request is not written yet (the stream is being opened). */
  private readonly unsent: PendingRequest[] = []
  /** Fetches whose request is written, in the order the peer answers them. */
  private readonly inFlight: PendingRequest[] = []

  constructor (private readonly libp2p: Pick<Libp2p, 'dialProtocol'>, readonly peer: PeerId) {
    this.peerText = peer.toString()
  }

  /** Fetches not yet answered. */
  get pending (): number {
    return this.unsent.length + this.inFlight.length
  }

  /** One block, verified against its CID; throws like fetchBlockParts. */
  async fetch (cid: CID, options: FetchBlockOptions = {}): Promise<Uint8Array[]> {
    const cidText = cid.toString()
    if (this.closer.signal.aborted) throw new ShardProtocolError(this.peerText, cidText, 'the session to the peer is closed')
    const signal = options.signal ?? AbortSignal.timeout(FETCH_BLOCK_TIMEOUT_MS)
    let resolve!: (parts: Uint8Array[]) => void
    let reject!: (err: ShardError) => void
    const done = new Promise<Uint8Array[]>((resolve_, reject_) => { resolve = resolve_; reject = reject_ })
    const req: PendingRequest = {
      cid,
      cidText,
      maxBytes: Math.min(options.maxBytes ?? MAX_BLOCK_BYTES, MAX_BLOCK_BYTES),
      signal,
      defaultSignal: options.signal == null,
      settled: false,
      onAbort: () => { this.aborted(req) },
      resolve,
      reject
    }
    if (signal.aborted) throw this.timedOut(req)
    signal.addEventListener('abort', req.onAbort, { once: true })
    this.unsent.push(req)
    this.pump()
    return await done
  }

  /** Fail what is pending and close the stream (gracefully when nothing is in flight). */
  close (): void {
    if (this.closer.signal.aborted) return
    this.closer.abort(new Error('shard session closed'))
    const inFlight = this.inFlight.length > 0
    for (const req of [...this.unsent.splice(0), ...this.inFlight.splice(0)]) {
      this.settle(req, new ShardProtocolError(this.peerText, req.cidText, 'the session was closed before the response arrived'))
    }
    const stream = this.stream
    this.detach()
    if (stream === undefined) return
    if (inFlight) {
      stream.abort(new Error('shard session closed with requests in flight'))
      return
    }
    stream.close({ signal: AbortSignal.timeout(SESSION_CLOSE_TIMEOUT_MS) }).catch((err: Error) => { stream.abort(err) })
  }

  private timedOut (req: PendingRequest): ShardTimeoutError {
    return new ShardTimeoutError(this.peerText, req.cidText,
      req.defaultSignal ? `no complete response within ${FETCH_BLOCK_TIMEOUT_MS} ms` : `aborted: ${describeReason(req.signal.reason)}`, req.signal.reason)
  }

  private settle (req: PendingRequest, result: Uint8Array[] | ShardError): void {
    if (req.settled) return
    req.settled = true
    req.signal.removeEventListener('abort', req.onAbort)
    if (result instanceof ShardError) req.reject(result)
    else req.resolve(result)
  }

  private aborted (req: PendingRequest): void {
    const unsentAt = this.unsent.indexOf(req)
    if (unsentAt >= 0) this.unsent.splice(unsentAt, 1)
    const written = this.inFlight.includes(req)
    this.settle(req, this.timedOut(req))
    // its response may be half read: the stream is out of step and cannot carry other requests
    if (written && this.stream !== undefined) this.abandon(this.stream, new ShardTimeoutError(this.peerText, req.cidText, 'another request on the stream timed out'))
  }

  /** Write unsent requests, opening a stream first if there is none. */
  private pump (): void {
    if (this.unsent.length === 0 || this.closer.signal.aborted) return
    if (this.writer !== undefined) {
      const batch = this.unsent.splice(0)
      this.inFlight.push(...batch)
      this.writer.push(Buffer.concat(batch.map(req => Buffer.concat([lengthPrefix(req.cid.bytes.length), req.cid.bytes]))))
      return
    }
    if (this.opening) return
    this.opening = true
    void this.open()
  }

  private async open (): Promise<void> {
    let stream: Stream
    try {
      // bounded on its own: the fetches waiting for it have their own bounds too
      const signal = AbortSignal.any([this.closer.signal, AbortSignal.timeout(FETCH_BLOCK_TIMEOUT_MS)])
      stream = await this.libp2p.dialProtocol(this.peer, SHARD_PROTOCOL, { signal })
    } catch (err) {
      this.opening = false
      for (const req of this.unsent.splice(0)) {
        this.settle(req, req.signal.aborted
          ? this.timedOut(req)
          : new ShardProtocolError(this.peerText, req.cidText, `cannot open a ${SHARD_PROTOCOL} stream: ${(err as Error).message}`, err))
      }
      return
    }
    this.opening = false
    if (this.closer.signal.aborted) {
      stream.abort(new Error('shard session closed'))
      return
    }
    const writer = new RequestWriter()
    this.stream = stream
    this.writer = writer
    // a failed write surfaces in the read loop as well, which settles the fetches
    stream.sink(writer).catch((err: Error) => { log('writing shard requests to %s failed: %s', this.peerText, err.message) })
    void this.read(stream)
    this.pump()
  }

  private detach (): void {
    this.writer?.end()
    this.writer = undefined
    this.stream = undefined
  }

  /** Read responses in request order until the peer closes the stream or it fails. */
  private async read (stream: Stream): Promise<void> {
    let answered = 0
    try {
      const frames = lp.decode(stream.source, {
        maxDataLength: 1 + MAX_BLOCK_BYTES,
        // the length is checked against the bound of the request it answers before the body is buffered
        onLength: (length: number) => {
          const head = this.inFlight[0]
          if (head === undefined) throw new Error('the peer sent a response nobody asked for')
          if (length > 1 + head.maxBytes) throw new ShardTooLargeError(this.peerText, head.cidText, head.maxBytes)
        }
      })
      for await (const frame of frames) {
        const head = this.inFlight.shift()
        if (head === undefined) throw new Error('the peer sent a response nobody asked for')
        answered++
        this.settle(head, this.parse(head, frame))
      }
    } catch (err) {
      if (this.stream === stream) this.abandon(stream, err)
      return
    }
    if (this.stream !== stream) return
    // the peer closed its end: fine between requests, and a peer that answers one request
    // per stream has answered at least one; the rest are asked again on a new stream
    this.detach()
    stream.close({ signal: AbortSignal.timeout(SESSION_CLOSE_TIMEOUT_MS) }).catch((err: Error) => { stream.abort(err) })
    const unanswered = this.inFlight.splice(0)
    if (answered > 0) {
      this.unsent.unshift(...unanswered)
      this.pump()
      return
    }
    for (const req of unanswered) this.settle(req, new ShardProtocolError(this.peerText, req.cidText, 'the peer closed the stream without a response'))
  }

  /** The stream failed or is out of step: reset it, fail what was written on it, reopen for the rest. */
  private abandon (stream: Stream, err: unknown): void {
    this.detach()
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    const [head, ...behind] = this.inFlight.splice(0)
    if (head !== undefined) this.settle(head, this.classify(head, err))
    for (const req of behind) {
      this.settle(req, new ShardProtocolError(this.peerText, req.cidText, `the stream was abandoned before the response: ${describeReason(err)}`, err))
    }
    this.pump()
  }

  private classify (req: PendingRequest, err: unknown): ShardError {
    if (req.signal.aborted) return this.timedOut(req)
    if (err instanceof ShardError) return err
    if ((err as Error).name === 'InvalidDataLengthError') return new ShardTooLargeError(this.peerText, req.cidText, req.maxBytes, err)
    return new ShardProtocolError(this.peerText, req.cidText, `stream failed: ${describeReason(err)}`, err)
  }

  /** The verified block of a response frame, or the typed error it amounts to. */
  private parse (req: PendingRequest, frame: Iterable<Uint8Array>): Uint8Array[] | ShardError {
    const pieces = [...frame].filter(piece => piece.length > 0)
    if (pieces.length === 0) return new ShardProtocolError(this.peerText, req.cidText, 'the peer sent an empty response')
    const status = pieces[0][0]
    if (status === ShardStatus.NOT_FOUND) return new ShardNotFoundError(this.peerText, req.cidText)
    if (status === ShardStatus.BAD_REQUEST) return new ShardProtocolError(this.peerText, req.cidText, 'the peer refused the request as malformed')
    if (status !== ShardStatus.OK) return new ShardProtocolError(this.peerText, req.cidText, `unknown response status ${status}`)
    // the block as the pieces it arrived in: no copy here
    const parts = [pieces[0].subarray(1), ...pieces.slice(1)].filter(piece => piece.length > 0)
    try {
      verifyBlock(req.cid, parts, req.maxBytes)
    } catch (err) {
      if (err instanceof BlockTooLargeError) return new ShardTooLargeError(this.peerText, req.cidText, req.maxBytes, err)
      if (err instanceof BadBlockError) return new ShardBadBlockError(this.peerText, req.cidText, err)
      throw err
    }
    return parts.length > 0 ? parts : [new Uint8Array(0)]
  }
}
