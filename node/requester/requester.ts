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
import { watchCertificate } from './certificate-watch.js'
import { DEFAULT_TASK_TIMEOUT_MS } from './constants.js'
import {
  AnnounceError, CertificateRejectedError, InputTooLargeError, NoQuorumError, RequestAbortedError, ResultNotFoundError,
  formatDuration
} from './errors.js'
import { fetchOutput, lookupResult } from './lookup.js'
import { waitForNetwork } from './network-wait.js'

// bench/qc-latency.ts still imports it from this file; others use the folder's index.
export { waitForNetwork } from './network-wait.js'

export interface RequestParams {
  modelId: Uint8Array
  input: Uint8Array
  /** From the announcement to the task's deadline; default DEFAULT_TASK_TIMEOUT_MS. */
  timeoutMs?: number
  quorumBps?: number
  fee?: bigint
  nonce?: bigint
}

export interface RequestResult {
  taskId: Uint8Array
  certificate: QuorumCertificate
  /** Canonical output; its keccak256 is the certificate's resultHash. */
  output: Uint8Array
  signers: number[]
  signedStake: bigint
  totalStake: bigint
  announcedAt: number
  certifiedAt: number
}

export type Progress = (line: string) => void

export interface RequestOptions extends AbortOptions {
  /** Lines a person follows the request by (the CLI prints them). */
  onProgress?: Progress
  /** How long to wait for gossip peers before announcing; default DEFAULT_CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number
}

/**
 * Announces one task and waits for its certificate, which is verified here against the
 * operator set (never trusting the node that relayed it), then returns it with the output.
 *
 * `options.signal` is honoured while waiting for the network, offering the input, announcing,
 * waiting for the certificate and fetching the output: aborting rejects with
 * RequestAbortedError (its `cause` is the signal's reason). Whatever the outcome, every
 * listener and timer this call added is removed before it settles. Other failures:
 * InputTooLargeError, NotConnectedError, AnnounceError, NoQuorumError (with the full nodes
 * asked after the deadline and why none had a certificate), CertificateRejectedError,
 * OutputNotFoundError.
 */
export async function requestInference (node: PoiNode, account: PrivateKeyAccount, params: RequestParams, options: RequestOptions = {}): Promise<RequestResult> {
  const { onProgress: progress = () => {}, signal, connectTimeoutMs } = options
  const timeoutMs = params.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS
  const quorumBps = params.quorumBps ?? DEFAULT_QUORUM_BPS
  if (params.input.length > MAX_STREAM_PAYLOAD_BYTES) throw new InputTooLargeError(params.input.length)
  await waitForNetwork(node, { timeoutMs: connectTimeoutMs, signal })

  const set: OperatorSet = node.operatorSet
  const deadline = Date.now() + timeoutMs
  // Too large to inline: the input becomes a stream message this node serves, and the task
  // carries its 32-byte reference.
  const byRef = params.input.length > MAX_INLINE_INPUT_BYTES
  const inputRef = byRef ? await raceAbort(node.offerInput(params.input, deadline), signal, `offering an input of ${params.input.length} bytes by stream reference`) : undefined
  if (inputRef !== undefined) progress(`input of ${params.input.length} bytes goes by stream reference ${to0xHex(inputRef)}`)
  const task = await signTask(account, set.domain.taskManager, {
    chainId: set.domain.chainId,
    modelId: params.modelId,
    ...(inputRef !== undefined ? { inputRef } : { input: params.input }),
    fee: params.fee ?? 0n,
    deadline: BigInt(deadline),
    quorumBps,
    nonce: params.nonce ?? BigInt('0x' + randomBytes(8).toString('hex'))
  })
  const taskId = taskIdOf(task)
  const id = to0xHex(taskId)
  throwIfAborted(signal, `signing task ${id}`)

  // Listening starts before the announcement so no certificate slips past; stop() runs on every way out.
  const watch = watchCertificate(node, taskId, deadline, signal)
  let qc: QuorumCertificate
  let output: Uint8Array | undefined
  let verifiedAgainst = set
  const announcedAt = preciseNow()
  let certifiedAt: number
  try {
    await raceAbort(node.announce(task).catch((err: unknown) => { throw new AnnounceError(taskId, err) }), signal, `announcing task ${id}`)
    progress(`announced task ${id} (deadline in ${formatDuration(timeoutMs)})`)
    const outcome = await watch.outcome
    if (outcome.kind === 'aborted') throw new RequestAbortedError(`waiting for the certificate of task ${id}`, outcome.reason)
    if (outcome.kind === 'certified') {
      qc = outcome.certificate
    } else {
      // Gossip can miss us (a mesh change, a reconnect): before calling it NoQuorum, ask full
      // nodes directly whether the task was certified.
      progress(`${outcome.kind === 'deadline' ? `no certificate for task ${id} by its deadline` : `this node closed task ${id} without quorum`}; asking full nodes whether one was formed`)
      try {
        const found = await lookupResult(node, taskId, { quorumBps, signal })
        qc = found.certificate
        output = found.output
        verifiedAgainst = found.set
      } catch (err) {
        if (err instanceof ResultNotFoundError) throw new NoQuorumError(taskId, timeoutMs, err.failures, err)
        throw err
      }
    }
    certifiedAt = preciseNow()
  } finally {
    watch.stop()
  }

  const verdict = verifyCertificate(qc, verifiedAgainst, { quorumBps })
  if (!verdict.ok) throw new CertificateRejectedError(taskId, verdict.reason)
  // An output above the inline limit is not in the certificate: fetch it by its reference.
  if (output === undefined && qc.output.length > 0) output = qc.output
  if (output === undefined) {
    progress(`fetching the output by stream reference ${to0xHex(qc.outputRef)}`)
    output = await fetchOutput(node, qc.outputRef, qc.resultHash, { signal })
  }
  return {
    taskId,
    certificate: qc,
    output,
    signers: verdict.signers,
    signedStake: bytesToUint256(qc.signedStake),
    totalStake: bytesToUint256(qc.totalStake),
    announcedAt,
    certifiedAt
  }
}
