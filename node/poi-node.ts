/**
 * One poi node: the composition root. It builds a libp2p host, the node's stores and the role
 * services this node plays from their declared components (libp2p style: a factory each,
 * every service Startable), starts them in order and stops them in reverse. It owns no
 * protocol logic: validation and relaying are the relay's, running models the operator's,
 * certificates the aggregator's, models the model service's (node/roles/).
 */
import { readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TypedEventEmitter, type Startable } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import { BufferedVerifier, decodeSignerBitmap, type OperatorSet } from '../consensus/index.js'
import { GossipRouter, type TopicName } from '../protocols/gossip/index.js'
import { NetworkInfoServer } from '../protocols/network/index.js'
import { ResultServer } from '../protocols/result/index.js'
import { shardServer } from '../protocols/shard/index.js'
import { StreamServer } from '../protocols/stream/index.js'
import {
  PoiError, TASK_TIERS, bytesEqual, encodeTaskAnnouncement, encodeZkProofBody, fromHex, taskIdOf, to0xHex, toHex, uint256ToBytes32, type TaskAnnouncement
} from '../protocols/wire/index.js'
import { BlockStore, NodeStore, StreamStore } from '../storage/index.js'
import {
  ControlError, NodeMetrics, controlSocketPath, metricsRoutes, createControlServer, createEventStream, createHttpServer, networkPageRoutes, subscribeNodeEvents,
  type ControlHandlers, type ControlServer, type EventStream, type EventStreamInit, type HealthCheck, type HttpServer, type HttpSource, type TaskView
} from './api/index.js'
import type { FastifyPluginAsync } from 'fastify'
import { parseHttpAddress, type NodeConfig } from './config.js'
import { loadModelDir, readZkFiles, type ModelDir } from './inference/index.js'
import { listModels } from './models/index.js'
import type { Keystore } from './keys.js'
import { networkInfoOf } from './network-info.js'
import { createPoiLibp2p, type PoiLibp2p } from './p2p.js'
import { peerIdentityOf } from './peer-identity.js'
import {
  AttestationLedger, Conflicts, TaskBook, createAggregator, createEpochs, createModelService, createOperator, createRelay,
  createStreamData, NetworkQuorum, PaymentGate, Submitter, type Aggregator, type Epochs, type ModelGate, type ModelService, type Operator,
  type PaymentChain, type PoiNodeEvents, type Relay, type SettlementChain, type StreamData,
  BatchBackup, BatchGossip, BatchSigner, Batcher, SignedBatches, storeBatchSource, storedBatchItem, type BatchSettlementChain, type BatchSignerSource, type BatcherTabs,
  createZkProofs, type VerifiedZkProof, type ZkProofs
} from './roles/index.js'
import { acquireProofVerifier, proofToBytes, type ExpectedSignals, type ProofVerifier, type VerificationKey, type ZkProof } from './inference/zk/index.js'

export { preciseNow, type PoiNodeEvents, type Rejection, type ModelGate, type PaymentChain } from './roles/index.js'

const log = logger('poi:node')

/** The operator role was asked for, but this node's BLS key is not in the operator set. */
export class NotInOperatorSetError extends PoiError {
  constructor (message: string) {
    super('ERR_NOT_IN_OPERATOR_SET', message)
  }
}

export type NodeRole = 'operator' | 'aggregator' | 'bootstrap' | 'requester'

