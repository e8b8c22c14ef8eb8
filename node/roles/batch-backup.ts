/**
 * A backup for the aggregator that formed a batch (issue 15): a funded aggregator that receives
 * a valid batch certificate over gossip, for a batch whose proposal it saw and did not form
 * itself, keeps it (in its store, so a restart keeps it too), leaves it to the forming
 * aggregator for BATCH_BACKUP_DELAY_MS, then reads the chain and posts it through the submitter
 * if the chain still lacks its root. Without this a batch whose aggregator was lost for good
 * after certifying it never settles, and its signers and model owners go unpaid; with it,
 * every funded aggregator that saw the batch is on its path, as for task certificates
 * (aggregator.ts posts a received certificate after BACKUP_SUBMISSION_DELAY_MS).
 *
 * Each step is the node's `batch` event, as for the node's own batches: 'certified' when a
 * certificate is taken in (its reason says whose and when it will be posted), 'settled' with
 * `settledBy` (this node's account when it posted it, the forming aggregator's or anyone's
 * otherwise), 'failed' when the chain refuses it for good.
 *
 * A batch settled meanwhile, by anyone, is forgotten with nothing sent. A batch whose
 * transaction reverts because its tasks were settled first in another batch (the race this
 * backup runs against everyone else) counts as done: every tab sequence it carries is settled
 * on chain, which is what posting it was for.
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { bytesToHex, hexToBytes, type Hex } from 'viem'
import { SEQUENCES_PER_WORD, batchSummaryHash, decodeSignerBitmap, type BatchQuorumCertificate, type BatchSummary, type OperatorSet } from '../../consensus/index.js'
import { MAX_BACKUP_BATCHES, MAX_HELD_BATCH_PROPOSALS } from '../../protocols/wire/index.js'
import type { StoreArea } from '../../storage/index.js'
import { summaryFromJson, summaryToJson, type BatchReport } from './batcher.js'
import type { BatchOutcome, BatchSubmission, Settlement } from './submitter.js'

const log = logger('poi:batch-backup')

/**
 * How long a backup leaves a received batch certificate to the aggregator that formed it before
 * posting it itself. The forming aggregator submits right after gossiping the certificate: one
 * chain read, a simulation and a transaction whose receipt comes within a block or two (12 s
 * blocks on Ethereum, seconds on rollups, milliseconds on anvil), so 30 s is past its normal
 * case on every chain and a backup's transaction is rarely a wasted second one (it would only
 * lose the race: the contract stores a root once and returns false for the copy). Far below
 * the settlement window of the batch's tasks (minutes), so a lost aggregator still gets paid.
 * Longer than the 5 s of task certificates (aggregator.ts): a batch's transaction is larger
 * and its submission reads more (the operator set, every voucher's tab) before it is sent.
 */
export const BATCH_BACKUP_DELAY_MS = 30_000

export interface BatchBackupComponents {
  /** Where received certificates wait (`batch/<root>`), so a restart keeps them. */
  area: StoreArea
  /** The operator set of an epoch (the certificate's stake figures). */
  resolveSet: (epoch: bigint) => Promise<OperatorSet | undefined>
  /** Whether this node formed the batch itself (its own Batcher posts those). */
  formedHere: (root: Hex) => Promise<boolean>
  /** Who stored the batch's root on chain, or undefined while none did (BatchSettlementChain.batchSettlement: readBatchEpoch, then its event). */
  settlement: (root: Hex) => Promise<Settlement | undefined>
  /** Settles a batch on chain (Submitter.submitBatch). */
  submit: (batch: BatchSubmission) => Promise<BatchOutcome>
  /** Whether a requester's tab sequence is settled on chain: tells a batch whose tasks settled in another batch from a real failure. */
  tabSettled?: (requester: Hex, sequence: bigint) => Promise<boolean>
  /** The tasks of a batch taken in here: the node's own Batcher batches them no more (operators would refuse them). */
  onTaken?: (taskIds: Hex[]) => void
  /** Told of each step of each batch held here (the node's 'batch' event). */
  onBatch?: (report: BatchReport) => void
}

