/**
 * /poi/shard/1/: fetch a content-addressed block (model chunk or manifest) from a peer by CID.
 *
 * Serve: `const server = shardServer(libp2p, blockStore); await server.start()` … `await server.stop()`.
 * Fetch: `await fetchBlock(libp2p, peerId, cid, { signal, maxBytes })` returns bytes already
 * checked against the CID, or throws a ShardError subclass naming the peer, the block and why.
 * Many blocks from one peer: `const s = new ShardSession(libp2p, peerId)`, then overlapping
 * `s.fetch(cid, { signal, maxBytes })` calls pipelined on one stream, and `s.close()`.
 */
import type { Libp2p } from '@libp2p/interface'
import { ShardServer, type BlockSource, type ShardServerInit } from './server.js'

export {
  FETCH_BLOCK_TIMEOUT_MS,
  MAX_CID_BYTES,
  MAX_INBOUND_STREAMS,
  MAX_OUTBOUND_STREAMS,
  MAX_RESPONSE_BYTES,
  SERVE_BLOCK_TIMEOUT_MS,
  SESSION_CLOSE_TIMEOUT_MS,
  SHARD_PROTOCOL,
  ShardStatus
} from './constants.js'
export {
  ShardBadBlockError,
  ShardError,
  ShardNotFoundError,
  ShardProtocolError,
  ShardTimeoutError,
  ShardTooLargeError
} from './errors.js'
export type { ShardErrorCode, ShardErrorKind } from './errors.js'
export { ShardSession, fetchBlock, fetchBlockParts } from './session.js'
export type { FetchBlockOptions } from './session.js'
export { ShardServer, serveShardStream } from './server.js'
export type { BlockSource, ShardServerInit } from './server.js'

/** A server for `blocks` on `libp2p`; it handles /poi/shard/1/ between start() and stop(). */
export function shardServer (libp2p: Pick<Libp2p, 'handle' | 'unhandle'>, blocks: BlockSource, init: ShardServerInit = {}): ShardServer {
  return new ShardServer(libp2p, blocks, init)
}
