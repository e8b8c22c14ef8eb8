/**
 * Prometheus metrics of one node (DESIGN §12, issue 12): a prom-client Registry per node, not
 * prom-client's global one, so several nodes in one process (tests, benchmarks) keep their own
 * values. It holds the process's default metrics, libp2p's own (node/p2p.ts registers them into
 * the same registry) and poi's series, fed from events the node already dispatches (the ones
 * `--json` prints) and from the gossip router's verdicts. Every series carries the labels
 * role, peer_id and poi_version (the registry's default labels). Not `version`: prom-client's
 * nodejs_version_info has a `version` label of its own (Node's), which would hide ours there and
 * read as Node's version everywhere else.
 */
import { readFileSync } from 'node:fs'
import { logger } from '@libp2p/logger'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { TypedEventTarget } from '@libp2p/interface'
import type { Submission } from '../../storage/index.js'
import type { NodeEvents, SubmitterEvents } from '../roles/index.js'
import { getRoute } from './http-server.js'

const log = logger('poi:metrics')

/**
 * Tasks seen but not yet certified nor ended, remembered for the announcement → certificate
 * histogram; beyond this many the oldest is forgotten (its certificate is then not timed), so
 * a flood of tasks that never certify cannot grow the map without bound.
 */
export const MAX_TIMED_TASKS = 10_000

/**
 * Seconds from first sight of a task to its certificate: the devnet certifies in tens to
 * hundreds of milliseconds, a loaded network or a slow model in seconds; the grace window and
 * task TTLs bound it at minutes.
 */
export const CERTIFICATE_SECONDS_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

/** Seconds of one BLS attestation check (a pairing is about a millisecond; batches and a loaded machine take longer). */
export const VERIFY_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

/** Signature sets per batch sent to a verifier worker: 1 on an idle node, up to the verifier's MAX_BUFFERED_SETS under load. */
export const VERIFY_BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128]

/** A refusal reason as a label: at most this many characters (Prometheus keeps one series per label value). */
export const MAX_REASON_LABEL_CHARS = 80

/** The relay names topics in the singular; the router by their gossip names: both become the TopicName. */
const TOPIC_LABELS: Record<string, string> = {
  task: 'tasks',
  attestation: 'attestations',
  certificate: 'certificates',
  probe: 'probes',
  proof: 'proofs',
  '/poi/1/tasks/proto': 'tasks',
  '/poi/1/attestations/proto': 'attestations',
  '/poi/1/certificates/proto': 'certificates',
  '/poi/1/probes/raw': 'probes',
  '/poi/1/proofs/proto': 'proofs'
}

/**
 * A scrape reads the claimable rewards from this cache, refreshed in the background at most
 * this often: reading them takes several chain calls (the operator's epochs, then each epoch's
 * claim), too slow for a scrape that must answer in its timeout, and rewards change per settled
 * certificate, not per second.
 */
export const REWARDS_REFRESH_MS = 30_000

/**
 * A scrape's stream store reading is reused this long: it walks every stored message's key,
 * and several scrapers (or one scrape's two gauges) need not walk it again at once.
 */
export const HOLDINGS_CACHE_MS = 1_000

/** What the stream store holds (a full node's task inputs, outputs and channels), read on scrape. */
export interface StreamHoldings { messages: number, bytes: number }

export interface NodeMetricsInit {
  /** The node's roles, joined with '+' (operator, aggregator, bootstrap, requester). */
  role: string
  peerId: string
  /** Defaults to this package's version (package.json). */
  version?: string
}

/** Readings taken when /metrics is scraped (set by the node once its stores and chain are known). */
export interface NodeMetricsSources {
  /** The stream store's holdings (full nodes). */
  streams?: () => Promise<StreamHoldings>
  /** What this operator can claim now, in the TaskManager's asset's smallest unit (operators on a chain). */
  claimableRewards?: () => Promise<bigint>
}

export type GossipResult = 'accepted' | 'rejected' | 'ignored'

/** The package's version, read once from package.json (dist/node/api/ or node/api/ → the repository root). */
function packageVersion (): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: unknown, version?: unknown }
      if (pkg.name === 'poi' && typeof pkg.version === 'string') return pkg.version
    } catch {}
  }
  return 'unknown'
}

let cachedVersion: string | undefined

