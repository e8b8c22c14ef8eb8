import { PoiError } from '../wire/index.js'

/** How one request/response exchange can fail before anyone reads the answer. */
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

/** The codes every exchange can fail with; a protocol adds its own for what its answers mean. */
export type ExchangeErrorCode =
  | ExchangeFailureKind
  /** The answer is not a valid response of the protocol (garbage, another version, a bad field). */
  | 'INVALID_RESPONSE'
  /** The peer refused our request as malformed (it speaks another version of the protocol). */
  | 'BAD_REQUEST'

export interface ExchangeErrorInit<C extends string> {
  code: C
  /** Protocol id, e.g. /poi/stream/1/. */
  protocol: string
  /** The peer asked (a peer id or its addresses). */
  peer: string
  /** What was asked for, e.g. "stream message 0x12…"; default "a response". */
  subject?: string
  reason: string
  cause?: unknown
}

/**
 * A request/response exchange gave nothing usable: the peer is unreachable, slow, lying or
 * simply lacks what was asked. Names the peer, the protocol, what was asked for, the kind of
 * failure (`code`) and the reason; ask another peer.
 */
export class ExchangeError<C extends string = string> extends PoiError {
  declare readonly code: C
  readonly protocol: string
  readonly peer: string
  readonly subject: string
  /** Why, without the peer, protocol and subject the message repeats. */
  readonly reason: string

  constructor (init: ExchangeErrorInit<C>) {
    const subject = init.subject ?? 'a response'
    super(init.code, `fetching ${subject} over ${init.protocol} from ${init.peer}: ${init.reason} [${init.code}]`, { cause: init.cause })
    this.protocol = init.protocol
    this.peer = init.peer
    this.subject = subject
    this.reason = init.reason
  }
}
