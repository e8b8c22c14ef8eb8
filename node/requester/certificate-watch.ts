import { bytesEqual, type QuorumCertificate } from '../../protocols/wire/index.js'
import type { PoiNode } from '../poi-node.js'

/** How the wait for a task's certificate ended. */
export type CertificateOutcome =
  | { kind: 'certified', certificate: QuorumCertificate }
  /** The chain shows the task settled (see `pollSettled`), with no certificate seen here. */
  | { kind: 'settled' }
  /** This node (an aggregator) closed the task without quorum. */
  | { kind: 'no-quorum' }
  /** The task's deadline passed with neither. */
  | { kind: 'deadline' }
  | { kind: 'aborted', reason: unknown }

export interface CertificateWatch {
  /** Settles once, with the first outcome; never rejects. */
  readonly outcome: Promise<CertificateOutcome>
  /** Removes every listener and the timer. Idempotent; call it on every path out. */
  stop: () => void
}

export interface SettlementPoll {
  /** Whether the chain holds a result for the task; a throw (RPC down) counts as not yet. */
  settled: () => Promise<boolean>
  everyMs: number
}

/**
 * Listens for the certificate of `taskId` on `node`, from now until `deadline` (unix ms). It
 * starts before the task is announced so that no certificate can slip past, and everything it
 * adds to the node and the signal is removed by `stop` (or when the outcome is known), however
 * the request ends. With `poll`, it also asks the chain every `poll.everyMs` whether the task
 * settled, so a certificate no relay passes on is noticed long before the deadline.
 */
export function watchCertificate (node: PoiNode, taskId: Uint8Array, deadline: number, signal?: AbortSignal, poll?: SettlementPoll): CertificateWatch {
  let settle!: (outcome: CertificateOutcome) => void
  const outcome = new Promise<CertificateOutcome>(resolve => { settle = resolve })

  const onCertificate = (evt: CustomEvent<{ certificate: QuorumCertificate }>): void => {
    if (bytesEqual(evt.detail.certificate.taskId, taskId)) finish({ kind: 'certified', certificate: evt.detail.certificate })
  }
  const onNoQuorum = (evt: CustomEvent<{ taskId: Uint8Array }>): void => {
    if (bytesEqual(evt.detail.taskId, taskId)) finish({ kind: 'no-quorum' })
  }
  const onAbort = (): void => { finish({ kind: 'aborted', reason: signal?.reason }) }
  const timer = setTimeout(() => { finish({ kind: 'deadline' }) }, Math.max(0, deadline - Date.now()))
  let pollTimer: NodeJS.Timeout | undefined
  const schedulePoll = (): void => {
    if (poll === undefined || stopped) return
    pollTimer = setTimeout(() => {
      poll.settled().catch(() => false).then((settled) => {
        if (settled) finish({ kind: 'settled' })
        else schedulePoll()
      }, () => {})
    }, poll.everyMs)
  }

  let stopped = false
  const stop = (): void => {
    if (stopped) return
    stopped = true
    clearTimeout(timer)
    clearTimeout(pollTimer)
    node.removeEventListener('certificate', onCertificate)
    node.removeEventListener('no-quorum', onNoQuorum)
    signal?.removeEventListener('abort', onAbort)
  }
  function finish (result: CertificateOutcome): void {
    stop()
    settle(result)
  }

  node.addEventListener('certificate', onCertificate)
  node.addEventListener('no-quorum', onNoQuorum)
  if (signal?.aborted === true) onAbort()
  else signal?.addEventListener('abort', onAbort, { once: true })
  schedulePoll()
  return { outcome, stop }
}
