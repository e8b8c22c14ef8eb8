/**
 * Governance of a poi deployment, as typed calls: the governed parameters by name (which contract
 * holds each, how its value is encoded), a parameter change as a proposal (targets, values,
 * calldatas, description) and its id, the proposal's life (propose, castVote, queue, execute,
 * state), and the guardian's pause. The PoiGovernor proposes to the TimelockController, which owns
 * every setter (contracts/deploy.ts); a deployment made with keepOwner has no governor, and its
 * deployer calls the setters directly (setParameterDirect, unpauseDirect, setGuardianDirect).
 *
 * Each transaction simulates first with an ABI that also knows the errors of the governed
 * contracts and the timelock, so a bound refused at execution (QuorumBelowFloor, …) surfaces by
 * name through contractErrorName, without spending gas.
 */
import {
  encodeAbiParameters, encodeFunctionData, getAddress, isAddress, keccak256, toHex,
  type Abi, type Account, type Chain, type PublicClient, type TransactionReceipt, type Transport, type WalletClient
} from 'viem'
import { OperatorRegistryAbi, PoiGovernorAbi, SlashingManagerAbi, TaskManagerAbi, TimelockControllerAbi } from './generated/artifacts.js'
import { mined } from './actions.js'
import type { Deployment } from './deployment.js'
import { PoiError } from '../protocols/wire/index.js'

type Wallet = WalletClient<Transport, Chain, Account>
type Hex = `0x${string}`

/** Which deployment contract holds a governed parameter. */
export type GovernedContract = 'registry' | 'taskManager' | 'slashing'

/**
 * Every parameter governance can change, the contract whose setParameter(bytes32, uint256) sets
 * it, and its kind: a whole number (wei, seconds, basis points, epochs) or an address (the
 * treasury, passed as uint160). Left immutable: maxCertificateAge (lowering it would release stake
 * that accepted certificates may still count), the payment asset (balances are in it), and the
 * contracts' links to each other (registry, models, validationRegistry, taskManager, slasher).
 */
export const GOVERNED_PARAMETERS = {
  minStake: { contract: 'registry', kind: 'uint' },
  exitDelay: { contract: 'registry', kind: 'uint' },
  epochDuration: { contract: 'registry', kind: 'uint' },
  quorumBps: { contract: 'taskManager', kind: 'uint' },
  maxEpochAge: { contract: 'taskManager', kind: 'uint' },
  treasury: { contract: 'taskManager', kind: 'address' },
  protocolFeeBps: { contract: 'taskManager', kind: 'uint' },
  minTaskFee: { contract: 'taskManager', kind: 'uint' },
  maxTaskLife: { contract: 'taskManager', kind: 'uint' },
  settlementWindow: { contract: 'taskManager', kind: 'uint' },
  withdrawalDelay: { contract: 'taskManager', kind: 'uint' },
  slashBps: { contract: 'slashing', kind: 'uint' },
  reporterBps: { contract: 'slashing', kind: 'uint' }
} as const satisfies Record<string, { contract: GovernedContract, kind: 'uint' | 'address' }>

export type GovernedParameter = keyof typeof GOVERNED_PARAMETERS
/** A parameter's value: a bigint, or an address for `treasury`. */
export type ParameterValue = bigint | Hex

/** The contracts governance touches. */
export type GovernanceContracts = Pick<Deployment, 'registry' | 'taskManager' | 'slashing'> & Partial<Pick<Deployment, 'governor' | 'timelock'>>

/** What Governor.propose takes: one call per target; `description` is hashed into the id. */
export interface Proposal {
  targets: Hex[]
  values: bigint[]
  calldatas: Hex[]
  description: string
}

/** OpenZeppelin's IGovernor.ProposalState, by name (the enum's order). */
export const PROPOSAL_STATES = ['Pending', 'Active', 'Canceled', 'Defeated', 'Succeeded', 'Queued', 'Expired', 'Executed'] as const
export type ProposalState = typeof PROPOSAL_STATES[number]

/** GovernorCountingSimple's vote types. */
export const VOTE_SUPPORT = { against: 0, for: 1, abstain: 2 } as const
export type VoteSupport = keyof typeof VOTE_SUPPORT

export class GovernanceError extends PoiError {
  constructor (message: string) {
    super('ERR_GOVERNANCE', message)
  }
}

