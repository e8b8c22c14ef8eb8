/**
 * The requester's typed errors. Each says what failed and what to do about it; the ones that
 * asked several peers list every peer and why its answer was of no use, in the message (for a
 * person) and in `failures` (for a program, e.g. the CLI's --json output).
 */
import { MAX_INLINE_INPUT_BYTES, MAX_STREAM_PAYLOAD_BYTES, PoiError, to0xHex } from '../../protocols/wire/index.js'

/** One peer that was asked and could not help, and why. */
export interface PeerFailure {
  /** The peer id, in full. */
  peer: string
  /**
   * Why its answer was of no use, in short: a status it answered (`UNKNOWN_TASK`, `NOT_FOUND`,
   * ...) or a failure of the exchange or of the check of its answer (`timed out after 3 s`,
   * `INVALID_CERTIFICATE: ...`).
   */
  reason: string
  /** The kind of failure alone, stable for programs: `TIMEOUT`, `UNKNOWN_TASK`, `INVALID_CERTIFICATE`, ... */
  code: string
}

/** `3000` as `3 s`, `250` as `250 ms`: how long a wait was, for a person. */
export function formatDuration (ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Number((ms / 1000).toFixed(1))} s`
}

/** The start and end of a peer id (`12D3…x7abcd`): peer ids share their first characters. */
function shortPeer (peer: string): string {
  return peer.length <= 14 ? peer : `${peer.slice(0, 4)}…${peer.slice(-6)}`
}

/** `(asked 2 peers: 12D3…abcdef: NOT_FOUND; 12D3…123456: timed out after 5 s)` */
export function formatFailures (failures: PeerFailure[]): string {
  if (failures.length === 0) return '(asked no peer: this node has no connection to a full node)'
  const each = failures.map(f => `${shortPeer(f.peer)}: ${f.reason}`).join('; ')
  return `(asked ${failures.length} peer${failures.length === 1 ? '' : 's'}: ${each})`
}

/** No quorum certificate for the task by its deadline, from gossip or from any full node asked after. */
export class NoQuorumError extends PoiError {
  readonly taskId: Uint8Array
  readonly timeoutMs: number
  /** The full nodes asked for the certificate after the deadline, and why none had one. */
  readonly failures: PeerFailure[]

  /** What the chain said, when it was asked: `the chain holds no result for it either`, or why it could not be read. */
  readonly chain: string | undefined

  constructor (taskId: Uint8Array, timeoutMs: number, failures: PeerFailure[] = [], cause?: unknown, chain?: string) {
    // Every node asked never saw the task: it was refused on the way, not left without a quorum.
    const likely = failures.length > 0 && failures.every(f => f.code === 'UNKNOWN_TASK')
      ? 'the full nodes asked never saw the task: the network refused it, e.g. for a model it does not run or a deadline too far out; a full node logs why with DEBUG=poi:*'
      : 'too few operators online, or they disagree on the result'
    super('ERR_NO_QUORUM', `task ${to0xHex(taskId)} ended with NoQuorum: no valid quorum certificate within ${formatDuration(timeoutMs)} ` +
      `(${likely}); no full node had one after the deadline either ${formatFailures(failures)}${chain !== undefined ? `; ${chain}` : ''}`, { cause })
    this.taskId = taskId
    this.timeoutMs = timeoutMs
    this.failures = failures
    this.chain = chain
  }
}

/** The node has not found the gossip peers it needs to announce a task and hear its certificate. */
export class NotConnectedError extends PoiError {
  /** What was waited for, e.g. `a peer subscribed to the tasks topic`. */
  readonly waitedFor: string
  readonly timeoutMs: number
  /** Peers this node had a connection to when it gave up. */
  readonly connectedPeers: number

  constructor (timeoutMs: number, waitedFor: string, connectedPeers: number) {
    super('ERR_NOT_CONNECTED', `no gossip peers: waited ${formatDuration(timeoutMs)} for ${waitedFor} and saw none ` +
      `(connected to ${connectedPeers} peer${connectedPeers === 1 ? '' : 's'}); ` +
      (connectedPeers === 0
        ? 'check the --bootstrap address and that the bootstrap node is running'
        : 'check that operators and an aggregator are running on this network'))
    this.waitedFor = waitedFor
    this.timeoutMs = timeoutMs
    this.connectedPeers = connectedPeers
  }
}

export class InputTooLargeError extends PoiError {
  readonly bytes: number
  /** The request field at fault, for a gateway's 400 (see PoiClient's requestErrorField). */
  readonly field = 'input'

  constructor (bytes: number) {
    super('ERR_INPUT_TOO_LARGE', `the input is ${bytes} bytes; a task input is at most ${MAX_STREAM_PAYLOAD_BYTES} bytes (inputs above ${MAX_INLINE_INPUT_BYTES} bytes travel by stream reference)`)
    this.bytes = bytes
  }
}

/** No full node asked could show a certificate for the task that verifies here. */
export class ResultNotFoundError extends PoiError {
  /** `0x`-hex. */
  readonly taskId: string
  readonly failures: PeerFailure[]

  constructor (taskId: Uint8Array, failures: PeerFailure[]) {
    super('ERR_RESULT_NOT_FOUND', `no connected full node has a certificate for task ${to0xHex(taskId)} that verifies ${formatFailures(failures)}`)
    this.taskId = to0xHex(taskId)
    this.failures = failures
  }
}

/** No full node asked could serve an output by its reference and matching its result hash. */
export class OutputNotFoundError extends PoiError {
  /** `0x`-hex. */
  readonly outputRef: string
  readonly failures: PeerFailure[]

  constructor (outputRef: Uint8Array, failures: PeerFailure[]) {
    super('ERR_OUTPUT_NOT_FOUND', `no connected full node could serve output ${to0xHex(outputRef)} matching its result hash over /poi/stream/1/ ${formatFailures(failures)}`)
    this.outputRef = to0xHex(outputRef)
    this.failures = failures
  }
}

/** The certificate the network gave for a task does not verify against the operator set here. */
export class CertificateRejectedError extends PoiError {
  readonly taskId: Uint8Array
  readonly reason: string

  constructor (taskId: Uint8Array, reason: string) {
    super('ERR_CERTIFICATE_REJECTED', `the certificate for task ${to0xHex(taskId)} failed verification against the operator set: ${reason}`)
    this.taskId = taskId
    this.reason = reason
  }
}

/** Publishing the task on the tasks topic failed. */
export class AnnounceError extends PoiError {
  readonly taskId: Uint8Array

  constructor (taskId: Uint8Array, cause: unknown) {
    super('ERR_ANNOUNCE_FAILED', `announcing task ${to0xHex(taskId)} on the tasks topic failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
    this.taskId = taskId
  }
}

