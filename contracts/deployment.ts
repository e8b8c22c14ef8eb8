/**
 * The deployment record: which chain a poi network settles on and where its contracts are. One
 * type for every place that names a deployment: what deployPoi returns, what checkDeployment
 * checks, what a deployment file and a node's `chain` setting hold (with an RPC URL beside it),
 * and what a node announces over /poi/network/1/ (node/ maps it to the wire's NetworkInfo).
 *
 * `chainId` is a number, as viem and the deployment file have it (EIP-155 ids in use are safe
 * integers); the wire (uint64) and the EIP-712 signing domain (uint256) carry it as a bigint,
 * converted where they are built. Block numbers are bigints, as viem has them.
 */
import { getAddress, isAddress } from 'viem'
import { PoiError } from '../protocols/wire/index.js'

export type Deployment = {
  /** The chain the contracts live on (EIP-155 id, > 0). */
  chainId: number
  /** OperatorRegistry: stakes, BLS keys, epochs. The deployment is rooted here (checkDeployment). */
  registry: `0x${string}`
  /** TaskManager: verifies and stores certificates; the contract attestations are signed for. */
  taskManager: `0x${string}`
  /** SlashingManager: takes equivocation evidence. */
  slashing: `0x${string}`
  /** ModelRegistry: models, owners, fees, access (contracts/models.ts). Absent when the network has none. */
  modelRegistry?: `0x${string}`
  /** ERC-8004 Identity Registry: agents as ERC-721 tokens (contracts/erc8004.ts). Absent when the network has none. */
  identityRegistry?: `0x${string}`
  /**
   * ERC-8004 Validation Registry over `identityRegistry`: the requests the TaskManager answers as
   * validator. Named only together with `identityRegistry`.
   */
  validationRegistry?: `0x${string}`
  /**
   * The payment asset of the TaskManager's vault (deposits, fees, rewards): the zero address for
   * ETH, else an ERC-20. Absent in records older than payments (then read TaskManager.asset()).
   */
  paymentAsset?: `0x${string}`
  /**
   * PoiGovernor: proposals and votes by stake (contracts/governance.ts). Absent when the network
   * is not governed (deployed with keepOwner, or older than governance).
   */
  governor?: `0x${string}`
  /** TimelockController: owns every parameter setter; executes passed proposals after its delay. Named only with `governor`. */
  timelock?: `0x${string}`
  /** Block of the registry's deployment: where event scans (readOperatorSet, model lists) start. */
  deployedAtBlock: bigint
}

/** A deployment as JSON holds it (deployment files, config files): the block number as a decimal string. */
export type DeploymentJson = Omit<Deployment, 'deployedAtBlock'> & { deployedAtBlock: string }

/** The fields of a Deployment; any other key of a record handed to parseDeployment must be one the caller reads itself. */
export const DEPLOYMENT_FIELDS = ['chainId', 'registry', 'taskManager', 'slashing', 'modelRegistry', 'identityRegistry', 'validationRegistry', 'paymentAsset', 'governor', 'timelock', 'deployedAtBlock'] as const

/** The contracts a deployment may leave out; each is written and read only when present. */
const OPTIONAL_CONTRACTS = ['modelRegistry', 'identityRegistry', 'validationRegistry', 'governor', 'timelock'] as const

/** A deployment record (from a file, a config, a peer) is malformed; `field` names the offending field. */
export class DeploymentFormatError extends PoiError {
  readonly field: string | undefined

  constructor (message: string, field?: string) {
    super('ERR_DEPLOYMENT_FORMAT', message)
    this.field = field
  }
}

export function deploymentToJson (d: Deployment): DeploymentJson {
  const json: DeploymentJson = { chainId: d.chainId, registry: d.registry, taskManager: d.taskManager, slashing: d.slashing, deployedAtBlock: d.deployedAtBlock.toString() }
  for (const field of OPTIONAL_CONTRACTS) {
    const address = d[field]
    if (address !== undefined) json[field] = address
  }
  if (d.paymentAsset !== undefined) json.paymentAsset = d.paymentAsset
  return json
}

