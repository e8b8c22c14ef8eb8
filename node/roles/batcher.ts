/**
 * The aggregator side of batches (issue 15, DESIGN §14): collects certified tab tasks (tasks
 * whose announcement carries a voucher; the aggregator holds their certificates), closes a
 * batch on a size or a time bound, proposes it to the operators, aggregates their batch
 * signatures into a batch certificate, gossips it and settles it on chain through the submitter.
 *
 * A batch holds the tasks of one epoch only (its leaves' certificates' epoch): the batch
 * certificate is checked against that epoch's operator set. A task that asked for more than the
 * network quorum is never batched (the batch certificate carries only the network's quorum).
 *
 * Across restarts: every certified-but-unsettled tab task is kept in the store (`pending/<id>`)
 * until its batch is settled; a certified batch (`batch/<root>`, with its certificate) is
 * submitted again at start. A batch only proposed when the node stopped is forgotten and its
 * leaves batched again: the same leaves give the same root, which operators sign again.
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { bytesToHex, hexToBytes, type Hex } from 'viem'
import {
  BatchAggregation, DEFAULT_QUORUM_BPS, type BatchQuorumCertificate, type BatchSignatureShare, type BatchSummary, type OperatorSet, type SignatureSet
} from '../../consensus/index.js'
import type { StoreArea } from '../../storage/index.js'
import { buildBatch, type BatchItem, type BuiltBatch } from './batch-contents.js'
import type { BatchProposalContent } from './batch-signer.js'
import type { BatchOutcome, BatchSubmission } from './submitter.js'

const log = logger('poi:batcher')

/**
 * Default size bound: a batch closes as soon as it holds this many tasks. 64 is where issue 15's
 * gas goal is set (under 15k gas per task, payments included): the pairing and the transaction
 * are paid once, so per-task gas falls roughly as 1/n (bench:gas, 128 operators, 1 requester:
 * 19.8k at 16, 4.9k at 64, 1.3k at 256) while the proposal (~100 bytes per leaf plus the
 * summary) stays far below gossip's message bound. Measured with bench:batch-bounds on
 * 2026-11-30 (4 operators on anvil, one requester at 2 tasks/s, the 2-core machine at load
 * average 9.5-20): at rates this low the time bound closes every batch, and a smaller size bound
 * only costs gas: with a 10 s wait, 8 leaves gave 42.9k gas per task, 16 leaves 21.0k and 64
 * leaves 16.0k in the same run, for settlement p50s of 5.1, 5.8 and 7.8 s. 64 binds from ~6.4
 * tasks/s on (64 tasks within the 10 s wait), where batches cost ~5k gas per task.
 */
export const DEFAULT_BATCH_MAX_LEAVES = 64
/**
 * Default time bound: a batch closes this long after its first task was certified, however few
 * tasks it holds. Settlement is off the requester's fast path (the per-task certificate over
 * gossip is the proof it acts on), and the chain accepts a batch until an hour after its tasks'
 * deadlines (settlementWindow), so the wait trades only settlement latency for gas: below the
 * size bound a batch holds rate × wait tasks and costs ~320k gas whatever it holds. Measured
 * with bench:batch-bounds on 2026-11-30 (4 operators on anvil, one requester, tab tasks at a
 * steady rate for 30-40 s per setting, the 2-core machine at load average 9.5-20 from other
 * builds). At 2 tasks/s, 5 s, 10 s and 20 s side by side twice in one run: 10.7, 20 and 40
 * leaves per batch; 30.3k, 16.0k and 7.9k gas per task; announcement → settlement p50 5.2, 8.7
 * and 12.9 s, p95 8.0, 13.7 and 21.9 s. At 1 task/s: 5 s 52.6k gas per task, p50 4.2 s; 10 s
 * 31.6k, p50 6.9 s. Every setting settled its tasks far inside the window. 10 s (was 5 s)
 * halves the gas per task for 3.5 s more median latency (14k gas saved per task, 2.9k per second
 * of wait); 20 s would halve it again but saves only 0.8k per second of wait and puts p95 past
 * 20 s. Shorter waits buy latency only while the machine keeps up: at 1 task/s a 1 s wait
 * settled in 1.8 s p50 at 181k gas per task, but at 2 tasks/s under load it gave 6 leaves, 55.9k
 * gas per task and p50 6.8 s (more batches, each with its signatures and transaction, competing
 * for the same cores).
 */