let processRegistry: Registry | undefined

/**
 * prom-client's default metrics (CPU, memory, event loop, GC, handles), collected once per
 * process: each collection starts an event-loop-delay monitor and a GC observer that nothing
 * stops, so one per node would pile up in a process that starts many nodes (tests, benchmarks).
 * Every node's exposition includes them with its own labels.
 */
function processMetrics (): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

/**
 * A hex value in a reason without its `0x`: the gossip validators name a task by toHex(taskId),
 * 64 digits. Sixteen or more hex digits in a row are taken for one (no English word is).
 */
const BARE_HEX_MIN_DIGITS = 16
/** What reasonLabel blanks: `0x` hex, bare hex of BARE_HEX_MIN_DIGITS or more, and numbers. */
const LABEL_VARIABLES = new RegExp(`0x[0-9a-fA-F]+|\\b[0-9a-fA-F]{${BARE_HEX_MIN_DIGITS},}\\b|\\d+`, 'g')

/**
 * A refusal reason as a bounded label: hex values (task ids, hashes, with or without `0x`) and
 * numbers (operator indices, epochs) become placeholders, so one reason is one series whatever
 * task it was for. (A bare task id made one series per task: attestations for random task ids,
 * which are ignored without a penalty once a peer's early-attestation allowance is spent, could
 * grow the registry without bound.)
 */
export function reasonLabel (reason: string): string {
  const text = reason.replace(LABEL_VARIABLES, (m) => m.startsWith('0x') ? '0x…' : m.length >= BARE_HEX_MIN_DIGITS ? '…' : 'N')
  return text.length > MAX_REASON_LABEL_CHARS ? `${text.slice(0, MAX_REASON_LABEL_CHARS - 1)}…` : text
}

export class NodeMetrics {
  /** This node's series: poi's and libp2p's (node/p2p.ts registers them here); the exposition adds the process's. */
  readonly registry: Registry
  private readonly labels: Record<string, string>
  private readonly tasksSeen: Counter
  private readonly tasksAttested: Counter
  private readonly tasksCertified: Counter
  private readonly tasksNoQuorum: Counter
  private readonly certificateSeconds: Histogram
  private readonly verifySeconds: Histogram
  private readonly verifyBatchSize: Histogram
  private readonly gossip: Counter<'topic' | 'result' | 'reason'>
  private readonly modelBytesFetched: Counter
  private readonly modelBytesServed: Counter
  private readonly submissions: Counter<'kind' | 'result'>
  private readonly gasUsed: Counter
  /** First sight (performance.now() ms) of each task not yet certified, oldest first. */
  private readonly firstSeen = new Map<string, number>()
  private readonly unsubscribes: Array<() => void> = []
  private sources: NodeMetricsSources = {}
  /** The gauges readFrom registered. */
  private readonly gauges: Gauge[] = []
  private holdings: { at: number, reading: Promise<StreamHoldings | undefined> } | undefined
  /** The last claimable-rewards reading and when it was asked for (REWARDS_REFRESH_MS). */
  private rewards: { value: bigint | undefined, askedAt: number, reading: boolean } = { value: undefined, askedAt: -Infinity, reading: false }

