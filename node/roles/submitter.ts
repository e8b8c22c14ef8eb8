import { TypedEventEmitter } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { BatchQuorumCertificate, BatchSummary } from '../../consensus/index.js'
import { outputRefOf } from '../../protocols/gossip/index.js'
import { PoiError, decodeZkProofBody, fieldElementOf, toHex, type QuorumCertificate, type TaskAnnouncement, type ZkProofBody } from '../../protocols/wire/index.js'
import type { NodeStore, StoredConflict, StoredEvidence, Submission, SubmissionKind } from '../../storage/index.js'

const log = logger('poi:submitter')

/** First retry after a failed attempt; doubles up to the cap. */
export const RETRY_BASE_MS = 500
/**
 * The longest wait between two attempts. There is no last attempt: a submission ends only when
 * the chain holds it (from us or another account) or the contract refuses it by name, so an RPC
 * outage of any length costs at most this much delay after it ends.
 */
export const RETRY_CAP_MS = 30_000

export interface TxReceipt {
  txHash: `0x${string}`
  gasUsed: bigint
  /** false: mined, but it did not settle the task (another account's transaction came first). */
  accepted?: boolean
}

/** Who put a task's result (or an operator's slash) on-chain, read from the contract's event. */
export interface Settlement {
  /** The account that sent the settling transaction (CertificateAccepted.submitter, EquivocationSlashed.reporter). */
  by: `0x${string}`
  txHash: `0x${string}`
  gasUsed?: bigint
  /** Certificates: the result hash the chain holds. */
  resultHash?: `0x${string}`
}

/**
 * A contract revert the chain will repeat every time (InvalidSignature, StaleEpoch, …), or a
 * submission whose data is gone: retrying cannot help. `revert` names the custom error.
 */
export class PermanentSubmissionError extends PoiError {
  readonly revert: string | undefined

  constructor (message: string, options?: { cause?: unknown, revert?: string }) {
    super('ERR_SUBMISSION_PERMANENT', message, options)
    this.revert = options?.revert
  }
}

/** Our transaction was mined, yet the chain holds no result for the task (replaced, or reverted): send again. */
export class SubmissionNotSettledError extends PoiError {
  constructor (kind: SubmissionKind, id: string, txHash: string) {
    super('ERR_SUBMISSION_NOT_SETTLED', `${kind} ${id}: transaction ${txHash} was mined but the chain holds no settlement for it; sending again`)
  }
}

export interface SubmitOptions {
  /** Aborts waiting for the receipt (the submitter stopping); the transaction may still land. */
  signal?: AbortSignal
}

/** What the submitter needs from the chain; the viem implementation lives in chain-client.ts. */
export interface SettlementChain {
  /** The account this node sends from: a settlement `by` it is this node's own. */
  readonly account: `0x${string}` | undefined
  /** Who settled the task, or undefined while the chain holds no result for it. */
  certificateSettlement: (taskId: Uint8Array) => Promise<Settlement | undefined>
  /** Sends `qc` with `task`, the signed task it certifies (the contract charges its fee); undefined when the simulation shows the task already settled (nothing sent). */
  submitCertificate: (qc: QuorumCertificate, task: TaskAnnouncement, options?: SubmitOptions) => Promise<TxReceipt | undefined>
  /** Who slashed the operator for this task, or undefined while it is not slashed. */
  evidenceSettlement: (evidence: StoredEvidence) => Promise<Settlement | undefined>
  submitEvidence: (evidence: StoredEvidence, options?: SubmitOptions) => Promise<TxReceipt>
  /**
   * Who slashed the operators a conflict accuses for its task, or undefined while one of them is
   * not slashed yet (posting it then takes the rest).
   */
  conflictSettlement: (conflict: StoredConflict) => Promise<Settlement | undefined>
  /** Posts conflicting certificates (or a certificate and an attestation): SlashingManager slashes every operator they accuse. */
  submitConflict: (conflict: StoredConflict, options?: SubmitOptions) => Promise<TxReceipt>
  /** Who put a zk task's result on chain, or undefined while it has none (issue 16; chains whose client settles zk results). */
  zkSettlement?: (taskId: Uint8Array) => Promise<Settlement | undefined>
  /** Sends TaskManager.submitZkResult; undefined when the simulation shows the task already settled (nothing sent). */
  submitZkResult?: (task: TaskAnnouncement, result: ZkResultSubmission, options?: SubmitOptions) => Promise<TxReceipt | undefined>
}

