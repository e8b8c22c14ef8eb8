/**
 * ERC-8004 ("Trustless Agents", a Draft) from TypeScript: register an agent in the Identity
 * Registry, ask a validator to validate its work in the Validation Registry, and read what the
 * validator answered. In poi the validator is the TaskManager: a request naming it, for a task
 * that names the request's hash, is answered with 100, `poiTaskUri(taskId)`, the result hash
 * and the tag POI_VALIDATION_TAG when the task's certificate is accepted (DESIGN §9).
 *
 * Transactions simulate first (a refusal costs no gas and surfaces as an Erc8004Error named after
 * the contract's custom error), then send and wait for the receipt. Chain data is untrusted: the
 * agentId of a registration is read from the identity registry's own Registered event.
 */
import {
  bytesToHex, isHex, parseEventLogs, type Account, type Chain, type PublicClient, type TransactionReceipt, type Transport, type WalletClient
} from 'viem'
import { TransactionFailedError } from './actions.js'
import { IdentityRegistryAbi, ValidationRegistryAbi } from './generated/artifacts.js'
import { contractErrorArgs, contractErrorName } from './revert.js'
import { PoiError } from '../protocols/wire/index.js'

type Wallet = WalletClient<Transport, Chain, Account>

/** Mirrors ValidationRegistry.MAX_RESPONSE: the ERC's scores run from 0 (failed) to 100 (passed). */
export const MAX_VALIDATION_RESPONSE = 100
/** The tag the TaskManager gives its responses: a quorum certificate backs the result. */
export const POI_VALIDATION_TAG = 'poi-qc'
/** The scheme of a task's URI in a validation response: poi://task/0x<task id>. */
export const POI_TASK_URI_PREFIX = 'poi://task/'
/** A task id is 32 bytes (wire Task.taskId). */
const TASK_ID_BYTES = 32

/** The registries' custom errors, each a reason a caller can branch on. */
export type Erc8004ErrorReason =
  | 'ZeroValidator' | 'ZeroRequestHash' | 'EmptyRequestURI' | 'UnknownAgent' | 'NotAgentOwnerOrOperator'
  | 'RequestExists' | 'UnknownRequest' | 'NotRequestValidator' | 'ResponseOutOfRange'

const REASONS: ReadonlySet<string> = new Set<Erc8004ErrorReason>([
  'ZeroValidator', 'ZeroRequestHash', 'EmptyRequestURI', 'UnknownAgent', 'NotAgentOwnerOrOperator',
  'RequestExists', 'UnknownRequest', 'NotRequestValidator', 'ResponseOutOfRange'
])

/** An ERC-8004 registry refused a call (`reason` is its custom error), or a value cannot be one the ERC takes. */
export class Erc8004Error extends PoiError {
  readonly reason: Erc8004ErrorReason | 'INVALID_TASK_ID' | 'NO_REGISTERED_EVENT'

  constructor (reason: Erc8004ErrorReason | 'INVALID_TASK_ID' | 'NO_REGISTERED_EVENT', message: string, options?: { cause?: unknown }) {
    super('ERR_ERC8004', message, options)
    this.reason = reason
  }
}

export type ValidationRequestArgs = {
  /** Who is asked to validate; in poi, the TaskManager. */
  validator: `0x${string}`
  agentId: bigint
  /** Where the validator finds everything it needs (inputs and outputs). */
  requestURI: string
  /** keccak256 of the request payload; identifies the request and must be new. */
  requestHash: `0x${string}`
}

export type ValidationStatus = {
  validator: `0x${string}`
  agentId: bigint
  /** 0..100; 0 until the validator responds (see `responded`). */
  response: number
  responseHash: `0x${string}`
  /** The latest response's tag; empty until the validator responds. */
  tag: string
  /** Block time (seconds) of the request, or of the latest response. */
  lastUpdate: bigint
  /** Whether the validator has responded at all (a response of 0 is a failed validation, not none). */
  responded: boolean
}

export type ValidationSummary = {
  /** Requests of the agent with a response that pass the filters. */
  count: bigint
  /** Their average response, rounded down; 0 when count is 0. */
  averageResponse: number
}

/** `poi://task/0x<64 hex>`: how a validation response names the task whose certificate backs it. */
export function poiTaskUri (taskId: Uint8Array | `0x${string}`): string {
  const hex = typeof taskId === 'string' ? taskId.toLowerCase() : bytesToHex(taskId)
  if (!isHex(hex, { strict: true }) || hex.length !== 2 + 2 * TASK_ID_BYTES) {
    throw new Erc8004Error('INVALID_TASK_ID', `a task id is ${TASK_ID_BYTES} bytes, got ${typeof taskId === 'string' ? JSON.stringify(taskId) : `${taskId.length} bytes`}`)
  }
  return POI_TASK_URI_PREFIX + hex
}

/**
 * Registers a new agent owned by the wallet's account, its registration file at `agentURI`
 * (omitted or empty: none yet). Returns the agentId the registry assigned.
 */
export async function registerAgent (
  walletClient: Wallet, publicClient: PublicClient, identityRegistry: `0x${string}`, agentURI = ''
): Promise<bigint> {
  const { request } = await publicClient.simulateContract({
    account: walletClient.account, address: identityRegistry, abi: IdentityRegistryAbi, functionName: 'register', args: [agentURI]
  })
  const receipt = await mined(publicClient, await walletClient.writeContract(request), 'IdentityRegistry.register')
  // The simulated return value could differ from the mined one if another registration landed first.
  const registered = parseEventLogs({ abi: IdentityRegistryAbi, eventName: 'Registered', logs: receipt.logs })
    .find(e => e.address.toLowerCase() === identityRegistry.toLowerCase())
  if (registered === undefined) {
    throw new Erc8004Error('NO_REGISTERED_EVENT', `IdentityRegistry.register: transaction ${receipt.transactionHash} emitted no Registered event from ${identityRegistry}; is that address an ERC-8004 identity registry?`)
  }
  return registered.args.agentId
}

