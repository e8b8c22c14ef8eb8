/**
 * The relay: every full node validates and forwards the three topics (tasks, attestations,
 * certificates), holds the stream data a message refers to before forwarding it, stores what
 * it accepts, and hands it to the roles this node plays. A light requester follows only
 * certificates. Nothing reaches storage or a role before its validator (protocols/gossip)
 * accepted it.
 *
 * Its own state is bounded (protocols/wire/bounds.ts, "tasks and attestations in memory"):
 * attestations are accepted, stored and relayed only for tasks this node tracks; those that
 * come first wait a short, bounded while for their task (EarlyAttestations), unverified;
 * replays of tasks the TaskBook forgot are ignored before any signature work (ForgottenTasks).
 */
import { randomBytes } from 'node:crypto'
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { BufferedVerifier, OperatorSet } from '../../consensus/index.js'
import {
  MAX_PROBE_BYTES, checkAttestation, checkCertificate, checkTask, precheckAttestation, type AttestationPrecheckContext,
  type GossipRouter, type Validation, type Verdict
} from '../../protocols/gossip/index.js'
import { STREAM_REQUEST_TIMEOUT_MS } from '../../protocols/stream/index.js'
import {
  MAX_TRACKED_TASKS, bytesEqual, decodeAttestation, decodeQuorumCertificate, decodeTaskAnnouncement, taskIdOf, toHex, to0xHex,
  type Attestation, type QuorumCertificate, type TaskAnnouncement
} from '../../protocols/wire/index.js'
import type { NodeStore } from '../../storage/index.js'
import type { Aggregator } from './aggregator.js'
import type { AttestationLedger } from './attestation-ledger.js'
import type { Conflicts } from './conflicts.js'
import { EarlyAttestations, type EarlyAttestationsInit } from './early-attestations.js'
import type { Epochs } from './epochs.js'
import { preciseNow, type NodeEvents } from './events.js'
import { NotZkModelError, displayModelId, type ModelService } from './model-service.js'
import { ForgottenTasks, type ForgottenTasksInit } from './forgotten-tasks.js'
import type { Operator } from './operator.js'
import type { PaymentGate, PaymentRefusal } from './payment-gate.js'
import type { StreamData } from './stream-data.js'
import type { TaskBook } from './task-book.js'
import { RefusedTasks } from './refused-tasks.js'

const log = logger('poi:relay')

/**
 * Attestations for a task may still arrive shortly after its deadline from operators whose
 * clocks run slightly behind; they are kept for evidence but never counted toward a QC.
 */
const LATE_ATTESTATION_SLACK_MS = 2_000

/** Decides whether a requester may have a model run in a task with deadline `deadlineMs` (unix ms): undefined, or why not. */
export interface ModelGate {
  modelRefusal: (modelId: Uint8Array, requester: `0x${string}`, deadlineMs?: number) => Promise<string | undefined>
}

export interface RelayComponents {
  gossip: GossipRouter
  epochs: Epochs
  tasks: TaskBook
  ledger: AttestationLedger
  events: NodeEvents
  verifier: Pick<BufferedVerifier, 'verify'>
  /** Full nodes only. */
  store?: NodeStore
  streamData: StreamData
  models: ModelService
  operator?: Operator
  aggregator?: Aggregator
  modelGate?: ModelGate
  /** Full nodes only: keeps conflicting certificates (and a certificate against an attestation) as evidence. */
  conflicts?: Conflicts
  /** On a node with a chain: admits only tasks their requesters' deposits pay for. */
  paymentGate?: PaymentGate
}

