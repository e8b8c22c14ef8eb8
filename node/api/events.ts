/**
 * A running node's events as lines: the part of the `--json` union (node/cli/events.ts) that a
 * node prints while it runs, and the one mapping from PoiNode's events to those lines. The CLI
 * (`poi operator|aggregator|bootstrap --json`, and its lines for a person) and `GET /v1/events`
 * (server-sent events) both subscribe through subscribeNodeEvents, so what a script reads on
 * stdout and what a browser reads over HTTP are the same events, field for field.
 *
 * On the line, bytes are 0x-hex and bigints are decimal strings (JSON has neither).
 */
import type { TypedEventTarget } from '@libp2p/interface'
import type { TopicName } from '../../protocols/gossip/index.js'
import { to0xHex, uint256ToBytes32 } from '../../protocols/wire/index.js'
import type { FetchPhase } from '../models/index.js'
import type { PoiLibp2p } from '../p2p.js'
import { peerIdentityOf } from '../peer-identity.js'
import { preciseNow, type PoiNodeEvents, type SubmitterEvents } from '../roles/index.js'
import { modelIdToString } from '../inference/index.js'

export type Hex = `0x${string}`
/** A bigint as a decimal string. */
export type Decimal = `${bigint}`

/** What a running node prints about its work, one line per event (the node part of PoiEvent). */
export type NodeEventLine =
  /** A valid task arrived; `at` is wall-clock ms (sub-ms, comparable across local processes). */
  | { event: 'task', taskId: Hex, at: number }
  | { event: 'attested', taskId: Hex, resultHash: Hex, inferenceMs: number, signMs: number, at: number }
  /** A valid zk proof of a task, the first this node saw (checked here in `verifyMs`), or made (`provedHere`). */
  | { event: 'proof', taskId: Hex, prover: Hex, outputCommitment: Hex, verifyMs: number, provedHere: boolean, at: number }
  /** This prover (`--prove`) proved a zk task's result (inference and proving times, ms) and gossips the proof. */
  | { event: 'proved', taskId: Hex, prover: Hex, inferenceMs: number, provingMs: number, at: number }
  /** A quorum certificate this node formed (aggregators). */
  | { event: 'certificate', taskId: Hex, resultHash: Hex, signerBitmap: Hex, verifyMs?: number, at: number }
  /** A valid certificate this node received (formed by another node) and stored: the task is certified here too. */
  | { event: 'certified', taskId: Hex, resultHash: Hex, signerBitmap: Hex, at: number }
  | { event: 'no-quorum', taskId: Hex }
  | { event: 'evidence', taskId: Hex, operatorIndex: number }
  /**
   * Two valid certificates for the task with different results (`certificates`), a certificate
   * and an attestation with another result by a signer it names (`certificate-attestation`), or
   * an operator's batch signature over a leaf (batch `root`) with another result than its
   * attestation (`batch-attestation`), stored as evidence `id` against operators `accused`
   * (indices in the certificate's or the batch's epoch).
   */
  | { event: 'conflict-evidence', taskId: Hex, kind: 'certificates' | 'certificate-attestation' | 'batch-attestation', id: string, accused: number[], root?: Hex }
  /** A gossip message this node refused: `reject` penalised the sender, `ignore` did not. */
  | { event: 'rejected', topic: string, reason: string, from: string, verdict: 'reject' | 'ignore' }
  /** This operator could not attest to a task. */
  | { event: 'failed', taskId: Hex, reason: string }
  | { event: 'probe', id: string, at: number }
  | {
    event: 'model-progress', modelId: string, phase: FetchPhase, bytesDone: number, bytesTotal: number,
    chunksDone: number, chunksTotal: number, providers: number, dropped: number
  }
  /** A model became available: fetched through the DHT, or found in the node's block store. */
  | { event: 'model', modelId: string, bytes: number, fromStore: boolean, ms: number }
  /** A model fetched ahead of its tasks (a registered one) could not be fetched. */
  | { event: 'prefetch-failed', modelId: string, reason: string }
  /** Gossip mesh sizes, printed when they change: a launcher waits for them instead of sleeping. */
  | { event: 'mesh', tasks: number, attestations: number, certificates: number, attestationSubscribers: number }
  /** A certificate or evidence settled on-chain by this aggregator's own transaction. */
  | { event: 'submitted', kind: SubmissionKind, id: string, txHash: Hex, gasUsed: Decimal }
  /**
   * Not sent (or not the one that counted): the chain already held a result for the task (or had
   * slashed the operator), put there by account `settledBy` in transaction `txHash`; `resultHash`
   * is the result the chain holds (certificates).
   */
  | { event: 'submission-settled-by-other', kind: SubmissionKind, id: string, settledBy: Hex, txHash: Hex, resultHash?: Hex }
  /** Never going on-chain: the contract refuses it with custom error `revert`, or its data is gone. */
  | { event: 'submission-failed', kind: SubmissionKind, id: string, reason: string, revert?: string }
  /** An attempt failed for a reason that may pass (RPC, nonce, timeout): retried in `retryInMs`, without end. */
  | { event: 'submission-retry', kind: SubmissionKind, id: string, attempts: number, retryInMs: number, reason: string }
  /**
   * Another live process uses a peer id: this node's own (`self`, told by a peer, or seen here),
   * or a remote peer's seen here as two connections with different identify answers. `count`:
   * how many such reports this node has had so far.
   */
  | { event: 'duplicate-identity', peerId: string, self: boolean, how: 'two-connections' | 'peer-notice', reportedBy: string, addresses: string[][], count: number }
  /**
   * A step of a batch this aggregator proposed (issue 15): `proposed` to the operators, `certified`
   * by `signers` of them, `settled` on chain (`txHash`, `gasUsed` when this node sent it, `settledBy`),
   * `failed` (`reason`: the contract's error; `requeued` of its tasks wait for another batch, `droppedTasks` never will,
   * each with its node/roles/batcher.ts TaskDropCode) or `dropped` (no quorum in time; its tasks wait for the next batch).
   */
  | { event: 'batch', state: 'proposed' | 'certified' | 'settled' | 'failed' | 'dropped', root: Hex, epoch: Decimal, seq: Decimal, leaves: number, taskIds: Hex[], signers?: number, txHash?: Hex, gasUsed?: Decimal, settledBy?: Hex, reason?: string, requeued?: number, droppedTasks?: Array<{ taskId: Hex, code: string, reason: string }>, at: number }
  /** This operator refused to sign a batch proposal: `code` (node/roles/batch-signer.ts BatchRefusalCode) and why. */
  | { event: 'batch-refused', root: Hex, seq: Decimal, code: string, reason: string, taskId?: Hex }