/** Asks `validator` to validate work of `agentId`; the wallet's account must own the agent or be its operator. */
export async function requestValidation (
  walletClient: Wallet, publicClient: PublicClient, validationRegistry: `0x${string}`, args: ValidationRequestArgs
): Promise<TransactionReceipt> {
  const { request } = await refusals(publicClient.simulateContract({
    account: walletClient.account,
    address: validationRegistry,
    abi: ValidationRegistryAbi,
    functionName: 'validationRequest',
    args: [args.validator, args.agentId, args.requestURI, args.requestHash]
  }), 'validationRequest', validationRegistry)
  return await mined(publicClient, await walletClient.writeContract(request), 'ValidationRegistry.validationRequest')
}

/**
 * Records the wallet's response to `requestHash` as the validator the request named. The
 * TaskManager does this on-chain for poi tasks; this is for any other validator.
 */
export async function respondToValidation (
  walletClient: Wallet, publicClient: PublicClient, validationRegistry: `0x${string}`,
  args: { requestHash: `0x${string}`, response: number, responseURI?: string, responseHash?: `0x${string}`, tag?: string }
): Promise<TransactionReceipt> {
  const { request } = await refusals(publicClient.simulateContract({
    account: walletClient.account,
    address: validationRegistry,
    abi: ValidationRegistryAbi,
    functionName: 'validationResponse',
    args: [args.requestHash, args.response, args.responseURI ?? '', args.responseHash ?? `0x${'00'.repeat(32)}`, args.tag ?? '']
  }), 'validationResponse', validationRegistry)
  return await mined(publicClient, await walletClient.writeContract(request), 'ValidationRegistry.validationResponse')
}

/** The request's stored state, or undefined when no request has that hash. */
export async function readValidationStatus (
  publicClient: PublicClient, validationRegistry: `0x${string}`, requestHash: `0x${string}`
): Promise<ValidationStatus | undefined> {
  try {
    const [[validator, agentId, response, responseHash, tag, lastUpdate], responded] = await Promise.all([
      publicClient.readContract({ address: validationRegistry, abi: ValidationRegistryAbi, functionName: 'getValidationStatus', args: [requestHash] }),
      publicClient.readContract({ address: validationRegistry, abi: ValidationRegistryAbi, functionName: 'hasResponse', args: [requestHash] })
    ])
    return { validator, agentId, response, responseHash, tag, lastUpdate, responded }
  } catch (err) {
    if (contractErrorName(err) === 'UnknownRequest') return undefined
    throw err
  }
}

/**
 * How many of the agent's requests have a response and their average, counting only those
 * whose validator is in `validators` (omitted or empty: any) and whose latest tag is `tag`
 * (omitted or empty: any).
 */
export async function readValidationSummary (
  publicClient: PublicClient, validationRegistry: `0x${string}`, agentId: bigint, filters: { validators?: readonly `0x${string}`[], tag?: string } = {}
): Promise<ValidationSummary> {
  const [count, averageResponse] = await publicClient.readContract({
    address: validationRegistry, abi: ValidationRegistryAbi, functionName: 'getSummary', args: [agentId, filters.validators ?? [], filters.tag ?? '']
  })
  return { count, averageResponse }
}

async function mined (publicClient: PublicClient, hash: `0x${string}`, what: string): Promise<TransactionReceipt> {
  const receipt = await publicClient.waitForTransactionReceipt({ hash })
  if (receipt.status !== 'success') throw new TransactionFailedError(what, hash)
  return receipt
}

/** Awaits a simulation, turning the registry's custom-error reverts into Erc8004Errors (anything else passes through). */
async function refusals<T> (simulation: Promise<T>, functionName: 'validationRequest' | 'validationResponse', registry: `0x${string}`): Promise<T> {
  try {
    return await simulation
  } catch (err) {
    const name = contractErrorName(err)
    if (name === undefined || !REASONS.has(name)) throw err
    const reason = name as Erc8004ErrorReason
    const a = (contractErrorArgs(err) ?? []).map(String)
    const where = `ValidationRegistry ${registry}`
    const messages: Record<Erc8004ErrorReason, string> = {
      ZeroValidator: `${functionName}: name the validator (in poi, the TaskManager's address)`,
      ZeroRequestHash: `${functionName}: the request hash is zero; pass keccak256 of the request payload`,
      EmptyRequestURI: `${functionName}: the request URI is empty; say where the validator finds the request's data`,
      UnknownAgent: `agent ${a[0]} is not registered in the identity registry of ${where}; register it with registerAgent`,
      NotAgentOwnerOrOperator: `account ${a[1]} neither owns agent ${a[0]} nor is its approved operator, so it cannot request validation for it on ${where}`,
      RequestExists: `a request with hash ${a[0]} exists already on ${where}; a request hash names one request, use a new one`,
      UnknownRequest: `no request with hash ${a[0]} on ${where}`,
      NotRequestValidator: `request ${a[0]} on ${where} names validator ${a[1]}; ${a[2]} cannot respond to it`,
      ResponseOutOfRange: `response ${a[0]} is out of range: a response is 0 (failed) to ${a[1]} (passed)`
    }
    throw new Erc8004Error(reason, messages[reason], { cause: err })
  }
}