export interface PoiNodeOptions {
  /** Run models and sign results (needs the node's BLS key in the operator set). */
  operate: boolean
  /** Build certificates from attestations and gossip them. */
  aggregate: boolean
  /**
   * Operators: prove zk-tier tasks (issue 16) of models whose manifest names a circuit, naming
   * the keystore's Ethereum account as the payee (`poi operator --prove`).
   */
  prove?: boolean
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
   * Which models the network runs (the on-chain ModelRegistry, through a ChainClient): tasks
   * for a model it refuses are dropped with its reason. Without it, a task may name any model
   * id, fetched through the DHT.
   */
  modelGate?: ModelGate
  /**
   * The chain's vault and fees (a ChainClient): tasks are admitted only when their fee covers
   * the model's fee plus the network minimum and their requester's deposit pays for them
   * (node/roles/payment-gate.ts). Without it (no chain), any fee is admitted.
   */
  payments?: PaymentChain
  /**
   * A relay-only full node (neither operating nor aggregating) aggregates as a backup unless
   * this is false: it forms and gossips a task's certificate only when none has appeared a
   * short while after its quorum could form (BACKUP_AGGREGATION_DELAY_MS), so a dead
   * aggregator does not lose certificates.
   */
  backupAggregation?: boolean
  /**
   * Reads an epoch's operator set this node has not adopted yet (the chain's, e.g.
   * `(epoch) => chain.operatorSet(epoch)`), so a certificate of the next epoch verifies before
   * the epoch watcher catches up; only epochs near the current one are read (node/roles/epochs.ts).
   */
  readOperatorSet?: (epoch: bigint) => Promise<OperatorSet | undefined>
  /**
   * A full node listens on a Unix socket in its data directory (node/api/: `poi model publish`
   * and `poi model ls` reach the running node through it) unless this is false.
   */
  control?: boolean
  /**
   * Reads the network's quorum (TaskManager.quorumBps, which governance may change): an
   * aggregator then forms certificates at max(task's quorum, network's), re-read every
   * NETWORK_PARAMETERS_REFRESH_MS (node/roles/network-quorum.ts).
   */
  networkQuorumBps?: () => Promise<number>
  /** Where batches of tab tasks are settled (issue 15; aggregators with a chain whose client has submitBatch). */
  batchSettlement?: BatchSettlementChain
  /** Whether the chain already settled a requester's tab sequence: operators refuse to batch it again (a ChainClient read). */
  tabSettled?: BatchSignerSource['tabSettled']
  /**
   * How long a funded aggregator leaves a batch certificate it received to the aggregator that
   * formed it before posting it itself (default BATCH_BACKUP_DELAY_MS, node/roles/batch-backup.ts); tests shorten it.
   */
  batchBackupDelayMs?: number
  /** Reads the chain's current epoch: `GET /health` checks the chain through it (nodes with a chain and `config.http`). */
  chainEpoch?: () => Promise<bigint>
  /** Extra HTTP routes (e.g. /metrics) served with the API when `config.http` is set. */
  httpPlugins?: FastifyPluginAsync[]
  /**
   * Prometheus metrics (node/api/metrics.ts: the node's own registry with process, libp2p and
   * poi series) unless this is false.
   */
  metrics?: boolean
  /** Limits of `GET /v1/events` (node/api/event-stream.ts); tests lower them. */
  eventStream?: EventStreamInit
  /**
   * Models given in memory, beside `config.modelDirs` (embedders and tests; already
   * hash-checked). A light peer holds them too: their zk verification keys let it check proofs
   * without fetching them.
   */
  models?: ModelDir[]
  /**
   * What this operator can claim now from the TaskManager (a ChainClient read): GET /metrics
   * shows it as poi_rewards_claimable, read in the background (node/api/metrics.ts REWARDS_REFRESH_MS).
   */
  claimableRewards?: () => Promise<bigint>
}

function rolesOf (opts: Pick<PoiNodeOptions, 'light' | 'operate' | 'aggregate'>): NodeRole[] {
  if (opts.light) return ['requester']
  const r: NodeRole[] = []
  if (opts.operate) r.push('operator')
  if (opts.aggregate) r.push('aggregator')
  return r.length === 0 ? ['bootstrap'] : r
}

/** This software's version (package.json), in `GET /v1/network`. */
export const POI_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown'
  } catch {
    return 'unknown'
  }
})()

/**
 * An RPC URL as `GET /health` shows it: scheme, host and port only. Providers put the API key in
 * the path, the query or the user part, and the health answer may be read by anyone who can
 * reach the API.
 */
export function rpcOrigin (rpcUrl: string): string {
  try {
    const url = new URL(rpcUrl)
    return url.origin !== 'null' ? url.origin : `${url.protocol}//…`
  } catch {
    return 'the RPC endpoint'
  }
}

/** How long `GET /health` waits for the chain's answer before reporting it unreachable (a health probe must answer quickly). */
const HEALTH_CHAIN_TIMEOUT_MS = 3_000

export class PoiNode extends TypedEventEmitter<PoiNodeEvents> {
  readonly store: NodeStore | undefined
  /** Signed, hash-linked channels this node stores and serves (full nodes). */
  readonly streams: StreamStore | undefined
  /** Content-addressed blocks: the model shards this node holds and serves. */
  readonly blocks: BlockStore | undefined
  readonly submitter: Submitter | undefined
  private readonly epochs: Epochs
  private readonly tasks = new TaskBook()
  private readonly streamData: StreamData
  private readonly models: ModelService
  private readonly operator: Operator | undefined
  private readonly aggregator: Aggregator | undefined
  private readonly relay: Relay
  /** Every node: the proofs topic, checked off-chain (node/roles/zk-proofs.ts). */
  private readonly zkProofs: ZkProofs
  /** Aggregators: batches of certified tab tasks (issue 15). */
  readonly batcher: Batcher | undefined
  private readonly batchGossip: BatchGossip | undefined
  /** Funded aggregators: other aggregators' batch certificates, posted if their aggregator does not. */
  readonly batchBackup: BatchBackup | undefined
  /** The local control channel (full nodes). */
  readonly control: ControlServer | undefined
  /** The HTTP API (full nodes with `config.http`). */
  readonly http: HttpServer | undefined
  /** `GET /v1/events`, served with the HTTP API: the node's event lines as server-sent events. */
  readonly eventStream: EventStream | undefined
  /** Admits only paid-for tasks (nodes with a chain). */
  readonly paymentGate: PaymentGate | undefined
  private readonly router: GossipRouter
  private readonly verifier: BufferedVerifier
  /** Groth16 checks of the proofs topic, in a worker started on the first zk task (shared by the nodes of a process). */
  private readonly proofVerifier: ProofVerifier
  private readonly releaseProofVerifier: () => Promise<void>
  /** Everything that starts once libp2p has, in start order (stopped in reverse). */
  private readonly services: Startable[] = []
  private stopped = false
  /** This node's Prometheus registry and poi series (GET /metrics: node/api metricsRoutes); undefined with `metrics: false`. */
  readonly metrics: NodeMetrics | undefined

