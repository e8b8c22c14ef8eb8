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
 * - for a model under the credits tier (ModelRegistry), its requester holds a credit that none
 *   of its pending tasks here for that model already holds: a requester with 1 credit gets one
 *   task served at a time by this node, not 5. Credits and the settlement of those tasks are read
 *   at one block, at each such task (no cache: a credit is worth a task). A node counts only the
 *   tasks it admitted: tasks that reach disjoint nodes can each be served, and all but the credits
 *   held fail at settlement (NoCreditsLeft), unpaid; every node refuses from its next read on.
 *
 * Credit tabs (issue 15): a task whose nonce is below 2^40 is a tab task, paid by its voucher
 * (the cumulative amount its requester authorises its tab to be charged) and settled only in a
 * batch. Such a task is refused when it carries no voucher, its voucher is not signed by its
 * requester for this network's TaskManager, its sequence is already settled on chain or taken
 * by another task here, or its voucher does not cover it: cumulative − the tab's settled amount
 * (on chain) − the fees of this requester's lower-sequence tab tasks pending here < its fee. Its
 * fee then counts against the deposit like any task's (the deposit check above). It stops being
 * pending when the chain's last settled sequence reaches it (its fee is then in `settled`, or it
 * was left out of the batches and can no longer be charged: sequences settle only upwards per
 * voucher), when it ends NoQuorum, or when it expires.
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
  MAX_CACHED_PAYMENT_ACCOUNTS, MAX_PENDING_PAID_TASKS, VOUCHER_SEQUENCE_LIMIT, bytesToUint256, isCanonicalSignature, to0xHex, toHex,
  verifyVoucherSignature, type TaskAnnouncement
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

/** A requester's credits for a credits-tier model and which of the asked tasks were settled, at one block. */
export interface CreditAccount {
  credits: bigint
  /** settled[i]: the i-th asked task has an accepted certificate (its credit is already used). */
  settled: boolean[]
}

/** A requester's credit tab on chain (TaskManager; contracts/batches.ts readTab). */
export interface TabReading {
  /** wei charged to the tab so far, over its life. */
  settled: bigint
  /** The highest sequence settled (0: none). */
  lastSequence: bigint
}

/** What the gate needs for credit tabs: the vouchers' signing domain and the on-chain tab. */
export interface TabChain {
  chainId: bigint
  /** The TaskManager vouchers must name (their EIP-712 verifying contract). */
  taskManager: `0x${string}`
  readTab: (requester: `0x${string}`) => Promise<TabReading>
}

/** What the gate reads from the chain (a ChainClient). */
export interface PaymentChain {
  paymentTerms: () => Promise<PaymentTerms>
  /** The model's fee in wei; undefined when it is not registered. */
  modelFee: (modelId: Uint8Array) => Promise<bigint | undefined>
  /** The requester's vault and whether each of `taskIds` is settled, all read at one block. */
  requesterAccount: (requester: `0x${string}`, taskIds: readonly Uint8Array[]) => Promise<RequesterAccount>
  /**
   * For a model under the credits tier: the requester's credits and whether each of `taskIds` is
   * settled, at one block; undefined for any other tier (or the model's owner). Optional: a chain
   * without access tiers counts no credits.
   */
  creditAccount?: (modelId: Uint8Array, requester: `0x${string}`, taskIds: readonly Uint8Array[]) => Promise<CreditAccount | undefined>
  /** Credit tabs (issue 15). Optional: on a chain without them every tab task is refused. */
  tabs?: TabChain
}

/** Why a task is not admitted: `reject` when its requester signed a task no node may run, `ignore` otherwise. */
export interface PaymentRefusal {
  verdict: 'reject' | 'ignore'
  reason: string
  /**
   * Set when the refusal is about the voucher, which travels outside the task's signature: a
   * relay can strip or mangle it while the requester's own copy is good, so the refusal is not
   * remembered for the requester (as for a bad task signature), and the intact copy is still
   * admitted when it arrives.
   */
  unsigned?: true
}

interface PendingTask {
  taskId: Uint8Array
  fee: bigint
  /** Local unix ms after which no certificate can charge it any more. */
  expiresAt: number
  /** A valid certificate was seen here: look it up on-chain at the next vault read. */
  certified: boolean
  /** Set for a task of a credits-tier model: it holds one of its requester's credits for that model (hex id). */
  creditModel?: string
  /** Set for a tab task: its tab sequence (its nonce). */
  sequence?: bigint
}

