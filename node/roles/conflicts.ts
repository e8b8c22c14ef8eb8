/**
 * Conflicting statements about one task, kept as slashing evidence (issue 10, hole 4): two valid
 * certificates with different results, or a valid certificate and a valid attestation with
 * another result by an operator the certificate names as a signer. Operators whose keys cancel
 * (pk and −pk) can back conflicting results without ever attesting; their certificates are the
 * only evidence against them. Stored (storage/node-store.ts, `conflict/`), handed to the
 * submitter on funded aggregators (SlashingManager.submitConflictingCertificates and
 * submitCertificateAndAttestation), and reported as `conflict-evidence`.
 *
 * Since issue 15 (point 4, "disputes need no new trust") also an operator's own batch signature
 * over a batch whose leaf for a task has another result than that operator's attestation for the
 * task (SlashingManager.submitBatchLeafAndAttestation): a batch settles its leaves with no
 * per-task certificate on chain, so its signature is a statement about every leaf. The node
 * keeps the leaves of the last batch proposals it saw (MAX_WATCHED_BATCH_PROPOSALS) and holds each
 * verified batch signature against the attestations in its ledger once: a few map lookups per
 * leaf, no chain read.
 *
 * Everything handed here was verified before (certificates against their epoch's set,
 * attestations by the relay or signed here, batch signatures by the batches topic's validator,
 * proposals' roots against their leaves), so it is trusted.
 */
import { logger } from '@libp2p/logger'
import { bytesToHex, hexToBytes, type Hex } from 'viem'
import { BatchTree, decodeSignerBitmap, type BatchLeaf, type OperatorSet } from '../../consensus/index.js'
import {
  MAX_PENDING_BATCH_SIGNATURES, MAX_WATCHED_BATCH_PROPOSALS, bytesEqual, toHex, type Attestation, type QuorumCertificate
} from '../../protocols/wire/index.js'
import { conflictIdOf, type ConflictEvidence, type NodeStore } from '../../storage/index.js'
import type { AttestationLedger } from './attestation-ledger.js'
import type { Epochs } from './epochs.js'
import type { ConflictReport, NodeEvents } from './events.js'
import type { Submitter } from './submitter.js'

const log = logger('poi:conflicts')

export interface ConflictsComponents {
  store: NodeStore
  submitter?: Submitter
  events: NodeEvents
  epochs: Pick<Epochs, 'setOf' | 'resolveSet'>
  ledger: Pick<AttestationLedger, 'resultsOf' | 'firstAttestation'>
}

/** One operator's verified signature over a batch, as the batches topic carries it. */
export interface VerifiedBatchSignature {
  root: Hex
  epoch: bigint
  summaryHash: Hex
  operatorIndex: number
  signature: Uint8Array
}

/**
 * How far apart in epochs an operator's attestation for a task and a batch holding the task may
 * be: a task lives until its deadline (minutes), far shorter than an epoch, and a batch holds only
 * leaves certified in its own epoch (BatchSigner), so the attestation is of the batch's epoch or
 * the one before (the task started just before the epoch changed) or after.
 */
const BATCH_ATTESTATION_EPOCH_SPAN = 1n

export class Conflicts {
  /** Root (lowercase hex) → leaves of the proposals seen here, oldest first (MAX_WATCHED_BATCH_PROPOSALS). */
  private readonly proposals = new Map<string, readonly BatchLeaf[]>()
  /** Verified signatures whose proposal has not arrived yet, oldest first (MAX_PENDING_BATCH_SIGNATURES). */
  private readonly pendingSignatures: VerifiedBatchSignature[] = []

  constructor (private readonly components: ConflictsComponents) {}

  /**
   * A batch proposal seen on the batches topic or proposed here (its root checked against its
   * leaves): signatures over it are held against the attestations this node keeps, including
   * the ones that arrived before it.
   */
  async batchProposal (root: Hex, leaves: readonly BatchLeaf[]): Promise<void> {
    const key = root.toLowerCase()
    if (this.proposals.has(key)) return
    this.proposals.set(key, leaves)
    for (const oldest of this.proposals.keys()) {
      if (this.proposals.size <= MAX_WATCHED_BATCH_PROPOSALS) break
      this.proposals.delete(oldest)
    }
    const waiting = this.pendingSignatures.filter(s => s.root.toLowerCase() === key)
    if (waiting.length === 0) return
    this.pendingSignatures.splice(0, this.pendingSignatures.length, ...this.pendingSignatures.filter(s => s.root.toLowerCase() !== key))
    for (const sig of waiting) await this.batchLeavesAgainstAttestations(leaves, sig)
  }

  /**
   * A verified batch signature: evidence against its operator for every leaf of the batch whose
   * task that operator attested with another result (the first attestation this node holds).
   * Held until its proposal arrives when that is not here yet.
   */
  async batchSignature (sig: VerifiedBatchSignature): Promise<void> {
    const leaves = this.proposals.get(sig.root.toLowerCase())
    if (leaves != null) {
      await this.batchLeavesAgainstAttestations(leaves, sig)
      return
    }
    this.pendingSignatures.push(sig)
    if (this.pendingSignatures.length > MAX_PENDING_BATCH_SIGNATURES) this.pendingSignatures.shift()
  }

