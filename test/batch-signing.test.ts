/**
 * Issue 15, the off-chain half of batches: operators' batch signatures aggregate into a batch
 * certificate (quorum of the network's share of stake, min signers, a signature over another
 * summary rejected by the off-thread verifier), and an operator refuses every bad proposal with
 * its typed reason. Real BLS keys, real EIP-712 task and voucher signatures, a real node store.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesToHex, hexToBytes, type Hex } from 'viem'
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from 'viem/accounts'
import {
  BatchAggregation, BufferedVerifier, TaskAggregation, blsPublicKeyOf, signBatch, verifyBatchCertificate,
  type OperatorSet
} from '../consensus/index.js'
import { signTask, signVoucher, taskIdOf, to0xHex, type QuorumCertificate, type TaskAnnouncement } from '../protocols/wire/index.js'
import { NodeStore } from '../storage/index.js'
import { buildBatch, type BatchItem, type TaskVoucher } from '../node/roles/batch-contents.js'
import { Batcher, type BatchReport } from '../node/roles/batcher.js'
import type { BatchSubmission } from '../node/roles/submitter.js'
import {
  BatchSigner, SIGNED_BATCH_EXPIRY_MS, SignedBatches, reviewBatchProposal,
  type BatchProposalContent, type BatchRefusalCode, type BatchSignerSource
} from '../node/roles/batch-signer.js'
import { attest, makeOperators, type TestOperators } from './consensus-fixtures.js'
import { until } from './helpers/wait.js'

const QUORUM_BPS = 6667
const FEE = 10n ** 15n
const MODEL_A = new TextEncoder().encode('model-a')
const MODEL_B = new TextEncoder().encode('model-b')

interface Held { task: TaskAnnouncement, voucher?: TaskVoucher, qc?: QuorumCertificate }

describe('batch signing (issue 15)', function () {
  this.timeout(60_000)

  let ops: TestOperators
  let verifier: BufferedVerifier
  let dir: string
  let store: NodeStore
  const requesters: PrivateKeyAccount[] = [privateKeyToAccount(generatePrivateKey()), privateKeyToAccount(generatePrivateKey())]
  const cumulative = new Map<string, bigint>()
  const held = new Map<string, Held>()
  /** Six certified tab tasks: requester 0 sequences 1–3 (models A, B, A), requester 1 sequences 1–3 (B, B, A). */
  let items: BatchItem[]
  let storeArea = 0

  async function tabTask (requester: PrivateKeyAccount, sequence: bigint, modelId: Uint8Array, options: { quorumBps?: number, voucher?: boolean } = {}): Promise<BatchItem> {
    const { chainId, taskManager } = ops.set.domain
    const task = await signTask(requester, taskManager, {
      chainId, modelId, input: new TextEncoder().encode(`input ${requester.address} ${sequence}`), fee: FEE,
      deadline: BigInt(Date.now() + 600_000 + Number(sequence) * 1_000), quorumBps: options.quorumBps ?? QUORUM_BPS, nonce: sequence
    })
    const total = (cumulative.get(requester.address) ?? 0n) + FEE
    cumulative.set(requester.address, total)
    const signature = await signVoucher(requester, chainId, { requester: requester.address, taskManager, cumulative: total, sequence })
    const voucher: TaskVoucher | undefined = options.voucher === false ? undefined : { cumulative: total, sequence, signature }
    const taskId = taskIdOf(task, taskManager)
    const result = { taskId, resultHash: new Uint8Array(32).fill(Number(sequence)), outputRef: new Uint8Array(32).fill(0x40 + Number(sequence)), output: new Uint8Array([1]) }
    const aggregation = new TaskAggregation({ operatorSet: ops.set, taskId, quorumBps: QUORUM_BPS, deadline: Number(task.deadline) })
    for (const i of [0, 1, 2]) aggregation.add(attest(ops, i, result), Date.now())
    const qc = aggregation.buildCertificate(result.resultHash)
    const id = to0xHex(taskId)
    held.set(id, { task, voucher, qc })
    return { taskId: id, task, voucher: voucher ?? { cumulative: total, sequence, signature }, resultHash: to0xHex(result.resultHash), outputRef: to0xHex(result.outputRef), epoch: qc.epoch }
  }

  const source: BatchSignerSource = {
    task: async (taskId) => { const h = held.get(taskId.toLowerCase()); return h === undefined ? undefined : { task: h.task, voucher: h.voucher } },
    certificate: async (taskId) => held.get(taskId.toLowerCase())?.qc,
    networkQuorumBps: () => QUORUM_BPS
  }

  function proposalOf (batchItems: BatchItem[], seq = 1n): BatchProposalContent {
    const batch = buildBatch(batchItems)
    return { epoch: batch.epoch, seq, root: batch.root, leaves: batch.leaves, summary: batch.summary }
  }

  function freshLedger (): SignedBatches {
    return new SignedBatches(store.area(`batch-signed-${storeArea++}`))
  }

  async function refusal (proposal: BatchProposalContent, options: { source?: BatchSignerSource, set?: OperatorSet, ledger?: SignedBatches } = {}): Promise<BatchRefusalCode | 'signed'> {
    const check = await reviewBatchProposal(proposal, options.set ?? ops.set, options.source ?? source, options.ledger ?? freshLedger())
    return check.ok ? 'signed' : check.refusal.code
  }

  before(async function () {
    ops = makeOperators([10n, 10n, 10n, 10n], { epoch: 1n })
    verifier = new BufferedVerifier()
    dir = await mkdtemp(join(tmpdir(), 'poi-batch-signing-'))
    store = await NodeStore.open(join(dir, 'data'))
    const [a, b] = requesters as [PrivateKeyAccount, PrivateKeyAccount]
    items = [
      await tabTask(a, 1n, MODEL_A), await tabTask(a, 2n, MODEL_B), await tabTask(a, 3n, MODEL_A),
      await tabTask(b, 1n, MODEL_B), await tabTask(b, 2n, MODEL_B), await tabTask(b, 3n, MODEL_A)
    ]
  })

  after(async function () {
    await verifier?.close()
    await store?.close()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  describe('batch contents', function () {
    it('leaves ascend by task id; per requester the highest voucher, its sequences, and its charges per model', function () {
      const batch = buildBatch([...items].reverse())
      const ids = batch.leaves.map(l => BigInt(l.taskId))
      assert.deepEqual(ids, [...ids].sort((x, y) => (x < y ? -1 : 1)))
      assert.equal(batch.summary.leafCount, 6)
      assert.equal(batch.summary.tabs.length, 2)
      assert.ok(BigInt(batch.summary.tabs[0]!.requester) < BigInt(batch.summary.tabs[1]!.requester), 'tabs ascend by requester')
      for (const tab of batch.summary.tabs) {
        assert.equal(tab.sequence, 3n)
        assert.equal(tab.cumulative, 3n * FEE)
        assert.equal(tab.firstWord, 0n)
        assert.deepEqual(tab.sequenceBits, [0b1110n])
        assert.equal(tab.models.reduce((n, m) => n + m.count, 0), 3)
        assert.equal(tab.models.reduce((n, m) => n + m.fees, 0n), 3n * FEE)
        assert.ok(BigInt(tab.models[0]!.modelKey) < BigInt(tab.models[1]!.modelKey), 'models ascend by key')
        for (const m of tab.models) assert.ok(m.firstDeadline <= m.lastDeadline)
      }
    })
  })

  describe('aggregation', function () {
    it('forms a certificate once the signers hold the quorum, and it verifies', async function () {
      const batch = buildBatch(items)
      const aggregation = new BatchAggregation({ operatorSet: ops.set, root: batch.root, epoch: batch.epoch, summaryHash: batch.summaryHash, quorumBps: QUORUM_BPS })
      for (const i of [0, 1]) {
        const share = signBatch(ops.secretKeys[i]!, ops.set, aggregation.fields, i)
        assert.equal(await verifier.verify(aggregation.signatureSet(share)!), true)
        assert.equal(aggregation.add(share).kind, 'accepted')
      }
      assert.equal(aggregation.quorumReached(), false, '2 of 4 equal stakes are below 2/3')
      assert.throws(() => aggregation.buildCertificate(), /below the quorum/)
      const third = signBatch(ops.secretKeys[2]!, ops.set, aggregation.fields, 2)
      assert.equal(aggregation.add(third).kind, 'accepted')
      assert.equal(aggregation.add(third).kind, 'duplicate')
      assert.equal(aggregation.add({ operatorIndex: 9, blsSig: third.blsSig }).kind, 'unknown-operator')
      assert.equal(aggregation.quorumReached(), true)
      const qc = aggregation.buildCertificate()
      assert.deepEqual(verifyBatchCertificate(qc, ops.set, { quorumBps: QUORUM_BPS }), { ok: true, signers: [0, 1, 2], signedStake: 30n * 10n ** 18n })
      // the certificate says exactly this batch: another summary hash does not verify
      const other = verifyBatchCertificate({ ...qc, summaryHash: buildBatch(items.slice(1)).summaryHash }, ops.set, { quorumBps: QUORUM_BPS })
      assert.equal(other.ok, false)
    })

    it('needs min signers whatever their stake', function () {
      const whales = makeOperators([100n, 1n, 1n, 1n], { epoch: 1n })
      const batch = buildBatch(items)
      const aggregation = new BatchAggregation({ operatorSet: whales.set, root: batch.root, epoch: 1n, summaryHash: batch.summaryHash, quorumBps: QUORUM_BPS })
      aggregation.add(signBatch(whales.secretKeys[0]!, whales.set, aggregation.fields, 0))
      aggregation.add(signBatch(whales.secretKeys[1]!, whales.set, aggregation.fields, 1))
      assert.equal(aggregation.quorumReached(), false, '98% of the stake, but 2 signers of the 3 required')
      aggregation.add(signBatch(whales.secretKeys[2]!, whales.set, aggregation.fields, 2))
      assert.equal(aggregation.quorumReached(), true)
    })

    it('rejects a signature over another summary (checked off the event loop)', async function () {
      const batch = buildBatch(items)
      const aggregation = new BatchAggregation({ operatorSet: ops.set, root: batch.root, epoch: batch.epoch, summaryHash: batch.summaryHash, quorumBps: QUORUM_BPS })
      const otherSummary = buildBatch(items.slice(0, 5))
      const share = signBatch(ops.secretKeys[0]!, ops.set, { root: batch.root, epoch: batch.epoch, summaryHash: otherSummary.summaryHash }, 0)
      assert.equal(await verifier.verify(aggregation.signatureSet(share)!), false)
      const otherRoot = signBatch(ops.secretKeys[0]!, ops.set, { root: otherSummary.root, epoch: batch.epoch, summaryHash: batch.summaryHash }, 0)
      assert.equal(await verifier.verify(aggregation.signatureSet(otherRoot)!), false)
      assert.equal(aggregation.signatureSet({ operatorIndex: 0, blsSig: new Uint8Array(10) }), null)
    })
  })

  describe('operator refusals', function () {
    it('signs a good proposal', async function () {
      assert.equal(await refusal(proposalOf(items)), 'signed')
    })

    it('a leaf without a certificate', async function () {
      const extra = await tabTask(requesters[0]!, 4n, MODEL_A)
      held.get(extra.taskId.toLowerCase())!.qc = undefined
      assert.equal(await refusal(proposalOf([...items, extra])), 'no-certificate')
      // a task this node never saw
      const unseen = { ...extra, taskId: `0x${'ab'.repeat(32)}` as Hex }
      assert.equal(await refusal(proposalOf([...items, unseen])), 'no-certificate')
    })

    it('a reordered leaf', async function () {
      const p = proposalOf(items)
      const leaves = [...p.leaves]
      ;[leaves[0], leaves[1]] = [leaves[1]!, leaves[0]!]
      assert.equal(await refusal({ ...p, leaves }), 'unordered-leaves')
    })

    it('a duplicated leaf', async function () {
      const p = proposalOf(items)
      assert.equal(await refusal({ ...p, leaves: [p.leaves[0]!, ...p.leaves] }), 'duplicate-leaf')
    })

    it('a leaf with another result than the certificate held', async function () {
      const p = proposalOf(items)
      const leaves = p.leaves.map((l, k) => (k === 2 ? { ...l, resultHash: `0x${'77'.repeat(32)}` as Hex } : l))
      assert.equal(await refusal({ ...p, leaves }), 'certificate-mismatch')
    })

    it('a leaf whose result this operator attested otherwise (outvoted: the certificate is valid, signing the leaf is slashable)', async function () {
      const p = proposalOf(items)
      const outvoted = p.leaves[1]!.taskId.toLowerCase()
      const ownResults: BatchSignerSource = { ...source, ownResult: async (taskId) => taskId.toLowerCase() === outvoted ? new Uint8Array(32).fill(0x77) : undefined }
      assert.equal(await refusal(p, { source: ownResults }), 'own-attestation-mismatch')
      const agreeing: BatchSignerSource = { ...source, ownResult: async (taskId) => hexToBytes(p.leaves.find(l => l.taskId.toLowerCase() === taskId.toLowerCase())!.resultHash) }
      assert.equal(await refusal(p, { source: agreeing }), 'signed')
    })

    it('a root that is not the leaves\' root', async function () {
      assert.equal(await refusal({ ...proposalOf(items), root: proposalOf(items.slice(1)).root }), 'root-mismatch')
    })

    it('a leaf already in another batch it signed, until that batch fails', async function () {
      const ledger = freshLedger()
      const signer = new BatchSigner({
        blsSecretKey: ops.secretKeys[3]!, blsPublicKey: blsPublicKeyOf(ops.secretKeys[3]!), source, signed: ledger,
        resolveSet: async (epoch) => (epoch === ops.set.epoch ? ops.set : undefined), publish: async () => {}
      })
      const [first, second] = [proposalOf(items.slice(0, 4), 1n), proposalOf(items.slice(3), 2n)]
        .sort((x, y) => (BigInt(x.root) < BigInt(y.root) ? -1 : 1)) // the second's root is the higher one
      const signed = await signer.onProposal(first)
      assert.ok('share' in signed, 'the first batch is signed')
      const refused = await signer.onProposal(second)
      assert.ok('refusal' in refused && refused.refusal.code === 'leaf-in-other-batch', JSON.stringify(refused))
      assert.equal(refused.refusal.taskId, items[3]!.taskId)
      await ledger.mark(first.root, 'failed')
      assert.ok('share' in await signer.onProposal(second), 'once the first batch failed, its leaves may be batched again')
      // the same proposal again: the same signature, not a refusal
      assert.ok('share' in await signer.onProposal(second))
    })

    it('a leaf already in another batch it signed is signed again into a batch with a lower root (two aggregators at once: the lowest root gathers every operator)', async function () {
      const ledger = freshLedger()
      const signer = new BatchSigner({
        blsSecretKey: ops.secretKeys[3]!, blsPublicKey: blsPublicKeyOf(ops.secretKeys[3]!), source, signed: ledger,
        resolveSet: async (epoch) => (epoch === ops.set.epoch ? ops.set : undefined), publish: async () => {}
      })
      const [lower, higher] = [proposalOf(items.slice(0, 4), 1n), proposalOf(items.slice(3), 2n)]
        .sort((x, y) => (BigInt(x.root) < BigInt(y.root) ? -1 : 1))
      assert.ok('share' in await signer.onProposal(higher), 'the higher root, seen first, is signed')
      assert.ok('share' in await signer.onProposal(lower), 'the lower root, seen second, is signed too')
    })

    it('a leaf of a certified batch until SIGNED_BATCH_EXPIRY_MS after signing (it failed on chain or lost its posters), then freed', async function () {
      const ledger = freshLedger()
      const [a, b] = [items[0]!.taskId, items[1]!.taskId]
      const signedAt = 1_000_000
      await ledger.signed('0x01', [a, b], signedAt)
      await ledger.mark('0x01', 'certified')
      assert.equal(await ledger.holder(a, '0x02', signedAt + SIGNED_BATCH_EXPIRY_MS), '0x01', 'held while the batch may still settle')
      assert.equal(await ledger.holder(a, '0x02', signedAt + SIGNED_BATCH_EXPIRY_MS + 1), undefined, 'freed after the expiry, certified or not')
      assert.equal(await ledger.holder(b, '0x01', signedAt), undefined, 'its own batch does not hold it')
    })

    it('a summary that does not match the leaves', async function () {
      const p = proposalOf(items)
      const tabs = p.summary.tabs.map((t, k) => (k === 0 ? { ...t, models: t.models.map((m, j) => (j === 0 ? { ...m, fees: m.fees - 1n } : m)) } : t))
      assert.equal(await refusal({ ...p, summary: { ...p.summary, tabs } }), 'summary-mismatch')
      assert.equal(await refusal({ ...p, summary: { ...p.summary, leafCount: 5 } }), 'summary-mismatch')
    })

    it('a stale voucher (an older one than the batch\'s tasks carry)', async function () {
      const p = proposalOf(items)
      const tab = p.summary.tabs[0]!
      const { chainId, taskManager } = ops.set.domain
      const account = requesters.find(r => r.address.toLowerCase() === tab.requester.toLowerCase())!
      const older = { requester: account.address, taskManager, cumulative: 2n * FEE, sequence: 2n }
      const signature = await signVoucher(account, chainId, older)
      const tabs = [{ ...tab, cumulative: older.cumulative, sequence: older.sequence, signature }, ...p.summary.tabs.slice(1)]
      assert.equal(await refusal({ ...p, summary: { ...p.summary, tabs } }), 'stale-voucher')
    })

    it('a voucher not signed by its requester', async function () {
      const p = proposalOf(items)
      const other = p.summary.tabs[1]!
      const tabs = [{ ...p.summary.tabs[0]!, signature: other.signature }, other]
      assert.equal(await refusal({ ...p, summary: { ...p.summary, tabs } }), 'invalid-voucher-signature')
    })

    it('a single task (no voucher) and a task above the network quorum', async function () {
      const single = await tabTask(requesters[1]!, 7n, MODEL_A, { voucher: false })
      assert.equal(await refusal(proposalOf([...items, single])), 'not-a-tab-task')
      const strict = await tabTask(requesters[1]!, 8n, MODEL_A, { quorumBps: 9000 })
      assert.equal(await refusal(proposalOf([...items, strict])), 'quorum-above-network')
    })

    it('a leaf already settled on chain, and a batch of an epoch it does not check', async function () {
      const settled = items[4]!
      const chainSource: BatchSignerSource = {
        ...source,
        tabSettled: async (requester, sequence) => requester.toLowerCase() === bytesToHex(settled.task.requester) && sequence === settled.task.nonce
      }
      assert.equal(await refusal(proposalOf(items), { source: chainSource }), 'already-settled')
      assert.equal(await refusal(proposalOf(items), { set: makeOperators([1n, 1n, 1n], { epoch: 2n }).set }), 'unknown-epoch')
    })
  })

  describe('batcher', function () {
    /** A batcher wired to the four operators' batch signers directly (the node does it over gossip). */
    function network (init: { maxLeaves: number, maxWaitMs: number }, area = store.area(`batcher-${storeArea++}`)): { batcher: Batcher, submitted: BatchSubmission[], reports: BatchReport[] } {
      const submitted: BatchSubmission[] = []
      const reports: BatchReport[] = []
      const batcher: Batcher = new Batcher({
        area,
        resolveSet: async (epoch) => (epoch === ops.set.epoch ? ops.set : undefined),
        verify: async (set) => await verifier.verify(set),
        networkQuorumBps: () => QUORUM_BPS,
        loadItem: async (taskId) => items.find(i => i.taskId.toLowerCase() === taskId.toLowerCase()),
        publishProposal: async (proposal) => {
          for (const signer of signers) {
            const out = await signer.onProposal(proposal)
            if ('share' in out) await batcher.addSignature(proposal.root, out.share)
          }
        },
        publishCertificate: async () => {},
        submit: async (batch) => { submitted.push(batch); return { state: 'confirmed', txHash: `0x${'11'.repeat(32)}`, by: undefined, gasUsed: 1n, attempts: 1 } },
        onBatch: (r) => { reports.push(r) }
      }, { ...init, graceMs: 50 })
      const signers = ops.secretKeys.map(sk => new BatchSigner({
        blsSecretKey: sk, blsPublicKey: blsPublicKeyOf(sk), source, signed: freshLedger(),
        resolveSet: async (epoch) => (epoch === ops.set.epoch ? ops.set : undefined), publish: async () => {}
      }))
      return { batcher, submitted, reports }
    }

    it('closes a batch on the size bound, the rest on the time bound; every certificate verifies', async function () {
      const { batcher, submitted, reports } = network({ maxLeaves: 4, maxWaitMs: 300 })
      await batcher.start()
      for (const item of items) await batcher.add(item)
      await until(() => submitted.length === 2, 20_000, () => `two batches submitted, got ${submitted.length}: ${reports.map(r => r.state).join(', ')}`)
      await batcher.idle()
      assert.deepEqual(submitted.map(b => b.summary.leafCount), [4, 2])
      for (const { qc } of submitted) {
        const check = verifyBatchCertificate(qc, ops.set, { quorumBps: QUORUM_BPS })
        assert.ok(check.ok && check.signers.length >= 3, check.ok ? `${check.signers.length} signers` : check.reason)
      }
      const settled = reports.filter(r => r.state === 'settled').flatMap(r => r.taskIds).sort()
      assert.deepEqual(settled, items.map(i => i.taskId.toLowerCase()).sort(), 'every task settled once')
      assert.equal(batcher.pendingCount, 0)
      await batcher.stop()
    })

    it('does not batch a task that asked for more than the network quorum', async function () {
      const strict = await tabTask(requesters[0]!, 9n, MODEL_B, { quorumBps: 9000 })
      const { batcher } = network({ maxLeaves: 4, maxWaitMs: 60_000 })
      await batcher.add(strict)
      assert.equal(batcher.pendingCount, 0)
      await batcher.stop()
    })

    it('a restarted batcher still has the certified tasks it had not batched', async function () {
      const area = store.area(`batcher-${storeArea++}`)
      const first = network({ maxLeaves: 64, maxWaitMs: 60_000 }, area)
      await first.batcher.start()
      for (const item of items.slice(0, 3)) await first.batcher.add(item)
      await first.batcher.stop()
      assert.equal(first.submitted.length, 0)
      const second = network({ maxLeaves: 64, maxWaitMs: 60_000 }, area)
      await second.batcher.start()
      assert.equal(second.batcher.pendingCount, 3)
      second.batcher.flush()
      await until(() => second.submitted.length === 1, 20_000, 'the reloaded tasks batched')
      await second.batcher.idle()
      assert.equal(second.submitted[0]!.summary.leafCount, 3)
      assert.deepEqual(await area.entries('pending/'), [], 'nothing left pending once settled')
      await second.batcher.stop()
    })
  })
})
