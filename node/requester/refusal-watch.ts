/**
 * While a task waits for its certificate: asks the connected full nodes over /poi/result/1/
 * whether they refused it, so a refused task fails within seconds (TaskRefusedError) instead
 * of at its deadline. Only connected peers that serve /poi/result/1/ are asked, at most
 * RESULT_LOOKUP_PEERS at a time; an answer other than REFUSED, or none, is no news. Asks back
 * off (refusalPollDelay) and share one budget per node (REFUSAL_ASKS_IN_FLIGHT), so many pending
 * tasks do not flood the full nodes with asks.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import { RESULT_PROTOCOL, fetchResult } from '../../protocols/result/index.js'
import { to0xHex } from '../../protocols/wire/index.js'
import type { PoiNode } from '../poi-node.js'
import { REFUSAL_ASKS_IN_FLIGHT, REFUSAL_FIRST_CHECK_MS, REFUSAL_POLL_MAX_MS, REFUSAL_POLL_MS, RESULT_LOOKUP_PEERS, RESULT_LOOKUP_TIMEOUT_MS } from './constants.js'
import { TaskRefusedError } from './errors.js'
import { connectedPeersServing } from './network-wait.js'

const log = logger('poi:requester')

export interface RefusalWatch {
  /** Resolves with the first refusal a connected full node reports; never rejects, never settles once stopped. */
  refused: Promise<TaskRefusedError>
  stop: () => void
}

/** The wait before ask number `attempt` (0 is the first): REFUSAL_FIRST_CHECK_MS, then REFUSAL_POLL_MS doubling up to REFUSAL_POLL_MAX_MS. */
export function refusalPollDelay (attempt: number): number {
  if (attempt <= 0) return REFUSAL_FIRST_CHECK_MS
  return Math.min(REFUSAL_POLL_MAX_MS, REFUSAL_POLL_MS * 2 ** Math.min(attempt - 1, 16))
}

/** A count of asks in flight, shared by every watch on one node. */
export class AskBudget {
  private inFlight = 0
  constructor (readonly limit: number) {}
  /** Takes one ask's place if there is one. */
  tryTake (): boolean {
    if (this.inFlight >= this.limit) return false
    this.inFlight++
    return true
  }

  release (): void {
    this.inFlight = Math.max(0, this.inFlight - 1)
  }

  get busy (): number { return this.inFlight }
}

const budgets = new WeakMap<PoiNode, AskBudget>()
function budgetOf (node: PoiNode): AskBudget {
  let budget = budgets.get(node)
  if (budget === undefined) {
    budget = new AskBudget(REFUSAL_ASKS_IN_FLIGHT)
    budgets.set(node, budget)
  }
  return budget
}

export function watchRefusal (node: PoiNode, taskId: Uint8Array): RefusalWatch {
  const stopper = new AbortController()
  let timer: NodeJS.Timeout | undefined
  let report: (err: TaskRefusedError) => void = () => {}
  const refused = new Promise<TaskRefusedError>((resolve) => { report = resolve })

  const ask = async (): Promise<TaskRefusedError | undefined> => {
    const peers = await connectedPeersServing(node, RESULT_PROTOCOL, RESULT_LOOKUP_PEERS)
    const answers = await Promise.all(peers.map(async (peer) => {
      try {
        const answer = await fetchResult(node.libp2p, peerIdFromString(peer), taskId, { signal: stopper.signal, timeoutMs: RESULT_LOOKUP_TIMEOUT_MS })
        return answer.status === 'refused' ? new TaskRefusedError(taskId, peer, answer.reason) : undefined
      } catch (err) {
        log('asking %s whether it refused task %s: %s', peer, to0xHex(taskId), (err as Error).message)
        return undefined
      }
    }))
    return answers.find(a => a !== undefined)
  }

  const budget = budgetOf(node)
  let attempt = 0
  const schedule = (): void => {
    if (stopper.signal.aborted) return
    timer = setTimeout(() => {
      attempt++
      if (!budget.tryTake()) {
        schedule()
        return
      }
      ask().finally(() => { budget.release() }).then((refusal) => {
        if (stopper.signal.aborted) return
        if (refusal !== undefined) report(refusal)
        else schedule()
      }, () => { schedule() })
    }, refusalPollDelay(attempt))
  }
  schedule()

  return {
    refused,
    stop: () => {
      clearTimeout(timer)
      stopper.abort()
    }
  }
}
