/**
 * Paid admission (DESIGN §9, issue 10): on a node with a chain, a task is admitted only when its
 * requester pays for it. Three checks, in order:
 * - its fee is at least the model's fee (ModelRegistry) plus the network minimum (TaskManager
 *   minTaskFee): the contract would refuse its certificate (FeeBelowMinimum) otherwise;
 * - its requester is not in default (TaskManager shortfallOf is 0): an accepted certificate
 *   could not be covered, so its next one may not be either;
 * - its requester's available deposit (balance − pending withdrawal, read from the chain and
 *   cached PAYMENT_CACHE_MS) covers its fee plus what its pending tasks here may still cost.
 *
 * A pending task is one this node admitted whose deadline plus the settlement window has not
 * passed (a certificate can still charge it until then), that was not seen settled on-chain and
 * did not end NoQuorum here. A task whose certificate this node has seen is looked up on-chain
 * (isSettled) at its requester's next vault read, at the same block as the balance, so a fee is
 * never counted twice nor missed in between.
 *
 * Trust: the chain's answers are this node's view (its RPC endpoint); the task's fields are
 * untrusted but already checked (signature, id, deadline) by the task validator.
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { requiredTaskFee } from '../../contracts/index.js'
import {
  MAX_CACHED_PAYMENT_ACCOUNTS, MAX_PENDING_PAID_TASKS, bytesToUint256, to0xHex, toHex, type TaskAnnouncement
} from '../../protocols/wire/index.js'

const log = logger('poi:payments')

/**
 * How long a requester's vault reading is trusted. Every task is checked, so this bounds the
 * chain reads to one per requester per period, however many of its tasks arrive (a burst waits
 * for one shared read). A few seconds: a fresh deposit is seen that soon, and a pending
 * withdrawal already counts against the available balance (it unlocks only after any task's life
 * plus the settlement window). What a reading cannot know is the tasks other nodes admitted and
 * this one never saw: a node counts only its own, so a requester whose tasks reach disjoint nodes
 * could overspend by what one period admits; its certificates then leave a shortfall, and every
 * node ignores its tasks from its next reading on.
 */
export const PAYMENT_CACHE_MS = 3_000
/**
 * How long the payment terms (minTaskFee, settlementWindow) are trusted: governance may change
 * them, after a timelock delay of minutes at least, so a node admits by a new minimum fee within
 * this long of its execution, without a restart.
 */
export const PAYMENT_TERMS_TTL_MS = 30_000
/** How often pending tasks whose deadline plus settlement window passed are dropped. */
export const PAYMENT_SWEEP_MS = 15_000

/** The TaskManager's payment terms (governed: read again every PAYMENT_TERMS_TTL_MS). */
export interface PaymentTerms {
  /** The network's minimum fee per task on top of the model's, wei. */
  minTaskFee: bigint
  /** How long after its deadline a task's certificate may still be accepted (and charge), ms. */
  settlementWindowMs: number
}

/** A requester's vault at one block, and which of the asked tasks were settled by then. */
export interface RequesterAccount {
  /** balance − pending withdrawal, wei. */
  available: bigint
  /** Fees accepted certificates could not charge (non-zero: in default), wei. */
  shortfall: bigint
  /** settled[i]: the i-th asked task has an accepted certificate. */
  settled: boolean[]
}

/** What the gate reads from the chain (a ChainClient). */
export interface PaymentChain {
  paymentTerms: () => Promise<PaymentTerms>
  /** The model's fee in wei; undefined when it is not registered. */
  modelFee: (modelId: Uint8Array) => Promise<bigint | undefined>
  /** The requester's vault and whether each of `taskIds` is settled, all read at one block. */
  requesterAccount: (requester: `0x${string}`, taskIds: readonly Uint8Array[]) => Promise<RequesterAccount>
}

/** Why a task is not admitted: `reject` when its requester signed a task no node may run, `ignore` otherwise. */
export interface PaymentRefusal { verdict: 'reject' | 'ignore', reason: string }