/** Every error the governor's transactions can revert with, whichever contract raised it. */
const GOVERNOR_CALL_ABI = [
  ...PoiGovernorAbi,
  ...[TimelockControllerAbi, OperatorRegistryAbi, TaskManagerAbi, SlashingManagerAbi].flatMap(abi => abi.filter(item => item.type === 'error'))
] as const satisfies Abi

/** TaskManager's setParameter (the three contracts share its signature) and every governed contract's errors. */
const SETTER_CALL_ABI = [
  ...TaskManagerAbi,
  ...[OperatorRegistryAbi, SlashingManagerAbi].flatMap(abi => abi.filter(item => item.type === 'error'))
] as const satisfies Abi

export function isGovernedParameter (name: string): name is GovernedParameter {
  return Object.prototype.hasOwnProperty.call(GOVERNED_PARAMETERS, name)
}

/** The governed parameter called `name`; throws GovernanceError listing the known ones. */
export function governedParameter (name: string): GovernedParameter {
  if (!isGovernedParameter(name)) throw new GovernanceError(`unknown parameter "${name}"; governed parameters: ${Object.keys(GOVERNED_PARAMETERS).join(', ')}`)
  return name
}

/** The bytes32 a contract's setParameter and ParameterChanged use for `name` (its ASCII, right-padded). */
export function parameterKey (name: GovernedParameter): Hex {
  return toHex(name, { size: 32 })
}

/** The address of the contract that holds `name`. */
export function parameterContract (contracts: GovernanceContracts, name: GovernedParameter): Hex {
  return contracts[GOVERNED_PARAMETERS[name].contract]
}

/** `value` as setParameter's uint256; throws GovernanceError for a value of the wrong kind. */
export function encodeParameterValue (name: GovernedParameter, value: ParameterValue): bigint {
  if (GOVERNED_PARAMETERS[name].kind === 'address') {
    if (typeof value !== 'string' || !isAddress(value, { strict: false })) throw new GovernanceError(`${name} must be a 0x-prefixed 20-byte address, got ${String(value)}`)
    return BigInt(value)
  }
  if (typeof value !== 'bigint' || value < 0n || value >= 2n ** 256n) throw new GovernanceError(`${name} must be a non-negative whole number, got ${String(value)}`)
  return value
}

/**
 * A value for `name` from text: a decimal whole number (wei, seconds, basis points, epochs as the
 * contract counts them), or a 0x address for `treasury`. Throws GovernanceError naming the parameter.
 */
export function parseParameterValue (name: GovernedParameter, text: string): ParameterValue {
  if (GOVERNED_PARAMETERS[name].kind === 'address') {
    if (!isAddress(text, { strict: false })) throw new GovernanceError(`${name} must be a 0x-prefixed 20-byte address, got "${text}"`)
    return getAddress(text)
  }
  if (!/^(0|[1-9][0-9]*)$/.test(text)) throw new GovernanceError(`${name} must be a whole number in the contract's unit (wei, seconds, basis points or epochs), got "${text}"`)
  return BigInt(text)
}

/** The one call that sets `name` to `value`: setParameter on the contract that holds it. */
export function parameterCall (contracts: GovernanceContracts, name: GovernedParameter, value: ParameterValue): { target: Hex, value: bigint, calldata: Hex } {
  // the three setParameter functions have one signature: any of the ABIs encodes it
  const calldata = encodeFunctionData({ abi: TaskManagerAbi, functionName: 'setParameter', args: [parameterKey(name), encodeParameterValue(name, value)] })
  return { target: parameterContract(contracts, name), value: 0n, calldata }
}

/** A proposal setting `name` to `value`; the default description names the change. */
export function parameterChangeProposal (contracts: GovernanceContracts, name: GovernedParameter, value: ParameterValue, description?: string): Proposal {
  const call = parameterCall(contracts, name, value)
  return { targets: [call.target], values: [call.value], calldatas: [call.calldata], description: description ?? `set ${name} to ${String(value)}` }
}

/** A proposal that lifts the guardian's pause (only the timelock may). */
export function unpauseProposal (contracts: GovernanceContracts, description = 'unpause the network'): Proposal {
  return { targets: [contracts.registry], values: [0n], calldatas: [encodeFunctionData({ abi: OperatorRegistryAbi, functionName: 'unpause' })], description }
}

/** A proposal that names a new guardian (the zero address: nobody can pause). */
export function setGuardianProposal (contracts: GovernanceContracts, guardian: Hex, description?: string): Proposal {
  return {
    targets: [contracts.registry],
    values: [0n],
    calldatas: [encodeFunctionData({ abi: OperatorRegistryAbi, functionName: 'setGuardian', args: [getAddress(guardian)] })],
    description: description ?? `set the guardian to ${getAddress(guardian)}`
  }
}

