/**
 * BatchBackup's decisions (node/roles/batch-backup.ts) over a real LevelDB store, with the chain
 * and the submitter as recorded functions: what it keeps, for how long, across a restart, what
 * it posts and what it reports. The anvil test (batch-backup.test.ts) runs the same code through
 * a network; these are the cases a network cannot stage on demand: a restart in the middle of
 * the delay, a post that loses the race, the bound.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { keccak256, toHex, zeroHash, type Hex } from 'viem'
import { batchSummaryHash, encodeSignerBitmap, sequenceWords, type BatchSummary } from '../consensus/index.js'
import { BatchBackup, sequencesOf, type BatchBackupComponents } from '../node/roles/batch-backup.js'
import type { BatchOutcome, BatchReport, BatchSubmission, Settlement } from '../node/roles/index.js'
import { NodeStore } from '../storage/index.js'
import { ETHER, makeOperators } from './consensus-fixtures.js'
import { until } from './helpers/wait.js'

const DELAY_MS = 300
const REQUESTER: Hex = '0x00000000000000000000000000000000000000a1'
const OWN: Hex = '0x00000000000000000000000000000000000000b0'
const OTHER: Hex = '0x00000000000000000000000000000000000000c0'

describe('batch backup: keeping, posting and reporting other aggregators\' batches', function () {
  this.timeout(20_000)
  const ops = makeOperators([10n, 10n, 10n, 10n])
  let dir: string
  let store: NodeStore
  let backups: BatchBackup[]

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'poi-batch-backup-'))
    store = await NodeStore.open(join(dir, 'db'))
    backups = []
  })
  afterEach(async () => {
    for (const b of backups) await b.stop()
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  /** A batch of `sequences` of one requester's tab: its proposal and certificate as gossip hands them over. */
  function batch (label: string, sequences: bigint[] = [1n, 2n]): { root: Hex, proposal: Parameters<BatchBackup['onProposal']>[0], cert: Parameters<BatchBackup['onCertificate']>[0] } {
    const root = keccak256(toHex(`root ${label}`))
    const summary: BatchSummary = {
      leafCount: sequences.length,
      batchRef: zeroHash,
      tabs: [{ requester: REQUESTER, cumulative: 10n ** 15n * BigInt(sequences.length), sequence: sequences[sequences.length - 1]!, signature: `0x${'11'.repeat(65)}`, ...sequenceWords(sequences), models: [] }],
      validations: []
    }
    const leaves = sequences.map(s => ({ taskId: keccak256(toHex(`task ${label} ${s}`)), resultHash: zeroHash, outputRef: zeroHash }))
    return {
      root,
      proposal: { epoch: 0n, seq: 7n, root, leaves, summary },
      cert: { root, epoch: 0n, summary, signerBitmap: encodeSignerBitmap([0, 1, 2]), signature: new Uint8Array(96).fill(3) }
    }
  }

  /** The chain as the backup reads it, and what it was asked to send. */
  function fakeChain (): { settled: Map<string, Settlement>, settledSequences: Set<bigint>, submitted: BatchSubmission[], outcome: () => BatchOutcome, reports: BatchReport[], taken: Hex[][], components: (extra?: Partial<BatchBackupComponents>) => BatchBackupComponents } {
    const c = {
      settled: new Map<string, Settlement>(),
      settledSequences: new Set<bigint>(),
      submitted: [] as BatchSubmission[],
      outcome: (): BatchOutcome => ({ state: 'confirmed', txHash: `0x${'ab'.repeat(32)}`, by: OWN, gasUsed: 400_000n, attempts: 1 }),
      reports: [] as BatchReport[],
      taken: [] as Hex[][],
      components: (extra: Partial<BatchBackupComponents> = {}): BatchBackupComponents => ({
        area: store.area('batch-backup'),
        resolveSet: async (epoch) => epoch === ops.set.epoch ? ops.set : undefined,
        formedHere: async () => false,
        settlement: async (root) => c.settled.get(root.toLowerCase()),
        submit: async (b) => { c.submitted.push(b); return c.outcome() },
        tabSettled: async (_requester, sequence) => c.settledSequences.has(sequence),
        onTaken: (ids) => { c.taken.push(ids) },
        onBatch: (r) => { c.reports.push(r) },
        ...extra
      })
    }
    return c
  }

  async function started (components: BatchBackupComponents, init: { delayMs?: number, maxBatches?: number } = {}): Promise<BatchBackup> {
    const b = new BatchBackup(components, { delayMs: DELAY_MS, ...init })
    backups.push(b)
    await b.start()
    return b
  }

  it('reads back the sequences a summary settles', () => {
    const sequences = [1n, 2n, 255n, 256n, 700n]
    const { firstWord, sequenceBits } = sequenceWords(sequences)
    assert.deepEqual(sequencesOf(firstWord, sequenceBits), sequences)
  })

  it('keeps a received certificate across a restart and posts it once its delay, counted from receipt, is over', async () => {
    const chain = fakeChain()
    const { root, proposal, cert } = batch('restart')
    const first = await started(chain.components())
    first.onProposal(proposal)
    await first.onCertificate(cert)
    assert.equal(first.heldCount, 1)
    assert.deepEqual(chain.taken, [proposal.leaves.map(l => l.taskId)], 'the node\'s own batcher is told to leave the tasks')
    assert.deepEqual(chain.reports.map(r => [r.state, r.root, r.leaves, r.seq]), [['certified', root.toLowerCase(), 2, 7n]])
    await first.stop()
    assert.equal(chain.submitted.length, 0, 'nothing posted before the delay')

    const receivedAt = Date.now()
    const second = await started(chain.components())
    assert.equal(second.heldCount, 1, 'the store kept it')
    await until(() => chain.submitted.length > 0, 5_000, 'the post after the restart')
    assert.ok(Date.now() - receivedAt <= DELAY_MS + 2_000)
    const [sent] = chain.submitted
    assert.equal(sent!.qc.root, root.toLowerCase())
    assert.equal(sent!.qc.summaryHash, batchSummaryHash(cert.summary))
    assert.deepEqual(sent!.qc.signerBitmap, cert.signerBitmap)
    assert.deepEqual(sent!.qc.aggregateSig, cert.signature)
    assert.equal(sent!.qc.signedStake, 30n * ETHER)
    assert.equal(sent!.qc.totalStake, 40n * ETHER)
    await second.idle()
    const settled = chain.reports.at(-1)!
    assert.deepEqual([settled.state, settled.settledBy, settled.gasUsed], ['settled', OWN, 400_000n])
    assert.equal(second.heldCount, 0)
    assert.deepEqual(await store.area('batch-backup').entries('batch/'), [], 'forgotten once settled')
  })

  it('forgets a batch the chain settled meanwhile, sending nothing, and names who settled it', async () => {
    const chain = fakeChain()
    const { root, proposal, cert } = batch('settled')
    chain.settled.set(root.toLowerCase(), { by: OTHER, txHash: `0x${'cd'.repeat(32)}` })
    const b = await started(chain.components())
    b.onProposal(proposal)
    await b.onCertificate(cert)
    await until(() => chain.reports.length === 2, 5_000, 'the settled report')
    assert.equal(chain.submitted.length, 0)
    assert.deepEqual([chain.reports[1]!.state, chain.reports[1]!.settledBy], ['settled', OTHER])
    assert.equal(b.heldCount, 0)
  })

  it('counts a post that reverts because its tasks settled in another batch as done, and any other revert as failed', async () => {
    const chain = fakeChain()
    chain.outcome = () => ({ state: 'failed', revert: 'StaleVoucher', lastError: 'reverted StaleVoucher(2, 2)', attempts: 1 })
    const b = await started(chain.components())
    const raced = batch('raced', [1n, 2n])
    chain.settledSequences.add(1n).add(2n)
    b.onProposal(raced.proposal)
    await b.onCertificate(raced.cert)
    await until(() => chain.reports.some(r => r.root === raced.root.toLowerCase() && r.state !== 'certified'), 5_000, 'the raced batch ending')
    const done = chain.reports.find(r => r.root === raced.root.toLowerCase() && r.state !== 'certified')!
    assert.equal(done.state, 'settled')
    assert.match(done.reason ?? '', /settled in another batch/)

    const refused = batch('refused', [3n, 4n])
    chain.settledSequences.add(3n) // 4 is not: the batch's tasks are not all settled
    b.onProposal(refused.proposal)
    await b.onCertificate(refused.cert)
    await until(() => chain.reports.some(r => r.root === refused.root.toLowerCase() && r.state !== 'certified'), 5_000, 'the refused batch ending')
    const failed = chain.reports.find(r => r.root === refused.root.toLowerCase() && r.state !== 'certified')!
    assert.deepEqual([failed.state, failed.reason], ['failed', 'StaleVoucher'])
    assert.equal(b.heldCount, 0)
  })

  it('keeps nothing for a batch formed here or without a proposal, and at most its bound', async () => {
    const chain = fakeChain()
    const own = batch('own')
    const mine = await started(chain.components({ formedHere: async (root) => root.toLowerCase() === own.root.toLowerCase() }), { delayMs: 60_000, maxBatches: 2 })
    mine.onProposal(own.proposal)
    await mine.onCertificate(own.cert)
    await mine.onCertificate(batch('no proposal').cert)
    assert.equal(mine.heldCount, 0)
    const kept = ['a', 'b', 'c'].map(label => batch(label))
    for (const k of kept) {
      mine.onProposal(k.proposal)
      await mine.onCertificate(k.cert)
    }
    assert.equal(mine.heldCount, 2)
    const keys = (await store.area('batch-backup').entries('batch/')).map(([key]) => key)
    assert.deepEqual(keys.sort(), kept.slice(1).map(k => `batch/${k.root.toLowerCase()}`).sort(), 'the oldest is dropped from the store too')
    assert.equal(chain.submitted.length, 0)
  })
})