interface PendingTask {
  taskId: Uint8Array
  fee: bigint
  /** Local unix ms after which no certificate can charge it any more. */
  expiresAt: number
  /** A valid certificate was seen here: look it up on-chain at the next vault read. */
  certified: boolean
}

interface Reading { at: number, available: bigint, shortfall: bigint }

export interface PaymentGateInit {
  cacheMs?: number
  /** How long the payment terms are trusted (default PAYMENT_TERMS_TTL_MS). */
  termsTtlMs?: number
  maxAccounts?: number
  maxPending?: number
}

export class PaymentGate implements Startable {
  private terms: Promise<PaymentTerms> | undefined
  /** When `terms` was asked for (unix ms). */
  private termsAt = 0
  private readonly readings = new Map<`0x${string}`, Reading>()
  private readonly reads = new Map<`0x${string}`, Promise<Reading>>()
  /** Pending tasks by requester, then by task id (hex). */
  private readonly pending = new Map<`0x${string}`, Map<string, PendingTask>>()
  /** The requester of each pending task. */
  private readonly requesterOf = new Map<string, `0x${string}`>()
  private sweeper: NodeJS.Timeout | undefined
  private readonly cacheMs: number
  private readonly termsTtlMs: number
  private readonly maxAccounts: number
  private readonly maxPending: number

  constructor (private readonly chain: PaymentChain, init: PaymentGateInit = {}) {
    this.cacheMs = init.cacheMs ?? PAYMENT_CACHE_MS
    this.termsTtlMs = init.termsTtlMs ?? PAYMENT_TERMS_TTL_MS
    this.maxAccounts = init.maxAccounts ?? MAX_CACHED_PAYMENT_ACCOUNTS
    this.maxPending = init.maxPending ?? MAX_PENDING_PAID_TASKS
  }

  start (): void {
    this.sweeper = setInterval(() => { this.sweep(Date.now()) }, PAYMENT_SWEEP_MS)
    this.sweeper.unref()
  }

  stop (): void {
    clearInterval(this.sweeper)
  }

  /** Tasks counted against deposits now. */
  get pendingCount (): number {
    return this.requesterOf.size
  }

  /**
   * Admits `task` (counting its fee against its requester until it settles, ends NoQuorum or
   * expires), or says why not. A task already admitted is admitted again without a second count.
   * Throws when the chain cannot be read.
   */
  async admit (taskId: Uint8Array, task: TaskAnnouncement): Promise<PaymentRefusal | undefined> {
    const id = toHex(taskId)
    if (this.requesterOf.has(id)) return undefined
    const requester = to0xHex(task.requester).toLowerCase() as `0x${string}`
    const fee = bytesToUint256(task.fee)
    const [terms, modelFee] = await Promise.all([this.paymentTerms(), this.chain.modelFee(task.modelId)])
    if (modelFee === undefined) return { verdict: 'ignore', reason: `model ${to0xHex(task.modelId)} is not registered, so its fee is unknown` }
    const required = requiredTaskFee(modelFee, terms.minTaskFee)
    if (fee < required) {
      return { verdict: 'reject', reason: `fee ${fee} wei is below the model's fee ${modelFee} wei plus the network minimum ${terms.minTaskFee} wei (${required} wei); the TaskManager would refuse its certificate (FeeBelowMinimum)` }
    }
    const reading = await this.reading(requester)
    if (reading.shortfall > 0n) {
      return { verdict: 'ignore', reason: `requester ${requester} is in default: accepted certificates left ${reading.shortfall} wei unpaid (TaskManager shortfallOf)` }
    }
    // Synchronous from here to the count: each task of a burst sees the ones admitted before it.
    if (this.requesterOf.has(id)) return undefined
    const mine = this.pendingOf(requester, Date.now())
    let owed = 0n
    for (const p of mine?.values() ?? []) owed += p.fee
    if (owed + fee > reading.available) {
      return { verdict: 'ignore', reason: `requester ${requester}'s available deposit ${reading.available} wei does not cover this task's fee ${fee} wei plus ${owed} wei its ${mine?.size ?? 0} pending tasks here may still cost; deposit more with poi deposit` }
    }
    if (this.requesterOf.size >= this.maxPending) {
      return { verdict: 'ignore', reason: `this node already counts ${this.requesterOf.size} unsettled paid tasks (MAX_PENDING_PAID_TASKS)` }
    }
    this.add(requester, { taskId, fee, expiresAt: Number(task.deadline) + terms.settlementWindowMs, certified: false })
    return undefined
  }

