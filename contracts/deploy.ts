/**
 * Deploys the poi contracts in dependency order (registry → model registry → the ERC-8004
 * Identity Registry and the Validation Registry over it → task manager, which is also the payment
 * vault and the validator that answers tasks naming a validation request, linked to the
 * BatchSettlement and TaskManagerGovernance libraries deployed just before it → slashing manager) and
 * makes the slashing manager the registry's slasher and binds the task manager to the model
 * registry (which it pays access purchases into and takes credits from at settlement). Then governance: a TimelockController (as
 * OpenZeppelin ships it) and a PoiGovernor voting with the registry's stake; the governor is the
 * timelock's only proposer and canceller, anyone may execute what the timelock holds ready, the
 * deployer names the guardian, renounces the timelock's admin role and transfers the ownership of
 * the OperatorRegistry, the TaskManager and the SlashingManager to the timelock: from then on only
 * a passed proposal, after the timelock's delay, changes a parameter. With `keepOwner` the deployer
 * keeps ownership and no governor is deployed (tests that call the setters directly). The
 * ModelRegistry and the ERC-8004 registries have no owner of their own. The result names every
 * contract and the payment asset.
 */
import { encodeDeployData, getAddress, keccak256, toHex, getContractAddress, isAddress, type Account, type Chain, type PublicClient, type Transport, type WalletClient } from 'viem'
import {
  BatchSettlementBytecode, TaskManagerGovernanceBytecode, ZkSettlementBytecode, IdentityRegistryAbi, IdentityRegistryBytecode, ModelRegistryAbi, ModelRegistryBytecode, OperatorRegistryAbi, OperatorRegistryBytecode, PoiGovernorAbi, PoiGovernorBytecode,
  SlashingManagerAbi, SlashingManagerBytecode, TaskManagerAbi, TaskManagerBytecode, TimelockControllerAbi, TimelockControllerBytecode, ValidationRegistryAbi, ValidationRegistryBytecode
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
  /** Payment asset of deposits, fees and rewards: the zero address for ETH (default), else an ERC-20. */
  asset?: `0x${string}`
  /** Receives the protocol fee (pulled with withdrawCredit); default the deployer. */
  treasury?: `0x${string}`
  /** Share of each fee after the model owner's part that goes to the treasury, basis points (default 500). */
  protocolFeeBps?: number
  /** The network's minimum fee per task on top of the model's fee, wei of the asset (default 0.0001 ether). */
  minTaskFee?: bigint
  /**
   * Seconds a task's deadline may lie ahead of the block that settles it (default 1 hour: above the
   * node's 10-minute maximum task TTL, so every task a node accepts can settle).
   */
  maxTaskLife?: bigint
  /** Seconds after a task's deadline during which its certificate is still accepted (default 1 hour). */
  settlementWindow?: bigint
  /**
   * Seconds between a requested withdrawal and its payment (default 3 hours). Must exceed
   * maxTaskLife + settlementWindow, or a requester could withdraw before a task it signed settles.
   */
  withdrawalDelay?: bigint
  /**
   * The ERC-8004 Validation Registry the TaskManager answers as validator. Default (the zero
   * address): the one deployPoi deploys beside it; another address is for tests and for a network
   * that shares an existing registry (the deployment record still names the pair deployPoi made).
   */
  validationRegistry?: `0x${string}`
  /**
   * Keep the deployer as the owner of every governed contract and deploy no governor or timelock
   * (default false). For tests and scripts that call setParameter, setGuardian or unpause
   * directly; a network meant to be governed leaves it false.
   */
  keepOwner?: boolean
  /** Governance: seconds between a proposal and the snapshot its votes are counted at (default 60: devnet-friendly; days on a real network). */
  votingDelay?: bigint
  /** Governance: seconds a proposal is open for votes (default 600). */
  votingPeriod?: bigint
  /** Governance: stake (wei of voting power) a proposer needs (default: minStake, one operator's worth). */
  proposalThreshold?: bigint
  /** Governance: percent of the active stake at the snapshot that must vote for or abstain (default 33). */
  quorumPercent?: number
  /** Governance: the timelock's minimum delay, seconds, between queueing a passed proposal and executing it (default 300). */
  timelockDelay?: bigint
  /** May pause registrations and settlement (never unpause); default the deployer. The zero address: nobody. */
  guardian?: `0x${string}`
}

