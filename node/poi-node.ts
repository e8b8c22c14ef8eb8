import { randomBytes } from 'node:crypto'
import { TypedEventEmitter } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { bytesToHex, keccak256 } from 'viem'
import {
  BufferedVerifier, TaskAggregation, attestationSignatureSet, signAttestation, verifyCertificate,
  DEFAULT_QUORUM_BPS, type OperatorSet, type EquivocationEvidence
} from '../consensus/index.js'
import {
  MAX_INLINE_OUTPUT_BYTES, decodeAttestation, decodeQuorumCertificate, decodeTaskAnnouncement,
  encodeAttestation, encodeQuorumCertificate, encodeTaskAnnouncement, taskIdOf, verifyTaskSignature,
  DecodeError, type Attestation, type QuorumCertificate, type TaskAnnouncement, GENESIS_PREV_ID,
  MAX_STREAM_PAYLOAD_BYTES, createStreamMessage, encodeStreamMessage
} from '../protocols/wire/index.js'
import { GossipRouter, MAX_PROBE_BYTES, type Verdict, type TopicName } from '../protocols/gossip/index.js'
import { ResultServer } from '../protocols/result/index.js'
import { NetworkInfoServer } from '../protocols/network/index.js'
import { shardServer } from '../protocols/shard/index.js'
import {
  MemoryMessageSource, STREAM_REQUEST_TIMEOUT_MS, StreamServer, fetchStreamMessage,
  fetchStreamMessageByPayload
} from '../protocols/stream/index.js'
import { peerIdFromString } from '@libp2p/peer-id'
import { BlockStore, NodeStore, StreamStore } from '../storage/index.js'
import { ModelNotFoundError, fetchModel, importModel, listModels, modelCids, provideModel, type FetchProgress } from './models/index.js'
import { Submitter, type SettlementChain } from './roles/submitter.js'
import type { NodeConfig } from './config.js'
import { InferenceRunner, loadModelDir, modelIdToString, type ModelDir as LoadedModel } from './inference/index.js'
import type { Keystore } from './keys.js'
import { createPoiLibp2p, type PoiLibp2p } from './p2p.js'

const log = logger('poi:node')

/**
 * Attestations for a task may still arrive shortly after its deadline from
 * operators whose clocks run slightly behind; they are kept for evidence but
 * never counted toward a QC.
 */
const LATE_ATTESTATION_SLACK_MS = 2_000
/** Announcing a model's blocks on the DHT is given this long. */
const MODEL_PROVIDE_TIMEOUT_MS = 60_000
/** How soon an operator looks for a model's providers again when none were found. */
const MODEL_SEARCH_RETRY_MS = 500
/** A failed announcement (no DHT peers yet, say) is retried after 1, 2, 4 … s. */
const PROVIDE_RETRY_MS = 1_000
const MAX_PROVIDE_RETRIES = 8
/** kad-dht provider records live 48 h; re-announce well before. */
const REPROVIDE_INTERVAL_MS = 12 * 60 * 60_000
/**
 * How long a full node keeps the copies of other nodes' stream messages it
 * fetched to relay a task or a result (inputs, outputs by reference): long
 * past any task's deadline, so late requesters can still get an output from
 * relays; the operators keep their own outputs for good.
 */
export const STREAM_CACHE_RETENTION_MS = 24 * 60 * 60_000
/** How often expired copies are forgotten. */
const STREAM_CACHE_SWEEP_MS = 10 * 60_000
/** A prefetch (a registered model fetched at start, before any task needs it) may take this long. */
const PREFETCH_TIMEOUT_MS = 10 * 60_000
/** The stream channel every operator writes its outputs to. */
export const OUTPUT_CHANNEL = 'outputs'
/** The stream channel a full node puts the inputs of its own tasks in. */
export const INPUT_CHANNEL = 'inputs'
/**
 * A light requester keeps a task's input in memory (it has no storage) and
 * serves it this long past the task's deadline, for operators that start late.
 */
const HELD_INPUT_SLACK_MS = 60_000
/**
 * How long an aggregator leaves a certificate it received (not formed) to
 * the aggregator that formed it, before posting it itself if the chain still
 * lacks it: several seconds of a normal submission, so races are rare.
 */
const BACKUP_SUBMISSION_DELAY_MS = 5_000
/** Tasks whose attestations may wait in memory for the task itself to arrive. */
const MAX_EARLY_TASKS = 256
/** Forget a task's in-memory state this long after its deadline (it stays in storage). */
const TASK_MEMORY_TTL_MS = 60_000

export class NotInOperatorSetError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'NotInOperatorSetError'
  }
}

export type NodeRole = 'operator' | 'aggregator' | 'bootstrap' | 'requester'

export interface PoiNodeOptions {
  /** Run models and sign results (needs the node's BLS key in the operator set). */
  operate: boolean
  /** Build certificates from attestations and gossip them. */
  aggregate: boolean
  /** Light peer: DHT client, no storage, only follows certificates. */
  light: boolean
  keystore: Keystore
  config: NodeConfig
  operatorSet: OperatorSet
  /** Where formed certificates and equivocation evidence are settled (aggregators with a chain). */
  settlement?: SettlementChain
  /** Relay and timestamp latency probes (benchmarks and diagnostics; off by default). */
  probe?: boolean
  /**
   * Which models the network runs (the on-chain ModelRegistry, through a
   * ChainClient): tasks for a model it refuses are dropped with its reason.
   * Without it, a task may name any model id, fetched through the DHT.
   */
  modelGate?: ModelGate
}

/** Decides whether a requester may have a model run: undefined, or why not. */
export interface ModelGate {
  modelRefusal: (modelId: Uint8Array, requester: `0x${string}`) => Promise<string | undefined>
}

