import { randomBytes } from 'node:crypto'
import type { AbortOptions } from '@libp2p/interface'
import type { PrivateKeyAccount } from 'viem/accounts'
import { verifyCertificate, type OperatorSet, DEFAULT_QUORUM_BPS } from '../../consensus/index.js'
import {
  MAX_STREAM_PAYLOAD_BYTES, MAX_INLINE_INPUT_BYTES, bytesToUint256, signTask, taskIdOf, to0xHex,
  type QuorumCertificate
} from '../../protocols/wire/index.js'
import { preciseNow, type PoiNode } from '../poi-node.js'
import { raceAbort, throwIfAborted } from './abort.js'
import { watchCertificate, type CertificateWatch } from './certificate-watch.js'
import { DEFAULT_TASK_TIMEOUT_MS, SETTLEMENT_POLL_MS } from './constants.js'
import { describeSettlement, readSettlement, type RequesterChain, type Settlement } from './chain.js'
import {
  AnnounceError, CertificateRejectedError, InputTooLargeError, NoQuorumError, OutputNotFoundError, RequestAbortedError,
  ResultNotFoundError, TaskRefusedError, formatDuration, type PeerFailure
} from './errors.js'
import { watchRefusal, type RefusalWatch } from './refusal-watch.js'
import { fetchOutput, lookupResult } from './lookup.js'
import { waitForNetwork } from './network-wait.js'
import { checkOperatorCount, checkRequestBounds, checkTaskTtl, InvalidRequestError } from './params.js'
import type { RequesterTab } from './tab.js'
import { readNetworkTaskTtl } from './task-ttl.js'

// bench/qc-latency.ts still imports it from this file; others use the folder's index.
export { waitForNetwork } from './network-wait.js'

export interface RequestParams {
  modelId: Uint8Array
  input: Uint8Array
  /** From the announcement to the task's deadline; default DEFAULT_TASK_TIMEOUT_MS. */
  timeoutMs?: number
  quorumBps?: number
  fee?: bigint
  /** Default: random with bit 63 set (RANDOM_NONCE_BIT: at or above the tab sequences, so a single task). Not with `tab`. */
  nonce?: bigint
  /**
   * Pay from this credit tab (issue 15): the task takes the tab's next sequence as its nonce and
   * carries a voucher for it, written to the tab's file before the task is signed. Such a task
   * settles only in a batch. Without it the task is a single task, paid from the deposit by its
   * own certificate.
   */
  tab?: RequesterTab
}

/**
 * Set on every random nonce: single tasks' nonces are at or above 2^40 (spec15: below is a tab
 * sequence, which settles only in a batch), and bit 63 puts them there whatever the other bits.
 */
export const RANDOM_NONCE_BIT = 1n << 63n

/** A single task's nonce: 63 random bits and RANDOM_NONCE_BIT. */
export function randomTaskNonce (): bigint {
  return BigInt('0x' + randomBytes(8).toString('hex')) | RANDOM_NONCE_BIT
}

/** What every answer to a request says: the task, its certified result and when it was known. */
interface ResultBase {
  taskId: Uint8Array
  resultHash: Uint8Array
  outputRef: Uint8Array
  epoch: bigint
  signedStake: bigint
  /** The total stake of the epoch's operator set. */
  totalStake: bigint
  announcedAt: number
  /** When the result was known here: the certificate verified, or the chain showed it settled. */
  certifiedAt: number
}

/** A result with its quorum certificate, verified here against the operator set of its epoch. */
export interface RequestResult extends ResultBase {
  /** How the certificate came: by gossip, or from a full node asked after the deadline. */
  source: 'gossip' | 'full-node'
  certificate: QuorumCertificate
  /** Canonical output; its keccak256 is the certificate's resultHash. */
  output: Uint8Array
  signers: number[]
  /** The operator set of the certificate's epoch, which it verified against (signer i is `set.operators[i]`). */
  set: OperatorSet
}

/**
 * A result known only from the chain: no full node showed its certificate (a relay may have
 * dropped it), but the TaskManager accepted one, after checking it with one pairing against
 * the epoch's operator set. Who signed is not known here, only the stake that did.
 */
export interface SettledResult extends ResultBase {
  source: 'chain'
  certificate?: undefined
  signers?: undefined
  /** The output fetched by its reference and checked against the settled result hash; undefined when no full node served it. */
  output: Uint8Array | undefined
  /** When `output` is undefined: every full node asked for it and why it could not help. */
  outputFailures: PeerFailure[]
  settlement: Settlement
}

export type Progress = (line: string) => void

