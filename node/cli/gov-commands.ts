/**
 * `poi gov propose|vote|queue|execute|status|delegate|pause|unpause`: the network's parameters
 * under its Governor (operators vote with their stake) and its timelock, and the guardian's pause. A
 * parameter change is one readable command (`poi gov propose set protocolFeeBps 50`), checked
 * here against the parameter's name and bounds before anything is sent; every step reads the
 * proposal's state first, so a refusal says what to do and when (the timelock's ETA, the
 * voting window), and a contract's refusal is its named error said in words.
 */
import { formatEther, getAddress, isAddress, isAddressEqual, keccak256, toFunctionSelector, toHex, type PublicClient } from 'viem'
import {
  castVote, contractErrorArgs, contractErrorName, delegateVotes, executeProposal, OperatorRegistryAbi, parameterChangeProposal, pauseNetwork, PoiGovernorAbi, propose, proposalIdOf, queueProposal,
  readGovernorSettings, readVotes, setGuardianProposal, unpauseProposal, VOTE_SUPPORT, type GovernedParameter, type Proposal
} from '../../contracts/index.js'
import { PoiError } from '../../protocols/wire/index.js'
import { ChainClient } from '../chain-client.js'
import { loadKeystore } from '../keys.js'
import { UsageError, nodeConfig, type OptionValues } from './args.js'
import { confirmTransaction } from './confirm.js'
import type { GovProposalState, GovSupport } from './events.js'
import { chainNow, findProposal, listProposalIds, type Address, type ProposalView } from './gov-chain.js'
import {
  checkRelations, describeBounds, describeCalls, formatValue, governedDeployment, parameterName, parseTypedValue, readGovernanceState, readParameterValues,
  valueText, type AssetUnits, type GovernedDeployment
} from './gov-parameters.js'
import { readChain } from './operator-source.js'
import { CliOutput } from './output.js'
import { readAsset, type Wallet } from './payment-setup.js'

/** The flags of every `poi gov` command (declared with their help in program.ts). */
const GOV_OPTIONS = {
  chain: { type: 'string' },
  keystore: { type: 'string' },
  rpc: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  reason: { type: 'string' }
} as const

type GovValues = OptionValues<typeof GOV_OPTIONS>

/** A proposal is not in the state this step needs (not active for a vote, not succeeded for queue, not queued for execute). */
export class ProposalStateError extends PoiError {
  constructor (message: string) {
    super('ERR_PROPOSAL_STATE', message)
  }
}

/** No proposal with this id on the network's governor. */
export class ProposalNotFoundError extends PoiError {
  constructor (id: bigint, governor: Address) {
    super('ERR_PROPOSAL_NOT_FOUND', `no proposal ${id} on the governor ${governor}: check the id \`poi gov propose\` printed (\`poi gov status --chain …\` lists the proposals)`)
  }
}

/** The account already voted on this proposal (the governor's GovernorAlreadyCastVote). */
export class AlreadyVotedError extends PoiError {
  constructor (account: Address, id: bigint) {
    super('ERR_ALREADY_VOTED', `${account} has already voted on proposal ${id} (GovernorAlreadyCastVote): a vote cannot be changed; \`poi gov status ${id}\` shows the tally`)
  }
}

/** The account had no stake (voting power) at the proposal's snapshot, or not enough to propose. */
export class NoVotingPowerError extends PoiError {
  constructor (message: string) {
    super('ERR_NO_VOTING_POWER', message)
  }
}

/** The timelock's delay has not passed: the proposal can be executed from `eta`. */
export class TimelockNotReadyError extends PoiError {
  /** Unix seconds from which execute succeeds. */
  readonly eta: bigint

  constructor (message: string, eta: bigint) {
    super('ERR_TIMELOCK_NOT_READY', message)
    this.eta = eta
  }
}

/** Only the guardian may pause (NotGuardian). */
export class NotGuardianError extends PoiError {
  constructor (account: Address, guardian: Address | undefined) {
    super('ERR_NOT_GUARDIAN', `${account} is not the guardian${guardian !== undefined ? ` (${guardian})` : ''} (NotGuardian): only the guardian pauses; an operator can propose another guardian with \`poi gov propose guardian <address>\``)
  }
}

/** The governor, the timelock or a governed contract refused, with a named error this command does not expect. */
export class GovernanceRefusedError extends PoiError {
  constructor (what: string, cause: unknown) {
    const name = contractErrorName(cause)
    super('ERR_GOV_REFUSED', `${what} was refused${name !== undefined ? ` by the contract (${name}${formatArgs(contractErrorArgs(cause))})` : `: ${(cause instanceof Error ? cause.message : String(cause)).split('\n')[0]}`}`, { cause })
  }
}