/** A message from the network this node refused: `reject` penalised the sender, `ignore` did not. */
export interface Rejection { topic: string, reason: string, from: string, verdict: 'reject' | 'ignore' }

export interface PoiNodeEvents {
  task: CustomEvent<{ taskId: Uint8Array, task: TaskAnnouncement }>
  attested: CustomEvent<{ attestation: Attestation, inferenceMs: number, signMs: number }>
  attestation: CustomEvent<Attestation>
  /** `verifyMs`: the longest signature check among the attestations this node counted (aggregators). */
  certificate: CustomEvent<{ certificate: QuorumCertificate, formedHere: boolean, verifyMs?: number }>
  'no-quorum': CustomEvent<{ taskId: Uint8Array }>
  evidence: CustomEvent<EquivocationEvidence>
  rejected: CustomEvent<Rejection>
  probe: CustomEvent<{ id: string, at: number }>
  /** This operator could not attest to a task (model unavailable, inference failed). */
  failed: CustomEvent<{ taskId: Uint8Array, reason: string }>
  /** Progress of a model fetch (for the CLI). */
  'model-progress': CustomEvent<{ modelId: Uint8Array, progress: FetchProgress }>
  /** A model this node tried to fetch ahead of its tasks could not be fetched. */
  'prefetch-failed': CustomEvent<{ modelId: Uint8Array, reason: string }>
  /** A model became available here from the network (or this node's block store). */
  model: CustomEvent<{ modelId: Uint8Array, bytes: number, fromStore: boolean, ms: number }>
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function preciseNow (): number {
  return performance.timeOrigin + performance.now()
}

interface TaskState {
  taskId: Uint8Array
  task: TaskAnnouncement
  deadline: number
  aggregation?: TaskAggregation
  graceTimer?: NodeJS.Timeout
  deadlineTimer?: NodeJS.Timeout
  certified: boolean
  verifyMs: number
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/**
 * One poi node: a libp2p host, its gossip validation, and whichever roles it
 * plays. All messages from the network are untrusted and checked here before
 * they reach storage or consensus; what is in storage is trusted.
 */
export class PoiNode extends TypedEventEmitter<PoiNodeEvents> {
  readonly libp2p: PoiLibp2p
  readonly store: NodeStore | undefined
  /** Operator sets by epoch; the newest is current. */
  private readonly sets = new Map<bigint, OperatorSet>()
  private current: OperatorSet
  private index: number | undefined
  readonly submitter: Submitter | undefined
  /** Signed, hash-linked channels this node stores and serves (full nodes). */
  readonly streams: StreamStore | undefined
  /** Content-addressed blocks: the model shards this node holds and serves. */
  readonly blocks: BlockStore | undefined
  private readonly servers: Array<{ start: () => Promise<void>, stop: () => Promise<void> }> = []
  /** Models being fetched from the network, by model id hex (one fetch per model). */
  private readonly fetching = new Map<string, Promise<LoadedModel>>()
  /** Inputs and outputs being fetched by reference, by `${kind}/${ref hex}` (one fetch each). */
  private readonly streamFetches = new Map<string, Promise<void>>()
  /** Inputs a light requester serves while its tasks are live (full nodes use `streams`). */
  private readonly heldInputs: MemoryMessageSource | undefined
  private reprovider: NodeJS.Timeout | undefined
  private streamSweeper: NodeJS.Timeout | undefined
  private readonly opts: PoiNodeOptions
  private readonly router: GossipRouter
  private readonly verifier: BufferedVerifier
  private readonly models: Map<string, LoadedModel>
  private readonly runners = new Map<string, Promise<InferenceRunner>>()
  private readonly tasks = new Map<string, TaskState>()
  /** `${taskId}/${operator}` → result hash hex of the first valid attestation seen. */
  private readonly firstResult = new Map<string, { result: string, attestation: Attestation }>()
  /** Attestations that arrived before their task. */
  private readonly early = new Map<string, { since: number, attestations: Attestation[] }>()
  private readonly sweeper: NodeJS.Timeout
  private stopped = false

  private constructor (opts: PoiNodeOptions, libp2p: PoiLibp2p, store: NodeStore | undefined, models: Map<string, LoadedModel>) {
    super()
    this.opts = opts
    this.libp2p = libp2p
    this.store = store
    this.models = models
    this.current = opts.operatorSet
    this.sets.set(opts.operatorSet.epoch, opts.operatorSet)
    this.index = indexIn(opts.operatorSet, opts.keystore.blsPublicKey)
    this.submitter = opts.settlement != null && store != null && opts.aggregate ? new Submitter(store, opts.settlement) : undefined
    this.streams = store != null ? new StreamStore(store) : undefined
    this.blocks = store != null ? BlockStore.of(store) : undefined
    if (store != null && this.streams != null && this.blocks != null) {
      this.servers.push(shardServer(libp2p, this.blocks))
      this.servers.push(new StreamServer({ libp2p, messages: this.streams }))
      this.servers.push(new ResultServer({ libp2p, results: store, outputs: this.streams }))
      // Tells requesters that know only this node's address which contracts
      // the network uses (they check the answer against the chain).
      const chain = opts.config.chain
      this.servers.push(new NetworkInfoServer({
        libp2p,
        deployment: chain == null
          ? undefined
          : { chainId: opts.operatorSet.domain.chainId, registry: chain.registry, taskManager: chain.taskManager, slashing: chain.slashing, modelRegistry: chain.modelRegistry, deployedAtBlock: chain.deployedAtBlock ?? 0n }
      }))
    } else {
      // A light requester does not listen, but the peers it is connected to
      // open streams back over those connections to fetch its tasks' inputs.
      this.heldInputs = new MemoryMessageSource()
      this.servers.push(new StreamServer({ libp2p, messages: this.heldInputs }))
    }
    this.verifier = new BufferedVerifier()
    this.router = new GossipRouter(libp2p.services.pubsub)
    this.sweeper = setInterval(() => { this.sweep() }, TASK_MEMORY_TTL_MS / 4)
    this.sweeper.unref()
  }

