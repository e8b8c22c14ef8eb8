/**
 * /poi/network/1/: a requester that knows only a bootstrap address asks it which poi contracts
 * the network uses, so that `poi request` needs no deployment file.
 *
 * Trust: the answering node is not trusted. `fetchNetworkInfo` decodes the answer strictly
 * (version, status, exact 20-byte addresses, canonical bytes), which only proves it is
 * well-formed. Whether the contracts exist on the chain and belong together is for the caller
 * to check against the chain itself (contracts' checkDeployment) before using them.
 */
import type { PeerId, Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { Multiaddr } from '@multiformats/multiaddr'
import { bytesToHex, getAddress, hexToBytes, isAddress } from 'viem'
import {
  ADDRESS_BYTES, UINT64_MAX, decodeCanonical, MessageEncodeError, ruleExactBytes, ruleOneOf, ruleVersion,
  WIRE_LENGTH_DELIMITED as L, WIRE_VARINT as V, type FieldRuleViolation, type StrictCodec, NetworkInfo,
  NetworkInfoRequest
} from '../wire/index.js'
import { ExchangeFailure, requestOnce, ExchangeServer, type ExchangeFailureKind, type ExchangeLibp2p } from '../exchange/index.js'
import {
  MAX_NETWORK_INFO_REQUEST_BYTES, MAX_NETWORK_INFO_RESPONSE_BYTES, NETWORK_MAX_INBOUND_STREAMS,
  NETWORK_MAX_OUTBOUND_STREAMS, NETWORK_PROTOCOL, NETWORK_REQUEST_TIMEOUT_MS, NETWORK_STATUS,
  NETWORK_VERSION
} from './constants.js'

const log = logger('poi:network')

/**
 * The poi contracts of a network, as a node announces them. The same shape as the record
 * contracts' checkDeployment takes (protocols/ does not import contracts/, so it is declared
 * here too); addresses are checksummed when they come from fetchNetworkInfo.
 */
export interface NetworkDeployment {
  chainId: bigint
  registry: `0x${string}`
  taskManager: `0x${string}`
  slashing: `0x${string}`
  /** Absent when the network has no ModelRegistry. */
  modelRegistry?: `0x${string}`
  /** Block of the registry's deployment: where event scans start. */
  deployedAtBlock: bigint
}

export type NetworkInfoFetchErrorCode =
  | ExchangeFailureKind
  /** The peer says our request is malformed (a version it does not speak). */
  | 'BAD_REQUEST'
  /** The response is not a valid NetworkInfo (garbage, another version, bad field). */
  | 'INVALID_RESPONSE'

/** The peer's answer cannot be used; ask another bootstrap node or pass a deployment file. */
export class NetworkInfoFetchError extends Error {
  readonly code: NetworkInfoFetchErrorCode
  readonly peer: string

  constructor (code: NetworkInfoFetchErrorCode, peer: string, reason: string, cause?: unknown) {
    super(`asking ${peer} which poi contracts the network uses: ${reason} [${code}]`)
    this.name = 'NetworkInfoFetchError'
    this.code = code
    this.peer = peer
    this.cause = cause
  }
}

// ---------------------------------------------------------------------------------------------
// Wire codecs

const STATUSES = Object.values(NETWORK_STATUS)
const EMPTY = new Uint8Array(0)

function checkRequest (req: NetworkInfoRequest): FieldRuleViolation | undefined {
  return ruleVersion(req.version, NETWORK_VERSION)
}

function ruleUint64 (field: string, value: bigint): FieldRuleViolation | undefined {
  return typeof value === 'bigint' && value >= 0n && value <= UINT64_MAX
    ? undefined
    : { code: 'INVALID_FIELD', field, reason: `${String(value)} is not a uint64` }
}

function checkResponse (res: NetworkInfo): FieldRuleViolation | undefined {
  const bad = ruleVersion(res.version, NETWORK_VERSION) ?? ruleOneOf('status', res.status, STATUSES) ??
    ruleUint64('chainId', res.chainId) ?? ruleUint64('deployedAtBlock', res.deployedAtBlock)
  if (bad !== undefined) return bad
  if (res.status === NETWORK_STATUS.FOUND) {
    if (res.chainId === 0n) return { code: 'INVALID_FIELD', field: 'chainId', reason: 'is 0; a deployment lives on a chain with a non-zero id' }
    return ruleExactBytes('registry', res.registry, ADDRESS_BYTES) ??
      ruleExactBytes('taskManager', res.taskManager, ADDRESS_BYTES) ??
      ruleExactBytes('slashing', res.slashing, ADDRESS_BYTES) ??
      (res.modelRegistry.length === 0 ? undefined : ruleExactBytes('modelRegistry', res.modelRegistry, ADDRESS_BYTES))
  }
  // NO_CHAIN and BAD_REQUEST carry nothing else.
  const unset = (field: string, isSet: boolean): FieldRuleViolation | undefined =>
    isSet ? { code: 'INVALID_FIELD', field, reason: `must be unset with status ${res.status} (no deployment)` } : undefined
  return unset('chainId', res.chainId !== 0n) ?? unset('deployedAtBlock', res.deployedAtBlock !== 0n) ??
    unset('registry', res.registry.length > 0) ?? unset('taskManager', res.taskManager.length > 0) ??
    unset('slashing', res.slashing.length > 0) ?? unset('modelRegistry', res.modelRegistry.length > 0)
}

const REQUEST_CODEC: StrictCodec<NetworkInfoRequest> = {
  messageType: 'NetworkInfoRequest',
  maxBytes: MAX_NETWORK_INFO_REQUEST_BYTES,
  fields: new Map([[1, V]]),
  encode: (msg) => NetworkInfoRequest.encode(msg),
  decode: (bytes) => NetworkInfoRequest.decode(bytes),
  check: checkRequest
}

const RESPONSE_CODEC: StrictCodec<NetworkInfo> = {
  messageType: 'NetworkInfo',
  maxBytes: MAX_NETWORK_INFO_RESPONSE_BYTES,
  fields: new Map([[1, V], [2, V], [3, V], [4, L], [5, L], [6, L], [7, L], [8, V]]),
  encode: (msg) => NetworkInfo.encode(msg),
  decode: (bytes) => NetworkInfo.decode(bytes),
  check: checkResponse
}

export function decodeNetworkInfoRequest (bytes: Uint8Array): NetworkInfoRequest {
  return decodeCanonical(REQUEST_CODEC, bytes)
}

export function decodeNetworkInfo (bytes: Uint8Array): NetworkInfo {
  return decodeCanonical(RESPONSE_CODEC, bytes)
}

export function encodeNetworkInfo (info: NetworkInfo): Uint8Array {
  const bad = checkResponse(info)
  if (bad !== undefined) throw new MessageEncodeError('NetworkInfo', bad)
  return NetworkInfo.encode(info)
}

function addressBytes (field: string, address: string): Uint8Array<ArrayBuffer> {
  if (typeof address !== 'string' || !isAddress(address, { strict: false })) {
    throw new TypeError(`deployment.${field} must be a 0x-prefixed 20-byte hex address, got ${JSON.stringify(address)}`)
  }
  return hexToBytes(address) as Uint8Array<ArrayBuffer>
}

/** The wire form of what a node announces: FOUND with its contracts, or NO_CHAIN without any. */
export function networkInfoOf (deployment: NetworkDeployment | undefined): NetworkInfo {
  if (deployment === undefined) {
    return { version: NETWORK_VERSION, status: NETWORK_STATUS.NO_CHAIN, chainId: 0n, registry: EMPTY, taskManager: EMPTY, slashing: EMPTY, modelRegistry: EMPTY, deployedAtBlock: 0n }
  }
  return {
    version: NETWORK_VERSION,
    status: NETWORK_STATUS.FOUND,
    chainId: deployment.chainId,
    registry: addressBytes('registry', deployment.registry),
    taskManager: addressBytes('taskManager', deployment.taskManager),
    slashing: addressBytes('slashing', deployment.slashing),
    modelRegistry: deployment.modelRegistry === undefined ? EMPTY : addressBytes('modelRegistry', deployment.modelRegistry),
    deployedAtBlock: deployment.deployedAtBlock
  }
}

/** The deployment a decoded FOUND answer names, addresses checksummed; undefined for NO_CHAIN. */
function deploymentOf (info: NetworkInfo): NetworkDeployment | undefined {
  if (info.status !== NETWORK_STATUS.FOUND) return undefined
  const address = (bytes: Uint8Array): `0x${string}` => getAddress(bytesToHex(bytes))
  const deployment: NetworkDeployment = {
    chainId: info.chainId,
    registry: address(info.registry),
    taskManager: address(info.taskManager),
    slashing: address(info.slashing),
    deployedAtBlock: info.deployedAtBlock
  }
  if (info.modelRegistry.length > 0) deployment.modelRegistry = address(info.modelRegistry)
  return deployment
}

// ---------------------------------------------------------------------------------------------
// Server

export interface NetworkInfoServerInit {
  libp2p: ExchangeLibp2p
  /** The contracts this node uses; undefined when it runs from a genesis file (answers NO_CHAIN). */
  deployment: NetworkDeployment | undefined
  timeoutMs?: number
  maxInboundStreams?: number
  maxOutboundStreams?: number
}

/** Answers /poi/network/1/ with the node's deployment while started. */
export class NetworkInfoServer implements Startable {
  private readonly init: NetworkInfoServerInit
  /** The answer never changes while the node runs, so it is encoded once (and checked at construction). */
  private readonly found: Uint8Array
  private readonly badRequest: Uint8Array
  private readonly server: ExchangeServer

  /** Throws TypeError or MessageEncodeError for a deployment that would not pass the peers' checks. */
  constructor (init: NetworkInfoServerInit) {
    this.init = init
    this.found = encodeNetworkInfo(networkInfoOf(init.deployment))
    this.badRequest = encodeNetworkInfo({ ...networkInfoOf(undefined), status: NETWORK_STATUS.BAD_REQUEST })
    this.server = new ExchangeServer({
      libp2p: init.libp2p,
      protocol: NETWORK_PROTOCOL,
      maxRequestBytes: MAX_NETWORK_INFO_REQUEST_BYTES,
      timeoutMs: init.timeoutMs ?? NETWORK_REQUEST_TIMEOUT_MS,
      maxInboundStreams: init.maxInboundStreams ?? NETWORK_MAX_INBOUND_STREAMS,
      maxOutboundStreams: init.maxOutboundStreams ?? NETWORK_MAX_OUTBOUND_STREAMS,
      log,
      answer: async (request, from) => this.answer(request, from)
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

  private answer (request: Uint8Array, from: PeerId): Uint8Array {
    try {
      decodeNetworkInfoRequest(request)
    } catch (err) {
      log('bad request from %p: %s', from, (err as Error).message)
      return this.badRequest
    }
    return this.found
  }
}

// ---------------------------------------------------------------------------------------------
// Client

export interface FetchNetworkInfoOptions {
  signal?: AbortSignal
  /** Default NETWORK_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number
}

/**
 * Asks `peer` which poi contracts the network uses. Returns undefined when the peer runs
 * without a chain (NO_CHAIN). Throws NetworkInfoFetchError for an answer that is not a valid
 * NetworkInfo (garbage, oversized, another version) or no answer in time. The deployment is
 * only well-formed, not yet trusted: check it against the chain (contracts' checkDeployment).
 */
export async function fetchNetworkInfo (
  libp2p: Pick<ExchangeLibp2p, 'dialProtocol'>, peer: PeerId | Multiaddr | Multiaddr[], options: FetchNetworkInfoOptions = {}
): Promise<NetworkDeployment | undefined> {
  const fail = (code: NetworkInfoFetchErrorCode, reason: string, cause?: unknown): NetworkInfoFetchError => new NetworkInfoFetchError(code, String(peer), reason, cause)

  let bytes: Uint8Array
  try {
    bytes = await requestOnce(libp2p, peer, NETWORK_PROTOCOL, NetworkInfoRequest.encode({ version: NETWORK_VERSION }), {
      maxResponseBytes: MAX_NETWORK_INFO_RESPONSE_BYTES,
      timeoutMs: options.timeoutMs ?? NETWORK_REQUEST_TIMEOUT_MS,
      signal: options.signal
    })
  } catch (err) {
    if (err instanceof ExchangeFailure) throw fail(err.kind, err.message, err)
    throw err
  }

  let info: NetworkInfo
  try {
    info = decodeNetworkInfo(bytes)
  } catch (err) {
    throw fail('INVALID_RESPONSE', (err as Error).message, err)
  }
  if (info.status === NETWORK_STATUS.BAD_REQUEST) {
    throw fail('BAD_REQUEST', `the peer refused the request as malformed (does it speak ${NETWORK_PROTOCOL} version ${NETWORK_VERSION}?)`)
  }
  return deploymentOf(info)
}
