/**
 * Full nodes admit only paid-for tasks (issue 10, "What to build" 3): real libp2p nodes in this
 * process against a real anvil chain. The operator set, the model's fee, the network minimum,
 * deposits and defaults are all the chain's; requesters are anvil accounts that sign tasks for
 * the deployed TaskManager.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { ANVIL_PRIVATE_KEYS, deposit, readVault, submitCertificate, type OnChainOperatorSet } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { exampleInput } from '../node/cli/devnet.js'
import type { Keystore } from '../node/keys.js'
import type { PoiNode, Rejection } from '../node/poi-node.js'
import { waitForNetwork, requestInference } from '../node/requester/index.js'
import { PaymentGate, type PaymentChain } from '../node/roles/index.js'
import { signTask, taskIdOf, toHex, type TaskAnnouncement } from '../protocols/wire/index.js'
import { taskResult } from './consensus-fixtures.js'
import { startPaidNetwork, type PaidNetwork } from './helpers/paid-network.js'
import { makeCertificate, walletFor, type PoiChain } from './helpers/poi-chain.js'
import { until } from './helpers/wait.js'

const TEST_TIMEOUT_MS = 60_000
const SETUP_TIMEOUT_MS = 120_000
const MESH_TIMEOUT_MS = 30_000
const REFUSAL_TIMEOUT_MS = 20_000
const TASK_TIMEOUT_MS = 30_000
/** The model owner's fee per task (the network minimum is the deployment default). */
const MODEL_FEE = 20_000_000_000_000n
/** Tasks in the burst, and how many the requester's deposit covers. */
const BURST = 6
const COVERED = 3

/** anvil accounts used as requesters (0 deploys, 1-3 are operators). */
const REQUESTER = { unfunded: 4, funded: 5, defaulted: 6, burst: 7, gate: 8, settled: 9 } as const

