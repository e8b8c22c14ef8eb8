/**
 * The two ways the requester waits on a caller's AbortSignal: a sleep that ends early on abort,
 * and a race of a promise against the signal. Both remove what they added to the signal and
 * clear their timer however they end, so a long-lived signal collects no listeners.
 */
import { RequestAbortedError } from './errors.js'

/** Throws RequestAbortedError if `signal` has already fired. */
export function throwIfAborted (signal: AbortSignal | undefined, during: string): void {
  if (signal?.aborted === true) throw new RequestAbortedError(during, signal.reason)
}

/** Resolves after `ms`, or at once when `signal` fires (the caller checks it afterwards). */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return
  await new Promise<void>(resolve => {
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/**
 * Settles like `promise`, or rejects with RequestAbortedError when `signal` fires first. The
 * work behind `promise` is not cancelled (the node's own calls take no signal); only the
 * caller stops waiting for it.
 */
export async function raceAbort<T> (promise: Promise<T>, signal: AbortSignal | undefined, during: string): Promise<T> {
  if (signal === undefined) return await promise
  throwIfAborted(signal, during)
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        onAbort = () => { reject(new RequestAbortedError(during, signal.reason)) }
        signal.addEventListener('abort', onAbort, { once: true })
      })
    ])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}