/** Placeholder for "minStake" as the default proposal threshold. */
const THRESHOLD_IS_MIN_STAKE = -1n

const MAX_UINT64 = 2n ** 64n - 1n
const MAX_UINT128 = 2n ** 128n - 1n
const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000'
/** Placeholder in the defaults: deployPoi replaces it with the deploying account. */
const DEPLOYER = ZERO_ADDRESS
/**
 * 0.0001 ether: a task then costs its requester at least about what the aggregator pays to post
 * its certificate at 1 gwei (~280k gas = 0.00028 ether is the same order), so a throwaway requester
 * cannot make the network spend much more than it pays, while a task stays cheap.
 */
const DEFAULT_MIN_TASK_FEE = 10n ** 14n

export const DEFAULT_DEPLOY_PARAMETERS: Required<DeployPoiParameters> = {
  minStake: 10n ** 18n,
  exitDelay: 86_400n,
  epochDuration: 3_600n,
  quorumBps: 6667,
  maxEpochAge: 2n,
  maxCertificateAge: 2n,
  slashBps: 5000,
  reporterBps: 1000,
  asset: ZERO_ADDRESS,
  treasury: DEPLOYER,
  protocolFeeBps: 500,
  minTaskFee: DEFAULT_MIN_TASK_FEE,
  maxTaskLife: 3_600n,
  settlementWindow: 3_600n,
  withdrawalDelay: 10_800n,
  validationRegistry: ZERO_ADDRESS,
  keepOwner: false,
  votingDelay: 60n,
  votingPeriod: 600n,
  proposalThreshold: THRESHOLD_IS_MIN_STAKE,
  quorumPercent: 33,
  timelockDelay: 300n,
  guardian: DEPLOYER
}

/**
 * The PoiGovernor's quorum and the contracts' bounds as deployPoi checks them before sending
 * anything (the contracts check them again): TaskManager.MIN_QUORUM_BPS, MAX_PROTOCOL_FEE_BPS.
 */
const MIN_QUORUM_BPS = 6667
const MAX_PROTOCOL_FEE_BPS = 2000

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

/** The contracts deployPoi creates, in the order it creates them (each needs only those before it). */
export const POI_DEPLOY_ORDER = ['OperatorRegistry', 'ModelRegistry', 'IdentityRegistry', 'ValidationRegistry', 'BatchSettlement', 'TaskManagerGovernance', 'ZkSettlement', 'TaskManager', 'SlashingManager'] as const

/**
 * The linked libraries, by solc's fully qualified name: the TaskManager's batch settlement runs in
 * BatchSettlement, its setParameter and reputation views in TaskManagerGovernance and its zk
 * tier's settlement (submitZkResult, submitCertificateWithProof; issue 16) in ZkSettlement
 * (external libraries, DELEGATECALLed) because with them inside, its runtime code would exceed
 * EIP-170's 24,576 bytes.
 */
export const BATCH_SETTLEMENT_LIBRARY = 'BatchSettlement.sol:BatchSettlement'
export const TASK_MANAGER_GOVERNANCE_LIBRARY = 'TaskManagerGovernance.sol:TaskManagerGovernance'
export const ZK_SETTLEMENT_LIBRARY = 'ZkSettlement.sol:ZkSettlement'

/**
 * `bytecode` with each library placeholder solc left in it (`__$` + the first 34 hex digits of
 * keccak256(fully qualified name) + `$__`) replaced by the library's address. Throws DeployError
 * when a placeholder remains: such code would call a nonexistent address.
 */