  static async start (opts: PoiNodeOptions): Promise<PoiNode> {
    if (opts.operate && opts.light) throw new TypeError('a light node cannot operate')
    const mine = hex(opts.keystore.blsPublicKey)
    if (opts.operate && !opts.operatorSet.operators.some(o => hex(o.blsPublicKey) === mine)) {
      throw new NotInOperatorSetError(`this node's BLS key 0x${mine} is not in the operator set (epoch ${opts.operatorSet.epoch}); add it to the genesis file ${opts.config.genesis} or run without the operator role`)
    }
    const models = new Map<string, LoadedModel>()
    if (!opts.light) {
      for (const dir of opts.config.modelDirs) {
        const m = await loadModelDir(dir)
        models.set(hex(m.modelId), m)
      }
    }
    const store = opts.light ? undefined : await NodeStore.open(opts.config.dataDir)
    let libp2p: PoiLibp2p
    try {
      libp2p = await createPoiLibp2p({
        privateKey: opts.keystore.privateKey,
        listen: opts.light ? [] : opts.config.listen,
        bootstrap: opts.config.bootstrap,
        dhtClientMode: opts.light
      })
    } catch (err) {
      await store?.close()
      throw err
    }
    const node = new PoiNode(opts, libp2p, store, models)
    if (opts.operate) {
      // Load (and hash-check) every model before joining: a bad model file
      // stops the operator here with its path, not at its first task.
      try {
        for (const m of models.values()) await node.runner(m)
      } catch (err) {
        await node.stop()
        throw err
      }
    }
    node.subscribe()
    await libp2p.start()
    for (const server of node.servers) await server.start()
    await node.shareModels()
    node.sweepStreams()
    await node.submitter?.start()
    log('started %p as %s', libp2p.peerId, node.roles().join('+'))
    return node
  }

  /** Whether this node is tracking the task (it arrived by gossip or was announced here, and is not yet forgotten). */
  knowsTask (taskId: Uint8Array): boolean {
    return this.tasks.has(hex(taskId))
  }

  /** The current epoch's operator set. */
  get operatorSet (): OperatorSet { return this.current }

  /** This node's index in the current operator set, if it is an operator there. */
  get operatorIndex (): number | undefined { return this.index }

  /**
   * Adopts a newer epoch's operator set (from the chain); older sets stay
   * known, so certificates of recent epochs still verify.
   */
  useOperatorSet (set: OperatorSet): void {
    this.sets.set(set.epoch, set)
    if (set.epoch > this.current.epoch) {
      this.current = set
      this.index = indexIn(set, this.opts.keystore.blsPublicKey)
      log('now in epoch %s (%d operators)%s', set.epoch, set.operators.length, this.index != null ? `, this node is operator ${this.index}` : '')
    }
  }

  roles (): NodeRole[] {
    if (this.opts.light) return ['requester']
    const r: NodeRole[] = []
    if (this.opts.operate) r.push('operator')
    if (this.opts.aggregate) r.push('aggregator')
    if (r.length === 0) r.push('bootstrap')
    return r
  }

  get modelIds (): string[] {
    return [...this.models.values()].map(m => modelIdToString(m.modelId))
  }

  addresses (): string[] {
    return this.libp2p.getMultiaddrs().map(a => a.toString())
  }

  /** Peers known to subscribe to a topic: a requester waits for one before publishing. */
  topicPeers (topic: TopicName): number {
    return this.router.subscribers(topic)
  }

  meshPeers (topic: TopicName): number {
    return this.router.meshPeers(topic)
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.sweeper)
    clearInterval(this.reprovider)
    clearTimeout(this.streamSweeper)
    for (const t of this.tasks.values()) {
      clearTimeout(t.graceTimer)
      clearTimeout(t.deadlineTimer)
    }
    this.router.stop()
    for (const server of this.servers) await server.stop()
    await this.submitter?.stop()
    await this.libp2p.stop()
    await this.verifier.close()
    for (const r of this.runners.values()) {
      try { (await r).close() } catch {}
    }
    await this.store?.close()
  }

  /** Publishes a signed task (requester side) and tracks it like one from gossip. */
  async announce (task: TaskAnnouncement): Promise<Uint8Array> {
    const bytes = encodeTaskAnnouncement(task)
    const taskId = taskIdOf(task)
    this.track(taskId, task)
    await this.store?.putTask(taskId, task)
    await this.router.publish('tasks', bytes)
    return taskId
  }

  /**
   * Puts a task input too large to inline into a stream message this node
   * serves over /poi/stream/1/ and returns its msgId, the task's inputRef.
   * A full node appends to its `inputs` channel; a light node holds the
   * message in memory until `serveUntil` (unix ms) plus a slack, each input
   * in a channel of its own (it keeps no channel heads across runs).
   */
  async offerInput (payload: Uint8Array, serveUntil: number): Promise<Uint8Array> {
    if (payload.length > MAX_STREAM_PAYLOAD_BYTES) {
      throw new RangeError(`an input by reference is at most ${MAX_STREAM_PAYLOAD_BYTES} bytes, this one is ${payload.length}`)
    }
    if (this.streams != null) return (await this.streams.append(this.opts.keystore.privateKey, INPUT_CHANNEL, payload)).msgId
    const channel = `${INPUT_CHANNEL}/${randomBytes(8).toString('hex')}`
    const message = await createStreamMessage(this.opts.keystore.privateKey, channel, 0n, GENESIS_PREV_ID, payload)
    return this.heldInputs!.add(encodeStreamMessage(message), serveUntil + HELD_INPUT_SLACK_MS)
  }

