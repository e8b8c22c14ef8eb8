/**
 * The aggregator role (DESIGN §5): counts each task's verified attestations, forms the quorum
 * certificate once the signers of one result hold the task's quorum (after a short grace
 * window, since on-chain cost grows with non-signers), gossips it and hands it to the
 * submitter; ends the task NoQuorum at its deadline otherwise. A valid certificate from
 * another aggregator settles the task here too, and is posted after a delay if the chain
 * still lacks it (a backup for an aggregator that died).
 *
 * Across restarts: at start it reloads the open tasks its store holds and their stored
 * attestations (signature-checked before they were stored, so trusted), and carries on as if
 * it had not stopped: it forms the certificate once the grace window ends, waits for more
 * attestations otherwise, and ends NoQuorum at the deadline.
 *
 * Backup mode (a relay-only full node): the same counting, but it forms a certificate only if
 * none has appeared BACKUP_AGGREGATION_DELAY_MS after the moment a primary aggregator would
 * have formed it, so no single process is on a certificate's path.
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { TaskAggregation, decodeSignerBitmap } from '../../consensus/index.js'
import type { GossipRouter } from '../../protocols/gossip/index.js'
import {
  MAX_RELOADED_RESULTS_PER_OPERATOR, MAX_RELOADED_TASKS, RELOAD_EXPIRED_WINDOW_MS, bytesToUint256, encodeQuorumCertificate, toHex,
  type Attestation, type QuorumCertificate, type TaskAnnouncement
} from '../../protocols/wire/index.js'
import type { NodeStore } from '../../storage/index.js'
import type { Epochs } from './epochs.js'
import type { NodeEvents } from './events.js'
import type { Submitter } from './submitter.js'
import type { TaskBook, TrackedTask } from './task-book.js'

const log = logger('poi:aggregator')

/**
 * How long an aggregator leaves a certificate it received (not formed) to the aggregator that
 * formed it, before posting it itself if the chain still lacks it: several seconds of a normal
 * submission, so races are rare.
 */
const BACKUP_SUBMISSION_DELAY_MS = 5_000
/**
 * How long a backup aggregator waits, after the moment a primary would have formed a task's
 * certificate (quorum plus the grace window, or every operator signed), before forming it
 * itself. A primary's certificate reaches every full node within a few gossip hops (tens of
 * ms on a LAN, up to about a second seen on the loaded 2-core test machine); 3 s leaves room
 * for that, so backups form only when no primary did, and stays far below task lifetimes
 * (tens of seconds to minutes). Fixed, not random: every backup that holds the quorum forms
 * at about the same time, and the certificates are equally valid (the chain takes the first).
 */
export const BACKUP_AGGREGATION_DELAY_MS = 3_000

export interface AggregatorComponents {
  /** Full nodes store what they count; a light node has no store. */
  store?: NodeStore
  submitter?: Submitter
  gossip: GossipRouter
  epochs: Epochs
  tasks: TaskBook
  events: NodeEvents
  /** The network's quorum (governed, read from the chain): certificates aim at max(task's, network's). */
  networkQuorum?: { readonly quorumBps: number | undefined }
}

export interface AggregatorInit {
  /** How long aggregation goes on after the quorum is reached, for more signers. */
  graceMs: number
  /**
   * Backup mode (relay-only full nodes): form a certificate only when none has appeared
   * BACKUP_AGGREGATION_DELAY_MS after a primary aggregator would have formed it.
   */
  backup?: boolean
}

interface Aggregating {
  entry: TrackedTask
  aggregation: TaskAggregation
  /** When the certificate is due to be formed (unix ms), once the quorum is there. */
  formAt?: number
  formTimer?: NodeJS.Timeout
  deadlineTimer?: NodeJS.Timeout
}

/** An open task read back from the store at start, with its stored attestations. */
interface Reloaded {
  taskId: Uint8Array
  task: TaskAnnouncement
  attestations: Attestation[]
}

export class Aggregator implements Startable {
  private readonly open = new Map<string, Aggregating>()

  constructor (private readonly components: AggregatorComponents, private readonly init: AggregatorInit) {
    components.tasks.onForget((id) => { this.close(id) })
  }