export function linkBytecode (bytecode: `0x${string}`, libraries: Record<string, `0x${string}`>): `0x${string}` {
  let linked: string = bytecode
  for (const [name, address] of Object.entries(libraries)) {
    const placeholder = `__$${keccak256(toHex(name)).slice(2, 36)}$__`
    linked = linked.split(placeholder).join(getAddress(address).slice(2).toLowerCase())
  }
  const left = /__\$[0-9a-f]{34}\$__/.exec(linked)
  if (left !== null) throw new DeployError(`bytecode still has the library placeholder ${left[0]} after linking ${Object.keys(libraries).join(', ') || 'nothing'}`)
  return linked as `0x${string}`
}

/** The TaskManager's creation bytecode linked to the BatchSettlement library at `batchSettlement`, the TaskManagerGovernance library at `governance` and the ZkSettlement library at `zkSettlement`. */
export function taskManagerBytecode (batchSettlement: `0x${string}`, governance: `0x${string}`, zkSettlement: `0x${string}`): `0x${string}` {
  return linkBytecode(TaskManagerBytecode, { [BATCH_SETTLEMENT_LIBRARY]: batchSettlement, [TASK_MANAGER_GOVERNANCE_LIBRARY]: governance, [ZK_SETTLEMENT_LIBRARY]: zkSettlement })
}
export type PoiContractName = typeof POI_DEPLOY_ORDER[number]
type DeployedSoFar = Partial<Record<PoiContractName, `0x${string}`>>

/** Throws DeployError for parameters the contracts (or the safety of payments) rule out. */
function checkDeployParameters (p: Required<DeployPoiParameters>): void {
  for (const name of ['quorumBps', 'slashBps', 'reporterBps', 'protocolFeeBps'] as const) {
    if (!Number.isInteger(p[name]) || p[name] < 0 || p[name] > 10_000 || (name === 'quorumBps' && p[name] === 0)) {
      throw new DeployError(`${name} must be an integer number of basis points in ${name === 'quorumBps' ? 1 : 0}..10000, got ${p[name]}`)
    }
  }

  for (const name of ['exitDelay', 'epochDuration', 'maxEpochAge', 'maxCertificateAge', 'maxTaskLife', 'settlementWindow', 'withdrawalDelay'] as const) {
    if (p[name] < 0n || p[name] > MAX_UINT64) throw new DeployError(`${name} must fit in a uint64, got ${p[name]}`)
  }
  if (p.quorumBps < MIN_QUORUM_BPS) throw new DeployError(`quorumBps ${p.quorumBps} is below the floor of ${MIN_QUORUM_BPS} (two thirds): two conflicting certificates of one epoch could both reach quorum`)
  if (p.protocolFeeBps > MAX_PROTOCOL_FEE_BPS) throw new DeployError(`protocolFeeBps ${p.protocolFeeBps} is above the cap of ${MAX_PROTOCOL_FEE_BPS} (TaskManager.MAX_PROTOCOL_FEE_BPS)`)
  if (p.minTaskFee < 0n || p.minTaskFee > MAX_UINT128) throw new DeployError(`minTaskFee must be a uint128 amount of wei, got ${p.minTaskFee}`)
  for (const name of ['votingDelay', 'timelockDelay'] as const) {
    if (p[name] < 0n || p[name] >= 2n ** 48n) throw new DeployError(`${name} must be a number of seconds below 2^48, got ${p[name]}`)
  }
  if (p.votingPeriod < 1n || p.votingPeriod >= 2n ** 32n) throw new DeployError(`votingPeriod must be 1..2^32-1 seconds, got ${p.votingPeriod}`)
  if (!Number.isInteger(p.quorumPercent) || p.quorumPercent < 1 || p.quorumPercent > 100) throw new DeployError(`quorumPercent must be an integer from 1 to 100, got ${p.quorumPercent}`)
  if (p.proposalThreshold < THRESHOLD_IS_MIN_STAKE) throw new DeployError(`proposalThreshold must be a non-negative amount of wei, got ${p.proposalThreshold}`)
  for (const name of ['asset', 'treasury', 'validationRegistry', 'guardian'] as const) {
    if (!isAddress(p[name], { strict: false })) throw new DeployError(`${name} must be a 0x-prefixed 20-byte address, got ${String(p[name])}`)
  }
  if (p.withdrawalDelay <= p.maxTaskLife + p.settlementWindow) {
    throw new DeployError(`withdrawalDelay (${p.withdrawalDelay} s) must exceed maxTaskLife + settlementWindow (${p.maxTaskLife} + ${p.settlementWindow} s): otherwise a requester can withdraw its deposit before a task it signed is settled; raise withdrawalDelay or shorten the other two`)
  }
  if (p.maxEpochAge > p.maxCertificateAge) {
    throw new DeployError(`maxEpochAge (${p.maxEpochAge}) exceeds the registry's maxCertificateAge (${p.maxCertificateAge}): certificates of epochs whose stake may already be withdrawn would be accepted, with nothing left to slash; raise maxCertificateAge or lower maxEpochAge`)
  }
}

