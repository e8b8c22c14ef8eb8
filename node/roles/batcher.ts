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
 * Per requester, in order (the chain's StaleVoucher rule: a batch's voucher for a requester must
 * be newer than the last one settled for its tab): a requester is in at most one batch in flight
 * at a time (its later tasks wait for that batch to settle or fail), its tasks are taken in
 * sequence order (the lowest first when a batch has no room for all), and its tasks below the
 * tab's settled lastSequence (stragglers: a batch with its higher sequences settled first) wait
 * to be merged into a batch with a newer task of the same requester, whose voucher then covers
 * them (the summary carries the highest voucher and every sequence's bit).
 *
 * A batch that fails on chain is not dropped whole: each leaf is looked at again. A leaf settled
 * elsewhere since (another aggregator's batch) is done; one that can never settle (past its
 * settlement window, or its requester cannot pay per the named revert) is dropped with a typed
 * reason; the rest wait for the next batch, each at most MAX_BATCH_ATTEMPTS times. When nothing
 * in the leaves explains the failure, their requesters are batched alone next time, so one
 * requester's poison task cannot take the others' tasks down with it.
 *
 * Across restarts: every certified-but-unsettled tab task is kept in the store (`pending/<id>`,
 * with its attempts so far) until its batch is settled; a certified batch (`batch/<root>`, with
 * its certificate) is submitted again at start. A batch only proposed when the node stopped is
 * forgotten and its leaves batched again: the same leaves give the same root, which operators
 * sign again.
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { bytesToHex, getAddress, hexToBytes, type Hex } from 'viem'
import {
  BatchAggregation, DEFAULT_QUORUM_BPS, type BatchQuorumCertificate, type BatchSignatureShare, type BatchSummary, type OperatorSet, type SignatureSet
} from '../../consensus/index.js'
import type { StoreArea } from '../../storage/index.js'
import { buildBatch, requesterOf, type BatchItem, type BuiltBatch } from './batch-contents.js'
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

/**
 * How many batches a task may be in that failed on chain before it is dropped. A failure whose
 * cause is a leaf (settled elsewhere, expired) drops that leaf and costs the others one attempt;
 * an unexplained one batches each requester alone next, so the second attempt isolates a poison
 * requester and the third tells a task that fails alone from a passing cause (a pause, a fee
 * raised by governance between simulation and mining). Beyond that each attempt is a reverted
 * transaction paid by the aggregator for a task that will not settle.
 */
export const MAX_BATCH_ATTEMPTS = 3

/**
 * Named reverts of TaskManager.submitBatch that say a batch's requester cannot pay (spec15): its
 * deposit is below the charge, the charge is above what its voucher authorises, or the voucher is
 * not its signature. In a batch of that requester alone they condemn its tasks at once; another
 * attempt would revert the same way.
 */
const REQUESTER_CANNOT_PAY = new Set(['InsufficientDeposit', 'VoucherExceeded', 'InvalidVoucherSignature'])

/** Why a task leaves the batcher without settling in one of its batches. */
export type TaskDropCode =
  /** Its tab sequence is settled on chain already (another aggregator's batch): nothing is lost. */
  | 'settled-elsewhere'
  /** Its deadline plus the chain's settlement window has passed: TaskExpired for good. */
  | 'expired'
  /** A batch of its requester alone reverted with a revert of REQUESTER_CANNOT_PAY. */
  | 'requester-cannot-pay'
  /** It was in MAX_BATCH_ATTEMPTS batches that failed on chain. */
  | 'attempts-exhausted'
  /** Its task or certificate is gone from this node's store (after a restart): nothing to batch it from. */
  | 'unavailable'

export interface TaskDrop { taskId: Hex, code: TaskDropCode, reason: string }

/**
 * What the batcher reads of credit tabs on chain (a ChainClient); absent without a chain, when
 * nothing is checked and a failed batch's tasks are only bounded by MAX_BATCH_ATTEMPTS.
 */
export interface BatcherTabs {
  /** The requester's last settled tab sequence (TaskManager tabOf; 0n before any batch). */
  lastSequence: (requester: Hex) => Promise<bigint>
  /** Whether the requester's tab sequence is settled (TaskManager isTabSequenceSettled). */
  settled: (requester: Hex, sequence: bigint) => Promise<boolean>
  /** TaskManager.settlementWindow in ms: a task settles until its deadline plus this. */
  settlementWindowMs: () => Promise<number>
}

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
  /** Tabs on chain: stragglers and failed batches are checked against them. */
  tabs?: BatcherTabs
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
  /** 'failed': how many of its tasks wait for another batch. */
  requeued?: number
  /** 'failed': its tasks that will not be batched again, and why. */
  droppedTasks?: TaskDrop[]
}

