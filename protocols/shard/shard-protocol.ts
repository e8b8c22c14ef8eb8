/**
 * /poi/shard/1/ request/response over one libp2p stream per block:
 *
 *   request  = lp(CID bytes)                       at most MAX_CID_BYTES
 *   response = lp(status byte ‖ block bytes)       at most 1 + MAX_BLOCK_BYTES (or the caller's bound)
 *
 * Trust boundary: the server trusts its block source (a BlockStore verified every block on
 * the way in) and distrusts the request; the client distrusts the whole response: the frame
 * length is checked against the bound before a byte of the block is buffered, and the bytes
 * are hashed against the CID before `fetchBlock` returns them.
 */
import type { AbortOptions, Libp2p, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { CID } from 'multiformats/cid'
import { BadBlockError, BlockTooLargeError, MAX_BLOCK_BYTES, verifyBlock } from '../../storage/index.js'
import {
  FETCH_BLOCK_TIMEOUT_MS,
  MAX_CID_BYTES,
  MAX_INBOUND_STREAMS,
  MAX_OUTBOUND_STREAMS,
  SERVE_BLOCK_TIMEOUT_MS,
  SHARD_PROTOCOL,
  ShardStatus
} from './constants.js'

const log = logger('poi:shard')

/** Where a server reads blocks from. A BlockStore is one; tests plug in misbehaving ones. */
export interface BlockSource {
  get: (cid: CID) => Promise<Uint8Array | undefined>
}

export type ShardErrorKind = 'not-found' | 'too-large' | 'timeout' | 'bad-block' | 'protocol'

/** A block fetch from one peer failed; `kind` says how, `peer` and `cid` say where. */
export class ShardError extends Error {
  /** ERR_SHARD_NOT_FOUND, ERR_SHARD_TOO_LARGE, ERR_SHARD_TIMEOUT, ERR_SHARD_BAD_BLOCK or ERR_SHARD_PROTOCOL. */
  readonly code: string
  constructor (readonly kind: ShardErrorKind, readonly peer: string, readonly cid: string, message: string, options?: { cause?: unknown }) {
    super(`fetching block ${cid} from ${peer}: ${message}`, options)
    this.name = 'ShardError'
    this.code = `ERR_SHARD_${kind.toUpperCase().replace('-', '_')}`
  }
}

/** The peer does not have the block. */
export class ShardNotFoundError extends ShardError {
  constructor (peer: string, cid: string) {
    super('not-found', peer, cid, 'the peer does not have it')
    this.name = 'ShardNotFoundError'
  }
}

/** The peer announced a block larger than the bound: it is refused before it is read. */
export class ShardTooLargeError extends ShardError {
  constructor (peer: string, cid: string, readonly limit: number, cause?: unknown) {
    super('too-large', peer, cid, `the peer sent more than the ${limit}-byte bound of this block`, { cause })
    this.name = 'ShardTooLargeError'
  }
}

/** The fetch (dial, request and response) did not finish in time, or was aborted. */
export class ShardTimeoutError extends ShardError {
  constructor (peer: string, cid: string, reason: string, cause?: unknown) {
    super('timeout', peer, cid, reason, { cause })
    this.name = 'ShardTimeoutError'
  }
}

/** The peer sent bytes that do not hash to the CID it was asked for. */
export class ShardBadBlockError extends ShardError {
  constructor (peer: string, cid: string, cause: BadBlockError) {
    super('bad-block', peer, cid, `the peer sent a corrupt block (${cause.message})`, { cause })
    this.name = 'ShardBadBlockError'
  }
}

/** The peer broke the protocol (no response, unknown status, refused our request), or the dial failed. */
export class ShardProtocolError extends ShardError {
  constructor (peer: string, cid: string, reason: string, cause?: unknown) {
    super('protocol', peer, cid, reason, { cause })
    this.name = 'ShardProtocolError'
  }
}

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
 * so a caller assembling a large file copies each byte once.
 */
export async function fetchBlockParts (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: PeerId, cid: CID, options: FetchBlockOptions = {}): Promise<Uint8Array[]> {
  const peerText = peer.toString()
  const cidText = cid.toString()
  const maxBytes = Math.min(options.maxBytes ?? MAX_BLOCK_BYTES, MAX_BLOCK_BYTES)
  const signal = options.signal ?? AbortSignal.timeout(FETCH_BLOCK_TIMEOUT_MS)
  const timedOut = (): ShardTimeoutError => new ShardTimeoutError(peerText, cidText,
    options.signal == null ? `no complete response within ${FETCH_BLOCK_TIMEOUT_MS} ms` : `aborted: ${describeReason(signal.reason)}`, signal.reason)
  if (signal.aborted) throw timedOut()

  let stream: Stream
  try {
    stream = await libp2p.dialProtocol(peer, SHARD_PROTOCOL, { signal })
  } catch (err) {
    if (signal.aborted) throw timedOut()
    throw new ShardProtocolError(peerText, cidText, `cannot open a ${SHARD_PROTOCOL} stream: ${(err as Error).message}`, err)
  }
  const onAbort = (): void => { stream.abort(timedOut()) }
  signal.addEventListener('abort', onAbort, { once: true })
  let frame: Uint8Array[] | undefined
  try {
    frame = await pipe(
      [cid.bytes],
      (source) => lp.encode(source),
      stream,
      (source) => lp.decode(source, { maxDataLength: 1 + maxBytes }),
      async (source) => {
        // the frame's pieces as received: no copy of the block here
        for await (const msg of source) return [...msg].filter(piece => piece.length > 0)
        return undefined
      }
    )
  } catch (err) {
    stream.abort(err as Error)
    if (signal.aborted) throw timedOut()
    if ((err as Error).name === 'InvalidDataLengthError') throw new ShardTooLargeError(peerText, cidText, maxBytes, err)
    throw new ShardProtocolError(peerText, cidText, `stream failed: ${(err as Error).message}`, err)
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
  // The response is complete; closing is courtesy, and a peer that resets instead costs nothing.
  stream.close().catch((err: Error) => { stream.abort(err) })

  if (frame === undefined || frame.length === 0) throw new ShardProtocolError(peerText, cidText, 'the peer closed the stream without a response')
  const status = frame[0][0]
  if (status === ShardStatus.NOT_FOUND) throw new ShardNotFoundError(peerText, cidText)
  if (status === ShardStatus.BAD_REQUEST) throw new ShardProtocolError(peerText, cidText, 'the peer refused the request as malformed')
  if (status !== ShardStatus.OK) throw new ShardProtocolError(peerText, cidText, `unknown response status ${status}`)
  const parts = [frame[0].subarray(1), ...frame.slice(1)].filter(piece => piece.length > 0)
  try {
    verifyBlock(cid, parts, maxBytes)
  } catch (err) {
    if (err instanceof BlockTooLargeError) throw new ShardTooLargeError(peerText, cidText, maxBytes, err)
    if (err instanceof BadBlockError) throw new ShardBadBlockError(peerText, cidText, err)
    throw err
  }
  return parts.length > 0 ? parts : [new Uint8Array(0)]
}

function describeReason (reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason)
}

/**
 * Answer one request on `stream` from `blocks`. Exported so a node (or a test) can serve
 * from any BlockSource; ShardServer registers it as the protocol handler.
 */
export async function serveShardStream (stream: Stream, blocks: BlockSource, remotePeer: string): Promise<void> {
  const signal = AbortSignal.timeout(SERVE_BLOCK_TIMEOUT_MS)
  const onAbort = (): void => { stream.abort(new Error(`shard request not served within ${SERVE_BLOCK_TIMEOUT_MS} ms`)) }
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    await pipe(
      stream,
      (source) => lp.decode(source, { maxDataLength: MAX_CID_BYTES }),
      async function * (requests) {
        for await (const request of requests) {
          yield await respond(request.subarray(), blocks, remotePeer)
          // one block per stream: the client opens a stream per request
          return
        }
      },
      (source) => lp.encode(source),
      stream
    )
  } catch (err) {
    log('serving %s failed: %s', remotePeer, (err as Error).message)
    stream.abort(err as Error)
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

async function respond (request: Uint8Array, blocks: BlockSource, remotePeer: string): Promise<Uint8Array> {
  let cid: CID
  try {
    cid = CID.decode(request)
  } catch (err) {
    log('malformed shard request from %s: %s', remotePeer, (err as Error).message)
    return Uint8Array.of(ShardStatus.BAD_REQUEST)
  }
  const block = await blocks.get(cid)
  if (block === undefined || block.length > MAX_BLOCK_BYTES) {
    log('%s asked for %s: not here', remotePeer, cid)
    return Uint8Array.of(ShardStatus.NOT_FOUND)
  }
  log.trace('serving %s (%d bytes) to %s', cid, block.length, remotePeer)
  const response = new Uint8Array(1 + block.length)
  response[0] = ShardStatus.OK
  response.set(block, 1)
  return response
}

export interface ShardServerInit {
  maxInboundStreams?: number
  maxOutboundStreams?: number
}

/** Serves blocks over /poi/shard/1/ while started. */
export class ShardServer {
  private started = false
  private readonly handler: StreamHandler

  constructor (
    private readonly libp2p: Pick<Libp2p, 'handle' | 'unhandle'>,
    private readonly blocks: BlockSource,
    private readonly init: ShardServerInit = {}
  ) {
    this.handler = ({ stream, connection }) => {
      void serveShardStream(stream, this.blocks, connection.remotePeer.toString())
    }
  }

  isStarted (): boolean {
    return this.started
  }

  async start (): Promise<void> {
    if (this.started) return
    await this.libp2p.handle(SHARD_PROTOCOL, this.handler, {
      maxInboundStreams: this.init.maxInboundStreams ?? MAX_INBOUND_STREAMS,
      maxOutboundStreams: this.init.maxOutboundStreams ?? MAX_OUTBOUND_STREAMS
    })
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    await this.libp2p.unhandle(SHARD_PROTOCOL)
    this.started = false
  }
}