function formatArgs (args: readonly unknown[] | undefined): string {
  return args !== undefined && args.length > 0 ? `: ${args.map(a => String(a)).join(', ')}` : ''
}

/** A proposal id as `poi gov propose` prints it (decimal) or as 0x-hex. */
export function parseProposalId (text: string | undefined): bigint {
  if (text === undefined) throw new UsageError('a proposal id is needed: the one `poi gov propose` printed')
  const t = text.trim()
  if (/^\d+$/.test(t) || /^0x[0-9a-fA-F]{1,64}$/.test(t)) return BigInt(t)
  throw new UsageError(`${JSON.stringify(text)} is not a proposal id: give the decimal number \`poi gov propose\` printed (or its 0x-hex)`)
}

export function parseSupport (text: string | undefined): GovSupport {
  if (text === 'for' || text === 'against' || text === 'abstain') return text
  throw new UsageError(`a vote is for, against or abstain, got ${JSON.stringify(text)}`)
}

interface GovContext {
  chain: ChainClient
  gov: GovernedDeployment
  out: CliOutput
  rpc: string
  chainFile: string
  /** Where the governor's event scans start: the deployment's first block. */
  fromBlock: bigint
}

async function govContext (command: string, values: GovValues, withWallet: true): Promise<GovContext & { wallet: Wallet }>
async function govContext (command: string, values: GovValues, withWallet: false): Promise<GovContext>
async function govContext (command: string, values: GovValues, withWallet: boolean): Promise<GovContext & { wallet?: Wallet }> {
  if (typeof values.chain !== 'string') throw new UsageError(`poi gov ${command} needs --chain <deployment.json>: the network's contracts and RPC URL (\`poi chain deploy\` and \`poi devnet\` write one)`)
  const config = await nodeConfig(values)
  const account = withWallet ? (await loadKeystore(config.keystore)).account : undefined
  const gov = governedDeployment(config.chain!, values.chain)
  const chain = await ChainClient.connect(config.chain!, account)
  return { chain, gov, out: new CliOutput(values.json === true), rpc: chain.config.rpcUrl, chainFile: values.chain, fromBlock: chain.config.deployedAtBlock ?? 0n, wallet: chain.walletClient }
}

/** "2026-11-30 10:37:40 UTC". */
function utc (at: bigint): string {
  return new Date(Number(at) * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC')
}

/** "2026-11-30 10:37:40 UTC (in 1 min 0 s)", "… (9 min 45 s ago)": a time of the chain's clock and how far it is from `now`. */
export function formatTime (at: bigint, now: bigint): string {
  const d = at > now ? at - now : now - at
  if (d === 0n) return `${utc(at)} (now)`
  const h = d / 3600n
  const min = (d % 3600n) / 60n
  const span = h > 0n ? `${h} h ${min} min` : min > 0n ? `${min} min ${d % 60n} s` : `${d} s`
  return `${utc(at)} (${at > now ? `in ${span}` : `${span} ago`})`
}

/** The proposal's state as the event lines carry it (the Governor's ProposalState, lower case). */
function stateOf (view: ProposalView): GovProposalState {
  return view.state.toLowerCase() as GovProposalState
}

/** `fn()`, with the governor's, the timelock's and the setters' refusals said as what to do. */
async function refusedAs<T> (what: string, id: bigint | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof PoiError) throw err
    throw explainRevert(what, id, err)
  }
}

