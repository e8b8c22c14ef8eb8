import { TypedEventEmitter } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { PoiError, type QuorumCertificate } from '../../protocols/wire/index.js'
import type { NodeStore, StoredEvidence, Submission, SubmissionKind } from '../../storage/index.js'

const log = logger('poi:submitter')

/** First retry after a failed transaction; doubles up to the cap. */
export const RETRY_BASE_MS = 500
export const RETRY_CAP_MS = 30_000
/** After this many failed attempts a submission is given up (kept in storage as moot, with its last error). */
export const MAX_ATTEMPTS = 12

export interface TxReceipt {
  txHash: `0x${string}`
  gasUsed: bigint
  /** false: mined, but another submitter's certificate had settled the task first. */
  accepted?: boolean
}

/**
 * A contract revert the chain will repeat every time (InvalidSignature,
 * StaleEpoch, AlreadySlashed, …): retrying cannot help.
 */
export class PermanentSubmissionError extends PoiError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_SUBMISSION_PERMANENT', message, options)
  }
}

/** What the submitter needs from the chain; the viem implementation lives in chain-client.ts. */
export interface SettlementChain {
  isCertified: (taskId: Uint8Array) => Promise<boolean>
  submitCertificate: (qc: QuorumCertificate) => Promise<TxReceipt>
  isSlashed: (evidence: StoredEvidence) => Promise<boolean>
  submitEvidence: (evidence: StoredEvidence) => Promise<TxReceipt>
}

export interface SubmitterEvents {
  confirmed: CustomEvent<Submission>
  moot: CustomEvent<Submission>
}

/**
 * Gets formed certificates and equivocation evidence on-chain exactly once
 * from this node's point of view: each is persisted as pending (with the QC
 * or evidence, in one batch) before anything is sent, retried with backoff,
 * dropped as moot when someone else got there first, and resumed after a
 * restart from storage.
 */
export class Submitter extends TypedEventEmitter<SubmitterEvents> {
  private readonly store: NodeStore
  private readonly chain: SettlementChain
  private readonly running = new Map<string, Promise<void>>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private stopped = false

  constructor (store: NodeStore, chain: SettlementChain) {
    super()
    this.store = store
    this.chain = chain
  }

  /** Picks up everything a previous run left pending. */
  async start (): Promise<number> {
    const pending = await this.store.listPendingSubmissions()
    for (const sub of pending) this.kick(sub.kind, sub.id)
    if (pending.length > 0) log('resuming %d pending submissions', pending.length)
    return pending.length
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    await Promise.allSettled([...this.running.values()])
  }

  /**
   * Call after the store holds the pending record (putCertificate/putEvidence
   * with submit); `delayMs` postpones the first attempt.
   */
  kick (kind: SubmissionKind, id: string, delayMs = 0): void {
    if (delayMs > 0) {
      const timer = setTimeout(() => { this.timers.delete(timer); this.kick(kind, id) }, delayMs)
      this.timers.add(timer)
      return
    }
    const key = `${kind}/${id}`
    if (this.stopped || this.running.has(key)) return
    const run = this.attempt(kind, id).finally(() => this.running.delete(key))
    this.running.set(key, run)
  }

  /** Resolves when nothing is in flight (tests and the devnet use it). */
  async idle (): Promise<void> {
    while (this.running.size > 0 || this.timers.size > 0) {
      await Promise.allSettled([...this.running.values()])
      if (this.timers.size > 0) await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  private async attempt (kind: SubmissionKind, id: string): Promise<void> {
    const sub = await this.store.getSubmission(kind, id)
    if (sub == null || sub.state !== 'pending' || this.stopped) return
    try {
      const receipt = kind === 'certificate' ? await this.submitCertificate(id) : await this.submitEvidence(id)
      if (receipt == null || receipt.accepted === false) {
        await this.finish({ ...sub, state: 'moot', updatedAt: Date.now(), lastError: 'already settled on-chain by someone else' }, 'moot')
      } else {
        await this.finish({ ...sub, state: 'confirmed', attempts: sub.attempts + 1, updatedAt: Date.now(), txHash: receipt.txHash, gasUsed: receipt.gasUsed.toString() }, 'confirmed')
      }
    } catch (err) {
      const message = (err as Error).message
      const attempts = sub.attempts + 1
      if (err instanceof PermanentSubmissionError || attempts >= MAX_ATTEMPTS) {
        log.error('%s %s given up after %d attempts: %s', kind, id, attempts, message)
        await this.finish({ ...sub, state: 'moot', attempts, updatedAt: Date.now(), lastError: message }, 'moot')
        return
      }
      await this.store.putSubmission({ ...sub, attempts, updatedAt: Date.now(), lastError: message })
      const delay = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (attempts - 1))
      log('%s %s failed (attempt %d), retrying in %d ms: %s', kind, id, attempts, delay, message)
      const timer = setTimeout(() => { this.timers.delete(timer); this.kick(kind, id) }, delay)
      this.timers.add(timer)
    }
  }

  private async submitCertificate (taskIdHex: string): Promise<TxReceipt | null> {
    const taskId = Uint8Array.from(Buffer.from(taskIdHex, 'hex'))
    if (await this.chain.isCertified(taskId)) return null
    const qc = await this.store.getCertificate(taskId)
    if (qc == null) throw new PermanentSubmissionError(`no certificate stored for task 0x${taskIdHex}`)
    return await this.chain.submitCertificate(qc)
  }

  private async submitEvidence (id: string): Promise<TxReceipt | null> {
    const [taskIdHex, op] = id.split('/')
    const evidence = await this.store.getEvidence(Uint8Array.from(Buffer.from(taskIdHex, 'hex')), Number(op))
    if (evidence == null) throw new PermanentSubmissionError(`no evidence stored for ${id}`)
    if (await this.chain.isSlashed(evidence)) return null
    return await this.chain.submitEvidence(evidence)
  }

  private async finish (sub: Submission, event: 'confirmed' | 'moot'): Promise<void> {
    await this.store.putSubmission(sub)
    log('%s %s %s%s', sub.kind, sub.id, event, sub.txHash != null ? ` in ${sub.txHash}` : '')
    this.safeDispatchEvent(event, { detail: sub })
  }
}