  private async batchLeavesAgainstAttestations (leaves: readonly BatchLeaf[], sig: VerifiedBatchSignature): Promise<void> {
    const { epochs, ledger } = this.components
    const key = epochs.setOf(sig.epoch)?.operators[sig.operatorIndex]?.blsPublicKey
    if (key == null) return
    // The signer's index in each epoch near the batch's that this node knows: the ledger keeps
    // attestations by operator index, so each leaf costs one lookup per such epoch.
    const indices = new Set<number>()
    for (let e = sig.epoch - BATCH_ATTESTATION_EPOCH_SPAN; e <= sig.epoch + BATCH_ATTESTATION_EPOCH_SPAN; e++) {
      const index = e < 0n ? -1 : epochs.setOf(e)?.operators.findIndex(o => bytesEqual(o.blsPublicKey, key)) ?? -1
      if (index >= 0) indices.add(index)
    }
    let tree: BatchTree | undefined
    for (const [k, leaf] of leaves.entries()) {
      const taskId = leaf.taskId.slice(2).toLowerCase()
      for (const index of indices) {
        const att = ledger.firstAttestation(taskId, index)
        if (att == null || att.epoch < sig.epoch - BATCH_ATTESTATION_EPOCH_SPAN || att.epoch > sig.epoch + BATCH_ATTESTATION_EPOCH_SPAN) continue
        if (!bytesEqual(epochs.setOf(att.epoch)?.operators[att.operatorIndex]?.blsPublicKey ?? new Uint8Array(0), key)) continue
        if (bytesEqual(att.resultHash, hexToBytes(leaf.resultHash))) continue
        tree ??= new BatchTree(leaves)
        await this.record({
          kind: 'batch-attestation',
          taskId: att.taskId,
          batch: {
            root: sig.root, epoch: sig.epoch, summaryHash: sig.summaryHash, operatorIndex: sig.operatorIndex, signature: bytesToHex(sig.signature),
            resultHash: leaf.resultHash, outputRef: leaf.outputRef, proof: tree.proof(k)
          },
          attestation: att
        }, [sig.operatorIndex])
      }
    }
  }

  /** Conflicting certificate pairs this node keeps for the task (0 or 1: MAX_CONFLICTING_CERTIFICATE_PAIRS_PER_TASK). */
  async pairsHeld (taskId: Uint8Array): Promise<number> {
    return await this.components.store.getConflict(conflictIdOf({ kind: 'certificates', taskId })) != null ? 1 : 0
  }

  /**
   * `held` is the certificate this node keeps for the task, `qc` a valid one with another result:
   * evidence against every operator named as a signer in both (none: nothing to record).
   */
  async certificates (held: QuorumCertificate, qc: QuorumCertificate): Promise<void> {
    if (bytesEqual(held.resultHash, qc.resultHash)) return
    const accused = await this.namedInBoth(held, qc)
    if (accused.length === 0) {
      log('task %s: conflicting certificates name no common signer; nothing to slash', toHex(qc.taskId))
      return
    }
    await this.record({ kind: 'certificates', taskId: held.taskId, a: held, b: qc }, accused)
  }

  /** Evidence from `qc` against each signer whose first attestation this node holds for the task carries another result. */
  async certificateAndAttestations (qc: QuorumCertificate): Promise<void> {
    const set = this.components.epochs.setOf(qc.epoch)
    if (set == null) return
    for (const att of this.components.ledger.resultsOf(qc.taskId)) await this.certificateAndAttestation(qc, att, set)
  }

  /** Evidence from a valid attestation with another result than `qc`'s, when `qc` names its operator as a signer. */
  async certificateAndAttestation (qc: QuorumCertificate, att: Attestation, certificateSet?: OperatorSet): Promise<void> {
    if (!bytesEqual(qc.taskId, att.taskId) || bytesEqual(qc.resultHash, att.resultHash)) return
    const set = certificateSet ?? this.components.epochs.setOf(qc.epoch)
    const attSet = this.components.epochs.setOf(att.epoch)
    const key = attSet?.operators[att.operatorIndex]?.blsPublicKey
    if (set == null || key == null) return
    const index = set.operators.findIndex(o => bytesEqual(o.blsPublicKey, key))
    if (index < 0 || !signersOf(qc, set).has(index)) return
    await this.record({ kind: 'certificate-attestation', taskId: qc.taskId, certificate: qc, attestation: att }, [index])
  }

  /** Indices (in `a`'s epoch) of the operators named as signers in both, matched by key across epochs. */
  private async namedInBoth (a: QuorumCertificate, b: QuorumCertificate): Promise<number[]> {
    const { epochs } = this.components
    const setA = await epochs.resolveSet(a.epoch)
    const setB = await epochs.resolveSet(b.epoch)
    if (setA == null || setB == null) return []
    const inB = new Set([...signersOf(b, setB)].map(i => toHex(setB.operators[i].blsPublicKey)))
    return [...signersOf(a, setA)].filter(i => inB.has(toHex(setA.operators[i].blsPublicKey)))
  }

  private async record (evidence: ConflictEvidence, accused: number[]): Promise<void> {
    const { store, submitter, events } = this.components
    // Kept once: a repeat (two conflicting certificates validated at once, an attestation seen
    // again) must not overwrite the evidence or reset a submission that already settled.
    if (await store.getConflict(conflictIdOf(evidence)) != null) return
    const id = await store.putConflict(evidence, { submit: submitter != null })
    log('task %s: %s stored as evidence against operators %s', toHex(evidence.taskId), DESCRIPTIONS[evidence.kind], accused.join(', '))
    if (submitter != null) submitter.kick('conflict', id)
    events.safeDispatchEvent('conflict-evidence', { detail: { ...evidence, id, accused } })
  }
}

const DESCRIPTIONS: Record<ConflictEvidence['kind'], string> = {
  certificates: 'two certificates with different results',
  'certificate-attestation': 'a certificate and a conflicting attestation',
  'batch-attestation': 'a batch signature over a leaf and a conflicting attestation'
}

function signersOf (qc: QuorumCertificate, set: OperatorSet): Set<number> {
  const decoded = decodeSignerBitmap(qc.signerBitmap, set.operators.length)
  return new Set(decoded.ok ? decoded.signers : [])
}
