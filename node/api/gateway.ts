/**
 * The requester gateway (DESIGN §12, `poi gateway`): an HTTP front to a requester client, so a
 * program that speaks HTTP, not libp2p, can run tasks. `POST /v1/tasks` checks the request,
 * signs the task with the gateway's key, announces it and answers 202 with its id at once;
 * `GET /v1/tasks/:id?wait=<ms>` answers with the verified certificate and output once they are
 * there (or holds the request up to `wait` ms until they are).
 *
 * Trust boundary: every body is untrusted and checked by JSON schema, then by the client
 * against the model's manifest. Writes spend the gateway's deposit, so beyond loopback they need
 * the bearer token of the keystore (gateway-token.ts); every client is rate-limited (per token,
 * or per IP without one). What the gateway answers about a task was verified by its client
 * against the operator set: a caller that trusts the gateway need not verify again, and one
 * that does not can (the certificate is in the answer).
 *
 * The backend is typed structurally (GatewayBackend: the PoiClient methods it uses), so this
 * file depends on no client implementation and sits in node/api with the node's own server.
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import rateLimit from '@fastify/rate-limit'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { BPS_DENOMINATOR, MAX_STREAM_PAYLOAD_BYTES, PoiError, to0xHex, type QuorumCertificate } from '../../protocols/wire/index.js'
import { bearerMatches } from './gateway-token.js'
import {
  HTTP_CONNECTION_TIMEOUT_MS, HTTP_KEEP_ALIVE_TIMEOUT_MS, HTTP_MAX_PARAM_CHARS, HTTP_REQUEST_TIMEOUT_MS, HTTP_TIMEOUT_CHECK_INTERVAL_MS, HttpApiError,
  closeNow, getRoute, httpErrorOf, onClientError, onConnect, onUnknownExpectation, type HealthCheck
} from './http-server.js'

const log = logger('poi:api:gateway')

/**
 * Slack for the JSON around the input in a `POST /v1/tasks` body: the model id, fee, timeout,
 * quorum and field names take well under 1 KiB; 16 KiB leaves room for whitespace.
 */
export const GATEWAY_BODY_SLACK_BYTES = 16 * 1024
/**
 * The largest `POST /v1/tasks` body: the largest input a task can carry (a stream payload),
 * base64-expanded (4 characters per 3 bytes), plus the slack. Larger bodies get 413 before they
 * are read in full.
 */
export const GATEWAY_BODY_LIMIT_BYTES = Math.ceil(MAX_STREAM_PAYLOAD_BYTES / 3) * 4 + GATEWAY_BODY_SLACK_BYTES
/**
 * The longest `?wait=` a `GET /v1/tasks/:id` holds: below the server's idle-socket timeout
 * (HTTP_CONNECTION_TIMEOUT_MS, 30 s), which would otherwise cut a waiting answer off. A client
 * whose task takes longer asks again.
 */
export const MAX_WAIT_MS = 25_000
/**
 * Tasks the gateway remembers (submitted here, or looked up and found certified); the oldest
 * is forgotten first. A task it forgot is looked up again from full nodes, so this bounds
 * memory, not correctness.
 */
export const MAX_TRACKED_TASKS = 4_096
/** And the output bytes they hold: an output can be 1 MiB, 4 096 of them would be 4 GiB. */
export const MAX_TRACKED_OUTPUT_BYTES = 256 * 1024 * 1024
/**
 * How long `GET /v1/tasks/:id` for a task this gateway did not submit looks it up from full
 * nodes (the client asks three at once, 3 s each; the output may follow by stream).
 */
export const FOREIGN_LOOKUP_TIMEOUT_MS = 10_000
/**
 * Requests each client (a token, or an IP without one) may make per window. A waiting GET
 * holds one request for up to 25 s, so a client polling ten tasks at once stays well under.
 */
