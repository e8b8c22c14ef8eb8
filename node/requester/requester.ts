import { randomBytes } from 'node:crypto'
import type { PrivateKeyAccount } from 'viem/accounts'
import { verifyCertificate, type OperatorSet, DEFAULT_QUORUM_BPS } from '../../consensus/index.js'
import { fetchStreamMessageByPayload } from '../../protocols/stream/index.js'
import {
  MAX_STREAM_PAYLOAD_BYTES, MAX_INLINE_INPUT_BYTES, bytesToUint256, signTask, taskIdOf,
  type QuorumCertificate
} from '../../protocols/wire/index.js'
import { keccak256 } from 'viem'
import { peerIdFromString } from '@libp2p/peer-id'
import { fetchResult, verifyResult } from '../../protocols/result/index.js'
import { preciseNow, type PoiNode } from '../poi-node.js'

/** How long a requester waits for gossip peers before giving up on announcing. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 20_000
export const DEFAULT_TASK_TIMEOUT_MS = 30_000
const POLL_MS = 50

export class NoQuorumError extends Error {
  readonly taskId: Uint8Array
  constructor (taskId: Uint8Array, timeoutMs: number) {
    super(`task 0x${Buffer.from(taskId).toString('hex')} ended with NoQuorum: no valid quorum certificate within ${timeoutMs} ms (too few operators online, or they disagree on the result)`)
    this.name = 'NoQuorumError'
    this.taskId = taskId
  }
}

export class NotConnectedError extends Error {
  constructor (timeoutMs: number, what: string) {
    super(`no gossip peers for ${what} after ${timeoutMs} ms; check the --bootstrap address and that operators are running`)
    this.name = 'NotConnectedError'
  }
}

export class InputTooLargeError extends Error {
  constructor (bytes: number) {
    super(`the input is ${bytes} bytes; a task input is at most ${MAX_STREAM_PAYLOAD_BYTES} bytes (inputs above ${MAX_INLINE_INPUT_BYTES} bytes travel by stream reference)`)
    this.name = 'InputTooLargeError'
  }
}

export interface RequestParams {
  modelId: Uint8Array
  input: Uint8Array
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

/** Full nodes asked over /poi/result/1/, and how long each may take. */
const RESULT_LOOKUP_PEERS = 3
const RESULT_LOOKUP_TIMEOUT_MS = 3_000

/** Up to `max` distinct peers this node has a connection to (a peer may have several). */
function connectedPeers (node: PoiNode, max: number): string[] {
  return [...new Set(node.libp2p.getConnections().map(c => c.remotePeer.toString()))].slice(0, max)
}

/**
 * Asks connected full nodes for a task's certificate and output over
 * /poi/result/1/ and returns the first answer that verifies against the
 * operator set of its epoch (`setOf`; default: this node's current set).
 * A lying node is skipped, never trusted.
 */
export async function lookupResult (
  node: PoiNode, taskId: Uint8Array, quorumBps = DEFAULT_QUORUM_BPS,
  setOf: (epoch: bigint) => Promise<OperatorSet | undefined> = async (epoch) => epoch === node.operatorSet.epoch ? node.operatorSet : undefined
): Promise<{ certificate: QuorumCertificate, output: Uint8Array, set: OperatorSet } | undefined> {
  for (const peer of connectedPeers(node, RESULT_LOOKUP_PEERS)) {
    try {
      const answer = await fetchResult(node.libp2p, peerIdFromString(peer), taskId, { signal: AbortSignal.timeout(RESULT_LOOKUP_TIMEOUT_MS) })
      if (answer.status !== 'found') continue
      const output = answer.output ?? answer.certificate.output
      const set = await setOf(answer.certificate.epoch)
      if (set != null && verifyResult(answer.certificate, output, set, { quorumBps }).ok) return { certificate: answer.certificate, output, set }
    } catch {
      // this peer could not answer (not a full node, gone, lying): ask the next
    }
  }
  return undefined
}

export class OutputNotFoundError extends Error {
  constructor (outputRef: Uint8Array, asked: number) {
    super(`no connected full node (${asked} asked) could serve output 0x${Buffer.from(outputRef).toString('hex')} matching its result hash over /poi/stream/1/`)
    this.name = 'OutputNotFoundError'
  }
}

/** Full nodes asked for an output by reference, and how long each may take. */
const OUTPUT_LOOKUP_PEERS = 8
const OUTPUT_LOOKUP_TIMEOUT_MS = 5_000