  private subscribe (): void {
    if (!this.opts.light) {
      this.router.handle('tasks', {
        validate: async (data, from) => await this.validateTask(data, from),
        onMessage: async (data) => { await this.onTask(decodeTaskAnnouncement(data)) }
      })
      // Attestations are verified (one pairing each) by every node that
      // subscribes, so only nodes that use them do: aggregators, which count
      // them, and relays (bootstrap nodes), which keep the mesh and catch
      // equivocation. A pure operator publishes its own through fanout.
      if (this.opts.aggregate || !this.opts.operate) this.router.handle('attestations', {
        validate: async (data, from) => await this.validateAttestation(data, from),
        onMessage: async (data) => { await this.onAttestation(decodeAttestation(data)) }
      })
    }
    this.router.handle('certificates', {
      validate: async (data, from) => await this.validateCertificate(data, from),
      onMessage: async (data) => { await this.onCertificate(decodeQuorumCertificate(data), false) }
    })
    if (this.opts.probe === true) {
      this.router.handle('probes', {
        validate: async (data) => {
          if (data.length > MAX_PROBE_BYTES) return 'reject'
          this.safeDispatchEvent('probe', { detail: { id: hex(data), at: preciseNow() } })
          return 'accept'
        }
      })
    }
  }

  /** Gossips a latency probe; every node with probes on reports when it arrives. */
  async sendProbe (): Promise<{ id: string, at: number }> {
    const id = randomBytes(16)
    const at = preciseNow()
    await this.router.publish('probes', id)
    return { id: hex(id), at }
  }

  private reject (topic: string, from: string, reason: string, verdict: 'reject' | 'ignore' = 'reject'): Verdict {
    log('%s from %s: %s (%s)', topic, from, verdict, reason)
    this.safeDispatchEvent('rejected', { detail: { topic, reason, from, verdict } })
    return verdict
  }

  // ---- tasks ----

  private async validateTask (data: Uint8Array, from: string): Promise<Verdict> {
    let task: TaskAnnouncement
    try {
      task = decodeTaskAnnouncement(data)
    } catch (err) {
      return this.reject('task', from, err instanceof DecodeError ? err.message : `undecodable: ${String(err)}`)
    }
    const taskId = taskIdOf(task)
    const id = hex(taskId)
    if (this.tasks.has(id)) return 'ignore'
    if (task.chainId !== this.operatorSet.domain.chainId) {
      return this.reject('task', from, `task ${id} is for chain ${task.chainId}, this network is chain ${this.operatorSet.domain.chainId}`)
    }
    const now = Date.now()
    const deadline = Number(task.deadline)
    if (deadline <= now) return this.reject('task', from, `task ${id} arrived after its deadline (${new Date(deadline).toISOString()})`, 'ignore')
    if (deadline > now + this.opts.config.maxTaskTtlMs) {
      return this.reject('task', from, `task ${id} deadline is ${Math.round((deadline - now) / 1000)} s away, more than the ${this.opts.config.maxTaskTtlMs / 1000} s this node accepts`)
    }
    if (!this.models.has(hex(task.modelId)) && !isModelId(task.modelId)) {
      return this.reject('task', from, `task ${id} names unknown model ${displayModelId(task.modelId)}`)
    }
    if (!await verifyTaskSignature(task, this.operatorSet.domain.taskManager)) {
      return this.reject('task', from, `task ${id} has a bad requester signature (requester ${bytesToHex(task.requester)})`)
    }
    if (this.opts.modelGate != null) {
      let refusal: string | undefined
      try {
        refusal = await this.opts.modelGate.modelRefusal(task.modelId, bytesToHex(task.requester))
      } catch (err) {
        refusal = `cannot read the model registry: ${(err as Error).message.split('\n')[0]}`
      }
      // Ignored, not rejected: a peer that read the registry a moment
      // earlier or later may honestly disagree, and must not lose score.
      if (refusal !== undefined) return this.reject('task', from, `task ${id}: ${refusal}`, 'ignore')
    }
    if (task.inputRef.length > 0) {
      // A node forwards a task only once it holds the task's input, so the
      // peer that sent it has the input and the next hops can fetch it here:
      // no operator ever gets a task whose input it cannot reach.
      const missing = await this.obtainInput(task, from)
      if (missing !== undefined) return this.reject('task', from, `task ${id}: ${missing}`, 'ignore')
    }
    if (this.tasks.has(id)) return 'ignore'
    // A task re-gossiped after a restart: if we already hold its certificate,
    // it is settled (no new aggregation, no deadline that could undo it).
    // Only an aggregator acts on it (no aggregation, no deadline), so only it reads the disk here.
    const settled = this.opts.aggregate && this.store != null && await this.store.getCertificate(taskId) != null
    this.track(taskId, task, settled)
    return 'accept'
  }

  /** Makes sure this node holds the input a task references (see holdStreamData). */
  private async obtainInput (task: TaskAnnouncement, from: string): Promise<string | undefined> {
    return await this.holdStreamData('input', task.inputRef, from, Number(task.deadline))
  }

