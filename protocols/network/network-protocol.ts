/**
 * /poi/network/1/: a requester that knows only a bootstrap address asks it which poi contracts
 * the network uses, so that `poi request` needs no deployment file.
 *
 * Trust: the answering node is not trusted. `fetchNetworkInfo` decodes the answer strictly
 * (version, status, exact 20-byte addresses, canonical bytes), which only proves it is
 * well-formed. Whether the contracts exist on the chain and belong together is for the caller
 * to check against the chain itself (contracts' checkDeployment) before using them.
 *
 * Compatibility both ways: a field added to NetworkInfo after version 1 shipped (only
 * maxTaskTtlSeconds so far) is sent only to a requester that asks for it in its request, so a
 * requester older than the field, whose strict codec refuses unknown fields, never receives
 * it. A node older than the field refuses the asking request as malformed (BAD_REQUEST, its
 * strict request codec does not know the request's field either); fetchNetworkInfo then asks
 * again without it and gets that node's answer as it always was, without the limit.
 */
import { logger } from '@libp2p/logger'
import {
  ADDRESS_BYTES, DecodeError, defineCodec, ruleExactBytes, ruleOneOf, ruleUint32, ruleUint64, ruleVersion, to0xHex, violation, WIRE_LENGTH_DELIMITED as L,
  WIRE_VARINT as V, type FieldViolation, NetworkInfo, NetworkInfoRequest
} from '../wire/index.js'
import {
  defineExchange, ExchangeError, ExchangeServer, type ExchangeErrorCode, type ExchangeFetchOptions, type ExchangeLibp2p, type ExchangePeer,
  type ExchangeServerInit
} from '../exchange/index.js'
import {
  MAX_NETWORK_INFO_REQUEST_BYTES, MAX_NETWORK_INFO_RESPONSE_BYTES, NETWORK_MAX_OUTBOUND_STREAMS, NETWORK_PROTOCOL,
  NETWORK_STATUS, NETWORK_VERSION
} from './constants.js'

const log = logger('poi:network')

/** The codes a fetch of the network's contracts fails with (ExchangeError.code): only the common ones. */
export type NetworkInfoFetchErrorCode = ExchangeErrorCode

// ---------------------------------------------------------------------------------------------
// Wire codecs

const STATUSES = Object.values(NETWORK_STATUS)
const EMPTY = new Uint8Array(0)

function checkRequest (req: NetworkInfoRequest): FieldViolation | undefined {
  return ruleVersion(req.version, NETWORK_VERSION)
}

/** What the answer to `req` may carry beyond version 1's first fields: only what it asked for. */
function checkAnswerTo (req: NetworkInfoRequest, res: NetworkInfo): FieldViolation | undefined {
  if (!req.withMaxTaskTtl && res.maxTaskTtlSeconds !== 0) {
    return violation('INVALID_FIELD', 'maxTaskTtlSeconds', 'is set, but the request did not ask for it (withMaxTaskTtl unset)')
  }
  return undefined
}

/** The answer to `req`: `info` without the fields the request did not ask for. */
function answerTo (req: NetworkInfoRequest, info: NetworkInfo): NetworkInfo {
  return req.withMaxTaskTtl ? info : { ...info, maxTaskTtlSeconds: 0 }
}