export interface RelayInit {
  /** A light requester follows certificates only. */
  light: boolean
  /** Operators that do not aggregate publish attestations through fanout instead of subscribing. */
  subscribeAttestations: boolean
  /** The farthest task deadline this node accepts, from now. */
  maxTaskTtlMs: number
  /** Relay and timestamp latency probes (benchmarks and diagnostics). */
  probe: boolean
  /** Bounds of the early-attestation buffer (defaults: protocols/wire/bounds.ts; tests shrink them). */
  early?: EarlyAttestationsInit
  /** Bounds of the forgotten-task memory (defaults: protocols/wire/bounds.ts). */
  forgotten?: ForgottenTasksInit
}

export class Relay implements Startable {
  /** Attestations that arrived before their task, waiting for it. */
  readonly earlyAttestations: EarlyAttestations
  /** Tasks the TaskBook forgot: their messages are replays. */
  readonly forgottenTasks: ForgottenTasks
  /** Why tasks were refused here, for their requesters (/poi/result/1/ answers REFUSED). */
  readonly refusedTasks: RefusedTasks

  constructor (private readonly components: RelayComponents, private readonly init: RelayInit) {
    this.earlyAttestations = new EarlyAttestations(init.early)
    this.forgottenTasks = new ForgottenTasks(components.tasks, init.forgotten)
    this.refusedTasks = new RefusedTasks()
  }

  start (): void {
    const { gossip } = this.components
    if (!this.init.light) {
      gossip.handle('tasks', {
        validate: async (data, from) => await this.validateTask(data, from),
        onMessage: async (data) => { await this.onTask(decodeTaskAnnouncement(data)) }
      })
      // Attestations are verified (one pairing each) by every node that subscribes, so only
      // nodes that use them do: aggregators, which count them, and relays (bootstrap nodes),
      // which keep the mesh and catch equivocation. A pure operator publishes through fanout.
      if (this.init.subscribeAttestations) {
        gossip.handle('attestations', {
          validate: async (data, from) => await this.validateAttestation(data, from),
          onMessage: async (data) => { await this.onAttestation(decodeAttestation(data)) }
        })
      }
    }
    gossip.handle('certificates', {
      validate: async (data, from) => await this.validateCertificate(data, from),
      onMessage: async (data) => { await this.onCertificate(decodeQuorumCertificate(data)) }
    })
    if (this.init.probe) {
      gossip.handle('probes', {
        validate: async (data) => {
          if (data.length > MAX_PROBE_BYTES) return 'reject'
          this.components.events.safeDispatchEvent('probe', { detail: { id: toHex(data), at: preciseNow() } })
          return 'accept'
        }
      })
    }
  }

  stop (): void {
    this.components.gossip.stop()
    this.earlyAttestations.stop()
  }

  /** Publishes a signed task (requester side) and tracks it like one from gossip. */
  async announce (taskId: Uint8Array, task: TaskAnnouncement, bytes: Uint8Array): Promise<void> {
    this.track(taskId, task)
    await this.components.store?.putTask(taskId, task)
    await this.components.gossip.publish('tasks', bytes)
  }

  /** Gossips a latency probe; every node with probes on reports when it arrives. */
  async sendProbe (): Promise<{ id: string, at: number }> {
    const id = randomBytes(16)
    const at = preciseNow()
    await this.components.gossip.publish('probes', id)
    return { id: toHex(id), at }
  }

  private refuse (topic: string, from: string, reason: string, verdict: 'reject' | 'ignore' = 'reject'): Verdict {
    log('%s from %s: %s (%s)', topic, from, verdict, reason)
    this.components.events.safeDispatchEvent('rejected', { detail: { topic, reason, from, verdict } })
    return verdict
  }

  private verdictOf<T> (topic: string, from: string, v: Validation<T>): Verdict | T {
    if (v.verdict === 'accept') return v.message
    if (v.duplicate === true) return 'ignore'
    return this.refuse(topic, from, v.reason, v.verdict)
  }