  /**
   * Makes sure this node's stream store holds a message that gossip refers
   * to (a task's input by msgId, a result's output by payload reference),
   * fetching it from `from`, the peer that forwarded the reference, if not.
   * Nodes forward a reference only once they hold its data, so that peer has
   * it, and the next hop can fetch from this node in turn. The fetch checks
   * the bytes against the signed reference, so any peer may serve them.
   * Returns why the data is unavailable, or undefined.
   */
  private async holdStreamData (kind: 'input' | 'output', ref: Uint8Array, from: string, deadline: number): Promise<string | undefined> {
    const streams = this.streams
    if (streams == null) return `a light node does not hold ${kind}s`
    const key = `${kind}/${hex(ref)}`
    const held = kind === 'input' ? await streams.getBytes(ref) : await streams.getBytesByPayloadRef(ref)
    if (held != null) return undefined
    let pending = this.streamFetches.get(key)
    if (pending == null) {
      pending = (async () => {
        const timeoutMs = Math.max(1, Math.min(STREAM_REQUEST_TIMEOUT_MS, deadline - Date.now()))
        const peer = peerIdFromString(from)
        const message = kind === 'input'
          ? await fetchStreamMessage(this.libp2p, peer, ref, { timeoutMs })
          : (await fetchStreamMessageByPayload(this.libp2p, peer, ref, { timeoutMs })).message
        // Another node's channel, of which this node keeps only this message, for a while.
        await streams.put(message, { allowGap: true, expiresAt: Date.now() + STREAM_CACHE_RETENTION_MS })
      })()
      this.streamFetches.set(key, pending)
      pending.catch(() => {}).finally(() => this.streamFetches.delete(key))
    }
    try {
      await pending
      return undefined
    } catch (err) {
      return `${kind} 0x${hex(ref)} is not available from ${from}: ${(err as Error).message}`
    }
  }

  /** The bytes a task's model runs on: inline, or the stream message its inputRef names (fetched when the task was validated). */
  private async taskInput (task: TaskAnnouncement): Promise<Uint8Array> {
    if (task.inputRef.length === 0) return task.input
    const message = await this.streams?.get(task.inputRef)
    if (message == null) throw new Error(`input 0x${hex(task.inputRef)} of the task is not in this node's stream store`)
    return message.payload
  }

  private track (taskId: Uint8Array, task: TaskAnnouncement, settled = false): TaskState {
    const id = hex(taskId)
    const existing = this.tasks.get(id)
    if (existing != null) return existing
    const state: TaskState = { taskId, task, deadline: Number(task.deadline), certified: settled, verifyMs: 0 }
    this.tasks.set(id, state)
    if (this.opts.aggregate && !settled) {
      state.aggregation = new TaskAggregation({
        operatorSet: this.operatorSet,
        taskId,
        quorumBps: task.quorumBps,
        deadline: state.deadline
      })
      state.deadlineTimer = setTimeout(() => { void this.onDeadline(state) }, Math.max(0, state.deadline - Date.now()))
      for (const att of this.early.get(id)?.attestations ?? []) this.aggregate(state, att)
    }
    this.early.delete(id)
    return state
  }

  /**
   * Runs after the verdict went back to gossipsub, so relaying never waits on
   * the disk; the write still lands before anything acts on the task.
   */
  private async onTask (task: TaskAnnouncement): Promise<void> {
    const taskId = taskIdOf(task)
    await this.store?.putTask(taskId, task)
    this.safeDispatchEvent('task', { detail: { taskId, task } })
    if (this.opts.operate) await this.attest(taskId, task)
  }

  /** Runs the model and gossips a signed result, at most one result per task, ever. */
  private async attest (taskId: Uint8Array, task: TaskAnnouncement): Promise<void> {
    if (this.operatorIndex == null || this.store == null) return
    const previous = await this.store.getOwnAttestation(taskId)
    if (previous != null) {
      // Already signed (before a restart, say): send the same bytes again, never a new signature.
      await this.router.publish('attestations', encodeAttestation(previous))
      return
    }
    let result
    try {
      const model = this.models.get(hex(task.modelId)) ?? await this.obtainModel(task.modelId, Number(task.deadline))
      const runner = await this.runner(model)
      result = await runner.run(await this.taskInput(task))
    } catch (err) {
      const reason = (err as Error).message
      log.error('task %s: cannot attest: %s', hex(taskId), reason)
      this.safeDispatchEvent('failed', { detail: { taskId, reason } })
      return
    }
    // An output above the inline limit travels only in this operator's
    // stream channel, so it must be there before the attestation names it.
    const inline = result.canonical.length <= MAX_INLINE_OUTPUT_BYTES
    if (!inline) {
      try {
        await this.streams?.append(this.opts.keystore.privateKey, OUTPUT_CHANNEL, result.canonical)
      } catch (err) {
        const reason = `the ${result.canonical.length}-byte output cannot go in a stream message (at most ${MAX_STREAM_PAYLOAD_BYTES} bytes): ${(err as Error).message}`
        log.error('task %s: cannot attest: %s', hex(taskId), reason)
        this.safeDispatchEvent('failed', { detail: { taskId, reason } })
        return
      }
    }
    const signStart = performance.now()
    const attestation = signAttestation(this.opts.keystore.blsSecretKey, this.operatorSet.domain, {
      taskId,
      resultHash: result.resultHash,
      outputRef: outputRefOf(result.canonical),
      epoch: this.operatorSet.epoch,
      operatorIndex: this.operatorIndex,
      output: inline ? result.canonical : new Uint8Array(0)
    })
    const signMs = performance.now() - signStart
    // Stored before it leaves the node: a crash after gossiping must not let
    // the restarted node sign a second, different result.
    await this.store.putOwnAttestation(attestation)
    this.noteFirst(attestation)
    this.safeDispatchEvent('attested', { detail: { attestation, inferenceMs: result.inferenceMs, signMs } })
    await this.router.publish('attestations', encodeAttestation(attestation))
    // The output in this operator's own channel: anyone can resolve the
    // certificate's outputRef (keccak256 of the canonical output) over
    // /poi/stream/1/. After gossiping, so it is off the critical path.
    if (inline) await this.streams?.append(this.opts.keystore.privateKey, OUTPUT_CHANNEL, result.canonical)
    const state = this.tasks.get(hex(taskId))
    if (state != null) this.aggregate(state, attestation)
  }