  private constructor (private readonly opts: PoiNodeOptions, readonly libp2p: PoiLibp2p, store: NodeStore | undefined, models: ModelDir[], metrics: NodeMetrics | undefined) {
    super()
    this.metrics = metrics
    this.verifier = new BufferedVerifier({ onBatch: metrics == null ? undefined : (sets) => { metrics.verifyBatch(sets) } })
    const { keystore, config, operatorSet } = opts
    this.store = store
    this.streams = store != null ? new StreamStore(store) : undefined
    this.blocks = store != null ? BlockStore.of(store) : undefined
    this.submitter = opts.settlement != null && store != null && opts.aggregate ? new Submitter(store, opts.settlement, opts.batchSettlement) : undefined
    const events = this
    // Another process with this node's key (seen by a peer, or here for a remote peer): the CLI warns.
    peerIdentityOf(libp2p)?.addEventListener('duplicate-identity', ({ detail }) => this.safeDispatchEvent('duplicate-identity', { detail }))
    this.router = new GossipRouter(libp2p.services.pubsub, metrics == null ? undefined : (topic, verdict) => { metrics.gossipVerdict(topic, verdict === 'accept' ? 'accepted' : verdict === 'reject' ? 'rejected' : 'ignored') })
    this.epochs = createEpochs({ blsPublicKey: keystore.blsPublicKey }, { operatorSet, readSet: opts.readOperatorSet })
    const ledger = new AttestationLedger({ store, submitter: this.submitter, events, tasks: this.tasks })
    const conflicts = store != null ? new Conflicts({ store, submitter: this.submitter, events, epochs: this.epochs, ledger }) : undefined
    this.streamData = createStreamData({ libp2p, keystore, streams: this.streams })
    this.models = createModelService({ libp2p, blocks: this.blocks, events }, { models })
    const common = { gossip: this.router, epochs: this.epochs, events }
    // Relay-only full nodes already verify and store every attestation: they aggregate too, as backups.
    const backup = !opts.aggregate && !opts.operate && !opts.light && opts.backupAggregation !== false
    const aggregating = opts.aggregate || backup
    const networkQuorum = aggregating && opts.networkQuorumBps != null ? new NetworkQuorum(opts.networkQuorumBps) : undefined
    if (networkQuorum != null) this.services.push(networkQuorum)
    this.aggregator = aggregating
      ? createAggregator({ ...common, store, submitter: this.submitter, tasks: this.tasks, networkQuorum }, { graceMs: config.graceMs, backup })
      : undefined
    this.operator = opts.operate && store != null
      ? createOperator({
        ...common, blsSecretKey: keystore.blsSecretKey, store, models: this.models, streamData: this.streamData, ledger, onOwnAttestation: (att) => this.aggregator?.add(att),
        // Its own proofs reach this node's roles as the `proof` event ZkProofs.announce dispatches.
        prove: opts.prove === true ? { payee: keystore.account.address, announce: async (taskId, proof, output) => await this.zkProofs.announce(taskId, proof, output) } : undefined
      })
      : undefined
    const paymentGate = opts.payments != null && !opts.light ? new PaymentGate(opts.payments) : undefined
    this.paymentGate = paymentGate
    if (paymentGate != null) {
      // A certified task is looked up on-chain at its requester's next vault read; one that
      // ended NoQuorum costs nothing.
      this.addEventListener('certificate', ({ detail }) => { paymentGate.certified(detail.certificate.taskId) })
      this.addEventListener('no-quorum', ({ detail }) => { paymentGate.ended(detail.taskId) })
    }
    this.relay = createRelay(
      { ...common, tasks: this.tasks, ledger, verifier: this.verifier, store, streamData: this.streamData, models: this.models, operator: this.operator, aggregator: this.aggregator, modelGate: opts.modelGate, paymentGate, conflicts },
      { light: opts.light, subscribeAttestations: opts.aggregate || !opts.operate, maxTaskTtlMs: config.maxTaskTtlMs, probe: opts.probe === true }
    )
    const proofVerifier = acquireProofVerifier()
    this.proofVerifier = proofVerifier.verifier
    this.releaseProofVerifier = proofVerifier.release
    this.zkProofs = createZkProofs({
      gossip: this.router,
      tasks: this.tasks,
      events,
      models: this.models,
      streamData: this.streamData,
      check: async (vkey, proof, expected) => { await this.proofVerifier.verify(vkey, proof, expected) }
    }, { light: opts.light })
    // A zk or both task's proof follows in seconds: have the verify worker ready for it.
    this.addEventListener('task', ({ detail }) => { if (detail.task.tier !== TASK_TIERS.replicated) this.proofVerifier.warm() })
    // An aggregator that settles zk results posts the first valid proof of each zk task (its own prover's too).
    if (this.submitter?.settlesZkResults === true) this.addEventListener('proof', ({ detail }) => { this.queueZkResult(detail) })
    const batches = this.batchRoles(store, networkQuorum, events, conflicts)
    this.batcher = batches?.batcher
    this.batchGossip = batches?.gossip
    this.batchBackup = batches?.backup
    this.services.push(...this.servers(), this.models, this.streamData)
    // After the model service: a model published through it is stored and announced by it.
    this.control = store != null && opts.control !== false ? createControlServer(this.controlHandlers(), { path: controlSocketPath(config.dataDir) }) : undefined
    if (this.control != null) this.services.push(this.control)
    if (paymentGate != null) this.services.push(paymentGate)
    // The same lines as the CLI's --json (subscribeNodeEvents), started before the server so no stream misses one.
    this.eventStream = config.http != null && !opts.light ? createEventStream((onLine) => subscribeNodeEvents(this, onLine), opts.eventStream) : undefined
    if (this.eventStream != null) this.services.push(this.eventStream)
    const pages = this.eventStream != null ? [this.eventStream.routes(), networkPageRoutes()] : []
    this.http = config.http != null && !opts.light ? createHttpServer(this.httpSource(), { ...parseHttpAddress(config.http), plugins: [...(metrics != null ? [metricsRoutes(metrics)] : []), ...pages, ...(opts.httpPlugins ?? [])] }) : undefined
    if (this.http != null) this.services.push(this.http)
    const submitter = this.submitter
    // Resumes the submissions a previous run left pending.
    // Before the submitter, so stopped after it: a backup's submission in flight then ends 'pending' (kept for the next start) instead of waiting out a retry.
    if (this.batchBackup != null) this.services.push(this.batchBackup)
    if (submitter != null) this.services.push({ start: async () => { await submitter.start() }, stop: async () => { await submitter.stop() } })
    // Last: it reloads open tasks from the store and acts on them from timers, which then run
    // once start() has returned and the caller's listeners are attached.
    if (this.aggregator != null) this.services.push(this.aggregator)
    if (this.batcher != null) this.services.push(this.batcher)
    if (this.batchGossip != null) this.services.push(this.batchGossip)
    metrics?.observe(this, this.submitter)
    const streams = this.streams
    metrics?.readFrom({ streams: streams == null ? undefined : async () => await streams.holdings(), claimableRewards: opts.claimableRewards })
  }