export type NodeEventName = NodeEventLine['event']

/** What a submission posts: a certificate, equivocation evidence, conflicting certificates, or a zk proof (issue 16). */
export type SubmissionKind = 'certificate' | 'evidence' | 'conflict' | 'zk'

/** What an emitter may pass for a line: bytes where the line has hex, bigints where it has decimals. */
export type Encodable<T> =
  T extends Hex ? Hex | Uint8Array
    : T extends Decimal ? Decimal | bigint
      : T extends Array<infer U> ? Array<Encodable<U>>
        : T extends object ? { [K in keyof T]: Encodable<T[K]> }
          : T

/** One JSON line (without the newline): bytes as 0x-hex, bigints as decimal strings. */
export function serializeEvent (event: Encodable<{ event: string }>): string {
  return JSON.stringify(event, jsonValue)
}

/** Reads the raw value: a Buffer's toJSON runs before a replacer sees it. */
function jsonValue (this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key]
  if (raw instanceof Uint8Array) return to0xHex(raw)
  return typeof value === 'bigint' ? value.toString() : value
}

/** What subscribeNodeEvents reads: a PoiNode (its events, its submitter's, its gossip meshes). */
export interface NodeEventSource extends TypedEventTarget<PoiNodeEvents> {
  readonly libp2p: PoiLibp2p
  readonly submitter?: TypedEventTarget<SubmitterEvents>
  meshPeers: (topic: TopicName) => number
  topicPeers: (topic: TopicName) => number
}

