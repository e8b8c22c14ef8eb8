/**
 * A node's deployment as /poi/network/1/ carries it: contracts' Deployment on one side, the
 * wire's NetworkInfo on the other (protocols/ does not know contracts/, so the mapping lives
 * here, once).
 *
 * Trust boundary: a NetworkInfo from a peer is untrusted; `deploymentOfNetworkInfo` only turns
 * a well-formed one into a Deployment (addresses checksummed). The caller checks it against
 * the chain (contracts' checkDeployment) before using it.
 */
import { getAddress, hexToBytes } from 'viem'
import type { Deployment } from '../contracts/index.js'
import { NETWORK_STATUS, NETWORK_VERSION, NO_CHAIN_INFO } from '../protocols/network/index.js'
import { PoiError, UINT32_MAX, to0xHex, type NetworkInfo } from '../protocols/wire/index.js'

/** A peer named a chain id no EIP-155 chain uses (above 2^53, where a number is no longer exact). */
export class UnusableChainIdError extends PoiError {
  constructor (chainId: bigint) {
    super('ERR_UNUSABLE_CHAIN_ID', `the network names chain id ${chainId}, which is not a usable EIP-155 chain id`)
  }
}

/** An address as the wire carries it (20 bytes; the codec refuses any other length). */
const addressBytes = (address: `0x${string}`): Uint8Array<ArrayBuffer> => hexToBytes(address) as Uint8Array<ArrayBuffer>

/** The wire's unit for a task limit: whole seconds, rounded down (a requester then never exceeds the node's limit). */
const MS_PER_SECOND = 1000

/**
 * What a node announces: FOUND with its deployment, or NO_CHAIN without one, and the farthest
 * deadline it accepts (its `maxTaskTtlMs`, in whole seconds) when given.
 */
export function networkInfoOf (deployment: Deployment | undefined, maxTaskTtlMs?: number): NetworkInfo {
  const maxTaskTtlSeconds = maxTaskTtlMs === undefined ? 0 : Math.min(UINT32_MAX, Math.floor(maxTaskTtlMs / MS_PER_SECOND))
  if (deployment === undefined) return { ...NO_CHAIN_INFO, maxTaskTtlSeconds }
  return {
    version: NETWORK_VERSION,
    status: NETWORK_STATUS.FOUND,
    chainId: BigInt(deployment.chainId),
    registry: addressBytes(deployment.registry),
    taskManager: addressBytes(deployment.taskManager),
    slashing: addressBytes(deployment.slashing),
    modelRegistry: deployment.modelRegistry === undefined ? new Uint8Array(0) : addressBytes(deployment.modelRegistry),
    deployedAtBlock: deployment.deployedAtBlock,
    maxTaskTtlSeconds
  }
}

/** The deployment a FOUND answer names, addresses checksummed; undefined for NO_CHAIN. */
export function deploymentOfNetworkInfo (info: NetworkInfo): Deployment | undefined {
  if (info.status !== NETWORK_STATUS.FOUND) return undefined
  if (info.chainId > BigInt(Number.MAX_SAFE_INTEGER)) throw new UnusableChainIdError(info.chainId)
  const address = (bytes: Uint8Array): `0x${string}` => getAddress(to0xHex(bytes))
  const deployment: Deployment = {
    chainId: Number(info.chainId),
    registry: address(info.registry),
    taskManager: address(info.taskManager),
    slashing: address(info.slashing),
    deployedAtBlock: info.deployedAtBlock
  }
  if (info.modelRegistry.length > 0) deployment.modelRegistry = address(info.modelRegistry)
  return deployment
}

/**
 * The farthest deadline the answering node accepts, in ms after a task's arrival; undefined when
 * it does not say (a node older than the field, or a BAD_REQUEST answer): the caller then
 * assumes the default (DEFAULT_MAX_TASK_TTL_MS).
 */
export function maxTaskTtlMsOf (info: NetworkInfo): number | undefined {
  return info.maxTaskTtlSeconds === 0 ? undefined : info.maxTaskTtlSeconds * MS_PER_SECOND
}