/** The governance contracts' named errors as what to do next. */
export function explainRevert (what: string, id: bigint | undefined, err: unknown): Error {
  const name = contractErrorName(err)
  const args = contractErrorArgs(err)
  const ref = id !== undefined ? ` ${id}` : ' <id>'
  const wei = (v: unknown): string => `${formatEther(BigInt(v as bigint))} ETH`
  switch (name) {
    case 'GovernorAlreadyCastVote': return new AlreadyVotedError(getAddress(String(args?.[0])), id ?? 0n)
    case 'NoVotingPower':
      return new NoVotingPowerError(`${what}: ${String(args?.[0])} had no stake to vote with at the proposal's snapshot (${utc(BigInt(args?.[1] as bigint))}) (NoVotingPower): voting power is an operator's active stake, or stake delegated to it, at that time`)
    case 'GovernorUnexpectedProposalState':
      return new ProposalStateError(`${what}: the proposal is not in a state that allows it (GovernorUnexpectedProposalState); \`poi gov status${ref}\` shows its state and what comes next`)
    case 'GovernorNonexistentProposal': return new ProposalStateError(`${what}: the governor has no such proposal (GovernorNonexistentProposal)`)
    case 'GovernorInsufficientProposerVotes':
      return new NoVotingPowerError(`${what}: proposing needs ${wei(args?.[2])} of stake, ${String(args?.[0])} has ${wei(args?.[1])} (GovernorInsufficientProposerVotes): register as an operator (\`poi operator register\`), or have stake delegated to this account`)
    case 'TimelockUnexpectedOperationState':
      return new ProposalStateError(`${what}: the timelock's operation is not ready (TimelockUnexpectedOperationState): queue it first, and execute it once its delay has passed (\`poi gov status${ref}\` shows the ETA)`)
    case 'OwnableUnauthorizedAccount':
      return new GovernanceRefusedError(`${what}: only the timelock may call the parameter setters; change a parameter with \`poi gov propose set\``, err)
    case 'NotGuardian': return new NotGuardianError(getAddress(String(args?.[0])), undefined)
    case 'Paused': return new GovernanceRefusedError(`${what}: the network is paused; a proposal lifts the pause: \`poi gov unpause\``, err)
    case 'NotPaused': return new ProposalStateError(`${what}: the network is not paused (NotPaused)`)
    case 'QuorumBelowFloor': return new GovernanceRefusedError(`${what}: a network quorum of ${String(args?.[0])} bps is below the floor of ${String(args?.[1])} bps (two thirds of the stake)`, err)
    case 'ProtocolFeeAboveCap': return new GovernanceRefusedError(`${what}: a protocol fee of ${String(args?.[0])} bps is above the cap of ${String(args?.[1])} bps`, err)
    case 'ExitDelayBreaksSlashability': return new GovernanceRefusedError(`${what}: an exit delay of ${String(args?.[0])} s is below ${String(args?.[1])} s: stake could leave before evidence against it lands`, err)
    case 'ParameterOutOfBounds': return new GovernanceRefusedError(`${what}: ${String(args?.[1])} is outside ${String(args?.[2])}..${String(args?.[3])}`, err)
    case 'WithdrawalDelayTooShort': return new GovernanceRefusedError(`${what}: the withdrawal delay must be at least ${String(args?.[1])} s (maxTaskLife + settlementWindow + 1)`, err)
    default: return new GovernanceRefusedError(what, err)
  }
}

/** What the action does, in words: `set protocolFeeBps to 50 bps (0.5 %)`. */
function actionText (change: ProposedChange): string {
  return change.action === 'set' ? `set ${change.parameter} to ${change.display}` : change.action === 'guardian' ? `make ${change.display} the guardian` : 'unpause the network'
}

/** What a proposal of `poi gov propose` does, as the CLI prints it and the event line carries it. */
export type ProposedChange =
  | { action: 'set', parameter: GovernedParameter, value: string, display: string, current: string }
  | { action: 'guardian', value: string, display: string }
  | { action: 'unpause' }

/**
 * The proposal's description: the action, then the reason. Voters read it; its hash is part of
 * the proposal's id, so the same change with another reason is another proposal.
 */
export function proposalDescription (change: ProposedChange, reason: string | undefined): string {
  return reason !== undefined && reason.trim() !== '' ? `${actionText(change)}\n\n${reason.trim()}` : actionText(change)
}

/**
 * `set <name> <value>`, `guardian <address>` or `unpause` as a proposal, checked before anything
 * is sent: the parameter's name, its value's unit and bounds (and those that depend on the other
 * parameters now).
 */
export async function proposalFor (client: PublicClient, gov: GovernedDeployment, action: string | undefined, args: readonly string[], reason: string | undefined, asset?: AssetUnits): Promise<{ change: ProposedChange, proposal: Proposal }> {
  switch (action) {
    case 'set': {
      const [given, text, ...extra] = args
      const name = parameterName(given)
      if (text === undefined) throw new UsageError(`poi gov propose set ${name} needs a value:\n${describeBounds([name])}`)
      if (extra.length > 0) throw new UsageError(`poi gov propose set takes one parameter and one value, got also ${extra.join(' ')}`)
      const value = parseTypedValue(name, text, asset)
      const now = await readParameterValues(client, gov)
      checkRelations(name, value, now, asset)
      const change: ProposedChange = { action: 'set', parameter: name, value: valueText(value), display: formatValue(name, value, asset), current: formatValue(name, now[name], asset) }
      return { change, proposal: parameterChangeProposal(gov, name, value, proposalDescription(change, reason)) }
    }
    case 'guardian': {
      const [address, ...extra] = args
      if (address === undefined || !isAddress(address, { strict: false }) || extra.length > 0) throw new UsageError(`poi gov propose guardian needs one address (0x…, 20 bytes), got ${JSON.stringify(args.join(' '))}`)
      const change: ProposedChange = { action: 'guardian', value: getAddress(address), display: getAddress(address) }
      return { change, proposal: setGuardianProposal(gov, getAddress(address), proposalDescription(change, reason)) }
    }
    case 'unpause': {
      if (args.length > 0) throw new UsageError(`poi gov propose unpause takes no arguments, got ${args.join(' ')}`)
      const change: ProposedChange = { action: 'unpause' }
      return { change, proposal: unpauseProposal(gov, proposalDescription(change, reason)) }
    }
    default:
      throw new UsageError(`poi gov propose ${action === undefined ? 'needs an action' : JSON.stringify(action)}: the action is set <parameter> <value>, guardian <address> or unpause`)
  }
}

