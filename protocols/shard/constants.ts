/**
 * Names and limits of /poi/shard/1/: fetch one content-addressed block (a model chunk or a
 * manifest) by its CID. Raising a size limit is a protocol change: older peers refuse the
 * larger frames.
 */
import { MAX_BLOCK_BYTES } from '../wire/index.js'

/** Protocol id; the version is part of the id (js-libp2p style), like /poi/stream/1/. */
export const SHARD_PROTOCOL = '/poi/shard/1/'

/**
 * Largest request frame: one binary CID. A CIDv1 with a sha2-256 multihash is 36 bytes;
 * 128 leaves room for longer hashes without letting a peer send us arbitrary data.
 */
export const MAX_CID_BYTES = 128

/** Response frame: one status byte, then the block when the status is OK. */
export const MAX_RESPONSE_BYTES = 1 + MAX_BLOCK_BYTES

/** First byte of a response. Unknown values are a protocol error. */
export const ShardStatus = {
  OK: 0,
  NOT_FOUND: 1,
  BAD_REQUEST: 2
} as const
export type ShardStatus = typeof ShardStatus[keyof typeof ShardStatus]

/**
 * Default bound on one block fetch, dial included. A 1 MiB chunk crosses a slow (10 Mbit/s)
 * link in about a second; 15 s allows for a busy provider without letting a stalled one hold
 * a chunk for long before the fetcher asks someone else.
 */
export const FETCH_BLOCK_TIMEOUT_MS = 15_000

/**
 * Bound on serving one request: wait for the CID, read the block from disk, hand it to the
 * muxer. A stream carries several requests; the bound restarts after each response, so it also
 * closes a stream the client keeps open without asking for anything.
 */
export const SERVE_BLOCK_TIMEOUT_MS = 30_000

/** Bound on closing a ShardSession's stream gracefully before it is reset instead. */
export const SESSION_CLOSE_TIMEOUT_MS = 5_000

/**
 * Concurrent shard streams per connection. A fetcher keeps one stream per provider and
 * pipelines its requests on it; 32 leaves room for one-shot fetches beside it.
 */
export const MAX_INBOUND_STREAMS = 32
export const MAX_OUTBOUND_STREAMS = 32