interface OpenBatch {
  built: BuiltBatch
  proposal: BatchProposalContent
  aggregation: BatchAggregation
  graceTimer?: NodeJS.Timeout
  timeoutTimer?: NodeJS.Timeout
  done: boolean
}

/** A certified tab task waiting for a batch. */
interface PendingTask {
  item: BatchItem
  requester: Hex
  /** Batches it was in that failed on chain. */
  attempts: number
  /** Its last batch failed for no reason its leaves showed: batch its requester alone. */
  isolate: boolean
}

interface StoredBatch {
  epoch: string
  seq: string
  taskIds: Hex[]
  summary: unknown
  qc: { root: Hex, epoch: string, summaryHash: Hex, signerBitmap: Hex, aggregateSig: Hex, signedStake: string, totalStake: string }
}

/** What `pending/<id>` holds (an empty value, as written before attempts were counted, is 0 attempts). */
interface StoredPending { attempts: number }

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

export class Batcher implements Startable {
  /** Certified tab tasks not yet in a batch, by epoch, then task id (in the order they came). */
  private readonly pending = new Map<bigint, Map<string, PendingTask>>()
  /** Task ids in a proposed or certified batch (not pending), with the attempts they had. */
  private readonly inFlight = new Map<string, number>()
  /** Requesters with a task in a proposed or certified batch: at most one such batch each. */
  private readonly busy = new Set<string>()
  /** Stragglers already logged as waiting (a line once, not on every close). */
  private readonly straggling = new Set<string>()
  private readonly open = new Map<string, OpenBatch>()
  private readonly closeTimers = new Map<bigint, NodeJS.Timeout>()
  private readonly submissions = new Set<Promise<void>>()
  /** Closes run one at a time: each reads what the last one took. */
  private closing: Promise<void> = Promise.resolve()
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
    const attempts = new Map<string, number>()
    for (const [key, value] of await area.entries('pending/')) attempts.set(key.slice('pending/'.length), storedAttempts(value))
    for (const [key, value] of await area.entries('batch/')) {
      const stored = JSON.parse(fromUtf8.decode(value)) as StoredBatch
      for (const id of stored.taskIds) { inBatches.add(id); this.inFlight.set(id, attempts.get(id) ?? 0) }
      this.resubmit(key.slice('batch/'.length) as Hex, stored)
    }
    let reloaded = 0
    for (const [id, n] of attempts) {
      if (inBatches.has(id)) continue
      const item = await this.components.loadItem(id as Hex)
      if (item === undefined) { await area.del([`pending/${id}`]); continue }
      this.queue(item, n, false)
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

  /** Tasks waiting for a batch, stragglers included (for the API and tests). */
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
    await this.components.area?.put([[`pending/${id}`, storedPending(0)]])
    this.queue(item, 0, false)
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
  async forgetBatchedElsewhere (taskIds: readonly Hex[]): Promise<void> {
    const ids = new Set(taskIds.map(id => id.toLowerCase()))
    for (const [epoch, byId] of this.pending) {
      for (const id of ids) { byId.delete(id); this.straggling.delete(id) }
      if (byId.size === 0) this.pending.delete(epoch)
    }
    await this.components.area?.del([...ids].map(id => `pending/${id}`))
  }

  /** Closes every pending batch now, whatever its size (tests, the devnet). */
  flush (): void {
    for (const epoch of [...this.pending.keys()]) this.close(epoch)
  }

  private queue (item: BatchItem, attempts: number, isolate: boolean): void {
    const id = item.taskId.toLowerCase()
    let byId = this.pending.get(item.epoch)
    if (byId === undefined) { byId = new Map(); this.pending.set(item.epoch, byId) }
    byId.set(id, { item, requester: requesterOf(item.task), attempts, isolate })
    this.schedule(item.epoch)
  }

  /** Closes `epoch`'s batch now when a full one can be taken, or starts its time bound. */
  private schedule (epoch: bigint, closeWhenFull = true): void {
    if (this.stopped) return
    if (closeWhenFull && this.eligible(epoch).length >= this.maxLeaves) {
      this.close(epoch)
      return
    }
    if (!this.closeTimers.has(epoch) && (this.pending.get(epoch)?.size ?? 0) > 0) {
      this.closeTimers.set(epoch, setTimeout(() => { this.closeTimers.delete(epoch); this.close(epoch) }, this.maxWaitMs))
    }
  }

  /**
   * The pending tasks of `epoch` a batch may take now: not of a requester in a batch in flight,
   * nor of one with tasks waiting in an older epoch (those go first, keeping its sequences in
   * order across epochs), stragglers there aside (a batch is of one epoch: one that waits for a
   * newer task of its own epoch must not hold up the requester's tasks of the next).
   */
  private eligible (epoch: bigint): PendingTask[] {
    const byId = this.pending.get(epoch)
    if (byId === undefined) return []
    const older = new Set<string>()
    for (const [e, m] of this.pending) if (e < epoch) for (const [id, p] of m) if (!this.straggling.has(id)) older.add(p.requester)
    return [...byId.values()].filter(p => !this.busy.has(p.requester) && !older.has(p.requester))
  }

  /** Takes up to maxLeaves pending tasks of `epoch` into a batch and proposes it (one close at a time). */
  private close (epoch: bigint): void {
    clearTimeout(this.closeTimers.get(epoch))
    this.closeTimers.delete(epoch)
    const run = this.closing.then(async () => { await this.closeNow(epoch) })
    this.closing = run.catch(() => {})
    this.track(run)
  }

  private async closeNow (epoch: bigint): Promise<void> {
    if (this.stopped || (this.pending.get(epoch)?.size ?? 0) === 0) return
    const taken = await this.select(epoch)
    const byId = this.pending.get(epoch)
    for (const p of taken) {
      const id = p.item.taskId.toLowerCase()
      byId?.delete(id)
      this.straggling.delete(id)
      this.inFlight.set(id, p.attempts)
      this.busy.add(p.requester)
    }
    if (byId !== undefined && byId.size === 0) this.pending.delete(epoch)
    // what is left starts the next batch's clock, or closes it at once when full; when nothing
    // could be taken (requesters busy, stragglers) only the clock, so a close never loops on itself
    if (this.pending.has(epoch)) this.schedule(epoch, taken.length > 0)
    if (taken.length === 0) return
    const items = taken.map(p => p.item)
    const run = this.propose(epoch, items).catch(err => {
      log.error('batch of epoch %d: could not be proposed: %s', epoch, (err as Error).message)
      this.release(taken, false)
    })
    this.track(run)
  }

  /**
   * What the next batch of `epoch` takes: whole requesters in the order their first task came,
   * each one's tasks in sequence order; a requester whose last batch failed unexplained goes
   * alone. With tabs on chain: a task past its settlement window is dropped, a straggler (at or
   * below its tab's lastSequence) settled already is dropped, and one not settled waits until a
   * newer task of its requester can carry it.
   */
  private async select (epoch: bigint): Promise<PendingTask[]> {
    const byRequester = new Map<string, PendingTask[]>()
    for (const p of this.eligible(epoch)) {
      const list = byRequester.get(p.requester) ?? []
      list.push(p)
      byRequester.set(p.requester, list)
    }
    const taken: PendingTask[] = []
    let window: Promise<number> | undefined // read once per batch, only when a requester is looked at
    const windowMs = async (): Promise<number> => await (window ??= this.components.tabs!.settlementWindowMs())
    for (const [requester, list] of byRequester) {
      const room = this.maxLeaves - taken.length
      if (room <= 0) break
      const isolate = list.some(p => p.isolate)
      if (isolate && taken.length > 0) continue
      list.sort((x, y) => (x.item.task.nonce < y.item.task.nonce ? -1 : x.item.task.nonce > y.item.task.nonce ? 1 : 0))
      const { ready, last } = await this.settleable(requester as Hex, list, windowMs)
      if (ready.length === 0) continue
      if (ready.length > room && ready[room - 1]!.item.task.nonce <= last) {
        // no room for all, and the lowest that fit are stragglers whose voucher would be stale: in a
        // batch of its own, room - 1 of them and the requester's first task above lastSequence,
        // whose voucher carries them
        if (taken.length > 0) continue
        taken.push(...ready.slice(0, room - 1), ready.find(p => p.item.task.nonce > last)!)
      } else {
        taken.push(...ready.slice(0, room))
      }
      if (isolate) break
    }
    return taken
  }

  /**
   * Of one requester's pending tasks (in sequence order), those a batch can settle now, in
   * sequence order, with at least one above its tab's lastSequence (the voucher the batch
   * carries must be newer); the others stay pending or are dropped.
   */
  private async settleable (requester: Hex, list: PendingTask[], settlementWindowMs: () => Promise<number>): Promise<{ ready: PendingTask[], last: bigint }> {
    const { tabs } = this.components
    if (tabs === undefined) return { ready: list, last: 0n }
    let last: bigint
    const live: PendingTask[] = []
    const drops: Array<[PendingTask, TaskDrop]> = []
    try {
      const [lastSequence, windowMs] = await Promise.all([tabs.lastSequence(requester), settlementWindowMs()])
      last = lastSequence
      for (const p of list) {
        const drop = await this.unsettleable(p, last, windowMs)
        if (drop !== undefined) drops.push([p, drop])
        else live.push(p)
      }
    } catch (err) {
      log('requester %s: its tab could not be read (%s); batched as it is, the chain will judge', requester, (err as Error).message)
      return { ready: list, last: 0n }
    }
    for (const [p, drop] of drops) await this.forget(p, drop)
    // the newest task above lastSequence: its voucher carries every straggler with it
    if (live.length === 0 || live.at(-1)!.item.task.nonce > last) return { ready: live, last }
    for (const p of live) {
      const id = p.item.taskId.toLowerCase()
      if (this.straggling.has(id)) continue
      this.straggling.add(id)
      log('task %s (sequence %d of %s) waits: its tab settled up to sequence %d in another batch first, so only a batch with a newer task of the same requester can carry it (StaleVoucher otherwise)',
        id, p.item.task.nonce, requester, last)
    }
    return { ready: [], last }
  }

  /** Why a pending task can never settle, or undefined: settled already, or past its window. */
  private async unsettleable (p: PendingTask, lastSequence: bigint, windowMs: number): Promise<TaskDrop | undefined> {
    const taskId = p.item.taskId.toLowerCase() as Hex
    const { nonce, deadline } = p.item.task
    if (nonce <= lastSequence && await this.components.tabs!.settled(p.requester, nonce)) {
      return { taskId, code: 'settled-elsewhere', reason: `sequence ${nonce} of ${p.requester} is settled on chain already` }
    }
    if (Number(deadline) + windowMs < Date.now()) {
      return { taskId, code: 'expired', reason: `its deadline ${new Date(Number(deadline)).toISOString()} plus the settlement window (${windowMs} ms) has passed (TaskExpired)` }
    }
    return undefined
  }

  /** A pending task that leaves the batcher for good: its pending entry goes. */
  private async forget (p: PendingTask, drop: TaskDrop): Promise<void> {
    const id = p.item.taskId.toLowerCase()
    this.pending.get(p.item.epoch)?.delete(id)
    if (this.pending.get(p.item.epoch)?.size === 0) this.pending.delete(p.item.epoch)
    this.straggling.delete(id)
    logDrop(drop)
    await this.components.area?.del([`pending/${id}`])
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
    this.release(batch.built.items.map(item => this.pendingOf(item, false)), false)
  }

  /** A batch's task as it waits again, with the attempts it had. */
  private pendingOf (item: BatchItem, isolate: boolean, failed = 0): PendingTask {
    return { item, requester: requesterOf(item.task), attempts: (this.inFlight.get(item.taskId.toLowerCase()) ?? 0) + failed, isolate }
  }

  /**
   * A batch is over for `requesters` (its tabs'): `tasks` of it wait again, and every waiting
   * task of those requesters may be batched, at once when `now` (they already waited a whole
   * batch), or on the usual bounds (a batch that could not be proposed or certified: closing it
   * again at once would only repeat that).
   */
  private release (tasks: readonly PendingTask[], now: boolean, requesters: readonly Hex[] = tasks.map(p => p.requester)): void {
    for (const p of tasks) this.inFlight.delete(p.item.taskId.toLowerCase())
    const epochs = this.freeRequesters(requesters)
    if (this.stopped) return
    for (const p of tasks) {
      let byId = this.pending.get(p.item.epoch)
      if (byId === undefined) { byId = new Map(); this.pending.set(p.item.epoch, byId) }
      byId.set(p.item.taskId.toLowerCase(), p)
      epochs.add(p.item.epoch)
    }
    for (const epoch of [...epochs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (now) this.close(epoch)
      else this.schedule(epoch)
    }
  }

  /** The requesters' batch is over: their waiting tasks may be batched; returns the epochs they wait in. */
  private freeRequesters (requesters: readonly Hex[]): Set<bigint> {
    const freed = new Set<string>(requesters)
    for (const r of freed) this.busy.delete(r)
    const epochs = new Set<bigint>()
    for (const [epoch, byId] of this.pending) for (const p of byId.values()) if (freed.has(p.requester)) epochs.add(epoch)
    return epochs
  }

  private finalize (batch: OpenBatch): void {
    if (batch.done) return
    batch.done = true
    clearTimeout(batch.graceTimer)
    clearTimeout(batch.timeoutTimer)
    this.open.delete(batch.built.root.toLowerCase())
    const qc = batch.aggregation.buildCertificate()
    this.track(this.settle(batch.proposal, batch.built.items, qc))
  }

  private async settle (proposal: BatchProposalContent, items: BatchItem[], qc: BatchQuorumCertificate): Promise<void> {
    const { area, publishCertificate, submit } = this.components
    const taskIds = items.map(i => i.taskId.toLowerCase() as Hex)
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
      await this.submitStored(qc.root, stored, { qc, summary: proposal.summary }, items)
      return
    }
    // No chain here: the batch certificate is as far as a batch goes, so nothing stays pending.
    await area?.del([`batch/${qc.root.toLowerCase()}`, ...taskIds.map(id => `pending/${id}`)])
    for (const id of taskIds) this.inFlight.delete(id)
    this.release([], true, items.map(i => requesterOf(i.task)))
  }

  private resubmit (root: Hex, stored: StoredBatch): void {
    const qc: BatchQuorumCertificate = {
      root: stored.qc.root, epoch: BigInt(stored.qc.epoch), summaryHash: stored.qc.summaryHash, signerBitmap: hexToBytes(stored.qc.signerBitmap),
      aggregateSig: hexToBytes(stored.qc.aggregateSig), signedStake: BigInt(stored.qc.signedStake), totalStake: BigInt(stored.qc.totalStake)
    }
    if (this.components.submit == null) return
    const summary = summaryFromJson(stored.summary)
    for (const tab of summary.tabs) this.busy.add(getAddress(tab.requester))
    this.track(this.submitStored(root, stored, { qc, summary }))
  }

  private async submitStored (root: Hex, stored: StoredBatch, submission: BatchSubmission, known?: BatchItem[]): Promise<void> {
    const { area, submit } = this.components
    const outcome = await submit!(submission)
    if (outcome.state === 'pending') return
    const base = { root, epoch: BigInt(stored.epoch), seq: BigInt(stored.seq), leaves: stored.taskIds.length, taskIds: stored.taskIds }
    const requesters = submission.summary.tabs.map(t => getAddress(t.requester))
    if (outcome.state === 'failed') {
      const reason = outcome.revert ?? outcome.lastError
      const { requeued, dropped } = await this.rebatch(root, stored, submission, reason, outcome.revert, known)
      log.error('batch %s failed on chain: %s; %d of its tasks wait for another batch, %d dropped', root, outcome.lastError, requeued, dropped.length)
      this.components.onBatch?.({ ...base, state: 'failed', reason, requeued, droppedTasks: dropped })
      return
    }
    await area?.del([`batch/${root.toLowerCase()}`, ...stored.taskIds.map(id => `pending/${id}`)])
    for (const id of stored.taskIds) this.inFlight.delete(id)
    this.components.onBatch?.({ ...base, state: 'settled', txHash: outcome.txHash, gasUsed: outcome.gasUsed, settledBy: outcome.by })
    this.release([], true, requesters)
  }

  /**
   * A batch failed on chain: each of its tasks is settled elsewhere (done), can never settle
   * (dropped with its reason), or waits for another batch with one attempt more; when no leaf
   * explains the failure they wait to be batched per requester. Returns what became of them.
   */
  private async rebatch (root: Hex, stored: StoredBatch, submission: BatchSubmission, reason: string, revert: string | undefined, known?: BatchItem[]): Promise<{ requeued: number, dropped: TaskDrop[] }> {
    const { area, tabs } = this.components
    const items: BatchItem[] = []
    const gone: Hex[] = []
    for (const id of stored.taskIds) {
      const item = known?.find(i => i.taskId.toLowerCase() === id) ?? await this.components.loadItem(id)
      if (item === undefined) gone.push(id)
      else items.push(item)
    }
    const tasks = items.map(item => this.pendingOf(item, false, 1))
    const alone = submission.summary.tabs.length === 1
    const dropped: TaskDrop[] = gone.map(taskId => ({ taskId, code: 'unavailable', reason: 'its task or certificate is no longer in this node\'s store' }))
    const doomed: PendingTask[] = []
    let explained = revert === 'StaleVoucher' // the tab moved on: the stragglers wait (select)
    let windowMs: number | undefined
    for (const p of tasks) {
      const taskId = p.item.taskId.toLowerCase() as Hex
      let drop: TaskDrop | undefined
      if (tabs !== undefined) {
        try {
          windowMs ??= await tabs.settlementWindowMs()
          drop = await this.unsettleable(p, BigInt(Number.MAX_SAFE_INTEGER), windowMs) // any sequence may be settled elsewhere
        } catch (err) {
          log('batch %s: task %s could not be checked on chain (%s); it waits for another batch', root, taskId, (err as Error).message)
        }
      }
      if (drop === undefined && alone && revert !== undefined && REQUESTER_CANNOT_PAY.has(revert)) {
        drop = { taskId, code: 'requester-cannot-pay', reason: `a batch of its requester ${p.requester} alone reverted with ${revert}` }
      }
      if (drop === undefined && p.attempts >= MAX_BATCH_ATTEMPTS) {
        drop = { taskId, code: 'attempts-exhausted', reason: `in ${p.attempts} batches that failed on chain, the last with ${reason}` }
      }
      if (drop !== undefined) {
        if (drop.code === 'settled-elsewhere' || drop.code === 'expired') explained = true
        doomed.push(p)
        dropped.push(drop)
      }
    }
    const again = tasks.filter(p => !doomed.includes(p))
    for (const p of again) p.isolate = !explained && !alone
    for (const d of dropped) logDrop(d)
    await area?.put(again.map((p): [string, Uint8Array] => [`pending/${p.item.taskId.toLowerCase()}`, storedPending(p.attempts)]))
    await area?.del([`batch/${root.toLowerCase()}`, ...dropped.map(d => `pending/${d.taskId}`)])
    for (const d of dropped) this.inFlight.delete(d.taskId)
    this.release(again, true, submission.summary.tabs.map(t => getAddress(t.requester)))
    return { requeued: again.length, dropped }
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

function logDrop (drop: TaskDrop): void {
  if (drop.code === 'settled-elsewhere') log('task %s: %s; not batched again', drop.taskId, drop.reason)
  else log.error('task %s dropped (%s): %s', drop.taskId, drop.code, drop.reason)
}

function storedPending (attempts: number): Uint8Array {
  return attempts === 0 ? new Uint8Array(0) : utf8.encode(JSON.stringify({ attempts } satisfies StoredPending))
}

function storedAttempts (value: Uint8Array): number {
  if (value.length === 0) return 0
  try {
    const { attempts } = JSON.parse(fromUtf8.decode(value)) as StoredPending
    return Number.isInteger(attempts) && attempts >= 0 ? attempts : 0
  } catch {
    return 0
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
