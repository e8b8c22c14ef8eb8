/**
 * Governance on anvil (one chain): parameters behind the PoiGovernor and the timelock, voting
 * power = active stake (ERC-5805 checkpoints), the bounds every setter enforces (also when a
 * passed proposal asks), and the guardian's pause with the exits it never blocks. A second
 * deployment on the same chain with keepOwner checks each bound directly.
 */
import assert from 'node:assert/strict'
import { encodeFunctionData, parseEventLogs, toHex, type TransactionReceipt } from 'viem'
import { generateBlsSecretKey } from '../consensus/index.js'
import {
  ANVIL_PRIVATE_KEYS, GOVERNED_PARAMETERS, OperatorRegistryAbi, TaskManagerAbi, TimelockControllerAbi, castVote, claimRewards, delegateVotes, deployPoi, deposit, executeProposal,
  GovernanceError, governedParameter, parameterChangeProposal, parameterContract, parseParameterValue, pauseNetwork, proposalIdOf, proposalState, propose, queueProposal, readGovernorSettings, readOperatorSet, readParameter,
  readPause, readProposal, readVault, readVotes, registerOperator, requestExit, requestWithdrawal, setGuardianDirect, setParameterDirect,
  submitCertificate, unpauseDirect, unpauseProposal, withdraw, withdrawCredit, withdrawStake, type GovernedParameter, type OnChainOperatorSet,
  type ParameterValue, type PoiDeployment, type Proposal
} from '../contracts/index.js'
import { privateKeyToAccount } from 'viem/accounts'
import { ChainClient, SettlementPausedError } from '../node/chain-client.js'
import { NetworkQuorum, PaymentGate } from '../node/roles/index.js'
import { taskIdOf, type TaskAnnouncement } from '../protocols/wire/index.js'
import { ETHER } from './consensus-fixtures.js'
import {
  expectRevert, makeCertificate, nextEpoch, paidTask, registerAll, resultOf, startPoiChain, type PoiChain, type Wallet
} from './helpers/poi-chain.js'

const EPOCH_SECONDS = 100n
/** Operators on accounts 1..4: 105 ether of active stake; 3 and 4 together hold 75 (> 2/3). */
const STAKES = [10n, 20n, 30n, 45n].map(s => s * ETHER)
/** anvil accounts: 0 deploys (guardian, treasury), 1..4 operators, 5 registers late, 7 never stakes, 8 requester, 9 submits. */
const LATE = 5
const NO_STAKE = 7
const REQUESTER = 8
const SUBMITTER = 9

