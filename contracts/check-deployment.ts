/**
 * Checks a deployment someone else named (a bootstrap node's /poi/network/1/ answer, a
 * deployment file) against the chain itself before it is used: the RPC serves the named
 * chain, every address holds code, and the contracts point at each other as deployPoi wires
 * them.
 *
 * What this proves: the addresses form one consistent poi deployment rooted at `registry`.
 * Reading from the registry outward (registry.slasher() → slashing.taskManager() → taskManager
 * .registry()) pins every address but the ModelRegistry, which links to nothing and is only
 * checked to be one, and the ERC-8004 registries: the ValidationRegistry must name the deployment's
 * IdentityRegistry (getIdentityRegistry()), and the IdentityRegistry must answer as one. What it cannot prove: that `registry` is the network's registry and not a
 * complete copy deployed by whoever answered; pin the registry address where that matters.
 */
import {
  AbiDecodingDataSizeTooSmallError, AbiDecodingZeroDataError, BaseError, ContractFunctionRevertedError, ContractFunctionZeroDataError,
  isAddress, isAddressEqual, type Abi, type PublicClient
} from 'viem'
import { PoiError } from '../protocols/wire/index.js'
import type { Deployment } from './deployment.js'
import {
  IdentityRegistryAbi, ModelRegistryAbi, OperatorRegistryAbi, SlashingManagerAbi, TaskManagerAbi, ValidationRegistryAbi
} from './generated/artifacts.js'

export type DeploymentContract = 'registry' | 'taskManager' | 'slashing' | 'modelRegistry' | 'identityRegistry' | 'validationRegistry'

export type DeploymentMismatchReason =
  /** An address is not 0x-prefixed 20-byte hex. */
  | 'INVALID_ADDRESS'
  /** The RPC serves another chain than the deployment names. */
  | 'WRONG_CHAIN'
  /** No contract at an address. */
  | 'NO_CODE'
  /** The contract at an address does not answer as the poi contract it is said to be. */
  | 'NOT_A_POI_CONTRACT'
  /** TaskManager.registry() is another registry. */
  | 'TASK_MANAGER_REGISTRY'
  /** TaskManager.models() is another model registry than `modelRegistry`. */
  | 'TASK_MANAGER_MODELS'
  /** TaskManager.asset() is another payment asset than `paymentAsset`. */
  | 'PAYMENT_ASSET'
  /** OperatorRegistry.slasher() is another contract than `slashing`. */
  | 'REGISTRY_SLASHER'
  /** SlashingManager.registry() is another registry. */
  | 'SLASHING_REGISTRY'
  /** SlashingManager.taskManager() is another task manager. */
  | 'SLASHING_TASK_MANAGER'
  /** ValidationRegistry.getIdentityRegistry() is another identity registry, or the deployment names none. */
  | 'VALIDATION_IDENTITY_REGISTRY'
  /** deployedAtBlock is past the chain's head block. */
  | 'DEPLOYED_AFTER_HEAD'

/** The deployment does not match the chain: do not use it. */
export class DeploymentMismatchError extends PoiError {
  readonly reason: DeploymentMismatchReason
  /** The contract the failed check is about, when it is about one. */
  readonly contract: DeploymentContract | undefined

  constructor (reason: DeploymentMismatchReason, contract: DeploymentContract | undefined, message: string, cause?: unknown) {
    super('ERR_DEPLOYMENT_MISMATCH', `${message} [${reason}]`, { cause })
    this.reason = reason
    this.contract = contract
  }
}

const NAMES: Record<DeploymentContract, string> = {
  registry: 'OperatorRegistry',
  taskManager: 'TaskManager',
  slashing: 'SlashingManager',
  modelRegistry: 'ModelRegistry',
  identityRegistry: 'IdentityRegistry',
  validationRegistry: 'ValidationRegistry'
}

/** The contracts a deployment may leave out, checked when named. */
const OPTIONAL_ROLES = ['modelRegistry', 'identityRegistry', 'validationRegistry'] as const

/** What to do about it, appended to every mismatch. */
const ADVICE = "the node that named this deployment is misconfigured or lying; ask another bootstrap node or pass the network's deployment file"

/** The viem errors that mean "this contract does not have that function", as opposed to an RPC failure. */
function isNotThatContract (err: unknown): boolean {
  return err instanceof BaseError && err.walk(e =>
    e instanceof ContractFunctionRevertedError || e instanceof ContractFunctionZeroDataError ||
    e instanceof AbiDecodingZeroDataError || e instanceof AbiDecodingDataSizeTooSmallError) !== null
}

/**
 * Resolves when `d` is one consistent poi deployment on the chain `publicClient` serves;
 * throws DeploymentMismatchError otherwise. The ModelRegistry is checked when the deployment
 * names one. RPC failures (unreachable, timeouts) are thrown as viem reports them: they say
 * nothing about the deployment.
 */