export interface RequestOptions extends AbortOptions {
  /** Lines a person follows the request by (the CLI prints them). */
  onProgress?: Progress
  /** How long to wait for gossip peers before announcing; default DEFAULT_CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number
  /**
   * The chain (a ChainClient): before calling a task NoQuorum, the requester asks it whether the
   * task was settled, and reads operator sets of epochs the node does not know from it.
   */
  chain?: RequesterChain
  /**
   * The farthest deadline the network's nodes accept; a longer timeout is refused before
   * announcing (InvalidRequestError). Default: the smallest limit the connected full nodes report
   * over /poi/network/1/ (readNetworkTaskTtl), or DEFAULT_MAX_TASK_TTL_MS when none reports one.
   */
  maxTaskTtlMs?: number
}

/**
 * Announces one task and waits for its certificate, which is verified here against the
 * operator set (never trusting the node that relayed it), then returns it with the output.
 *
 * `options.signal` is honoured while waiting for the network, offering the input, announcing,
 * waiting for the certificate and fetching the output: aborting rejects with
 * RequestAbortedError (its `cause` is the signal's reason). Whatever the outcome, every
 * listener and timer this call added is removed before it settles. Other failures:
 * InvalidRequestError (before the task is announced; a timeout beyond the maximum task TTL the
 * connected full nodes report is one), TaskRefusedError (a connected full node says
 * it refused the task, within seconds of the announcement),
 * InputTooLargeError, NotConnectedError, AnnounceError, NoQuorumError (with the full nodes
 * asked after the deadline and why none had a certificate), CertificateRejectedError,
 * OutputNotFoundError.
 */
export async function requestInference (node: PoiNode, account: PrivateKeyAccount, params: RequestParams, options?: RequestOptions & { chain?: undefined }): Promise<RequestResult>
/**
 * With `options.chain`, a task whose certificate no full node shows but that the chain settled
 * is returned as a SettledResult (its output fetched from full nodes when one serves it), not
 * as NoQuorum; NoQuorumError then also says that the chain holds no result for it.
 */
export async function requestInference (node: PoiNode, account: PrivateKeyAccount, params: RequestParams, options: RequestOptions): Promise<RequestResult | SettledResult>
export async function requestInference (node: PoiNode, account: PrivateKeyAccount, params: RequestParams, options: RequestOptions = {}): Promise<RequestResult | SettledResult> {
  const announced = await announceTask(node, account, params, options)
  return await announced.result
}

/** A task signed and announced: its id and deadline now, its verified result later. */
export interface AnnouncedTask {
  taskId: Uint8Array
  /** Wall-clock ms. */
  deadline: number
  /** When the announcement was made (preciseNow), for the time to certificate. */
  announcedAt: number
  /**
   * Settles as requestInference does: with the verified result, or with its typed errors
   * (TaskRefusedError, NoQuorumError, CertificateRejectedError, OutputNotFoundError,
   * RequestAbortedError when `options.signal` fires). A no-op catch is attached, so a caller
   * that never awaits it leaves no unhandled rejection.
   */
  result: Promise<RequestResult | SettledResult>
  /** A tab task's sequence (its nonce) and its voucher's cumulative amount, wei. */
  tab?: { sequence: bigint, cumulative: bigint }
}

/**
 * The first half of requestInference: the same checks, then signs and announces the task and
 * returns once it is announced, its result still to come. Listening for the certificate starts
 * before the announcement, as in requestInference, and ends when `result` settles (an abort
 * through `options.signal` ends it too). A failure up to and including the announcement
 * rejects this call, with every listener it added removed.
 */