  /** Forgets expired copies of other nodes' stream messages now and every STREAM_CACHE_SWEEP_MS. */
  private sweepStreams (): void {
    const streams = this.streams
    if (streams == null || this.stopped) return
    streams.forgetExpired()
      .then((n) => { if (n > 0) log('forgot %d expired stream messages', n) })
      .catch((err: Error) => { if (!this.stopped) log.error('forgetting expired stream messages failed: %s', err.message) })
      .finally(() => {
        if (this.stopped) return
        this.streamSweeper = setTimeout(() => { this.sweepStreams() }, STREAM_CACHE_SWEEP_MS)
        this.streamSweeper.unref()
      })
  }

  /**
   * Puts the models this node was given (model directories) into its block
   * store and everything in the store on the DHT, so others can fetch them.
   * Announcing runs in the background: the DHT may take a while.
   */
  private async shareModels (): Promise<void> {
    const blocks = this.blocks
    if (blocks == null) return
    for (const m of this.models.values()) await importModel(blocks, m.manifest, m.modelBytes)
    if ((await listModels(blocks)).length === 0) return
    // Provider records need DHT peers: announce once connected, retry what
    // failed, and re-announce before records expire.
    const announce = (): void => { void this.announceModels(0) }
    if (this.libp2p.getConnections().length > 0) announce()
    else this.libp2p.addEventListener('peer:connect', announce, { once: true })
    this.reprovider = setInterval(announce, REPROVIDE_INTERVAL_MS)
    this.reprovider.unref()
  }

  private async announceModels (attempt: number): Promise<void> {
    const blocks = this.blocks
    if (blocks == null || this.stopped) return
    let failed = 0
    try {
      for (const summary of await listModels(blocks)) {
        if (this.stopped) return
        const report = await provideModel(this.libp2p, modelCids(summary.manifest), { signal: AbortSignal.timeout(MODEL_PROVIDE_TIMEOUT_MS) })
        failed += report.failed.length
        log('model %s announced on the DHT: %d blocks, %d failed', summary.modelId, report.provided, report.failed.length)
      }
    } catch (err) {
      failed++
      if (!this.stopped) log.error('announcing models failed: %s', (err as Error).message)
    }
    if (failed > 0 && attempt < MAX_PROVIDE_RETRIES && !this.stopped) {
      const timer = setTimeout(() => { void this.announceModels(attempt + 1) }, PROVIDE_RETRY_MS * 2 ** attempt)
      timer.unref()
    }
  }

  /**
   * A model this node does not have: from its block store, or fetched from
   * providers found through the DHT, verified chunk by chunk and as a whole,
   * stored and announced in turn. One fetch per model, however many tasks wait.
   */
  private async obtainModel (modelId: Uint8Array, deadline: number): Promise<LoadedModel> {
    const id = hex(modelId)
    const known = this.models.get(id)
    if (known != null) return known
    let pending = this.fetching.get(id)
    if (pending == null) {
      const blocks = this.blocks
      if (blocks == null) throw new Error('a light node cannot fetch models')
      pending = (async () => {
        const started = Date.now()
        // Announcing the fetched blocks happens after, in the background: the task should not wait on the DHT.
        let fetched
        while (true) {
          try {
            fetched = await fetchModel(this.libp2p, blocks, modelId, {
              signal: AbortSignal.timeout(Math.max(1_000, deadline - Date.now())),
              provide: false,
              onProgress: (progress) => { this.safeDispatchEvent('model-progress', { detail: { modelId, progress } }) }
            })
            break
          } catch (err) {
            // A model published moments ago may not be findable yet: its
            // provider records are still spreading. Keep looking until the deadline.
            if (!(err instanceof ModelNotFoundError) || Date.now() + MODEL_SEARCH_RETRY_MS >= deadline || this.stopped) throw err
            await new Promise(resolve => setTimeout(resolve, MODEL_SEARCH_RETRY_MS))
          }
        }
        void provideModel(this.libp2p, modelCids(fetched.manifest), { signal: AbortSignal.timeout(MODEL_PROVIDE_TIMEOUT_MS) })
          .catch((err) => { log('announcing fetched model failed: %s', (err as Error).message) })
        const model: LoadedModel = { manifest: fetched.manifest, modelBytes: fetched.modelBytes, modelId: fetched.modelId }
        this.models.set(id, model)
        log('model %s fetched (%d bytes from %d peers) in %d ms', displayModelId(modelId), fetched.modelBytes.length, fetched.servedBy.length, Date.now() - started)
        this.safeDispatchEvent('model', { detail: { modelId, bytes: fetched.modelBytes.length, fromStore: fetched.fromStore, ms: Date.now() - started } })
        return model
      })()
      this.fetching.set(id, pending)
      pending.catch(() => {}).finally(() => this.fetching.delete(id))
    }
    return await pending
  }

  /**
   * Fetches models before any task needs them (operators prefetch the
   * registry's active models at start), in the background: each model's
   * 'model' or 'prefetch-failed' event tells how it went.
   */
  prefetchModels (modelIds: Uint8Array[]): void {
    if (this.blocks == null) return
    for (const modelId of modelIds) {
      if (this.models.has(hex(modelId)) || this.fetching.has(hex(modelId))) continue
      this.obtainModel(modelId, Date.now() + PREFETCH_TIMEOUT_MS)
        .then(async (model) => { if (this.opts.operate) await this.runner(model) })
        .catch((err: Error) => {
          if (this.stopped) return
          log.error('prefetching model %s failed: %s', displayModelId(modelId), err.message)
          this.safeDispatchEvent('prefetch-failed', { detail: { modelId, reason: err.message } })
        })
    }
  }