/** Governor.hashProposal computed here: keccak256(abi.encode(targets, values, calldatas, keccak256(description))). */
export function proposalIdOf (proposal: Proposal): bigint {
  return BigInt(keccak256(encodeAbiParameters(
    [{ type: 'address[]' }, { type: 'uint256[]' }, { type: 'bytes[]' }, { type: 'bytes32' }],
    [proposal.targets, proposal.values, proposal.calldatas, descriptionHash(proposal)]
  )))
}

function descriptionHash (proposal: Proposal): Hex {
  return keccak256(toHex(proposal.description))
}

/** The value of one governed parameter now (an address for `treasury`). */
export async function readParameter (publicClient: PublicClient, contracts: GovernanceContracts, name: GovernedParameter): Promise<ParameterValue> {
  const address = parameterContract(contracts, name)
  const { contract } = GOVERNED_PARAMETERS[name]
  // each contract's getter has the parameter's name
  const value = contract === 'registry'
    ? await publicClient.readContract({ address, abi: OperatorRegistryAbi, functionName: name as 'minStake' | 'exitDelay' | 'epochDuration' })
    : contract === 'slashing'
      ? await publicClient.readContract({ address, abi: SlashingManagerAbi, functionName: name as 'slashBps' | 'reporterBps' })
      : await publicClient.readContract({ address, abi: TaskManagerAbi, functionName: name as 'quorumBps' | 'maxEpochAge' | 'treasury' | 'protocolFeeBps' | 'minTaskFee' | 'maxTaskLife' | 'settlementWindow' | 'withdrawalDelay' })
  return typeof value === 'string' ? getAddress(value) : BigInt(value)
}

/** Every governed parameter now, by name. */
export async function readParameters (publicClient: PublicClient, contracts: GovernanceContracts): Promise<Record<GovernedParameter, ParameterValue>> {
  const names = Object.keys(GOVERNED_PARAMETERS) as GovernedParameter[]
  const values = await Promise.all(names.map(async name => await readParameter(publicClient, contracts, name)))
  return Object.fromEntries(names.map((name, i) => [name, values[i]])) as Record<GovernedParameter, ParameterValue>
}

/** The governor's settings: seconds (timestamp clock), stake in wei, quorum as a percent of the active stake. */
export interface GovernorSettings {
  votingDelay: bigint
  votingPeriod: bigint
  proposalThreshold: bigint
  quorumPercent: bigint
  /** The timelock's minimum delay, seconds. */
  timelockDelay: bigint
  timelock: Hex
}

export async function readGovernorSettings (publicClient: PublicClient, governor: Hex): Promise<GovernorSettings> {
  const read = async (functionName: 'votingDelay' | 'votingPeriod' | 'proposalThreshold' | 'quorumNumerator'): Promise<bigint> =>
    await publicClient.readContract({ address: governor, abi: PoiGovernorAbi, functionName })
  const [votingDelay, votingPeriod, proposalThreshold, quorumPercent, timelock] = await Promise.all([
    read('votingDelay'), read('votingPeriod'), read('proposalThreshold'), read('quorumNumerator'),
    publicClient.readContract({ address: governor, abi: PoiGovernorAbi, functionName: 'timelock' })
  ])
  const timelockDelay = await publicClient.readContract({ address: timelock, abi: TimelockControllerAbi, functionName: 'getMinDelay' })
  return { votingDelay, votingPeriod, proposalThreshold, quorumPercent, timelockDelay, timelock }
}

/** A proposal's state and tally. Times are unix seconds; eta 0 until queued. */
export interface ProposalStatus {
  proposalId: bigint
  state: ProposalState
  /** Votes count as they were at this time (the registry's checkpoints). */
  snapshot: bigint
  /** Voting closes after this time. */
  deadline: bigint
  /** Executable from this time once queued (0 before). */
  eta: bigint
  votes: { against: bigint, for: bigint, abstain: bigint }
  /** For + abstain votes needed (0 while the snapshot is in the future). */
  quorum: bigint
}

