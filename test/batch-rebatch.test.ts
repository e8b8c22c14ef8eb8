/**
 * Issue 15, what the batcher does after a batch (node/roles/batcher.ts): a batch that fails on
 * chain is not dropped whole (a poison task fails alone once its requester is isolated, and is
 * dropped after MAX_BATCH_ATTEMPTS with its reason while the other requesters' tasks settle; a
 * lone requester that cannot pay is dropped at once), and per requester one batch at a time, its
 * tasks in sequence order. Real BLS keys and operators' batch signers (their ledgers freed when
 * a batch fails, as the network's must be), a real node store; the chain is a recording stub that
 * fails the batches the test says (test/batch-rebatch-chain.test.ts does it on anvil).
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import { BufferedVerifier, TaskAggregation, blsPublicKeyOf, verifyBatchCertificate } from '../consensus/index.js'
import { signTask, signVoucher, taskIdOf, to0xHex, type QuorumCertificate, type TaskAnnouncement } from '../protocols/wire/index.js'
import { NodeStore } from '../storage/index.js'
import { requesterOf, type BatchItem, type TaskVoucher } from '../node/roles/batch-contents.js'
import { Batcher, MAX_BATCH_ATTEMPTS, type BatchReport } from '../node/roles/batcher.js'
import type { BatchOutcome, BatchSubmission } from '../node/roles/submitter.js'
import { BatchSigner, SignedBatches, type BatchSignerSource } from '../node/roles/batch-signer.js'
import { attest, makeOperators, type TestOperators } from './consensus-fixtures.js'
import { until } from './helpers/wait.js'

const QUORUM_BPS = 6667
const FEE = 10n ** 15n
const MODEL = new TextEncoder().encode('model-rebatch')
const CONFIRMED: BatchOutcome = { state: 'confirmed', txHash: `0x${'11'.repeat(32)}`, by: undefined, gasUsed: 1n, attempts: 1 }
const failed = (revert: string): BatchOutcome => ({ state: 'failed', revert, lastError: `TaskManager.submitBatch reverted with ${revert}`, attempts: 1 })

interface Held { task: TaskAnnouncement, voucher: TaskVoucher, qc: QuorumCertificate }

describe('batcher: failed batches and per-requester order (issue 15)', function () {
  this.timeout(60_000)

  let ops: TestOperators
  let verifier: BufferedVerifier
  let dir: string
  let store: NodeStore
  const held = new Map<string, Held>()
  let areas = 0

  /** A certified tab task of `requester` at `sequence` (its voucher covers sequence × FEE). */
  async function tabTask (requester: PrivateKeyAccount, sequence: bigint): Promise<BatchItem> {
    const { chainId, taskManager } = ops.set.domain
    const task = await signTask(requester, taskManager, {
      chainId, modelId: MODEL, input: new TextEncoder().encode(`rebatch ${requester.address} ${sequence}`), fee: FEE,
      deadline: BigInt(Date.now() + 600_000), quorumBps: QUORUM_BPS, nonce: sequence
    })
    const cumulative = sequence * FEE
    const voucher = { cumulative, sequence, signature: await signVoucher(requester, chainId, { requester: requester.address, taskManager, cumulative, sequence }) }
    const taskId = taskIdOf(task, taskManager)
    const result = { taskId, resultHash: new Uint8Array(32).fill(Number(sequence)), outputRef: new Uint8Array(32).fill(0x80 + Number(sequence)), output: new Uint8Array([1]) }
    const aggregation = new TaskAggregation({ operatorSet: ops.set, taskId, quorumBps: QUORUM_BPS, deadline: Number(task.deadline) })
    for (const i of [0, 1, 2]) aggregation.add(attest(ops, i, result), Date.now())
    const qc = aggregation.buildCertificate(result.resultHash)
    const id = to0xHex(taskId)
    held.set(id, { task, voucher, qc })
    return { taskId: id, task, voucher, resultHash: to0xHex(result.resultHash), outputRef: to0xHex(result.outputRef), epoch: qc.epoch }
  }

  const source: BatchSignerSource = {
    task: async (taskId) => held.get(taskId.toLowerCase()),
    certificate: async (taskId) => held.get(taskId.toLowerCase())?.qc,
    networkQuorumBps: () => QUORUM_BPS
  }

  /**
   * A batcher whose proposals the four operators' batch signers check and sign; `chain` answers
   * each submission. A failed batch frees its leaves in the signers' ledgers, as the network's
   * operators must learn it, or they would refuse to sign its leaves again.
   */
  function network (init: { maxLeaves: number, maxWaitMs: number }, chain: (batch: BatchSubmission) => Promise<BatchOutcome>, onReport?: (r: BatchReport) => void) {
    const submitted: BatchSubmission[] = []
    const reports: BatchReport[] = []
    const ledgers = ops.secretKeys.map(() => new SignedBatches(store.area(`rebatch-signed-${areas++}`)))
    const area = store.area(`rebatch-${areas++}`)
    const batcher: Batcher = new Batcher({
      area,
      resolveSet: async (epoch) => (epoch === ops.set.epoch ? ops.set : undefined),
      verify: async (set) => await verifier.verify(set),
      networkQuorumBps: () => QUORUM_BPS,
      loadItem: async () => undefined,
      publishProposal: async (proposal) => {
        for (const signer of signers) {
          const out = await signer.onProposal(proposal)
          if ('share' in out) await batcher.addSignature(proposal.root, out.share)
        }
      },
      publishCertificate: async (_proposal, qc) => { for (const l of ledgers) await l.mark(qc.root, 'certified') },
      submit: async (batch) => { submitted.push(batch); return await chain(batch) },
      onBatch: (r) => {
        reports.push(r)
        onReport?.(r)
        if (r.state === 'failed') for (const l of ledgers) void l.mark(r.root, 'failed')
      }
    }, { ...init, graceMs: 50 })
    const signers = ops.secretKeys.map((sk, i) => new BatchSigner({
      blsSecretKey: sk, blsPublicKey: blsPublicKeyOf(sk), source, signed: ledgers[i]!,
      resolveSet: async (epoch) => (epoch === ops.set.epoch ? ops.set : undefined), publish: async () => {}
    }))
    return { batcher, submitted, reports, area }
  }

  const ids = (items: readonly BatchItem[]): Hex[] => items.map(i => i.taskId.toLowerCase() as Hex).sort()
  const settledIds = (reports: readonly BatchReport[]): Hex[] => reports.filter(r => r.state === 'settled').flatMap(r => r.taskIds.map(id => id.toLowerCase() as Hex)).sort()

  before(async function () {
    ops = makeOperators([10n, 10n, 10n, 10n], { epoch: 1n })
    verifier = new BufferedVerifier()
    dir = await mkdtemp(join(tmpdir(), 'poi-batch-rebatch-'))
    store = await NodeStore.open(join(dir, 'data'))
  })

  after(async function () {
    await verifier?.close()
    await store?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('a poison task fails alone once its requester is isolated and is dropped after MAX_BATCH_ATTEMPTS; the others settle', async function () {
    const [poisoner, good] = [privateKeyToAccount(generatePrivateKey()), privateKeyToAccount(generatePrivateKey())]
    const poison = await tabTask(poisoner, 1n)
    const innocent = [await tabTask(good, 1n), await tabTask(good, 2n)]
    // the chain refuses every batch holding the poison task, with a revert no leaf check explains
    const { batcher, submitted, reports, area } = network({ maxLeaves: 64, maxWaitMs: 100 }, async (batch) =>
      (batch.summary.tabs.some(t => t.requester === requesterOf(poison.task)) ? failed('FeeBelowMinimum') : CONFIRMED))
    await batcher.start()
    for (const item of [poison, ...innocent]) await batcher.add(item)
    await until(() => reports.some(r => r.state === 'failed' && (r.droppedTasks?.length ?? 0) > 0), 30_000,
      () => `the poison task dropped: ${reports.map(r => `${r.state}(${r.leaves})`).join(', ')}`)
    await batcher.idle()

    const withPoison = submitted.filter(b => b.summary.tabs.some(t => t.requester === requesterOf(poison.task)))
    assert.equal(withPoison.length, MAX_BATCH_ATTEMPTS, 'the poison task was in exactly MAX_BATCH_ATTEMPTS batches')
    assert.equal(withPoison[0]!.summary.tabs.length, 2, 'the first batch held both requesters')
    assert.ok(withPoison.slice(1).every(b => b.summary.tabs.length === 1), 'after an unexplained failure the poison requester is batched alone')
    const fails = reports.filter(r => r.state === 'failed')
    assert.deepEqual(fails.map(r => r.requeued), [3, 1, 0], 'each failure re-queues what may still settle')
    assert.deepEqual(fails.at(-1)!.droppedTasks!.map(d => [d.taskId.toLowerCase(), d.code]), [[poison.taskId.toLowerCase(), 'attempts-exhausted']])
    assert.match(fails.at(-1)!.droppedTasks![0]!.reason, /in 3 batches that failed on chain, the last with FeeBelowMinimum/)
    assert.deepEqual(settledIds(reports), ids(innocent), 'the other requester\'s tasks settled, once')
    for (const { qc } of submitted) {
      const check = verifyBatchCertificate(qc, ops.set, { quorumBps: QUORUM_BPS })
      assert.ok(check.ok, 'every re-batched certificate verifies (the operators signed it again)')
    }
    assert.equal(batcher.pendingCount, 0)
    assert.deepEqual(await area.entries('pending/'), [], 'nothing left in the store')
    assert.deepEqual(await area.entries('batch/'), [])
    await batcher.stop()
  })

  it('a lone requester whose batch reverts InsufficientDeposit is dropped at once, with that reason', async function () {
    const broke = privateKeyToAccount(generatePrivateKey())
    const items = [await tabTask(broke, 1n), await tabTask(broke, 2n)]
    const { batcher, submitted, reports } = network({ maxLeaves: 64, maxWaitMs: 50 }, async () => failed('InsufficientDeposit'))
    for (const item of items) await batcher.add(item)
    await until(() => reports.some(r => r.state === 'failed'), 30_000, 'the batch failed')
    await batcher.idle()
    assert.equal(submitted.length, 1, 'not tried again')
    const [fail] = reports.filter(r => r.state === 'failed')
    assert.equal(fail!.reason, 'InsufficientDeposit')
    assert.equal(fail!.requeued, 0)
    assert.deepEqual(fail!.droppedTasks!.map(d => d.code), ['requester-cannot-pay', 'requester-cannot-pay'])
    assert.match(fail!.droppedTasks![0]!.reason, /alone reverted with InsufficientDeposit/)
    assert.equal(batcher.pendingCount, 0)
    await batcher.stop()
  })

  it('never has two batches carrying one requester in flight; a requester\'s waiting tasks go lowest sequence first', async function () {
    const [a, b] = [privateKeyToAccount(generatePrivateKey()), privateKeyToAccount(generatePrivateKey())]
    const [a1, a2, a3, a4] = [await tabTask(a, 1n), await tabTask(a, 2n), await tabTask(a, 3n), await tabTask(a, 4n)]
    const [b1, b2] = [await tabTask(b, 1n), await tabTask(b, 2n)]
    const requesterOfTask = new Map([a1, a2, a3, a4, b1, b2].map(i => [i.taskId.toLowerCase(), requesterOf(i.task)]))
    let openGate!: () => void
    const gate = new Promise<void>(resolve => { openGate = resolve })
    // every proposal is checked against the batches still in flight when it is made
    const inFlight = new Map<string, Set<string>>()
    const overlaps: string[] = []
    const proposals: Hex[][] = []
    const onReport = (r: BatchReport): void => {
      const requesters = new Set(r.taskIds.map(id => requesterOfTask.get(id.toLowerCase())!))
      if (r.state === 'proposed') {
        for (const [root, others] of inFlight) for (const x of requesters) if (others.has(x)) overlaps.push(`${r.root} and ${root} both carry ${x}`)
        inFlight.set(r.root, requesters)
        proposals.push(r.taskIds.map(id => id.toLowerCase() as Hex).sort())
      }
      if (r.state === 'settled' || r.state === 'failed' || r.state === 'dropped') inFlight.delete(r.root)
    }
    const { batcher, reports } = network({ maxLeaves: 2, maxWaitMs: 100 }, async (batch) => {
      if (batch.summary.tabs.some(t => t.requester === a.address && t.sequence === 1n)) await gate // A's first batch waits on chain
      return CONFIRMED
    }, onReport)
    try {
      await batcher.add(a1)
      await until(() => reports.some(r => r.state === 'certified'), 20_000, 'A\'s first batch certified (and held on chain)')
      for (const item of [a4, a2, a3, b1, b2]) await batcher.add(item)
      await until(() => settledIds(reports).length === 2, 20_000, () => `B's batch settled while A's is in flight: ${reports.map(r => `${r.state}(${r.leaves})`).join(', ')}`)
      assert.equal(batcher.pendingCount, 3, 'A\'s later tasks wait for its batch in flight')
      openGate()
      await until(() => settledIds(reports).length === 6, 20_000, () => `every task settled: ${reports.map(r => `${r.state}(${r.leaves})`).join(', ')}`)
      await batcher.idle()
    } finally {
      openGate()
    }
    assert.deepEqual(overlaps, [], 'no requester in two batches in flight')
    assert.deepEqual(proposals, [ids([a1]), ids([b1, b2]), ids([a2, a3]), ids([a4])], 'A\'s tasks in sequence order, one batch at a time')
    assert.equal(batcher.pendingCount, 0)
    await batcher.stop()
  })
})