  private async runner (model: LoadedModel): Promise<InferenceRunner> {
    const id = hex(model.modelId)
    let r = this.runners.get(id)
    if (r == null) {
      r = InferenceRunner.load(model.modelBytes, model.manifest)
      this.runners.set(id, r)
      r.catch(() => this.runners.delete(id))
    }
    return await r
  }

  // ---- attestations ----

  private async validateAttestation (data: Uint8Array, from: string): Promise<Verdict> {
    let att: Attestation
    try {
      att = decodeAttestation(data)
    } catch (err) {
      return this.reject('attestation', from, err instanceof DecodeError ? err.message : `undecodable: ${String(err)}`)
    }
    const id = hex(att.taskId)
    if (att.epoch !== this.operatorSet.epoch) {
      return this.reject('attestation', from, `attestation for task ${id} names epoch ${att.epoch}, current epoch is ${this.operatorSet.epoch}`)
    }
    if (att.operatorIndex >= this.operatorSet.operators.length) {
      return this.reject('attestation', from, `attestation for task ${id} names unknown operator ${att.operatorIndex}`)
    }
    const badOutput = outputMismatch(att)
    if (badOutput !== undefined) return this.reject('attestation', from, `attestation for task ${id} by operator ${att.operatorIndex}: ${badOutput}`)
    const key = `${id}/${att.operatorIndex}`
    const first = this.firstResult.get(key)
    if (first != null && first.result === hex(att.resultHash)) return 'ignore'
    const state = this.tasks.get(id)
    if (state != null && Date.now() > state.deadline + LATE_ATTESTATION_SLACK_MS) {
      return this.reject('attestation', from, `attestation for task ${id} arrived after the deadline`, 'ignore')
    }
    const set = attestationSignatureSet(att, this.operatorSet)
    const verifyStart = performance.now()
    const valid = set != null && await this.verifier.verify(set)
    if (state != null) state.verifyMs = Math.max(state.verifyMs, performance.now() - verifyStart)
    if (!valid) {
      return this.reject('attestation', from, `attestation for task ${id}: bad BLS signature for operator ${att.operatorIndex}`)
    }
    const again = this.firstResult.get(key)
    if (again != null && again.result === hex(att.resultHash)) return 'ignore'
    // Two signed results are evidence whether or not their outputs can be had.
    if (again != null) await this.recordEquivocation(again.attestation, att)
    if (att.output.length === 0) {
      const missing = await this.holdStreamData('output', att.outputRef, from, (state?.deadline ?? Date.now()) + LATE_ATTESTATION_SLACK_MS)
      if (missing !== undefined) return this.reject('attestation', from, `attestation for task ${id} by operator ${att.operatorIndex}: ${missing}`, 'ignore')
    }
    if (again == null) this.noteFirst(att)
    return 'accept'
  }

  private noteFirst (att: Attestation): void {
    const key = `${hex(att.taskId)}/${att.operatorIndex}`
    if (!this.firstResult.has(key)) this.firstResult.set(key, { result: hex(att.resultHash), attestation: att })
  }

  private async recordEquivocation (a: Attestation, b: Attestation): Promise<void> {
    const evidence: EquivocationEvidence = { taskId: a.taskId, operatorIndex: a.operatorIndex, epoch: a.epoch, a, b }
    log('operator %d equivocated on task %s: %s vs %s', a.operatorIndex, hex(a.taskId), hex(a.resultHash), hex(b.resultHash))
    const id = await this.store?.putEvidence({ taskId: a.taskId, operatorIndex: a.operatorIndex, a, b }, { submit: this.submitter != null })
    if (id != null) this.submitter?.kick('evidence', id)
    this.safeDispatchEvent('evidence', { detail: evidence })
  }

  /** Stored before it counts toward a certificate, so a restart never forgets a counted signature. */
  private async onAttestation (att: Attestation): Promise<void> {
    await this.store?.putAttestation(att)
    this.safeDispatchEvent('attestation', { detail: att })
    const id = hex(att.taskId)
    const state = this.tasks.get(id)
    if (state == null) {
      if (this.opts.aggregate) {
        const entry = this.early.get(id) ?? { since: Date.now(), attestations: [] }
        // Bounded: valid signatures for tasks we never hear of cannot grow memory without limit.
        if (entry.attestations.length < this.operatorSet.operators.length * 2 && (this.early.has(id) || this.early.size < MAX_EARLY_TASKS)) {
          entry.attestations.push(att)
          this.early.set(id, entry)
        }
      }
      return
    }
    this.aggregate(state, att)
  }

  // ---- aggregation ----

  private aggregate (state: TaskState, att: Attestation): void {
    const agg = state.aggregation
    if (agg == null || state.certified) return
    const res = agg.add(att, Date.now())
    if (res.kind !== 'accepted') return
    const result = agg.quorumReached()
    if (result == null) return
    if (agg.allSigned(result)) {
      void this.finalize(state, result)
    } else if (state.graceTimer == null) {
      state.graceTimer = setTimeout(() => { void this.finalize(state, result) }, this.opts.config.graceMs)
    }
  }

