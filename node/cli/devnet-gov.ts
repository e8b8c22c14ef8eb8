/**
 * `poi devnet --gov`: a governed parameter change end to end on the devnet's chain, through the
 * same functions and the same checks the `poi gov` commands use: the first operator proposes,
 * every operator votes for with its stake, the proposal is queued and executed by the timelock,
 * and the parameter is read before and after. anvil's clock is moved past the voting delay, the
 * voting period and the timelock's delay (evm_increaseTime, evm_mine), so a change that takes
 * days on a real network takes seconds here.
 */
import { createTestClient, formatEther, http, type PublicClient, type TestClient } from 'viem'
import { castVote, executeProposal, propose, queueProposal, readGovernorSettings, readParameter, type GovernedParameter, type ParameterValue } from '../../contracts/index.js'
import { PoiError } from '../../protocols/wire/index.js'
import { ChainClient } from '../chain-client.js'
import type { Keystore } from '../keys.js'
import { chainNow, findProposal } from './gov-chain.js'
import { proposalFor } from './gov-commands.js'
import { formatValue, governedDeployment } from './gov-parameters.js'

/** The parameter the devnet changes and its new value: the protocol fee, from the default 500 bps (5 %) to 250. */
export const DEVNET_GOV_PARAMETER: GovernedParameter = 'protocolFeeBps'
export const DEVNET_GOV_VALUE = '250'

/** The governed change did not go through as it should have on the devnet. */
export class DevnetGovernanceError extends PoiError {
  constructor (message: string) {
    super('ERR_DEVNET', message)
  }
}

export interface GovDemoResult { proposalId: bigint, parameter: GovernedParameter, before: ParameterValue, after: ParameterValue }

/** anvil's test methods (evm_increaseTime, evm_mine). */
type AnvilClock = Pick<TestClient<'anvil'>, 'increaseTime' | 'mine'>

/**
 * Runs the change on `chain` (the devnet's) with `operators`' keys; `progress` gets a line per
 * step, with the `poi gov` command that does the same. Throws DevnetGovernanceError when the
 * parameter did not change.
 */
export async function runGovernanceDemo (chain: ChainClient, operators: readonly Keystore[], progress: (line: string) => void): Promise<GovDemoResult> {
  const gov = governedDeployment(chain.config, 'the devnet\'s deployment file')
  const client = chain.publicClient
  const clock = createTestClient({ mode: 'anvil', transport: http(chain.config.rpcUrl) })
  const fromBlock = chain.config.deployedAtBlock ?? 0n
  const name = DEVNET_GOV_PARAMETER
  const before = await readParameter(client, gov, name)
  const settings = await readGovernorSettings(client, gov.governor)
  progress(`governance: ${name} is ${formatValue(name, before)}; voting opens ${settings.votingDelay} s after a proposal and lasts ${settings.votingPeriod} s, quorum ${settings.quorumPercent} % of the stake, timelock delay ${settings.timelockDelay} s`)

  const wallets = await Promise.all(operators.map(async k => (await ChainClient.connect(chain.config, k.account)).walletClient!))
  const { change, proposal } = await proposalFor(client, gov, 'set', [name, DEVNET_GOV_VALUE], 'what `poi devnet --gov` shows: a parameter changed by the operators\' vote')
  // The governor counts the proposer's stake a second ago: registered in this very second, it would have none yet.
  await passTime(client, clock, (await chainNow(client)) + 1n)
  const { proposalId: id } = await propose(wallets[0], client, gov.governor, proposal)
  progress(`proposed to ${proposal.description.split('\n')[0]} as operator-0: proposal ${id}  (poi gov propose set ${name} ${DEVNET_GOV_VALUE})`)

  const made = await findProposal(client, gov.governor, id, fromBlock)
  if (made === undefined) throw new DevnetGovernanceError(`proposal ${id} was made but the governor has no ProposalCreated event for it`)
  await passTime(client, clock, made.snapshot + 1n)
  progress(`anvil's clock moved past the voting delay: voting is open (${made.state === 'Pending' ? 'was pending' : made.state})`)
  for (const [i, wallet] of wallets.entries()) {
    const { weight } = await castVote(wallet, client, gov.governor, id, 'for')
    progress(`operator-${i} voted for with ${formatEther(weight)} ETH of stake  (poi gov vote ${id} for)`)
  }
  await passTime(client, clock, made.deadline + 1n)
  const voted = await findProposal(client, gov.governor, id, fromBlock)
  progress(`anvil's clock moved past the voting period: ${voted?.state} with ${formatEther(voted?.votes.for ?? 0n)} ETH for, quorum ${formatEther(voted?.quorum ?? 0n)} ETH`)
  if (voted?.state !== 'Succeeded') throw new DevnetGovernanceError(`proposal ${id} is ${voted?.state ?? 'gone'} after the vote, not Succeeded`)
  const { eta } = await queueProposal(wallets[0], client, gov.governor, proposal)
  progress(`queued in the timelock ${gov.timelock}, executable after its ${settings.timelockDelay} s delay  (poi gov queue ${id})`)
  await passTime(client, clock, eta)
  await executeProposal(wallets[0], client, gov.governor, proposal)
  progress(`anvil's clock moved past the timelock delay; the timelock executed it  (poi gov execute ${id})`)
  const after = await readParameter(client, gov, name)
  if (change.action !== 'set' || after.toString() !== change.value) throw new DevnetGovernanceError(`proposal ${id} was executed but ${name} is ${String(after)}, not ${DEVNET_GOV_VALUE}`)
  return { proposalId: id, parameter: name, before, after }
}

/** Moves the chain's clock until the latest block's timestamp is at least `at` (unix seconds): evm_increaseTime, then a block. */
async function passTime (client: PublicClient, clock: AnvilClock, at: bigint): Promise<void> {
  const now = await chainNow(client)
  if (now >= at) return
  await clock.increaseTime({ seconds: Number(at - now) })
  await clock.mine({ blocks: 1 })
  const after = await chainNow(client)
  if (after < at) throw new DevnetGovernanceError(`anvil's clock is at ${after} after moving it to ${at}`)
}
