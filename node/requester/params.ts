/**
 * What a requester checks before it announces anything: the parameters the network's nodes
 * would refuse (a deadline beyond their maximum task TTL, a quorum outside 1..10000 bps, a
 * timeout that is not positive). A refused task is otherwise only seen as NoQuorum at its
 * deadline, since nodes refuse it silently on the gossip topic.
 */
import { BPS_DENOMINATOR, PoiError } from '../../protocols/wire/index.js'
import { DEFAULT_MAX_TASK_TTL_MS } from '../config.js'
import { formatDuration } from './errors.js'

/** A request the network's nodes would refuse, found before it was announced. */
export class InvalidRequestError extends PoiError {
  /** Which parameter: `timeout` or `quorum`. */
  readonly param: 'timeout' | 'quorum'

  constructor (param: 'timeout' | 'quorum', message: string) {
    super('ERR_INVALID_REQUEST', message)
    this.param = param
  }
}

export interface RequestLimits {
  /** The farthest deadline the network's nodes accept, from the announcement; default DEFAULT_MAX_TASK_TTL_MS. */
  maxTaskTtlMs?: number
}

/** Throws InvalidRequestError for a timeout or quorum the nodes would refuse. */
export function checkRequestParams (params: { timeoutMs: number, quorumBps: number }, limits: RequestLimits = {}): void {
  const { timeoutMs, quorumBps } = params
  const maxTaskTtlMs = limits.maxTaskTtlMs ?? DEFAULT_MAX_TASK_TTL_MS
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new InvalidRequestError('timeout', `the task timeout must be more than 0 s (got ${timeoutMs / 1000} s): it sets the deadline from the announcement`)
  }
  if (timeoutMs > maxTaskTtlMs) {
    throw new InvalidRequestError('timeout', `the task timeout ${formatDuration(timeoutMs)} is more than the ${formatDuration(maxTaskTtlMs)} the network's nodes accept ` +
      `(their maximum task TTL): they would refuse the task; use a timeout of at most ${maxTaskTtlMs / 1000} s`)
  }
  if (!Number.isInteger(quorumBps) || quorumBps < 1 || quorumBps > BPS_DENOMINATOR) {
    throw new InvalidRequestError('quorum', `the quorum must be a whole number of basis points from 1 to ${BPS_DENOMINATOR} (${BPS_DENOMINATOR} = all of the stake), got ${quorumBps}`)
  }
}
