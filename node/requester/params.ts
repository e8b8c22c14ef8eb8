/**
 * What a requester checks before it announces anything: the parameters the network's nodes
 * would refuse (a deadline beyond their maximum task TTL, a quorum outside 1..10000 bps, a
 * timeout that is not positive). A refused task is otherwise only seen as NoQuorum at its
 * deadline, since nodes refuse it silently on the gossip topic.
 */
import { DEFAULT_MIN_SIGNERS, type OperatorSet } from '../../consensus/index.js'
import { BPS_DENOMINATOR, PoiError } from '../../protocols/wire/index.js'
import { DEFAULT_MAX_TASK_TTL_MS } from '../config.js'
import { formatDuration } from './errors.js'

/** A request the network's nodes would refuse, found before it was announced. */
export class InvalidRequestError extends PoiError {
  /** Which parameter: `timeout` or `quorum`, `nonce` (a tab with a nonce), or `operators` for a network no task can be certified on. */
  readonly param: 'timeout' | 'quorum' | 'operators' | 'nonce'
  /**
   * The request field at fault as the client library and the gateway name it (`timeoutMs`,
   * `quorumBps`); undefined for `operators`, which is the network's state, not the request's.
   */
  readonly field: 'timeoutMs' | 'quorumBps' | undefined

  constructor (param: 'timeout' | 'quorum' | 'operators' | 'nonce', message: string) {
    super('ERR_INVALID_REQUEST', message)
    this.param = param
    this.field = param === 'timeout' ? 'timeoutMs' : param === 'quorum' ? 'quorumBps' : undefined
  }
}

export interface RequestLimits {
  /** The farthest deadline the network's nodes accept, from the announcement; default DEFAULT_MAX_TASK_TTL_MS. */
  maxTaskTtlMs?: number
  /** Who says so, for the message: e.g. `reported by 12D3… over /poi/network/1/`; default: the built-in default. */
  source?: string
}

/** Throws InvalidRequestError for a timeout or quorum the nodes would refuse. */
export function checkRequestParams (params: { timeoutMs: number, quorumBps: number }, limits: RequestLimits = {}): void {
  checkRequestBounds(params)
  checkTaskTtl(params.timeoutMs, limits)
}

/**
 * The checks that need no network: a timeout above 0 and a quorum in 1..10000 bps. Throws
 * InvalidRequestError.
 */
export function checkRequestBounds (params: { timeoutMs: number, quorumBps: number }): void {
  const { timeoutMs, quorumBps } = params
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new InvalidRequestError('timeout', `the task timeout must be more than 0 s (got ${timeoutMs / 1000} s): it sets the deadline from the announcement`)
  }
  if (!Number.isInteger(quorumBps) || quorumBps < 1 || quorumBps > BPS_DENOMINATOR) {
    throw new InvalidRequestError('quorum', `the quorum must be a whole number of basis points from 1 to ${BPS_DENOMINATOR} (${BPS_DENOMINATOR} = all of the stake), got ${quorumBps}`)
  }
}

/** Throws InvalidRequestError for a timeout beyond the network's maximum task TTL (`limits`, default DEFAULT_MAX_TASK_TTL_MS). */
export function checkTaskTtl (timeoutMs: number, limits: RequestLimits = {}): void {
  const maxTaskTtlMs = limits.maxTaskTtlMs ?? DEFAULT_MAX_TASK_TTL_MS
  const source = limits.maxTaskTtlMs === undefined ? 'the default' : limits.source ?? 'as given'
  if (timeoutMs > maxTaskTtlMs) {
    throw new InvalidRequestError('timeout', `the task timeout ${formatDuration(timeoutMs)} is more than the ${formatDuration(maxTaskTtlMs)} the network's nodes accept ` +
      `(their maximum task TTL, ${source}): they would refuse the task; use a timeout of at most ${Math.floor(maxTaskTtlMs / 1000)} s`)
  }
}

/**
 * Throws InvalidRequestError when the epoch has fewer operators than a certificate needs
 * signers (DEFAULT_MIN_SIGNERS, a protocol constant the contracts share): every task would end
 * in NoQuorum whatever its stake share, so none is announced.
 */
export function checkOperatorCount (set: OperatorSet): void {
  const n = set.operators.length
  if (n < DEFAULT_MIN_SIGNERS) {
    throw new InvalidRequestError('operators', `epoch ${set.epoch} has ${n} operator${n === 1 ? '' : 's'}, and a certificate needs at least ${DEFAULT_MIN_SIGNERS} distinct signers: ` +
      'no task can be certified on this network until more operators join (poi operator register, then poi epoch advance)')
  }
}
