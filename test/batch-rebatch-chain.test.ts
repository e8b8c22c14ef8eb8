/**
 * Issue 15 on anvil, what the batcher does when another aggregator's batch settles first
 * (node/roles/batcher.ts): a batch that reverts because one of its leaves was settled elsewhere
 * is batched again without that leaf and settles; and a straggler (a task below its requester's
 * settled lastSequence, which a batch alone could only revert StaleVoucher with) waits, counted
 * as pending, until it settles in one batch with that requester's next task. The batcher submits
 * through the node's real Submitter and ChainClient and reads tabs through the ChainClient; the
 * test plays the operators (real BLS keys sign each proposal) and the other aggregator.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesToHex, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { BufferedVerifier, batchSummaryHash, generateBlsSecretKey, signBatch as signBatchShare } from '../consensus/index.js'
import { ANVIL_PRIVATE_KEYS, deposit, isTabSequenceSettled, readTab, readVault, submitBatch, type OnChainOperatorSet } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import type { BatchItem } from '../node/roles/batch-contents.js'
import type { BatchProposalContent } from '../node/roles/batch-signer.js'
import { Batcher, type BatchReport } from '../node/roles/batcher.js'
import { Submitter } from '../node/roles/submitter.js'
import { signVoucher, taskIdOf, to0xHex } from '../protocols/wire/index.js'
import { NodeStore } from '../storage/index.js'
import { signBatch, tabBatch, type TabTask } from './helpers/batch-chain.js'
import { ETHER } from './consensus-fixtures.js'
import { anvilAccount, nextEpoch, paidTask, registerAll, startPoiChain, type PoiChain } from './helpers/poi-chain.js'
import { until } from './helpers/wait.js'

const EPOCH_SECONDS = 100n
/** 105 ether in all; operators 1..3 sign (95 > 2/3). */
const STAKES = [10n, 20n, 30n, 45n].map(s => s * ETHER)
const SIGNERS = [1, 2, 3]
/** anvil accounts: 0 deploys, 1..4 operators, 5 and 6 requesters R and S, 7 the other aggregator, 8 this batcher's submitter. */
const R = 5
const S = 6
const OTHER = 7
const SUBMITTER = 8

/** One tab task, as the batcher holds it and as the other aggregator would batch it. */
interface Task { item: BatchItem, tab: TabTask }

