/**
 * Aggregation of one task's attestations into a quorum certificate (DESIGN §5).
 *
 * Pure state machine: no network, no timers, no signature checks. The caller verifies each
 * attestation (BufferedVerifier) before add(), drives time by passing `now`, and decides when
 * the grace window after quorum ends (allSigned() lets it end early).
 *
 * Groups: attestations are grouped by what was signed, (resultHash, outputRef): only signatures
 * over the same message can be aggregated into one BLS signature. Quorum is reported per
 * resultHash; buildCertificate uses the heaviest group of that resultHash that has quorum.
 *
 * Equivocators: once an operator is seen signing two different result hashes for this task,
 * none of its signatures count towards any quorum, including the one it signed first. It will
 * be slashed, so its stake is not a guarantee of either result; counting it would let a
 * byzantine operator lend its stake to both sides and push two results towards quorum, and
 * the contract would pay a signer it is about to slash. A QC already built before the second
 * signature arrived stays valid (it cannot be recalled); the evidence is still returned.
 */
import bls from './bls.js'
import { BPS_DENOMINATOR, bytesEqual, toHex, type Attestation, type QuorumCertificate, uint256ToBytes } from '../protocols/wire/index.js'
import { CERTIFICATE_VERSION, DEFAULT_MIN_SIGNERS, HASH_LENGTH } from './constants.js'
import { encodeSignerBitmap } from './bitmap.js'
import type { EquivocationEvidence } from './equivocation.js'
import { AggregationError } from './errors.js'
import type { OperatorSet } from './operator-set.js'

export type TaskAggregationParameters = {
  operatorSet: OperatorSet
  taskId: Uint8Array
  /** Share of the epoch's total stake needed, in basis points (1..10000), from the task announcement. */
  quorumBps: number
  /** Fewest distinct signers a QC may have (default DEFAULT_MIN_SIGNERS = 3). */
  minSigners?: number
  /** Task deadline, unix milliseconds; attestations after it are 'late'. */
  deadline: number
}

export type AddResult =
  | { kind: 'accepted', resultHash: Uint8Array }
  /** Same operator, same result hash again (relayed copy, or a re-sign with another outputRef). */
  | { kind: 'duplicate' }
  /** Same operator, other result hash: slashing evidence; the operator stops counting. */
  | { kind: 'equivocation', evidence: EquivocationEvidence }
  | { kind: 'unknown-operator' }
  | { kind: 'wrong-epoch' }
  /** The attestation is for another task: a caller bug or a misrouted message. */
  | { kind: 'wrong-task' }
  | { kind: 'late' }

export type AggregationStatus = 'collecting' | 'quorum' | 'no-quorum'

type Group = {
  resultHash: Uint8Array
  outputRef: Uint8Array
  /** Output of the group's first attestation; the caller checked it hashes to resultHash. */
  output: Uint8Array
  attestations: Map<number, Attestation>
}

type Tally = { group: Group, signers: number[], signedStake: bigint }

export class TaskAggregation {
  readonly taskId: Uint8Array
  readonly operatorSet: OperatorSet
  readonly quorumBps: number
  readonly minSigners: number
  readonly deadline: number

  private readonly groups = new Map<string, Group>()
  /** operator index → result hash (hex) → first attestation for it. */
  private readonly byOperator = new Map<number, Map<string, Attestation>>()
  private readonly equivocators = new Set<number>()

  constructor (params: TaskAggregationParameters) {
    const { operatorSet, taskId, quorumBps, minSigners = DEFAULT_MIN_SIGNERS, deadline } = params
    if (!(taskId instanceof Uint8Array) || taskId.length !== HASH_LENGTH) {
      throw new AggregationError(`taskId must be ${HASH_LENGTH} bytes`)
    }
    if (!Number.isInteger(quorumBps) || quorumBps < 1 || quorumBps > BPS_DENOMINATOR) {
      throw new AggregationError(`quorumBps must be an integer in 1..${BPS_DENOMINATOR}, got ${quorumBps}`)
    }
    if (!Number.isInteger(minSigners) || minSigners < 1) {
      throw new AggregationError(`minSigners must be a positive integer, got ${minSigners}`)
    }
    if (!Number.isFinite(deadline)) throw new AggregationError(`deadline must be unix milliseconds, got ${deadline}`)
    this.operatorSet = operatorSet
    this.taskId = Uint8Array.from(taskId)
    this.quorumBps = quorumBps
    this.minSigners = minSigners
    this.deadline = deadline
  }