  async start (): Promise<void> {
    this.resume(await this.reload(Date.now()))
  }

  stop (): void {
    for (const id of [...this.open.keys()]) this.close(id)
  }

  /** Starts counting a task's attestations, unless it is settled. */
  track (entry: TrackedTask): void {
    this.begin(entry)
  }

  private begin (entry: TrackedTask): Aggregating | undefined {
    const id = toHex(entry.taskId)
    if (entry.settled) return undefined
    const open = this.open.get(id)
    if (open != null) return open
    const state: Aggregating = {
      entry,
      // the contract takes the larger of the task's quorum and the network's (TaskManager.quorumBps)
      aggregation: new TaskAggregation({
        operatorSet: this.components.epochs.current, taskId: entry.taskId, quorumBps: Math.max(entry.task.quorumBps, this.components.networkQuorum?.quorumBps ?? 0), deadline: entry.deadline
      })
    }
    this.open.set(id, state)
    state.deadlineTimer = setTimeout(() => { void this.onDeadline(state) }, Math.max(0, entry.deadline - Date.now()))
    return state
  }

  /**
   * The open tasks the store holds (no certificate, not ended NoQuorum, deadline not long
   * past), newest deadlines first and bounded, with their stored attestations. Only reads.
   */
  private async reload (now: number): Promise<Reloaded[]> {
    const { store } = this.components
    if (store == null) return []
    const open = await store.listOpenTasks({ deadlineAfter: now - RELOAD_EXPIRED_WINDOW_MS, limit: MAX_RELOADED_TASKS })
    const reloaded: Reloaded[] = []
    for (const { taskId, task } of open) {
      reloaded.push({ taskId, task, attestations: await store.getAttestations(taskId, { perOperator: MAX_RELOADED_RESULTS_PER_OPERATOR }) })
    }
    return reloaded
  }

  /**
   * Carries on with reloaded tasks. Synchronous on purpose: every decision (a certificate to
   * form, a NoQuorum to end) runs from a timer, after the node has started and its listeners
   * are attached. A task whose deadline passed while the node was down gets no counted
   * attestation (they are late) and ends NoQuorum at once.
   */
  private resume (reloaded: Reloaded[]): void {
    const { tasks, epochs } = this.components
    const now = Date.now()
    let counted = 0
    let otherEpoch = 0
    for (const { taskId, task, attestations } of reloaded) {
      const { entry } = tasks.track(taskId, task)
      const state = this.begin(entry)
      if (state == null) continue
      for (const att of attestations) {
        // Stored attestations of another epoch than the current set's do not count here.
        const kind = state.aggregation.add(att, now).kind
        if (kind === 'accepted') counted++
        if (kind === 'wrong-epoch') otherEpoch++
      }
      this.schedule(state, now, true)
    }
    if (reloaded.length > 0) {
      log('reloaded %d open tasks (at most %d) with %d attestations counted, %d of another epoch than %s not counted',
        reloaded.length, MAX_RELOADED_TASKS, counted, otherEpoch, epochs.current.epoch)
    }
  }

  /**
   * A verified attestation (stored by the caller) of a task being aggregated here: counted.
   * The relay hands over only attestations of tasks it tracks (those that come first wait in
   * its bounded early buffer, node/roles/early-attestations.ts); others are dropped.
   */
  add (att: Attestation): void {
    const state = this.open.get(toHex(att.taskId))
    if (state != null) this.count(state, att)
  }

  /** Someone else's valid certificate settles the task here too; posted later if the chain still lacks it. */
  async onCertificate (qc: QuorumCertificate): Promise<void> {
    const { store, submitter } = this.components
    this.close(toHex(qc.taskId))
    // A tab task settles only in a batch (issue 15): its certificate is never posted alone.
    const task = this.components.tasks.get(qc.taskId)?.task ?? await store?.getTask(qc.taskId)
    const single = submitter != null && task?.voucher == null
    // Kept as a pending submission, posted only if the chain still lacks it after a while.
    await store?.putCertificate(qc, { submit: single })
    if (single) submitter?.kick('certificate', toHex(qc.taskId), BACKUP_SUBMISSION_DELAY_MS)
  }