  private async validateTask (data: Uint8Array, from: string): Promise<Verdict> {
    const { epochs, tasks, models, modelGate, paymentGate, store, aggregator } = this.components
    const set = epochs.current
    const validation = await checkTask(data, {
      chainId: set.domain.chainId,
      taskManager: set.domain.taskManager,
      known: (taskId) => tasks.has(taskId),
      forgotten: (taskId) => this.forgottenTasks.has(taskId),
      now: Date.now(),
      maxTaskTtlMs: this.init.maxTaskTtlMs,
      isModelId: (id) => models.isModelId(id),
      displayModelId,
      // A zk or both task is relayed only where its proofs can be checked (node/roles/zk-proofs.ts).
      zkRefusal: async (modelId, deadline) => {
        try {
          await models.zkVerifier(modelId, deadline)
          return undefined
        } catch (err) {
          return err instanceof NotZkModelError ? `model ${displayModelId(modelId)} has no zk circuit` : `cannot get the verification key of model ${displayModelId(modelId)}: ${(err as Error).message.split('\n')[0]}`
        }
      }
    })
    if (validation.verdict !== 'accept' && validation.taskId !== undefined) this.refusedTasks.add(validation.taskId, validation.reason)
    const checked = this.verdictOf('task', from, validation)
    if (typeof checked === 'string') return checked
    const { task, taskId } = checked
    const id = toHex(taskId)
    // Every refusal of this task from here on is remembered for its requester (/poi/result/1/).
    // A task tracked here already (another forwarder lacking its input) is not refused for its requester.
    const refuseTask = (reason: string, verdict: 'reject' | 'ignore' = 'reject', named = true): Verdict => {
      if (named && !tasks.has(id)) this.refusedTasks.add(id, reason)
      return this.refuse('task', from, reason, verdict)
    }
    // Without a chain, signing a task costs its requester nothing (with one, the payment gate
    // below makes it cost a deposit): past the bound, new tasks are dropped until old ones are
    // forgotten, rather than grow memory.
    if (!tasks.has(id) && tasks.size >= MAX_TRACKED_TASKS) return refuseTask(`task ${id}: this node already tracks ${tasks.size} tasks (MAX_TRACKED_TASKS)`, 'ignore')
    if (modelGate != null) {
      let refusal: string | undefined
      try {
        refusal = await modelGate.modelRefusal(task.modelId, to0xHex(task.requester), Number(task.deadline))
      } catch (err) {
        refusal = `cannot read the model registry: ${(err as Error).message.split('\n')[0]}`
      }
      // Ignored, not rejected: a peer that read the registry a moment earlier or later may
      // honestly disagree, and must not lose score.
      if (refusal !== undefined) return refuseTask(`task ${id}: ${refusal}`, 'ignore')
    }
    if (paymentGate != null) {
      let refusal: PaymentRefusal | undefined
      try {
        refusal = await paymentGate.admit(taskId, task)
      } catch (err) {
        refusal = { verdict: 'ignore', reason: `cannot read the requester's deposit from the chain: ${(err as Error).message.split('\n')[0]}` }
      }
      // A fee below the model's and the network's minimum is the requester's own signed choice:
      // rejected. An unfunded or defaulted requester is ignored: a relay that read the vault a
      // moment earlier may honestly have admitted the task, and must not lose score. A voucher
      // stripped or mangled on the way is not the requester's refusal (unsigned).
      if (refusal !== undefined) return refuseTask(`task ${id}: ${refusal.reason}`, refusal.verdict, refusal.unsigned !== true)
    }
    if (task.inputRef.length > 0) {
      // A node forwards a task only once it holds the task's input, so the peer that sent it
      // has the input and the next hops can fetch it here: no operator ever gets a task whose
      // input it cannot reach. So a forwarder that says it lacks the input is at fault (rejected).
      const missing = await this.components.streamData.hold('input', task.inputRef, from, Number(task.deadline))
      if (missing !== undefined) {
        if (!tasks.has(id)) paymentGate?.release(taskId)
        return refuseTask(`task ${id}: ${missing.reason}`, missing.verdict)
      }
    }
    if (tasks.has(id)) return 'ignore'
    // A task re-gossiped after a restart: if we already hold its certificate, it is settled
    // (no new aggregation, no deadline that could undo it). Only an aggregator acts on it, so
    // only it reads the disk here.
    const settled = aggregator != null && store != null && await store.getCertificate(taskId) != null
    this.track(taskId, task, settled)
    return 'accept'
  }