export async function readProposal (publicClient: PublicClient, governor: Hex, proposalId: bigint): Promise<ProposalStatus> {
  const [state, snapshot, deadline, eta, votes] = await Promise.all([
    publicClient.readContract({ address: governor, abi: GOVERNOR_CALL_ABI, functionName: 'state', args: [proposalId] }),
    publicClient.readContract({ address: governor, abi: PoiGovernorAbi, functionName: 'proposalSnapshot', args: [proposalId] }),
    publicClient.readContract({ address: governor, abi: PoiGovernorAbi, functionName: 'proposalDeadline', args: [proposalId] }),
    publicClient.readContract({ address: governor, abi: PoiGovernorAbi, functionName: 'proposalEta', args: [proposalId] }),
    publicClient.readContract({ address: governor, abi: PoiGovernorAbi, functionName: 'proposalVotes', args: [proposalId] })
  ])
  const block = await publicClient.getBlock({ blockTag: 'latest' })
  // quorum(t) needs t in the past (ERC5805FutureLookup)
  const quorum = snapshot < block.timestamp
    ? await publicClient.readContract({ address: governor, abi: PoiGovernorAbi, functionName: 'quorum', args: [snapshot] })
    : 0n
  return {
    proposalId,
    state: PROPOSAL_STATES[state],
    snapshot,
    deadline,
    eta,
    votes: { against: votes[0], for: votes[1], abstain: votes[2] },
    quorum
  }
}

export async function proposalState (publicClient: PublicClient, governor: Hex, proposalId: bigint): Promise<ProposalState> {
  return PROPOSAL_STATES[await publicClient.readContract({ address: governor, abi: GOVERNOR_CALL_ABI, functionName: 'state', args: [proposalId] })]
}

/** Submits `proposal` from the wallet (its votes a second ago must reach the threshold); returns its id. */
export async function propose (walletClient: Wallet, publicClient: PublicClient, governor: Hex, proposal: Proposal): Promise<{ proposalId: bigint, receipt: TransactionReceipt }> {
  const { request, result } = await publicClient.simulateContract({
    account: walletClient.account, address: governor, abi: GOVERNOR_CALL_ABI, functionName: 'propose',
    args: [proposal.targets, proposal.values, proposal.calldatas, proposal.description]
  })
  return { proposalId: result, receipt: await mined(publicClient, await walletClient.writeContract(request), 'PoiGovernor.propose') }
}

/** Votes with the wallet's stake at the proposal's snapshot; reverts NoVotingPower with none, GovernorAlreadyCastVote the second time. */
export async function castVote (
  walletClient: Wallet, publicClient: PublicClient, governor: Hex, proposalId: bigint, support: VoteSupport, reason?: string
): Promise<{ weight: bigint, receipt: TransactionReceipt }> {
  if (reason === undefined) {
    const { request, result } = await publicClient.simulateContract({
      account: walletClient.account, address: governor, abi: GOVERNOR_CALL_ABI, functionName: 'castVote', args: [proposalId, VOTE_SUPPORT[support]]
    })
    return { weight: result, receipt: await mined(publicClient, await walletClient.writeContract(request), 'PoiGovernor.castVote') }
  }
  const { request, result } = await publicClient.simulateContract({
    account: walletClient.account, address: governor, abi: GOVERNOR_CALL_ABI, functionName: 'castVoteWithReason', args: [proposalId, VOTE_SUPPORT[support], reason]
  })
  return { weight: result, receipt: await mined(publicClient, await walletClient.writeContract(request), 'PoiGovernor.castVoteWithReason') }
}

/** Queues a succeeded proposal in the timelock; returns when it becomes executable (unix seconds). */
export async function queueProposal (walletClient: Wallet, publicClient: PublicClient, governor: Hex, proposal: Proposal): Promise<{ eta: bigint, receipt: TransactionReceipt }> {
  const { request } = await publicClient.simulateContract({
    account: walletClient.account, address: governor, abi: GOVERNOR_CALL_ABI, functionName: 'queue',
    args: [proposal.targets, proposal.values, proposal.calldatas, descriptionHash(proposal)]
  })
  const receipt = await mined(publicClient, await walletClient.writeContract(request), 'PoiGovernor.queue')
  const eta = await publicClient.readContract({ address: governor, abi: PoiGovernorAbi, functionName: 'proposalEta', args: [proposalIdOf(proposal)] })
  return { eta, receipt }
}