export async function announceTask (node: PoiNode, account: PrivateKeyAccount, params: RequestParams, options: RequestOptions = {}): Promise<AnnouncedTask> {
  const { onProgress: progress = () => {}, signal, connectTimeoutMs, chain } = options
  const timeoutMs = params.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS
  const quorumBps = params.quorumBps ?? DEFAULT_QUORUM_BPS
  checkRequestBounds({ timeoutMs, quorumBps })
  if (params.tab !== undefined && params.nonce !== undefined) throw new InvalidRequestError('nonce', 'a tab task\'s nonce is its tab sequence: give either tab or nonce, not both')
  if (params.tab !== undefined && (params.tab.requester.toLowerCase() !== account.address.toLowerCase())) {
    throw new InvalidRequestError('nonce', `the tab is ${params.tab.requester}'s, but ${account.address} signs the task`)
  }
  if (options.maxTaskTtlMs !== undefined) checkTaskTtl(timeoutMs, { maxTaskTtlMs: options.maxTaskTtlMs, source: 'as the caller says' })
  if (params.input.length > MAX_STREAM_PAYLOAD_BYTES) throw new InputTooLargeError(params.input.length)
  await waitForNetwork(node, { timeoutMs: connectTimeoutMs, signal })
  if (options.maxTaskTtlMs === undefined) {
    const ttl = await readNetworkTaskTtl(node, { signal })
    throwIfAborted(signal, 'asking the network for its maximum task TTL')
    checkTaskTtl(timeoutMs, ttl)
  }

  const set: OperatorSet = node.operatorSet
  checkOperatorCount(set)
  const deadline = Date.now() + timeoutMs
  // Too large to inline: the input becomes a stream message this node serves, and the task
  // carries its 32-byte reference.
  const byRef = params.input.length > MAX_INLINE_INPUT_BYTES
  const inputRef = byRef ? await raceAbort(node.offerInput(params.input, deadline), signal, `offering an input of ${params.input.length} bytes by stream reference`) : undefined
  if (inputRef !== undefined) progress(`input of ${params.input.length} bytes goes by stream reference ${to0xHex(inputRef)}`)
  const fee = params.fee ?? 0n
  // The tab's next sequence is on disk before the task that uses it is signed (tab.ts).
  const payment = params.tab !== undefined ? await params.tab.next(fee) : undefined
  if (payment !== undefined) progress(`paying from the tab of ${account.address}: sequence ${payment.sequence}, cumulative ${payment.cumulative} wei`)
  const task = await signTask(account, set.domain.taskManager, {
    chainId: set.domain.chainId,
    modelId: params.modelId,
    ...(inputRef !== undefined ? { inputRef } : { input: params.input }),
    fee,
    deadline: BigInt(deadline),
    quorumBps,
    nonce: payment?.sequence ?? params.nonce ?? randomTaskNonce()
  })
  // Outside the task's EIP-712 digest: the task id is the same with it.
  if (payment !== undefined) task.voucher = payment.voucher
  const taskId = taskIdOf(task, set.domain.taskManager)
  const id = to0xHex(taskId)
  throwIfAborted(signal, `signing task ${id}`)

  // Listening starts before the announcement so no certificate slips past; stop() runs on every way out.
  const poll = chain !== undefined ? { settled: async () => await chain.result(taskId) !== undefined, everyMs: SETTLEMENT_POLL_MS } : undefined
  const watch = watchCertificate(node, taskId, deadline, signal, poll)
  const refusal = watchRefusal(node, taskId)
  const announcedAt = preciseNow()
  try {
    await raceAbort(node.announce(task).catch((err: unknown) => { throw new AnnounceError(taskId, err) }), signal, `announcing task ${id}`)
  } catch (err) {
    watch.stop()
    refusal.stop()
    throw err
  }
  progress(`announced task ${id} (deadline in ${formatDuration(timeoutMs)})`)
  const result = awaitResult(node, { taskId, id, set, timeoutMs, quorumBps, announcedAt, watch, refusal, progress, signal, chain })
  result.catch(() => {})
  return { taskId, deadline, announcedAt, result, ...(payment !== undefined ? { tab: { sequence: payment.sequence, cumulative: payment.cumulative } } : {}) }
}