export interface NodeEventOptions {
  /**
   * How often a model fetch reports progress: once per `phase` (scripts, the event stream) or
   * also at each tenth of the model's bytes (a person watching the CLI).
   */
  progress?: 'phase' | 'tenth'
}

/**
 * Hands every event of `node` to `onLine` as its line, until the returned function is called.
 * A stuck submission is reported at attempts 1, 2, 4, 8, … (it retries meanwhile), model
 * progress as `progress` says, and mesh sizes only when they change, so no consumer is flooded.
 */
export function subscribeNodeEvents (node: NodeEventSource, onLine: (line: NodeEventLine) => void, opts: NodeEventOptions = {}): () => void {
  const undo: Array<() => void> = []
  const on = <K extends keyof PoiNodeEvents>(type: K, listener: (evt: PoiNodeEvents[K]) => void): void => {
    node.addEventListener(type, listener)
    undo.push(() => { node.removeEventListener(type, listener) })
  }
  const submitter = node.submitter
  const onSubmitter = <K extends keyof SubmitterEvents>(type: K, listener: (evt: SubmitterEvents[K]) => void): void => {
    if (submitter == null) return
    submitter.addEventListener(type, listener)
    undo.push(() => { submitter.removeEventListener(type, listener) })
  }
  onSubmitter('confirmed', ({ detail: s }) => {
    // Set on every confirmed submission: the receipt's hash and gas.
    onLine({ event: 'submitted', kind: s.kind, id: s.id, txHash: s.txHash as Hex, gasUsed: BigInt(s.gasUsed ?? 0).toString() as Decimal })
  })
  onSubmitter('settled-by-other', ({ detail: s }) => {
    // Set on every settled-by-other submission: the other account and its transaction.
    onLine({ event: 'submission-settled-by-other', kind: s.kind, id: s.id, settledBy: s.settledBy as Hex, txHash: s.txHash as Hex, ...(s.resultHash != null ? { resultHash: s.resultHash as Hex } : {}) })
  })
  onSubmitter('failed', ({ detail: s }) => {
    onLine({ event: 'submission-failed', kind: s.kind, id: s.id, reason: s.lastError ?? 'unknown', ...(s.revert != null ? { revert: s.revert } : {}) })
  })
  onSubmitter('retrying', ({ detail: s }) => {
    if ((s.attempts & (s.attempts - 1)) !== 0) return
    onLine({ event: 'submission-retry', kind: s.kind, id: s.id, attempts: s.attempts, retryInMs: s.retryInMs, reason: (s.lastError ?? '').split('\n')[0] })
  })
  let lastProgress = ''
  on('model-progress', ({ detail: { modelId, progress: p } }) => {
    const tenth = opts.progress === 'tenth' && p.bytesTotal > 0 ? Math.floor(10 * p.bytesDone / p.bytesTotal) : 0
    const key = `${p.phase}/${tenth}`
    if (key === lastProgress) return
    lastProgress = key
    onLine({ event: 'model-progress', modelId: modelIdToString(modelId), ...p })
  })
  on('model', ({ detail: m }) => { onLine({ event: 'model', modelId: modelIdToString(m.modelId), bytes: m.bytes, fromStore: m.fromStore, ms: m.ms }) })
  on('prefetch-failed', ({ detail: f }) => { onLine({ event: 'prefetch-failed', modelId: modelIdToString(f.modelId), reason: f.reason }) })
  on('failed', ({ detail: f }) => { onLine({ event: 'failed', taskId: to0xHex(f.taskId), reason: f.reason }) })
  on('task', ({ detail: t }) => { onLine({ event: 'task', taskId: to0xHex(t.taskId), at: preciseNow() }) })
  on('probe', ({ detail: p }) => { onLine({ event: 'probe', id: p.id, at: p.at }) })
  on('attested', ({ detail: a }) => {
    onLine({ event: 'attested', taskId: to0xHex(a.attestation.taskId), resultHash: to0xHex(a.attestation.resultHash), inferenceMs: a.inferenceMs, signMs: a.signMs, at: preciseNow() })
  })
  on('proof', ({ detail: p }) => {
    onLine({ event: 'proof', taskId: to0xHex(p.taskId), prover: p.prover, outputCommitment: to0xHex(uint256ToBytes32(p.outputCommitment)), verifyMs: p.verifyMs, provedHere: p.provedHere, at: preciseNow() })
  })
  on('proved', ({ detail: p }) => {
    onLine({ event: 'proved', taskId: to0xHex(p.taskId), prover: p.prover, inferenceMs: p.inferenceMs, provingMs: p.provingMs, at: preciseNow() })
  })
  on('certificate', ({ detail: c }) => {
    const qc = c.certificate
    if (c.formedHere) onLine({ event: 'certificate', taskId: to0xHex(qc.taskId), resultHash: to0xHex(qc.resultHash), signerBitmap: to0xHex(qc.signerBitmap), ...(c.verifyMs !== undefined ? { verifyMs: c.verifyMs } : {}), at: preciseNow() })
    else onLine({ event: 'certified', taskId: to0xHex(qc.taskId), resultHash: to0xHex(qc.resultHash), signerBitmap: to0xHex(qc.signerBitmap), at: preciseNow() })
  })
  on('no-quorum', ({ detail: n }) => { onLine({ event: 'no-quorum', taskId: to0xHex(n.taskId) }) })
  on('evidence', ({ detail: e }) => { onLine({ event: 'evidence', taskId: to0xHex(e.taskId), operatorIndex: e.operatorIndex }) })
  on('conflict-evidence', ({ detail: c }) => {
    onLine({ event: 'conflict-evidence', taskId: to0xHex(c.taskId), kind: c.kind, id: c.id, accused: c.accused, ...(c.kind === 'batch-attestation' ? { root: c.batch.root } : {}) })
  })
  on('rejected', ({ detail: r }) => { onLine({ event: 'rejected', topic: r.topic, reason: r.reason, from: r.from, verdict: r.verdict }) })
  on('batch', ({ detail: b }) => {
    onLine({
      event: 'batch', state: b.state, root: b.root, epoch: b.epoch.toString() as Decimal, seq: b.seq.toString() as Decimal, leaves: b.leaves, taskIds: b.taskIds,
      ...(b.signers !== undefined ? { signers: b.signers } : {}), ...(b.txHash !== undefined ? { txHash: b.txHash } : {}),
      ...(b.gasUsed !== undefined ? { gasUsed: b.gasUsed.toString() as Decimal } : {}), ...(b.settledBy !== undefined ? { settledBy: b.settledBy } : {}),
      ...(b.reason !== undefined ? { reason: b.reason } : {}), ...(b.requeued !== undefined ? { requeued: b.requeued } : {}),
      ...(b.droppedTasks !== undefined ? { droppedTasks: b.droppedTasks.map(d => ({ taskId: d.taskId, code: d.code, reason: d.reason })) } : {}), at: preciseNow()
    })
  })
  on('batch-refused', ({ detail: r }) => {
    onLine({ event: 'batch-refused', root: r.root, seq: r.seq.toString() as Decimal, code: r.code, reason: r.reason, ...(r.taskId !== undefined ? { taskId: r.taskId } : {}) })
  })
  on('duplicate-identity', ({ detail: d }) => {
    onLine({ event: 'duplicate-identity', peerId: d.peerId, self: d.self, how: d.how, reportedBy: d.reportedBy, addresses: d.addresses, count: peerIdentityOf(node.libp2p)?.duplicateReports() ?? 1 })
  })
  // Mesh sizes on gossipsub's heartbeat, when they change: a launcher waits for them instead of sleeping.
  let lastMesh = ''
  const pubsub = node.libp2p.services.pubsub
  const onHeartbeat = (): void => {
    const mesh = { tasks: node.meshPeers('tasks'), attestations: node.meshPeers('attestations'), certificates: node.meshPeers('certificates'), attestationSubscribers: node.topicPeers('attestations') }
    const now = JSON.stringify(mesh)
    if (now !== lastMesh) { lastMesh = now; onLine({ event: 'mesh', ...mesh }) }
  }
  pubsub.addEventListener('gossipsub:heartbeat', onHeartbeat)
  undo.push(() => { pubsub.removeEventListener('gossipsub:heartbeat', onHeartbeat) })
  return () => { for (const u of undo.splice(0)) u() }
}
