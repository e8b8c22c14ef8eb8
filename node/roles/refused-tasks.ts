/**
 * Why this node refused tasks it never tracked (a model it does not allow, a deposit that does
 * not cover the fee, a deadline too far out, an input it could not fetch), so a requester that
 * asks over /poi/result/1/ learns the reason within seconds instead of at its deadline.
 * Duplicates are not refusals and are never recorded; a task tracked later is forgotten here.
 * Bounded: REFUSED_TASK_MEMORY_MS and MAX_REFUSED_TASKS (protocols/wire/bounds.ts), oldest
 * dropped first, swept whenever a refusal is added.
 */
import { MAX_REFUSED_TASKS, REFUSED_TASK_MEMORY_MS, toHex } from '../../protocols/wire/index.js'
import type { RefusalSource } from '../../protocols/result/index.js'

export interface RefusedTasksInit {
  memoryMs?: number
  maxTasks?: number
}

export class RefusedTasks implements RefusalSource {
  /** Task id (hex) → why and when it was refused, oldest first. Bounded by maxTasks. */
  private readonly refusals = new Map<string, { reason: string, at: number }>()
  private readonly memoryMs: number
  private readonly maxTasks: number

  constructor (init: RefusedTasksInit = {}) {
    this.memoryMs = init.memoryMs ?? REFUSED_TASK_MEMORY_MS
    this.maxTasks = init.maxTasks ?? MAX_REFUSED_TASKS
  }

  get size (): number { return this.refusals.size }

  refusalOf (taskId: Uint8Array | string): string | undefined {
    const entry = this.refusals.get(typeof taskId === 'string' ? taskId : toHex(taskId))
    return entry !== undefined && Date.now() <= entry.at + this.memoryMs ? entry.reason : undefined
  }

  add (taskId: Uint8Array | string, reason: string, now = Date.now()): void {
    const id = typeof taskId === 'string' ? taskId : toHex(taskId)
    this.refusals.delete(id)
    this.refusals.set(id, { reason, at: now })
    for (const [old, { at }] of this.refusals) {
      if (this.refusals.size <= this.maxTasks && now <= at + this.memoryMs) break
      this.refusals.delete(old)
    }
  }

  /** The task was accepted after all (e.g. from another peer, or once the registry allowed it). */
  delete (taskId: Uint8Array | string): void {
    this.refusals.delete(typeof taskId === 'string' ? taskId : toHex(taskId))
  }
}