/** A requester's vault (and, once one of its tab tasks was asked about, its tab) as last read. */
interface Reading { at: number, available: bigint, shortfall: bigint, tab?: TabReading }

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
  /** Reads under way, by requester (and `+tab` for one with the tab). */
  private readonly reads = new Map<string, Promise<Reading>>()
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
    const isTab = task.nonce < VOUCHER_SEQUENCE_LIMIT
    if (isTab) {
      const bad = await this.voucherRefusal(task, requester)
      if (bad !== undefined) return bad
    }
    const reading = await this.reading(requester, isTab)
    if (reading.shortfall > 0n) {
      return { verdict: 'ignore', reason: `requester ${requester} is in default: accepted certificates left ${reading.shortfall} wei unpaid (TaskManager shortfallOf)` }
    }
    const creditModel = to0xHex(task.modelId)
    const credits = await this.creditsOf(task, requester, creditModel)
    // Synchronous from here to the count: each task of a burst sees the ones admitted before it.
    if (this.requesterOf.has(id)) return undefined
    const mine = this.pendingOf(requester, Date.now())
    if (credits !== undefined) {
      let holding = 0n
      for (const p of mine?.values() ?? []) if (p.creditModel === creditModel) holding++
      if (holding >= credits) {
        return { verdict: 'ignore', reason: `requester ${requester} has ${credits === 0n ? 'no credits left' : `${credits} credit${credits === 1n ? '' : 's'} left`} for model ${creditModel}${holding > 0n ? ` and ${holding} pending task${holding === 1n ? '' : 's'} here already hold${holding === 1n ? 's' : ''} ${holding === 1n ? 'it' : 'them'}` : ''} (buy more with poi model buy ${creditModel} --credits <n>)` }
      }
    }
    if (isTab) {
      const bad = this.tabRefusal(task, id, requester, fee, reading.tab, mine)
      if (bad !== undefined) return bad
    }
    let owed = 0n
    for (const p of mine?.values() ?? []) owed += p.fee
    if (owed + fee > reading.available) {
      return { verdict: 'ignore', reason: `requester ${requester}'s available deposit ${reading.available} wei does not cover this task's fee ${fee} wei plus ${owed} wei its ${mine?.size ?? 0} pending tasks here may still cost; deposit more with poi deposit` }
    }
    if (this.requesterOf.size >= this.maxPending) {
      return { verdict: 'ignore', reason: `this node already counts ${this.requesterOf.size} unsettled paid tasks (MAX_PENDING_PAID_TASKS)` }
    }
    this.add(requester, {
      taskId, fee, expiresAt: Number(task.deadline) + terms.settlementWindowMs, certified: false,
      creditModel: credits !== undefined ? creditModel : undefined, sequence: isTab ? task.nonce : undefined
    })
    return undefined
  }

  /**
   * What a tab task's voucher alone can tell (no chain read): it is there, and signed by the
   * task's requester for this network's TaskManager (low s, as OpenZeppelin's ECDSA requires on
   * chain). The codec already checked that its sequence is the task's nonce.
   */
  private async voucherRefusal (task: TaskAnnouncement, requester: `0x${string}`): Promise<PaymentRefusal | undefined> {
    const voucher = task.voucher
    if (voucher == null) {
      return { verdict: 'reject', unsigned: true, reason: `its nonce ${task.nonce} is below 2^40, which makes it a tab task, but it carries no voucher: a tab task settles only in a batch, against its voucher (sign it from a tab, or use a nonce of 2^40 or more)` }
    }
    const tabs = this.chain.tabs
    if (tabs == null) return { verdict: 'ignore', reason: 'it pays from a credit tab, and this node\'s chain has no credit tabs (no TaskManager batches); pay from the deposit without a tab' }
    const cumulative = bytesToUint256(voucher.cumulative)
    const signed = isCanonicalSignature(voucher.signature) && await verifyVoucherSignature(tabs.chainId,
      { requester, taskManager: tabs.taskManager, cumulative, sequence: voucher.sequence }, to0xHex(voucher.signature))
    if (!signed) {
      return { verdict: 'reject', unsigned: true, reason: `its voucher (sequence ${voucher.sequence}, cumulative ${cumulative} wei) is not signed by its requester ${requester} for TaskManager ${tabs.taskManager} on chain ${tabs.chainId}` }
    }
    return undefined
  }

  /**
   * A tab task against its tab as the chain last showed it and the requester's tab tasks pending
   * here: its sequence is neither settled nor taken, and its voucher covers its fee on top of the
   * tab's settled amount and the fees of its lower sequences pending here. Ignored, not rejected,
   * when the answer depends on the chain or on what this node saw: a relay that read the tab
   * earlier may honestly have admitted it.
   */
  private tabRefusal (task: TaskAnnouncement, id: string, requester: `0x${string}`, fee: bigint, tab: TabReading | undefined, mine: Map<string, PendingTask> | undefined): PaymentRefusal | undefined {
    const voucher = task.voucher
    if (voucher == null || tab === undefined) return { verdict: 'ignore', reason: 'the requester\'s tab could not be read from the chain' }
    const sequence = task.nonce
    if (sequence <= tab.lastSequence) {
      return { verdict: 'ignore', reason: `its tab sequence ${sequence} is not above the last one settled on chain (${tab.lastSequence}): a voucher cannot be settled twice nor after a newer one` }
    }
    let below = 0n
    for (const [other, p] of mine ?? []) {
      if (p.sequence === undefined) continue
      if (p.sequence === sequence && other !== id) return { verdict: 'reject', reason: `its tab sequence ${sequence} is already taken by task ${other} of the same requester` }
      if (p.sequence < sequence) below += p.fee
    }
    const cumulative = bytesToUint256(voucher.cumulative)
    if (cumulative < tab.settled + below + fee) {
      return { verdict: 'ignore', reason: `its voucher does not cover its fee: cumulative ${cumulative} wei − ${tab.settled} wei settled on the tab − ${below} wei of lower-sequence tab tasks pending here leaves ${cumulative - tab.settled - below} wei, below the fee ${fee} wei` }
    }
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

  /**
   * The requester's credits for the task's model when it is under the credits tier (undefined
   * otherwise), after dropping this requester's pending tasks of that model that have settled
   * (each holds no credit any more: the chain took it).
   */
  private async creditsOf (task: TaskAnnouncement, requester: `0x${string}`, creditModel: string): Promise<bigint | undefined> {
    if (this.chain.creditAccount == null) return undefined
    const asked = [...(this.pending.get(requester)?.values() ?? [])].filter(p => p.creditModel === creditModel && p.certified)
    const account = await this.chain.creditAccount(task.modelId, requester, asked.map(p => p.taskId))
    if (account === undefined) return undefined
    // Settled: its credit is out of `credits` already. It holds none here any more, but its fee
    // stays counted until the requester's next vault read (the balance read may predate it).
    asked.forEach((p, i) => { if (account.settled[i] === true) p.creditModel = undefined })
    return account.credits
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

  /** The requester's reading (with its tab when `withTab`), read once per period however many tasks ask at once. */
  private async reading (requester: `0x${string}`, withTab = false): Promise<Reading> {
    const hit = this.readings.get(requester)
    if (hit != null && Date.now() - hit.at < this.cacheMs && (!withTab || hit.tab !== undefined)) return hit
    // A read with the tab and one without are shared apart: a tab task never takes a reading without its tab.
    const key = withTab ? `${requester}+tab` : requester
    let read = this.reads.get(key)
    if (read == null) {
      const started = this.read(requester, withTab)
      this.reads.set(key, started)
      started.catch(() => {}).finally(() => this.reads.delete(key))
      read = started
    }
    return await read
  }

  private async read (requester: `0x${string}`, withTab = false): Promise<Reading> {
    const pending = [...(this.pending.get(requester)?.values() ?? [])]
    // Tab tasks are settled by sequence (the tab below), not by task id.
    const asked = pending.filter(p => p.certified && p.sequence === undefined)
    const tabs = this.chain.tabs
    const readTab = tabs != null && (withTab || pending.some(p => p.sequence !== undefined))
    const [account, tab] = await Promise.all([
      this.chain.requesterAccount(requester, asked.map(p => p.taskId)),
      readTab ? tabs.readTab(requester) : undefined
    ])
    // The balance already paid for these: count them no longer.
    asked.forEach((p, i) => { if (account.settled[i] === true) this.remove(toHex(p.taskId)) })
    // Tab tasks the chain's tab has moved past: charged (in `settled`), or past any charge.
    if (tab !== undefined) for (const p of pending) if (p.sequence !== undefined && p.sequence <= tab.lastSequence) this.remove(toHex(p.taskId))
    const reading: Reading = { at: Date.now(), available: account.available, shortfall: account.shortfall, ...(tab !== undefined ? { tab } : {}) }
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