export const DEFAULT_BATCH_MAX_WAIT_MS = 10_000
/**
 * How long a proposed batch waits for the quorum of batch signatures before it is dropped and
 * its leaves batched again: operators check a proposal in milliseconds (reads, one voucher
 * recovery per requester, one BLS signature), and a signature crosses the mesh in well under a
 * second even on the loaded test machine, so 30 s means the batch will not certify.
 */
export const BATCH_SIGNATURE_TIMEOUT_MS = 30_000

export interface BatcherComponents {
  /** Where pending tasks and certified batches are kept across restarts (absent: memory only). */
  area?: StoreArea
  /** The operator set of an epoch (the batch's). */
  resolveSet: (epoch: bigint) => Promise<OperatorSet | undefined>
  /** Checks a signature set off the event loop (the node's BufferedVerifier). */
  verify: (set: SignatureSet) => Promise<boolean>
  /** The network's quorum (TaskManager.quorumBps); undefined until read from the chain. */
  networkQuorumBps: () => number | undefined
  /** Reads a stored tab task back at start (task, voucher, certificate), or undefined when it is gone. */
  loadItem: (taskId: Hex) => Promise<BatchItem | undefined>
  publishProposal: (proposal: BatchProposalContent) => Promise<void>
  publishCertificate: (proposal: BatchProposalContent, qc: BatchQuorumCertificate) => Promise<void>
  /** Settles a batch on chain (Submitter.submitBatch); absent without a chain. */
  submit?: (batch: BatchSubmission) => Promise<BatchOutcome>
  /** Told of each step of each batch (the node's 'batch' event). */
  onBatch?: (report: BatchReport) => void
}

export interface BatcherInit {
  /** Size bound (default DEFAULT_BATCH_MAX_LEAVES). */
  maxLeaves?: number
  /** Time bound, ms after a batch's first task (default DEFAULT_BATCH_MAX_WAIT_MS). */
  maxWaitMs?: number
  /** How long signatures are still collected once the quorum is there (as for tasks). */
  graceMs: number
  /** Fewest signers of a batch certificate (default DEFAULT_MIN_SIGNERS, as for tasks). */
  minSigners?: number
  signatureTimeoutMs?: number
}

export type BatchState = 'proposed' | 'certified' | 'settled' | 'failed' | 'dropped'

/** One step of one batch. */
export interface BatchReport {
  state: BatchState
  root: Hex
  epoch: bigint
  seq: bigint
  leaves: number
  taskIds: Hex[]
  signers?: number
  txHash?: Hex
  gasUsed?: bigint
  settledBy?: Hex
  reason?: string
}

interface OpenBatch {
  built: BuiltBatch
  proposal: BatchProposalContent
  aggregation: BatchAggregation
  graceTimer?: NodeJS.Timeout
  timeoutTimer?: NodeJS.Timeout
  done: boolean
}

interface StoredBatch {
  epoch: string
  seq: string
  taskIds: Hex[]
  summary: unknown
  qc: { root: Hex, epoch: string, summaryHash: Hex, signerBitmap: Hex, aggregateSig: Hex, signedStake: string, totalStake: string }
}

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

export class Batcher implements Startable {
  /** Certified tab tasks not yet in a batch, by epoch, then task id. */
  private readonly pending = new Map<bigint, Map<string, BatchItem>>()
  /** Task ids in a proposed or certified batch (not pending). */
  private readonly inFlight = new Set<string>()
  private readonly open = new Map<string, OpenBatch>()
  private readonly closeTimers = new Map<bigint, NodeJS.Timeout>()
  private readonly submissions = new Set<Promise<void>>()
  private seq = 0n
  private stopped = false
  private readonly maxLeaves: number
  private readonly maxWaitMs: number

  constructor (private readonly components: BatcherComponents, private readonly init: BatcherInit) {
    this.maxLeaves = init.maxLeaves ?? DEFAULT_BATCH_MAX_LEAVES
    this.maxWaitMs = init.maxWaitMs ?? DEFAULT_BATCH_MAX_WAIT_MS
    if (!Number.isInteger(this.maxLeaves) || this.maxLeaves < 1) throw new RangeError(`the batch size bound must be a positive integer, got ${this.maxLeaves}`)
    if (!Number.isFinite(this.maxWaitMs) || this.maxWaitMs < 0) throw new RangeError(`the batch time bound must be a non-negative number of ms, got ${this.maxWaitMs}`)
  }