/**
 * The creation transaction's data (bytecode and constructor arguments) of `name`, given the
 * addresses of the contracts deployed before it: deployPoi sends it, estimateDeployPoiGas
 * estimates it, so the two cannot drift apart.
 */
function creationCode (name: PoiContractName, p: Required<DeployPoiParameters>, treasury: `0x${string}`, at: DeployedSoFar): `0x${string}` {
  const before = (contract: PoiContractName): `0x${string}` => {
    const address = at[contract]
    // deployPoi's order guarantees it; a reordering without updating the arguments lands here
    if (address === undefined) throw new DeployError(`${name} needs the ${contract} address, which is deployed after it`)
    return address
  }
  switch (name) {
    case 'OperatorRegistry':
      return encodeDeployData({ abi: OperatorRegistryAbi, bytecode: OperatorRegistryBytecode, args: [p.minStake, p.exitDelay, p.epochDuration, p.maxCertificateAge] })
    case 'ModelRegistry':
      return encodeDeployData({ abi: ModelRegistryAbi, bytecode: ModelRegistryBytecode })
    case 'IdentityRegistry':
      return encodeDeployData({ abi: IdentityRegistryAbi, bytecode: IdentityRegistryBytecode })
    case 'ValidationRegistry':
      return encodeDeployData({ abi: ValidationRegistryAbi, bytecode: ValidationRegistryBytecode, args: [before('IdentityRegistry')] })
    case 'BatchSettlement':
      return BatchSettlementBytecode
    case 'TaskManagerGovernance':
      return TaskManagerGovernanceBytecode
    case 'ZkSettlement':
      return ZkSettlementBytecode
    case 'TaskManager':
      return encodeDeployData({
        abi: TaskManagerAbi,
        bytecode: taskManagerBytecode(before('BatchSettlement'), before('TaskManagerGovernance'), before('ZkSettlement')),
        args: [before('OperatorRegistry'), before('ModelRegistry'), p.quorumBps, p.maxEpochAge, {
          asset: p.asset,
          treasury,
          protocolFeeBps: p.protocolFeeBps,
          minTaskFee: p.minTaskFee,
          maxTaskLife: p.maxTaskLife,
          settlementWindow: p.settlementWindow,
          withdrawalDelay: p.withdrawalDelay,
          validationRegistry: p.validationRegistry === ZERO_ADDRESS ? before('ValidationRegistry') : p.validationRegistry
        }]
      })
    case 'SlashingManager':
      return encodeDeployData({ abi: SlashingManagerAbi, bytecode: SlashingManagerBytecode, args: [before('OperatorRegistry'), before('TaskManager'), p.slashBps, p.reporterBps] })
  }
}

/** The gas each deployment of deployPoi is estimated to take, and their sum. */
export interface DeployPoiGasEstimate {
  perContract: Record<PoiContractName, bigint>
  /** The nine deployments (the BatchSettlement, TaskManagerGovernance and ZkSettlement libraries included); the setSlasher and bindTaskManager calls that follow are not in it (they need the deployed contracts). */
  total: bigint
}

