/**
 * /poi/result/1/: a light requester asks any full node for a task's quorum certificate and
 * output.
 *
 * Trust: the server is not trusted. `fetchResult` decodes the answer strictly and checks what
 * needs no outside knowledge (the certificate is for the requested task; an output, when
 * present, hashes to the certificate's resultHash). Whether the certificate carries a quorum of
 * the right operators is only known against the epoch's operator set: the caller runs
 * `verifyResult` (or consensus' verifyCertificate) with the set read from the chain.
 */
import { logger } from '@libp2p/logger'
import { keccak256 } from 'viem'
import { verifyCertificate, type OperatorSet, type VerifyCertificateOptions, type VerifyCertificateResult } from '../../consensus/index.js'
import {
  decodeQuorumCertificate, encodeQuorumCertificate, type QuorumCertificate, MAX_QUORUM_CERTIFICATE_BYTES,
  MAX_REFUSAL_REASON_BYTES, TASK_ID_BYTES, bytesEqual, violation, defineCodec, ruleBoundedBytes, ruleExactBytes, ruleOneOf, ruleVersion, to0xHex,
  WIRE_LENGTH_DELIMITED as L, WIRE_VARINT as V, type FieldViolation, type StreamMessage, ResultRequest, ResultResponse
} from '../wire/index.js'
import {
  defineExchange, ExchangeServer, type ExchangeErrorCode, type ExchangeFetchOptions, type ExchangeLibp2p, type ExchangePeer,
  type ExchangeServerInit
} from '../exchange/index.js'
import {
  MAX_RESULT_OUTPUT_BYTES, MAX_RESULT_REQUEST_BYTES, MAX_RESULT_RESPONSE_BYTES, RESULT_PROTOCOL, RESULT_STATUS,
  RESULT_VERSION
} from './constants.js'

/** The codes a fetch of a result fails with (ExchangeError.code). */
export type ResultFetchErrorCode =
  | ExchangeErrorCode
  /** The certificate is for another task. */
  | 'WRONG_TASK'
  /** The output does not hash to the certificate's resultHash. */
  | 'WRONG_OUTPUT'

// ---------------------------------------------------------------------------------------------
// Wire codecs

const STATUSES = Object.values(RESULT_STATUS)
const EMPTY = new Uint8Array(0)

function checkRequest (req: ResultRequest): FieldViolation | undefined {
  return ruleVersion(req.version, RESULT_VERSION) ?? ruleExactBytes('taskId', req.taskId, TASK_ID_BYTES)
}

function checkResponse (res: ResultResponse): FieldViolation | undefined {
  const bad = ruleVersion(res.version, RESULT_VERSION) ?? ruleOneOf('status', res.status, STATUSES)
  if (bad !== undefined) return bad
  const reasonBytes = new TextEncoder().encode(res.reason).length
  if (res.status === RESULT_STATUS.REFUSED) {
    if (reasonBytes === 0 || reasonBytes > MAX_REFUSAL_REASON_BYTES) return violation('INVALID_FIELD', 'reason', `must be 1 to ${MAX_REFUSAL_REASON_BYTES} bytes with status REFUSED, is ${reasonBytes}`)
  } else if (reasonBytes > 0) {
    return violation('INVALID_FIELD', 'reason', `must be unset with status ${res.status}`)
  }
  if (res.status === RESULT_STATUS.FOUND) {
    return ruleBoundedBytes('certificate', res.certificate, 1, MAX_QUORUM_CERTIFICATE_BYTES) ??
      ruleBoundedBytes('output', res.output, 0, MAX_RESULT_OUTPUT_BYTES)
  }
  return ruleBoundedBytes('certificate', res.certificate, 0, 0) ?? ruleBoundedBytes('output', res.output, 0, 0)
}

const REQUEST_CODEC = defineCodec<ResultRequest>({
  name: 'ResultRequest',
  maxBytes: MAX_RESULT_REQUEST_BYTES,
  fields: { version: [1, V], taskId: [2, L] },
  proto: ResultRequest,
  check: checkRequest
})

const RESPONSE_CODEC = defineCodec<ResultResponse>({
  name: 'ResultResponse',
  maxBytes: MAX_RESULT_RESPONSE_BYTES,
  fields: { version: [1, V], status: [2, V], certificate: [3, L], output: [4, L], reason: [5, L] },
  proto: ResultResponse,
  check: checkResponse
})