/** `poi gov propose set <parameter> <value> | guardian <address> | unpause [--reason <text>]`. */
export async function runGovPropose (values: GovValues, positionals: Array<string | string[]>): Promise<void> {
  const [action, ...rest] = positionals.flat()
  // The name and the value are checked before the keystore is even opened.
  if (action === 'set') {
    const name = parameterName(rest[0])
    if (rest[1] !== undefined && name !== 'minTaskFee') parseTypedValue(name, rest[1])
  }
  const ctx = await govContext('propose', values, true)
  const asset = await readAsset(ctx.chain)
  const { change, proposal } = await proposalFor(ctx.chain.publicClient, ctx.gov, action as string | undefined, rest, values.reason, asset)
  await proposeChange(ctx, change, proposal, values)
}

/** `poi gov unpause [--reason <text>]`: a proposal to unpause (only the timelock may). */
export async function runGovUnpause (values: GovValues): Promise<void> {
  const ctx = await govContext('unpause', values, true)
  const { change, proposal } = await proposalFor(ctx.chain.publicClient, ctx.gov, 'unpause', [], values.reason)
  await proposeChange(ctx, change, proposal, values)
}

async function proposeChange (ctx: GovContext & { wallet: Wallet }, change: ProposedChange, proposal: Proposal, values: GovValues): Promise<void> {
  const { chain, gov, out, rpc, chainFile, wallet, fromBlock } = ctx
  const client = chain.publicClient
  const account = wallet.account.address
  const [settings, now] = await Promise.all([
    readChain('the governor\'s settings', rpc, async () => await readGovernorSettings(client, gov.governor)),
    readChain('the latest block', rpc, async () => await chainNow(client))
  ])
  // The governor checks the proposer's votes a second ago.
  const { pastVotes = 0n } = await readChain(`the voting power of ${account}`, rpc, async () => await readVotes(client, gov.registry, account, now - 1n))
  if (pastVotes < settings.proposalThreshold || pastVotes === 0n) {
    throw new NoVotingPowerError(`${account} has ${formatEther(pastVotes)} ETH of stake to vote with${settings.proposalThreshold > 0n ? `, and proposing needs ${formatEther(settings.proposalThreshold)} ETH` : ''}: operators (active stake in the OperatorRegistry) and those they delegate to propose; register with \`poi operator register\`, or ask an operator to propose`)
  }
  const id = proposalIdOf(proposal)
  if (await readChain('the proposals', rpc, async () => await findProposal(client, gov.governor, id, fromBlock)) !== undefined) {
    throw new ProposalStateError(`the same proposal exists already: ${id} (\`poi gov status ${id} --chain ${chainFile}\`); to propose the same change again, give another --reason`)
  }
  const gas = await refusedAs('the proposal', undefined, async () => await client.estimateContractGas({
    account: wallet.account, address: gov.governor, abi: PoiGovernorAbi, functionName: 'propose', args: [proposal.targets, proposal.values, proposal.calldatas, proposal.description]
  }))
  await confirmTransaction({
    action: `propose to ${actionText(change)}`,
    from: account,
    to: gov.governor,
    value: 0n,
    gas,
    notes: [
      ...describeCalls(gov, proposal),
      ...(change.action === 'set' ? [`${change.parameter} is ${change.current} now`] : []),
      `voting opens in ${settings.votingDelay} s and lasts ${settings.votingPeriod} s; once passed and queued, the timelock waits ${settings.timelockDelay} s`
    ]
  }, values.yes === true, out)
  const { proposalId, receipt } = await refusedAs('the proposal', undefined, async () => await propose(wallet, client, gov.governor, proposal))
  const view = await readChain(`proposal ${proposalId}`, rpc, async () => await findProposal(client, gov.governor, proposalId, fromBlock))
  const after = await chainNow(client)
  const voteStart = view?.snapshot ?? 0n
  const voteEnd = view?.deadline ?? 0n
  out.event({
    event: 'gov-proposed',
    proposalId,
    action: change.action,
    parameter: change.action === 'set' ? change.parameter : null,
    value: change.action === 'unpause' ? null : change.value,
    description: proposal.description,
    proposer: account,
    voteStart: Number(voteStart),
    voteEnd: Number(voteEnd),
    txHash: receipt.transactionHash
  }, [
    `proposed    ${actionText(change)}${change.action === 'set' ? ` (now ${change.current})` : ''} (tx ${receipt.transactionHash})`,
    `proposal    ${proposalId}`,
    `voting      opens after ${formatTime(voteStart, after)}, closes ${formatTime(voteEnd, after)}; each vote counts the stake held when it opens`,
    `next        \`poi gov vote ${proposalId} for --chain ${chainFile}\` once voting opens; \`poi gov status ${proposalId} --chain ${chainFile}\` shows the tally`
  ].join('\n'))
}

