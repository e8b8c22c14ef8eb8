/**
 * The tasks this node is tracking in memory: announced here or accepted from gossip, until a
 * while after their deadline (they stay in storage). Services that keep per-task state forget
 * it when the book does.
 */
import type { Startable } from '@libp2p/interface'
import { MAX_UNTRACKED_VERIFY_TIMINGS, toHex, type TaskAnnouncement } from '../../protocols/wire/index.js'

/** Forget a task's in-memory state this long after its deadline (it stays in storage). */
export const TASK_MEMORY_TTL_MS = 60_000

export interface TrackedTask {
  taskId: Uint8Array
  task: TaskAnnouncement
  deadline: number
  /** A valid certificate for the task is known here. */
  settled: boolean
  /**
   * The longest signature check among the task's attestations checked by this process
   * (aggregators report it); undefined while none was (only reloaded or own attestations).
   */
  verifyMs?: number
}

export class TaskBook implements Startable {
  private readonly tasks = new Map<string, TrackedTask>()
  /** Signature-check times of attestations whose task is not tracked yet: `since` for the sweep. */
  private readonly untrackedVerifyMs = new Map<string, { ms: number, since: number }>()
  private readonly forgetHooks: Array<(id: string, task: TrackedTask) => void> = []
  private sweeper: NodeJS.Timeout | undefined

  start (): void {
    this.sweeper = setInterval(() => { this.sweep(Date.now()) }, TASK_MEMORY_TTL_MS / 4)
    this.sweeper.unref()
  }

  stop (): void {
    clearInterval(this.sweeper)
  }

  /** Tracks a task (once); returns its entry and whether it is new. */
  track (taskId: Uint8Array, task: TaskAnnouncement, settled = false): { entry: TrackedTask, added: boolean } {
    const id = toHex(taskId)
    const existing = this.tasks.get(id)
    if (existing != null) return { entry: existing, added: false }
    const entry: TrackedTask = { taskId, task, deadline: Number(task.deadline), settled, verifyMs: this.untrackedVerifyMs.get(id)?.ms }
    this.untrackedVerifyMs.delete(id)
    this.tasks.set(id, entry)
    return { entry, added: true }
  }

  /** Tasks tracked now. */
  get size (): number {
    return this.tasks.size
  }

  get (taskId: Uint8Array | string): TrackedTask | undefined {
    return this.tasks.get(typeof taskId === 'string' ? taskId : toHex(taskId))
  }

  has (taskId: Uint8Array | string): boolean {
    return this.get(taskId) != null
  }

  /**
   * Records how long checking one attestation's signature took. An attestation may be checked
   * before its task arrives (it outran the task through another peer): its time is kept until
   * the task is tracked, so the aggregator reports the real longest check, not 0.
   */
  noteVerification (taskId: Uint8Array, ms: number): void {
    const id = toHex(taskId)
    const entry = this.tasks.get(id)
    if (entry != null) {
      entry.verifyMs = Math.max(entry.verifyMs ?? 0, ms)
      return
    }
    const pending = this.untrackedVerifyMs.get(id)
    if (pending != null) pending.ms = Math.max(pending.ms, ms)
    else if (this.untrackedVerifyMs.size < MAX_UNTRACKED_VERIFY_TIMINGS) this.untrackedVerifyMs.set(id, { ms, since: Date.now() })
  }

  /** Calls `hook` with each task's id (hex) when the book forgets it. */
  onForget (hook: (id: string, task: TrackedTask) => void): void {
    this.forgetHooks.push(hook)
  }

  private sweep (now: number): void {
    for (const [id, pending] of this.untrackedVerifyMs) if (now > pending.since + TASK_MEMORY_TTL_MS) this.untrackedVerifyMs.delete(id)
    for (const [id, entry] of this.tasks) {
      if (now <= entry.deadline + TASK_MEMORY_TTL_MS) continue
      this.tasks.delete(id)
      for (const hook of this.forgetHooks) hook(id, entry)
    }
  }
}