  /**
   * Batches of tab tasks (issue 15): every full node relays the batches topic; an operator signs
   * proposals that pass its checks; an aggregator batches the certified tab tasks it holds.
   */
  private batchRoles (store: NodeStore | undefined, networkQuorum: NetworkQuorum | undefined, events: PoiNode, conflicts: Conflicts | undefined): { batcher?: Batcher, backup?: BatchBackup, gossip: BatchGossip } | undefined {
    const { opts } = this
    if (opts.light || store == null) return undefined
    let quorum = networkQuorum
    if (quorum == null && opts.operate && opts.networkQuorumBps != null) {
      quorum = new NetworkQuorum(opts.networkQuorumBps)
      this.services.push(quorum)
    }
    const quorumBps = (): number | undefined => quorum?.quorumBps
    const resolveSet = async (epoch: bigint): Promise<OperatorSet | undefined> => await this.epochs.resolveSet(epoch)
    let gossip: BatchGossip | undefined
    const signed = opts.operate ? new SignedBatches(store.area('batch-signed')) : undefined
    const signer = signed != null
      ? new BatchSigner({
        blsSecretKey: opts.keystore.blsSecretKey,
        blsPublicKey: opts.keystore.blsPublicKey,
        source: storeBatchSource(store, quorumBps, opts.tabSettled),
        signed,
        resolveSet,
        publish: async (proposal, share) => { await gossip?.publishSignature(proposal, share) },
        onRefusal: (proposal, refusal) => { events.safeDispatchEvent('batch-refused', { detail: { ...refusal, root: proposal.root, seq: proposal.seq } }) }
      })
      : undefined
    const submitter = this.submitter
    const batcherArea = store.area('batcher')
    const batcher = opts.aggregate
      ? new Batcher({
        area: batcherArea,
        resolveSet,
        verify: async (set) => await this.verifier.verify(set),
        networkQuorumBps: quorumBps,
        loadItem: async (taskId) => await storedBatchItem(store, taskId),
        publishProposal: async (proposal) => { await gossip?.publishProposal(proposal) },
        publishCertificate: async (proposal, qc) => { await gossip?.publishCertificate(proposal, qc) },
        submit: submitter?.settlesBatches === true ? async (batch) => await submitter.submitBatch(batch) : undefined,
        tabs: batcherTabs(opts.payments, opts.tabSettled),
        onBatch: (report) => { events.safeDispatchEvent('batch', { detail: report }) }
      }, { maxLeaves: opts.config.batchMaxLeaves, maxWaitMs: opts.config.batchMaxWaitMs, graceMs: opts.config.graceMs })
      : undefined
    if (batcher != null) {
      // A certified tab task (formed here or received; stored before the event) waits for a batch.
      this.addEventListener('certificate', ({ detail }) => {
        storedBatchItem(store, to0xHex(detail.certificate.taskId))
          .then(async item => { if (item !== undefined) await batcher.add(item) })
          .catch(err => { log.error('task %s: could not be queued for a batch: %s', to0xHex(detail.certificate.taskId), (err as Error).message) })
      })
    }
    // A funded aggregator posts other aggregators' batch certificates when they do not (a backup, as for task certificates).
    const batchChain = opts.batchSettlement
    const backup = batcher != null && submitter?.settlesBatches === true && batchChain != null
      ? new BatchBackup({
        area: store.area('batch-backup'),
        resolveSet,
        formedHere: async (root) => await batcherArea.get(`batch/${root.toLowerCase()}`) !== undefined,
        settlement: async (root) => await batchChain.batchSettlement(root),
        submit: async (batch) => await submitter.submitBatch(batch),
        tabSettled: opts.tabSettled,
        onTaken: (taskIds) => { batcher.forgetBatchedElsewhere(taskIds).catch(err => { log.error('could not drop tasks batched elsewhere from the batcher: %s', (err as Error).message) }) },
        onBatch: (report) => { events.safeDispatchEvent('batch', { detail: report }) }
      }, { delayMs: opts.batchBackupDelayMs })
      : undefined
    gossip = new BatchGossip({ gossip: this.router, epochs: this.epochs, events, verify: async (set) => await this.verifier.verify(set), networkQuorumBps: quorumBps, signer, signed, batcher, conflicts, backup })
    return { batcher, backup, gossip }
  }