export const DEFAULT_GATEWAY_RATE_LIMIT_MAX = 300
export const DEFAULT_GATEWAY_RATE_LIMIT_WINDOW_MS = 60_000
/**
 * Seconds from a task's submission here to its outcome: the devnet certifies in a few hundred
 * milliseconds, a loaded network in seconds; task timeouts bound it at minutes.
 */
export const GATEWAY_TASK_SECONDS_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
/** A task id: 32 bytes, 0x-hex. */
const TASK_ID_PATTERN = '^0x[0-9a-fA-F]{64}$'
/** A model id: a base32 CIDv1 (what `poi model ls` prints), as the node's API takes it. */
const MODEL_ID_PATTERN = '^[a-z2-7]{8,128}$'
/** A fee in wei: a decimal uint256 (at most 78 digits), no sign, no leading zeros. */
const FEE_PATTERN = '^(0|[1-9][0-9]{0,77})$'
/** Standard base64 with padding (what `base64` and Buffer.toString('base64') write). */
const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
/** Task timeouts the schema admits; the client then checks it against the nodes' maximum task TTL. */
const MAX_TIMEOUT_MS = 24 * 60 * 60 * 1000

/** A task as the gateway hands it to its backend: what PoiClient.submit takes. */
export interface GatewayTaskRequest {
  model: string
  /** A binary tensor file (POIT), or JSON tensors as `poi request --input` takes them. */
  input: Uint8Array | Record<string, unknown>
  fee?: bigint
  timeoutMs?: number
  quorumBps?: number
}

/** A verified result: the fields of PoiClient's PoiResult the gateway answers with. */
export interface GatewayResult {
  taskId: `0x${string}`
  modelId?: string
  source: 'gossip' | 'full-node' | 'chain'
  resultHash: `0x${string}`
  outputRef: `0x${string}`
  output: Uint8Array | undefined
  outputTensors: readonly unknown[] | null
  certificate?: QuorumCertificate
  signers?: number[]
  epoch: bigint
  signedStake: bigint
  totalStake: bigint
  latencyMs?: number
  fee?: bigint
}

export interface GatewaySubmitted {
  taskId: `0x${string}`
  /** Wall-clock ms. */
  deadline: number
  /** Settles with the verified result or a typed error. */
  result: Promise<GatewayResult>
}

/**
 * What the gateway needs of a requester client: PoiClient's submit and result. Errors are
 * PoiErrors with a `code`; a request error names what is wrong in `field`, which the gateway
 * answers as 400 with that field (413 for an input above the largest a task carries).
 */
export interface GatewayBackend {
  submit: (request: GatewayTaskRequest) => Promise<GatewaySubmitted>
  result: (taskId: string, options?: { signal?: AbortSignal }) => Promise<GatewayResult>
}

export interface GatewayInit {
  host: string
  port: number
  /** The bearer token write endpoints need when the gateway is not bound to loopback. */
  token: string
  /** Requests per client per window; default DEFAULT_GATEWAY_RATE_LIMIT_MAX per DEFAULT_GATEWAY_RATE_LIMIT_WINDOW_MS. */
  rateLimit?: { max?: number, windowMs?: number }
  /** `GET /health`'s checks (the light peer's connections, the operator set); without it, only "serving". */
  health?: () => Promise<HealthCheck[]>
  /** Labels every `GET /metrics` series carries (e.g. peer_id, version), besides role="gateway". */
  metricsLabels?: Record<string, string>
}

/** The gateway's own Prometheus series (its own registry: several gateways in one process keep theirs). */
class GatewayMetrics {
  readonly registry = new Registry()
  readonly submitted: Counter
  readonly settled: Counter<'status'>
  readonly refused: Counter<'status' | 'code'>
  readonly taskSeconds: Histogram<'status'>