export const decodeResultRequest: (bytes: Uint8Array) => ResultRequest = REQUEST_CODEC.decode
export const decodeResultResponse: (bytes: Uint8Array) => ResultResponse = RESPONSE_CODEC.decode
export const encodeResultResponse: (res: ResultResponse) => Uint8Array<ArrayBuffer> = RESPONSE_CODEC.encode

const answer = (status: number, certificate: Uint8Array = EMPTY, output: Uint8Array = EMPTY, reason = ''): ResultResponse =>
  ({ version: RESULT_VERSION, status, certificate: certificate as Uint8Array<ArrayBuffer>, output: output as Uint8Array<ArrayBuffer>, reason })

/** A reason cut to MAX_REFUSAL_REASON_BYTES (whole characters), never empty. */
function refusalReason (reason: string): string {
  const encoder = new TextEncoder()
  let cut = reason.trim() === '' ? 'refused' : reason
  while (encoder.encode(cut).length > MAX_REFUSAL_REASON_BYTES) cut = [...cut].slice(0, -16).join('') + '…'
  return cut
}

/** /poi/result/1/: one ResultRequest, one ResultResponse. */
export const RESULT_EXCHANGE = defineExchange<ResultRequest, ResultResponse>({
  protocol: RESULT_PROTOCOL,
  request: REQUEST_CODEC,
  response: RESPONSE_CODEC,
  badRequest: answer(RESULT_STATUS.BAD_REQUEST),
  log: logger('poi:result')
})

// ---------------------------------------------------------------------------------------------
// Server

/** What the server reads its answers from; NodeStore implements it. */
export interface ResultSource {
  getCertificate: (taskId: Uint8Array) => Promise<QuorumCertificate | undefined>
  getTaskState: (taskId: Uint8Array) => Promise<{ state: string } | undefined>
}

/** Why this node refused a task it never tracked, if it remembers (node/roles' RefusedTasks). */
export interface RefusalSource {
  refusalOf: (taskId: Uint8Array) => string | undefined
}

/**
 * Where an output that is not inline in the certificate is found: a stored stream message
 * whose keccak256(payload) is the certificate's outputRef. StreamStore implements it.
 */
export interface OutputSource {
  getByPayloadRef: (payloadRef: Uint8Array) => Promise<StreamMessage | undefined>
}

export interface ResultServerInit extends Omit<ExchangeServerInit<ResultRequest, ResultResponse>, 'answer'> {
  results: ResultSource
  outputs?: OutputSource
  /** Refusals answered as REFUSED for tasks this node does not track. */
  refusals?: RefusalSource
}

/** The answer of a node holding `results` and `outputs` to a request for `taskId`. */
async function resultOf (taskId: Uint8Array, results: ResultSource, outputs: OutputSource | undefined, refusals: RefusalSource | undefined): Promise<ResultResponse> {
  const qc = await results.getCertificate(taskId)
  if (qc === undefined) {
    const state = await results.getTaskState(taskId)
    if (state === undefined) {
      const refusal = refusals?.refusalOf(taskId)
      return refusal === undefined ? answer(RESULT_STATUS.UNKNOWN_TASK) : answer(RESULT_STATUS.REFUSED, EMPTY, EMPTY, refusalReason(refusal))
    }
    return answer(state.state === 'no-quorum' ? RESULT_STATUS.NO_QUORUM : RESULT_STATUS.PENDING)
  }
  let output: Uint8Array = EMPTY
  if (qc.output.length === 0 && outputs !== undefined) {
    const message = await outputs.getByPayloadRef(qc.outputRef)
    if (message !== undefined && message.payload.length <= MAX_RESULT_OUTPUT_BYTES) output = message.payload
  }
  return answer(RESULT_STATUS.FOUND, encodeQuorumCertificate(qc), output)
}

/** Answers /poi/result/1/ from a node's store while started. */
export class ResultServer extends ExchangeServer<ResultRequest, ResultResponse> {
  constructor ({ results, outputs, refusals, ...init }: ResultServerInit) {
    super(RESULT_EXCHANGE, { ...init, answer: async (req) => await resultOf(req.taskId, results, outputs, refusals) })
  }
}

// ---------------------------------------------------------------------------------------------
// Client