/**
 * Resolves an output reference (from a certificate or the on-chain result)
 * to the output itself: asks connected full nodes over /poi/stream/1/ and
 * returns the first payload whose keccak256 is `resultHash`. The fetch
 * already checks the payload against the reference and its author's
 * signature; the result-hash check ties it to what the quorum signed.
 */
export async function fetchOutput (node: PoiNode, outputRef: Uint8Array, resultHash: Uint8Array): Promise<Uint8Array> {
  const want = Buffer.from(resultHash).toString('hex')
  const peers = connectedPeers(node, OUTPUT_LOOKUP_PEERS)
  for (const peer of peers) {
    try {
      const { message } = await fetchStreamMessageByPayload(node.libp2p, peerIdFromString(peer), outputRef, { timeoutMs: OUTPUT_LOOKUP_TIMEOUT_MS })
      if (Buffer.from(keccak256(message.payload, 'bytes')).toString('hex') === want) return message.payload
    } catch {
      // this peer does not hold it (a relay, say) or is gone: ask the next
    }
  }
  throw new OutputNotFoundError(outputRef, peers.length)
}

async function waitFor (cond: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end || signal?.aborted === true) return false
    await new Promise(resolve => setTimeout(resolve, POLL_MS))
  }
  return true
}

/** Waits until the node can both announce a task and hear its certificate. */
export async function waitForNetwork (node: PoiNode, timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): Promise<void> {
  if (!await waitFor(() => node.topicPeers('tasks') > 0, timeoutMs)) throw new NotConnectedError(timeoutMs, 'the tasks topic')
  if (!await waitFor(() => node.meshPeers('certificates') > 0, timeoutMs)) throw new NotConnectedError(timeoutMs, 'the certificates topic')
}

/**
 * Announces one task and waits for its certificate, which is verified here
 * against the operator set (never trusting the node that relayed it).
 */
export async function requestInference (node: PoiNode, account: PrivateKeyAccount, params: RequestParams, progress: Progress = () => {}): Promise<RequestResult> {
  const set: OperatorSet = node.operatorSet
  const timeoutMs = params.timeoutMs ?? DEFAULT_TASK_TIMEOUT_MS
  const quorumBps = params.quorumBps ?? DEFAULT_QUORUM_BPS
  if (params.input.length > MAX_STREAM_PAYLOAD_BYTES) {
    throw new InputTooLargeError(params.input.length)
  }
  const deadline = Date.now() + timeoutMs
  // Too large to inline: the input becomes a stream message this node
  // serves, and the task carries its 32-byte reference.
  const byRef = params.input.length > MAX_INLINE_INPUT_BYTES
  const inputRef = byRef ? await node.offerInput(params.input, deadline) : undefined
  if (inputRef !== undefined) progress(`input of ${params.input.length} bytes goes by stream reference 0x${Buffer.from(inputRef).toString('hex')}`)
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
  const idHex = Buffer.from(taskId).toString('hex')

  const certified = new Promise<QuorumCertificate>((resolve) => {
    const onCert = (evt: CustomEvent<{ certificate: QuorumCertificate }>): void => {
      const qc = evt.detail.certificate
      if (Buffer.from(qc.taskId).toString('hex') !== idHex) return
      node.removeEventListener('certificate', onCert)
      resolve(qc)
    }
    node.addEventListener('certificate', onCert)
  })
  const announcedAt = preciseNow()
  await node.announce(task)
  progress(`announced task 0x${idHex} (deadline in ${Math.round(timeoutMs / 1000)} s)`)

  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<null>(resolve => { timer = setTimeout(() => resolve(null), Number(task.deadline) - Date.now()) })
  let qc = await Promise.race([certified, timeout])
  clearTimeout(timer)
  // Gossip can miss us (a mesh change, a reconnect): before calling it
  // NoQuorum, ask full nodes directly whether the task was certified.
  qc ??= (await lookupResult(node, taskId, quorumBps))?.certificate ?? null
  if (qc == null) throw new NoQuorumError(taskId, timeoutMs)
  const certifiedAt = preciseNow()

  const verdict = verifyCertificate(qc, set, { quorumBps })
  if (!verdict.ok) throw new Error(`certificate for task 0x${idHex} failed verification: ${verdict.reason}`)
  // An output above the inline limit is not in the certificate: fetch it by its reference.
  let output: Uint8Array = qc.output
  if (output.length === 0) {
    progress(`fetching the output by stream reference 0x${Buffer.from(qc.outputRef).toString('hex')}`)
    output = await fetchOutput(node, qc.outputRef, qc.resultHash)
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