/** A zk task's result as TaskManager.submitZkResult takes it, from a valid proof announcement (the circuit id is the registry's). */
export interface ZkResultSubmission {
  taskId: Uint8Array
  proof: { a: readonly [bigint, bigint], b: readonly [readonly [bigint, bigint], readonly [bigint, bigint]], c: readonly [bigint, bigint] }
  outputCommitment: bigint
  /** keccak256 of the canonical output, as a certificate's outputRef: the output in the prover's `outputs` channel. */
  outputRef: Uint8Array
  prover: `0x${string}`
}

/** The submission of a proof body: its 256 proof bytes are the calldata's eight words in order (a, b with c1 before c0, c). */
export function zkResultSubmissionOf (body: ZkProofBody): ZkResultSubmission {
  const word = (i: number): bigint => fieldElementOf(body.proof.subarray(32 * i, 32 * (i + 1)))
  return {
    taskId: body.taskId,
    proof: { a: [word(0), word(1)], b: [[word(2), word(3)], [word(4), word(5)]], c: [word(6), word(7)] },
    outputCommitment: fieldElementOf(body.outputCommitment),
    outputRef: outputRefOf(body.output),
    prover: `0x${toHex(body.prover)}`
  }
}

/** A batch to settle (issue 15): its certificate and the settlement summary its signers signed. */
export interface BatchSubmission {
  qc: BatchQuorumCertificate
  summary: BatchSummary
}

/** What the submitter needs from the chain for batches; the viem implementation lives in chain-client.ts. */
export interface BatchSettlementChain {
  readonly account: `0x${string}` | undefined
  /** Who stored the batch's root, or undefined while the chain does not hold it. */
  batchSettlement: (root: `0x${string}`) => Promise<Settlement | undefined>
  /** Sends TaskManager.submitBatch; `accepted: false` when another account's batch with this root came first. */
  submitBatch: (batch: BatchSubmission, options?: SubmitOptions) => Promise<TxReceipt | undefined>
}

/** How a batch submission ended; 'pending' when the submitter stopped first (the batcher resumes it at its next start). */
export type BatchOutcome =
  | { state: 'confirmed' | 'settled-by-other', txHash: `0x${string}`, by: `0x${string}` | undefined, gasUsed?: bigint, attempts: number }
  | { state: 'failed', revert?: string, lastError: string, attempts: number }
  | { state: 'pending', attempts: number }

export interface SubmitterEvents {
  /** Settled on-chain by this node's account. */
  confirmed: CustomEvent<Submission>
  /** The chain already held a result (or the slash) from another account: `settledBy`, `txHash`. */
  'settled-by-other': CustomEvent<Submission>
  /** The contract refuses it for good (`revert`), or its data is gone (`lastError`). */
  failed: CustomEvent<Submission>
  /** An attempt failed for a reason that may pass (RPC, nonce, timeout); `lastError`, `attempts`. */
  retrying: CustomEvent<Submission & { retryInMs: number }>
}

/** What one submission posts. */
type Target =
  | { kind: 'certificate', qc: QuorumCertificate, task: TaskAnnouncement }
  | { kind: 'evidence', evidence: StoredEvidence }
  | { kind: 'conflict', conflict: StoredConflict }
  | { kind: 'zk', task: TaskAnnouncement, result: ZkResultSubmission }

