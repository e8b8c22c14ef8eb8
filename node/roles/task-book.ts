/**
 * The tasks this node is tracking in memory: announced here or accepted from gossip, until a
 * while after their deadline (they stay in storage). Services that keep per-task state forget
 * it when the book does.
 */
import type { Startable } from '@libp2p/interface'
import { toHex, type TaskAnnouncement } from '../../protocols/wire/index.js'

/** Forget a task's in-memory state this long after its deadline (it stays in storage). */
export const TASK_MEMORY_TTL_MS = 60_000

export interface TrackedTask {
  taskId: Uint8Array
  task: TaskAnnouncement
  deadline: number
  /** A valid certificate for the task is known here. */
  settled: boolean
  /** The longest signature check among the task's attestations (aggregators report it). */
  verifyMs: number
}

export class TaskBook implements Startable {
  private readonly tasks = new Map<string, TrackedTask>()
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
    const entry: TrackedTask = { taskId, task, deadline: Number(task.deadline), settled, verifyMs: 0 }
    this.tasks.set(id, entry)
    return { entry, added: true }
  }

  get (taskId: Uint8Array | string): TrackedTask | undefined {
    return this.tasks.get(typeof taskId === 'string' ? taskId : toHex(taskId))
  }

  has (taskId: Uint8Array | string): boolean {
    return this.get(taskId) != null
  }

  /** Calls `hook` with each task's id (hex) when the book forgets it. */
  onForget (hook: (id: string, task: TrackedTask) => void): void {
    this.forgetHooks.push(hook)
  }

  private sweep (now: number): void {
    for (const [id, entry] of this.tasks) {
      if (now <= entry.deadline + TASK_MEMORY_TTL_MS) continue
      this.tasks.delete(id)
      for (const hook of this.forgetHooks) hook(id, entry)
    }
  }
}
