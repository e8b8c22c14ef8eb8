/**
 * The client library's own errors, and the one question a gateway asks of any error a request
 * ended with: which field of the request was wrong (requestErrorField), so that it can answer
 * 400 naming it. Errors of a request's content carry a `field`; errors of the network or the
 * chain (NoQuorum, an unreachable RPC) carry none: they are not the request's fault.
 */
import { PoiError, isPoiError } from '../../protocols/wire/index.js'

/** An option of PoiClient.connect that cannot be used; `field` names it (`bootstrap`, `chain`, `genesis`, `rpc`). */
export class ClientOptionsError extends PoiError {
  readonly field: string

  constructor (field: string, message: string) {
    super('ERR_CLIENT_OPTIONS', message)
    this.field = field
  }
}

/** A model given as text that is not a model id (`field`: `model`). */
export class InvalidModelIdError extends PoiError {
  readonly field = 'model'

  constructor (given: string, reason: string) {
    super('ERR_INVALID_MODEL_ID', `model ${JSON.stringify(given)} is not a model id (as \`poi model ls\` prints it): ${reason}`)
  }
}

/** A task id given as text that is not 32 bytes of hex (`field`: `taskId`). */
export class InvalidTaskIdError extends PoiError {
  readonly field = 'taskId'

  constructor (given: string) {
    super('ERR_INVALID_TASK_ID', `task id ${JSON.stringify(given.length > 80 ? given.slice(0, 80) + '…' : given)} is not 32 bytes of hex (0x followed by 64 hex digits)`)
  }
}

/** The chain's ModelRegistry does not let this requester use the model (`field`: `model`). */
export class ModelRefusedError extends PoiError {
  readonly field = 'model'

  constructor (reason: string) {
    super('ERR_MODEL_REFUSED', `the network will not run this task: ${reason}`)
  }
}

/** The requester's deposit cannot pay the task's fee: full nodes ignore such tasks (`field`: `fee`). */
export class DepositTooLowError extends PoiError {
  readonly field = 'fee'

  constructor (message: string) {
    super('ERR_DEPOSIT_TOO_LOW', message)
  }
}

/**
 * A fee the network refuses (`field`: `fee`): below the model's fee plus the network's minimum
 * (nodes refuse the task, the TaskManager its certificate), or a fee on a network without a
 * chain (nothing can be charged there). Its message starts with `fee`, so a caller can put its
 * own name for the field in front (the CLI's `--fee`).
 */
export class FeeRefusedError extends PoiError {
  readonly field = 'fee'
  /** The fee asked for, in the asset's smallest unit. */
  readonly fee: bigint
  /** The least fee the network accepts for the model (0 without a chain). */
  readonly leastFee: bigint

  constructor (fee: bigint, leastFee: bigint, message: string) {
    super('ERR_FEE_REFUSED', message)
    this.fee = fee
    this.leastFee = leastFee
  }
}

/** The chain settled the task with another result than the certificate the network showed. */
export class OnChainResultMismatchError extends PoiError {
  constructor (taskId: `0x${string}`, onChain: string, certified: string) {
    super('ERR_ONCHAIN_RESULT_MISMATCH', `the chain settled task ${taskId} with result ${onChain}, not the certified ${certified}`)
  }
}

/**
 * The request field an error names, for a 400 answer: `input` or `input.<name>` (InputError,
 * InputTooLargeError), `model` (ModelNotFoundError, ModelRefusedError, InvalidModelIdError),
 * `fee` (FeeRefusedError, DepositTooLowError), `timeoutMs` or `quorumBps` (InvalidRequestError),
 * `taskId`, or an option of connect. Undefined for an error that is not the request's fault
 * (no quorum, no peers, the chain unreachable, an abort): a gateway answers those otherwise.
 */
export function requestErrorField (err: unknown): string | undefined {
  if (!isPoiError(err)) return undefined
  const field = (err as { field?: unknown }).field
  return typeof field === 'string' && field !== '' ? field : undefined
}