function checkResponse (res: NetworkInfo): FieldViolation | undefined {
  const bad = ruleVersion(res.version, NETWORK_VERSION) ?? ruleOneOf('status', res.status, STATUSES) ??
    ruleUint64('chainId', res.chainId) ?? ruleUint64('deployedAtBlock', res.deployedAtBlock) ??
    ruleUint32('maxTaskTtlSeconds', res.maxTaskTtlSeconds)
  if (bad !== undefined) return bad
  // A node's own limit, with or without a chain; absent (0) from a node older than the field.
  if (res.status === NETWORK_STATUS.BAD_REQUEST && res.maxTaskTtlSeconds !== 0) {
    return violation('INVALID_FIELD', 'maxTaskTtlSeconds', `must be unset with status ${res.status} (a refused request)`)
  }
  if (res.status === NETWORK_STATUS.FOUND) {
    if (res.chainId === 0n) return violation('INVALID_FIELD', 'chainId', 'is 0; a deployment lives on a chain with a non-zero id')
    return ruleExactBytes('registry', res.registry, ADDRESS_BYTES) ??
      ruleExactBytes('taskManager', res.taskManager, ADDRESS_BYTES) ??
      ruleExactBytes('slashing', res.slashing, ADDRESS_BYTES) ??
      (res.modelRegistry.length === 0 ? undefined : ruleExactBytes('modelRegistry', res.modelRegistry, ADDRESS_BYTES))
  }
  // NO_CHAIN and BAD_REQUEST carry no deployment.
  const unset = (field: string, isSet: boolean): FieldViolation | undefined =>
    isSet ? violation('INVALID_FIELD', field, `must be unset with status ${res.status} (no deployment)`) : undefined
  return unset('chainId', res.chainId !== 0n) ?? unset('deployedAtBlock', res.deployedAtBlock !== 0n) ??
    unset('registry', res.registry.length > 0) ?? unset('taskManager', res.taskManager.length > 0) ??
    unset('slashing', res.slashing.length > 0) ?? unset('modelRegistry', res.modelRegistry.length > 0)
}

const REQUEST_CODEC = defineCodec<NetworkInfoRequest>({
  name: 'NetworkInfoRequest',
  maxBytes: MAX_NETWORK_INFO_REQUEST_BYTES,
  fields: { version: [1, V], withMaxTaskTtl: [2, V] },
  proto: NetworkInfoRequest,
  check: checkRequest
})

/**
 * maxTaskTtlSeconds (field 9) came after version 1 shipped, without a version bump, so it is
 * opt-in: a node sets it only for a request with withMaxTaskTtl (field 2), and a requester
 * refuses it set when it did not ask (checkAnswerTo). A requester older than the field never
 * asks, so it never receives a field its strict codec would refuse as NON_CANONICAL; an answer
 * without it (an older node's) decodes here as 0, "not said", and the default applies. Nodes
 * and requesters upgrade in any order.
 */
const RESPONSE_CODEC = defineCodec<NetworkInfo>({
  name: 'NetworkInfo',
  maxBytes: MAX_NETWORK_INFO_RESPONSE_BYTES,
  fields: {
    version: [1, V], status: [2, V], chainId: [3, V], registry: [4, L], taskManager: [5, L], slashing: [6, L],
    modelRegistry: [7, L], deployedAtBlock: [8, V], maxTaskTtlSeconds: [9, V]
  },
  proto: NetworkInfo,
  check: checkResponse
})

export const decodeNetworkInfoRequest: (bytes: Uint8Array) => NetworkInfoRequest = REQUEST_CODEC.decode
export const decodeNetworkInfo: (bytes: Uint8Array) => NetworkInfo = RESPONSE_CODEC.decode
export const encodeNetworkInfo: (info: NetworkInfo) => Uint8Array<ArrayBuffer> = RESPONSE_CODEC.encode

/**
 * The answer of a node that runs without contracts (from a genesis file) and does not say its
 * task limit. What a node announces is built by node/ (contracts' Deployment and the node's
 * maximum task TTL → NetworkInfo).
 */
export const NO_CHAIN_INFO: NetworkInfo = Object.freeze({
  version: NETWORK_VERSION, status: NETWORK_STATUS.NO_CHAIN, chainId: 0n, registry: EMPTY, taskManager: EMPTY, slashing: EMPTY, modelRegistry: EMPTY, deployedAtBlock: 0n, maxTaskTtlSeconds: 0
})

