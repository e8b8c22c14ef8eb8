/**
 * Names and limits of /poi/result/1/: a light requester asks a full node for a task's quorum
 * certificate and output. Time and stream bounds are the exchange defaults
 * (protocols/exchange/constants.ts): a requester polls one task at a time, a full node serves
 * many requesters, each with one short exchange of at most ~1 MiB.
 */
import { MAX_QUORUM_CERTIFICATE_BYTES, MAX_STREAM_PAYLOAD_BYTES } from '../wire/index.js'

/** Protocol id; the version is part of it (js-libp2p style). */
export const RESULT_PROTOCOL = '/poi/result/1/'

/** Version carried in every request and response; any other value is rejected. */
export const RESULT_VERSION = 1

/** A request is a version and a 32-byte task id. */
export const MAX_RESULT_REQUEST_BYTES = 64

/**
 * An output sent beside the certificate (when the certificate does not carry it inline) is a
 * stream payload, so it has the stream payload bound.
 */
export const MAX_RESULT_OUTPUT_BYTES = MAX_STREAM_PAYLOAD_BYTES

/** Tags, lengths and the status take a few bytes; 64 is ample. */
const RESULT_RESPONSE_HEADROOM_BYTES = 64

/** Largest response: a status, one certificate and one output. */
export const MAX_RESULT_RESPONSE_BYTES = MAX_QUORUM_CERTIFICATE_BYTES + MAX_RESULT_OUTPUT_BYTES + RESULT_RESPONSE_HEADROOM_BYTES

/** Status codes of ResultResponse.status. */
export const RESULT_STATUS = {
  /** certificate set; output set only if the certificate does not carry it inline and the server has it. */
  FOUND: 0,
  /** The server has never seen the task. */
  UNKNOWN_TASK: 1,
  /** The server knows the task; no certificate yet. Ask again later. */
  PENDING: 2,
  /** The task ended without quorum: there is no result and nothing to pay. */
  NO_QUORUM: 3,
  /** The request was malformed (another protocol version?). */
  BAD_REQUEST: 4,
  /**
   * The server refused the task when it was gossiped (e.g. a model it does not allow, a deposit
   * that does not cover the fee, an input it could not fetch); `reason` says why. A peer's claim:
   * another node may have accepted it. An older client, which does not know this status, sees a
   * malformed answer from that peer, as it would have seen UNKNOWN_TASK.
   */
  REFUSED: 5
} as const