/**
 * Estimates the gas of each contract deployPoi would deploy from `account` with `params`,
 * without sending anything. A contract deployed after others is estimated at the addresses they
 * will have (CREATE addresses follow the account's nonce), with their code put there by a state
 * override: the TaskManager's constructor reads the registry it is given. Throws DeployError for
 * parameters deployPoi would refuse, and the RPC's error when a deployment would revert.
 */
export async function estimateDeployPoiGas (
  publicClient: PublicClient, account: Account | `0x${string}`, params: DeployPoiParameters = {}
): Promise<DeployPoiGasEstimate> {
  const p = deployParameters(params)
  checkDeployParameters(p)
  const from = typeof account === 'string' ? account : account.address
  const treasury = p.treasury === DEPLOYER ? from : p.treasury
  const nonce = await publicClient.getTransactionCount({ address: from, blockTag: 'pending' })
  const at: DeployedSoFar = {}
  const deployed: Array<{ address: `0x${string}`, code: `0x${string}` }> = []
  const perContract: Partial<Record<PoiContractName, bigint>> = {}
  let total = 0n
  for (const [i, name] of POI_DEPLOY_ORDER.entries()) {
    const data = creationCode(name, p, treasury, at)
    // as the i-th transaction from now: at its nonce, so it creates where it will be created
    const asSent = [...deployed, { address: from, nonce: nonce + i }]
    const gas = await publicClient.estimateGas({ account, data, stateOverride: asSent })
    perContract[name] = gas
    total += gas
    // what the constructor returns is the code the contract will have, immutables included
    const { data: code } = await publicClient.call({ account, data, stateOverride: asSent })
    if (code === undefined) throw new DeployError(`deploying ${name} would leave no code (the constructor returned nothing)`)
    const address = getContractAddress({ from, nonce: BigInt(nonce + i) })
    deployed.push({ address, code })
    at[name] = address
  }
  return { perContract: perContract as Record<PoiContractName, bigint>, total }
}

/**
 * What deployPoi returns: every contract, the governor and timelock unless `keepOwner`.
 */
export type PoiDeployment = Required<Omit<Deployment, 'governor' | 'timelock'>> & Pick<Deployment, 'governor' | 'timelock'>

/** The contracts the timelock owns once deployPoi has handed them over (their setParameter is governed). */
export const GOVERNED_CONTRACTS = ['OperatorRegistry', 'TaskManager', 'SlashingManager'] as const

/**
 * Deploys the contracts of POI_DEPLOY_ORDER with `params` (over DEFAULT_DEPLOY_PARAMETERS),
 * makes the SlashingManager the registry's slasher, names the guardian and, unless `keepOwner`,
 * deploys the TimelockController and the PoiGovernor and hands ownership to the timelock. Throws
 * DeployError for parameters out of range or a reverted transaction.
 */
export async function deployPoi (
  walletClient: WalletClient<Transport, Chain, Account>,
  publicClient: PublicClient,
  params: DeployPoiParameters = {}
): Promise<PoiDeployment> {
  const p = deployParameters(params)
  checkDeployParameters(p)
  const treasury = p.treasury === DEPLOYER ? walletClient.account.address : p.treasury

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

  const at: DeployedSoFar = {}
  let deployedAtBlock = 0n
  for (const name of POI_DEPLOY_ORDER) {
    const contract = await deployed(await walletClient.sendTransaction({ data: creationCode(name, p, treasury, at) }), name)
    at[name] = contract.address
    if (name === 'OperatorRegistry') deployedAtBlock = contract.blockNumber
  }
  // every name of POI_DEPLOY_ORDER was set by the loop
  const address = (name: PoiContractName): `0x${string}` => at[name]!
  await mined(await walletClient.writeContract({
    address: address('OperatorRegistry'), abi: OperatorRegistryAbi, functionName: 'setSlasher', args: [address('SlashingManager')]
  }), 'OperatorRegistry.setSlasher')
  // The ModelRegistry's one binding: the TaskManager alone takes credits at settlement and receives access purchases.
  await mined(await walletClient.writeContract({
    address: address('ModelRegistry'), abi: ModelRegistryAbi, functionName: 'bindTaskManager', args: [address('TaskManager')]
  }), 'ModelRegistry.bindTaskManager')
  const deployer = walletClient.account.address
  const guardian = p.guardian === DEPLOYER ? deployer : getAddress(p.guardian)
  if (guardian !== ZERO_ADDRESS) {
    await mined(await walletClient.writeContract({
      address: address('OperatorRegistry'), abi: OperatorRegistryAbi, functionName: 'setGuardian', args: [guardian]
    }), 'OperatorRegistry.setGuardian')
  }
  const governance = p.keepOwner ? {} : await deployGovernance(walletClient, mined, deployed, p, {
    OperatorRegistry: address('OperatorRegistry'), TaskManager: address('TaskManager'), SlashingManager: address('SlashingManager')
  })

  return {
    ...governance,
    chainId: await publicClient.getChainId(),
    registry: address('OperatorRegistry'),
    taskManager: address('TaskManager'),
    slashing: address('SlashingManager'),
    modelRegistry: address('ModelRegistry'),
    identityRegistry: address('IdentityRegistry'),
    validationRegistry: address('ValidationRegistry'),
    paymentAsset: getAddress(p.asset),
    deployedAtBlock
  }
}

