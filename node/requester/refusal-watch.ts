/**
 * While a task waits for its certificate: asks the connected full nodes over /poi/result/1/
 * whether they refused it, so a refused task fails within seconds (TaskRefusedError) instead
 * of at its deadline. Only connected peers that serve /poi/result/1/ are asked, at most
 * RESULT_LOOKUP_PEERS at a time; an answer other than REFUSED, or none, is no news.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import { RESULT_PROTOCOL, fetchResult } from '../../protocols/result/index.js'
import { to0xHex } from '../../protocols/wire/index.js'
import type { PoiNode } from '../poi-node.js'
import { REFUSAL_FIRST_CHECK_MS, REFUSAL_POLL_MS, RESULT_LOOKUP_PEERS, RESULT_LOOKUP_TIMEOUT_MS } from './constants.js'
import { TaskRefusedError } from './errors.js'
import { connectedPeersServing } from './network-wait.js'

const log = logger('poi:requester')

export interface RefusalWatch {
  /** Resolves with the first refusal a connected full node reports; never rejects, never settles once stopped. */
  refused: Promise<TaskRefusedError>
  stop: () => void
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

  const schedule = (ms: number): void => {
    if (stopper.signal.aborted) return
    timer = setTimeout(() => {
      ask().then((refusal) => {
        if (stopper.signal.aborted) return
        if (refusal !== undefined) report(refusal)
        else schedule(REFUSAL_POLL_MS)
      }, () => { schedule(REFUSAL_POLL_MS) })
    }, ms)
  }
  schedule(REFUSAL_FIRST_CHECK_MS)

  return {
    refused,
    stop: () => {
      clearTimeout(timer)
      stopper.abort()
    }
  }
}