describe('batcher on anvil: another aggregator settles first (issue 15)', function () {
  this.timeout(120_000)
  const keys = STAKES.map(() => generateBlsSecretKey())
  let chain: PoiChain
  let client: ChainClient
  let set: OnChainOperatorSet
  let dir: string
  let store: NodeStore
  let submitter: Submitter
  let batcher: Batcher
  let verifier: BufferedVerifier
  const reports: BatchReport[] = []
  /** Runs before the operators sign a proposal (the other aggregator's move), once. */
  let beforeSigning: ((proposal: BatchProposalContent) => Promise<void>) | undefined
  const tm = (): `0x${string}` => chain.deployment.taskManager
  const address = (account: number): `0x${string}` => chain.wallets[account].account.address

  async function tabTask (requester: number, sequence: bigint): Promise<Task> {
    const task = await paidTask(chain, `rebatch-${requester}-${sequence}`, { requester, nonce: sequence })
    const account = anvilAccount(requester)
    const chainId = BigInt(await chain.publicClient.getChainId())
    const cumulative = sequence * chain.params.minTaskFee
    const signature = await signVoucher(account, chainId, { requester: account.address, taskManager: tm(), cumulative, sequence })
    const taskId = to0xHex(taskIdOf(task, tm()))
    const leaf = { taskId, resultHash: bytesToHex(randomBytes(32)), outputRef: bytesToHex(randomBytes(32)) }
    return {
      item: { ...leaf, task, voucher: { cumulative, sequence, signature }, epoch: set.epoch },
      tab: { account, sequence, modelId: task.modelId, fee: chain.params.minTaskFee, deadlineMs: task.deadline, leaf, cumulative }
    }
  }

  /** The other aggregator settles `tasks` in its own batch, signed by the same operators. */
  async function otherAggregatorSettles (tasks: readonly Task[]): Promise<void> {
    const domain = { chainId: set.domain.chainId, taskManager: tm() }
    const { tree, summary } = await tabBatch(tasks.map(t => t.tab), domain, `0x${'00'.repeat(32)}`)
    const qc = signBatch(domain, set.epoch, keys, SIGNERS, tree.root, summary)
    const { accepted } = await submitBatch(chain.wallets[OTHER], chain.publicClient, tm(), qc, summary, set)
    assert.equal(accepted, true, 'the other aggregator\'s batch settled')
  }

  /** The last report that ended a batch holding `taskId`. */
  const ended = (taskId: Hex): BatchReport | undefined =>
    reports.findLast(r => (r.state === 'settled' || r.state === 'failed') && r.taskIds.some(id => id.toLowerCase() === taskId.toLowerCase()))

  before(async function () {
    chain = await startPoiChain({ epochDuration: EPOCH_SECONDS }, { accounts: 10 })
    await registerAll(chain, keys, STAKES)
    await nextEpoch(chain)
    for (const r of [R, S]) await deposit(chain.wallets[r], chain.publicClient, tm(), ETHER)
    client = await ChainClient.connect({ rpcUrl: chain.anvil.rpcUrl, ...chain.deployment }, privateKeyToAccount(ANVIL_PRIVATE_KEYS[SUBMITTER]))
    set = await client.operatorSet(1n)
    const quorumBps = await client.networkQuorumBps()
    dir = await mkdtemp(join(tmpdir(), 'poi-batch-rebatch-chain-'))
    store = await NodeStore.open(join(dir, 'data'))
    submitter = new Submitter(store, client, client)
    verifier = new BufferedVerifier()
    batcher = new Batcher({
      area: store.area('batcher'),
      resolveSet: async (epoch) => (epoch === set.epoch ? set : undefined),
      verify: async (signatures) => await verifier.verify(signatures),
      networkQuorumBps: () => quorumBps,
      loadItem: async () => undefined,
      publishProposal: async (proposal) => {
        const hook = beforeSigning
        beforeSigning = undefined
        await hook?.(proposal)
        const summaryHash = batchSummaryHash(proposal.summary)
        for (const i of SIGNERS) await batcher.addSignature(proposal.root, signBatchShare(keys[i]!, set, { root: proposal.root, epoch: proposal.epoch, summaryHash }, i))
      },
      publishCertificate: async () => {},
      submit: async (batch) => await submitter.submitBatch(batch),
      tabs: {
        lastSequence: async (requester) => (await client.tabs.readTab(requester)).lastSequence,
        settled: async (requester, sequence) => await client.tabSettled(requester, sequence),
        settlementWindowMs: async () => (await client.paymentTerms()).settlementWindowMs
      },
      onBatch: (r) => { reports.push(r) }
    }, { maxLeaves: 64, maxWaitMs: 200, graceMs: 0 })
    await batcher.start()
  })

  after(async function () {
    await batcher?.stop()
    await submitter?.stop()
    await verifier?.close()
    await store?.close()
    await chain?.stop()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('a batch that reverts because one leaf settled in another batch is batched again without it, and settles', async function () {
    const mine = [await tabTask(R, 1n), await tabTask(R, 2n), await tabTask(R, 3n)]
    const theirs = await tabTask(S, 1n)
    const sBefore = (await readVault(chain.publicClient, tm(), address(S))).balance
    // between this batcher's proposal and its transaction, the other aggregator settles S's task
    beforeSigning = async () => { await otherAggregatorSettles([theirs]) }
    for (const t of [...mine, theirs]) await batcher.add(t.item)
    await until(() => mine.every(t => ended(t.item.taskId)?.state === 'settled'), 60_000,
      () => `R's tasks settled: ${reports.map(r => `${r.state}(${r.leaves}${r.reason !== undefined ? ` ${r.reason}` : ''})`).join(', ')}`)

    const [fail, ...more] = reports.filter(r => r.state === 'failed')
    assert.equal(more.length, 0, 'one batch failed')
    assert.ok(fail!.reason === 'StaleVoucher' || fail!.reason === 'TaskAlreadySettled', `it failed for S's settled task, got ${fail!.reason}`)
    assert.equal(fail!.leaves, 4)
    assert.equal(fail!.requeued, 3, 'R\'s three tasks batched again')
    assert.deepEqual(fail!.droppedTasks!.map(d => [d.taskId.toLowerCase(), d.code]), [[theirs.item.taskId.toLowerCase(), 'settled-elsewhere']])
    const settled = reports.filter(r => r.state === 'settled')
    assert.equal(settled.length, 1)
    assert.deepEqual(settled[0]!.taskIds.map(id => id.toLowerCase()).sort(), mine.map(t => t.item.taskId.toLowerCase()).sort(), 'the new batch is R\'s tasks alone')
    assert.equal(settled[0]!.settledBy, address(SUBMITTER))
    const fee = chain.params.minTaskFee
    assert.deepEqual(await readTab(chain.publicClient, tm(), address(R)), { settled: 3n * fee, lastSequence: 3n })
    assert.deepEqual(await readTab(chain.publicClient, tm(), address(S)), { settled: fee, lastSequence: 1n })
    assert.equal((await readVault(chain.publicClient, tm(), address(S))).balance, sBefore - fee, 'S was charged once')
    await batcher.idle()
    assert.equal(batcher.pendingCount, 0)
  })

  it('a straggler below its tab\'s settled sequence waits, then settles with its requester\'s next task', async function () {
    reports.length = 0
    const [r4, r5, r6] = [await tabTask(R, 4n), await tabTask(R, 5n), await tabTask(R, 6n)]
    // the other aggregator settles R's sequence 5 first: a batch of sequence 4 alone reverts StaleVoucher
    beforeSigning = async () => { await otherAggregatorSettles([r5]) }
    await batcher.add(r4.item)
    await until(() => reports.some(r => r.state === 'failed'), 60_000, () => `the batch of sequence 4 failed: ${reports.map(r => r.state).join(', ')}`)
    await batcher.idle()
    const [fail] = reports.filter(r => r.state === 'failed')
    assert.equal(fail!.reason, 'StaleVoucher')
    assert.deepEqual([fail!.requeued, fail!.droppedTasks], [1, []])
    assert.equal(batcher.pendingCount, 1, 'the straggler is pending')
    assert.equal(reports.filter(r => r.state === 'proposed').length, 1, 'and not batched alone again')
    assert.equal(await isTabSequenceSettled(chain.publicClient, tm(), address(R), 4n), false)

    await batcher.add(r6.item)
    await until(() => ended(r6.item.taskId) !== undefined, 60_000, () => `sequence 6 batched: ${reports.map(r => `${r.state}(${r.leaves})`).join(', ')}`)
    const last = ended(r6.item.taskId)!
    assert.equal(last.state, 'settled', `the merged batch settled (${last.reason ?? ''})`)
    assert.deepEqual(last.taskIds.map(id => id.toLowerCase()).sort(), [r4, r6].map(t => t.item.taskId.toLowerCase()).sort(), 'sequence 4 rode with sequence 6')
    assert.equal(await isTabSequenceSettled(chain.publicClient, tm(), address(R), 4n), true)
    const fee = chain.params.minTaskFee
    assert.deepEqual(await readTab(chain.publicClient, tm(), address(R)), { settled: 6n * fee, lastSequence: 6n }, 'every sequence 1..6 charged once, against the voucher of 6')
    await batcher.idle()
    assert.equal(batcher.pendingCount, 0)
  })
})