describe('governance: parameters behind the governor and the timelock, the guardian\'s pause', function () {
  this.timeout(120_000)
  const keys = STAKES.map(() => generateBlsSecretKey())
  const lateKey = generateBlsSecretKey()
  /** Each operator's BLS key by address. */
  const keyOf = new Map<string, Uint8Array>()
  let chain: PoiChain
  let d: PoiDeployment
  let governor: `0x${string}`
  let settings: Awaited<ReturnType<typeof readGovernorSettings>>
  const op = (i: number): Wallet => chain.wallets[i]

  const passTime = async (seconds: bigint): Promise<void> => {
    await chain.testClient.increaseTime({ seconds: Number(seconds) })
    await chain.testClient.mine({ blocks: 1 })
  }
  /** Proposes from operator 4 and moves past the voting delay: the proposal is Active, its snapshot taken. */
  const open = async (proposal: Proposal): Promise<bigint> => {
    const { proposalId } = await propose(op(4), chain.publicClient, governor, proposal)
    assert.equal(proposalId, proposalIdOf(proposal), 'the id computed off-chain is the governor\'s')
    assert.equal(await proposalState(chain.publicClient, governor, proposalId), 'Pending')
    await passTime(settings.votingDelay + 1n)
    assert.equal(await proposalState(chain.publicClient, governor, proposalId), 'Active')
    return proposalId
  }
  /** Operators 3 and 4 (75 of 105 ether) vote for; the period ends; queued; the timelock's delay passes. */
  const passAndQueue = async (proposals: Proposal[]): Promise<void> => {
    const ids = []
    for (const p of proposals) ids.push(await open(p))
    for (const id of ids) {
      await castVote(op(3), chain.publicClient, governor, id, 'for')
      await castVote(op(4), chain.publicClient, governor, id, 'for')
    }
    await passTime(settings.votingPeriod + 1n)
    for (const [k, p] of proposals.entries()) {
      assert.equal(await proposalState(chain.publicClient, governor, ids[k]), 'Succeeded')
      await queueProposal(op(1), chain.publicClient, governor, p)
    }
    await passTime(settings.timelockDelay + 1n)
  }
  /** Every operator of `s` signs `task`'s result. */
  const certify = async (task: TaskAnnouncement, s: OnChainOperatorSet): Promise<TransactionReceipt> => {
    const signers = s.operators.map((_, i) => i)
    const qc = makeCertificate(s, s.operators.map(o => keyOf.get(o.address)!), signers, resultOf(chain, task, `t${task.nonce}`, 'out'))
    const { accepted, receipt } = await submitCertificate(op(SUBMITTER), chain.publicClient, d.taskManager, qc, s, task)
    assert.equal(accepted, true)
    return receipt
  }

  before(async () => {
    chain = await startPoiChain({ epochDuration: EPOCH_SECONDS })
    d = chain.deployment
    assert.ok(d.governor !== undefined && d.timelock !== undefined, 'deployPoi deploys a governor and a timelock by default')
    governor = d.governor
    settings = await readGovernorSettings(chain.publicClient, governor)
    await registerAll(chain, keys, STAKES)
    keys.forEach((k, i) => keyOf.set(op(i + 1).account.address, k))
    keyOf.set(op(LATE).account.address, lateKey)
    await nextEpoch(chain)
    await deposit(op(REQUESTER), chain.publicClient, d.taskManager, ETHER)
  })
  after(async () => { await chain?.stop() })

  it('hands every setter to the timelock: the deployer keeps no role, a direct call reverts', async () => {
    for (const address of [d.registry, d.taskManager, d.slashing]) {
      assert.equal(await chain.publicClient.readContract({ address, abi: OperatorRegistryAbi, functionName: 'owner' }), d.timelock)
    }
    assert.equal(settings.timelock, d.timelock)
    const role = async (name: 'PROPOSER_ROLE' | 'CANCELLER_ROLE' | 'EXECUTOR_ROLE' | 'DEFAULT_ADMIN_ROLE', who: `0x${string}`): Promise<boolean> =>
      await chain.publicClient.readContract({
        address: d.timelock!, abi: TimelockControllerAbi, functionName: 'hasRole',
        args: [await chain.publicClient.readContract({ address: d.timelock!, abi: TimelockControllerAbi, functionName: name }), who]
      })
    assert.equal(await role('PROPOSER_ROLE', governor), true)
    assert.equal(await role('CANCELLER_ROLE', governor), true)
    assert.equal(await role('EXECUTOR_ROLE', '0x0000000000000000000000000000000000000000'), true, 'anyone executes a ready operation')
    assert.equal(await role('DEFAULT_ADMIN_ROLE', op(0).account.address), false, 'the deployer renounced the admin role')
    assert.equal(await role('PROPOSER_ROLE', op(0).account.address), false)
    // the deployer, an operator: neither may set a parameter, name a guardian or unpause
    for (const who of [op(0), op(1)]) {
      await expectRevert(setParameterDirect(who, chain.publicClient, d, 'quorumBps', 7000n), 'OwnableUnauthorizedAccount')
      await expectRevert(setParameterDirect(who, chain.publicClient, d, 'exitDelay', 7200n), 'OwnableUnauthorizedAccount')
      await expectRevert(setParameterDirect(who, chain.publicClient, d, 'slashBps', 6000n), 'OwnableUnauthorizedAccount')
      await expectRevert(setGuardianDirect(who, chain.publicClient, d.registry, who.account.address), 'OwnableUnauthorizedAccount')
    }
    // nor schedule on the timelock behind the governor's back
    await expectRevert(op(0).writeContract({
      address: d.timelock!, abi: TimelockControllerAbi, functionName: 'schedule',
      args: [d.taskManager, 0n, encodeFunctionData({ abi: TaskManagerAbi, functionName: 'setParameter', args: [toHex('quorumBps', { size: 32 }), 7000n] }), toHex(0, { size: 32 }), toHex(1, { size: 32 }), settings.timelockDelay]
    }), 'AccessControlUnauthorizedAccount')
  })

  it('votes with active stake: self-delegated at registration, movable by delegation, clocked by timestamp', async () => {
    assert.equal(await chain.publicClient.readContract({ address: d.registry, abi: OperatorRegistryAbi, functionName: 'CLOCK_MODE' }), 'mode=timestamp')
    for (const [i, stake] of STAKES.entries()) {
      assert.deepEqual(await readVotes(chain.publicClient, d.registry, op(i + 1).account.address), { votes: stake, delegate: op(i + 1).account.address })
    }
    const total = STAKES.reduce((a, b) => a + b, 0n)
    const block = await chain.publicClient.getBlock()
    assert.equal(await chain.publicClient.readContract({ address: d.registry, abi: OperatorRegistryAbi, functionName: 'getPastTotalSupply', args: [block.timestamp - 1n] }), total)
    // operator 1 lends its 10 ether to operator 2 and takes it back
    await delegateVotes(op(1), chain.publicClient, d.registry, op(2).account.address)
    assert.equal((await readVotes(chain.publicClient, d.registry, op(2).account.address)).votes, STAKES[1] + STAKES[0])
    assert.equal((await readVotes(chain.publicClient, d.registry, op(1).account.address)).votes, 0n)
    await delegateVotes(op(1), chain.publicClient, d.registry, op(1).account.address)
    assert.equal((await readVotes(chain.publicClient, d.registry, op(1).account.address)).votes, STAKES[0])
    assert.equal((await readVotes(chain.publicClient, d.registry, op(2).account.address)).votes, STAKES[1])
  })

  it('changes a parameter end to end: propose, vote with stake, queue, wait, execute (not before the delay)', async () => {
    const before = await readParameter(chain.publicClient, d, 'quorumBps')
    assert.equal(before, 6667n)
    // a running node's view of the quorum (what its aggregator aims at), refreshed without a restart
    const client = await ChainClient.connect({ rpcUrl: chain.anvil.rpcUrl, ...d })
    const quorum = new NetworkQuorum(async () => await client.networkQuorumBps(), 60_000)
    await quorum.start()
    assert.equal(quorum.quorumBps, 6667)
    const proposal = parameterChangeProposal(d, 'quorumBps', 7500n)
    const id = await open(proposal)
    const { weight } = await castVote(op(3), chain.publicClient, governor, id, 'for')
    assert.equal(weight, STAKES[2])
    await castVote(op(4), chain.publicClient, governor, id, 'for', 'two thirds is too thin for us')
    await castVote(op(1), chain.publicClient, governor, id, 'against')
    await expectRevert(castVote(op(3), chain.publicClient, governor, id, 'against'), 'GovernorAlreadyCastVote')
    // queueing while the vote is open is refused
    await expectRevert(queueProposal(op(1), chain.publicClient, governor, proposal), 'GovernorUnexpectedProposalState')
    await passTime(settings.votingPeriod + 1n)
    const status = await readProposal(chain.publicClient, governor, id)
    assert.equal(status.state, 'Succeeded')
    assert.deepEqual(status.votes, { for: STAKES[2] + STAKES[3], against: STAKES[0], abstain: 0n })
    assert.equal(status.quorum, STAKES.reduce((a, b) => a + b, 0n) * settings.quorumPercent / 100n)

    const { eta } = await queueProposal(op(1), chain.publicClient, governor, proposal)
    assert.equal(await proposalState(chain.publicClient, governor, id), 'Queued')
    assert.ok(eta > 0n)
    await expectRevert(executeProposal(op(7), chain.publicClient, governor, proposal), 'TimelockUnexpectedOperationState')
    assert.equal(await readParameter(chain.publicClient, d, 'quorumBps'), before, 'nothing changed before the delay')
    await passTime(settings.timelockDelay + 1n)
    // anyone may execute a ready proposal: here an account with no stake
    const receipt = await executeProposal(op(NO_STAKE), chain.publicClient, governor, proposal)
    assert.equal(await readParameter(chain.publicClient, d, 'quorumBps'), 7500n)
    assert.equal(await proposalState(chain.publicClient, governor, id), 'Executed')
    await quorum.refresh()
    assert.equal(quorum.quorumBps, 7500)
    quorum.stop()
    const changed = parseEventLogs({ abi: TaskManagerAbi, eventName: 'ParameterChanged', logs: receipt.logs })
    assert.equal(changed.length, 1)
    assert.deepEqual({ ...changed[0].args }, { name: toHex('quorumBps', { size: 32 }), oldValue: 6667n, newValue: 7500n })
  })

  it('defeats a proposal the stake votes down: it can be neither queued nor executed', async () => {
    const proposal = parameterChangeProposal(d, 'protocolFeeBps', 100n, 'cut the protocol fee to 1 %')
    const id = await open(proposal)
    await castVote(op(1), chain.publicClient, governor, id, 'for')
    await castVote(op(4), chain.publicClient, governor, id, 'against')
    await passTime(settings.votingPeriod + 1n)
    assert.equal(await proposalState(chain.publicClient, governor, id), 'Defeated')
    await expectRevert(queueProposal(op(1), chain.publicClient, governor, proposal), 'GovernorUnexpectedProposalState')
    await expectRevert(executeProposal(op(1), chain.publicClient, governor, proposal), 'GovernorUnexpectedProposalState')
    assert.equal(await readParameter(chain.publicClient, d, 'protocolFeeBps'), 500n)
  })

  it('counts votes at the snapshot: a later exit keeps its vote, a later registration and no stake get NoVotingPower', async () => {
    const proposal = parameterChangeProposal(d, 'minTaskFee', 2n * 10n ** 14n)
    const id = await open(proposal)
    const { snapshot } = await readProposal(chain.publicClient, governor, id)
    // after the snapshot: operator 2 asks to exit (its active stake, and votes, drop to 0) ...
    await requestExit(op(2), chain.publicClient, d.registry)
    const now = await readVotes(chain.publicClient, d.registry, op(2).account.address, snapshot)
    assert.equal(now.votes, 0n)
    assert.equal(now.pastVotes, STAKES[1])
    // ... and still votes with the 20 ether it had at the snapshot
    const { weight } = await castVote(op(2), chain.publicClient, governor, id, 'for')
    assert.equal(weight, STAKES[1])
    // a registration after the snapshot has votes now, none at the snapshot
    await registerOperator(op(LATE), chain.publicClient, d.registry, lateKey, 50n * ETHER)
    assert.equal((await readVotes(chain.publicClient, d.registry, op(LATE).account.address)).votes, 50n * ETHER)
    const [account, timepoint] = await expectRevert(castVote(op(LATE), chain.publicClient, governor, id, 'against'), 'NoVotingPower')
    assert.equal(account, op(LATE).account.address)
    assert.equal(timepoint, snapshot)
    await expectRevert(castVote(op(NO_STAKE), chain.publicClient, governor, id, 'against'), 'NoVotingPower')
    // operator 2's vote was counted, not the late 50 ether
    assert.deepEqual((await readProposal(chain.publicClient, governor, id)).votes, { for: STAKES[1], against: 0n, abstain: 0n })
    // and a proposer needs stake too (threshold: one operator's minimum stake)
    await expectRevert(propose(op(NO_STAKE), chain.publicClient, governor, parameterChangeProposal(d, 'minTaskFee', 1n, 'by nobody')), 'GovernorInsufficientProposerVotes')
  })

  it('refuses every out-of-bounds value with its named error even when a passed proposal asks for it', async () => {
    const cases: Array<[GovernedParameter, ParameterValue, string]> = [
      ['quorumBps', 6000n, 'QuorumBelowFloor'],
      ['protocolFeeBps', 2001n, 'ProtocolFeeAboveCap'],
      ['exitDelay', 60n, 'ExitDelayBreaksSlashability'],
      ['withdrawalDelay', 3600n, 'WithdrawalDelayTooShort'],
      ['maxEpochAge', 3n, 'EpochAgeExceedsRegistry'],
      ['slashBps', 10n, 'ParameterOutOfBounds']
    ]
    const proposals = cases.map(([name, value]) => parameterChangeProposal(d, name, value, `out of bounds: ${name} ${String(value)}`))
    await passAndQueue(proposals)
    for (const [k, [name, , error]] of cases.entries()) {
      const before = await readParameter(chain.publicClient, d, name)
      await expectRevert(executeProposal(op(1), chain.publicClient, governor, proposals[k]), error)
      assert.equal(await readParameter(chain.publicClient, d, name), before, `${name} unchanged`)
    }
  })

  it('pauses certificate acceptance and registration in one guardian call; exits and claims go on; only the timelock unpauses', async () => {
    // a certificate before the pause: the treasury (account 0) earns a credit, the signers a reward
    const epoch = (await chain.publicClient.readContract({ address: d.registry, abi: OperatorRegistryAbi, functionName: 'currentEpoch' }))
    const live = await readOperatorSet(chain.publicClient, d, epoch)
    await certify(await paidTask(chain, 'before-pause', { requester: REQUESTER, fee: 3n * 10n ** 14n }), live)
    await requestWithdrawal(op(REQUESTER), chain.publicClient, d.taskManager, 10n ** 15n)

    await expectRevert(pauseNetwork(op(1), chain.publicClient, d.registry), 'NotGuardian')
    assert.deepEqual(await readPause(chain.publicClient, d.registry), { guardian: op(0).account.address, paused: false })
    await pauseNetwork(op(0), chain.publicClient, d.registry)
    assert.equal((await readPause(chain.publicClient, d.registry)).paused, true)
    await expectRevert(pauseNetwork(op(0), chain.publicClient, d.registry), 'Paused')

    // settlement and registration are refused
    const task = await paidTask(chain, 'during-pause', { requester: REQUESTER, fee: 3n * 10n ** 14n })
    await expectRevert(certify(task, live), 'Paused')
    // an aggregator's client sends nothing while paused, and says why (its submitter retries)
    const aggregator = await ChainClient.connect({ rpcUrl: chain.anvil.rpcUrl, ...d }, privateKeyToAccount(ANVIL_PRIVATE_KEYS[SUBMITTER]))
    const nonce = await chain.publicClient.getTransactionCount({ address: op(SUBMITTER).account.address })
    const qc = makeCertificate(live, live.operators.map(o => keyOf.get(o.address)!), live.operators.map((_, i) => i), resultOf(chain, task, 'paused', 'out'))
    await assert.rejects(aggregator.submitCertificate(qc, task), (err: unknown) => err instanceof SettlementPausedError && /paused by the network's guardian/.test(err.message))
    assert.equal(await chain.publicClient.getTransactionCount({ address: op(SUBMITTER).account.address }), nonce, 'no transaction sent')
    await expectRevert(registerOperator(op(6), chain.publicClient, d.registry, generateBlsSecretKey(), 5n * ETHER), 'Paused')

    // users can always leave: credit, rewards, a deposit's withdrawal, an exit and a stake's withdrawal
    assert.ok((await withdrawCredit(op(0), chain.publicClient, d.taskManager)).amount > 0n)
    assert.ok((await claimRewards(op(4), chain.publicClient, d, [epoch])).amount > 0n)
    await passTime(chain.params.withdrawalDelay + 1n)
    assert.equal((await withdraw(op(REQUESTER), chain.publicClient, d.taskManager)).amount, 10n ** 15n)
    await requestExit(op(1), chain.publicClient, d.registry)
    // operator 2 asked to exit in epoch `epoch`: paid once maxCertificateAge more epochs started and exitDelay passed
    for (let k = 0n; k <= chain.params.maxCertificateAge; k++) await nextEpoch(chain)
    await passTime(chain.params.exitDelay + 1n)
    const balance = await chain.publicClient.getBalance({ address: op(2).account.address })
    assert.equal((await withdrawStake(op(2), chain.publicClient, d.registry)).amount, STAKES[1])
    assert.ok(await chain.publicClient.getBalance({ address: op(2).account.address }) > balance)

    // the guardian cannot unpause; the timelock can, through a proposal
    await expectRevert(unpauseDirect(op(0), chain.publicClient, d.registry), 'OwnableUnauthorizedAccount')
    const unpause = unpauseProposal(d)
    await passAndQueue([unpause])
    await executeProposal(op(1), chain.publicClient, governor, unpause)
    assert.equal((await readPause(chain.publicClient, d.registry)).paused, false)

    // settlement resumes, here in the current epoch (operators 3, 4 and the late one sign)
    const now = await chain.publicClient.readContract({ address: d.registry, abi: OperatorRegistryAbi, functionName: 'currentEpoch' })
    const after = await readOperatorSet(chain.publicClient, d, now)
    assert.deepEqual(after.operators.map(o => o.address).sort(), [op(3), op(4), op(LATE)].map(w => w.account.address).sort())
    const before = await readVault(chain.publicClient, d.taskManager, op(REQUESTER).account.address)
    await certify(await paidTask(chain, 'after-pause', { requester: REQUESTER, fee: 3n * 10n ** 14n }), after)
    assert.equal((await readVault(chain.publicClient, d.taskManager, op(REQUESTER).account.address)).balance, before.balance - 3n * 10n ** 14n)
  })
})

describe('governance: keepOwner deployments and the setters\' bounds', function () {
  this.timeout(60_000)
  let chain: PoiChain
  let d: PoiDeployment

  before(async () => {
    chain = await startPoiChain({ epochDuration: EPOCH_SECONDS, keepOwner: true })
    d = chain.deployment
  })
  after(async () => { await chain?.stop() })

  it('keeps the deployer as owner and deploys no governor', async () => {
    assert.equal(d.governor, undefined)
    assert.equal(d.timelock, undefined)
    for (const address of [d.registry, d.taskManager, d.slashing]) {
      assert.equal(await chain.publicClient.readContract({ address, abi: OperatorRegistryAbi, functionName: 'owner' }), chain.wallets[0].account.address)
    }
  })

  it('parses and encodes parameter values by name, refusing unknown names and malformed values', () => {
    assert.equal(parseParameterValue('protocolFeeBps', '50'), 50n)
    assert.equal(parseParameterValue('treasury', chain.wallets[3].account.address.toLowerCase()), chain.wallets[3].account.address)
    assert.throws(() => parseParameterValue('minTaskFee', '1.5'), GovernanceError)
    assert.throws(() => parseParameterValue('treasury', '0x12'), GovernanceError)
    assert.throws(() => governedParameter('asset'), /unknown parameter "asset"; governed parameters: minStake, exitDelay/)
    assert.equal(parameterContract(d, 'exitDelay'), d.registry)
    assert.equal(parameterContract(d, 'withdrawalDelay'), d.taskManager)
    assert.equal(parameterContract(d, 'reporterBps'), d.slashing)
  })

  it('refuses each bound with its named error and sets values within them', async () => {
    const owner = chain.wallets[0]
    const refused: Array<[GovernedParameter, ParameterValue, string]> = [
      ['quorumBps', 6666n, 'QuorumBelowFloor'],
      ['quorumBps', 10_001n, 'InvalidBps'],
      ['protocolFeeBps', 2001n, 'ProtocolFeeAboveCap'],
      ['exitDelay', 3599n, 'ExitDelayBreaksSlashability'],
      ['exitDelay', 31n * 86_400n, 'ParameterOutOfBounds'],
      ['epochDuration', 299n, 'ParameterOutOfBounds'],
      ['minStake', 0n, 'ParameterOutOfBounds'],
      ['maxEpochAge', 0n, 'ParameterOutOfBounds'],
      ['maxEpochAge', 3n, 'EpochAgeExceedsRegistry'],
      ['treasury', '0x0000000000000000000000000000000000000000', 'ZeroAddress'],
      ['minTaskFee', 2n ** 128n, 'ParameterOutOfBounds'],
      ['maxTaskLife', 599n, 'ParameterOutOfBounds'],
      // 3 h withdrawal delay: task life 2 h + window 1 h leaves no margin
      ['maxTaskLife', 7200n, 'WithdrawalDelayTooShort'],
      ['settlementWindow', 7200n, 'WithdrawalDelayTooShort'],
      ['withdrawalDelay', 7200n, 'WithdrawalDelayTooShort'],
      ['withdrawalDelay', 31n * 86_400n, 'ParameterOutOfBounds'],
      ['slashBps', 999n, 'ParameterOutOfBounds'],
      ['reporterBps', 5001n, 'ParameterOutOfBounds']
    ]
    for (const [name, value, error] of refused) {
      const before = await readParameter(chain.publicClient, d, name)
      await expectRevert(setParameterDirect(owner, chain.publicClient, d, name, value), error)
      assert.deepEqual(await readParameter(chain.publicClient, d, name), before, `${name} unchanged after ${String(value)}`)
    }
    const accepted: Array<[GovernedParameter, ParameterValue]> = [
      ['quorumBps', 6667n], ['quorumBps', 10_000n], ['protocolFeeBps', 2000n], ['exitDelay', 3600n], ['epochDuration', 300n], ['minStake', 2n * ETHER],
      ['maxEpochAge', 1n], ['treasury', chain.wallets[3].account.address], ['minTaskFee', 0n], ['withdrawalDelay', 7201n + 3600n],
      ['maxTaskLife', 7200n], ['settlementWindow', 300n], ['slashBps', 1000n], ['reporterBps', 5000n]
    ]
    // the TaskManager's parameters share two packed slots (written by its TaskManagerGovernance
    // library) and PaymentVault's withdrawalDelay a third: a change must leave every other one as it was
    const contractOf = (name: GovernedParameter): string => GOVERNED_PARAMETERS[name].contract
    const siblingsOf = async (name: GovernedParameter): Promise<Record<string, ParameterValue>> => Object.fromEntries(await Promise.all(
      (Object.keys(GOVERNED_PARAMETERS) as GovernedParameter[]).filter(n => n !== name && contractOf(n) === contractOf(name))
        .map(async n => [n, await readParameter(chain.publicClient, d, n)] as const)))
    for (const [name, value] of accepted) {
      const siblings = await siblingsOf(name)
      const receipt = await setParameterDirect(owner, chain.publicClient, d, name, value)
      assert.deepEqual(await readParameter(chain.publicClient, d, name), value, name)
      assert.equal(receipt.logs.length, 1, `${name}: one ParameterChanged`)
      // emitted by the governed contract itself (the library's code runs in its context)
      assert.equal(receipt.logs[0].address.toLowerCase(), parameterContract(d, name).toLowerCase(), `${name}: ParameterChanged from its contract`)
      assert.deepEqual(await siblingsOf(name), siblings, `${name}: the other parameters of its contract unchanged`)
    }
    // an unknown name reaches the contract as UnknownParameter
    await expectRevert(owner.writeContract({ address: d.taskManager, abi: TaskManagerAbi, functionName: 'setParameter', args: [toHex('asset', { size: 32 }), 1n] }), 'UnknownParameter')
  })

  it('a running node admits by a changed minimum fee without a restart (payment terms read again after their TTL)', async () => {
    const client = await ChainClient.connect({ rpcUrl: chain.anvil.rpcUrl, ...d })
    const gate = new PaymentGate({
      paymentTerms: async () => await client.paymentTerms(),
      modelFee: async () => 0n,
      requesterAccount: async (requester, taskIds) => await client.requesterAccount(requester, taskIds)
    }, { termsTtlMs: 0 })
    await deposit(chain.wallets[8], chain.publicClient, d.taskManager, ETHER)
    const minTaskFee = 10n ** 14n
    await setParameterDirect(chain.wallets[0], chain.publicClient, d, 'minTaskFee', minTaskFee)
    const admit = async (label: string): Promise<unknown> => {
      const task = await paidTask(chain, label, { requester: 8, fee: minTaskFee })
      return await gate.admit(taskIdOf(task, d.taskManager), task)
    }
    assert.equal(await admit('old-minimum'), undefined)
    await setParameterDirect(chain.wallets[0], chain.publicClient, d, 'minTaskFee', minTaskFee * 2n)
    const refusal = await admit('new-minimum') as { verdict: string, reason: string }
    assert.equal(refusal.verdict, 'reject')
    assert.match(refusal.reason, new RegExp(`network minimum ${minTaskFee * 2n} wei`))
  })

  it('lets the owner (not the guardian role alone) unpause, and a new guardian pause', async () => {
    const [owner, guardian] = [chain.wallets[0], chain.wallets[2]]
    await setGuardianDirect(owner, chain.publicClient, d.registry, guardian.account.address)
    await expectRevert(pauseNetwork(owner, chain.publicClient, d.registry), 'NotGuardian')
    await pauseNetwork(guardian, chain.publicClient, d.registry)
    await expectRevert(unpauseDirect(guardian, chain.publicClient, d.registry), 'OwnableUnauthorizedAccount')
    await unpauseDirect(owner, chain.publicClient, d.registry)
    await expectRevert(unpauseDirect(owner, chain.publicClient, d.registry), 'NotPaused')
    assert.deepEqual(await readPause(chain.publicClient, d.registry), { guardian: guardian.account.address, paused: false })
  })
})