  private count (state: Aggregating, att: Attestation): void {
    if (state.entry.settled) return
    if (state.aggregation.add(att, Date.now()).kind !== 'accepted') return
    this.schedule(state, Date.now(), false)
  }

  /**
   * Once the quorum is there, sets when the certificate is formed: after the grace window, at
   * once when every operator signed; a backup adds BACKUP_AGGREGATION_DELAY_MS. A due time only
   * moves earlier (the last operator's signature ends the window). `deferred` forms from a timer
   * even when due now (reloading at start).
   */
  private schedule (state: Aggregating, now: number, deferred: boolean): void {
    if (state.entry.settled) return
    const result = state.aggregation.quorumReached()
    if (result == null) return
    const wait = (state.aggregation.allSigned(result) ? 0 : this.init.graceMs) + (this.init.backup === true ? BACKUP_AGGREGATION_DELAY_MS : 0)
    const at = now + wait
    if (state.formAt !== undefined && state.formAt <= at) return
    clearTimeout(state.formTimer)
    state.formAt = at
    state.formTimer = undefined
    if (wait === 0 && !deferred) {
      void this.finalize(state)
      return
    }
    state.formTimer = setTimeout(() => { void this.finalize(state) }, wait)
  }

  private async finalize (state: Aggregating): Promise<void> {
    const { store, submitter, gossip, events } = this.components
    const { entry } = state
    if (entry.settled) return
    // The grace window may have let another result overtake, or an equivocation remove a
    // signer: take the heaviest quorum now, if there still is one.
    const best = state.aggregation.quorumReached()
    if (best == null) {
      state.formAt = undefined
      state.formTimer = undefined
      return
    }
    entry.settled = true
    this.close(toHex(entry.taskId))
    if (store != null && await store.getCertificate(entry.taskId) != null) return
    const qc = state.aggregation.buildCertificate(best)
    // A tab task settles only in a batch (issue 15, node/roles/batcher.ts): no single submission.
    const single = submitter != null && entry.task.voucher == null
    await store?.putCertificate(qc, { submit: single })
    if (single) submitter?.kick('certificate', toHex(qc.taskId))
    const signers = decodeSignerBitmap(qc.signerBitmap, state.aggregation.operatorSet.operators.length)
    log('task %s: certificate formed%s with %s of %s stake by %d signers', toHex(entry.taskId), this.init.backup === true ? ' (as backup)' : '',
      bytesToUint256(qc.signedStake), bytesToUint256(qc.totalStake), signers.ok ? signers.signers.length : 0)
    events.safeDispatchEvent('certificate', { detail: { certificate: qc, formedHere: true, verifyMs: entry.verifyMs } })
    await gossip.publish('certificates', encodeQuorumCertificate(qc))
  }

  private async onDeadline (state: Aggregating): Promise<void> {
    const { store, events } = this.components
    const { entry } = state
    if (entry.settled) return
    if (state.aggregation.quorumReached() != null) {
      // The quorum came in time but the deadline cut the grace window short: form it now. A
      // backup keeps its delay, for a primary's certificate may be on its way.
      if (this.init.backup === true && state.formTimer != null) return
      await this.finalize(state)
      return
    }
    entry.settled = true
    this.close(toHex(entry.taskId))
    if (store != null && await store.getCertificate(entry.taskId) != null) return
    log('task %s: no quorum by the deadline', toHex(entry.taskId))
    await store?.setTaskState(entry.taskId, 'no-quorum', 'deadline passed without quorum')
    events.safeDispatchEvent('no-quorum', { detail: { taskId: entry.taskId } })
  }

  /** Stops counting a task: its timers are cleared and its aggregation dropped. */
  private close (id: string): void {
    const state = this.open.get(id)
    if (state == null) return
    clearTimeout(state.formTimer)
    clearTimeout(state.deadlineTimer)
    this.open.delete(id)
  }
}

export function createAggregator (components: AggregatorComponents, init: AggregatorInit): Aggregator {
  return new Aggregator(components, init)
}