  constructor (labels: Record<string, string>, tracked: () => number) {
    const registers = [this.registry]
    this.registry.setDefaultLabels({ role: 'gateway', ...labels })
    this.submitted = new Counter({ name: 'poi_gateway_tasks_submitted_total', help: 'Tasks signed and announced through the gateway', registers })
    this.settled = new Counter({ name: 'poi_gateway_tasks_settled_total', help: 'Tasks submitted here that ended, by status (certified, no-quorum, failed)', labelNames: ['status'], registers })
    this.refused = new Counter({ name: 'poi_gateway_requests_refused_total', help: 'Requests answered with a 4xx, by status and error code', labelNames: ['status', 'code'], registers })
    this.taskSeconds = new Histogram({ name: 'poi_gateway_task_seconds', help: 'Seconds from submission here to the task\'s outcome, by status', labelNames: ['status'], buckets: GATEWAY_TASK_SECONDS_BUCKETS, registers })
    new Gauge({ name: 'poi_gateway_tracked_tasks', help: 'Tasks the gateway remembers (bounded by MAX_TRACKED_TASKS)', registers, collect () { this.set(tracked()) } })
  }
}

/** The JSON body of every error answer; `field` names the request field at fault, when one is. */
export interface GatewayErrorBody { error: { code: string, message: string, field?: string } }

export type GatewayTaskStatus = 'pending' | 'certified' | 'no-quorum' | 'failed' | 'unknown'

/** What `GET /v1/tasks/:id` answers. */
export interface GatewayTaskView {
  taskId: string
  status: GatewayTaskStatus
  /** Wall-clock ms (tasks submitted here). */
  deadline?: number
  /** no-quorum and failed: why. */
  error?: { code: string, message: string }
  source?: GatewayResult['source']
  modelId?: string
  resultHash?: string
  outputRef?: string
  /** 0x-hex canonical output; null for a chain-settled result no full node served. */
  output?: string | null
  outputTensors?: readonly unknown[] | null
  /** The verified certificate, hex fields as the node's `GET /v1/tasks/:id` has them. */
  certificate?: Record<string, string | number> | null
  signers?: number[] | null
  epoch?: string
  signedStake?: string
  totalStake?: string
  latencyMs?: number | null
  fee?: string | null
  links: { self: string }
}

interface PostBody {
  model: string
  input: Record<string, unknown>
  fee?: string
  timeoutMs?: number
  quorumBps?: number
}

type Outcome =
  | { kind: 'certified', result: GatewayResult }
  | { kind: 'no-quorum' | 'failed', code: string, message: string }

interface Tracked {
  taskId: string
  deadline?: number
  outcome?: Outcome
  /** Resolves once `outcome` is set. */
  settled: Promise<void>
  /** Output bytes held (counted against MAX_TRACKED_OUTPUT_BYTES). */
  bytes: number
}

/** A request the gateway refuses: the HTTP status, and the request field at fault when there is one. */
export class GatewayRequestError extends PoiError {
  constructor (readonly statusCode: number, code: string, message: string, readonly field?: string) {
    super(code, message)
  }
}

function errorBody (code: string, message: string, field?: string): GatewayErrorBody {
  return { error: { code, message, ...(field !== undefined ? { field } : {}) } }
}

/** The longest request path an error message repeats: enough to recognise it, not an echo of whatever was sent. */
const MAX_ECHOED_PATH_CHARS = 200

/** A request's path for an error message: no query, bounded. */
function pathOf (url: string): string {
  const path = url.split('?')[0]
  return path.length > MAX_ECHOED_PATH_CHARS ? `${path.slice(0, MAX_ECHOED_PATH_CHARS)}…` : path
}

/** Whether `host` is a loopback address: only this machine can reach the gateway there. */
export function isLoopbackHost (host: string): boolean {
  const h = host.toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1'
}

