/**
 * Conflicting statements about one task, kept as slashing evidence (issue 10, hole 4): two valid
 * certificates with different results, or a valid certificate and a valid attestation with
 * another result by an operator the certificate names as a signer. Operators whose keys cancel
 * (pk and −pk) can back conflicting results without ever attesting; their certificates are the
 * only evidence against them. Stored (storage/node-store.ts, `conflict/`), handed to the
 * submitter on funded aggregators (SlashingManager.submitConflictingCertificates and
 * submitCertificateAndAttestation), and reported as `conflict-evidence`.
 *
 * Everything handed here was verified before (certificates against their epoch's set,
 * attestations by the relay or signed here), so it is trusted.
 */
import { logger } from '@libp2p/logger'
import { decodeSignerBitmap, type OperatorSet } from '../../consensus/index.js'
import { bytesEqual, toHex, type Attestation, type QuorumCertificate } from '../../protocols/wire/index.js'
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
  ledger: Pick<AttestationLedger, 'resultsOf'>
}

export class Conflicts {
  constructor (private readonly components: ConflictsComponents) {}

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
    log('task %s: %s stored as evidence against operators %s', toHex(evidence.taskId), evidence.kind === 'certificates' ? 'two certificates with different results' : 'a certificate and a conflicting attestation', accused.join(', '))
    if (submitter != null) submitter.kick('conflict', id)
    events.safeDispatchEvent('conflict-evidence', { detail: { ...evidence, id, accused } })
  }
}

function signersOf (qc: QuorumCertificate, set: OperatorSet): Set<number> {
  const decoded = decodeSignerBitmap(qc.signerBitmap, set.operators.length)
  return new Set(decoded.ok ? decoded.signers : [])
}
