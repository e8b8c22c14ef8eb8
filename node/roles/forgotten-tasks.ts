/**
 * The ids of tasks the TaskBook forgot, remembered longer than the tasks themselves, so replays
 * of their tasks, attestations and certificates are ignored before any signature work (a task
 * forgotten here is unknown again, and its old messages would otherwise be checked, and its
 * attestations wait, as if new). Bounded: FORGOTTEN_TASK_MEMORY_MS and MAX_FORGOTTEN_TASK_IDS
 * (protocols/wire/bounds.ts), oldest dropped first, swept whenever an id is added.
 */
import { FORGOTTEN_TASK_MEMORY_MS, MAX_FORGOTTEN_TASK_IDS, toHex } from '../../protocols/wire/index.js'
import type { TaskBook } from './task-book.js'

export interface ForgottenTasksInit {
  memoryMs?: number
  maxIds?: number
}

export class ForgottenTasks {
  /** Task id (hex) → when it was forgotten, oldest first. Bounded by maxIds. */
  private readonly ids = new Map<string, number>()
  private readonly memoryMs: number
  private readonly maxIds: number

  constructor (tasks: Pick<TaskBook, 'onForget'>, init: ForgottenTasksInit = {}) {
    this.memoryMs = init.memoryMs ?? FORGOTTEN_TASK_MEMORY_MS
    this.maxIds = init.maxIds ?? MAX_FORGOTTEN_TASK_IDS
    tasks.onForget((id) => { this.add(id) })
  }

  get size (): number { return this.ids.size }

  /** Whether the task was forgotten here recently (its messages are replays). */
  has (taskId: Uint8Array | string): boolean {
    const at = this.ids.get(typeof taskId === 'string' ? taskId : toHex(taskId))
    return at !== undefined && Date.now() <= at + this.memoryMs
  }

  add (id: string, now = Date.now()): void {
    this.ids.delete(id)
    this.ids.set(id, now)
    for (const [old, at] of this.ids) {
      if (this.ids.size <= this.maxIds && now <= at + this.memoryMs) break
      this.ids.delete(old)
    }
  }
}