/** The second half of requestInference: the wait for an announced task's certificate, its check and its output. */
async function awaitResult (node: PoiNode, ctx: {
  taskId: Uint8Array, id: string, set: OperatorSet, timeoutMs: number, quorumBps: number, announcedAt: number,
  watch: CertificateWatch, refusal: RefusalWatch, progress: Progress, signal?: AbortSignal, chain?: RequesterChain
}): Promise<RequestResult | SettledResult> {
  const { taskId, id, set, timeoutMs, quorumBps, announcedAt, watch, refusal, progress, signal, chain } = ctx
  let qc: QuorumCertificate
  let output: Uint8Array | undefined
  let verifiedAgainst: OperatorSet | undefined
  let source: RequestResult['source'] = 'gossip'
  let certifiedAt: number
  // A certificate is checked against the set of its own epoch: the network may have moved on
  // since this node loaded its set (the node reads the next epoch's when it can).
  const setOf = async (epoch: bigint): Promise<OperatorSet | undefined> => await node.operatorSetOf(epoch) ?? await chain?.operatorSet(epoch)
  try {
    // A task the full nodes refused fails now, with their reason, rather than at its deadline.
    const outcome = await Promise.race([watch.outcome, refusal.refused])
    if (outcome instanceof TaskRefusedError) throw outcome
    if (outcome.kind === 'aborted') throw new RequestAbortedError(`waiting for the certificate of task ${id}`, outcome.reason)
    if (outcome.kind === 'certified') {
      qc = outcome.certificate
    } else {
      // Gossip can miss us (a mesh change, a reconnect, a relay that drops certificates): before
      // calling it NoQuorum, ask full nodes directly, and the chain, whether it was certified.
      const why = outcome.kind === 'deadline'
        ? `no certificate for task ${id} by its deadline`
        : outcome.kind === 'settled' ? `the chain shows task ${id} settled, but no certificate reached this node` : `this node closed task ${id} without quorum`
      progress(`${why}; asking full nodes${chain !== undefined ? ' and the chain' : ''} for it`)
      try {
        const found = await lookupResult(node, taskId, { quorumBps, signal, setOf })
        qc = found.certificate
        output = found.output
        verifiedAgainst = found.set
        source = 'full-node'
      } catch (err) {
        if (!(err instanceof ResultNotFoundError)) throw err
        if (chain === undefined) throw new NoQuorumError(taskId, timeoutMs, err.failures, err)
        return await settledOnChain(node, chain, taskId, { timeoutMs, failures: err.failures, announcedAt, progress, signal })
      }
    }
    certifiedAt = preciseNow()
  } finally {
    watch.stop()
    refusal.stop()
  }

  verifiedAgainst ??= await raceAbort(setOf(qc.epoch), signal, `reading the operator set of epoch ${qc.epoch}`)
  if (verifiedAgainst === undefined) throw new CertificateRejectedError(taskId, `it names epoch ${qc.epoch}, whose operator set this node does not know (it loaded epoch ${set.epoch})`)
  const verdict = verifyCertificate(qc, verifiedAgainst, { quorumBps })
  if (!verdict.ok) throw new CertificateRejectedError(taskId, verdict.reason)
  // An output above the inline limit is not in the certificate: fetch it by its reference.
  if (output === undefined && qc.output.length > 0) output = qc.output
  if (output === undefined) {
    progress(`fetching the output by stream reference ${to0xHex(qc.outputRef)}`)
    output = await fetchOutput(node, qc.outputRef, qc.resultHash, { signal })
  }
  return {
    source,
    taskId,
    resultHash: qc.resultHash,
    outputRef: qc.outputRef,
    epoch: qc.epoch,
    certificate: qc,
    output,
    signers: verdict.signers,
    set: verifiedAgainst,
    signedStake: bytesToUint256(qc.signedStake),
    totalStake: bytesToUint256(qc.totalStake),
    announcedAt,
    certifiedAt
  }
}

/**
 * No full node showed a certificate: the chain decides. Settled there, the result is returned
 * with its output when a full node serves it; not settled (or unreadable), NoQuorumError says so.
 */
async function settledOnChain (node: PoiNode, chain: RequesterChain, taskId: Uint8Array, ctx: {
  timeoutMs: number, failures: PeerFailure[], announcedAt: number, progress: Progress, signal?: AbortSignal
}): Promise<SettledResult> {
  const id = to0xHex(taskId)
  let settlement: Settlement | undefined
  try {
    settlement = await raceAbort(readSettlement(chain, taskId), ctx.signal, `reading the on-chain result of task ${id}`)
  } catch (err) {
    if (err instanceof RequestAbortedError) throw err
    throw new NoQuorumError(taskId, ctx.timeoutMs, ctx.failures, err, `the chain could not be read, so it may have settled there: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`)
  }
  if (settlement === undefined) throw new NoQuorumError(taskId, ctx.timeoutMs, ctx.failures, undefined, 'the chain holds no result for it either')
  const certifiedAt = preciseNow()
  ctx.progress(`no full node showed a certificate for task ${id}, but it was ${describeSettlement(settlement)}; fetching the output by stream reference ${to0xHex(settlement.outputRef)}`)
  let output: Uint8Array | undefined
  let outputFailures: PeerFailure[] = []
  try {
    output = await fetchOutput(node, settlement.outputRef, settlement.resultHash, { signal: ctx.signal })
  } catch (err) {
    if (!(err instanceof OutputNotFoundError)) throw err
    outputFailures = err.failures
    ctx.progress(`the output of task ${id} is not available: ${err.message}`)
  }
  return {
    source: 'chain',
    taskId,
    resultHash: settlement.resultHash,
    outputRef: settlement.outputRef,
    epoch: settlement.epoch,
    signedStake: settlement.signedStake,
    totalStake: settlement.totalStake,
    output,
    outputFailures,
    settlement,
    announcedAt: ctx.announcedAt,
    certifiedAt
  }
}