async function proposalOrThrow (ctx: GovContext, id: bigint): Promise<ProposalView> {
  const view = await readChain(`proposal ${id}`, ctx.rpc, async () => await findProposal(ctx.chain.publicClient, ctx.gov.governor, id, ctx.fromBlock))
  if (view === undefined) throw new ProposalNotFoundError(id, ctx.gov.governor)
  return view
}

/** "for 64 ETH, against 0, abstain 0; quorum 42.24 ETH (reached)". */
function tally (v: ProposalView): string {
  // readProposal gives 0 while the snapshot is ahead: the quorum is a share of the stake then.
  const quorum = v.quorum > 0n
    ? `quorum ${formatEther(v.quorum)} ETH (${v.votes.for + v.votes.abstain >= v.quorum ? 'reached' : 'not reached'})`
    : 'quorum known at the snapshot'
  return `for ${formatEther(v.votes.for)} ETH, against ${formatEther(v.votes.against)} ETH, abstain ${formatEther(v.votes.abstain)} ETH; ${quorum}`
}

/** `poi gov vote <id> for|against|abstain [--reason <text>]`. */
export async function runGovVote (values: GovValues, positionals: string[]): Promise<void> {
  const id = parseProposalId(positionals[0])
  const support = parseSupport(positionals[1])
  const ctx = await govContext('vote', values, true)
  const { chain, gov, out, rpc, chainFile, wallet } = ctx
  const client = chain.publicClient
  const account = wallet.account.address
  const view = await proposalOrThrow(ctx, id)
  const now = await readChain('the latest block', rpc, async () => await chainNow(client))
  const state = stateOf(view)
  if (state === 'pending') throw new ProposalStateError(`proposal ${id} is pending: voting opens after ${formatTime(view.snapshot, now)}; vote then`)
  if (state !== 'active') throw new ProposalStateError(`proposal ${id} is ${state}: voting closed at ${formatTime(view.deadline, now)} (\`poi gov status ${id} --chain ${chainFile}\`)`)
  const voted = await readChain('the votes cast', rpc, async () => await client.readContract({ address: gov.governor, abi: PoiGovernorAbi, functionName: 'hasVoted', args: [id, account] }))
  if (voted) throw new AlreadyVotedError(account, id)
  const { pastVotes: weight = 0n } = await readChain(`the stake of ${account} at the snapshot`, rpc, async () => await readVotes(client, gov.registry, account, view.snapshot))
  if (weight === 0n) {
    throw new NoVotingPowerError(`${account} had no stake to vote with at the proposal's snapshot (${formatTime(view.snapshot, now)}): voting power is an operator's active stake, or stake delegated to it, at that time; stake registered later does not count for this proposal`)
  }
  const reason = values.reason ?? ''
  const gas = await refusedAs('the vote', id, async () => await client.estimateContractGas({
    account: wallet.account, address: gov.governor, abi: PoiGovernorAbi, functionName: 'castVoteWithReason', args: [id, VOTE_SUPPORT[support], reason]
  }))
  await confirmTransaction({
    action: `vote ${support} proposal ${id} with ${formatEther(weight)} ETH of stake`,
    from: account,
    to: gov.governor,
    value: 0n,
    gas,
    notes: [view.proposal.description.split('\n')[0]]
  }, values.yes === true, out)
  const { weight: counted, receipt } = await refusedAs('the vote', id, async () => await castVote(wallet, client, gov.governor, id, support, reason))
  const after = await proposalOrThrow(ctx, id)
  out.event({ event: 'gov-voted', proposalId: id, voter: account, support, weight: counted, reason, txHash: receipt.transactionHash }, [
    `voted       ${support} proposal ${id} with ${formatEther(counted)} ETH of stake (tx ${receipt.transactionHash})`,
    `tally       ${tally(after)}`,
    `closes      ${formatTime(after.deadline, await chainNow(client))}; then \`poi gov queue ${id} --chain ${chainFile}\` if it passed`
  ].join('\n'))
}

