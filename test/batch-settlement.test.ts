/**
 * Batches on anvil (issue 15): one quorum certificate settles tab tasks of several requesters and
 * models; every balance is checked to the wei (requesters' deposits, model owners' and the
 * treasury's credits, each signer's claimable reward, the non-signer's exclusion); every leaf is
 * provable with hasResult; each bad input reverts with its named error and moves nothing; a
 * second identical batch returns false; tab tasks cannot settle singly while single tasks still
 * do; and the on-chain MerkleProof agrees with consensus BatchTree and @openzeppelin/merkle-tree
 * on random trees. Real BLS keys sign consensus batchDigest, aggregated as operators would.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { StandardMerkleTree } from '@openzeppelin/merkle-tree'
import { bytesToHex, hexToBigInt, parseEventLogs, type Hex, type TransactionReceipt } from 'viem'
import { BatchTree, generateBlsSecretKey, type BatchSummary } from '../consensus/index.js'
import {
  TaskManagerAbi, taskArgs, buyModelAccess, deposit, pauseNetwork, readValidationStatus, registerAgent, requestValidation, hasBatchResult, isTabSequenceSettled, readAccess, readBatchEpoch, readCredit, readOperatorSet,
  readPendingRewards, readTab, readVault, registerModel, setModelAccessTier, setModelFee, simulateBatch, submitBatch, submitCertificate,
  type BatchQuorumCertificate, type OnChainOperatorSet
} from '../contracts/index.js'
import { signVoucher, taskIdOf } from '../protocols/wire/index.js'
import { signBatch, tabBatch, type TabTask } from './helpers/batch-chain.js'
import { ownedManifest, type OwnedManifest } from './helpers/model-manifests.js'
import { ETHER } from './consensus-fixtures.js'
import {
  anvilAccount, expectRevert, makeCertificate, nextEpoch, paidTask, registerAll, resultOf, startPoiChain, type PoiChain, type Wallet
} from './helpers/poi-chain.js'

const CHAIN_TIMEOUT_MS = 120_000
const EPOCH_SECONDS = 100n
/** 105 ether in all; operator 0 (10 ether) stays out of every batch and leaves 95 > 2/3. */
const STAKES = [10n, 20n, 30n, 45n].map(s => s * ETHER)
const SIGNERS = [1, 2, 3]
const SIGNED_STAKE = STAKES[1] + STAKES[2] + STAKES[3]
const REWARD_SCALE = 10n ** 27n
const BPS = 10_000n
const MODEL_A_FEE = 3n * 10n ** 14n
const MODEL_B_FEE = 2n * 10n ** 14n
const CREDIT_PRICE = 10n ** 12n
/** anvil accounts: 0 deploys (treasury), 1..4 operators, 5 and 6 own models A (pay per use) and B (credits), 7..9 requesters, 10 nearly broke, 11 submits. */
const OWNER_A = 5
const OWNER_B = 6
const REQUESTERS = [7, 8, 9]
const BROKE = 10
const SUBMITTER = 11
const ACCOUNTS = 12
const LEAF_TYPES = ['bytes32', 'bytes32', 'bytes32']

interface Batch { tasks: TabTask[], tree: BatchTree, summary: BatchSummary, qc: BatchQuorumCertificate }

const random32 = (): Hex => bytesToHex(randomBytes(32))