/** The certificate as the node's `GET /v1/tasks/:id` shows it: byte fields 0x-hex, the epoch decimal. */
export function certificateView (qc: QuorumCertificate): Record<string, string | number> {
  return {
    version: qc.version,
    taskId: to0xHex(qc.taskId),
    resultHash: to0xHex(qc.resultHash),
    outputRef: to0xHex(qc.outputRef),
    epoch: qc.epoch.toString(),
    signerBitmap: to0xHex(qc.signerBitmap),
    aggregateSig: to0xHex(qc.aggregateSig),
    signedStake: to0xHex(qc.signedStake),
    totalStake: to0xHex(qc.totalStake),
    output: to0xHex(qc.output)
  }
}

const linkOf = (taskId: string): { self: string } => ({ self: `/v1/tasks/${taskId}` })

function resultView (r: GatewayResult): GatewayTaskView {
  const taskId = r.taskId.toLowerCase()
  return {
    taskId,
    status: 'certified',
    source: r.source,
    ...(r.modelId !== undefined ? { modelId: r.modelId } : {}),
    resultHash: r.resultHash,
    outputRef: r.outputRef,
    output: r.output !== undefined ? to0xHex(r.output) : null,
    outputTensors: r.outputTensors,
    certificate: r.certificate !== undefined ? certificateView(r.certificate) : null,
    signers: r.signers ?? null,
    epoch: r.epoch.toString(),
    signedStake: r.signedStake.toString(),
    totalStake: r.totalStake.toString(),
    latencyMs: r.latencyMs ?? null,
    fee: r.fee?.toString() ?? null,
    links: linkOf(taskId)
  }
}

/**
 * The request field an error of the client names (PoiClient's errors carry `field`: `model`,
 * `input` or `input.<name>`, `fee`, `timeoutMs`, `quorumBps`), or undefined for errors that are
 * not the request's fault.
 */
function errorField (err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const { field, code } = err as { field?: unknown, code?: unknown }
  // ClientOptionsError names an option of the client itself (e.g. that it is closed), not of the request.
  if (code === 'ERR_CLIENT_OPTIONS') return undefined
  return typeof field === 'string' && field !== '' ? field : undefined
}

/** Why the backend's submit failed, as an HTTP answer: the request's fault (400, naming the field) or the network's (503). */
function submitFailure (err: unknown): GatewayRequestError {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'ERR_INTERNAL'
  const message = err instanceof Error ? err.message : String(err)
  const field = errorField(err)
  if (code === 'ERR_INPUT_TOO_LARGE') return new GatewayRequestError(413, code, message, 'input')
  if (field !== undefined) return new GatewayRequestError(400, code, message, field)
  // The network's or the gateway's state, not the request: no operators to certify, no peers, the chain unreadable, the client closing.
  if ((err as { param?: unknown })?.param === 'operators' || ['ERR_NOT_CONNECTED', 'ERR_ANNOUNCE_FAILED', 'ERR_CHAIN_READ', 'ERR_CLIENT_OPTIONS'].includes(code)) {
    return new GatewayRequestError(503, code, message)
  }
  log.error('submit failed: %s', err instanceof Error ? err.stack : message)
  return new GatewayRequestError(500, 'ERR_INTERNAL', 'the gateway could not submit the task; see its log (DEBUG=poi:api:gateway)')
}

/** How a task that did not certify ended: NoQuorum, or another failure (refused, rejected certificate, …). */
function failureOutcome (err: unknown): Outcome {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'ERR_INTERNAL'
  const message = err instanceof Error ? err.message : String(err)
  return { kind: code === 'ERR_NO_QUORUM' ? 'no-quorum' : 'failed', code, message }
}