export interface ParseDeploymentOptions {
  /** Named in every message, e.g. `deployment file /x/deployment.json` or `setting chain`. */
  source: string
  /** Keys beside the deployment's own that the caller reads itself (e.g. `rpcUrl`); any other key is refused. */
  otherKeys?: readonly string[]
  /** Used when `deployedAtBlock` is absent (older config files); without it the field is required. */
  defaultDeployedAtBlock?: bigint
}

/**
 * Reads a deployment record from untrusted JSON: every address 20-byte hex (returned
 * checksummed), chainId a positive safe integer (a number or a decimal string), deployedAtBlock
 * a non-negative block number (a decimal string, a safe integer or a bigint). Throws
 * DeploymentFormatError naming the source and the field.
 */
export function parseDeployment (json: unknown, options: ParseDeploymentOptions): Deployment {
  const { source } = options
  if (json == null || typeof json !== 'object' || Array.isArray(json)) {
    throw new DeploymentFormatError(`${source} must be an object {chainId, registry, taskManager, slashing, modelRegistry?, identityRegistry?, validationRegistry?, paymentAsset?, governor?, timelock?, deployedAtBlock}`)
  }
  const record = json as Record<string, unknown>
  const known: readonly string[] = [...DEPLOYMENT_FIELDS, ...(options.otherKeys ?? [])]
  for (const key of Object.keys(record)) {
    if (!known.includes(key)) throw new DeploymentFormatError(`${source}: unknown key "${key}" (known: ${known.join(', ')})`, key)
  }
  const address = (field: string): `0x${string}` => {
    const v = record[field]
    if (typeof v !== 'string' || !isAddress(v, { strict: false })) {
      throw new DeploymentFormatError(`${source}.${field} must be a 0x-prefixed 20-byte contract address, got ${show(v)}`, field)
    }
    return getAddress(v)
  }
  const chainId = integer(record.chainId)
  if (chainId === undefined || chainId < 1n || chainId > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new DeploymentFormatError(`${source}.chainId must be a chain id (an integer from 1 to ${Number.MAX_SAFE_INTEGER}), got ${show(record.chainId)}`, 'chainId')
  }
  const deployedAtBlock = record.deployedAtBlock === undefined ? options.defaultDeployedAtBlock : integer(record.deployedAtBlock)
  if (deployedAtBlock === undefined || deployedAtBlock < 0n) {
    throw new DeploymentFormatError(`${source}.deployedAtBlock must be a block number (a decimal string), got ${show(record.deployedAtBlock)}`, 'deployedAtBlock')
  }
  const deployment: Deployment = {
    chainId: Number(chainId),
    registry: address('registry'),
    taskManager: address('taskManager'),
    slashing: address('slashing'),
    deployedAtBlock
  }
  for (const field of OPTIONAL_CONTRACTS) {
    if (record[field] !== undefined) deployment[field] = address(field)
  }
  if (deployment.validationRegistry !== undefined && deployment.identityRegistry === undefined) {
    throw new DeploymentFormatError(`${source}.identityRegistry is missing: a validationRegistry is named only with the identity registry its agents live in`, 'identityRegistry')
  }
  if ((deployment.governor === undefined) !== (deployment.timelock === undefined)) {
    const missing = deployment.governor === undefined ? 'governor' : 'timelock'
    throw new DeploymentFormatError(`${source}.${missing} is missing: a governor and its timelock are named together`, missing)
  }
  if (record.paymentAsset !== undefined) deployment.paymentAsset = address('paymentAsset')
  return deployment
}

/** An integer as a record may hold it: a bigint, a safe-integer number or a decimal string; undefined for anything else. */
function integer (v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : undefined
  if (typeof v === 'string' && /^(0|[1-9][0-9]*)$/.test(v)) return BigInt(v)
  return undefined
}

/** A value for a message (JSON.stringify cannot show a bigint). */
function show (v: unknown): string {
  return typeof v === 'bigint' ? `${v}n` : String(JSON.stringify(v))
}