export interface BatchBackupInit {
  /** Default BATCH_BACKUP_DELAY_MS; tests shorten it. */
  delayMs?: number
  /** Default MAX_BACKUP_BATCHES. */
  maxBatches?: number
}

/** What a batch proposal seen over gossip says (its summary comes again with the certificate). */
export interface SeenBatchProposal {
  epoch: bigint
  seq: bigint
  root: Hex
  leaves: ReadonlyArray<{ taskId: Hex }>
  summary: BatchSummary
}

/** A batch certificate from the network, already verified (protocols/gossip checkBatchMessage). */
export interface ReceivedBatchCertificate {
  root: Hex
  epoch: bigint
  summary: BatchSummary
  signerBitmap: Uint8Array
  signature: Uint8Array
}

interface HeldProposal { epoch: bigint, seq: bigint, taskIds: Hex[], summaryHash: Hex }

interface StoredBackup {
  epoch: string
  seq: string
  taskIds: Hex[]
  summary: unknown
  signerBitmap: Hex
  aggregateSig: Hex
  signedStake: string
  totalStake: string
  /** When it was taken in (unix ms): the delay runs from here, across restarts too. */
  receivedAt: number
}

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

export class BatchBackup implements Startable {
  /** Proposals seen over gossip, by root, oldest first. */
  private readonly proposals = new Map<string, HeldProposal>()
  /** Certificates held (their data is in the store), by root, oldest first; the timer until they are posted. */
  private readonly held = new Map<string, NodeJS.Timeout | undefined>()
  private readonly runs = new Set<Promise<void>>()
  private readonly delayMs: number
  private readonly maxBatches: number
  private stopped = true

  constructor (private readonly components: BatchBackupComponents, init: BatchBackupInit = {}) {
    this.delayMs = init.delayMs ?? BATCH_BACKUP_DELAY_MS
    this.maxBatches = init.maxBatches ?? MAX_BACKUP_BATCHES
    if (!Number.isFinite(this.delayMs) || this.delayMs < 0) throw new RangeError(`the batch backup delay must be a non-negative number of ms, got ${this.delayMs}`)
    if (!Number.isInteger(this.maxBatches) || this.maxBatches < 1) throw new RangeError(`the batch backup bound must be a positive integer, got ${this.maxBatches}`)
  }