  /** Reloads pending tasks and resubmits certified batches the store holds. */
  async start (): Promise<void> {
    this.stopped = false
    const { area } = this.components
    if (area == null) return
    const inBatches = new Set<string>()
    for (const [key, value] of await area.entries('batch/')) {
      const stored = JSON.parse(fromUtf8.decode(value)) as StoredBatch
      for (const id of stored.taskIds) { inBatches.add(id); this.inFlight.add(id) }
      this.resubmit(key.slice('batch/'.length) as Hex, stored)
    }
    let reloaded = 0
    for (const [key] of await area.entries('pending/')) {
      const id = key.slice('pending/'.length) as Hex
      if (inBatches.has(id)) continue
      const item = await this.components.loadItem(id)
      if (item === undefined) { await area.del([key]); continue }
      this.queue(item)
      reloaded++
    }
    if (reloaded > 0 || inBatches.size > 0) log('reloaded %d certified tab tasks to batch and %d tasks in certified batches', reloaded, inBatches.size)
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const t of this.closeTimers.values()) clearTimeout(t)
    this.closeTimers.clear()
    for (const batch of this.open.values()) { clearTimeout(batch.graceTimer); clearTimeout(batch.timeoutTimer) }
    this.open.clear()
    await Promise.allSettled([...this.submissions])
  }

  /** Tasks waiting for a batch (for the API and tests). */
  get pendingCount (): number {
    let n = 0
    for (const m of this.pending.values()) n += m.size
    return n
  }

  /** Resolves once every batch in flight has settled, failed or been dropped. */
  async idle (): Promise<void> {
    while (this.submissions.size > 0) await Promise.allSettled([...this.submissions])
  }

  /**
   * A tab task was certified (here or elsewhere; the node holds its certificate): it waits for
   * a batch. Persisted first, so a restart does not lose it.
   */
  async add (item: BatchItem): Promise<void> {
    if (this.stopped) return
    const id = item.taskId.toLowerCase()
    if (this.inFlight.has(id) || this.pending.get(item.epoch)?.has(id) === true) return
    const network = this.components.networkQuorumBps()
    if (network !== undefined && item.task.quorumBps > network) {
      log('task %s asked for a quorum of %d bps, above the network\'s %d: not batched', id, item.task.quorumBps, network)
      return
    }
    await this.components.area?.put([[`pending/${id}`, new Uint8Array(0)]])
    this.queue(item)
  }

  /** A batch signature for one of this node's proposals, not yet verified. */
  async addSignature (root: Hex, share: BatchSignatureShare): Promise<void> {
    const batch = this.open.get(root.toLowerCase())
    if (batch === undefined || batch.done) return
    const set = batch.aggregation.signatureSet(share)
    if (set === null || !await this.components.verify(set)) {
      log('batch %s: a signature from operator %d does not verify over this batch, dropped', root, share.operatorIndex)
      return
    }
    if (batch.done || batch.aggregation.add(share).kind !== 'accepted') return
    if (!batch.aggregation.quorumReached()) return
    if (batch.aggregation.allSigned()) {
      this.finalize(batch)
      return
    }
    batch.graceTimer ??= setTimeout(() => { this.finalize(batch) }, this.init.graceMs)
  }

  /** Tasks in another aggregator's certified batch (a BatchBackup holds it): operators would refuse them in a batch of ours. */
  async forget (taskIds: readonly Hex[]): Promise<void> {
    const ids = taskIds.map(id => id.toLowerCase())
    for (const byId of this.pending.values()) for (const id of ids) byId.delete(id)
    await this.components.area?.del(ids.map(id => `pending/${id}`))
  }

  /** Closes every pending batch now, whatever its size (tests, the devnet). */
  flush (): void {
    for (const epoch of [...this.pending.keys()]) this.close(epoch)
  }

  private queue (item: BatchItem): void {
    const id = item.taskId.toLowerCase()
    let byId = this.pending.get(item.epoch)
    if (byId === undefined) { byId = new Map(); this.pending.set(item.epoch, byId) }
    byId.set(id, item)
    if (byId.size >= this.maxLeaves) {
      this.close(item.epoch)
      return
    }
    if (!this.closeTimers.has(item.epoch)) {
      this.closeTimers.set(item.epoch, setTimeout(() => { this.closeTimers.delete(item.epoch); this.close(item.epoch) }, this.maxWaitMs))
    }
  }

  /** Takes up to maxLeaves pending tasks of `epoch` into a batch and proposes it. */
  private close (epoch: bigint): void {
    clearTimeout(this.closeTimers.get(epoch))
    this.closeTimers.delete(epoch)
    const byId = this.pending.get(epoch)
    if (byId === undefined || byId.size === 0 || this.stopped) return
    const items = [...byId.values()].slice(0, this.maxLeaves)
    for (const item of items) { byId.delete(item.taskId.toLowerCase()); this.inFlight.add(item.taskId.toLowerCase()) }
    if (byId.size === 0) this.pending.delete(epoch)
    else this.queue([...byId.values()][0]!) // what is left starts the next batch's clock (or closes it at once when full)
    const run = this.propose(epoch, items).catch(err => {
      log.error('batch of epoch %d: could not be proposed: %s', epoch, (err as Error).message)
      this.release(items)
    })
    this.track(run)
  }

  private async propose (epoch: bigint, items: BatchItem[]): Promise<void> {
    const set = await this.components.resolveSet(epoch)
    if (set === undefined) throw new Error(`the operator set of epoch ${epoch} is unknown here`)
    const built = buildBatch(items)
    const seq = ++this.seq
    const proposal: BatchProposalContent = { epoch, seq, root: built.root, leaves: built.leaves, summary: built.summary }
    const aggregation = new BatchAggregation({
      operatorSet: set, root: built.root, epoch, summaryHash: built.summaryHash,
      quorumBps: this.components.networkQuorumBps() ?? DEFAULT_QUORUM_BPS, minSigners: this.init.minSigners
    })
    const batch: OpenBatch = { built, proposal, aggregation, done: false }
    this.open.set(built.root.toLowerCase(), batch)
    batch.timeoutTimer = setTimeout(() => { this.timeout(batch) }, this.init.signatureTimeoutMs ?? BATCH_SIGNATURE_TIMEOUT_MS)
    this.report(batch, 'proposed')
    log('batch %s (seq %d): proposed %d tasks of epoch %d', built.root, seq, items.length, epoch)
    await this.components.publishProposal(proposal)
  }

  private timeout (batch: OpenBatch): void {
    if (batch.done) return
    if (batch.aggregation.quorumReached()) {
      this.finalize(batch)
      return
    }
    batch.done = true
    clearTimeout(batch.graceTimer)
    this.open.delete(batch.built.root.toLowerCase())
    const reason = `${batch.aggregation.signers.length} signatures after ${this.init.signatureTimeoutMs ?? BATCH_SIGNATURE_TIMEOUT_MS} ms, below the quorum; its tasks wait for the next batch`
    log('batch %s dropped: %s', batch.built.root, reason)
    this.report(batch, 'dropped', { reason })
    this.release(batch.built.items)
  }

  /** Puts tasks back to wait for another batch. */
  private release (items: BatchItem[]): void {
    for (const item of items) this.inFlight.delete(item.taskId.toLowerCase())
    if (!this.stopped) for (const item of items) this.queue(item)
  }

  private finalize (batch: OpenBatch): void {
    if (batch.done) return
    batch.done = true
    clearTimeout(batch.graceTimer)
    clearTimeout(batch.timeoutTimer)
    this.open.delete(batch.built.root.toLowerCase())
    const qc = batch.aggregation.buildCertificate()
    this.track(this.settle(batch.proposal, batch.built.items.map(i => i.taskId.toLowerCase() as Hex), qc))
  }

  private async settle (proposal: BatchProposalContent, taskIds: Hex[], qc: BatchQuorumCertificate): Promise<void> {
    const { area, publishCertificate, submit } = this.components
    const stored: StoredBatch = {
      epoch: proposal.epoch.toString(), seq: proposal.seq.toString(), taskIds, summary: summaryToJson(proposal.summary),
      qc: { root: qc.root, epoch: qc.epoch.toString(), summaryHash: qc.summaryHash, signerBitmap: bytesToHex(qc.signerBitmap), aggregateSig: bytesToHex(qc.aggregateSig), signedStake: qc.signedStake.toString(), totalStake: qc.totalStake.toString() }
    }
    await area?.put([[`batch/${qc.root.toLowerCase()}`, utf8.encode(JSON.stringify(stored))]])
    const signers = countBits(qc.signerBitmap)
    log('batch %s (seq %d): certified by %d signers with %s of %s stake', qc.root, proposal.seq, signers, qc.signedStake, qc.totalStake)
    this.components.onBatch?.({ state: 'certified', root: qc.root, epoch: proposal.epoch, seq: proposal.seq, leaves: taskIds.length, taskIds, signers })
    await publishCertificate(proposal, qc).catch(err => { log('batch %s: gossiping its certificate failed: %s', qc.root, (err as Error).message) })
    if (submit != null) {
      await this.submitStored(qc.root, stored, { qc, summary: proposal.summary })
      return
    }
    // No chain here: the batch certificate is as far as a batch goes, so nothing stays pending.
    await area?.del([`batch/${qc.root.toLowerCase()}`, ...taskIds.map(id => `pending/${id}`)])
    for (const id of taskIds) this.inFlight.delete(id)
  }

  private resubmit (root: Hex, stored: StoredBatch): void {
    const qc: BatchQuorumCertificate = {
      root: stored.qc.root, epoch: BigInt(stored.qc.epoch), summaryHash: stored.qc.summaryHash, signerBitmap: hexToBytes(stored.qc.signerBitmap),
      aggregateSig: hexToBytes(stored.qc.aggregateSig), signedStake: BigInt(stored.qc.signedStake), totalStake: BigInt(stored.qc.totalStake)
    }
    if (this.components.submit == null) return
    this.track(this.submitStored(root, stored, { qc, summary: summaryFromJson(stored.summary) }))
  }

  private async submitStored (root: Hex, stored: StoredBatch, submission: BatchSubmission): Promise<void> {
    const { area, submit } = this.components
    const outcome = await submit!(submission)
    if (outcome.state === 'pending') return
    const keys = [`batch/${root.toLowerCase()}`, ...stored.taskIds.map(id => `pending/${id}`)]
    await area?.del(keys)
    for (const id of stored.taskIds) this.inFlight.delete(id)
    const base = { root, epoch: BigInt(stored.epoch), seq: BigInt(stored.seq), leaves: stored.taskIds.length, taskIds: stored.taskIds }
    if (outcome.state === 'failed') {
      log.error('batch %s failed on chain: %s', root, outcome.lastError)
      this.components.onBatch?.({ ...base, state: 'failed', reason: outcome.revert ?? outcome.lastError })
      return
    }
    this.components.onBatch?.({ ...base, state: 'settled', txHash: outcome.txHash, gasUsed: outcome.gasUsed, settledBy: outcome.by })
  }

  private report (batch: OpenBatch, state: BatchState, extra: Partial<BatchReport> = {}): void {
    const { proposal, built } = batch
    this.components.onBatch?.({ state, root: built.root, epoch: proposal.epoch, seq: proposal.seq, leaves: built.leaves.length, taskIds: built.leaves.map(l => l.taskId), ...extra })
  }

  private track (run: Promise<void>): void {
    const p = run.catch(err => { log.error('batch step failed: %s', (err as Error).message) }).finally(() => { this.submissions.delete(p) })
    this.submissions.add(p)
  }
}

function countBits (bitmap: Uint8Array): number {
  let n = 0
  for (const byte of bitmap) for (let b = byte; b !== 0; b &= b - 1) n++
  return n
}

/** A summary as JSON (bigints as decimal strings), for the store. */
export function summaryToJson (summary: BatchSummary): unknown {
  return JSON.parse(JSON.stringify(summary, (_k, v: unknown) => (typeof v === 'bigint' ? { $big: v.toString() } : v)))
}

export function summaryFromJson (json: unknown): BatchSummary {
  return JSON.parse(JSON.stringify(json), (_k, v: unknown) => (v !== null && typeof v === 'object' && '$big' in v ? BigInt((v as { $big: string }).$big) : v)) as BatchSummary
}
