/**
 * `poi gov` on anvil, each command its own `poi` process as a user runs it: a parameter change
 * proposed, voted with stake, queued and executed through the timelock (the value read on-chain
 * before and after, every step's --json line checked), and the refusals a user meets on the way:
 * an unknown parameter or a value past its bound refused before anything is sent, a vote before
 * voting opens, a second vote and a vote without stake, executing before the timelock's delay
 * (with the time left), a pause by someone who is not the guardian; the guardian's pause, an
 * unpause proposal and a delegation. One chain for the file.
 */
import { strict as assert } from 'node:assert'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseEther } from 'viem'
import {
  GOVERNED_PARAMETERS, OperatorRegistryAbi, SlashingManagerAbi, TaskManagerAbi, castVote, readParameter, readVotes, registerOperator, type ParameterValue
} from '../contracts/index.js'
import { writeDeployment } from '../node/deployment.js'
import { loadKeystore, generateKeystore, type Keystore } from '../node/keys.js'
import { parseEvent, type EventOf, type PoiEvent, type PoiEventName } from '../node/cli/events.js'
import { AlreadyVotedError, explainRevert } from '../node/cli/gov-commands.js'
import { GOVERNED_PARAMETER_NAMES, PARAMETER_SPECS } from '../node/cli/gov-parameters.js'
import { runPoi, type CliResult } from './helpers/cli.js'
import { startPoiChain, walletFor, type PoiChain } from './helpers/poi-chain.js'

/** A `poi` process on a loaded machine: start-up (viem, the keystore) and a few RPC round trips. */
const CLI_TIMEOUT_MS = 60_000
const STAKE = parseEther('2')