  /** Records an attestation whose signature the caller has already verified. */
  add (attestation: Attestation, now: number): AddResult {
    if (!bytesEqual(attestation.taskId, this.taskId)) return { kind: 'wrong-task' }
    if (attestation.epoch !== this.operatorSet.epoch) return { kind: 'wrong-epoch' }
    const index = attestation.operatorIndex
    if (this.operatorSet.operators[index] === undefined) return { kind: 'unknown-operator' }

    // duplicates and equivocation are checked before lateness: a late second result is still
    // slashing evidence
    const resultKey = toHex(attestation.resultHash)
    const previous = this.byOperator.get(index)
    if (previous?.has(resultKey) === true) return { kind: 'duplicate' }
    if (previous !== undefined && previous.size > 0) {
      const first = previous.values().next().value as Attestation
      previous.set(resultKey, attestation)
      this.equivocators.add(index)
      return {
        kind: 'equivocation',
        evidence: { taskId: Uint8Array.from(this.taskId), operatorIndex: index, epoch: attestation.epoch, a: first, b: attestation }
      }
    }
    if (now > this.deadline) return { kind: 'late' }

    this.byOperator.set(index, new Map([[resultKey, attestation]]))
    const groupKey = `${resultKey}:${toHex(attestation.outputRef)}`
    let group = this.groups.get(groupKey)
    if (group === undefined) {
      group = { resultHash: attestation.resultHash, outputRef: attestation.outputRef, output: attestation.output, attestations: new Map() }
      this.groups.set(groupKey, group)
    }
    group.attestations.set(index, attestation)
    return { kind: 'accepted', resultHash: attestation.resultHash }
  }

  /** The result hash whose signers meet the quorum (stake share and signer count), or null. */
  quorumReached (): Uint8Array | null {
    return this.heaviestQuorum()?.group.resultHash ?? null
  }

  /** True when every operator of the epoch signed `resultHash` (the grace window can end early). */
  allSigned (resultHash: Uint8Array): boolean {
    const total = this.operatorSet.operators.length
    return this.tallies().some(t => bytesEqual(t.group.resultHash, resultHash) && t.signers.length === total)
  }

  /** Operator indices currently caught equivocating on this task. */
  equivocatingOperators (): number[] {
    return [...this.equivocators].sort((x, y) => x - y)
  }

  status (now: number): AggregationStatus {
    if (this.heaviestQuorum() !== null) return 'quorum'
    return now > this.deadline ? 'no-quorum' : 'collecting'
  }

  /** Aggregates the signatures of `resultHash`'s quorum group. Throws AggregationError without quorum. */
  buildCertificate (resultHash: Uint8Array): QuorumCertificate {
    const tally = this.heaviestQuorum(resultHash)
    if (tally === null) {
      throw new AggregationError(`no quorum for result ${toHex(resultHash)} of task ${toHex(this.taskId)}: wait for more attestations or for status() to report 'quorum'`)
    }
    const { group, signers, signedStake } = tally
    const signatures = signers.map(index => (group.attestations.get(index) as Attestation).blsSig)
    let aggregateSig: Uint8Array
    try {
      aggregateSig = bls.aggregateSignatures(signatures)
    } catch (err) {
      throw new AggregationError(`cannot aggregate the signatures for result ${toHex(resultHash)}: ${(err as Error).message}; were the attestations verified before add()?`)
    }
    return {
      version: CERTIFICATE_VERSION,
      taskId: Uint8Array.from(this.taskId),
      resultHash: Uint8Array.from(group.resultHash),
      outputRef: Uint8Array.from(group.outputRef),
      epoch: this.operatorSet.epoch,
      signerBitmap: encodeSignerBitmap(signers),
      aggregateSig: Uint8Array.from(aggregateSig),
      signedStake: uint256ToBytes(signedStake),
      totalStake: uint256ToBytes(this.operatorSet.totalStake),
      output: Uint8Array.from(group.output)
    }
  }

  private meetsQuorum (tally: Tally): boolean {
    return tally.signers.length >= this.minSigners &&
      tally.signedStake * BigInt(BPS_DENOMINATOR) >= BigInt(this.quorumBps) * this.operatorSet.totalStake
  }

  private heaviestQuorum (resultHash?: Uint8Array): Tally | null {
    let best: Tally | null = null
    for (const tally of this.tallies()) {
      if (resultHash !== undefined && !bytesEqual(tally.group.resultHash, resultHash)) continue
      if (!this.meetsQuorum(tally)) continue
      if (best === null || tally.signedStake > best.signedStake) best = tally
    }
    return best
  }

  /** Counted signers (equivocators excluded) and their stake, per group. */
  private tallies (): Tally[] {
    const tallies: Tally[] = []
    for (const group of this.groups.values()) {
      const signers = [...group.attestations.keys()].filter(index => !this.equivocators.has(index)).sort((x, y) => x - y)
      const signedStake = signers.reduce((sum, index) => sum + this.operatorSet.operators[index].stake, 0n)
      tallies.push({ group, signers, signedStake })
    }
    return tallies
  }
}