  /** The request/response servers: a full node serves blocks, stream messages, results and its network; a light one only its held inputs. */
  private servers (): Startable[] {
    const { libp2p, store, streams, blocks } = this
    if (store == null || streams == null || blocks == null) return [new StreamServer({ libp2p, messages: this.streamData.heldInputs! })]
    const chain = this.opts.config.chain
    // Tells requesters that know only this node's address which contracts the network uses (they check it against the chain)
    // and how far ahead a task's deadline may lie here (they refuse a longer timeout before announcing).
    const info = networkInfoOf(chain == null ? undefined : { ...chain, chainId: Number(this.opts.operatorSet.domain.chainId), deployedAtBlock: chain.deployedAtBlock ?? 0n }, this.opts.config.maxTaskTtlMs)
    return [shardServer(libp2p, blocks, { onServed: this.metrics == null ? undefined : (bytes) => { this.metrics?.modelServed(bytes) } }), new StreamServer({ libp2p, messages: streams }), new ResultServer({ libp2p, results: store, outputs: streams, refusals: this.relay.refusedTasks }), new NetworkInfoServer({ libp2p, info })]
  }

  /** What the control channel does: publish a model to this node (stored, held, announced at once), list the store's models. */
  private controlHandlers (): ControlHandlers {
    return {
      publish: async ({ file, manifest }, progress) => {
        let bytes: Uint8Array
        try {
          bytes = new Uint8Array(await readFile(file))
        } catch (err) {
          throw new ControlError('ERR_PUBLISH', `the node cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (it runs as its own process: the file must be readable by it)`)
        }
        // a manifest with a zk section is published from a model directory: its circuit's files are in zk/ beside the model
        return await this.models.publish(manifest, bytes, progress, manifest.zk === undefined ? undefined : await readZkFiles(dirname(file)))
      },
      models: async () => ({ models: this.blocks == null ? [] : (await listModels(this.blocks)).map(m => ({ modelId: m.modelId, manifest: m.manifest })) })
    }
  }

