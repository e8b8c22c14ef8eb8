/**
 * What a node tells its users (the CLI's `--json` lines, tests, benchmarks, the requester):
 * one typed event map, dispatched by the role services through the node.
 */
import type { TypedEventTarget } from '@libp2p/interface'
import type { EquivocationEvidence } from '../../consensus/index.js'
import type { Attestation, QuorumCertificate, TaskAnnouncement } from '../../protocols/wire/index.js'
import type { FetchProgress } from '../models/index.js'
import type { ConflictEvidence } from '../../storage/index.js'
import type { BatchReport } from './batcher.js'
import type { BatchRefusal } from './batch-signer.js'
import type { ZkProof } from '../inference/zk/index.js'

/** A task's proof, checked here (or made here). */
export interface VerifiedZkProof {
  taskId: Uint8Array
  /** The payee, public signal 3. */
  prover: `0x${string}`
  /** Public signal 2: the commitment of `output`'s tensor. */
  outputCommitment: bigint
  /** The proof with its four public signals, as snarkjs writes it. */
  proof: ZkProof
  /** The canonical output the proof is about. */
  output: Uint8Array
  /** The proof body's stream reference in its prover's `proofs` channel. */
  proofRef: Uint8Array
  /** The Groth16 check's wall time here, ms (0 for a proof made here). */
  verifyMs: number
  /** Whether this node made (and announced) the proof. */
  provedHere: boolean
}

/** A message from the network this node refused: `reject` penalised the sender, `ignore` did not. */
export interface Rejection { topic: string, reason: string, from: string, verdict: 'reject' | 'ignore' }

/** Another live process uses this node's peer id (`self`), or a remote peer's (seen here). */
export interface DuplicateIdentity {
  /** The peer id used twice. */
  peerId: string
  /** True when it is this node's own peer id. */
  self: boolean
  /** How it was seen: two live connections with different identify answers here, or a peer's notice. */
  how: 'two-connections' | 'peer-notice'
  /** Who told this node (for a notice), or this node. */
  reportedBy: string
  /** Listen addresses of the two processes, when this node saw both. */
  addresses: string[][]
}

export interface PoiNodeEvents {
  task: CustomEvent<{ taskId: Uint8Array, task: TaskAnnouncement }>
  attested: CustomEvent<{ attestation: Attestation, inferenceMs: number, signMs: number }>
  attestation: CustomEvent<Attestation>
  /** This prover (`--prove`) proved a zk task's result and gossips the proof (node/roles/prover.ts). */
  proved: CustomEvent<{ taskId: Uint8Array, prover: `0x${string}`, inferenceMs: number, provingMs: number }>
  /** `verifyMs`: the longest signature check among the attestations this node counted (aggregators). */
  certificate: CustomEvent<{ certificate: QuorumCertificate, formedHere: boolean, verifyMs?: number }>
  'no-quorum': CustomEvent<{ taskId: Uint8Array }>
  evidence: CustomEvent<EquivocationEvidence>
  /** Two valid certificates for one task with different results, a certificate and a conflicting attestation by a signer it names, or an operator's batch leaf against its attestation. */
  'conflict-evidence': CustomEvent<ConflictReport>
  rejected: CustomEvent<Rejection>
  probe: CustomEvent<{ id: string, at: number }>
  /** This operator could not attest to a task (model unavailable, inference failed, runtime version refused). */
  failed: CustomEvent<{ taskId: Uint8Array, reason: string }>
  /** Progress of a model fetch (for the CLI). */
  'model-progress': CustomEvent<{ modelId: Uint8Array, progress: FetchProgress }>
  /** A model this node tried to fetch ahead of its tasks could not be fetched. */
  'prefetch-failed': CustomEvent<{ modelId: Uint8Array, reason: string }>
  /** A model became available here from the network (or this node's block store). */
  model: CustomEvent<{ modelId: Uint8Array, bytes: number, fromStore: boolean, ms: number }>
  /** Another live process uses this node's peer id (or, seen here, a remote peer's): warn the operator. */
  'duplicate-identity': CustomEvent<DuplicateIdentity>
  /** A step of a batch this aggregator proposed (issue 15): proposed, certified, settled on chain, failed, or dropped without quorum; or of another aggregator's batch a funded aggregator holds as a backup (certified when received, then settled with settledBy, or failed; node/roles/batch-backup.ts). */
  batch: CustomEvent<BatchReport>
  /** This operator refused to sign a batch proposal, and why (node/roles/batch-signer.ts). */
  'batch-refused': CustomEvent<BatchRefusal & { root: `0x${string}`, seq: bigint }>
  /** The first valid zk proof of a zk or both task, checked here (from gossip) or made here (node/roles/zk-proofs.ts). */
  proof: CustomEvent<VerifiedZkProof>
}

/** What a `conflict-evidence` event carries: the evidence, its stored id, and who it accuses (indices in the first certificate's epoch, or the batch's). */
export type ConflictReport = ConflictEvidence & { id: string, accused: number[] }

/** Where services dispatch the node's events. */
export type NodeEvents = TypedEventTarget<PoiNodeEvents>

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function preciseNow (): number {
  return performance.timeOrigin + performance.now()
}