describe('full nodes admit only paid-for tasks (anvil)', function () {
  this.timeout(TEST_TIMEOUT_MS)
  let net: PaidNetwork
  let chain: PoiChain
  let client: ChainClient
  let set: OnChainOperatorSet
  let modelId: Uint8Array
  let required: bigint
  let operatorKeys: Keystore[]
  let bootstrap: PoiNode
  let operators: PoiNode[]
  let aggregator: PoiNode
  let requester: PoiNode
  const rejections: Rejection[] = []
  let inputs = 0

  const account = (i: number): PrivateKeyAccount => privateKeyToAccount(ANVIL_PRIVATE_KEYS[i])
  const wallet = (i: number): ReturnType<typeof walletFor> => walletFor(chain.anvil.rpcUrl, account(i))

  before(async function () {
    this.timeout(SETUP_TIMEOUT_MS)
    net = await startPaidNetwork('poi-payment-admission-', MODEL_FEE)
    ;({ chain, client, set, modelId, required, operatorKeys } = net)
    bootstrap = await net.start('bootstrap')
    bootstrap.addEventListener('rejected', ({ detail }) => { if (detail.topic === 'task') rejections.push(detail) })
    operators = []
    for (let i = 0; i < operatorKeys.length; i++) operators.push(await net.start(`op${i}`, { operate: true }, operatorKeys[i]))
    aggregator = await net.start('aggregator', { aggregate: true })

    requester = await net.start('requester', { light: true })
    const full = [bootstrap, ...operators, aggregator]
    await until(() => full.every(n => n.meshPeers('tasks') > 0 && n.meshPeers('certificates') > 0 &&
      (operators.includes(n) ? n.topicPeers('attestations') > 0 : n.meshPeers('attestations') > 0)), MESH_TIMEOUT_MS, 'gossip meshes on every full node')
    await waitForNetwork(requester, { timeoutMs: MESH_TIMEOUT_MS })
  })

  after(async function () {
    this.timeout(SETUP_TIMEOUT_MS)
    await net?.stop()
  })

  async function task (requesterIndex: number, fields: { fee?: bigint, deadline?: bigint } = {}): Promise<TaskAnnouncement> {
    return await signTask(account(requesterIndex), set.domain.taskManager, {
      chainId: set.domain.chainId,
      modelId,
      input: exampleInput(++inputs),
      fee: fields.fee ?? required,
      deadline: fields.deadline ?? BigInt(Date.now() + TASK_TIMEOUT_MS),
      quorumBps: 6_667,
      nonce: BigInt('0x' + randomBytes(8).toString('hex'))
    })
  }

  const idOf = (t: TaskAnnouncement): string => toHex(taskIdOf(t, set.domain.taskManager))

  /** The bootstrap node's refusal of the task (the light requester's first hop). */
  async function refusalOf (t: TaskAnnouncement): Promise<Rejection> {
    const id = idOf(t)
    await until(() => rejections.some(r => r.reason.includes(id)), REFUSAL_TIMEOUT_MS, `the bootstrap node's refusal of task ${id}`)
    return rejections.find(r => r.reason.includes(id))!
  }

  function assertNeverRun (t: TaskAnnouncement): void {
    const taskId = taskIdOf(t, set.domain.taskManager)
    for (const n of [bootstrap, ...operators, aggregator]) assert.equal(n.knowsTask(taskId), false, `a full node tracks task ${toHex(taskId)}`)
  }

  it('a task from a requester with no deposit is ignored with its reason and never run', async () => {
    const t = await task(REQUESTER.unfunded)
    await requester.announce(t)
    const refusal = await refusalOf(t)
    assert.equal(refusal.verdict, 'ignore', 'the relaying peer is not penalised')
    assert.match(refusal.reason, new RegExp(`available deposit 0 wei does not cover this task's fee ${required} wei`))
    assertNeverRun(t)
  })

  it('a funded requester\'s task runs, certifies and is counted against its deposit', async () => {
    await deposit(wallet(REQUESTER.funded), chain.publicClient, chain.deployment.taskManager, 10n * required)
    const result = await requestInference(requester, account(REQUESTER.funded), { modelId, input: exampleInput(++inputs), fee: required, timeoutMs: TASK_TIMEOUT_MS })
    assert.ok(result.certificate.signedStake.length > 0)
    assert.ok(operators.some(n => n.knowsTask(result.taskId)))
    assert.ok(bootstrap.paymentGate!.pendingCount >= 1, 'the admitted task is counted until it settles on-chain')
  })

  it('a task whose fee is below the model\'s fee plus the network minimum is rejected with both figures', async () => {
    await deposit(wallet(REQUESTER.funded), chain.publicClient, chain.deployment.taskManager, 10n * required)
    const t = await task(REQUESTER.funded, { fee: required - 1n })
    await requester.announce(t)
    const refusal = await refusalOf(t)
    assert.equal(refusal.verdict, 'reject', 'a fee below the minimum is the requester\'s own signed choice')
    assert.match(refusal.reason, new RegExp(`fee ${required - 1n} wei is below the model's fee ${MODEL_FEE} wei plus the network minimum ${chain.params.minTaskFee} wei`))
    assertNeverRun(t)
  })

  it('a requester in default is ignored, whatever it deposits afterwards', async () => {
    // An accepted certificate its deposit could not cover: 1 wei against the task's fee.
    await deposit(wallet(REQUESTER.defaulted), chain.publicClient, chain.deployment.taskManager, 1n)
    const unpaid = await task(REQUESTER.defaulted)
    const qc = makeCertificate(set, operatorKeys.map(k => k.blsSecretKey), [0, 1, 2], { ...taskResult('defaulted', 'out'), taskId: taskIdOf(unpaid, set.domain.taskManager) })
    const { accepted } = await submitCertificate(chain.wallets[0], chain.publicClient, chain.deployment.taskManager, qc, set, unpaid)
    assert.equal(accepted, true)
    const vault = await readVault(chain.publicClient, chain.deployment.taskManager, account(REQUESTER.defaulted).address)
    assert.equal(vault.shortfall, required - 1n)
    await deposit(wallet(REQUESTER.defaulted), chain.publicClient, chain.deployment.taskManager, 10n * required)

    const t = await task(REQUESTER.defaulted)
    await requester.announce(t)
    const refusal = await refusalOf(t)
    assert.equal(refusal.verdict, 'ignore')
    assert.match(refusal.reason, new RegExp(`is in default: accepted certificates left ${required - 1n} wei unpaid`))
    assertNeverRun(t)
  })

  it(`a burst of ${BURST} tasks from a requester whose deposit covers ${COVERED} gets only ${COVERED} admitted`, async () => {
    await deposit(wallet(REQUESTER.burst), chain.publicClient, chain.deployment.taskManager, BigInt(COVERED) * required)
    const burst = await Promise.all(Array.from({ length: BURST }, async () => await task(REQUESTER.burst)))
    const certified = new Set<string>()
    requester.addEventListener('certificate', ({ detail }) => { certified.add(toHex(detail.certificate.taskId)) })
    await Promise.all(burst.map(async t => await requester.announce(t)))
    const ids = burst.map(idOf)
    const refused = (): string[] => ids.filter(id => rejections.some(r => r.reason.includes(id)))
    await until(() => refused().length >= BURST - COVERED && ids.filter(id => certified.has(id)).length >= COVERED, TASK_TIMEOUT_MS,
      () => `${BURST - COVERED} refusals and ${COVERED} certificates (have ${refused().length} and ${ids.filter(id => certified.has(id)).length})`)
    assert.equal(refused().length, BURST - COVERED)
    // Every full node counts the deposit itself: none admits more than it covers.
    for (const n of [bootstrap, ...operators, aggregator]) {
      assert.ok(burst.filter(t => n.knowsTask(taskIdOf(t, set.domain.taskManager))).length <= COVERED, 'a full node admitted more tasks than the deposit covers')
    }
    for (const id of refused()) {
      const r = rejections.find(r => r.reason.includes(id))!
      assert.equal(r.verdict, 'ignore')
      assert.match(r.reason, new RegExp(`available deposit ${BigInt(COVERED) * required} wei does not cover this task's fee ${required} wei plus ${BigInt(COVERED) * required} wei its ${COVERED} pending tasks`))
    }
    const admitted = ids.filter(id => !refused().includes(id))
    assert.deepEqual(admitted.filter(id => certified.has(id)).sort(), [...admitted].sort(), 'every admitted task certifies')
    for (const t of burst.filter(t => refused().includes(idOf(t)))) assertNeverRun(t)
  })

  it('reads a requester\'s vault once per cache period, however many of its tasks arrive at once', async () => {
    await deposit(wallet(REQUESTER.gate), chain.publicClient, chain.deployment.taskManager, 2n * required)
    let reads = 0
    const counting: PaymentChain = {
      paymentTerms: async () => await client.paymentTerms(),
      modelFee: async (id) => await client.modelFee(id),
      requesterAccount: async (r, ids) => { reads++; return await client.requesterAccount(r, ids) }
    }
    // A cache period far longer than the burst, so the count cannot depend on the machine's speed.
    const gate = new PaymentGate(counting, { cacheMs: 10 * 60_000 })
    const burst = await Promise.all(Array.from({ length: BURST }, async () => await task(REQUESTER.gate)))
    const verdicts = await Promise.all(burst.map(async t => await gate.admit(taskIdOf(t, set.domain.taskManager), t)))
    assert.equal(reads, 1)
    assert.equal(verdicts.filter(v => v === undefined).length, 2)
    assert.equal(gate.pendingCount, 2)
    const admitted = burst.filter((_, i) => verdicts[i] === undefined)
    const refused = burst.filter((_, i) => verdicts[i] !== undefined)
    for (const v of verdicts.filter(v => v !== undefined)) assert.equal(v!.verdict, 'ignore')
    // The same task again is not counted twice; one that ended NoQuorum frees its fee.
    assert.equal(await gate.admit(taskIdOf(admitted[1], set.domain.taskManager), admitted[1]), undefined)
    assert.equal(gate.pendingCount, 2)
    assert.notEqual(await gate.admit(taskIdOf(refused[0], set.domain.taskManager), refused[0]), undefined)
    gate.ended(taskIdOf(admitted[0], set.domain.taskManager))
    assert.equal(await gate.admit(taskIdOf(refused[0], set.domain.taskManager), refused[0]), undefined)
    assert.equal(gate.pendingCount, 2)
    assert.equal(reads, 1)
  })

  it('pending tasks are bounded, and one past its deadline plus the settlement window stops counting', async () => {
    // REQUESTER.gate's deposit covers exactly 2 tasks (the test above, if it ran, deposited that and charged nothing).
    const { available } = await readVault(chain.publicClient, chain.deployment.taskManager, account(REQUESTER.gate).address)
    if (available < 2n * required) await deposit(wallet(REQUESTER.gate), chain.publicClient, chain.deployment.taskManager, 2n * required - available)
    const { settlementWindowMs } = await client.paymentTerms()
    const bounded = new PaymentGate(client, { cacheMs: 0, maxPending: 1 })
    const [a, b] = await Promise.all([task(REQUESTER.gate), task(REQUESTER.gate)])
    assert.equal(await bounded.admit(taskIdOf(a, set.domain.taskManager), a), undefined)
    const refusal = await bounded.admit(taskIdOf(b, set.domain.taskManager), b)
    assert.equal(refusal?.verdict, 'ignore')
    assert.match(refusal!.reason, /already counts 1 unsettled paid tasks \(MAX_PENDING_PAID_TASKS\)/)

    const gate = new PaymentGate(client, { cacheMs: 0 })
    const expired = await task(REQUESTER.gate, { deadline: BigInt(Date.now() - settlementWindowMs - 1_000) })
    const [c, d] = await Promise.all([task(REQUESTER.gate), task(REQUESTER.gate)])
    assert.equal(await gate.admit(taskIdOf(expired, set.domain.taskManager), expired), undefined)
    assert.equal(gate.pendingCount, 1)
    // No certificate can charge the expired task any more: both new ones fit the deposit.
    assert.equal(await gate.admit(taskIdOf(c, set.domain.taskManager), c), undefined)
    assert.equal(await gate.admit(taskIdOf(d, set.domain.taskManager), d), undefined)
    assert.equal(gate.pendingCount, 2)
  })

  it('a task settled on-chain stops counting against its requester at the next vault read', async () => {
    await deposit(wallet(REQUESTER.settled), chain.publicClient, chain.deployment.taskManager, required)
    // Read on every task, so the test does not wait out a cache period.
    const gate = new PaymentGate(client, { cacheMs: 0 })
    const [first, second] = await Promise.all([task(REQUESTER.settled), task(REQUESTER.settled)])
    const firstId = taskIdOf(first, set.domain.taskManager)
    assert.equal(await gate.admit(firstId, first), undefined)
    assert.match((await gate.admit(taskIdOf(second, set.domain.taskManager), second))!.reason, new RegExp(`plus ${required} wei its 1 pending tasks`))
    const qc = makeCertificate(set, operatorKeys.map(k => k.blsSecretKey), [0, 1, 2], { ...taskResult('settled', 'out'), taskId: firstId })
    await submitCertificate(chain.wallets[0], chain.publicClient, chain.deployment.taskManager, qc, set, first)
    gate.certified(firstId)
    await deposit(wallet(REQUESTER.settled), chain.publicClient, chain.deployment.taskManager, required)
    // The balance paid for the first task; counting it as pending too would refuse the second.
    assert.equal(await gate.admit(taskIdOf(second, set.domain.taskManager), second), undefined)
    assert.equal(gate.pendingCount, 1)
  })
})