  private track (taskId: Uint8Array, task: TaskAnnouncement, settled = false): void {
    this.refusedTasks.delete(taskId)
    const { entry, added } = this.components.tasks.track(taskId, task, settled)
    if (added) this.components.aggregator?.track(entry)
    // Attestations that came first go on to validation now, as if they had just arrived.
    if (added) this.earlyAttestations.release(toHex(taskId))
  }

  /**
   * Runs after the verdict went back to gossipsub, so relaying never waits on the disk; the
   * write still lands before anything acts on the task.
   */
  private async onTask (task: TaskAnnouncement): Promise<void> {
    const taskId = taskIdOf(task, this.components.epochs.current.domain.taskManager)
    await this.components.store?.putTask(taskId, task)
    this.components.events.safeDispatchEvent('task', { detail: { taskId, task } })
    await this.components.operator?.attest(taskId, task)
  }

  /**
   * The previous epoch's set while a task announced before the change may still be live (the
   * longest task life this node accepts, plus the late slack): operators that had not yet read
   * the change sign with it, and an aggregation begun in that epoch counts only its signatures.
   * Accepted rather than merely ignored, so those tasks still certify; after it, ignored.
   */
  private previousSet (now: number): OperatorSet | undefined {
    const previous = this.components.epochs.previous
    if (previous == null || now > previous.until + this.init.maxTaskTtlMs + LATE_ATTESTATION_SLACK_MS) return undefined
    return previous.set
  }

  private attestationPrecheck (): AttestationPrecheckContext {
    return {
      operatorSet: this.components.epochs.current,
      previousSet: this.previousSet(Date.now()),
      forgotten: (taskId) => this.forgottenTasks.has(taskId)
    }
  }

  private async validateAttestation (data: Uint8Array, from: string): Promise<Verdict> {
    const { epochs, tasks, ledger, verifier } = this.components
    // Cheap checks first; an attestation for a task not known here waits for it, unverified,
    // and is neither stored nor relayed unless the task comes.
    const pre = this.verdictOf('attestation', from, precheckAttestation(data, this.attestationPrecheck()))
    if (typeof pre === 'string') return pre
    if (!tasks.has(pre.taskId)) {
      const why = await this.earlyAttestations.wait(toHex(pre.taskId), from, data.length, epochs.current.operators.length)
      if (why !== undefined) return this.refuse('attestation', from, `attestation for task ${toHex(pre.taskId)} by operator ${pre.operatorIndex}: ${why}`, 'ignore')
    }
    const checked = this.verdictOf('attestation', from, await checkAttestation(data, {
      ...this.attestationPrecheck(),
      now: Date.now(),
      acceptUntil: (taskId) => {
        const deadline = tasks.get(taskId)?.deadline
        return deadline === undefined ? undefined : deadline + LATE_ATTESTATION_SLACK_MS
      },
      firstResult: (taskId, operatorIndex) => ledger.firstResult(taskId, operatorIndex),
      verify: async (set, att) => {
        const started = performance.now()
        const valid = await verifier.verify(set)
        tasks.noteVerification(att.taskId, performance.now() - started)
        return valid
      }
    }))
    if (typeof checked === 'string') return checked
    const att = checked
    const kind = ledger.classify(att)
    if (kind === 'duplicate') return 'ignore'
    // Two signed results are evidence whether or not their outputs can be had.
    if (kind === 'equivocation') await ledger.recordEquivocation(att)
    if (att.output.length === 0) {
      const deadline = (tasks.get(att.taskId)?.deadline ?? Date.now()) + LATE_ATTESTATION_SLACK_MS
      // A forwarding peer that says it lacks the output it forwarded is at fault (rejected).
      const missing = await this.components.streamData.hold('output', att.outputRef, from, deadline)
      if (missing !== undefined) return this.refuse('attestation', from, `attestation for task ${toHex(att.taskId)} by operator ${att.operatorIndex}: ${missing.reason}`, missing.verdict)
    }
    if (kind === 'new') ledger.remember(att)
    return 'accept'
  }