  constructor (init: NodeMetricsInit) {
    cachedVersion ??= packageVersion()
    const registry = new Registry()
    this.registry = registry
    this.labels = { role: init.role, peer_id: init.peerId, poi_version: init.version ?? cachedVersion }
    registry.setDefaultLabels(this.labels)
    const registers = [registry]
    this.tasksSeen = new Counter({ name: 'poi_tasks_seen_total', help: 'Valid tasks this node saw (by gossip or announced here)', registers })
    this.tasksAttested = new Counter({ name: 'poi_tasks_attested_total', help: 'Tasks this operator ran and signed', registers })
    this.tasksCertified = new Counter({ name: 'poi_tasks_certified_total', help: 'Quorum certificates this node accepted or formed', registers })
    this.tasksNoQuorum = new Counter({ name: 'poi_tasks_no_quorum_total', help: 'Tasks that ended without a quorum', registers })
    this.certificateSeconds = new Histogram({ name: 'poi_task_certificate_seconds', help: 'Seconds from first sight of a task to its certificate', buckets: CERTIFICATE_SECONDS_BUCKETS, registers })
    this.verifySeconds = new Histogram({ name: 'poi_attestation_verify_seconds', help: 'Longest attestation signature check among those a certificate formed here counted', buckets: VERIFY_SECONDS_BUCKETS, registers })
    this.verifyBatchSize = new Histogram({ name: 'poi_attestation_verify_batch_size', help: 'Signature sets per batch sent to a BLS verifier worker', buckets: VERIFY_BATCH_BUCKETS, registers })
    this.gossip = new Counter({ name: 'poi_gossip_messages_total', help: 'Gossip messages validated, by topic and verdict (refusals with their reason; duplicates ignored silently are not counted)', labelNames: ['topic', 'result', 'reason'], registers })
    this.modelBytesFetched = new Counter({ name: 'poi_model_bytes_fetched_total', help: 'Bytes of models fetched from the network', registers })
    this.modelBytesServed = new Counter({ name: 'poi_model_bytes_served_total', help: 'Bytes of model blocks (shards and manifests) this node served to peers over the shard exchange', registers })
    this.submissions = new Counter({ name: 'poi_chain_submissions_total', help: 'Certificate and evidence submissions ended or retried, by kind and result', labelNames: ['kind', 'result'], registers })
    this.gasUsed = new Counter({ name: 'poi_chain_gas_used_total', help: "Gas used by this node's own settled submissions", registers })
  }

  /** Everything GET /metrics shows: this node's series and the process's, all with this node's labels. */
  exposition (): Registry {
    const merged = Registry.merge([this.registry, processMetrics()])
    merged.setDefaultLabels(this.labels)
    return merged
  }

  /** The text exposition, for GET /metrics. */
  async text (): Promise<string> { return await this.exposition().metrics() }

  get contentType (): string { return this.registry.contentType }

  /** Where scrapes read the stream store's holdings and the claimable rewards. */
  /**
   * Where scrapes read the stream store's holdings and the claimable rewards. A gauge is
   * registered only for what the node has (no stream store on a light node, no rewards off a
   * chain or off the operator role): absent, not a misleading 0.
   */
  readFrom (sources: NodeMetricsSources): void {
    this.sources = sources
    const metrics = this
    const registers = [this.registry]
    if (this.gauges.splice(0).length > 0) for (const name of ['poi_stream_messages_held', 'poi_stream_bytes_held', 'poi_rewards_claimable']) this.registry.removeSingleMetric(name)
    if (sources.streams != null) {
      this.gauges.push(new Gauge({
        name: 'poi_stream_messages_held',
        help: 'Stream messages this node stores (task inputs and outputs, its own and copies held for others)',
        registers,
        async collect () { const held = await metrics.streamHoldings(); if (held != null) this.set(held.messages) }
      }))
      this.gauges.push(new Gauge({
        name: 'poi_stream_bytes_held',
        help: 'Bytes of the stream messages this node stores',
        registers,
        async collect () { const held = await metrics.streamHoldings(); if (held != null) this.set(held.bytes) }
      }))
    }
    if (sources.claimableRewards != null) {
      this.gauges.push(new Gauge({
        name: 'poi_rewards_claimable',
        help: `Rewards this operator can claim now, in the smallest unit of the TaskManager's asset (wei for ETH); read from the chain at most every ${REWARDS_REFRESH_MS / 1000} s`,
        registers,
        collect () { const value = metrics.claimableRewards(); if (value !== undefined) this.set(Number(value)) }
      }))
    }
  }

  /** `bytes` of a model block went to a peer. */
  modelServed (bytes: number): void { this.modelBytesServed.inc(bytes) }

  /** The stream store's holdings, read at most once per HOLDINGS_CACHE_MS (both stream gauges share one read). */
  private async streamHoldings (): Promise<StreamHoldings | undefined> {
    const read = this.sources.streams
    if (read == null) return undefined
    const now = performance.now()
    if (this.holdings == null || now - this.holdings.at >= HOLDINGS_CACHE_MS) {
      this.holdings = { at: now, reading: read().catch((err: Error) => { log('reading the stream store failed: %s', err.message); return undefined }) }
    }
    return await this.holdings.reading
  }