  /** Picks up the certificates a previous run held: each is posted when its delay (from when it was received) is over. */
  async start (): Promise<void> {
    this.stopped = false
    const entries = await this.components.area.entries('batch/')
    const stored = entries.map(([key, value]) => ({ root: key.slice('batch/'.length), backup: JSON.parse(fromUtf8.decode(value)) as StoredBackup }))
      .sort((a, b) => a.backup.receivedAt - b.backup.receivedAt)
    const dropped = stored.slice(0, Math.max(0, stored.length - this.maxBatches))
    if (dropped.length > 0) await this.components.area.del(dropped.map(d => `batch/${d.root}`))
    for (const { root, backup } of stored.slice(dropped.length)) {
      this.components.onTaken?.(backup.taskIds)
      this.schedule(root, backup.receivedAt)
    }
    if (this.held.size > 0) log('reloaded %d batch certificates to post for their aggregators', this.held.size)
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const timer of this.held.values()) clearTimeout(timer)
    this.held.clear()
    this.proposals.clear()
    await Promise.allSettled([...this.runs])
  }

  /** How many received batch certificates wait here (for the API and tests). */
  get heldCount (): number { return this.held.size }

  /** Resolves once no post is in flight (timers still waiting are not waited for). */
  async idle (): Promise<void> {
    while (this.runs.size > 0) await Promise.allSettled([...this.runs])
  }

  /** A batch proposal seen over gossip: remembered, so its certificate can be matched to its leaves. */
  onProposal (proposal: SeenBatchProposal): void {
    if (this.stopped) return
    const root = proposal.root.toLowerCase()
    this.proposals.delete(root)
    this.proposals.set(root, {
      epoch: proposal.epoch, seq: proposal.seq, taskIds: proposal.leaves.map(l => l.taskId.toLowerCase() as Hex), summaryHash: batchSummaryHash(proposal.summary)
    })
    if (this.proposals.size > MAX_HELD_BATCH_PROPOSALS) this.proposals.delete(this.proposals.keys().next().value!)
  }

  /**
   * A verified batch certificate from the network: kept and posted after the delay when the
   * chain still lacks it, unless this node formed the batch, saw no proposal for it, or holds
   * it already.
   */
  async onCertificate (cert: ReceivedBatchCertificate): Promise<void> {
    const root = cert.root.toLowerCase()
    if (this.stopped || this.held.has(root)) return
    const proposal = this.proposals.get(root)
    if (proposal === undefined) {
      log('batch %s: certificate received without its proposal here; not kept (its leaves are unknown)', root)
      return
    }
    if (proposal.summaryHash !== batchSummaryHash(cert.summary) || proposal.epoch !== cert.epoch) {
      log('batch %s: certificate of another summary or epoch than its proposal; not kept', root)
      return
    }
    if (await this.components.formedHere(cert.root)) return
    const set = await this.components.resolveSet(cert.epoch)
    const bitmap = set === undefined ? undefined : decodeSignerBitmap(cert.signerBitmap, set.operators.length)
    if (set === undefined || bitmap === undefined || !bitmap.ok) {
      log('batch %s: the operator set of epoch %d is not known here; not kept', root, cert.epoch)
      return
    }
    if (this.stopped || this.held.has(root)) return
    const receivedAt = Date.now()
    const stored: StoredBackup = {
      epoch: cert.epoch.toString(),
      seq: proposal.seq.toString(),
      taskIds: proposal.taskIds,
      summary: summaryToJson(cert.summary),
      signerBitmap: bytesToHex(cert.signerBitmap),
      aggregateSig: bytesToHex(cert.signature),
      signedStake: bitmap.signers.reduce((sum, i) => sum + set.operators[i]!.stake, 0n).toString(),
      totalStake: set.totalStake.toString(),
      receivedAt
    }
    this.held.set(root, undefined) // claimed before the write: a copy arriving meanwhile is not kept twice
    try {
      await this.components.area.put([[`batch/${root}`, utf8.encode(JSON.stringify(stored))]])
    } catch (err) {
      this.held.delete(root)
      throw err
    }
    this.proposals.delete(root)
    this.components.onTaken?.(proposal.taskIds)
    this.report(root, stored, {
      state: 'certified',
      signers: bitmap.signers.length,
      reason: `received over gossip from the aggregator that formed it; posted from here in ${this.delayMs} ms if the chain still lacks it`
    })
    log('batch %s (seq %d, %d leaves): held as a backup, posted in %d ms if still unsettled', root, proposal.seq, proposal.taskIds.length, this.delayMs)
    this.schedule(root, receivedAt)
    await this.evict()
  }

  private schedule (root: string, receivedAt: number): void {
    if (this.stopped) return
    const wait = Math.max(0, receivedAt + this.delayMs - Date.now())
    this.held.set(root, setTimeout(() => { this.track(this.post(root)) }, wait))
  }

  /** Past the bound, the oldest held certificate is dropped (logged): it has waited longest. */
  private async evict (): Promise<void> {
    while (this.held.size > this.maxBatches) {
      const [oldest, timer] = this.held.entries().next().value!
      clearTimeout(timer)
      this.held.delete(oldest)
      await this.components.area.del([`batch/${oldest}`])
      log('batch %s: dropped, %d newer batch certificates are held for their aggregators (MAX_BACKUP_BATCHES)', oldest, this.maxBatches)
    }
  }

  /** The delay is over: forgotten when the chain holds the root, posted otherwise. */
  private async post (root: string): Promise<void> {
    if (this.stopped || !this.held.has(root)) return
    const bytes = await this.components.area.get(`batch/${root}`)
    if (bytes === undefined) { this.held.delete(root); return }
    const stored = JSON.parse(fromUtf8.decode(bytes)) as StoredBackup
    const before = await this.components.settlement(root as Hex).catch((err: Error) => {
      // the submitter reads the chain again before it sends, and retries what fails to pass
      log('batch %s: reading the chain failed (%s); the submitter checks again before it sends', root, err.message.split('\n')[0])
      return undefined
    })
    if (before !== undefined) {
      log('batch %s: settled by %s in %s; nothing sent from here', root, before.by, before.txHash)
      await this.forget(root)
      this.report(root, stored, { state: 'settled', txHash: before.txHash, settledBy: before.by, reason: 'settled before the backup delay ended; nothing sent from here' })
      return
    }
    log('batch %s: still unsettled %d ms after its certificate, posting it for its aggregator', root, this.delayMs)
    const outcome = await this.components.submit({ qc: qcOf(root as Hex, stored), summary: summaryFromJson(stored.summary) })
    if (outcome.state === 'pending') return // the submitter stopped: the next start posts it again
    await this.forget(root)
    if (outcome.state !== 'failed') {
      const ours = outcome.state === 'confirmed'
      this.report(root, stored, {
        state: 'settled', txHash: outcome.txHash, settledBy: outcome.by, ...(ours ? { gasUsed: outcome.gasUsed } : {}),
        reason: ours ? 'posted from here as a backup for the aggregator that formed it' : 'settled by another account while this backup was posting it'
      })
      return
    }
    if (await this.tasksSettled(stored)) {
      log('batch %s: reverted (%s), but every task it carries is settled on chain in another batch', root, outcome.revert ?? outcome.lastError)
      this.report(root, stored, { state: 'settled', reason: `its tasks were settled in another batch first (this one reverts ${outcome.revert ?? outcome.lastError}); nothing left to post` })
      return
    }
    log.error('batch %s: posting it as a backup failed: %s', root, outcome.lastError)
    this.report(root, stored, { state: 'failed', reason: outcome.revert ?? outcome.lastError })
  }

  /** Whether every tab sequence the batch settles is settled on chain already (by any batch). */
  private async tasksSettled (stored: StoredBackup): Promise<boolean> {
    const { tabSettled } = this.components
    if (tabSettled == null) return false
    try {
      for (const tab of summaryFromJson(stored.summary).tabs) {
        for (const sequence of sequencesOf(tab.firstWord, tab.sequenceBits)) {
          if (!await tabSettled(tab.requester, sequence)) return false
        }
      }
      return true
    } catch (err) {
      log('reading tab sequences failed: %s', (err as Error).message.split('\n')[0])
      return false
    }
  }

  private async forget (root: string): Promise<void> {
    this.held.delete(root)
    await this.components.area.del([`batch/${root}`])
  }

  private report (root: string, stored: StoredBackup, step: Pick<BatchReport, 'state'> & Partial<BatchReport>): void {
    this.components.onBatch?.({ root: root as Hex, epoch: BigInt(stored.epoch), seq: BigInt(stored.seq), leaves: stored.taskIds.length, taskIds: stored.taskIds, ...step })
  }

  private track (run: Promise<void>): void {
    const p = run.catch(err => { log.error('batch backup step failed: %s', (err as Error).message) }).finally(() => { this.runs.delete(p) })
    this.runs.add(p)
  }
}

function qcOf (root: Hex, stored: StoredBackup): BatchQuorumCertificate {
  return {
    root,
    epoch: BigInt(stored.epoch),
    summaryHash: batchSummaryHash(summaryFromJson(stored.summary)),
    signerBitmap: hexToBytes(stored.signerBitmap),
    aggregateSig: hexToBytes(stored.aggregateSig),
    signedStake: BigInt(stored.signedStake),
    totalStake: BigInt(stored.totalStake)
  }
}

/** The tab sequences a summary's tab settles (consensus sequenceWords, read back). */
export function sequencesOf (firstWord: bigint, sequenceBits: readonly bigint[]): bigint[] {
  const out: bigint[] = []
  sequenceBits.forEach((word, k) => {
    for (let bit = 0n; bit < SEQUENCES_PER_WORD; bit++) {
      if (((word >> bit) & 1n) === 1n) out.push((firstWord + BigInt(k)) * SEQUENCES_PER_WORD + bit)
    }
  })
  return out
}
