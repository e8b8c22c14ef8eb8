/**
 * The first valid result each operator signed for each task, seen from gossip or signed here:
 * a repeat of it is a duplicate, a different one is equivocation, kept as slashing evidence
 * (stored, handed to the submitter when this node settles, and reported).
 *
 * Bounded (protocols/wire/bounds.ts, "tasks and attestations in memory"): only tasks the
 * TaskBook tracks have entries, kept without their inline outputs; they go when the book forgets
 * the task, or at the latest at the next sweep (every LEDGER_SWEEP_MS, on a write); past
 * MAX_LEDGER_FIRST_RESULTS the oldest task's entries go first.
 */
import { logger } from '@libp2p/logger'
import type { EquivocationEvidence } from '../../consensus/index.js'
import { LEDGER_SWEEP_MS, MAX_LEDGER_FIRST_RESULTS, toHex, type Attestation } from '../../protocols/wire/index.js'
import type { NodeStore } from '../../storage/index.js'
import type { NodeEvents } from './events.js'
import type { Submitter } from './submitter.js'
import type { TaskBook } from './task-book.js'

const log = logger('poi:equivocation')

export interface AttestationLedgerComponents {
  store?: NodeStore
  submitter?: Submitter
  events: NodeEvents
  tasks: Pick<TaskBook, 'has' | 'onForget'>
}

export interface AttestationLedgerInit {
  maxFirstResults?: number
  sweepMs?: number
}

export class AttestationLedger {
  /** Task id (hex) → operator index → its first valid attestation (without inline output), oldest task first. */
  private readonly first = new Map<string, Map<number, Attestation>>()
  private entries = 0
  private lastSweep = Date.now()
  private readonly maxFirstResults: number
  private readonly sweepMs: number

  constructor (private readonly components: AttestationLedgerComponents, init: AttestationLedgerInit = {}) {
    this.maxFirstResults = init.maxFirstResults ?? MAX_LEDGER_FIRST_RESULTS
    this.sweepMs = init.sweepMs ?? LEDGER_SWEEP_MS
    components.tasks.onForget((id) => { this.drop(id) })
  }

  /** First results remembered now (all tasks). */
  get size (): number { return this.entries }

  /** The result hash (hex) of the first valid attestation by `operatorIndex` for the task. */
  firstResult (taskId: Uint8Array, operatorIndex: number): string | undefined {
    const att = this.get(taskId, operatorIndex)
    return att == null ? undefined : toHex(att.resultHash)
  }

  /** The first valid attestation by `operatorIndex` for the task (task id as lowercase hex without 0x), if held here. */
  firstAttestation (taskIdHex: string, operatorIndex: number): Attestation | undefined {
    return this.first.get(taskIdHex)?.get(operatorIndex)
  }

  /** The first valid attestation of each operator for the task that this node holds (without inline outputs). */
  resultsOf (taskId: Uint8Array): Attestation[] {
    return [...(this.first.get(toHex(taskId))?.values() ?? [])]
  }

  /**
   * How a verified attestation relates to what this node saw before: the operator's first
   * result for the task ('new'), the same result again ('duplicate'), or a different one
   * ('equivocation'). Nothing is remembered: see remember() and recordEquivocation().
   */
  classify (att: Attestation): 'new' | 'duplicate' | 'equivocation' {
    const earlier = this.get(att.taskId, att.operatorIndex)
    if (earlier == null) return 'new'
    return toHex(earlier.resultHash) === toHex(att.resultHash) ? 'duplicate' : 'equivocation'
  }

  /**
   * Remembers `att` as its operator's first result for the task, unless one is known or the
   * TaskBook does not track the task (it was forgotten meanwhile: nothing would clear the entry).
   */
  remember (att: Attestation): void {
    const id = toHex(att.taskId)
    if (!this.components.tasks.has(id)) return
    this.sweep()
    let forTask = this.first.get(id)
    if (forTask == null) {
      forTask = new Map()
      this.first.set(id, forTask)
    }
    if (forTask.has(att.operatorIndex)) return
    // The inline output (up to 64 KiB) is not signed and no evidence needs it.
    forTask.set(att.operatorIndex, { ...att, output: new Uint8Array(0) })
    this.entries++
    for (const oldest of this.first.keys()) {
      if (this.entries <= this.maxFirstResults) break
      this.drop(oldest)
    }
  }

  /** Two signed results are evidence whether or not their outputs can be had: stored, submitted, reported. */
  async recordEquivocation (att: Attestation): Promise<void> {
    const earlier = this.get(att.taskId, att.operatorIndex)
    if (earlier != null) await this.record(earlier, att)
  }

  private get (taskId: Uint8Array, operatorIndex: number): Attestation | undefined {
    return this.first.get(toHex(taskId))?.get(operatorIndex)
  }

  private drop (id: string): void {
    const forTask = this.first.get(id)
    if (forTask == null) return
    this.entries -= forTask.size
    this.first.delete(id)
  }

  /** Drops the entries of tasks the TaskBook no longer tracks (a forget hook that ran before an entry was written). */
  private sweep (now = Date.now()): void {
    if (now < this.lastSweep + this.sweepMs) return
    this.lastSweep = now
    for (const id of [...this.first.keys()]) if (!this.components.tasks.has(id)) this.drop(id)
  }

  private async record (a: Attestation, b: Attestation): Promise<void> {
    const { store, submitter, events } = this.components
    const evidence: EquivocationEvidence = { taskId: a.taskId, operatorIndex: a.operatorIndex, epoch: a.epoch, a, b }
    log('operator %d equivocated on task %s: %s vs %s', a.operatorIndex, toHex(a.taskId), toHex(a.resultHash), toHex(b.resultHash))
    const id = await store?.putEvidence({ taskId: a.taskId, operatorIndex: a.operatorIndex, a, b }, { submit: submitter != null })
    if (id != null) submitter?.kick('evidence', id)
    events.safeDispatchEvent('evidence', { detail: evidence })
  }
}