/** Executes a queued proposal whose timelock delay has passed (anyone may). */
export async function executeProposal (walletClient: Wallet, publicClient: PublicClient, governor: Hex, proposal: Proposal): Promise<TransactionReceipt> {
  const { request } = await publicClient.simulateContract({
    account: walletClient.account, address: governor, abi: GOVERNOR_CALL_ABI, functionName: 'execute',
    args: [proposal.targets, proposal.values, proposal.calldatas, descriptionHash(proposal)]
  })
  return await mined(publicClient, await walletClient.writeContract(request), 'PoiGovernor.execute')
}

/** The wallet's voting power now and at `timepoint` (unix seconds in the past), and its delegate. */
export async function readVotes (publicClient: PublicClient, registry: Hex, account: Hex, timepoint?: bigint): Promise<{ votes: bigint, pastVotes?: bigint, delegate: Hex }> {
  const [votes, delegate, pastVotes] = await Promise.all([
    publicClient.readContract({ address: registry, abi: OperatorRegistryAbi, functionName: 'getVotes', args: [account] }),
    publicClient.readContract({ address: registry, abi: OperatorRegistryAbi, functionName: 'delegates', args: [account] }),
    timepoint === undefined ? undefined : publicClient.readContract({ address: registry, abi: OperatorRegistryAbi, functionName: 'getPastVotes', args: [account, timepoint] })
  ])
  return pastVotes === undefined ? { votes, delegate } : { votes, pastVotes, delegate }
}

/** Moves the wallet's voting power (its active stake) to `delegatee` (itself to take it back). */
export async function delegateVotes (walletClient: Wallet, publicClient: PublicClient, registry: Hex, delegatee: Hex): Promise<TransactionReceipt> {
  const { request } = await publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: OperatorRegistryAbi, functionName: 'delegate', args: [getAddress(delegatee)]
  })
  return await mined(publicClient, await walletClient.writeContract(request), 'OperatorRegistry.delegate')
}

/** The guardian and whether registrations and settlement are paused. */
export async function readPause (publicClient: PublicClient, registry: Hex): Promise<{ guardian: Hex, paused: boolean }> {
  const [guardian, paused] = await Promise.all([
    publicClient.readContract({ address: registry, abi: OperatorRegistryAbi, functionName: 'guardian' }),
    publicClient.readContract({ address: registry, abi: OperatorRegistryAbi, functionName: 'paused' })
  ])
  return { guardian, paused }
}

/** The guardian pauses registrations and task settlement (NotGuardian from anyone else). */
export async function pauseNetwork (walletClient: Wallet, publicClient: PublicClient, registry: Hex): Promise<TransactionReceipt> {
  const { request } = await publicClient.simulateContract({ account: walletClient.account, address: registry, abi: OperatorRegistryAbi, functionName: 'pause' })
  return await mined(publicClient, await walletClient.writeContract(request), 'OperatorRegistry.pause')
}

/** The owner lifts the pause directly: only a keepOwner deployment's deployer (a governed one: unpauseProposal). */
export async function unpauseDirect (walletClient: Wallet, publicClient: PublicClient, registry: Hex): Promise<TransactionReceipt> {
  const { request } = await publicClient.simulateContract({ account: walletClient.account, address: registry, abi: OperatorRegistryAbi, functionName: 'unpause' })
  return await mined(publicClient, await walletClient.writeContract(request), 'OperatorRegistry.unpause')
}

/** The owner names the guardian directly (keepOwner deployments; a governed one: setGuardianProposal). */
export async function setGuardianDirect (walletClient: Wallet, publicClient: PublicClient, registry: Hex, guardian: Hex): Promise<TransactionReceipt> {
  const { request } = await publicClient.simulateContract({
    account: walletClient.account, address: registry, abi: OperatorRegistryAbi, functionName: 'setGuardian', args: [getAddress(guardian)]
  })
  return await mined(publicClient, await walletClient.writeContract(request), 'OperatorRegistry.setGuardian')
}

/** The owner sets a parameter directly (keepOwner deployments; from anyone else OwnableUnauthorizedAccount). */
export async function setParameterDirect (
  walletClient: Wallet, publicClient: PublicClient, contracts: GovernanceContracts, name: GovernedParameter, value: ParameterValue
): Promise<TransactionReceipt> {
  const call = parameterCall(contracts, name, value)
  const { request } = await publicClient.simulateContract({
    account: walletClient.account, address: call.target, abi: SETTER_CALL_ABI,
    functionName: 'setParameter', args: [parameterKey(name), encodeParameterValue(name, value)]
  })
  return await mined(publicClient, await walletClient.writeContract(request), `setParameter(${name})`)
}
