/**
 * /poi/network/1/ as nodes and requesters spoke it before the maximum task TTL (NetworkInfo
 * field 9, NetworkInfoRequest field 2): a copy of that release's strict codecs and server, so
 * the compatibility tests hold today's code against what older peers actually run, not against
 * today's rules. Do not update it with the protocol: it is the old side.
 */
import { logger } from '@libp2p/logger'
import { defineExchange, type ExchangeServer, type ExchangeServerInit } from '../../protocols/exchange/index.js'
import { NETWORK_PROTOCOL, NETWORK_STATUS, NETWORK_VERSION, NetworkInfo, NetworkInfoRequest } from '../../protocols/network/index.js'
import {
  ADDRESS_BYTES, defineCodec, ruleExactBytes, ruleOneOf, ruleUint64, ruleVersion, violation, WIRE_LENGTH_DELIMITED as L,
  WIRE_VARINT as V, type FieldViolation, type StrictCodec
} from '../../protocols/wire/index.js'

/** The old bounds: a request was only its version (tag + 5-byte varint); a NetworkInfo had no field 9. */
const OLD_MAX_REQUEST_BYTES = 6
const OLD_MAX_RESPONSE_BYTES = 122

/** The request and answer as the old release typed them. */
export type OldNetworkInfoRequest = Pick<NetworkInfoRequest, 'version'>
export type OldNetworkInfo = Omit<NetworkInfo, 'maxTaskTtlSeconds'>

const STATUSES = Object.values(NETWORK_STATUS)
const EMPTY = new Uint8Array(0)

// The old release's checkResponse, verbatim.
function checkResponse (res: OldNetworkInfo): FieldViolation | undefined {
  const bad = ruleVersion(res.version, NETWORK_VERSION) ?? ruleOneOf('status', res.status, STATUSES) ??
    ruleUint64('chainId', res.chainId) ?? ruleUint64('deployedAtBlock', res.deployedAtBlock)
  if (bad !== undefined) return bad
  if (res.status === NETWORK_STATUS.FOUND) {
    if (res.chainId === 0n) return violation('INVALID_FIELD', 'chainId', 'is 0; a deployment lives on a chain with a non-zero id')
    return ruleExactBytes('registry', res.registry, ADDRESS_BYTES) ??
      ruleExactBytes('taskManager', res.taskManager, ADDRESS_BYTES) ??
      ruleExactBytes('slashing', res.slashing, ADDRESS_BYTES) ??
      (res.modelRegistry.length === 0 ? undefined : ruleExactBytes('modelRegistry', res.modelRegistry, ADDRESS_BYTES))
  }
  const unset = (field: string, isSet: boolean): FieldViolation | undefined =>
    isSet ? violation('INVALID_FIELD', field, `must be unset with status ${res.status} (no deployment)`) : undefined
  return unset('chainId', res.chainId !== 0n) ?? unset('deployedAtBlock', res.deployedAtBlock !== 0n) ??
    unset('registry', res.registry.length > 0) ?? unset('taskManager', res.taskManager.length > 0) ??
    unset('slashing', res.slashing.length > 0) ?? unset('modelRegistry', res.modelRegistry.length > 0)
}

/**
 * The old strict codecs: field tables without the new fields, so the wire scan reports either
 * new field as unknown (NON_CANONICAL), as the old release did. Today's protons code parses the
 * bytes; only the field table and the rules decide, as in the old release.
 */
export const OLD_REQUEST_CODEC: StrictCodec<OldNetworkInfoRequest> = defineCodec<OldNetworkInfoRequest>({
  name: 'NetworkInfoRequest',
  maxBytes: OLD_MAX_REQUEST_BYTES,
  fields: { version: [1, V] },
  proto: { encode: (req) => NetworkInfoRequest.encode(req), decode: (bytes) => ({ version: NetworkInfoRequest.decode(bytes).version }) },
  check: (req) => ruleVersion(req.version, NETWORK_VERSION)
})

export const OLD_RESPONSE_CODEC: StrictCodec<OldNetworkInfo> = defineCodec<OldNetworkInfo>({
  name: 'NetworkInfo',
  maxBytes: OLD_MAX_RESPONSE_BYTES,
  fields: {
    version: [1, V], status: [2, V], chainId: [3, V], registry: [4, L], taskManager: [5, L], slashing: [6, L],
    modelRegistry: [7, L], deployedAtBlock: [8, V]
  },
  proto: {
    encode: (info) => NetworkInfo.encode(info),
    decode: (bytes) => { const { maxTaskTtlSeconds: _, ...old } = NetworkInfo.decode(bytes); return old }
  },
  check: checkResponse
})

const OLD_NO_CHAIN_INFO: OldNetworkInfo = {
  version: NETWORK_VERSION, status: NETWORK_STATUS.NO_CHAIN, chainId: 0n, registry: EMPTY, taskManager: EMPTY, slashing: EMPTY, modelRegistry: EMPTY, deployedAtBlock: 0n
}

/** The old /poi/network/1/: a request its codec refuses gets the BAD_REQUEST answer. */
export const OLD_NETWORK_EXCHANGE = defineExchange<OldNetworkInfoRequest, OldNetworkInfo>({
  protocol: NETWORK_PROTOCOL,
  request: OLD_REQUEST_CODEC,
  response: OLD_RESPONSE_CODEC,
  badRequest: { ...OLD_NO_CHAIN_INFO, status: NETWORK_STATUS.BAD_REQUEST },
  log: logger('poi:test:network-before-ttl')
})

export interface OldNetworkInfoServerInit extends Omit<ExchangeServerInit<OldNetworkInfoRequest, OldNetworkInfo>, 'answer'> {
  info: OldNetworkInfo
  /** Called for each request the old codec accepted (a refused one gets BAD_REQUEST without it). */
  onAnswer?: () => void
}

/** An old node's server: answers `info` to every request its codec accepts. */
export function oldNetworkInfoServer ({ info, onAnswer, ...init }: OldNetworkInfoServerInit): ExchangeServer<OldNetworkInfoRequest, OldNetworkInfo> {
  return OLD_NETWORK_EXCHANGE.server({ ...init, answer: () => { onAnswer?.(); return info } })
}