describe('batches: many tab tasks under one certificate', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  const keys = STAKES.map(() => generateBlsSecretKey())
  let chain: PoiChain
  let set: OnChainOperatorSet
  let submitter: Wallet
  let chainId: bigint
  let modelA: OwnedManifest
  let modelB: OwnedManifest
  const openModel = new TextEncoder().encode('test-model')
  /** Per requester account: what its vouchers authorise in total so far. */
  const authorised = new Map<number, bigint>()
  let labels = 0
  const tm = (): `0x${string}` => chain.deployment.taskManager
  const address = (account: number): `0x${string}` => chain.wallets[account].account.address

  /** A real signed tab task (nonce = sequence) of `requester` with a fresh result. */
  const tabTask = async (requester: number, sequence: bigint, modelId: Uint8Array, fee: bigint): Promise<TabTask> => {
    const task = await paidTask(chain, `tab-${labels++}`, { requester, nonce: sequence, modelId, fee })
    const cumulative = (authorised.get(requester) ?? 0n) + fee
    authorised.set(requester, cumulative)
    return {
      account: anvilAccount(requester), sequence, modelId, fee, deadlineMs: task.deadline, cumulative,
      leaf: { taskId: bytesToHex(taskIdOf(task, tm())), resultHash: random32(), outputRef: random32() }
    }
  }
  const requesterOf = (t: TabTask): number => REQUESTERS.concat(BROKE).find(r => address(r) === t.account.address)!

  /** The batch's summary from its tasks, as an aggregator builds it; `mutate` runs before the quorum signs. */
  const buildBatch = async (tasks: TabTask[], mutate?: (summary: BatchSummary) => Promise<void> | void): Promise<Batch> => {
    const domain = { chainId, taskManager: tm() }
    const { tree, summary } = await tabBatch(tasks, domain, random32())
    await mutate?.(summary)
    return { tasks: [...tasks], tree, summary, qc: signBatch(domain, set.epoch, keys, SIGNERS, tree.root, summary) }
  }

  const post = async (batch: Batch): Promise<{ accepted: boolean, receipt: TransactionReceipt }> =>
    await submitBatch(submitter, chain.publicClient, tm(), batch.qc, batch.summary, set)

  /** Everything a refused batch must leave as it was. */
  const snapshot = async (): Promise<unknown[]> => {
    const reads: Array<Promise<unknown>> = [
      chain.publicClient.getBalance({ address: tm() }),
      readCredit(chain.publicClient, tm(), address(OWNER_A)),
      readCredit(chain.publicClient, tm(), address(OWNER_B)),
      readCredit(chain.publicClient, tm(), address(0)),
      readAccess(chain.publicClient, chain.deployment.modelRegistry, modelB.modelId, address(REQUESTERS[1])),
      chain.publicClient.readContract({ address: tm(), abi: TaskManagerAbi, functionName: 'epochRewards', args: [1n] })
    ]
    for (const r of [...REQUESTERS, BROKE]) reads.push(readVault(chain.publicClient, tm(), address(r)), readTab(chain.publicClient, tm(), address(r)))
    for (const op of set.operators) reads.push(readPendingRewards(chain.publicClient, chain.deployment, op.address, [1n]))
    return await Promise.all(reads)
  }

  /** `batch` must revert with `errorName` (simulated and sent alike) and change nothing. */
  const refused = async (batch: Batch, errorName: string): Promise<readonly unknown[]> => {
    const before = await snapshot()
    const args = await expectRevert(simulateBatch(chain.publicClient, submitter.account, tm(), batch.qc, batch.summary, set), errorName)
    assert.deepEqual(await snapshot(), before, `${errorName}: a refused batch changed a balance`)
    return args
  }

  before(async () => {
    chain = await startPoiChain({ epochDuration: EPOCH_SECONDS }, { accounts: ACCOUNTS })
    chainId = BigInt(await chain.publicClient.getChainId())
    submitter = chain.wallets[SUBMITTER]
    await registerAll(chain, keys, STAKES)
    await nextEpoch(chain)
    set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
    modelA = await ownedManifest(address(OWNER_A), 'batch-a')
    modelB = await ownedManifest(address(OWNER_B), 'batch-b')
    await registerModel(chain.wallets[OWNER_A], chain.publicClient, chain.deployment.modelRegistry, modelA.modelId, modelA.block, MODEL_A_FEE, 'pay-per-use')
    await registerModel(chain.wallets[OWNER_B], chain.publicClient, chain.deployment.modelRegistry, modelB.modelId, modelB.block, MODEL_B_FEE)
    await setModelAccessTier(chain.wallets[OWNER_B], chain.publicClient, chain.deployment.modelRegistry, modelB.modelId, 'credits', CREDIT_PRICE)
    // credits and a per-task fee both (the credits tier zeroes the fee; setFee adds one back)
    await setModelFee(chain.wallets[OWNER_B], chain.publicClient, chain.deployment.modelRegistry, modelB.modelId, MODEL_B_FEE)
    await buyModelAccess(chain.wallets[REQUESTERS[1]], chain.publicClient, chain.deployment.modelRegistry, modelB.modelId, 'credits', 5n)
    for (const r of REQUESTERS) await deposit(chain.wallets[r], chain.publicClient, tm(), ETHER)
    await deposit(chain.wallets[BROKE], chain.publicClient, tm(), chain.params.minTaskFee)
  })
  after(async () => { await chain?.stop() })

  let first: Batch

  it('settles a batch of three requesters and three models: every balance to the wei, every leaf provable', async () => {
    const [r1, r2, r3] = REQUESTERS
    const min = chain.params.minTaskFee
    const extra = 7n * 10n ** 13n
    first = await buildBatch([
      await tabTask(r1, 1n, modelA.modelId, MODEL_A_FEE + min),
      await tabTask(r1, 2n, modelA.modelId, MODEL_A_FEE + min + extra),
      await tabTask(r1, 3n, openModel, min),
      await tabTask(r1, 4n, modelA.modelId, MODEL_A_FEE + min),
      await tabTask(r2, 1n, modelB.modelId, MODEL_B_FEE + min),
      await tabTask(r2, 2n, modelB.modelId, MODEL_B_FEE + min),
      await tabTask(r3, 1n, modelA.modelId, MODEL_A_FEE + min)
    ])
    const charges = new Map(REQUESTERS.map(r => [r, first.tasks.filter(t => requesterOf(t) === r).reduce((sum, t) => sum + t.fee, 0n)]))
    const ownerA = 4n * MODEL_A_FEE
    const ownerB = 2n * MODEL_B_FEE
    const charged = [...charges.values()].reduce((a, b) => a + b, 0n)
    const rest = charged - ownerA - ownerB
    const protocol = rest * BigInt(chain.params.protocolFeeBps) / BPS
    const signersShare = rest - protocol
    const increment = signersShare * REWARD_SCALE / SIGNED_STAKE

    const before = {
      vault: await Promise.all(REQUESTERS.map(async r => (await readVault(chain.publicClient, tm(), address(r))).balance)),
      ownerA: await readCredit(chain.publicClient, tm(), address(OWNER_A)),
      ownerB: await readCredit(chain.publicClient, tm(), address(OWNER_B)),
      treasury: await readCredit(chain.publicClient, tm(), address(0)),
      eth: await chain.publicClient.getBalance({ address: tm() }),
      credits: (await readAccess(chain.publicClient, chain.deployment.modelRegistry, modelB.modelId, address(r2))).credits,
      rewards: await Promise.all(set.operators.map(async op => await readPendingRewards(chain.publicClient, chain.deployment, op.address, [1n])))
    }
    const { accepted, receipt } = await post(first)
    assert.equal(accepted, true)

    for (const [k, r] of REQUESTERS.entries()) {
      assert.equal((await readVault(chain.publicClient, tm(), address(r))).balance, before.vault[k] - charges.get(r)!, `requester ${r}'s deposit`)
      const own = first.tasks.filter(t => requesterOf(t) === r)
      const highest = own.reduce((a, b) => b.sequence > a.sequence ? b : a)
      assert.deepEqual(await readTab(chain.publicClient, tm(), address(r)), { settled: charges.get(r), lastSequence: highest.sequence })
      for (const t of own) assert.equal(await isTabSequenceSettled(chain.publicClient, tm(), address(r), t.sequence), true)
      assert.equal(await isTabSequenceSettled(chain.publicClient, tm(), address(r), highest.sequence + 1n), false)
    }
    assert.equal(await readCredit(chain.publicClient, tm(), address(OWNER_A)), before.ownerA + ownerA)
    assert.equal(await readCredit(chain.publicClient, tm(), address(OWNER_B)), before.ownerB + ownerB)
    assert.equal(await readCredit(chain.publicClient, tm(), address(0)), before.treasury + protocol)
    assert.equal(await chain.publicClient.getBalance({ address: tm() }), before.eth, 'a batch moves no ETH in or out')
    assert.equal((await readAccess(chain.publicClient, chain.deployment.modelRegistry, modelB.modelId, address(r2))).credits, before.credits - 2n, 'the credits tier takes one credit per task')
    for (const [i, op] of set.operators.entries()) {
      const expected = SIGNERS.includes(i) ? STAKES[i] * increment / REWARD_SCALE : 0n
      assert.equal(await readPendingRewards(chain.publicClient, chain.deployment, op.address, [1n]), before.rewards[i] + expected, `operator ${i}'s reward`)
    }
    const [missedExcluded, missedCount] = await chain.publicClient.readContract({ address: tm(), abi: TaskManagerAbi, functionName: 'missedIn', args: [1n, set.operators[0].address] })
    assert.deepEqual([missedExcluded, missedCount], [increment, 7n], 'the non-signer missed every leaf, excluded from the batch\'s increment')
    const [index, certificates] = await chain.publicClient.readContract({ address: tm(), abi: TaskManagerAbi, functionName: 'epochRewards', args: [1n] })
    assert.deepEqual([index, certificates], [increment, 7n])

    // events: one per batch, per tab and per owner; nothing per leaf
    const logs = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs })
    assert.deepEqual(logs.map(l => l.eventName).sort(), ['BatchAccepted', 'BatchCharged', 'BatchOwnerCredited', 'BatchOwnerCredited', 'TabSettled', 'TabSettled', 'TabSettled'])
    const owners = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'BatchOwnerCredited' }).map(l => [l.args.owner, l.args.ownerShare])
    assert.deepEqual(owners.sort(), [[address(OWNER_A), ownerA], [address(OWNER_B), ownerB]].sort())
    const [split] = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'BatchCharged' })
    assert.deepEqual(split.args, { root: first.tree.root, charged, ownerShares: ownerA + ownerB, protocolShare: protocol, signersShare })
    const [acceptedEvent] = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'BatchAccepted' })
    assert.deepEqual(acceptedEvent.args, { root: first.tree.root, epoch: 1n, leafCount: 7, batchRef: first.summary.batchRef, signedStake: SIGNED_STAKE, submitter: address(SUBMITTER) })

    assert.equal(await readBatchEpoch(chain.publicClient, tm(), first.tree.root), 1n)
    for (const [k, leaf] of first.tree.leaves.entries()) {
      const result = { resultHash: leaf.resultHash, outputRef: leaf.outputRef, epoch: 1n }
      assert.equal(await hasBatchResult(chain.publicClient, tm(), leaf.taskId, result, first.tree.proof(k)), true, `leaf ${k}`)
      assert.equal(await hasBatchResult(chain.publicClient, tm(), leaf.taskId, { ...result, resultHash: random32() }, first.tree.proof(k)), false, `leaf ${k}, another result`)
      assert.equal(await hasBatchResult(chain.publicClient, tm(), leaf.taskId, { ...result, epoch: 2n }, first.tree.proof(k)), false, `leaf ${k}, another epoch`)
      assert.equal(await hasBatchResult(chain.publicClient, tm(), leaf.taskId, result, first.tree.proof((k + 1) % first.tree.leaves.length)), false, `leaf ${k}, another leaf's proof`)
    }
  })

  it('returns false for the same batch again and changes nothing', async () => {
    const before = await snapshot()
    const { accepted } = await post(first)
    assert.equal(accepted, false)
    assert.deepEqual(await snapshot(), before)
  })

  it('refuses a voucher signed by another requester: InvalidVoucherSignature', async () => {
    const [r1, , r3] = REQUESTERS
    const batch = await buildBatch([await tabTask(r1, 5n, openModel, chain.params.minTaskFee)], async (summary) => {
      const tab = summary.tabs[0]
      tab.signature = await signVoucher(anvilAccount(r3), chainId, { requester: address(r3), taskManager: tm(), cumulative: tab.cumulative, sequence: tab.sequence })
    })
    assert.deepEqual(await refused(batch, 'InvalidVoucherSignature'), [address(r1)])
    // a voucher for another TaskManager is no voucher for this one
    const other = await buildBatch([await tabTask(r1, 5n, openModel, chain.params.minTaskFee)], async (summary) => {
      const tab = summary.tabs[0]
      tab.signature = await signVoucher(anvilAccount(r1), chainId, { requester: address(r1), taskManager: chain.deployment.slashing, cumulative: tab.cumulative, sequence: tab.sequence })
    })
    await refused(other, 'InvalidVoucherSignature')
  })

  it('refuses an older voucher after a newer one: StaleVoucher', async () => {
    const batch = await buildBatch([await tabTask(REQUESTERS[0], 2n, openModel, chain.params.minTaskFee)])
    assert.deepEqual(await refused(batch, 'StaleVoucher'), [2n, 4n])
  })

  it('refuses a batch with a task already settled: TaskAlreadySettled', async () => {
    const r1 = REQUESTERS[0]
    const batch = await buildBatch([await tabTask(r1, 3n, openModel, chain.params.minTaskFee), await tabTask(r1, 5n, openModel, chain.params.minTaskFee)])
    assert.deepEqual(await refused(batch, 'TaskAlreadySettled'), [address(r1), 3n])
  })

  it('refuses a charge above the voucher (VoucherExceeded) or the deposit (InsufficientDeposit)', async () => {
    const r1 = REQUESTERS[0]
    const task = await tabTask(r1, 5n, openModel, chain.params.minTaskFee)
    const settled = (await readTab(chain.publicClient, tm(), address(r1))).settled
    const low = await buildBatch([task], async (summary) => {
      const tab = summary.tabs[0]
      tab.cumulative = settled + task.fee - 1n
      tab.signature = await signVoucher(anvilAccount(r1), chainId, { requester: address(r1), taskManager: tm(), cumulative: tab.cumulative, sequence: tab.sequence })
    })
    assert.deepEqual(await refused(low, 'VoucherExceeded'), [settled + task.fee - 1n, settled + task.fee])
    const min = chain.params.minTaskFee
    const broke = await buildBatch([await tabTask(BROKE, 1n, openModel, min), await tabTask(BROKE, 2n, openModel, min)])
    assert.deepEqual(await refused(broke, 'InsufficientDeposit'), [address(BROKE), min, 2n * min])
  })

  it('refuses counts that do not add up: LeafCountMismatch', async () => {
    const r3 = REQUESTERS[2]
    const tasks = [await tabTask(r3, 2n, openModel, chain.params.minTaskFee), await tabTask(r3, 3n, openModel, chain.params.minTaskFee)]
    const models = await buildBatch(tasks, (summary) => { summary.tabs[0].models[0].count = 1 })
    assert.deepEqual(await refused(models, 'LeafCountMismatch'), [2n, 1n])
    const total = await buildBatch(tasks, (summary) => { summary.leafCount = 3 })
    assert.deepEqual(await refused(total, 'LeafCountMismatch'), [3n, 2n])
  })

  it('refuses more tasks than the requester has credits: NoCreditsLeft', async () => {
    const r2 = REQUESTERS[1]
    const fee = MODEL_B_FEE + chain.params.minTaskFee
    const batch = await buildBatch([await tabTask(r2, 3n, modelB.modelId, fee), await tabTask(r2, 4n, modelB.modelId, fee),
      await tabTask(r2, 5n, modelB.modelId, fee), await tabTask(r2, 6n, modelB.modelId, fee)])
    await refused(batch, 'NoCreditsLeft')
  })

  it('refuses a reordered or duplicated leaf: the quorum signed another root (InvalidSignature)', async () => {
    const r3 = REQUESTERS[2]
    const min = chain.params.minTaskFee
    const batch = await buildBatch([await tabTask(r3, 2n, openModel, min), await tabTask(r3, 3n, openModel, min), await tabTask(r3, 4n, openModel, min)])
    const [a, b, c] = batch.tree.leaves.map(l => [l.taskId, l.resultHash, l.outputRef])
    // Internal nodes hash commutatively, so some reorderings keep the root (the same batch, already
    // signed); the others, and any duplicate, make a root the quorum never signed.
    const reordered = StandardMerkleTree.of([c, a, b], LEAF_TYPES, { sortLeaves: false }).root as Hex
    const duplicated = StandardMerkleTree.of([a, a, b, c], LEAF_TYPES, { sortLeaves: false }).root as Hex
    for (const root of [reordered, duplicated]) {
      assert.notEqual(root, batch.tree.root)
      await refused({ ...batch, qc: { ...batch.qc, root } }, 'InvalidSignature')
    }
    // and the batch as signed is fine
    assert.equal((await simulateBatch(chain.publicClient, submitter.account, tm(), batch.qc, batch.summary, set)).result, true)
  })

  it('settles tab tasks only in batches, single tasks singly as before', async () => {
    const r3 = REQUESTERS[2]
    const tab = await paidTask(chain, 'tab-single', { requester: r3, nonce: 9n })
    const tabQc = makeCertificate(set, keys, SIGNERS, resultOf(chain, tab, 'tab-single', 'out'))
    await expectRevert(submitCertificate(submitter, chain.publicClient, tm(), tabQc, set, tab), 'TabTaskSettlesInBatch')
    const single = await paidTask(chain, 'single', { requester: r3, nonce: (1n << 63n) | 5n })
    const before = (await readVault(chain.publicClient, tm(), address(r3))).balance
    const { accepted } = await submitCertificate(submitter, chain.publicClient, tm(), makeCertificate(set, keys, SIGNERS, resultOf(chain, single, 'single', 'out')), set, single)
    assert.equal(accepted, true)
    assert.equal((await readVault(chain.publicClient, tm(), address(r3))).balance, before - chain.params.minTaskFee)
  })

  it('a zk or both task (issue 16) does not settle on a certificate alone (TaskNeedsProof); the TaskManager\'s digest of it is its task id', async () => {
    const r3 = REQUESTERS[2]
    for (const tier of ['zk', 'both'] as const) {
      const task = await paidTask(chain, `tier-${tier}`, { requester: r3, tier, inputCommitment: new Uint8Array(32).fill(5) })
      const digest = await chain.publicClient.readContract({ address: tm(), abi: TaskManagerAbi, functionName: 'taskDigest', args: [taskArgs(task)] })
      assert.equal(digest, bytesToHex(taskIdOf(task, tm())))
      const qc = makeCertificate(set, keys, SIGNERS, resultOf(chain, task, `tier-${tier}`, 'out'))
      await expectRevert(submitCertificate(submitter, chain.publicClient, tm(), qc, set, task), 'TaskNeedsProof')
    }
  })

  it('agrees with consensus BatchTree and @openzeppelin/merkle-tree on random trees, on chain through hasResult', async () => {
    for (let n = 1; n <= 40; n++) {
      const leaves = Array.from({ length: n }, () => ({ taskId: random32(), resultHash: random32(), outputRef: random32() }))
        .sort((x, y) => hexToBigInt(x.taskId) < hexToBigInt(y.taskId) ? -1 : 1)
      const ours = new BatchTree(leaves)
      const reference = StandardMerkleTree.of(leaves.map(l => [l.taskId, l.resultHash, l.outputRef]), LEAF_TYPES, { sortLeaves: false })
      assert.equal(ours.root, reference.root, `root of ${n} leaves`)
      for (let k = 0; k < n; k++) assert.deepEqual(ours.proof(k), reference.getProof(k), `proof of leaf ${k} of ${n}`)
    }
    // on chain: batches of random size from one requester on the open model, each leaf proved with the library's proof
    const requester = REQUESTERS[2]
    let sequence = (await readTab(chain.publicClient, tm(), address(requester))).lastSequence
    for (const size of [1, 2 + Math.floor(Math.random() * 6), 9 + Math.floor(Math.random() * 12)]) {
      const tasks: TabTask[] = []
      for (let k = 0; k < size; k++) tasks.push(await tabTask(requester, ++sequence, openModel, chain.params.minTaskFee))
      const batch = await buildBatch(tasks)
      assert.equal((await post(batch)).accepted, true)
      const reference = StandardMerkleTree.of(batch.tree.leaves.map(l => [l.taskId, l.resultHash, l.outputRef]), LEAF_TYPES, { sortLeaves: false })
      assert.equal(reference.root, batch.tree.root)
      for (const [k, leaf] of batch.tree.leaves.entries()) {
        const result = { resultHash: leaf.resultHash, outputRef: leaf.outputRef, epoch: 1n }
        assert.equal(await hasBatchResult(chain.publicClient, tm(), leaf.taskId, result, reference.getProof(k) as Hex[]), true, `leaf ${k} of ${size}`)
      }
    }
  })

  it('answers the ERC-8004 requests of its leaves: one response per validation entry', async () => {
    const r3 = REQUESTERS[2]
    const agent = await registerAgent(chain.wallets[r3], chain.publicClient, chain.deployment.identityRegistry, 'ipfs://agent')
    const requestHash = random32()
    await requestValidation(chain.wallets[r3], chain.publicClient, chain.deployment.validationRegistry, { validator: tm(), agentId: agent, requestURI: 'ipfs://request', requestHash })
    const sequence = (await readTab(chain.publicClient, tm(), address(r3))).lastSequence
    const tasks = [await tabTask(r3, sequence + 1n, openModel, chain.params.minTaskFee), await tabTask(r3, sequence + 2n, openModel, chain.params.minTaskFee)]
    const unknown = random32()
    const batch = await buildBatch(tasks, (summary) => {
      summary.validations = [
        { taskId: tasks[0].leaf.taskId, requestHash, resultHash: tasks[0].leaf.resultHash },
        // a request the registry never saw: the response fails, settlement goes on
        { taskId: tasks[1].leaf.taskId, requestHash: unknown, resultHash: tasks[1].leaf.resultHash }
      ]
    })
    const { accepted, receipt } = await post(batch)
    assert.equal(accepted, true)
    const status = await readValidationStatus(chain.publicClient, chain.deployment.validationRegistry, requestHash)
    assert.equal(status?.response, 100)
    assert.equal(status?.responseHash, tasks[0].leaf.resultHash)
    const failed = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'ValidationResponseFailed' })
    assert.deepEqual(failed.map(l => [l.args.taskId, l.args.requestHash]), [[tasks[1].leaf.taskId, unknown]])
  })

  it('stops with the guardian\'s pause: Paused (last: the pause stays)', async () => {
    const r3 = REQUESTERS[2]
    const sequence = (await readTab(chain.publicClient, tm(), address(r3))).lastSequence
    const batch = await buildBatch([await tabTask(r3, sequence + 1n, openModel, chain.params.minTaskFee)])
    assert.equal((await simulateBatch(chain.publicClient, submitter.account, tm(), batch.qc, batch.summary, set)).result, true)
    await pauseNetwork(chain.wallets[0], chain.publicClient, chain.deployment.registry)
    await refused(batch, 'Paused')
  })
})

