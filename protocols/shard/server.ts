/**
 * /poi/shard/1/ request/response, one or more requests per libp2p stream (this file serves it,
 * session.ts fetches):
 *
 *   request  = lp(CID bytes)                       at most MAX_CID_BYTES
 *   response = lp(status byte ‖ block bytes)       at most 1 + MAX_BLOCK_BYTES (or the caller's bound)
 *
 * The server answers the requests of a stream in order, one at a time, until the client closes
 * its end; it may also close after any response, and the client then asks again on a new
 * stream. A client may pipeline requests: a fetcher keeps one stream per provider and a few
 * requests in flight on it (ShardSession), because opening a stream costs about as much CPU as
 * moving a quarter MiB through it (multistream-select, peer store, muxer state on both sides).
 *
 * Trust boundary: the server trusts its block source (a BlockStore verified every block on
 * the way in) and distrusts the request; the client distrusts the whole response: the frame
 * length is checked against the bound of the request it answers before the block is
 * buffered, and the bytes are hashed against the CID before a fetch returns them.
 */
import type { Libp2p, Stream, StreamHandler } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import * as lp from 'it-length-prefixed'
import { pipe } from 'it-pipe'
import { CID } from 'multiformats/cid'
import { MAX_BLOCK_BYTES } from '../wire/index.js'
import { MAX_CID_BYTES, MAX_INBOUND_STREAMS, MAX_OUTBOUND_STREAMS, SERVE_BLOCK_TIMEOUT_MS, SHARD_PROTOCOL, ShardStatus } from './constants.js'
import { lengthPrefix } from './frame.js'

const log = logger('poi:shard')

/** Where a server reads blocks from. A BlockStore is one; tests plug in misbehaving ones. */
export interface BlockSource {
  get: (cid: CID) => Promise<Uint8Array | undefined>
}

/**
 * Answer the requests on `stream` from `blocks`, in order, until the client closes its end.
 * Exported so a node (or a test) can serve from any BlockSource; ShardServer registers it as
 * the protocol handler.
 */
export async function serveShardStream (stream: Stream, blocks: BlockSource, remotePeer: string, onServed?: (bytes: number) => void): Promise<void> {
  // restarted after every response: bounds each request, and a client that stops asking
  const timer = setTimeout(() => {
    stream.abort(new Error(`shard request not served within ${SERVE_BLOCK_TIMEOUT_MS} ms`))
  }, SERVE_BLOCK_TIMEOUT_MS)
  try {
    await pipe(
      stream,
      (source) => lp.decode(source, { maxDataLength: MAX_CID_BYTES }),
      async function * (requests) {
        for await (const request of requests) {
          const { response, malformed, served } = await respond(request.subarray(), blocks, remotePeer)
          yield * response
          if (served > 0) onServed?.(served)
          // a client that sends garbage gets its answer and nothing more
          if (malformed) return
          timer.refresh()
        }
      },
      stream
    )
  } catch (err) {
    log('serving %s failed: %s', remotePeer, (err as Error).message)
    stream.abort(err as Error)
  } finally {
    clearTimeout(timer)
  }
}

/** Length prefix and status byte of a response. */
function responseHead (status: ShardStatus, blockBytes: number): Uint8Array {
  return Buffer.concat([lengthPrefix(1 + blockBytes), Uint8Array.of(status)])
}

/** One length-prefixed response frame as [head, block]: the block is not copied. */
async function respond (request: Uint8Array, blocks: BlockSource, remotePeer: string): Promise<{ response: Uint8Array[], malformed: boolean, served: number }> {
  let cid: CID
  try {
    cid = CID.decode(request)
  } catch (err) {
    log('malformed shard request from %s: %s', remotePeer, (err as Error).message)
    return { response: [responseHead(ShardStatus.BAD_REQUEST, 0)], malformed: true, served: 0 }
  }
  const block = await blocks.get(cid)
  if (block === undefined || block.length > MAX_BLOCK_BYTES) {
    log('%s asked for %s: not here', remotePeer, cid)
    return { response: [responseHead(ShardStatus.NOT_FOUND, 0)], malformed: false, served: 0 }
  }
  log.trace('serving %s (%d bytes) to %s', cid, block.length, remotePeer)
  return { response: [responseHead(ShardStatus.OK, block.length), block], malformed: false, served: block.length }
}

export interface ShardServerInit {
  maxInboundStreams?: number
  maxOutboundStreams?: number
  /** Told the size of each block once it is sent (a node counts the model bytes it serves). */
  onServed?: (bytes: number) => void
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
      void serveShardStream(stream, this.blocks, connection.remotePeer.toString(), this.init.onServed)
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