/** `poi gov queue <id>`. */
export async function runGovQueue (values: GovValues, positionals: string[]): Promise<void> {
  const id = parseProposalId(positionals[0])
  const ctx = await govContext('queue', values, true)
  const { chain, gov, out, rpc, chainFile, wallet } = ctx
  const client = chain.publicClient
  const view = await proposalOrThrow(ctx, id)
  const now = await readChain('the latest block', rpc, async () => await chainNow(client))
  const state = stateOf(view)
  if (state === 'pending' || state === 'active') throw new ProposalStateError(`proposal ${id} is ${state}: it can be queued once voting closes, after ${formatTime(view.deadline, now)}, if it passed`)
  if (state === 'queued') throw new ProposalStateError(`proposal ${id} is queued already: execute it from ${formatTime(view.eta, now)} with \`poi gov execute ${id} --chain ${chainFile}\``)
  if (state !== 'succeeded') throw new ProposalStateError(`proposal ${id} is ${state}${state === 'defeated' ? ` (${tally(view)})` : ''}: only a succeeded proposal can be queued`)
  const { proposal } = view
  const settings = await readChain('the governor\'s settings', rpc, async () => await readGovernorSettings(client, gov.governor))
  await confirmTransaction({
    action: `queue proposal ${id} in the timelock (${settings.timelockDelay} s delay)`,
    from: wallet.account.address,
    to: gov.governor,
    value: 0n,
    gas: await gasOf('queueing', id, client, wallet, gov, 'queue', proposal),
    notes: [proposal.description.split('\n')[0]]
  }, values.yes === true, out)
  const { eta, receipt } = await refusedAs('queueing', id, async () => await queueProposal(wallet, client, gov.governor, proposal))
  out.event({ event: 'gov-queued', proposalId: id, eta: Number(eta), txHash: receipt.transactionHash }, [
    `queued      proposal ${id} in the timelock ${gov.timelock} (tx ${receipt.transactionHash})`,
    `next        \`poi gov execute ${id} --chain ${chainFile}\` from ${formatTime(eta, await chainNow(client))}`
  ].join('\n'))
}

async function gasOf (what: string, id: bigint, client: PublicClient, wallet: Wallet, gov: GovernedDeployment, functionName: 'queue' | 'execute', proposal: Proposal): Promise<bigint> {
  return await refusedAs(what, id, async () => await client.estimateContractGas({
    account: wallet.account, address: gov.governor, abi: PoiGovernorAbi, functionName, args: [proposal.targets, proposal.values, proposal.calldatas, descriptionHash(proposal)]
  }))
}

function descriptionHash (proposal: Proposal): `0x${string}` {
  return keccak256(toHex(proposal.description))
}

/** `poi gov execute <id>`: refused with the time left while the timelock's delay runs. */
export async function runGovExecute (values: GovValues, positionals: string[]): Promise<void> {
  const id = parseProposalId(positionals[0])
  const ctx = await govContext('execute', values, true)
  const { chain, gov, out, rpc, chainFile, wallet } = ctx
  const client = chain.publicClient
  const view = await proposalOrThrow(ctx, id)
  const state = stateOf(view)
  if (state === 'executed') throw new ProposalStateError(`proposal ${id} is executed already`)
  if (state === 'succeeded') throw new ProposalStateError(`proposal ${id} passed but is not queued: \`poi gov queue ${id} --chain ${chainFile}\` first, then execute it after the timelock's delay`)
  if (state !== 'queued') throw new ProposalStateError(`proposal ${id} is ${state}: only a queued proposal can be executed (\`poi gov status ${id} --chain ${chainFile}\`)`)
  const now = await readChain('the latest block', rpc, async () => await chainNow(client))
  // The timelock's ETA: the next block's timestamp must reach it (the next block is at least a second later).
  if (now + 1n < view.eta) {
    throw new TimelockNotReadyError(`proposal ${id} is queued, but the timelock's delay has not passed: it can be executed from ${formatTime(view.eta, now)}; run \`poi gov execute ${id}\` again then`, view.eta)
  }
  const { proposal } = view
  await confirmTransaction({
    action: `execute proposal ${id} through the timelock`,
    from: wallet.account.address,
    to: gov.governor,
    value: 0n,
    gas: await gasOf('executing', id, client, wallet, gov, 'execute', proposal),
    notes: describeCalls(gov, proposal)
  }, values.yes === true, out)
  const receipt = await refusedAs('executing', id, async () => await executeProposal(wallet, client, gov.governor, proposal))
  const state2 = await readGovernanceState(client, gov, await readAsset(chain))
  const changed = proposalTouches(gov, proposal, state2.parameters.map(p => p.name))
  out.event({ event: 'gov-executed', proposalId: id, txHash: receipt.transactionHash }, [
    `executed    proposal ${id} (tx ${receipt.transactionHash})`,
    ...describeCalls(gov, proposal).map(d => `            ${d}`),
    ...state2.parameters.filter(p => changed.includes(p.name)).map(p => `now         ${p.name} = ${p.display}`),
    ...(proposal.calldatas.some(d => d.startsWith(SET_GUARDIAN_SELECTOR) || d.startsWith(UNPAUSE_SELECTOR)) ? [`now         guardian ${state2.guardian}, ${state2.paused ? 'paused' : 'not paused'}`] : [])
  ].join('\n'))
}

