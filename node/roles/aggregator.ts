/**
 * The aggregator role (DESIGN §5): counts each task's verified attestations, forms the quorum
 * certificate once the signers of one result hold the task's quorum (after a short grace
 * window, since on-chain cost grows with non-signers), gossips it and hands it to the
 * submitter; ends the task NoQuorum at its deadline otherwise. A valid certificate from
 * another aggregator settles the task here too, and is posted after a delay if the chain
 * still lacks it (a backup for an aggregator that died).
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { TaskAggregation } from '../../consensus/index.js'
import type { GossipRouter } from '../../protocols/gossip/index.js'
import { encodeQuorumCertificate, toHex, type Attestation, type QuorumCertificate } from '../../protocols/wire/index.js'
import type { NodeStore } from '../../storage/index.js'
import type { Epochs } from './epochs.js'
import type { NodeEvents } from './events.js'
import type { Submitter } from './submitter.js'
import { TASK_MEMORY_TTL_MS, type TaskBook, type TrackedTask } from './task-book.js'

const log = logger('poi:aggregator')

/**
 * How long an aggregator leaves a certificate it received (not formed) to the aggregator that
 * formed it, before posting it itself if the chain still lacks it: several seconds of a normal
 * submission, so races are rare.
 */
const BACKUP_SUBMISSION_DELAY_MS = 5_000
/** Tasks whose attestations may wait in memory for the task itself to arrive. */
const MAX_EARLY_TASKS = 256

export interface AggregatorComponents {
  /** Full nodes store what they count; a light node has no store. */
  store?: NodeStore
  submitter?: Submitter
  gossip: GossipRouter
  epochs: Epochs
  tasks: TaskBook
  events: NodeEvents
}

export interface AggregatorInit {
  /** How long aggregation goes on after the quorum is reached, for more signers. */
  graceMs: number
}

interface Aggregating {
  entry: TrackedTask
  aggregation: TaskAggregation
  graceTimer?: NodeJS.Timeout
  deadlineTimer?: NodeJS.Timeout
}

export class Aggregator implements Startable {
  private readonly open = new Map<string, Aggregating>()
  /** Attestations that arrived before their task. */
  private readonly early = new Map<string, { since: number, attestations: Attestation[] }>()
  private sweeper: NodeJS.Timeout | undefined

  constructor (private readonly components: AggregatorComponents, private readonly init: AggregatorInit) {
    components.tasks.onForget((id) => { this.close(id) })
  }

  start (): void {
    // Attestations for tasks that never arrived are kept one TTL at most.
    this.sweeper = setInterval(() => {
      const now = Date.now()
      for (const [id, entry] of this.early) if (now > entry.since + TASK_MEMORY_TTL_MS) this.early.delete(id)
    }, TASK_MEMORY_TTL_MS / 4)
    this.sweeper.unref()
  }

  stop (): void {
    clearInterval(this.sweeper)
    for (const id of [...this.open.keys()]) this.close(id)
  }

  /** Starts counting a task's attestations (and those that came before it), unless it is settled. */
  track (entry: TrackedTask): void {
    const id = toHex(entry.taskId)
    if (entry.settled || this.open.has(id)) return
    const state: Aggregating = {
      entry,
      aggregation: new TaskAggregation({ operatorSet: this.components.epochs.current, taskId: entry.taskId, quorumBps: entry.task.quorumBps, deadline: entry.deadline })
    }
    this.open.set(id, state)
    state.deadlineTimer = setTimeout(() => { void this.onDeadline(state) }, Math.max(0, entry.deadline - Date.now()))
    for (const att of this.early.get(id)?.attestations ?? []) this.count(state, att)
    this.early.delete(id)
  }

  /** A verified attestation (stored by the caller): counted now, or kept until its task arrives. */
  add (att: Attestation): void {
    const id = toHex(att.taskId)
    const state = this.open.get(id)
    if (state != null) {
      this.count(state, att)
      return
    }
    if (this.components.tasks.has(id)) return
    const entry = this.early.get(id) ?? { since: Date.now(), attestations: [] }
    // Bounded: valid signatures for tasks we never hear of cannot grow memory without limit.
    if (entry.attestations.length < this.components.epochs.current.operators.length * 2 && (this.early.has(id) || this.early.size < MAX_EARLY_TASKS)) {
      entry.attestations.push(att)
      this.early.set(id, entry)
    }
  }

  /** Someone else's valid certificate settles the task here too; posted later if the chain still lacks it. */
  async onCertificate (qc: QuorumCertificate): Promise<void> {
    const { store, submitter } = this.components
    this.close(toHex(qc.taskId))
    // Kept as a pending submission, posted only if the chain still lacks it after a while.
    await store?.putCertificate(qc, { submit: submitter != null })
    submitter?.kick('certificate', toHex(qc.taskId), BACKUP_SUBMISSION_DELAY_MS)
  }

  private count (state: Aggregating, att: Attestation): void {
    if (state.entry.settled) return
    if (state.aggregation.add(att, Date.now()).kind !== 'accepted') return
    const result = state.aggregation.quorumReached()
    if (result == null) return
    if (state.aggregation.allSigned(result)) {
      void this.finalize(state, result)
    } else if (state.graceTimer == null) {
      state.graceTimer = setTimeout(() => { void this.finalize(state, result) }, this.init.graceMs)
    }
  }

  private async finalize (state: Aggregating, result: Uint8Array): Promise<void> {
    const { store, submitter, gossip, events } = this.components
    const { entry } = state
    if (entry.settled) return
    entry.settled = true
    this.close(toHex(entry.taskId))
    if (store != null && await store.getCertificate(entry.taskId) != null) return
    // The grace window may have let another result overtake; take the best.
    const best = state.aggregation.quorumReached() ?? result
    const qc = state.aggregation.buildCertificate(best)
    await store?.putCertificate(qc, { submit: submitter != null })
    submitter?.kick('certificate', toHex(qc.taskId))
    log('task %s: certificate formed with %s stake', toHex(entry.taskId), qc.signedStake.length)
    events.safeDispatchEvent('certificate', { detail: { certificate: qc, formedHere: true, verifyMs: entry.verifyMs } })
    await gossip.publish('certificates', encodeQuorumCertificate(qc))
  }

  private async onDeadline (state: Aggregating): Promise<void> {
    const { store, events } = this.components
    const { entry } = state
    if (entry.settled) return
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
    clearTimeout(state.graceTimer)
    clearTimeout(state.deadlineTimer)
    this.open.delete(id)
  }
}

export function createAggregator (components: AggregatorComponents, init: AggregatorInit): Aggregator {
  return new Aggregator(components, init)
}