  /** Stops counting a task this node admitted but then refused for another reason. */
  release (taskId: Uint8Array): void {
    this.remove(toHex(taskId))
  }

  /** A valid certificate for the task was seen: it will be looked up on-chain at its requester's next read. */
  certified (taskId: Uint8Array): void {
    const id = toHex(taskId)
    const requester = this.requesterOf.get(id)
    if (requester === undefined) return
    const p = this.pending.get(requester)?.get(id)
    if (p != null) p.certified = true
  }

  /** The task ended NoQuorum (it costs its requester nothing). */
  ended (taskId: Uint8Array): void {
    this.remove(toHex(taskId))
  }

  private async paymentTerms (): Promise<PaymentTerms> {
    if (this.terms == null || Date.now() - this.termsAt >= this.termsTtlMs) {
      const terms = this.chain.paymentTerms()
      this.terms = terms
      this.termsAt = Date.now()
      terms.catch(() => { if (this.terms === terms) this.terms = undefined })
    }
    return await this.terms
  }

  /** The requester's reading, read once per period however many tasks ask at once. */
  private async reading (requester: `0x${string}`): Promise<Reading> {
    const hit = this.readings.get(requester)
    if (hit != null && Date.now() - hit.at < this.cacheMs) return hit
    let read = this.reads.get(requester)
    if (read == null) {
      read = this.read(requester)
      this.reads.set(requester, read)
      read.catch(() => {}).finally(() => this.reads.delete(requester))
    }
    return await read
  }

  private async read (requester: `0x${string}`): Promise<Reading> {
    const asked = [...(this.pending.get(requester)?.values() ?? [])].filter(p => p.certified)
    const account = await this.chain.requesterAccount(requester, asked.map(p => p.taskId))
    // The balance already paid for these: count them no longer.
    asked.forEach((p, i) => { if (account.settled[i] === true) this.remove(toHex(p.taskId)) })
    const reading = { at: Date.now(), available: account.available, shortfall: account.shortfall }
    this.readings.delete(requester)
    this.readings.set(requester, reading)
    if (this.readings.size > this.maxAccounts) {
      const oldest = this.readings.keys().next().value
      if (oldest !== undefined) this.readings.delete(oldest)
    }
    log('requester %s: %s wei available, %s wei short, %d settled of %d certified', requester, account.available, account.shortfall, account.settled.filter(Boolean).length, asked.length)
    return reading
  }

  /** The requester's pending tasks, without those no certificate can charge any more. */
  private pendingOf (requester: `0x${string}`, now: number): Map<string, PendingTask> | undefined {
    const mine = this.pending.get(requester)
    for (const [id, p] of mine ?? []) if (now > p.expiresAt) this.remove(id)
    return this.pending.get(requester)
  }

  private add (requester: `0x${string}`, p: PendingTask): void {
    const id = toHex(p.taskId)
    let mine = this.pending.get(requester)
    if (mine == null) {
      mine = new Map()
      this.pending.set(requester, mine)
    }
    mine.set(id, p)
    this.requesterOf.set(id, requester)
  }

  private remove (id: string): void {
    const requester = this.requesterOf.get(id)
    if (requester === undefined) return
    this.requesterOf.delete(id)
    const mine = this.pending.get(requester)
    mine?.delete(id)
    if (mine?.size === 0) this.pending.delete(requester)
  }

  private sweep (now: number): void {
    for (const requester of [...this.pending.keys()]) this.pendingOf(requester, now)
  }
}