/** The caller's signal and time limit (default EXCHANGE_TIMEOUT_MS). */
export type FetchResultOptions = Pick<ExchangeFetchOptions, 'signal' | 'timeoutMs'>

export type FetchResultResult =
  /**
   * `output` is the canonical output, already checked against certificate.resultHash; undefined
   * when the certificate does not carry it inline and the server does not hold it (fetch it by
   * certificate.outputRef over /poi/stream/1/, fetchStreamMessageByPayload).
   */
  | { status: 'found', certificate: QuorumCertificate, output: Uint8Array | undefined }
  | { status: 'unknown-task' }
  | { status: 'pending' }
  | { status: 'no-quorum' }
  /** The peer says it refused the task, and why: its claim, not proof (another node may have accepted it). */
  | { status: 'refused', reason: string }

/**
 * Asks `peer` for the result of `taskId`. Throws ExchangeError (codes: ResultFetchErrorCode) for
 * an answer that cannot be right (wrong task, output not matching the result hash, garbage,
 * oversized, timeout). The certificate is NOT yet checked against the operator set: call
 * verifyResult.
 */
export async function fetchResult (libp2p: Pick<ExchangeLibp2p, 'dialProtocol'>, peer: ExchangePeer, taskId: Uint8Array, options: FetchResultOptions = {}): Promise<FetchResultResult> {
  if (!(taskId instanceof Uint8Array) || taskId.length !== TASK_ID_BYTES) throw new TypeError(`taskId must be ${TASK_ID_BYTES} bytes`)
  const subject = `the result of task ${to0xHex(taskId)}`
  const fail = (code: ResultFetchErrorCode, reason: string, cause?: unknown): Error => RESULT_EXCHANGE.error(code, peer, reason, { subject, cause })

  const response = await RESULT_EXCHANGE.fetch(libp2p, peer, { version: RESULT_VERSION, taskId: Uint8Array.from(taskId) }, { ...options, subject })
  switch (response.status) {
    case RESULT_STATUS.UNKNOWN_TASK: return { status: 'unknown-task' }
    case RESULT_STATUS.PENDING: return { status: 'pending' }
    case RESULT_STATUS.NO_QUORUM: return { status: 'no-quorum' }
    case RESULT_STATUS.REFUSED: return { status: 'refused', reason: response.reason }
  }
  let certificate: QuorumCertificate
  try {
    certificate = decodeQuorumCertificate(response.certificate)
  } catch (err) {
    throw fail('INVALID_RESPONSE', (err as Error).message, err)
  }

  if (!bytesEqual(certificate.taskId, taskId)) throw fail('WRONG_TASK', `the certificate is for task ${to0xHex(certificate.taskId)}`)
  if (certificate.output.length > 0 && response.output.length > 0) {
    throw fail('INVALID_RESPONSE', 'the output is sent twice: inline in the certificate and beside it')
  }
  const output = certificate.output.length > 0 ? certificate.output : response.output.length > 0 ? response.output : undefined
  if (output !== undefined && !bytesEqual(keccak256(output, 'bytes'), certificate.resultHash)) {
    throw fail('WRONG_OUTPUT', `the output hashes to ${keccak256(output)}, the certificate's resultHash is ${to0xHex(certificate.resultHash)}`)
  }
  return { status: 'found', certificate, output }
}

/**
 * What a light requester checks before trusting a result: the certificate verifies against the
 * epoch's operator set (aggregate signature, signers' stake ≥ quorum; pass the task's quorumBps
 * in options) and keccak256(output) equals its resultHash. `output` is the canonical output
 * (agreement rule applied). Never throws: a bad result is { ok: false, reason }.
 */
export function verifyResult (certificate: QuorumCertificate, output: Uint8Array, operatorSet: OperatorSet, options: VerifyCertificateOptions = {}): VerifyCertificateResult {
  if (!(output instanceof Uint8Array)) return { ok: false, reason: 'output must be bytes (the canonical output)' }
  const verdict = verifyCertificate(certificate, operatorSet, options)
  if (!verdict.ok) return verdict
  const outputHash = keccak256(output, 'bytes')
  if (!bytesEqual(outputHash, certificate.resultHash)) {
    return { ok: false, reason: `output hashes to ${to0xHex(outputHash)}, not to the certified resultHash ${to0xHex(certificate.resultHash)}` }
  }
  return verdict
}