/** The request field a JSON-schema error is about: `fee`, `input`, `wait`, … */
function validationField (err: FastifyError): string | undefined {
  const first = err.validation?.[0]
  if (first == null) return undefined
  const path = first.instancePath.replace(/^\//, '').replace(/\//g, '.')
  const params = first.params as { missingProperty?: string, additionalProperty?: string }
  const leaf = params.missingProperty ?? params.additionalProperty
  const field = [path, leaf].filter(s => s !== undefined && s !== '').join('.')
  return field !== '' ? field : undefined
}

export class Gateway implements Startable {
  private app: FastifyInstance | undefined
  private bound: { host: string, port: number } | undefined
  /** Insertion order is age: the first entry is the oldest. */
  private readonly tasks = new Map<string, Tracked>()
  private heldBytes = 0
  private readonly metrics: GatewayMetrics

  constructor (private readonly backend: GatewayBackend, private readonly init: GatewayInit) {
    this.metrics = new GatewayMetrics(init.metricsLabels ?? {}, () => this.tasks.size)
  }

  /** Where it listens, once started (port 0 resolved). */
  get address (): { host: string, port: number } | undefined { return this.bound }

  /** `http://host:port`, once started. */
  get url (): string | undefined {
    if (this.bound == null) return undefined
    const host = this.bound.host.includes(':') ? `[${this.bound.host}]` : this.bound.host
    return `http://${host}:${this.bound.port}`
  }

  /** Whether writes need the bearer token: the gateway is reachable from other machines. */
  get needsToken (): boolean { return !isLoopbackHost(this.init.host) }

  /** Tasks remembered now (for tests and metrics). */
  get trackedTasks (): number { return this.tasks.size }

  async start (): Promise<void> {
    const sendError = async (err: FastifyError, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      if (err instanceof GatewayRequestError) return await reply.code(err.statusCode).send(errorBody(err.code, err.message, err.field))
      if (err.validation != null) return await reply.code(400).send(errorBody('ERR_BAD_REQUEST', err.message, validationField(err)))
      // The node API's mapping of fastify's own errors (body parsing, URLs, limits); the gateway names the body as the field.
      const { status, body } = httpErrorOf(err)
      if (status >= 500) {
        log.error('%s %s failed: %s', req.method, pathOf(req.url), err.stack)
        return await reply.code(500).send(errorBody('ERR_INTERNAL', 'internal error; see the gateway\'s log (DEBUG=poi:api:gateway)'))
      }
      const { code } = body.error
      if (code === 'ERR_BODY_TOO_LARGE') return await reply.code(413).send(errorBody(code, `the body is over ${GATEWAY_BODY_LIMIT_BYTES} bytes (a task input is at most ${MAX_STREAM_PAYLOAD_BYTES} bytes, base64-expanded)`, 'body'))
      if (code === 'ERR_BAD_JSON') return await reply.code(400).send(errorBody(code, `the body is not valid JSON: ${body.error.message}`, 'body'))
      return await reply.code(status).send(errorBody(code, body.error.message))
    }
    // The node API's hardening (node/api/http-server.ts): headers within the request timeout, Node's
    // parser refusals, CONNECT and unknown Expect all answered as JSON errors.
    const app = Fastify({
      bodyLimit: GATEWAY_BODY_LIMIT_BYTES,
      requestTimeout: HTTP_REQUEST_TIMEOUT_MS,
      connectionTimeout: HTTP_CONNECTION_TIMEOUT_MS,
      keepAliveTimeout: HTTP_KEEP_ALIVE_TIMEOUT_MS,
      routerOptions: { maxParamLength: HTTP_MAX_PARAM_CHARS },
      http: { headersTimeout: HTTP_REQUEST_TIMEOUT_MS, connectionsCheckingInterval: HTTP_TIMEOUT_CHECK_INTERVAL_MS, requireHostHeader: false },
      clientErrorHandler: onClientError,
      frameworkErrors: sendError,
      return503OnClosing: true,
      logger: false,
      // An unknown body field is refused (a typo like `timeout` must not be silently ignored).
      ajv: { customOptions: { removeAdditional: false } }
    })
    app.setNotFoundHandler(async (req, reply) => await reply.code(404).send(errorBody('ERR_NOT_FOUND', `no route ${req.method} ${pathOf(req.url)}; see POST /v1/tasks, GET /v1/tasks/<id>, GET /health, GET /metrics`)))
    app.setErrorHandler(sendError)
    app.server.on('connect', onConnect)
    app.server.on('checkExpectation', onUnknownExpectation)
    const { token } = this.init
    const max = this.init.rateLimit?.max ?? DEFAULT_GATEWAY_RATE_LIMIT_MAX
    const windowMs = this.init.rateLimit?.windowMs ?? DEFAULT_GATEWAY_RATE_LIMIT_WINDOW_MS
    await app.register(rateLimit, {
      global: true,
      max,
      timeWindow: windowMs,
      // Keyed by the token only when it is the right one: made-up tokens would each get a fresh budget.
      keyGenerator: (req) => bearerMatches(req.headers.authorization, token) ? 'token' : `ip:${req.ip}`,
      errorResponseBuilder: (_req, ctx) => new GatewayRequestError(429, 'ERR_RATE_LIMITED', `more than ${ctx.max} requests in ${Math.round(windowMs / 1000)} s from this client; retry in ${ctx.after}`)
    })
    // Every refusal is one of the gateway's JSON error bodies: its code labels the count.
    app.addHook('onSend', async (_req, reply, payload) => {
      if (reply.statusCode >= 400 && reply.statusCode < 500) this.metrics.refused.inc({ status: String(reply.statusCode), code: errorCodeOf(payload) })
      return payload
    })
    this.routes(app)
    try {
      await app.listen({ host: this.init.host, port: this.init.port })
    } catch (err) {
      await app.close()
      throw new HttpApiError(`cannot serve the gateway on ${this.init.host}:${this.init.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (is the port taken? choose another with --http)`, { cause: err })
    }
    const addr = app.server.address()
    this.bound = addr != null && typeof addr === 'object' ? { host: addr.address, port: addr.port } : { host: this.init.host, port: this.init.port }
    this.app = app
    log('listening on %s (writes %s)', this.url, this.needsToken ? 'need the bearer token' : 'open: loopback')
  }

  async stop (): Promise<void> {
    const app = this.app
    if (app == null) return
    this.app = undefined
    await closeNow(app)
  }

  private routes (app: FastifyInstance): void {
    getRoute(app, '/health', { config: { rateLimit: false } }, async (_req, reply) => {
      const checks: HealthCheck[] = [{ name: 'gateway', ok: true, detail: `serving on ${this.url ?? 'its address'}` }, ...(await this.init.health?.() ?? [])]
      const ok = checks.every(c => c.ok)
      return await reply.code(ok ? 200 : 503).send({ ok, checks: ok ? checks : checks.filter(c => !c.ok) })
    })

    getRoute(app, '/metrics', { config: { rateLimit: false } }, async (_req, reply) => {
      const body = await this.metrics.registry.metrics()
      return await reply.type(this.metrics.registry.contentType).send(body)
    })

    const authorize = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      if (!this.needsToken || bearerMatches(req.headers.authorization, this.init.token)) return
      await reply.code(401).header('www-authenticate', 'Bearer').send(errorBody('ERR_UNAUTHORIZED',
        'this gateway is not on loopback: writes need `Authorization: Bearer <token>`, the token in the gateway-token file of its keystore directory'))
    }
    app.route({
      method: 'POST',
      url: '/v1/tasks',
      onRequest: authorize,
      schema: {
        body: {
          type: 'object',
          required: ['model', 'input'],
          additionalProperties: false,
          properties: {
            model: { type: 'string', pattern: MODEL_ID_PATTERN },
            input: { type: 'object' },
            fee: { type: 'string', pattern: FEE_PATTERN },
            timeoutMs: { type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_MS },
            quorumBps: { type: 'integer', minimum: 1, maximum: BPS_DENOMINATOR }
          }
        }
      },
      handler: async (req, reply) => {
        const body = req.body as PostBody
        let submitted: GatewaySubmitted
        try {
          submitted = await this.backend.submit({
            model: body.model,
            input: taskInput(body.input),
            ...(body.fee !== undefined ? { fee: BigInt(body.fee) } : {}),
            ...(body.timeoutMs !== undefined ? { timeoutMs: body.timeoutMs } : {}),
            ...(body.quorumBps !== undefined ? { quorumBps: body.quorumBps } : {})
          })
        } catch (err) {
          throw err instanceof GatewayRequestError ? err : submitFailure(err)
        }
        const taskId = submitted.taskId.toLowerCase()
        this.track(taskId, submitted)
        log('task %s submitted (deadline %s)', taskId, new Date(submitted.deadline).toISOString())
        return await reply.code(202).header('location', linkOf(taskId).self).send({ taskId, deadline: submitted.deadline, links: linkOf(taskId) })
      }
    })
    app.route({
      method: ['GET', 'DELETE', 'PATCH', 'PUT', 'OPTIONS'],
      url: '/v1/tasks',
      handler: async (req, reply) => await reply.code(405).header('allow', 'POST').send(errorBody('ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed on /v1/tasks; POST a task, GET /v1/tasks/<id> for one`))
    })

    getRoute(app, '/v1/tasks/:id', {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', pattern: TASK_ID_PATTERN } }, required: ['id'] },
        querystring: { type: 'object', properties: { wait: { type: 'integer', minimum: 0, maximum: MAX_WAIT_MS, default: 0 } }, additionalProperties: false }
      }
    }, async (req, reply) => {
      const id = (req.params as { id: string }).id.toLowerCase()
      const wait = (req.query as { wait: number }).wait
      // A client that hangs up stops the wait (and the lookup) at once.
      const gone = new AbortController()
      const onClose = (): void => { gone.abort() }
      reply.raw.once('close', onClose)
      try {
        return await this.taskView(id, wait, gone.signal)
      } finally {
        reply.raw.off('close', onClose)
      }
    })
  }

  /** Remembers a submitted task; its outcome is filled in when its result settles. */
  private track (taskId: string, submitted: GatewaySubmitted): void {
    const entry: Tracked = { taskId, deadline: submitted.deadline, settled: Promise.resolve(), bytes: 0 }
    this.metrics.submitted.inc()
    const timer = this.metrics.taskSeconds.startTimer()
    const ended = (outcome: Outcome): void => {
      timer({ status: outcome.kind })
      this.metrics.settled.inc({ status: outcome.kind })
      this.settle(entry, outcome)
    }
    entry.settled = submitted.result.then(
      (result) => { ended({ kind: 'certified', result }) },
      (err: unknown) => { ended(failureOutcome(err)) }
    )
    this.remember(entry)
  }

  private settle (entry: Tracked, outcome: Outcome): void {
    entry.outcome = outcome
    if (outcome.kind === 'certified') {
      log('task %s certified', entry.taskId)
      entry.bytes = outcome.result.output?.length ?? 0
      // Forgotten already (pushed out by newer tasks): hold nothing for it.
      if (this.tasks.get(entry.taskId) === entry) {
        this.heldBytes += entry.bytes
        this.trim()
      }
    } else {
      log('task %s ended %s: %s', entry.taskId, outcome.kind, outcome.code)
    }
  }

  private remember (entry: Tracked): void {
    const old = this.tasks.get(entry.taskId)
    if (old !== undefined) this.forget(old)
    this.tasks.set(entry.taskId, entry)
    this.heldBytes += entry.bytes
    this.trim()
  }

  private forget (entry: Tracked): void {
    this.tasks.delete(entry.taskId)
    this.heldBytes -= entry.bytes
  }

  /** Forgets the oldest tasks until both bounds hold (the newest is always kept). */
  private trim (): void {
    for (const oldest of this.tasks.values()) {
      if (this.tasks.size <= MAX_TRACKED_TASKS && this.heldBytes <= MAX_TRACKED_OUTPUT_BYTES) return
      if (this.tasks.size === 1) return
      this.forget(oldest)
    }
  }

  /**
   * A task's status. One submitted here: its outcome, waiting up to `waitMs` for it. Any other:
   * one lookup from full nodes (PoiClient.result, verified there), `unknown` when none has a
   * certificate; a foreign task is not waited for, since this gateway hears nothing of it.
   */
  private async taskView (taskId: string, waitMs: number, gone: AbortSignal): Promise<GatewayTaskView> {
    const entry = this.tasks.get(taskId)
    if (entry !== undefined) {
      if (entry.outcome === undefined && waitMs > 0) await settledWithin(entry.settled, waitMs, gone)
      return viewOf(entry)
    }
    let result: GatewayResult
    try {
      result = await this.backend.result(taskId, { signal: AbortSignal.any([gone, AbortSignal.timeout(FOREIGN_LOOKUP_TIMEOUT_MS)]) })
    } catch (err) {
      const code = (err as { code?: unknown })?.code
      if (code === 'ERR_RESULT_NOT_FOUND' || code === 'ERR_REQUEST_ABORTED') return { taskId, status: 'unknown', links: linkOf(taskId) }
      log.error('looking up task %s failed: %s', taskId, err instanceof Error ? err.stack : String(err))
      throw new GatewayRequestError(502, typeof code === 'string' ? code : 'ERR_LOOKUP_FAILED', `looking up task ${taskId} from full nodes failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`)
    }
    const found: Tracked = { taskId, outcome: { kind: 'certified', result }, settled: Promise.resolve(), bytes: result.output?.length ?? 0 }
    this.remember(found)
    return viewOf(found)
  }
}

/** The `error.code` of a JSON error body being sent, or `unknown`. */
function errorCodeOf (payload: unknown): string {
  if (typeof payload !== 'string') return 'unknown'
  try {
    const code = (JSON.parse(payload) as Partial<GatewayErrorBody>).error?.code
    return typeof code === 'string' ? code : 'unknown'
  } catch {
    return 'unknown'
  }
}

function viewOf (entry: Tracked): GatewayTaskView {
  const { taskId, outcome } = entry
  const deadline = entry.deadline !== undefined ? { deadline: entry.deadline } : {}
  if (outcome === undefined) return { taskId, status: 'pending', ...deadline, links: linkOf(taskId) }
  if (outcome.kind === 'certified') return { ...resultView(outcome.result), ...deadline }
  return { taskId, status: outcome.kind, ...deadline, error: { code: outcome.code, message: outcome.message }, links: linkOf(taskId) }
}

/** Resolves when `settled` does, `ms` pass or `signal` fires, whichever is first; removes its timer and listener. */
async function settledWithin (settled: Promise<void>, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  try {
    await Promise.race([
      settled,
      new Promise<void>(resolve => { timer = setTimeout(resolve, ms) }),
      new Promise<void>(resolve => { onAbort = resolve; signal.addEventListener('abort', onAbort, { once: true }) })
    ])
  } finally {
    clearTimeout(timer)
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

/**
 * The body's `input`: `{ "base64": "<tensor file>" }` decoded to its bytes, or JSON tensors
 * passed on as they are (the client checks both against the model's manifest).
 */
function taskInput (input: Record<string, unknown>): Uint8Array | Record<string, unknown> {
  if (!Object.hasOwn(input, 'base64')) return input
  const b64 = input.base64
  if (Object.keys(input).length !== 1 || typeof b64 !== 'string') {
    throw new GatewayRequestError(400, 'ERR_BAD_REQUEST', 'input: either JSON tensors {"<name>": {"dims": [...], "data": [...]}} or {"base64": "<binary tensor file>"} alone', 'input.base64')
  }
  if (b64.length === 0 || !BASE64_PATTERN.test(b64)) throw new GatewayRequestError(400, 'ERR_BAD_REQUEST', 'input.base64 is not standard padded base64', 'input.base64')
  return new Uint8Array(Buffer.from(b64, 'base64'))
}

export function createGateway (backend: GatewayBackend, init: GatewayInit): Gateway {
  return new Gateway(backend, init)
}