  /** Stored before it counts toward a certificate, so a restart never forgets a counted signature. */
  private async onAttestation (att: Attestation): Promise<void> {
    const { store, tasks, conflicts } = this.components
    await store?.putAttestation(att)
    this.components.events.safeDispatchEvent('attestation', { detail: att })
    this.components.aggregator?.add(att)
    // A signer of the certificate this node holds that attests to another result: evidence.
    if (conflicts != null && store != null && tasks.get(att.taskId)?.settled === true) {
      const held = await store.getCertificate(att.taskId)
      if (held != null) await conflicts.certificateAndAttestation(held, att)
    }
  }

  private async validateCertificate (data: Uint8Array, from: string): Promise<Verdict> {
    const { epochs, tasks, store, streamData, aggregator, conflicts, verifier } = this.components
    const checked = this.verdictOf('certificate', from, await checkCertificate(data, {
      forgotten: (taskId) => this.forgottenTasks.has(taskId),
      settled: async (taskId) => {
        if (tasks.get(taskId)?.settled === true && aggregator == null) return true
        return store != null && await store.getCertificate(taskId) != null
      },
      // A certificate with another result than the one held here is evidence, verified in full.
      held: conflicts == null || store == null
        ? undefined
        : async (taskId) => {
          const held = await store.getCertificate(taskId)
          return held == null ? undefined : { resultHash: held.resultHash, pairs: await conflicts.pairsHeld(taskId) }
        },
      operatorSetOf: async (epoch) => await epochs.resolveSet(epoch),
      quorumBpsOf: (taskId) => tasks.get(taskId)?.task.quorumBps,
      verify: async (set) => await verifier.verify(set)
    }))
    if (typeof checked === 'string') return checked
    const qc = checked
    // Every full node that holds a certificate can serve its output too (to light requesters).
    if (qc.output.length === 0 && store != null) {
      // Always ignored: a certificate may come long after the attestations whose outputs its
      // forwarder held, which that forwarder may have evicted since under its bounds.
      const missing = await streamData.hold('output', qc.outputRef, from, Date.now() + STREAM_REQUEST_TIMEOUT_MS)
      if (missing !== undefined) return this.refuse('certificate', from, `certificate for task ${toHex(qc.taskId)}: ${missing.reason}`, 'ignore')
    }
    return 'accept'
  }

  private async onCertificate (qc: QuorumCertificate): Promise<void> {
    const { tasks, store, aggregator, events, conflicts } = this.components
    if (conflicts != null && store != null) {
      const held = await store.getCertificate(qc.taskId)
      if (held != null && !bytesEqual(held.resultHash, qc.resultHash)) {
        // Relayed (every aggregator can post it), kept as evidence, never taken as the task's result.
        await conflicts.certificates(held, qc)
        return
      }
      await conflicts.certificateAndAttestations(qc)
    }
    const entry = tasks.get(qc.taskId)
    // Someone else's valid certificate settles the task here too: no need to build our own.
    if (entry != null) entry.settled = true
    if (aggregator != null) await aggregator.onCertificate(qc)
    else await store?.putCertificate(qc, { submit: false })
    events.safeDispatchEvent('certificate', { detail: { certificate: qc, formedHere: false } })
  }
}

export function createRelay (components: RelayComponents, init: RelayInit): Relay {
  return new Relay(components, init)
}