  private async finalize (state: TaskState, result: Uint8Array): Promise<void> {
    if (state.certified || state.aggregation == null) return
    state.certified = true
    if (this.store != null && await this.store.getCertificate(state.taskId) != null) return
    clearTimeout(state.graceTimer)
    clearTimeout(state.deadlineTimer)
    // The grace window may have let another result overtake; take the best.
    const best = state.aggregation.quorumReached() ?? result
    const qc = state.aggregation.buildCertificate(best)
    await this.store?.putCertificate(qc, { submit: this.submitter != null })
    this.submitter?.kick('certificate', hex(qc.taskId))
    log('task %s: certificate formed with %s stake', hex(state.taskId), qc.signedStake.length)
    this.safeDispatchEvent('certificate', { detail: { certificate: qc, formedHere: true, verifyMs: state.verifyMs } })
    await this.router.publish('certificates', encodeQuorumCertificate(qc))
  }

  private async onDeadline (state: TaskState): Promise<void> {
    if (state.certified) return
    state.certified = true
    if (this.store != null && await this.store.getCertificate(state.taskId) != null) return
    clearTimeout(state.graceTimer)
    log('task %s: no quorum by the deadline', hex(state.taskId))
    await this.store?.setTaskState(state.taskId, 'no-quorum', 'deadline passed without quorum')
    this.safeDispatchEvent('no-quorum', { detail: { taskId: state.taskId } })
  }

  // ---- certificates ----

  private async validateCertificate (data: Uint8Array, from: string): Promise<Verdict> {
    let qc: QuorumCertificate
    try {
      qc = decodeQuorumCertificate(data)
    } catch (err) {
      return this.reject('certificate', from, err instanceof DecodeError ? err.message : `undecodable: ${String(err)}`)
    }
    const id = hex(qc.taskId)
    const state = this.tasks.get(id)
    if (state?.certified === true && state.aggregation == null) return 'ignore'
    if (this.store != null && await this.store.getCertificate(qc.taskId) != null) return 'ignore'
    const quorumBps = state?.task.quorumBps ?? DEFAULT_QUORUM_BPS
    const badOutput = outputMismatch(qc)
    if (badOutput !== undefined) return this.reject('certificate', from, `certificate for task ${id}: ${badOutput}`)
    const set = this.sets.get(qc.epoch)
    if (set == null) return this.reject('certificate', from, `certificate for task ${id} names epoch ${qc.epoch}, which this node does not know`)
    const verdict = verifyCertificate(qc, set, { quorumBps })
    if (!verdict.ok) return this.reject('certificate', from, `certificate for task ${id}: ${verdict.reason}`)
    // Every full node that holds a certificate can serve its output too (to light requesters).
    if (qc.output.length === 0 && this.streams != null) {
      const missing = await this.holdStreamData('output', qc.outputRef, from, Date.now() + STREAM_REQUEST_TIMEOUT_MS)
      if (missing !== undefined) return this.reject('certificate', from, `certificate for task ${id}: ${missing}`, 'ignore')
    }
    return 'accept'
  }

  private async onCertificate (qc: QuorumCertificate, formedHere: boolean): Promise<void> {
    const state = this.tasks.get(hex(qc.taskId))
    if (state != null) {
      // Someone else's valid certificate settles the task here too: no need to build our own.
      state.certified = true
      clearTimeout(state.graceTimer)
      clearTimeout(state.deadlineTimer)
    }
    // An aggregator also keeps it as a pending submission, posted only if the
    // chain still lacks it after a while: a backup for an aggregator that died.
    await this.store?.putCertificate(qc, { submit: this.submitter != null })
    this.submitter?.kick('certificate', hex(qc.taskId), BACKUP_SUBMISSION_DELAY_MS)
    this.safeDispatchEvent('certificate', { detail: { certificate: qc, formedHere } })
  }

  private sweep (): void {
    const now = Date.now()
    for (const [id, state] of this.tasks) {
      if (now > state.deadline + TASK_MEMORY_TTL_MS) {
        clearTimeout(state.graceTimer)
        clearTimeout(state.deadlineTimer)
        this.tasks.delete(id)
        for (const key of this.firstResult.keys()) if (key.startsWith(id)) this.firstResult.delete(key)
      }
    }
    // Attestations for tasks that never arrived are kept one TTL at most.
    for (const [id, entry] of this.early) if (now > entry.since + TASK_MEMORY_TTL_MS) this.early.delete(id)
  }
}

function indexIn (set: OperatorSet, blsPublicKey: Uint8Array): number | undefined {
  const mine = hex(blsPublicKey)
  return set.operators.find(o => hex(o.blsPublicKey) === mine)?.index
}

/** Whether bytes are a model id (a CID) this node could try to fetch. */
function isModelId (id: Uint8Array): boolean {
  try {
    modelIdToString(id)
    return true
  } catch {
    return false
  }
}

/** A model id for a log line: its CID string, or hex when the bytes are not a CID. */
function displayModelId (id: Uint8Array): string {
  try {
    return modelIdToString(id)
  } catch {
    return `0x${hex(id)} (not a CID)`
  }
}

/**
 * Where the output lives: the keccak256 of the canonical output, which is
 * the payload reference of the stream message that carries it (and equals
 * the result hash, since both hash the same bytes).
 */
export function outputRefOf (canonical: Uint8Array): Uint8Array {
  return keccak256(canonical, 'bytes')
}

/**
 * Why a signed result's output fields do not fit together, or undefined.
 * The inline output may be absent (an output above the inline limit travels
 * only in the operator's stream channel); when present it must hash to the
 * result hash, and the reference must always be that same hash.
 */
function outputMismatch (signed: { resultHash: Uint8Array, outputRef: Uint8Array, output: Uint8Array }): string | undefined {
  if (hex(signed.outputRef) !== hex(signed.resultHash)) return 'outputRef is not the content address of the output (it must equal resultHash)'
  if (signed.output.length > 0 && hex(keccak256(signed.output, 'bytes')) !== hex(signed.resultHash)) return 'output does not hash to resultHash'
  return undefined
}
