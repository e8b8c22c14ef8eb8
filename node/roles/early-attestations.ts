/**
 * Attestations that arrive before their task: their gossip verdict is held back (nothing
 * stored, relayed or signature-checked meanwhile) until the task is known here, then they are
 * validated as if they had just arrived; after a short TTL, or past a bound, they are ignored.
 * Holding the verdict, rather than ignoring at once and publishing again later, is what lets
 * them be relayed: gossipsub remembers every message id it saw for two minutes and refuses to
 * publish one again, while an accept reported within its message-cache window forwards the
 * message as usual (peers that already have it drop the duplicate by its content-hash id).
 *
 * Bounds (protocols/wire/bounds.ts, "tasks and attestations in memory"): waiting attestations in
 * total, per forwarding peer, per task (per operator of the set) and in bytes; each waits at most
 * EARLY_ATTESTATION_TTL_MS. Nothing here is verified, so the bounds hold against anyone.
 */
import {
  EARLY_ATTESTATIONS_PER_OPERATOR, EARLY_ATTESTATION_TTL_MS, MAX_EARLY_ATTESTATIONS, MAX_EARLY_ATTESTATIONS_PER_PEER,
  MAX_EARLY_ATTESTATION_BYTES
} from '../../protocols/wire/index.js'

export interface EarlyAttestationsInit {
  ttlMs?: number
  maxWaiting?: number
  maxWaitingPerPeer?: number
  perOperator?: number
  maxBytes?: number
}

interface Waiting {
  taskId: string
  from: string
  size: number
  timer: NodeJS.Timeout
  /** undefined: the task arrived; otherwise why the attestation stops waiting. */
  resolve: (why: string | undefined) => void
}

export class EarlyAttestations {
  /** Waiting attestations by task id (hex). Bounded by maxWaiting; each entry leaves within ttlMs. */
  private readonly byTask = new Map<string, Set<Waiting>>()
  /** How many wait per forwarding peer. Bounded by the number waiting. */
  private readonly perPeer = new Map<string, number>()
  private count = 0
  private totalBytes = 0
  private readonly bounds: Required<EarlyAttestationsInit>

  constructor (init: EarlyAttestationsInit = {}) {
    this.bounds = {
      ttlMs: init.ttlMs ?? EARLY_ATTESTATION_TTL_MS,
      maxWaiting: init.maxWaiting ?? MAX_EARLY_ATTESTATIONS,
      maxWaitingPerPeer: init.maxWaitingPerPeer ?? MAX_EARLY_ATTESTATIONS_PER_PEER,
      perOperator: init.perOperator ?? EARLY_ATTESTATIONS_PER_OPERATOR,
      maxBytes: init.maxBytes ?? MAX_EARLY_ATTESTATION_BYTES
    }
  }

  /** Attestations waiting now, and their bytes. */
  get size (): number { return this.count }
  get bytes (): number { return this.totalBytes }
  /** The most that may wait at once (for tests and metrics). */
  get maxWaiting (): number { return this.bounds.maxWaiting }
  get maxWaitingPerPeer (): number { return this.bounds.maxWaitingPerPeer }

  /**
   * Waits until `release(taskId)`: resolves undefined then, or with why it stopped waiting (a
   * bound reached, the TTL passed, the node stopping). `operators` sizes the per-task bound.
   */
  async wait (taskId: string, from: string, size: number, operators: number): Promise<string | undefined> {
    const { maxWaiting, maxWaitingPerPeer, perOperator, maxBytes, ttlMs } = this.bounds
    const forTask = this.byTask.get(taskId)
    if (this.count >= maxWaiting) return `task not known here, and ${maxWaiting} attestations already wait for their tasks`
    if ((this.perPeer.get(from) ?? 0) >= maxWaitingPerPeer) return `task not known here, and ${maxWaitingPerPeer} attestations from this peer already wait for their tasks`
    if ((forTask?.size ?? 0) >= perOperator * operators) return `task not known here, and ${perOperator * operators} attestations already wait for it`
    if (this.totalBytes + size > maxBytes) return `task not known here, and waiting attestations already hold ${this.totalBytes} bytes`
    return await new Promise<string | undefined>((resolve) => {
      const waiting: Waiting = {
        taskId,
        from,
        size,
        timer: setTimeout(() => { this.settle(waiting, `task not known here within ${ttlMs} ms`) }, ttlMs),
        resolve
      }
      waiting.timer.unref()
      let set = forTask
      if (set == null) {
        set = new Set()
        this.byTask.set(taskId, set)
      }
      set.add(waiting)
      this.perPeer.set(from, (this.perPeer.get(from) ?? 0) + 1)
      this.count++
      this.totalBytes += size
    })
  }

  /** The task is known now: every attestation waiting for it goes on to validation. */
  release (taskId: string): void {
    for (const waiting of [...this.byTask.get(taskId) ?? []]) this.settle(waiting, undefined)
  }

  /** Stops every wait (the node is stopping). */
  stop (): void {
    for (const set of [...this.byTask.values()]) for (const waiting of [...set]) this.settle(waiting, 'the node is stopping')
  }

  private settle (waiting: Waiting, why: string | undefined): void {
    const set = this.byTask.get(waiting.taskId)
    if (set == null || !set.delete(waiting)) return
    if (set.size === 0) this.byTask.delete(waiting.taskId)
    clearTimeout(waiting.timer)
    const left = (this.perPeer.get(waiting.from) ?? 1) - 1
    if (left <= 0) this.perPeer.delete(waiting.from)
    else this.perPeer.set(waiting.from, left)
    this.count--
    this.totalBytes -= waiting.size
    waiting.resolve(why)
  }
}