const SET_GUARDIAN_SELECTOR = toFunctionSelector('setGuardian(address)')
const UNPAUSE_SELECTOR = toFunctionSelector('unpause()')

/** The governed parameters a proposal's setParameter calls name. */
function proposalTouches (gov: GovernedDeployment, proposal: Proposal, names: readonly GovernedParameter[]): GovernedParameter[] {
  return names.filter(n => describeCalls(gov, proposal).some(d => d.includes(`setParameter(${n},`)))
}

/** `poi gov status [<id>]`. */
export async function runGovStatus (values: GovValues, positionals: string[]): Promise<void> {
  const ctx = await govContext('status', values, false)
  const { chain, gov, out, rpc, chainFile, fromBlock } = ctx
  const client = chain.publicClient
  if (positionals[0] !== undefined) {
    const id = parseProposalId(positionals[0])
    const view = await proposalOrThrow(ctx, id)
    const now = await chainNow(client)
    const state = stateOf(view)
    const quorumKnown = view.snapshot < now
    out.event({
      event: 'gov-proposal',
      proposalId: id,
      state,
      description: view.proposal.description,
      proposer: view.proposer,
      actions: describeCalls(gov, view.proposal),
      forVotes: view.votes.for,
      againstVotes: view.votes.against,
      abstainVotes: view.votes.abstain,
      quorum: quorumKnown ? view.quorum : null,
      voteStart: Number(view.snapshot),
      voteEnd: Number(view.deadline),
      eta: view.eta > 0n ? Number(view.eta) : null
    }, [
      `proposal    ${id}: ${state}`,
      `description ${view.proposal.description.split('\n').join('\n            ').replace(/ +\n/g, '\n')}`,
      `proposer    ${view.proposer}`,
      ...describeCalls(gov, view.proposal).map((d, i) => `${i === 0 ? 'calls       ' : '            '}${d}`),
      `votes       ${tally(view)}; it passes with more for than against and the quorum reached when voting closes`,
      `snapshot    ${formatTime(view.snapshot, now)}: the stake held then votes`,
      `deadline    ${formatTime(view.deadline, now)}: the last second votes count`,
      `eta         ${view.eta > 0n ? formatTime(view.eta, now) : 'not queued'}`,
      `next        ${nextStep(state, id, chainFile)}`
    ].join('\n'))
    return
  }
  const [state, settings, proposals] = await Promise.all([
    readChain('the governed parameters', rpc, async () => await readGovernanceState(client, gov, await readAsset(chain))),
    readChain('the governor\'s settings', rpc, async () => await readGovernorSettings(client, gov.governor)),
    readChain('the proposals', rpc, async () => await listProposalIds(client, gov.governor, fromBlock))
  ])
  const width = Math.max(...state.parameters.map(p => p.name.length))
  out.event({
    event: 'gov-parameters',
    governor: gov.governor,
    timelock: gov.timelock,
    guardian: state.guardian,
    paused: state.paused,
    parameters: state.parameters.map(p => ({ name: p.name, contract: p.contract, value: p.value })),
    votingDelay: Number(settings.votingDelay),
    votingPeriod: Number(settings.votingPeriod),
    timelockDelay: Number(settings.timelockDelay),
    proposalThreshold: settings.proposalThreshold,
    quorumPercent: Number(settings.quorumPercent),
    proposals
  }, [
    `governor    ${gov.governor}: operators vote with their active stake`,
    `voting      opens ${settings.votingDelay} s after a proposal and lasts ${settings.votingPeriod} s; quorum ${settings.quorumPercent} % of the active stake; proposing needs ${formatEther(settings.proposalThreshold)} ETH of stake`,
    `timelock    ${gov.timelock}: owns every parameter setter, runs a passed proposal ${settings.timelockDelay} s after it is queued`,
    `guardian    ${state.guardian}${BigInt(state.guardian) === 0n ? ' (none: nobody can pause)' : ' (may pause, never unpause)'}`,
    `paused      ${state.paused ? 'YES: task settlement and registrations are paused (`poi gov unpause` proposes to lift it)' : 'no'}`,
    'parameters',
    ...state.parameters.map(p => `  ${p.name.padEnd(width)}  ${p.display}`),
    `proposals   ${proposals.length === 0 ? 'none' : proposals.join('\n            ')}`
  ].join('\n'))
}

