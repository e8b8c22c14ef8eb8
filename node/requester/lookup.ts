/**
 * Asking full nodes directly for what gossip may have missed: a task's certificate (over
 * /poi/result/1/) and an output by its reference (over /poi/stream/1/).
 *
 * Trust boundary: every answering node is untrusted. A certificate is used only once it
 * verifies against the operator set of its epoch, an output only once it hashes to the
 * certified result hash. A node whose answer fails is skipped, and why is kept: when no node
 * helps, the error lists every peer asked and its reason.
 */
import type { AbortOptions, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { keccak256 } from 'viem'
import { DEFAULT_QUORUM_BPS, verifyCertificate, type OperatorSet } from '../../consensus/index.js'
import { RESULT_PROTOCOL, ResultFetchError, fetchResult, verifyResult } from '../../protocols/result/index.js'
import { STREAM_PROTOCOL, StreamFetchError, fetchStreamMessageByPayload } from '../../protocols/stream/index.js'
import { bytesEqual, to0xHex, type QuorumCertificate } from '../../protocols/wire/index.js'
import type { PoiNode } from '../poi-node.js'
import { raceAbort, throwIfAborted } from './abort.js'
import { OUTPUT_LOOKUP_PEERS, OUTPUT_LOOKUP_TIMEOUT_MS, RESULT_LOOKUP_PEERS, RESULT_LOOKUP_TIMEOUT_MS } from './constants.js'
import { OutputNotFoundError, ResultNotFoundError, formatDuration, type PeerFailure } from './errors.js'
import { connectedPeerIds } from './network-wait.js'

/** The operator set a certificate of `epoch` is checked against; undefined when unknown. */
export type OperatorSetOf = (epoch: bigint) => Promise<OperatorSet | undefined>

export interface LookupResultOptions extends AbortOptions {
  /** Stake share the certificate must carry; default DEFAULT_QUORUM_BPS (use the task's). */
  quorumBps?: number
  /**
   * The operator set of a certificate's epoch (e.g. read from the chain); default: the node's
   * (`node.operatorSetOf`: the sets it knows, and with `readOperatorSet` the next epoch's). A throw (an RPC outage) is reported as that
   * peer's reason, not taken for "no certificate".
   */
  setOf?: OperatorSetOf
  /** Whom to ask; default: up to RESULT_LOOKUP_PEERS peers, full nodes first (connected, then known). */
  peers?: Array<PeerId | string>
  /** Per peer; default RESULT_LOOKUP_TIMEOUT_MS. */
  timeoutMs?: number
}

export interface FoundResult {
  certificate: QuorumCertificate
  /** The canonical output; its keccak256 is the certificate's resultHash. */
  output: Uint8Array
  /** The operator set the certificate verified against. */
  set: OperatorSet
  /** The peer whose answer was used. */
  peer: string
}

type PeerOutcome =
  | { kind: 'found', found: FoundResult }
  /** The certificate verifies but the peer did not send the output: it is fetched by reference. */
  | { kind: 'certified', certificate: QuorumCertificate, set: OperatorSet, peer: string }
  | { kind: 'failed', failure: PeerFailure }

const failed = (peer: string, code: string, detail?: string): PeerOutcome =>
  ({ kind: 'failed', failure: { peer, code, reason: detail === undefined ? code : `${code}: ${detail}` } })

/**
 * A fetch failure of the result or stream protocol as a short reason. Their messages repeat
 * the peer and the reference (`fetching … from <peer>: <why> [CODE]`), which the list of
 * failures already names, so only the why is kept.
 */
function describeFetchFailure (peer: string, err: ResultFetchError | StreamFetchError, timeoutMs: number): PeerFailure {
  const code = String(err.code)
  if (code.includes('TIMEOUT')) return { peer, code, reason: `timed out after ${formatDuration(timeoutMs)}` }
  if (code.includes('NOT_FOUND')) return { peer, code, reason: `${code}: does not hold it` }
  const why = err.message.replace(/^fetching .*? from \S+: /, '').replace(/ \[[A-Z_]+\]$/, '')
  return { peer, code, reason: `${code}: ${why}` }
}

/**
 * Whom to ask for something served over `protocol`: the caller's list, else up to `max` peers,
 * full nodes first, so the first peer this node connected to (its bootstrap, maybe a relay that
 * censors) cannot fill the list and hide the others. In order: connected peers that said
 * (identify) they serve `protocol`; connected peers that have not said; peers this node learned
 * of (an address in its peer store) but is not connected to, unless they said they do not serve
 * it (the fetch dials them); last, connected peers that said they do not (a light peer, a bare
 * relay), whose refusal is still listed.
 */
async function peerList (node: PoiNode, protocol: string, peers: Array<PeerId | string> | undefined, max: number): Promise<string[]> {
  if (peers !== undefined) return peers.map(p => p.toString())
  const connected = new Set(connectedPeerIds(node))
  const self = node.libp2p.peerId.toString()
  const ranked: Array<{ id: string, rank: number }> = [...connected].map(id => ({ id, rank: 1 }))
  for (const peer of await node.libp2p.peerStore.all()) {
    const id = peer.id.toString()
    const serves = peer.protocols.includes(protocol)
    const refuses = peer.protocols.length > 0 && !serves
    if (connected.has(id)) {
      const entry = ranked.find(r => r.id === id)
      if (entry !== undefined) entry.rank = serves ? 0 : refuses ? 3 : 1
    } else if (id !== self && !refuses && peer.addresses.length > 0) {
      ranked.push({ id, rank: 2 })
    }
  }
  // A stable sort: within a rank, connection order (then peer store order).
  return ranked.sort((a, b) => a.rank - b.rank).slice(0, max).map(({ id }) => id)
}

async function askForResult (node: PoiNode, peer: string, taskId: Uint8Array, quorumBps: number, setOf: OperatorSetOf, timeoutMs: number, signal: AbortSignal): Promise<PeerOutcome> {
  let answer
  try {
    answer = await fetchResult(node.libp2p, peerIdFromString(peer), taskId, { signal, timeoutMs })
  } catch (err) {
    if (err instanceof ResultFetchError) return { kind: 'failed', failure: describeFetchFailure(peer, err, timeoutMs) }
    throw err
  }
  switch (answer.status) {
    case 'unknown-task': return failed(peer, 'UNKNOWN_TASK', 'has never seen the task')
    case 'pending': return failed(peer, 'PENDING', 'knows the task, no certificate yet')
    case 'no-quorum': return failed(peer, 'NO_QUORUM', 'the task ended without a quorum')
    case 'refused': return failed(peer, 'REFUSED', `says it refused the task: ${answer.reason}`)
  }
  const { certificate } = answer
  let set: OperatorSet | undefined
  try {
    set = await setOf(certificate.epoch)
  } catch (err) {
    return failed(peer, 'OPERATOR_SET_UNAVAILABLE', `its certificate is of epoch ${certificate.epoch}, whose operator set could not be read: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`)
  }
  if (set === undefined) return failed(peer, 'UNKNOWN_EPOCH', `its certificate is of epoch ${certificate.epoch}, whose operator set this node does not know`)
  if (answer.output === undefined) {
    const verdict = verifyCertificate(certificate, set, { quorumBps })
    return verdict.ok ? { kind: 'certified', certificate, set, peer } : failed(peer, 'INVALID_CERTIFICATE', verdict.reason)
  }
  const verdict = verifyResult(certificate, answer.output, set, { quorumBps })
  if (!verdict.ok) return failed(peer, 'INVALID_CERTIFICATE', verdict.reason)
  return { kind: 'found', found: { certificate, output: answer.output, set, peer } }
}

/**
 * Asks full nodes, all at once, for a task's certificate and output over /poi/result/1/ and
 * returns the first answer that verifies against the operator set of its epoch (the others
 * are then cancelled). A lying node is skipped, never trusted. Throws ResultNotFoundError
 * listing every peer asked and why it could not help, or RequestAbortedError.
 */
export async function lookupResult (node: PoiNode, taskId: Uint8Array, options: LookupResultOptions = {}): Promise<FoundResult> {
  const quorumBps = options.quorumBps ?? DEFAULT_QUORUM_BPS
  const setOf: OperatorSetOf = options.setOf ?? (async (epoch) => await node.operatorSetOf(epoch))
  const timeoutMs = options.timeoutMs ?? RESULT_LOOKUP_TIMEOUT_MS
  const during = `asking full nodes for the certificate of task ${to0xHex(taskId)}`
  throwIfAborted(options.signal, during)
  const peers = await peerList(node, RESULT_PROTOCOL, options.peers, RESULT_LOOKUP_PEERS)

  // One controller for every request: the first verified answer, or the caller, ends the rest.
  const controller = new AbortController()
  const forward = (): void => { controller.abort(options.signal?.reason) }
  options.signal?.addEventListener('abort', forward, { once: true })
  const outcomes: PeerOutcome[] = []
  try {
    const found = await raceAbort(new Promise<FoundResult | undefined>((resolve, reject) => {
      let pending = peers.length
      if (pending === 0) resolve(undefined)
      peers.forEach((peer, i) => {
        askForResult(node, peer, taskId, quorumBps, setOf, timeoutMs, controller.signal).then((outcome) => {
          outcomes[i] = outcome
          if (outcome.kind === 'found') resolve(outcome.found)
          if (--pending === 0) resolve(undefined)
        }, reject)
      })
    }), options.signal, during)
    if (found !== undefined) return found
  } finally {
    controller.abort()
    options.signal?.removeEventListener('abort', forward)
  }

  // A verified certificate without its output: the output is fetched by its reference.
  const failures: PeerFailure[] = []
  for (const outcome of outcomes) {
    if (outcome.kind === 'failed') { failures.push(outcome.failure); continue }
    if (outcome.kind !== 'certified') continue
    const { certificate, set, peer } = outcome
    try {
      const output = await fetchOutput(node, certificate.outputRef, certificate.resultHash, { signal: options.signal })
      return { certificate, output, set, peer }
    } catch (err) {
      if (!(err instanceof OutputNotFoundError)) throw err
      failures.push({ peer, code: 'OUTPUT_UNAVAILABLE', reason: `OUTPUT_UNAVAILABLE: its certificate verifies, but ${err.message}` })
    }
  }
  throw new ResultNotFoundError(taskId, failures)
}

export interface FetchOutputOptions extends AbortOptions {
  /** Whom to ask, in order; default: up to OUTPUT_LOOKUP_PEERS peers, full nodes first (connected, then known). */
  peers?: Array<PeerId | string>
  /** Per peer; default OUTPUT_LOOKUP_TIMEOUT_MS. */
  timeoutMs?: number
}

/**
 * Resolves an output reference (from a certificate or the on-chain result) to the output
 * itself: asks full nodes over /poi/stream/1/, one after another, and returns the first
 * payload whose keccak256 is `resultHash`. The fetch already checks the payload against the
 * reference and its author's signature; the result-hash check ties it to what the quorum
 * signed. Throws OutputNotFoundError listing every peer asked and why, or RequestAbortedError.
 */
export async function fetchOutput (node: PoiNode, outputRef: Uint8Array, resultHash: Uint8Array, options: FetchOutputOptions = {}): Promise<Uint8Array> {
  const timeoutMs = options.timeoutMs ?? OUTPUT_LOOKUP_TIMEOUT_MS
  const during = `fetching output ${to0xHex(outputRef)}`
  const failures: PeerFailure[] = []
  for (const peer of await peerList(node, STREAM_PROTOCOL, options.peers, OUTPUT_LOOKUP_PEERS)) {
    throwIfAborted(options.signal, during)
    try {
      const { message } = await fetchStreamMessageByPayload(node.libp2p, peerIdFromString(peer), outputRef, { timeoutMs, signal: options.signal })
      const got = keccak256(message.payload, 'bytes')
      if (bytesEqual(got, resultHash)) return message.payload
      failures.push({ peer, code: 'WRONG_OUTPUT', reason: `WRONG_OUTPUT: its payload hashes to ${to0xHex(got)}, not to the certified result hash ${to0xHex(resultHash)}` })
    } catch (err) {
      if (!(err instanceof StreamFetchError)) throw err
      throwIfAborted(options.signal, during)
      failures.push(describeFetchFailure(peer, err, timeoutMs))
    }
  }
  throw new OutputNotFoundError(outputRef, failures)
}
