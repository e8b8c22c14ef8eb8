/**
 * The first valid result each operator signed for each task, seen from gossip or signed here:
 * a repeat of it is a duplicate, a different one is equivocation, kept as slashing evidence
 * (stored, handed to the submitter when this node settles, and reported).
 */
import { logger } from '@libp2p/logger'
import type { EquivocationEvidence } from '../../consensus/index.js'
import { toHex, type Attestation } from '../../protocols/wire/index.js'
import type { NodeStore } from '../../storage/index.js'
import type { NodeEvents } from './events.js'
import type { Submitter } from './submitter.js'
import type { TaskBook } from './task-book.js'

const log = logger('poi:equivocation')

export interface AttestationLedgerComponents {
  store?: NodeStore
  submitter?: Submitter
  events: NodeEvents
  tasks: TaskBook
}

export class AttestationLedger {
  /** `${taskId hex}/${operator}` → the first valid attestation. */
  private readonly first = new Map<string, Attestation>()

  constructor (private readonly components: AttestationLedgerComponents) {
    components.tasks.onForget((id) => {
      for (const key of this.first.keys()) if (key.startsWith(id)) this.first.delete(key)
    })
  }

  /** The result hash (hex) of the first valid attestation by `operatorIndex` for the task. */
  firstResult (taskId: Uint8Array, operatorIndex: number): string | undefined {
    const att = this.first.get(keyOf(taskId, operatorIndex))
    return att == null ? undefined : toHex(att.resultHash)
  }

  /**
   * How a verified attestation relates to what this node saw before: the operator's first
   * result for the task ('new'), the same result again ('duplicate'), or a different one
   * ('equivocation'). Nothing is remembered: see remember() and recordEquivocation().
   */
  classify (att: Attestation): 'new' | 'duplicate' | 'equivocation' {
    const earlier = this.first.get(keyOf(att.taskId, att.operatorIndex))
    if (earlier == null) return 'new'
    return toHex(earlier.resultHash) === toHex(att.resultHash) ? 'duplicate' : 'equivocation'
  }

  /** Remembers `att` as its operator's first result for the task, unless one is known. */
  remember (att: Attestation): void {
    const key = keyOf(att.taskId, att.operatorIndex)
    if (!this.first.has(key)) this.first.set(key, att)
  }

  /** Two signed results are evidence whether or not their outputs can be had: stored, submitted, reported. */
  async recordEquivocation (att: Attestation): Promise<void> {
    const earlier = this.first.get(keyOf(att.taskId, att.operatorIndex))
    if (earlier != null) await this.record(earlier, att)
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

function keyOf (taskId: Uint8Array, operatorIndex: number): string {
  return `${toHex(taskId)}/${operatorIndex}`
}