function nextStep (state: GovProposalState, id: bigint, chainFile: string): string {
  switch (state) {
    case 'pending': return 'voting opens after the snapshot'
    case 'active': return `\`poi gov vote ${id} for|against|abstain --chain ${chainFile}\``
    case 'succeeded': return `\`poi gov queue ${id} --chain ${chainFile}\``
    case 'queued': return `\`poi gov execute ${id} --chain ${chainFile}\` once the ETA has passed`
    default: return 'none'
  }
}

/** The guardian's `poi gov pause`. */
export async function runGovPause (values: GovValues): Promise<void> {
  const ctx = await govContext('pause', values, true)
  const { chain, gov, out, rpc, wallet } = ctx
  const client = chain.publicClient
  const account = wallet.account.address
  const state = await readChain('the guardian', rpc, async () => await readGovernanceState(client, gov))
  if (!isAddressEqual(state.guardian, account)) throw new NotGuardianError(account, state.guardian)
  if (state.paused) throw new ProposalStateError('the network is paused already; a proposal lifts the pause: `poi gov unpause`')
  const gas = await refusedAs('pausing', undefined, async () => await client.estimateContractGas({ account: wallet.account, address: gov.registry, abi: OperatorRegistryAbi, functionName: 'pause' }))
  await confirmTransaction({
    action: 'pause task settlement and operator registrations',
    from: account,
    to: gov.registry,
    value: 0n,
    gas,
    notes: ['exits, stake withdrawals, deposit withdrawals and reward and credit claims go on; only the timelock unpauses (`poi gov unpause` proposes it)']
  }, values.yes === true, out)
  const receipt = await refusedAs('pausing', undefined, async () => await pauseNetwork(wallet, client, gov.registry))
  out.event({ event: 'gov-paused', guardian: account, txHash: receipt.transactionHash },
    `paused      task settlement and operator registrations (tx ${receipt.transactionHash}); \`poi gov unpause\` proposes to lift the pause`)
}

/** `poi gov delegate <address>`: the keystore's voting power (its active stake) to another account, or back to itself. */
export async function runGovDelegate (values: GovValues, positionals: string[]): Promise<void> {
  const to = positionals[0]
  if (to === undefined || !isAddress(to, { strict: false })) throw new UsageError(`poi gov delegate needs an address (0x…, 20 bytes): the account that votes with this operator's stake (its own address takes it back), got ${JSON.stringify(to)}`)
  const delegatee = getAddress(to)
  const ctx = await govContext('delegate', values, true)
  const { chain, gov, out, rpc, wallet } = ctx
  const client = chain.publicClient
  const account = wallet.account.address
  const before = await readChain(`the votes of ${account}`, rpc, async () => await readVotes(client, gov.registry, account))
  const stake = await readChain(`the stake of ${account}`, rpc, async () => await client.readContract({ address: gov.registry, abi: OperatorRegistryAbi, functionName: 'operators', args: [account] }))
  if (!stake.registered || stake.exitRequestedAt !== 0n) {
    throw new NoVotingPowerError(`${account} has no active stake to delegate: voting power is the stake of a registered operator that has not asked to exit (\`poi operator status\`)`)
  }
  if (isAddressEqual(before.delegate, delegatee)) throw new ProposalStateError(`${account} already delegates its votes to ${delegatee}`)
  const gas = await refusedAs('delegating', undefined, async () => await client.estimateContractGas({ account: wallet.account, address: gov.registry, abi: OperatorRegistryAbi, functionName: 'delegate', args: [delegatee] }))
  await confirmTransaction({
    action: isAddressEqual(delegatee, account) ? `take back the votes of ${account}'s stake` : `let ${delegatee} vote with ${account}'s stake`,
    from: account,
    to: gov.registry,
    value: 0n,
    gas,
    notes: [`${formatEther(stake.stake)} ETH of stake; it counts for proposals whose snapshot comes after this transaction`]
  }, values.yes === true, out)
  const receipt = await refusedAs('delegating', undefined, async () => await delegateVotes(wallet, client, gov.registry, delegatee))
  out.event({ event: 'gov-delegated', delegator: account, delegatee, stake: stake.stake, txHash: receipt.transactionHash },
    `delegated   the votes of ${account} (${formatEther(stake.stake)} ETH of stake) to ${delegatee} (tx ${receipt.transactionHash})`)
}
