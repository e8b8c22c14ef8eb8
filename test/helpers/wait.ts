/**
 * Waits with their own deadline and a message naming what did not happen, so a test that hangs
 * fails with "no certificate for task 0x12… within 20000 ms" instead of mocha's bare timeout.
 * Every deadline here must be shorter than the test's mocha timeout, or mocha's message wins.
 */
import type { PoiNodeEvents } from '../../node/poi-node.js'
import { PoiError } from '../../protocols/wire/index.js'

/** An awaited event or condition did not come in time. */
export class WaitTimeoutError extends PoiError {
  constructor (message: string) {
    super('ERR_WAIT_TIMEOUT', message)
  }
}

/** The detail of a PoiNode event, e.g. `{ certificate, formedHere }` for 'certificate'. */
export type PoiEventDetail<K extends keyof PoiNodeEvents> = PoiNodeEvents[K] extends CustomEvent<infer D> ? D : never

/** What waitForEvent listens on: a PoiNode, or anything that emits its events. */
export interface PoiEventSource {
  addEventListener: <K extends keyof PoiNodeEvents>(type: K, listener: (evt: PoiNodeEvents[K]) => void) => void
  removeEventListener: <K extends keyof PoiNodeEvents>(type: K, listener: (evt: PoiNodeEvents[K]) => void) => void
}

export interface WaitForEventOptions<D> {
  timeoutMs: number
  /** What is awaited, for the failure message: 'certificate for task 0x12…' reads "no certificate for task 0x12… within …". */
  what: string
  /** Only an event whose detail passes counts. */
  filter?: (detail: D) => boolean
}

/**
 * The detail of the next `type` event of `target` that passes `filter`; rejects with
 * WaitTimeoutError after `timeoutMs`. Call it before the action that causes the event and await
 * it after: the returned promise never counts as an unhandled rejection while it waits.
 */
export function waitForEvent<K extends keyof PoiNodeEvents> (
  target: PoiEventSource, type: K, options: WaitForEventOptions<PoiEventDetail<K>>
): Promise<PoiEventDetail<K>> {
  const { timeoutMs, what, filter } = options
  const waiting = new Promise<PoiEventDetail<K>>((resolve, reject) => {
    const listener = (evt: PoiNodeEvents[K]): void => {
      const detail = (evt as CustomEvent<PoiEventDetail<K>>).detail
      if (filter !== undefined && !filter(detail)) return
      done()
      resolve(detail)
    }
    const timer = setTimeout(() => { done(); reject(new WaitTimeoutError(`no ${what} within ${timeoutMs} ms`)) }, timeoutMs)
    // A wait nobody awaits any more (its test failed earlier) must not keep mocha from exiting.
    timer.unref()
    const done = (): void => {
      clearTimeout(timer)
      target.removeEventListener(type, listener)
    }
    target.addEventListener(type, listener)
  })
  waiting.catch(() => {})
  return waiting
}

/** Often enough that a wait adds no noticeable latency, rarely enough to cost nothing. */
const POLL_MS = 25

/**
 * Polls `cond` until it holds; rejects with WaitTimeoutError ("… waiting for `what`") after
 * `timeoutMs`. `what` may be a function, to name in the message what was seen instead.
 */
export async function until (cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string | (() => string)): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!await cond()) {
    if (Date.now() > end) throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`)
    await new Promise(resolve => setTimeout(resolve, POLL_MS))
  }
}

/**
 * Resolves true if `waiting` rejects with WaitTimeoutError, false if it resolves: for asserting
 * that something does NOT happen within a bounded wait.
 */
export async function timedOut (waiting: Promise<unknown>): Promise<boolean> {
  return await waiting.then(() => false, (err: unknown) => {
    if (err instanceof WaitTimeoutError) return true
    throw err
  })
}
