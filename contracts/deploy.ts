/**
 * Deploys the poi contracts in dependency order (registry → task manager → slashing manager) and
 * makes the slashing manager the registry's slasher. The deployer account becomes the registry
 * owner; after setSlasher it has no remaining power. The ModelRegistry, which depends on nothing
 * and has no owner of its own (each model has one), is deployed next, then the ERC-8004 Identity
 * Registry and the Validation Registry over it (issue 10 point 5; neither has an owner). The
 * result names every contract, the ModelRegistry and the ERC-8004 registries included.
 */
import type { Account, Chain, PublicClient, Transport, WalletClient } from 'viem'
import {
  IdentityRegistryAbi, IdentityRegistryBytecode, ModelRegistryAbi, ModelRegistryBytecode, OperatorRegistryAbi, OperatorRegistryBytecode, SlashingManagerAbi, SlashingManagerBytecode, TaskManagerAbi, TaskManagerBytecode,
  ValidationRegistryAbi, ValidationRegistryBytecode
} from './generated/artifacts.js'
import { PoiError } from '../protocols/wire/index.js'
import type { Deployment } from './deployment.js'

export type DeployPoiParameters = {
  /** Smallest stake register() accepts, wei (default 1 ether). */
  minStake?: bigint
  /**
   * Seconds an exiting stake stays after the last certificate that could count it (the start of
   * epoch exitEpoch + maxCertificateAge): the window in which evidence can still slash it (default 1 day).
   */
  exitDelay?: bigint
  /** Shortest epoch, seconds (default 1 hour). */
  epochDuration?: bigint
  /** Stake share a QC needs, basis points (default 6667, DESIGN §5). */
  quorumBps?: number
  /** How many epochs a QC's epoch may lag the current one (default 2). At most maxCertificateAge. */
  maxEpochAge?: bigint
  /**
   * The registry's bound on certificate age, epochs: an exiting operator withdraws only once this
   * many epochs have started after the last one that counted its stake, so everything it could
   * still certify stays slashable (default: maxEpochAge). Must be ≥ maxEpochAge.
   */
  maxCertificateAge?: bigint
  /** Share of the live stake an equivocation costs, basis points (default 5000). */
  slashBps?: number
  /** Share of the slashed amount paid to the reporter, basis points (default 1000). */
  reporterBps?: number
}

const MAX_UINT64 = 2n ** 64n - 1n

export const DEFAULT_DEPLOY_PARAMETERS: Required<DeployPoiParameters> = {
  minStake: 10n ** 18n,
  exitDelay: 86_400n,
  epochDuration: 3_600n,
  quorumBps: 6667,
  maxEpochAge: 2n,
  maxCertificateAge: 2n,
  slashBps: 5000,
  reporterBps: 1000
}

/** A parameter is out of range, or a deployment transaction failed. */
export class DeployError extends PoiError {
  constructor (message: string) {
    super('ERR_DEPLOY', message)
  }
}

/**
 * `params` over the defaults. maxCertificateAge follows maxEpochAge unless set, so raising only
 * maxEpochAge keeps the two consistent.
 */
export function deployParameters (params: DeployPoiParameters = {}): Required<DeployPoiParameters> {
  return { ...DEFAULT_DEPLOY_PARAMETERS, ...params, maxCertificateAge: params.maxCertificateAge ?? params.maxEpochAge ?? DEFAULT_DEPLOY_PARAMETERS.maxCertificateAge }
}

export async function deployPoi (
  walletClient: WalletClient<Transport, Chain, Account>,
  publicClient: PublicClient,
  params: DeployPoiParameters = {}
): Promise<Required<Deployment>> {
  const p = deployParameters(params)
  for (const name of ['quorumBps', 'slashBps', 'reporterBps'] as const) {
    if (!Number.isInteger(p[name]) || p[name] < 0 || p[name] > 10_000 || (name === 'quorumBps' && p[name] === 0)) {
      throw new DeployError(`${name} must be an integer number of basis points in ${name === 'quorumBps' ? 1 : 0}..10000, got ${p[name]}`)
    }
  }

  for (const name of ['exitDelay', 'epochDuration', 'maxEpochAge', 'maxCertificateAge'] as const) {
    if (p[name] < 0n || p[name] > MAX_UINT64) throw new DeployError(`${name} must fit in a uint64, got ${p[name]}`)
  }
  if (p.maxEpochAge > p.maxCertificateAge) {
    throw new DeployError(`maxEpochAge (${p.maxEpochAge}) exceeds the registry's maxCertificateAge (${p.maxCertificateAge}): certificates of epochs whose stake may already be withdrawn would be accepted, with nothing left to slash; raise maxCertificateAge or lower maxEpochAge`)
  }

  const mined = async (hash: `0x${string}`, what: string): Promise<{ contractAddress: `0x${string}` | null | undefined, blockNumber: bigint }> => {
    const receipt = await publicClient.waitForTransactionReceipt({ hash })
    if (receipt.status !== 'success') throw new DeployError(`${what} reverted in transaction ${hash}`)
    return receipt
  }
  const deployed = async (hash: `0x${string}`, what: string): Promise<{ address: `0x${string}`, blockNumber: bigint }> => {
    const receipt = await mined(hash, `deploying ${what}`)
    if (receipt.contractAddress == null) throw new DeployError(`deploying ${what}: receipt of ${hash} has no contract address`)
    return { address: receipt.contractAddress, blockNumber: receipt.blockNumber }
  }

  const registry = await deployed(await walletClient.deployContract({
    abi: OperatorRegistryAbi, bytecode: OperatorRegistryBytecode, args: [p.minStake, p.exitDelay, p.epochDuration, p.maxCertificateAge]
  }), 'OperatorRegistry')
  const taskManager = await deployed(await walletClient.deployContract({
    abi: TaskManagerAbi, bytecode: TaskManagerBytecode, args: [registry.address, p.quorumBps, p.maxEpochAge]
  }), 'TaskManager')
  const slashing = await deployed(await walletClient.deployContract({
    abi: SlashingManagerAbi, bytecode: SlashingManagerBytecode, args: [registry.address, taskManager.address, p.slashBps, p.reporterBps]
  }), 'SlashingManager')
  await mined(await walletClient.writeContract({
    address: registry.address, abi: OperatorRegistryAbi, functionName: 'setSlasher', args: [slashing.address]
  }), 'OperatorRegistry.setSlasher')
  const modelRegistry = await deployed(await walletClient.deployContract({ abi: ModelRegistryAbi, bytecode: ModelRegistryBytecode }), 'ModelRegistry')
  const identityRegistry = await deployed(await walletClient.deployContract({ abi: IdentityRegistryAbi, bytecode: IdentityRegistryBytecode }), 'IdentityRegistry')
  const validationRegistry = await deployed(await walletClient.deployContract({
    abi: ValidationRegistryAbi, bytecode: ValidationRegistryBytecode, args: [identityRegistry.address]
  }), 'ValidationRegistry')

  return {
    chainId: await publicClient.getChainId(),
    registry: registry.address,
    taskManager: taskManager.address,
    slashing: slashing.address,
    modelRegistry: modelRegistry.address,
    identityRegistry: identityRegistry.address,
    validationRegistry: validationRegistry.address,
    deployedAtBlock: registry.blockNumber
  }
}