  /** What the HTTP API reads (node/api/http-server.ts). */
  private httpSource (): HttpSource {
    return {
      health: async () => await this.health(),
      network: () => {
        const set = this.epochs.current
        const chain = this.opts.config.chain
        const share = (stake: bigint): number => set.totalStake === 0n ? 0 : Number((stake * 1_000_000n) / set.totalStake) / 1_000_000
        return {
          peerId: this.libp2p.peerId.toString(),
          roles: this.roles(),
          version: POI_VERSION,
          peers: this.libp2p.getPeers().map(p => p.toString()),
          epoch: set.epoch.toString(),
          operators: set.operators.map(o => ({ index: o.index, address: o.address, stake: o.stake.toString(), share: share(o.stake) })),
          totalStake: set.totalStake.toString(),
          deployment: chain == null
            ? null
            : Object.fromEntries(Object.entries({ ...chain, chainId: Number(set.domain.chainId) })
              .filter(([k, v]) => k !== 'rpcUrl' && v != null)
              .map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v as string | number]))
        }
      },
      task: async (taskId) => await this.taskView(taskId),
      recentTasks: async (limit) => this.store == null ? [] : await Promise.all((await this.store.listRecentTaskIds(limit)).map(async id => await this.taskView(to0xHex(id)))),
      models: async () => this.blocks == null ? [] : (await listModels(this.blocks)).map(m => ({ modelId: m.modelId, manifest: m.manifest }))
    }
  }

  /** The conditions under which this node serves (GET /health): each with why it fails. */
  private async health (): Promise<HealthCheck[]> {
    const started = this.libp2p.status === 'started'
    const peers = this.libp2p.getPeers().length
    const checks: HealthCheck[] = [
      { name: 'libp2p', ok: started, detail: `libp2p is ${this.libp2p.status}` },
      { name: 'peers', ok: peers > 0, detail: `${peers} connected peer${peers === 1 ? '' : 's'}${peers === 0 ? `; check --bootstrap (${this.opts.config.bootstrap.join(', ') || 'none given'})` : ''}` }
    ]
    if (this.opts.operate) {
      const mesh = this.meshPeers('tasks')
      const subscribers = this.topicPeers('attestations')
      checks.push({ name: 'tasks-mesh', ok: mesh > 0 && subscribers > 0, detail: `${mesh} peer${mesh === 1 ? '' : 's'} in the tasks mesh, ${subscribers} attestation subscriber${subscribers === 1 ? '' : 's'}` })
    }
    if (this.opts.config.chain != null) {
      const read = this.opts.chainEpoch
      let check: HealthCheck
      if (read == null) {
        check = { name: 'chain', ok: false, detail: 'a chain is configured but this node has no client to reach it' }
      } else {
        let timer: NodeJS.Timeout | undefined
        try {
          const epoch = await Promise.race([read(), new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no answer within ${HEALTH_CHAIN_TIMEOUT_MS} ms`)) }, HEALTH_CHAIN_TIMEOUT_MS) })])
          check = { name: 'chain', ok: true, detail: `${rpcOrigin(this.opts.config.chain.rpcUrl)} answers: epoch ${epoch} (this node uses epoch ${this.epochs.current.epoch})` }
        } catch (err) {
          check = { name: 'chain', ok: false, detail: `${rpcOrigin(this.opts.config.chain.rpcUrl)} does not answer: ${(err as Error).message.split('\n')[0].replaceAll(this.opts.config.chain.rpcUrl, rpcOrigin(this.opts.config.chain.rpcUrl))}` }
        } finally {
          clearTimeout(timer)
        }
      }
      checks.push(check)
    }
    return checks
  }

  /** A task's status as this node knows it (GET /v1/tasks/:id). */
  private async taskView (taskIdHex: string): Promise<TaskView> {
    const taskId = fromHex(taskIdHex)
    // The route's schema admits only 0x + 64 hex digits; anything else is a task never seen.
    if (taskId == null) return { taskId: taskIdHex, status: 'unknown', outputRef: null, certificate: null }
    const certificate = await this.store?.getCertificate(taskId)
    const timing = this.eventStream?.timing(taskIdHex.toLowerCase()) ?? { seenAt: null, certifiedAt: null }
    if (certificate != null) {
      // A stored certificate was verified against its epoch's set: any count its bitmap fits decodes it.
      const decoded = decodeSignerBitmap(certificate.signerBitmap, certificate.signerBitmap.length * 8)
      const submission = await this.store?.getSubmission('certificate', toHex(taskId))
      return {
        taskId: taskIdHex,
        status: 'certified',
        signers: decoded.ok ? decoded.signers : [],
        ...timing,
        settlement: submission == null ? null : { state: submission.state, txHash: submission.txHash ?? null, gasUsed: submission.gasUsed ?? null, settledBy: submission.settledBy ?? null },
        outputRef: to0xHex(certificate.outputRef),
        certificate: {
          version: certificate.version,
          taskId: to0xHex(certificate.taskId),
          resultHash: to0xHex(certificate.resultHash),
          outputRef: to0xHex(certificate.outputRef),
          epoch: certificate.epoch.toString(),
          signerBitmap: to0xHex(certificate.signerBitmap),
          aggregateSig: to0xHex(certificate.aggregateSig),
          signedStake: to0xHex(certificate.signedStake),
          totalStake: to0xHex(certificate.totalStake),
          output: to0xHex(certificate.output)
        }
      }
    }
    const state = await this.store?.getTaskState(taskId)
    if (state?.state === 'no-quorum') return { taskId: taskIdHex, status: 'no-quorum', ...(state.reason != null ? { reason: state.reason } : {}), outputRef: null, certificate: null, seenAt: timing.seenAt }
    const known = state != null || this.tasks.has(taskId)
    return { taskId: taskIdHex, status: known ? 'pending' : 'unknown', outputRef: null, certificate: null, ...(known ? { seenAt: timing.seenAt } : {}) }
  }

  static async start (opts: PoiNodeOptions): Promise<PoiNode> {
    if (opts.operate && opts.light) throw new TypeError('a light node cannot operate')
    if (opts.operate && !opts.operatorSet.operators.some(o => bytesEqual(o.blsPublicKey, opts.keystore.blsPublicKey))) {
      throw new NotInOperatorSetError(`this node's BLS key ${to0xHex(opts.keystore.blsPublicKey)} is not in the operator set (epoch ${opts.operatorSet.epoch}); ${opts.config.chain == null ? `add it to the genesis file ${opts.config.genesis}` : 'register it with `poi operator register --stake <eth> --chain <deployment.json>` and start the next epoch with `poi epoch advance`'} or run without the operator role`)
    }
    const models = [...(opts.light ? [] : await Promise.all(opts.config.modelDirs.map(loadModelDir))), ...(opts.models ?? [])]
    const store = opts.light ? undefined : await NodeStore.open(opts.config.dataDir)
    // A light peer (a requester, a gateway) takes a fresh libp2p identity each run: its tasks are
    // signed by the keystore's account, not its peer id, and full nodes keep a departed peer id's
    // gossipsub score and prune backoff for a while, so a requester rerun soon under the same
    // peer id could not join the certificates mesh (ERR_NOT_CONNECTED after 20 s).
    const privateKey = opts.light ? await generateKeyPair('Ed25519') : opts.keystore.privateKey
    const metrics = opts.metrics === false ? undefined : new NodeMetrics({ role: rolesOf(opts).join('+'), peerId: peerIdFromPrivateKey(privateKey).toString() })
    let libp2p: PoiLibp2p
    try {
      libp2p = await createPoiLibp2p({ privateKey, listen: opts.light ? [] : opts.config.listen, bootstrap: opts.config.bootstrap, dhtClientMode: opts.light, bootstrapNode: rolesOf(opts).includes('bootstrap'), metricsRegistry: metrics?.registry })
    } catch (err) {
      await store?.close()
      throw err
    }
    const node = new PoiNode(opts, libp2p, store, models, metrics)
    try {
      // Models load (and are hash-checked) before the node joins; topics are subscribed before
      // it connects, so its first peers learn them in the handshake.
      await node.operator?.start()
      for (const service of [node.epochs, node.tasks, node.relay, node.zkProofs]) await service.start()
      await libp2p.start()
      for (const service of node.services) await service.start()
    } catch (err) {
      await node.stop()
      throw err
    }
    log('started %p as %s', libp2p.peerId, node.roles().join('+'))
    return node
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const service of [...this.services].reverse()) await service.stop()
    for (const service of [this.zkProofs, this.relay, this.tasks, this.epochs]) await service.stop()
    await this.libp2p.stop()
    this.metrics?.stop()
    await this.verifier.close()
    await this.releaseProofVerifier()
    await this.operator?.stop()
    await this.store?.close()
  }

  /**
   * A valid proof of a zk task, gossiped or this prover's own (issue 16): an aggregator whose
   * chain client settles zk results stores it with a pending submission (the first proof per
   * task; a restart resumes it) and posts it. The proof names its payee, so any poster pays the prover.
   */
  private queueZkResult (verified: VerifiedZkProof): void {
    const { submitter, store } = this
    if (submitter == null || store == null || !submitter.settlesZkResults) return
    const task = this.tasks.get(verified.taskId)?.task
    if (task === undefined || task.tier !== TASK_TIERS.zk) return
    const body = encodeZkProofBody({
      version: 1, taskId: Uint8Array.from(verified.taskId), prover: Uint8Array.from(fromHex(verified.prover.slice(2)) ?? []), proof: Uint8Array.from(proofToBytes(verified.proof)),
      outputCommitment: uint256ToBytes32(verified.outputCommitment), output: Uint8Array.from(verified.output)
    })
    store.putZkProof(verified.taskId, body, { submit: true })
      .then(added => { if (added) submitter.kick('zk', toHex(verified.taskId)) })
      .catch(err => { log.error('task %s: could not queue its zk proof for the chain: %s', to0xHex(verified.taskId), (err as Error).message) })
  }

  /** Whether this node is tracking the task (it arrived by gossip or was announced here, and is not yet forgotten). */
  knowsTask (taskId: Uint8Array): boolean { return this.tasks.has(taskId) }

  /** The current epoch's operator set. */
  get operatorSet (): OperatorSet { return this.epochs.current }

  /** This node's index in the current operator set, if it is an operator there. */
  get operatorIndex (): number | undefined { return this.epochs.operatorIndex }

  /** The operator set of `epoch`: a known one, or one read with `readOperatorSet` when it is near the current epoch. */
  async operatorSetOf (epoch: bigint): Promise<OperatorSet | undefined> { return await this.epochs.resolveSet(epoch) }

  /** Adopts a newer epoch's operator set (from the chain); older sets stay known, so certificates of recent epochs still verify. */
  useOperatorSet (set: OperatorSet): void { this.epochs.use(set) }

  roles (): NodeRole[] { return rolesOf(this.opts) }

  get modelIds (): string[] { return this.models.ids }

  /** Every model this node announces on the DHT: its model directories' and every other one in its block store. */
  get announcedModelIds (): string[] { return this.models.announcedIds }

  addresses (): string[] { return this.libp2p.getMultiaddrs().map(a => a.toString()) }

  /** Peers known to subscribe to a topic: a requester waits for one before publishing. */
  topicPeers (topic: TopicName): number { return this.router.subscribers(topic) }

  meshPeers (topic: TopicName): number { return this.router.meshPeers(topic) }

  /** Publishes a signed task (requester side) and tracks it like one from gossip. */
  async announce (task: TaskAnnouncement): Promise<Uint8Array> {
    const taskId = taskIdOf(task, this.opts.operatorSet.domain.taskManager)
    if (task.tier !== TASK_TIERS.replicated) this.proofVerifier.warm()
    await this.relay.announce(taskId, task, encodeTaskAnnouncement(task))
    return taskId
  }

  /** Puts a task input too large to inline into a stream message this node serves; returns its msgId, the task's inputRef. */
  async offerInput (payload: Uint8Array, serveUntil: number): Promise<Uint8Array> {
    return await this.streamData.offerInput(payload, serveUntil)
  }

  /** Fetches models before any task needs them, in the background ('model' or 'prefetch-failed' per model). */
  prefetchModels (modelIds: Uint8Array[]): void {
    this.models.prefetch(modelIds, async (model) => { await this.operator?.warm(model) })
  }

  /** Gossips a latency probe; every node with probes on reports when it arrives. */
  async sendProbe (): Promise<{ id: string, at: number }> { return await this.relay.sendProbe() }

  /**
   * Checks a zk proof with `vkey` against the expected signals in this node's verify worker
   * (snarkjs on the main thread would stall it and leave curve threads that keep a process
   * alive); ProofRejectedError says why it does not hold.
   */
  async checkZkProof (vkey: VerificationKey, proof: ZkProof, expected: ExpectedSignals): Promise<void> {
    await this.proofVerifier.verify(vkey, proof, expected)
  }

  /** The first valid zk proof this node saw (or made) for a task; the `proof` event announces each. */
  proofOf (taskId: Uint8Array | string): VerifiedZkProof | undefined { return this.zkProofs.proofOf(taskId) }

  /**
   * Gossips a proof this (full) node made for a zk or both task, with the canonical output it
   * proves; its body goes into this node's `proofs` stream channel first (node/roles/zk-proofs.ts).
   */
  async announceProof (taskId: Uint8Array, proof: ZkProof, output: Uint8Array): Promise<{ proofRef: Uint8Array, recipients: number }> {
    return await this.zkProofs.announce(taskId, proof, output)
  }
}

/** What the batcher reads of credit tabs (stragglers, failed batches), from the node's chain reads; undefined without them. */
function batcherTabs (payments: PaymentChain | undefined, tabSettled: BatchSignerSource['tabSettled']): BatcherTabs | undefined {
  const reader = payments?.tabs
  if (payments == null || reader == null || tabSettled == null) return undefined
  return {
    lastSequence: async (requester) => (await reader.readTab(requester)).lastSequence,
    settled: tabSettled,
    settlementWindowMs: async () => (await payments.paymentTerms()).settlementWindowMs
  }
}
