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
import type { PeerId, Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { Multiaddr } from '@multiformats/multiaddr'
import { keccak256 } from 'viem'
import { verifyCertificate, type OperatorSet, type VerifyCertificateOptions, type VerifyCertificateResult } from '../../consensus/index.js'
import {
  decodeQuorumCertificate, encodeQuorumCertificate, type QuorumCertificate, MAX_QUORUM_CERTIFICATE_BYTES,
  TASK_ID_BYTES, decodeCanonical, MessageEncodeError, ruleBoundedBytes, ruleExactBytes, ruleOneOf,
  ruleVersion, WIRE_LENGTH_DELIMITED as L, WIRE_VARINT as V, type FieldRuleViolation, type StreamMessage,
  type StrictCodec, ResultRequest, ResultResponse
} from '../wire/index.js'
import { ExchangeFailure, requestOnce, ExchangeServer, type ExchangeFailureKind, type ExchangeLibp2p } from '../exchange/index.js'
import {
  MAX_RESULT_OUTPUT_BYTES, MAX_RESULT_REQUEST_BYTES, MAX_RESULT_RESPONSE_BYTES, RESULT_MAX_INBOUND_STREAMS,
  RESULT_MAX_OUTBOUND_STREAMS, RESULT_PROTOCOL, RESULT_REQUEST_TIMEOUT_MS, RESULT_STATUS, RESULT_VERSION
} from './constants.js'

const log = logger('poi:result')
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => hex(a) === hex(b)

export type ResultFetchErrorCode =
  | ExchangeFailureKind
  /** The peer says our request is malformed (a version it does not speak). */
  | 'BAD_REQUEST'
  /** The response is not a valid ResultResponse or its certificate does not decode. */
  | 'INVALID_RESPONSE'
  /** The certificate is for another task. */
  | 'WRONG_TASK'
  /** The output does not hash to the certificate's resultHash. */
  | 'WRONG_OUTPUT'

/** The peer's answer cannot be used; ask another full node. */
export class ResultFetchError extends Error {
  readonly code: ResultFetchErrorCode
  readonly peer: string
  readonly taskId: string

  constructor (code: ResultFetchErrorCode, peer: string, taskId: Uint8Array, reason: string, cause?: unknown) {
    super(`fetching the result of task 0x${hex(taskId)} from ${peer}: ${reason} [${code}]`)
    this.name = 'ResultFetchError'
    this.code = code
    this.peer = peer
    this.taskId = hex(taskId)
    this.cause = cause
  }
}

// ---------------------------------------------------------------------------------------------
// Wire codecs

const STATUSES = Object.values(RESULT_STATUS)

function checkRequest (req: ResultRequest): FieldRuleViolation | undefined {
  return ruleVersion(req.version, RESULT_VERSION) ?? ruleExactBytes('taskId', req.taskId, TASK_ID_BYTES)
}

function checkResponse (res: ResultResponse): FieldRuleViolation | undefined {
  const bad = ruleVersion(res.version, RESULT_VERSION) ?? ruleOneOf('status', res.status, STATUSES)
  if (bad !== undefined) return bad
  if (res.status === RESULT_STATUS.FOUND) {
    return ruleBoundedBytes('certificate', res.certificate, 1, MAX_QUORUM_CERTIFICATE_BYTES) ??
      ruleBoundedBytes('output', res.output, 0, MAX_RESULT_OUTPUT_BYTES)
  }
  return ruleBoundedBytes('certificate', res.certificate, 0, 0) ?? ruleBoundedBytes('output', res.output, 0, 0)
}

const REQUEST_CODEC: StrictCodec<ResultRequest> = {
  messageType: 'ResultRequest',
  maxBytes: MAX_RESULT_REQUEST_BYTES,
  fields: new Map([[1, V], [2, L]]),
  encode: (msg) => ResultRequest.encode(msg),
  decode: (bytes) => ResultRequest.decode(bytes),
  check: checkRequest
}

const RESPONSE_CODEC: StrictCodec<ResultResponse> = {
  messageType: 'ResultResponse',
  maxBytes: MAX_RESULT_RESPONSE_BYTES,
  fields: new Map([[1, V], [2, V], [3, L], [4, L]]),
  encode: (msg) => ResultResponse.encode(msg),
  decode: (bytes) => ResultResponse.decode(bytes),
  check: checkResponse
}

export function decodeResultRequest (bytes: Uint8Array): ResultRequest {
  return decodeCanonical(REQUEST_CODEC, bytes)
}

export function decodeResultResponse (bytes: Uint8Array): ResultResponse {
  return decodeCanonical(RESPONSE_CODEC, bytes)
}

export function encodeResultResponse (res: ResultResponse): Uint8Array {
  const bad = checkResponse(res)
  if (bad !== undefined) throw new MessageEncodeError('ResultResponse', bad)
  return ResultResponse.encode(res)
}

// ---------------------------------------------------------------------------------------------
// Server

/** What the server reads its answers from; NodeStore implements it. */
export interface ResultSource {
  getCertificate: (taskId: Uint8Array) => Promise<QuorumCertificate | undefined>
  getTaskState: (taskId: Uint8Array) => Promise<{ state: string } | undefined>
}

/**
 * Where an output that is not inline in the certificate is found: a stored stream message
 * whose keccak256(payload) is the certificate's outputRef. StreamStore implements it.
 */
export interface OutputSource {
  getByPayloadRef: (payloadRef: Uint8Array) => Promise<StreamMessage | undefined>
}

export interface ResultServerInit {
  libp2p: ExchangeLibp2p
  results: ResultSource
  outputs?: OutputSource
  timeoutMs?: number
  maxInboundStreams?: number
  maxOutboundStreams?: number
}

const EMPTY = new Uint8Array(0)

/** Answers /poi/result/1/ from a node's store while started. */
export class ResultServer implements Startable {
  private readonly init: ResultServerInit
  private readonly server: ExchangeServer

  constructor (init: ResultServerInit) {
    this.init = init
    this.server = new ExchangeServer({
      libp2p: init.libp2p,
      protocol: RESULT_PROTOCOL,
      maxRequestBytes: MAX_RESULT_REQUEST_BYTES,
      timeoutMs: init.timeoutMs ?? RESULT_REQUEST_TIMEOUT_MS,
      maxInboundStreams: init.maxInboundStreams ?? RESULT_MAX_INBOUND_STREAMS,
      maxOutboundStreams: init.maxOutboundStreams ?? RESULT_MAX_OUTBOUND_STREAMS,
      log,
      answer: async (request, from) => await this.answer(request, from)
    })
  }

  isStarted (): boolean {
    return this.server.isStarted()
  }

  async start (): Promise<void> {
    await this.server.start()
  }

  async stop (): Promise<void> {
    await this.server.stop()
  }

  private async answer (request: Uint8Array, from: PeerId): Promise<Uint8Array> {
    const reply = (status: number, certificate: Uint8Array = EMPTY, output: Uint8Array = EMPTY): Uint8Array =>
      ResultResponse.encode({ version: RESULT_VERSION, status, certificate: certificate as Uint8Array<ArrayBuffer>, output: output as Uint8Array<ArrayBuffer> })
    let req: ResultRequest
    try {
      req = decodeResultRequest(request)
    } catch (err) {
      log('bad request from %p: %s', from, (err as Error).message)
      return reply(RESULT_STATUS.BAD_REQUEST)
    }
    const qc = await this.init.results.getCertificate(req.taskId)
    if (qc === undefined) {
      const state = await this.init.results.getTaskState(req.taskId)
      if (state === undefined) return reply(RESULT_STATUS.UNKNOWN_TASK)
      return reply(state.state === 'no-quorum' ? RESULT_STATUS.NO_QUORUM : RESULT_STATUS.PENDING)
    }
    let output: Uint8Array = EMPTY
    if (qc.output.length === 0 && this.init.outputs !== undefined) {
      const message = await this.init.outputs.getByPayloadRef(qc.outputRef)
      if (message !== undefined && message.payload.length <= MAX_RESULT_OUTPUT_BYTES) output = message.payload
    }
    return reply(RESULT_STATUS.FOUND, encodeQuorumCertificate(qc), output)
  }
}

// ---------------------------------------------------------------------------------------------
// Client

export interface FetchResultOptions {
  signal?: AbortSignal
  /** Default RESULT_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number
}

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

/**
 * Asks `peer` for the result of `taskId`. Throws ResultFetchError for an answer that cannot be
 * right (wrong task, output not matching the result hash, garbage, oversized, timeout).
 * The certificate is NOT yet checked against the operator set: call verifyResult.
 */
export async function fetchResult (libp2p: Pick<ExchangeLibp2p, 'dialProtocol'>, peer: PeerId | Multiaddr | Multiaddr[], taskId: Uint8Array, options: FetchResultOptions = {}): Promise<FetchResultResult> {
  if (!(taskId instanceof Uint8Array) || taskId.length !== TASK_ID_BYTES) throw new TypeError(`taskId must be ${TASK_ID_BYTES} bytes`)
  const fail = (code: ResultFetchErrorCode, reason: string, cause?: unknown): ResultFetchError => new ResultFetchError(code, String(peer), taskId, reason, cause)

  const request = ResultRequest.encode({ version: RESULT_VERSION, taskId: Uint8Array.from(taskId) })
  let bytes: Uint8Array
  try {
    bytes = await requestOnce(libp2p, peer, RESULT_PROTOCOL, request, {
      maxResponseBytes: MAX_RESULT_RESPONSE_BYTES,
      timeoutMs: options.timeoutMs ?? RESULT_REQUEST_TIMEOUT_MS,
      signal: options.signal
    })
  } catch (err) {
    if (err instanceof ExchangeFailure) throw fail(err.kind, err.message, err)
    throw err
  }

  let response: ResultResponse
  let certificate: QuorumCertificate
  try {
    response = decodeResultResponse(bytes)
    switch (response.status) {
      case RESULT_STATUS.UNKNOWN_TASK: return { status: 'unknown-task' }
      case RESULT_STATUS.PENDING: return { status: 'pending' }
      case RESULT_STATUS.NO_QUORUM: return { status: 'no-quorum' }
      case RESULT_STATUS.BAD_REQUEST: throw fail('BAD_REQUEST', `the peer refused the request as malformed (does it speak ${RESULT_PROTOCOL} version ${RESULT_VERSION}?)`)
    }
    certificate = decodeQuorumCertificate(response.certificate)
  } catch (err) {
    if (err instanceof ResultFetchError) throw err
    throw fail('INVALID_RESPONSE', (err as Error).message, err)
  }

  if (!sameBytes(certificate.taskId, taskId)) throw fail('WRONG_TASK', `the certificate is for task 0x${hex(certificate.taskId)}`)
  if (certificate.output.length > 0 && response.output.length > 0) {
    throw fail('INVALID_RESPONSE', 'the output is sent twice: inline in the certificate and beside it')
  }
  const output = certificate.output.length > 0 ? certificate.output : response.output.length > 0 ? response.output : undefined
  if (output !== undefined && !sameBytes(keccak256(output, 'bytes'), certificate.resultHash)) {
    throw fail('WRONG_OUTPUT', `the output hashes to ${keccak256(output)}, the certificate's resultHash is 0x${hex(certificate.resultHash)}`)
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
  if (!sameBytes(outputHash, certificate.resultHash)) {
    return { ok: false, reason: `output hashes to 0x${hex(outputHash)}, not to the certified resultHash 0x${hex(certificate.resultHash)}` }
  }
  return verdict
}