  /** The last claimable-rewards reading; a stale one starts a new read in the background. */
  private claimableRewards (): bigint | undefined {
    const read = this.sources.claimableRewards
    if (read == null) return undefined
    const now = performance.now()
    if (!this.rewards.reading && now - this.rewards.askedAt >= REWARDS_REFRESH_MS) {
      this.rewards.askedAt = now
      this.rewards.reading = true
      read().then(
        (value) => { this.rewards.value = value },
        (err: Error) => { log('reading the claimable rewards failed: %s', err.message.split('\n')[0]) }
      ).finally(() => { this.rewards.reading = false })
    }
    return this.rewards.value
  }

  /** A batch of `sets` signature sets went to a verifier worker. */
  verifyBatch (sets: number): void { this.verifyBatchSize.observe(sets) }

  /** A verdict of the gossip router (accepted messages: refusals are counted with their reason from the node's `rejected` events). */
  gossipVerdict (topic: string, result: GossipResult): void {
    if (result !== 'accepted') return
    this.gossip.inc({ topic: TOPIC_LABELS[topic] ?? topic, result, reason: '' })
  }

  /** Counts the node's events (the ones `--json` prints) and its submitter's; undone by stop(). */
  observe (events: NodeEvents, submitter?: TypedEventTarget<SubmitterEvents>): void {
    this.on(events, 'task', ({ detail }) => {
      this.tasksSeen.inc()
      const key = Buffer.from(detail.taskId).toString('hex')
      if (this.firstSeen.has(key)) return
      if (this.firstSeen.size >= MAX_TIMED_TASKS) this.firstSeen.delete(this.firstSeen.keys().next().value as string)
      this.firstSeen.set(key, performance.now())
    })
    this.on(events, 'attested', () => { this.tasksAttested.inc() })
    this.on(events, 'certificate', ({ detail }) => {
      this.tasksCertified.inc()
      const key = Buffer.from(detail.certificate.taskId).toString('hex')
      const seen = this.firstSeen.get(key)
      if (seen !== undefined) {
        this.firstSeen.delete(key)
        this.certificateSeconds.observe((performance.now() - seen) / 1000)
      }
      if (detail.verifyMs !== undefined) this.verifySeconds.observe(detail.verifyMs / 1000)
    })
    this.on(events, 'no-quorum', ({ detail }) => {
      this.tasksNoQuorum.inc()
      this.firstSeen.delete(Buffer.from(detail.taskId).toString('hex'))
    })
    this.on(events, 'rejected', ({ detail }) => {
      this.gossip.inc({ topic: TOPIC_LABELS[detail.topic] ?? detail.topic, result: detail.verdict === 'reject' ? 'rejected' : 'ignored', reason: reasonLabel(detail.reason) })
    })
    this.on(events, 'model', ({ detail }) => { if (!detail.fromStore) this.modelBytesFetched.inc(detail.bytes) })
    if (submitter == null) return
    const ended = (result: string) => ({ detail }: CustomEvent<Submission>) => { this.submissions.inc({ kind: detail.kind, result }) }
    this.on(submitter, 'confirmed', ({ detail }) => {
      this.submissions.inc({ kind: detail.kind, result: 'confirmed' })
      if (detail.gasUsed != null) this.gasUsed.inc(Number(detail.gasUsed))
    })
    this.on(submitter, 'settled-by-other', ended('settled-by-other'))
    this.on(submitter, 'failed', ended('failed'))
    this.on(submitter, 'retrying', ended('retrying'))
  }

  /** Stops counting events and forgets timed tasks (the registry keeps its values). */
  stop (): void {
    for (const off of this.unsubscribes.splice(0)) off()
    this.firstSeen.clear()
    log('stopped')
  }

  private on<E extends Record<string, any>, K extends keyof E & string> (target: TypedEventTarget<E>, type: K, listener: (evt: E[K]) => void): void {
    target.addEventListener(type, listener)
    this.unsubscribes.push(() => { target.removeEventListener(type, listener) })
  }
}

/**
 * GET /metrics as a fastify plugin, for the node's HTTP server (`app.register(metricsRoutes(metrics))`):
 * the registry's text exposition with its content type.
 */
export function metricsRoutes (metrics: NodeMetrics): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    getRoute(app, '/metrics', {}, async (_request, reply) => {
      const body = await metrics.text()
      return await reply.type(metrics.contentType).send(body)
    })
  }
}