type Mined = (hash: `0x${string}`, what: string) => Promise<unknown>
type Deployed = (hash: `0x${string}`, what: string) => Promise<{ address: `0x${string}` }>

/**
 * The timelock (the deployer its temporary admin), the governor over the registry's votes, the
 * governor's roles on the timelock (proposer, canceller; the zero address as executor: anyone may
 * execute a ready operation), the deployer's admin role renounced, and every governed contract's
 * ownership transferred to the timelock.
 */
async function deployGovernance (
  walletClient: WalletClient<Transport, Chain, Account>, mined: Mined, deployed: Deployed, p: Required<DeployPoiParameters>,
  owned: Record<typeof GOVERNED_CONTRACTS[number], `0x${string}`>
): Promise<{ governor: `0x${string}`, timelock: `0x${string}` }> {
  const deployer = walletClient.account.address
  const timelock = (await deployed(await walletClient.deployContract({
    abi: TimelockControllerAbi, bytecode: TimelockControllerBytecode, args: [p.timelockDelay, [], [ZERO_ADDRESS], deployer]
  }), 'TimelockController')).address
  const threshold = p.proposalThreshold === THRESHOLD_IS_MIN_STAKE ? p.minStake : p.proposalThreshold
  const governor = (await deployed(await walletClient.deployContract({
    abi: PoiGovernorAbi, bytecode: PoiGovernorBytecode, args: [owned.OperatorRegistry, timelock, Number(p.votingDelay), Number(p.votingPeriod), threshold, BigInt(p.quorumPercent)]
  }), 'PoiGovernor')).address
  // TimelockController's role ids: keccak256 of the name, the admin role zero
  const role = async (name: 'PROPOSER_ROLE' | 'CANCELLER_ROLE' | 'DEFAULT_ADMIN_ROLE'): Promise<`0x${string}`> =>
    name === 'DEFAULT_ADMIN_ROLE' ? `0x${'00'.repeat(32)}` : keccak256(toHex(name))
  for (const name of ['PROPOSER_ROLE', 'CANCELLER_ROLE'] as const) {
    await mined(await walletClient.writeContract({ address: timelock, abi: TimelockControllerAbi, functionName: 'grantRole', args: [await role(name), governor] }), `TimelockController.grantRole(${name})`)
  }
  for (const [name, at] of Object.entries(owned)) {
    await mined(await walletClient.writeContract({ address: at, abi: OperatorRegistryAbi, functionName: 'transferOwnership', args: [timelock] }), `${name}.transferOwnership`)
  }
  await mined(await walletClient.writeContract({
    address: timelock, abi: TimelockControllerAbi, functionName: 'renounceRole', args: [await role('DEFAULT_ADMIN_ROLE'), deployer]
  }), 'TimelockController.renounceRole(DEFAULT_ADMIN_ROLE)')
  return { governor: getAddress(governor), timelock: getAddress(timelock) }
}
