import { PoiError } from '../../protocols/wire/index.js'
import type { EventOf, PoiEvent, PoiEventName } from './events.js'

/** An awaited event did not come in time. */
export class EventTimeoutError extends PoiError {
  constructor (message: string) {
    super('ERR_EVENT_TIMEOUT', message)
  }
}

interface Waiter {
  pred: (e: PoiEvent) => boolean
  resolve: (e: PoiEvent) => void
  reject: (err: Error) => void
  what: string
}

/**
 * The events a node has reported so far, and waits for the next ones. A wait resolves with the
 * first matching event, seen already or to come, and rejects after its own timeout with a
 * message naming the node and what did not happen, or as soon as the source is closed (the
 * process exited).
 */
export class EventLog {
  readonly name: string
  readonly events: PoiEvent[] = []
  /** Appended to a timeout message, e.g. `see /tmp/x/operator-0.log`. */
  private readonly hint: string
  private readonly waiters = new Set<Waiter>()
  private closedBy: ((what: string) => Error) | undefined

  constructor (name: string, hint = '') {
    this.name = name
    this.hint = hint
  }

  push (event: PoiEvent): void {
    this.events.push(event)
    for (const w of this.waiters) {
      if (w.pred(event)) w.resolve(event)
    }
  }

  /** No event will come any more: every wait, now or later, fails with `reason(what)`. */
  close (reason: (what: string) => Error): void {
    this.closedBy = reason
    for (const w of this.waiters) w.reject(reason(w.what))
  }

  get closed (): boolean { return this.closedBy !== undefined }

  /**
   * The first event (already seen or to come) that matches. `what` names it for the failure
   * message: "operator-0: no certificate event for task 0x12… within 10000 ms".
   */
  async waitFor (pred: (e: PoiEvent) => boolean, timeoutMs: number, what: string): Promise<PoiEvent> {
    const seen = this.events.find(pred)
    if (seen !== undefined) return seen
    if (this.closedBy !== undefined) throw this.closedBy(what)
    return await new Promise<PoiEvent>((resolve, reject) => {
      const w: Waiter = {
        pred,
        what,
        resolve: (e) => { done(); resolve(e) },
        reject: (err) => { done(); reject(err) }
      }
      const timer = setTimeout(() => {
        w.reject(new EventTimeoutError(`${this.name}: no ${what} within ${timeoutMs} ms${this.hint !== '' ? `; ${this.hint}` : ''}`))
      }, timeoutMs)
      const done = (): void => { clearTimeout(timer); this.waiters.delete(w) }
      this.waiters.add(w)
    })
  }

  /** The first `name` event (already seen or to come) that `match` accepts, typed by its name. */
  async waitForEvent<K extends PoiEventName> (name: K, match: (e: EventOf<K>) => boolean, timeoutMs: number, what: string): Promise<EventOf<K>> {
    return await this.waitFor((e) => e.event === name && match(e as EventOf<K>), timeoutMs, what) as EventOf<K>
  }

  /** The latest `name` event so far. */
  last<K extends PoiEventName> (name: K): EventOf<K> | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i]
      if (e.event === name) return e as EventOf<K>
    }
    return undefined
  }
}