/** The one `name` line of a --json run (which must have exited 0). */
function lineOf<K extends PoiEventName> (r: CliResult, name: K): EventOf<K> {
  assert.equal(r.code, 0, `exit code ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  const events: PoiEvent[] = r.stdout.trim().split('\n').filter(l => l !== '').map(l => parseEvent(l))
  const found = events.filter(e => e.event === name)
  assert.equal(found.length, 1, `one ${name} line in ${r.stdout}`)
  return found[0] as EventOf<K>
}

/** The error line of a failed --json run, and its exit code. */
function errorOf (r: CliResult): { code: number | null, error: EventOf<'error'> } {
  assert.notEqual(r.code, 0, `expected a failure\nstdout: ${r.stdout}`)
  const last = r.stdout.trim().split('\n').at(-1)
  assert.ok(last !== undefined && last !== '', `an error line on stdout (stderr: ${r.stderr})`)
  const e = parseEvent(last)
  assert.equal(e.event, 'error')
  return { code: r.code, error: e as EventOf<'error'> }
}

describe('poi gov: a parameter change through the governor and the timelock, on anvil', function () {
  this.timeout(240_000)
  let chain: PoiChain
  let root: string
  let home: string
  let deploymentFile: string
  const operators: Keystore[] = []
  const dir = (name: string): string => join(root, name, 'keys')
  const poi = async (...args: string[]): Promise<CliResult> => await runPoi(home, CLI_TIMEOUT_MS, ...args)
  const gov = (command: string, keys: string, ...args: string[]): Promise<CliResult> =>
    poi('gov', command, ...args, '--chain', deploymentFile, '--keystore', dir(keys), '--yes', '--json')
  const advance = async (seconds: bigint): Promise<void> => {
    await chain.testClient.increaseTime({ seconds: Number(seconds) })
    await chain.testClient.mine({ blocks: 1 })
  }
  const read = async (name: keyof typeof GOVERNED_PARAMETERS): Promise<ParameterValue> => await readParameter(chain.publicClient, chain.deployment, name)

  before(async () => {
    // The deployment's governance as deployed by default: voting opens 60 s after a proposal, lasts 600 s, the timelock waits 300 s.
    root = await mkdtemp(join(tmpdir(), 'poi-gov-cli-'))
    home = join(root, 'home')
    deploymentFile = join(root, 'deployment.json')
    // Keystores as `poi keys generate` writes them: three operators, an account without stake, the guardian.
    for (const name of ['op-0', 'op-1', 'op-2', 'outsider', 'guardian']) await generateKeystore(dir(name))
    chain = await startPoiChain({ guardian: (await loadKeystore(dir('guardian'))).account.address })
    assert.ok(chain.deployment.governor !== undefined && chain.deployment.timelock !== undefined, 'deployPoi deploys a governor and a timelock')
    await writeDeployment(deploymentFile, { rpcUrl: chain.anvil.rpcUrl, ...chain.deployment })
    // The operators register 2 ETH of stake each (6 ETH in all); registering and funding are the only steps outside `poi gov`.
    for (const name of ['op-0', 'op-1', 'op-2', 'outsider', 'guardian']) {
      const keys = await loadKeystore(dir(name))
      await chain.testClient.setBalance({ address: keys.account.address, value: parseEther('100') })
      if (name.startsWith('op-')) {
        await registerOperator(walletFor(chain.anvil.rpcUrl, keys.account), chain.publicClient, chain.deployment.registry, keys.blsSecretKey, STAKE)
        operators.push(keys)
      }
    }
    // The governor counts a proposer's stake a second before the proposal.
    await advance(1n)
  })

  after(async () => {
    await chain?.stop()
    if (root !== undefined) await rm(root, { recursive: true, force: true })
  })

  it('the bounds the CLI checks are the contracts\' constants', async () => {
    const constant = async (abi: typeof TaskManagerAbi | typeof OperatorRegistryAbi | typeof SlashingManagerAbi, address: `0x${string}`, name: string): Promise<bigint> =>
      BigInt(await chain.publicClient.readContract({ address, abi: abi as readonly unknown[], functionName: name } as never) as bigint | number)
    const { registry, taskManager, slashing } = chain.deployment
    assert.deepEqual(GOVERNED_PARAMETER_NAMES, Object.keys(GOVERNED_PARAMETERS))
    assert.equal(PARAMETER_SPECS.quorumBps.min, await constant(TaskManagerAbi, taskManager, 'MIN_QUORUM_BPS'))
    assert.equal(PARAMETER_SPECS.protocolFeeBps.max, await constant(TaskManagerAbi, taskManager, 'MAX_PROTOCOL_FEE_BPS'))
    assert.equal(PARAMETER_SPECS.maxTaskLife.min, await constant(TaskManagerAbi, taskManager, 'MIN_TASK_LIFE'))
    assert.equal(PARAMETER_SPECS.maxTaskLife.max, await constant(TaskManagerAbi, taskManager, 'MAX_TASK_WINDOW'))
    assert.equal(PARAMETER_SPECS.settlementWindow.min, await constant(TaskManagerAbi, taskManager, 'MIN_SETTLEMENT_WINDOW'))
    assert.equal(PARAMETER_SPECS.settlementWindow.max, await constant(TaskManagerAbi, taskManager, 'MAX_TASK_WINDOW'))
    assert.equal(PARAMETER_SPECS.withdrawalDelay.max, await constant(TaskManagerAbi, taskManager, 'MAX_WITHDRAWAL_DELAY'))
    assert.equal(PARAMETER_SPECS.exitDelay.min, await constant(OperatorRegistryAbi, registry, 'MIN_EXIT_DELAY'))
    assert.equal(PARAMETER_SPECS.exitDelay.max, await constant(OperatorRegistryAbi, registry, 'MAX_EXIT_DELAY'))
    assert.equal(PARAMETER_SPECS.epochDuration.min, await constant(OperatorRegistryAbi, registry, 'MIN_EPOCH_DURATION'))
    assert.equal(PARAMETER_SPECS.epochDuration.max, await constant(OperatorRegistryAbi, registry, 'MAX_EPOCH_DURATION'))
    assert.equal(PARAMETER_SPECS.slashBps.min, await constant(SlashingManagerAbi, slashing, 'MIN_SLASH_BPS'))
    assert.equal(PARAMETER_SPECS.reporterBps.max, await constant(SlashingManagerAbi, slashing, 'MAX_REPORTER_BPS'))
  })

  it('refuses an unknown parameter and a value past its bound before sending anything, listing the parameters and the bound', async () => {
    const [unknown, tooHigh, notANumber, status] = await Promise.all([
      gov('propose', 'op-0', 'set', 'protocolFee', '50'),
      gov('propose', 'op-0', 'set', 'protocolFeeBps', '5000'),
      gov('propose', 'op-0', 'set', 'exitDelay', 'soon'),
      poi('gov', 'status', '--chain', deploymentFile, '--json')
    ])
    const u = errorOf(unknown)
    assert.equal(u.error.code, 'ERR_USAGE')
    assert.match(u.error.message, /unknown parameter "protocolFee"; the governed parameters are:/)
    for (const name of Object.keys(GOVERNED_PARAMETERS)) assert.ok(u.error.message.includes(`  ${name} `), `the list names ${name}:\n${u.error.message}`)
    assert.match(errorOf(tooHigh).error.message, /protocolFeeBps "5000": above the maximum 2000 bps \(20 %\); .*0 to 2000/)
    assert.match(errorOf(notANumber).error.message, /exitDelay "soon": not a duration/)
    // Nothing was proposed.
    assert.deepEqual(lineOf(status, 'gov-parameters').proposals, [])
  })

  it('propose → vote with stake → queue → execute changes protocolFeeBps on-chain; early and repeated steps are refused by name', async () => {
    assert.equal(await read('protocolFeeBps'), 500n)
    const proposed = lineOf(await gov('propose', 'op-0', 'set', 'protocolFeeBps', '50', '--reason', 'cheaper tasks'), 'gov-proposed')
    assert.equal(proposed.action, 'set')
    assert.equal(proposed.parameter, 'protocolFeeBps')
    assert.equal(proposed.value, '50')
    assert.equal(proposed.description, 'set protocolFeeBps to 50 bps (0.5 %)\n\ncheaper tasks')
    assert.equal(proposed.proposer, operators[0].account.address)
    assert.equal(proposed.voteEnd - proposed.voteStart, 600)
    const id = proposed.proposalId

    // Voting opens after the snapshot: a vote before is refused with when; the quorum is not known yet.
    const [earlyRun, pendingRun] = await Promise.all([gov('vote', 'op-1', id, 'for'), poi('gov', 'status', id, '--chain', deploymentFile, '--json')])
    const early = errorOf(earlyRun)
    assert.equal(early.error.code, 'ERR_PROPOSAL_STATE')
    assert.match(early.error.message, /is pending: voting opens after .* UTC \(in (\d+ s|1 min \d+ s)\)/)
    const pending = lineOf(pendingRun, 'gov-proposal')
    assert.deepEqual([pending.state, pending.quorum, pending.eta, pending.voteStart], ['pending', null, null, proposed.voteStart])

    await advance(61n)
    // Two of three operators vote for: 4 of 6 ETH, past the 33 % quorum.
    const [v0, v1] = await Promise.all([gov('vote', 'op-0', id, 'for', '--reason', 'yes'), gov('vote', 'op-1', id, 'for')])
    const vote0 = lineOf(v0, 'gov-voted')
    assert.deepEqual([vote0.voter, vote0.support, vote0.weight, vote0.reason], [operators[0].account.address, 'for', `${STAKE}`, 'yes'])
    assert.equal(lineOf(v1, 'gov-voted').weight, `${STAKE}`)
    // A second vote, and a vote by an account that had no stake at the snapshot, are refused by name.
    // So is queueing before voting closes.
    const [again, outsider, tally, queuedEarly] = await Promise.all([
      gov('vote', 'op-0', id, 'against'),
      gov('vote', 'outsider', id, 'for'),
      poi('gov', 'status', id, '--chain', deploymentFile, '--json'),
      gov('queue', 'op-2', id)
    ])
    const twice = errorOf(again)
    assert.equal(twice.error.code, 'ERR_ALREADY_VOTED')
    assert.match(twice.error.message, /GovernorAlreadyCastVote/)
    assert.equal(errorOf(outsider).error.code, 'ERR_NO_VOTING_POWER')
    const active = lineOf(tally, 'gov-proposal')
    assert.deepEqual([active.state, active.forVotes, active.againstVotes, active.abstainVotes], ['active', `${2n * STAKE}`, '0', '0'])
    // 33 % of the 6 ETH of active stake at the snapshot.
    assert.equal(active.quorum, `${3n * STAKE * 33n / 100n}`)
    assert.deepEqual(active.actions, ['TaskManager.setParameter(protocolFeeBps, 50 bps (0.5 %))'])

    const notClosed = errorOf(queuedEarly)
    assert.equal(notClosed.error.code, 'ERR_PROPOSAL_STATE')
    assert.match(notClosed.error.message, /is active: it can be queued once voting closes/)

    // Once voting has closed, it is queued with the timelock's ETA.
    await advance(600n)
    const queued = lineOf(await gov('queue', 'op-2', id), 'gov-queued')
    const now = (await chain.publicClient.getBlock()).timestamp
    assert.equal(BigInt(queued.eta), now + 300n)

    // Executing before the delay: refused with the time left, nothing changed.
    const tooSoon = errorOf(await gov('execute', 'outsider', id))
    assert.equal(tooSoon.error.code, 'ERR_TIMELOCK_NOT_READY')
    assert.match(tooSoon.error.message, /timelock's delay has not passed: it can be executed from .* UTC \(in [45] min \d+ s\)/)
    assert.equal(await read('protocolFeeBps'), 500n)

    // After the delay anyone may execute: the timelock sets the parameter.
    await advance(300n)
    lineOf(await gov('execute', 'outsider', id), 'gov-executed')
    assert.equal(await read('protocolFeeBps'), 50n)
    const [after, done, twiceExecuted] = await Promise.all([
      poi('gov', 'status', '--chain', deploymentFile, '--json'),
      poi('gov', 'status', id, '--chain', deploymentFile, '--json'),
      gov('execute', 'outsider', id)
    ])
    const params = lineOf(after, 'gov-parameters')
    assert.equal(params.parameters.find(p => p.name === 'protocolFeeBps')?.value, '50')
    assert.deepEqual(params.proposals, [id])
    assert.equal(params.paused, false)
    const executed = lineOf(done, 'gov-proposal')
    assert.equal(executed.state, 'executed')
    assert.equal(executed.eta, queued.eta)
    assert.match(errorOf(twiceExecuted).error.message, /is executed already/)
  })

  it('a second vote that reaches the governor reverts GovernorAlreadyCastVote, said as ERR_ALREADY_VOTED', async () => {
    const proposalId = BigInt(lineOf(await gov('propose', 'op-1', 'set', 'reporterBps', '2000'), 'gov-proposed').proposalId)
    await advance(61n)
    const wallet = walletFor(chain.anvil.rpcUrl, operators[1].account)
    await castVote(wallet, chain.publicClient, chain.deployment.governor!, proposalId, 'for')
    const err = await castVote(wallet, chain.publicClient, chain.deployment.governor!, proposalId, 'against').then(() => undefined, (e: unknown) => e)
    assert.ok(err !== undefined, 'the second vote was accepted')
    const said = explainRevert('the vote', proposalId, err)
    assert.ok(said instanceof AlreadyVotedError, String(said))
    assert.match(said.message, new RegExp(`${operators[1].account.address} has already voted on proposal ${proposalId} \\(GovernorAlreadyCastVote\\)`))
  })

  it('the guardian pauses, nobody else does, a proposal unpauses; an operator delegates its votes', async () => {
    const guardian = (await loadKeystore(dir('guardian'))).account.address
    const [notGuardian, paused, delegated] = await Promise.all([
      gov('pause', 'op-0'),
      gov('pause', 'guardian'),
      gov('delegate', 'op-1', operators[2].account.address)
    ])
    const refused = errorOf(notGuardian)
    assert.equal(refused.error.code, 'ERR_NOT_GUARDIAN')
    assert.match(refused.error.message, new RegExp(`${operators[0].account.address} is not the guardian \\(${guardian}\\)`))
    assert.equal(lineOf(paused, 'gov-paused').guardian, guardian)
    const d = lineOf(delegated, 'gov-delegated')
    assert.deepEqual([d.delegator, d.delegatee, d.stake], [operators[1].account.address, operators[2].account.address, `${STAKE}`])
    assert.equal((await readVotes(chain.publicClient, chain.deployment.registry, operators[2].account.address)).votes, 2n * STAKE)

    const [status, twice, unpause] = await Promise.all([
      poi('gov', 'status', '--chain', deploymentFile, '--json'),
      gov('pause', 'guardian'),
      gov('unpause', 'op-2', '--reason', 'resume')
    ])
    const s = lineOf(status, 'gov-parameters')
    assert.deepEqual([s.guardian, s.paused], [guardian, true])
    assert.match(errorOf(twice).error.message, /paused already; a proposal lifts the pause/)
    const proposed = lineOf(unpause, 'gov-proposed')
    assert.deepEqual([proposed.action, proposed.parameter, proposed.value, proposed.description], ['unpause', null, null, 'unpause the network\n\nresume'])
  })
})