/** /poi/network/1/: one NetworkInfoRequest, one NetworkInfo. */
export const NETWORK_EXCHANGE = defineExchange<NetworkInfoRequest, NetworkInfo>({
  protocol: NETWORK_PROTOCOL,
  request: REQUEST_CODEC,
  response: RESPONSE_CODEC,
  maxOutboundStreams: NETWORK_MAX_OUTBOUND_STREAMS,
  badRequest: { ...NO_CHAIN_INFO, status: NETWORK_STATUS.BAD_REQUEST },
  log
})

// ---------------------------------------------------------------------------------------------
// Server

export interface NetworkInfoServerInit extends Omit<ExchangeServerInit<NetworkInfoRequest, NetworkInfo>, 'answer'> {
  /** What this node announces: its contracts (FOUND), or NO_CHAIN_INFO when it runs from a genesis file. */
  info: NetworkInfo
}

/** Answers /poi/network/1/ with the node's deployment while started. */
export class NetworkInfoServer extends ExchangeServer<NetworkInfoRequest, NetworkInfo> {
  /** Throws EncodeError for an answer that would not pass the peers' checks. */
  constructor ({ info, ...init }: NetworkInfoServerInit) {
    // The answer never changes while the node runs: checked once.
    encodeNetworkInfo(info)
    super(NETWORK_EXCHANGE, { ...init, answer: (req) => answerTo(req, info) })
  }
}

// ---------------------------------------------------------------------------------------------
// Client

/** The caller's signal and time limit (default EXCHANGE_TIMEOUT_MS). */
export type FetchNetworkInfoOptions = Pick<ExchangeFetchOptions, 'signal' | 'timeoutMs'>

const SUBJECT = "the network's contracts"

/** Asks `peer` once with `req`; refuses an answer with a field `req` did not ask for (INVALID_RESPONSE). */
async function fetchAnswerTo (
  libp2p: Pick<ExchangeLibp2p, 'dialProtocol'>, peer: ExchangePeer, req: NetworkInfoRequest, options: FetchNetworkInfoOptions
): Promise<NetworkInfo> {
  const info = await NETWORK_EXCHANGE.fetch(libp2p, peer, req, { ...options, subject: SUBJECT })
  const bad = checkAnswerTo(req, info)
  if (bad !== undefined) {
    const cause = DecodeError.of(RESPONSE_CODEC.name, bad)
    throw NETWORK_EXCHANGE.error<ExchangeErrorCode>('INVALID_RESPONSE', peer, cause.message, { subject: SUBJECT, cause })
  }
  return info
}

/**
 * Asks `peer` which poi contracts the network uses, and its maximum task TTL: FOUND with them,
 * or NO_CHAIN when the peer runs without a chain; maxTaskTtlSeconds is 0 when the peer does not
 * say (a node older than the field). A peer that refuses the question as malformed (BAD_REQUEST:
 * a node older than withMaxTaskTtl) is asked again without it, at most once more, each exchange
 * bounded by `options`. Throws ExchangeError for an answer that is not a valid NetworkInfo
 * (garbage, oversized, another version, a field not asked for), a refusal of both questions, or
 * no answer in time. The answer is only well-formed, not yet trusted: check it against the chain
 * (contracts' checkDeployment).
 */
export async function fetchNetworkInfo (
  libp2p: Pick<ExchangeLibp2p, 'dialProtocol'>, peer: ExchangePeer, options: FetchNetworkInfoOptions = {}
): Promise<NetworkInfo> {
  try {
    return await fetchAnswerTo(libp2p, peer, { version: NETWORK_VERSION, withMaxTaskTtl: true }, options)
  } catch (err) {
    if (!(err instanceof ExchangeError) || err.code !== 'BAD_REQUEST') throw err
    log('%s refused a request asking for its maximum task TTL (a node older than the field?); asking without it', String(peer))
  }
  return await fetchAnswerTo(libp2p, peer, { version: NETWORK_VERSION, withMaxTaskTtl: false }, options)
}