/**
 * Gets formed certificates, equivocation evidence and conflicting-certificate evidence on-chain
 * exactly once from this node's point of view: each is persisted as pending (with the QC or evidence, in one batch) before anything
 * is sent, and stays pending until the chain holds a result for its task. Every attempt asks the
 * chain first; a submission ends confirmed (our transaction), settled-by-other (whose, in which
 * transaction) or failed (a named revert), and anything else is retried with capped backoff, and
 * resumed from storage after a restart.
 */
export class Submitter extends TypedEventEmitter<SubmitterEvents> {
  private readonly store: NodeStore
  private readonly chain: SettlementChain
  private readonly running = new Map<string, Promise<void>>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private abort = new AbortController()
  private stopped = false

  constructor (store: NodeStore, chain: SettlementChain, private readonly batchChain?: BatchSettlementChain) {
    super()
    this.store = store
    this.chain = chain
  }

  /** Whether this submitter can settle batches (its chain client implements submitBatch). */
  get settlesBatches (): boolean { return this.batchChain != null }

  /**
   * Gets a batch on chain, as certificates are: every attempt asks the chain first, a named
   * revert ends it (failed), anything else is retried with the same capped backoff. Losing a
   * race to another aggregator's identical batch is 'settled-by-other', not an error. The
   * batcher keeps the batch in its store until this resolves, so a restart resumes it.
   */
  async submitBatch (batch: BatchSubmission): Promise<BatchOutcome> {
    const chain = this.batchChain
    if (chain == null) return { state: 'failed', lastError: 'this node\'s chain client cannot submit batches', attempts: 0 }
    const root = batch.qc.root
    let attempts = 0
    const settled = (s: Settlement): BatchOutcome => {
      const ours = chain.account != null && s.by.toLowerCase() === chain.account.toLowerCase()
      return { state: ours ? 'confirmed' : 'settled-by-other', txHash: s.txHash, by: s.by, gasUsed: s.gasUsed, attempts }
    }
    while (!this.stopped) {
      try {
        const before = await chain.batchSettlement(root)
        if (before != null) return settled(before)
        attempts++
        const receipt = await chain.submitBatch(batch, { signal: this.abort.signal })
        if (receipt != null && receipt.accepted !== false) {
          log('batch %s confirmed in %s (%s gas)', root, receipt.txHash, receipt.gasUsed)
          return { state: 'confirmed', txHash: receipt.txHash, by: chain.account, gasUsed: receipt.gasUsed, attempts }
        }
        const after = await chain.batchSettlement(root)
        if (after != null) return settled(after)
        throw new PoiError('ERR_SUBMISSION_NOT_SETTLED', `batch ${root}: transaction ${receipt?.txHash ?? 'none'} was mined but the chain holds no such batch; sending again`)
      } catch (err) {
        const message = (err as Error).message
        if (err instanceof PermanentSubmissionError) {
          log.error('batch %s failed for good%s: %s', root, err.revert != null ? ` (reverts with ${err.revert})` : '', message)
          return { state: 'failed', revert: err.revert, lastError: message, attempts }
        }
        if (this.stopped) break
        const retryInMs = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.min(Math.max(attempts - 1, 0), 16))
        log('batch %s failed (attempt %d), retrying in %d ms: %s', root, attempts, retryInMs, message.split('\n')[0])
        await new Promise<void>(resolve => {
          const timer = setTimeout(() => { this.timers.delete(timer); resolve() }, retryInMs)
          this.timers.add(timer)
          this.abort.signal.addEventListener('abort', () => { clearTimeout(timer); this.timers.delete(timer); resolve() }, { once: true })
        })
      }
    }
    return { state: 'pending', attempts }
  }

  /** Picks up everything a previous run left unsettled. */
  async start (): Promise<number> {
    this.stopped = false
    this.abort = new AbortController()
    const pending = await this.store.listPendingSubmissions()
    for (const sub of pending) this.kick(sub.kind, sub.id)
    if (pending.length > 0) log('resuming %d pending submissions', pending.length)
    return pending.length
  }

  /** Stops at once: waits for receipts are abandoned, and what is unsettled stays pending for the next start. */
  async stop (): Promise<void> {
    this.stopped = true
    this.abort.abort()
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    await Promise.allSettled([...this.running.values()])
  }

  /**
   * Call after the store holds the pending record (putCertificate/putEvidence
   * with submit); `delayMs` postpones the first attempt.
   */
  kick (kind: SubmissionKind, id: string, delayMs = 0): void {
    if (this.stopped) return
    if (delayMs > 0) {
      const timer = setTimeout(() => { this.timers.delete(timer); this.kick(kind, id) }, delayMs)
      this.timers.add(timer)
      return
    }
    const key = `${kind}/${id}`
    if (this.running.has(key)) return
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
    const stored = await this.store.getSubmission(kind, id)
    if (stored == null || (stored.state !== 'pending' && stored.state !== 'moot') || this.stopped) return
    const sub: Submission = { ...stored, state: 'pending' }
    const signal = this.abort.signal
    let target: Target | undefined
    try {
      target = await this.load(kind, id)
      const before = await this.settlement(target)
      if (before != null) {
        await this.settled(sub, before)
        return
      }
      const receipt = target.kind === 'certificate'
        ? await this.chain.submitCertificate(target.qc, target.task, { signal })
        : target.kind === 'evidence'
          ? await this.chain.submitEvidence(target.evidence, { signal })
          : target.kind === 'zk'
            ? await this.zkChain().submitZkResult(target.task, target.result, { signal })
            : await this.chain.submitConflict(target.conflict, { signal })
      if (receipt != null && receipt.accepted !== false) {
        await this.finish({ ...sub, state: 'confirmed', attempts: sub.attempts + 1, updatedAt: Date.now(), txHash: receipt.txHash, gasUsed: receipt.gasUsed.toString(), lastError: undefined }, 'confirmed')
        return
      }
      // Nothing sent (the simulation saw a result), or our transaction did not settle it: the chain says by whom.
      const after = await this.settlement(target)
      if (after != null) {
        await this.settled(sub, after)
        return
      }
      throw new SubmissionNotSettledError(kind, id, receipt?.txHash ?? 'none')
    } catch (err) {
      const message = (err as Error).message
      // Another reporter's slash landed between our check and our send: the chain says whose.
      if (err instanceof PermanentSubmissionError && err.revert === 'AlreadySlashed' && target != null) {
        const after = await this.settlement(target).catch(() => undefined)
        if (after != null) {
          await this.settled(sub, after)
          return
        }
      }
      if (err instanceof PermanentSubmissionError) {
        log.error('%s %s failed for good%s: %s', kind, id, err.revert != null ? ` (reverts with ${err.revert})` : '', message)
        await this.finish({ ...sub, state: 'failed', attempts: sub.attempts + 1, updatedAt: Date.now(), revert: err.revert, lastError: message }, 'failed')
        return
      }
      if (this.stopped) {
        // Stopping abandons the wait, not the submission: the next start resumes it and asks the chain first.
        log('%s %s left pending at stop: %s', kind, id, message.split('\n')[0])
        return
      }
      const attempts = sub.attempts + 1
      const retryInMs = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.min(attempts - 1, 16))
      const retrying: Submission = { ...sub, attempts, updatedAt: Date.now(), lastError: message }
      await this.store.putSubmission(retrying)
      log('%s %s failed (attempt %d), retrying in %d ms: %s', kind, id, attempts, retryInMs, message.split('\n')[0])
      this.safeDispatchEvent('retrying', { detail: { ...retrying, retryInMs } })
      this.kick(kind, id, retryInMs)
    }
  }

  /** The chain's zk entry points; a zk submission on a client without them fails for good. */
  private zkChain (): Required<Pick<SettlementChain, 'zkSettlement' | 'submitZkResult'>> {
    const { zkSettlement, submitZkResult } = this.chain
    if (zkSettlement == null || submitZkResult == null) throw new PermanentSubmissionError('this node\'s chain client cannot settle zk results')
    return { zkSettlement: zkSettlement.bind(this.chain), submitZkResult: submitZkResult.bind(this.chain) }
  }

  /** Whether this submitter can settle zk results (its chain client implements submitZkResult). */
  get settlesZkResults (): boolean { return this.chain.submitZkResult != null && this.chain.zkSettlement != null }

  private async load (kind: SubmissionKind, id: string): Promise<Target> {
    if (kind === 'zk') {
      const taskId = Uint8Array.from(Buffer.from(id, 'hex'))
      const body = await this.store.getZkProof(taskId)
      if (body == null) throw new PermanentSubmissionError(`no zk proof stored for task 0x${id}; the data directory lost it`)
      const task = await this.store.getTask(taskId)
      if (task == null) throw new PermanentSubmissionError(`no task stored for zk proof 0x${id}; the data directory lost it`)
      return { kind, task, result: zkResultSubmissionOf(decodeZkProofBody(body)) }
    }
    if (kind === 'conflict') {
      const conflict = await this.store.getConflict(id)
      if (conflict == null) throw new PermanentSubmissionError(`no conflicting-certificate evidence stored for ${id}; the data directory lost it`)
      return { kind, conflict }
    }
    if (kind === 'certificate') {
      const taskId = Uint8Array.from(Buffer.from(id, 'hex'))
      const qc = await this.store.getCertificate(taskId)
      if (qc == null) throw new PermanentSubmissionError(`no certificate stored for task 0x${id}; the data directory lost it`)
      // the chain recomputes the id from the signed task and charges its fee: no task, no settlement
      const task = await this.store.getTask(taskId)
      if (task == null) throw new PermanentSubmissionError(`no task stored for certificate 0x${id}; the data directory lost it`)
      return { kind, qc, task }
    }
    const [taskIdHex, op] = id.split('/')
    const evidence = await this.store.getEvidence(Uint8Array.from(Buffer.from(taskIdHex, 'hex')), Number(op))
    if (evidence == null) throw new PermanentSubmissionError(`no evidence stored for ${id}; the data directory lost it`)
    return { kind, evidence }
  }

  private async settlement (target: Target): Promise<Settlement | undefined> {
    if (target.kind === 'certificate') return await this.chain.certificateSettlement(target.qc.taskId)
    if (target.kind === 'evidence') return await this.chain.evidenceSettlement(target.evidence)
    if (target.kind === 'zk') return await this.zkChain().zkSettlement(target.result.taskId)
    return await this.chain.conflictSettlement(target.conflict)
  }

  /** The chain holds it: ours (sent before a restart, or a receipt we missed) or another account's. */
  private async settled (sub: Submission, s: Settlement): Promise<void> {
    const ours = this.chain.account != null && s.by.toLowerCase() === this.chain.account.toLowerCase()
    if (ours) {
      await this.finish({ ...sub, state: 'confirmed', updatedAt: Date.now(), txHash: s.txHash, gasUsed: s.gasUsed?.toString(), lastError: undefined }, 'confirmed')
      return
    }
    await this.finish({
      ...sub, state: 'settled-by-other', updatedAt: Date.now(), txHash: s.txHash, gasUsed: undefined, settledBy: s.by, resultHash: s.resultHash, lastError: undefined
    }, 'settled-by-other')
  }

  private async finish (sub: Submission, event: 'confirmed' | 'settled-by-other' | 'failed'): Promise<void> {
    await this.store.putSubmission(sub)
    if (event === 'settled-by-other') log('%s %s settled by %s in %s', sub.kind, sub.id, sub.settledBy, sub.txHash)
    else if (event === 'confirmed') log('%s %s confirmed in %s', sub.kind, sub.id, sub.txHash)
    this.safeDispatchEvent(event, { detail: sub })
  }
}
