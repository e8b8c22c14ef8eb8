/**
 * Typed failures of a block fetch over /poi/shard/1/: each names the peer, the block and why,
 * with a `kind` the fetcher branches on (drop a provider that sent a bad or oversized block)
 * and a stable `code`.
 */
import { PoiError, type BadBlockError } from '../wire/index.js'

export type ShardErrorKind = 'not-found' | 'too-large' | 'timeout' | 'bad-block' | 'protocol'

/** The stable code of each kind, as ShardError.code. */
const SHARD_ERROR_CODES = {
  'not-found': 'ERR_SHARD_NOT_FOUND',
  'too-large': 'ERR_SHARD_TOO_LARGE',
  timeout: 'ERR_SHARD_TIMEOUT',
  'bad-block': 'ERR_SHARD_BAD_BLOCK',
  protocol: 'ERR_SHARD_PROTOCOL'
} as const satisfies Record<ShardErrorKind, string>

export type ShardErrorCode = typeof SHARD_ERROR_CODES[ShardErrorKind]

/** A block fetch from one peer failed; `kind` says how, `peer` and `cid` say where. */
export class ShardError extends PoiError {
  declare readonly code: ShardErrorCode
  constructor (readonly kind: ShardErrorKind, readonly peer: string, readonly cid: string, message: string, options?: { cause?: unknown }) {
    super(SHARD_ERROR_CODES[kind], `fetching block ${cid} from ${peer}: ${message}`, options)
  }
}

/** The peer does not have the block. */
export class ShardNotFoundError extends ShardError {
  constructor (peer: string, cid: string) {
    super('not-found', peer, cid, 'the peer does not have it')
  }
}

/** The peer announced a block larger than the bound: it is refused before it is read. */
export class ShardTooLargeError extends ShardError {
  constructor (peer: string, cid: string, readonly limit: number, cause?: unknown) {
    super('too-large', peer, cid, `the peer sent more than the ${limit}-byte bound of this block`, { cause })
  }
}

/** The fetch (dial, request and response) did not finish in time, or was aborted. */
export class ShardTimeoutError extends ShardError {
  constructor (peer: string, cid: string, reason: string, cause?: unknown) {
    super('timeout', peer, cid, reason, { cause })
  }
}

/** The peer sent bytes that do not hash to the CID it was asked for. */
export class ShardBadBlockError extends ShardError {
  constructor (peer: string, cid: string, cause: BadBlockError) {
    super('bad-block', peer, cid, `the peer sent a corrupt block (${cause.message})`, { cause })
  }
}

/** The peer broke the protocol (no response, unknown status, refused our request), or the dial failed. */
export class ShardProtocolError extends ShardError {
  constructor (peer: string, cid: string, reason: string, cause?: unknown) {
    super('protocol', peer, cid, reason, { cause })
  }
}