export async function checkDeployment (publicClient: PublicClient, d: Deployment): Promise<void> {
  const roles: DeploymentContract[] = ['registry', 'taskManager', 'slashing', ...OPTIONAL_ROLES.filter(role => d[role] !== undefined)]
  const addressOf = (role: DeploymentContract): `0x${string}` => d[role] as `0x${string}`
  const label = (role: DeploymentContract): string => `${NAMES[role]} ${addressOf(role)}`

  for (const role of roles) {
    const address = addressOf(role)
    if (typeof address !== 'string' || !isAddress(address, { strict: false })) {
      throw new DeploymentMismatchError('INVALID_ADDRESS', role, `${role} ${JSON.stringify(address)} is not a 20-byte hex address; ${ADVICE}`)
    }
  }

  const chainId = await publicClient.getChainId()
  if (chainId !== d.chainId) {
    throw new DeploymentMismatchError('WRONG_CHAIN', undefined,
      `the deployment is on chain ${d.chainId}, the RPC serves chain ${chainId}: pass an RPC URL of chain ${d.chainId} (if you did, ${ADVICE})`)
  }

  const codes = await Promise.all(roles.map(async role => await publicClient.getCode({ address: addressOf(role) })))
  roles.forEach((role, i) => {
    const code = codes[i]
    if (code === undefined || code === '0x') {
      throw new DeploymentMismatchError('NO_CODE', role, `no contract at ${label(role)} on chain ${chainId}; is the RPC synced? If it is, ${ADVICE}`)
    }
  })

  const read = async (role: DeploymentContract, abi: Abi, functionName: string): Promise<unknown> => {
    try {
      return await publicClient.readContract({ address: addressOf(role), abi, functionName })
    } catch (err) {
      if (!isNotThatContract(err)) throw err
      throw new DeploymentMismatchError('NOT_A_POI_CONTRACT', role, `${label(role)} does not answer ${functionName}(), so it is not a ${NAMES[role]}; ${ADVICE}`, err)
    }
  }
  /** `role`.`functionName`() must return the address of `expected`. */
  const expectLink = async (role: DeploymentContract, abi: Abi, functionName: string, expected: DeploymentContract, reason: DeploymentMismatchReason): Promise<void> => {
    const got = await read(role, abi, functionName)
    if (typeof got !== 'string' || !isAddress(got, { strict: false }) || !isAddressEqual(got, addressOf(expected))) {
      throw new DeploymentMismatchError(reason, role,
        `${label(role)}.${functionName}() is ${String(got)}, not the ${NAMES[expected]} ${addressOf(expected)} of this deployment; ${ADVICE}`)
    }
  }

  // Ordered so that the likeliest mix-ups get the most specific reason: another deployment's
  // TaskManager fails the first check, swapped task manager and slashing addresses the second.
  await expectLink('taskManager', TaskManagerAbi, 'registry', 'registry', 'TASK_MANAGER_REGISTRY')
  await expectLink('registry', OperatorRegistryAbi, 'slasher', 'slashing', 'REGISTRY_SLASHER')
  await expectLink('slashing', SlashingManagerAbi, 'registry', 'registry', 'SLASHING_REGISTRY')
  await expectLink('slashing', SlashingManagerAbi, 'taskManager', 'taskManager', 'SLASHING_TASK_MANAGER')
  if (d.modelRegistry !== undefined) {
    const idLength = await read('modelRegistry', ModelRegistryAbi, 'MODEL_ID_LENGTH')
    if (typeof idLength !== 'bigint') {
      throw new DeploymentMismatchError('NOT_A_POI_CONTRACT', 'modelRegistry', `${label('modelRegistry')}.MODEL_ID_LENGTH() returned ${String(idLength)}; ${ADVICE}`)
    }
    await expectLink('taskManager', TaskManagerAbi, 'models', 'modelRegistry', 'TASK_MANAGER_MODELS')
  }
  if (d.paymentAsset !== undefined) {
    const asset = await read('taskManager', TaskManagerAbi, 'asset')
    if (typeof asset !== 'string' || !isAddress(asset, { strict: false }) || !isAddressEqual(asset, d.paymentAsset)) {
      throw new DeploymentMismatchError('PAYMENT_ASSET', 'taskManager',
        `${label('taskManager')}.asset() is ${String(asset)}, not the payment asset ${d.paymentAsset} of this deployment; ${ADVICE}`)
    }
  }
  if (d.validationRegistry !== undefined) {
    if (d.identityRegistry === undefined) {
      throw new DeploymentMismatchError('VALIDATION_IDENTITY_REGISTRY', 'validationRegistry', `the deployment names ${label('validationRegistry')} but no identityRegistry; ${ADVICE}`)
    }
    await expectLink('validationRegistry', ValidationRegistryAbi, 'getIdentityRegistry', 'identityRegistry', 'VALIDATION_IDENTITY_REGISTRY')
  }
  if (d.identityRegistry !== undefined) {
    // Any ERC-721 answers name(); ours names its tokens after the ERC. A ValidationRegistry that
    // links to it has already pinned it, so this only catches an identity registry named alone.
    const name = await read('identityRegistry', IdentityRegistryAbi, 'name')
    if (typeof name !== 'string') {
      throw new DeploymentMismatchError('NOT_A_POI_CONTRACT', 'identityRegistry', `${label('identityRegistry')}.name() returned ${String(name)}; ${ADVICE}`)
    }
  }

  // viem caches the block number for its polling interval; a stale head would refuse a fresh deployment.
  const head = await publicClient.getBlockNumber({ cacheTime: 0 })
  if (d.deployedAtBlock > head) {
    throw new DeploymentMismatchError('DEPLOYED_AFTER_HEAD', 'registry',
      `the deployment claims block ${d.deployedAtBlock}, the chain's head is block ${head}; is the RPC synced? If it is, ${ADVICE}`)
  }
}