/** The caller's AbortSignal fired; `cause` is the signal's reason. */
export class RequestAbortedError extends PoiError {
  /** What the requester was doing, e.g. `waiting for the certificate of task 0x12…`. */
  readonly during: string

  constructor (during: string, cause: unknown) {
    super('ERR_REQUEST_ABORTED', `aborted while ${during}${reasonSuffix(cause)}`, { cause })
    this.during = during
  }
}

function reasonSuffix (reason: unknown): string {
  if (reason instanceof Error && reason.message !== '' && reason.message !== 'This operation was aborted') return `: ${reason.message}`
  if (typeof reason === 'string' && reason !== '') return `: ${reason}`
  return ''
}

/** A full node says it refused the task, and why: the peer's claim, reported as such. */
export class TaskRefusedError extends PoiError {
  readonly taskId: Uint8Array
  /** The peer id of the node that said it refused the task. */
  readonly peer: string
  /** Its reason, as it sent it. */
  readonly reason: string

  constructor (taskId: Uint8Array, peer: string, reason: string) {
    super('ERR_TASK_REFUSED', `task ${to0xHex(taskId)} was refused by ${peer}: ${reason} ` +
      '(that node\'s claim over /poi/result/1/; it logs the refusal with DEBUG=poi:*)')
    this.taskId = taskId
    this.peer = peer
    this.reason = reason
  }
}
