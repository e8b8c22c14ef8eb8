/**
 * /poi/network/1/: a requester that knows only a bootstrap address asks it which poi contracts
 * the network uses, so that `poi request` needs no deployment file.
 *
 * Trust: the answering node is not trusted. `fetchNetworkInfo` decodes the answer strictly
 * (version, status, exact 20-byte addresses, canonical bytes), which only proves it is
 * well-formed. Whether the contracts exist on the chain and belong together is for the caller
 * to check against the chain itself (contracts' checkDeployment) before using them.
 */
import { logger } from '@libp2p/logger'
import {
  ADDRESS_BYTES, defineCodec, ruleExactBytes, ruleOneOf, ruleUint32, ruleUint64, ruleVersion, to0xHex, violation, WIRE_LENGTH_DELIMITED as L,
  WIRE_VARINT as V, type FieldViolation, NetworkInfo, NetworkInfoRequest
} from '../wire/index.js'
import {
  defineExchange, ExchangeServer, type ExchangeErrorCode, type ExchangeFetchOptions, type ExchangeLibp2p, type ExchangePeer,
  type ExchangeServerInit
} from '../exchange/index.js'
import {
  MAX_NETWORK_INFO_REQUEST_BYTES, MAX_NETWORK_INFO_RESPONSE_BYTES, NETWORK_MAX_OUTBOUND_STREAMS, NETWORK_PROTOCOL,
  NETWORK_STATUS, NETWORK_VERSION
} from './constants.js'

/** The codes a fetch of the network's contracts fails with (ExchangeError.code): only the common ones. */
export type NetworkInfoFetchErrorCode = ExchangeErrorCode

// ---------------------------------------------------------------------------------------------
// Wire codecs

const STATUSES = Object.values(NETWORK_STATUS)
const EMPTY = new Uint8Array(0)

function checkRequest (req: NetworkInfoRequest): FieldViolation | undefined {
  return ruleVersion(req.version, NETWORK_VERSION)
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
  fields: { version: [1, V] },
  proto: NetworkInfoRequest,
  check: checkRequest
})

/**
 * maxTaskTtlSeconds (field 9) came after version 1 shipped, without a version bump: a requester
 * reads an older node's answer (the field absent is 0, "not said", and it assumes the default),
 * but a requester older than the field refuses a newer node's answer as NON_CANONICAL (a field
 * it does not know). Upgrade requesters with or before the nodes they ask.
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
  log: logger('poi:network')
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
    super(NETWORK_EXCHANGE, { ...init, answer: () => info })
  }
}

// ---------------------------------------------------------------------------------------------
// Client

/** The caller's signal and time limit (default EXCHANGE_TIMEOUT_MS). */
export type FetchNetworkInfoOptions = Pick<ExchangeFetchOptions, 'signal' | 'timeoutMs'>

/**
 * Asks `peer` which poi contracts the network uses: FOUND with them, or NO_CHAIN when the peer
 * runs without a chain. Throws ExchangeError for an answer that is not a valid NetworkInfo
 * (garbage, oversized, another version) or no answer in time. The answer is only well-formed,
 * not yet trusted: check it against the chain (contracts' checkDeployment).
 */
export async function fetchNetworkInfo (
  libp2p: Pick<ExchangeLibp2p, 'dialProtocol'>, peer: ExchangePeer, options: FetchNetworkInfoOptions = {}
): Promise<NetworkInfo> {
  return await NETWORK_EXCHANGE.fetch(libp2p, peer, { version: NETWORK_VERSION }, { ...options, subject: "the network's contracts" })
}
