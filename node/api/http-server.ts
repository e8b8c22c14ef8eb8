/**
 * The node's HTTP API (DESIGN §12), off unless `--http <host:port>` is given: `GET /health`,
 * `GET /v1/network`, `GET /v1/tasks/:id`, `GET /v1/models`, `GET /v1/models/:id`. Read-only so
 * far: bodies are refused above a small limit, slow clients time out. It reads the node through
 * HttpSource (what PoiNode hands it), so it sits below the composition root. Other modules add
 * routes (e.g. /metrics) as fastify plugins in `plugins`, using `getRoute` so a wrong method
 * answers 405.
 *
 * fastify: JSON-schema validation of params and querystrings, body limits and connection and
 * request timeouts are built in, and it is the fastest well-kept Node framework.
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyReply, type FastifyRequest, type RouteShorthandOptions } from 'fastify'
import { PoiError } from '../../protocols/wire/index.js'

const log = logger('poi:api:http')

/** No endpoint takes a body yet: anything above this is refused (413) before it is read in full. */
export const HTTP_BODY_LIMIT_BYTES = 16 * 1024
/** A client must send its whole request within this (a slow one cannot hold a socket open). */
export const HTTP_REQUEST_TIMEOUT_MS = 10_000
/** An idle connection (no request in flight) is closed after this. */
export const HTTP_CONNECTION_TIMEOUT_MS = 30_000
/** Keep-alive between requests: short, the API is polled, not streamed. */
export const HTTP_KEEP_ALIVE_TIMEOUT_MS = 5_000
/** `GET /v1/tasks` without `limit`. */
export const DEFAULT_TASKS_LIMIT = 20
/** The most `GET /v1/tasks?limit=` lists: each costs a few store reads. */
export const MAX_TASKS_LIMIT = 100
/** A task id: 32 bytes, 0x-hex. */
const TASK_ID_PATTERN = '^0x[0-9a-fA-F]{64}$'
/** A model id: a base32 CIDv1 (what `poi model ls` prints). */
const MODEL_ID_PATTERN = '^[a-z2-7]{8,128}$'
/** Methods the API does not answer on a known path (405 with Allow). HEAD comes with each GET. */
const OTHER_METHODS = ['DELETE', 'PATCH', 'POST', 'PUT', 'OPTIONS'] as const

/** The HTTP API could not start (the address is taken, or not one this machine has). */
export class HttpApiError extends PoiError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_HTTP_LISTEN', message, options)
  }
}

/** One condition of `GET /health`. */
export interface HealthCheck { name: string, ok: boolean, detail: string }

export interface NetworkView {
  peerId: string
  roles: string[]
  version: string
  peers: string[]
  epoch: string
  operators: Array<{ index: number, address: string, stake: string, share: number }>
  totalStake: string
  /** The contracts, when the node runs on a chain. */
  deployment: Record<string, string | number> | null
}

export type TaskStatus = 'pending' | 'certified' | 'no-quorum' | 'unknown'

export interface TaskView {
  taskId: string
  status: TaskStatus
  /** Why the task ended NoQuorum, when known. */
  reason?: string
  outputRef: string | null
  certificate: Record<string, string | number> | null
  /** Operator indices that signed the certificate (certified tasks). */
  signers?: number[]
  /** When this node first saw the task, unix ms; null when not since it started (the event stream remembers recent tasks). */
  seenAt?: number | null
  /** When this node held the task's certificate, unix ms; null when not known. */
  certifiedAt?: number | null
  /** This node's own on-chain submission of the certificate (aggregators with a chain); null when it submits none. */
  settlement?: TaskSettlement | null
}

/** A certificate's submission as this node knows it: `gasUsed` and `txHash` once confirmed, `settledBy` when another account settled it first. */
export interface TaskSettlement { state: string, txHash: string | null, gasUsed: string | null, settledBy: string | null }

export interface ModelView { modelId: string, manifest: unknown }

/** What the API reads from the node. */
export interface HttpSource {
  health: () => Promise<HealthCheck[]>
  network: () => NetworkView
  /** `taskId` is 0x + 64 hex digits (validated). */
  task: (taskId: string) => Promise<TaskView>
  /** The `limit` most recent tasks this node stored (latest deadline first). */
  recentTasks: (limit: number) => Promise<TaskView[]>
  models: () => Promise<ModelView[]>
}

export interface HttpServerInit {
  host: string
  port: number
  /** Extra routes (e.g. /metrics), registered after the API's own. */
  plugins?: FastifyPluginAsync[]
}

/** The JSON body of every error answer. */
export interface HttpErrorBody { error: { code: string, message: string } }

/** Registers a GET route and a 405 for the other methods on its path: what plugins use too. */
export function getRoute (app: FastifyInstance, url: string, opts: RouteShorthandOptions, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>): void {
  app.get(url, opts, handler)
  app.route({
    method: [...OTHER_METHODS],
    url,
    handler: async (req, reply) => await reply.code(405).header('allow', 'GET, HEAD').send(errorBody('ERR_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url}; use GET`))
  })
}

function errorBody (code: string, message: string): HttpErrorBody { return { error: { code, message } } }

export class HttpServer implements Startable {
  private app: FastifyInstance | undefined
  private bound: { host: string, port: number } | undefined

  constructor (private readonly source: HttpSource, private readonly init: HttpServerInit) {}

  /** Where it listens, once started (port 0 resolved). */
  get address (): { host: string, port: number } | undefined { return this.bound }

  /** `http://host:port`, once started. */
  get url (): string | undefined {
    if (this.bound == null) return undefined
    const host = this.bound.host.includes(':') ? `[${this.bound.host}]` : this.bound.host
    return `http://${host}:${this.bound.port}`
  }

  async start (): Promise<void> {
    const app = Fastify({
      bodyLimit: HTTP_BODY_LIMIT_BYTES,
      requestTimeout: HTTP_REQUEST_TIMEOUT_MS,
      connectionTimeout: HTTP_CONNECTION_TIMEOUT_MS,
      keepAliveTimeout: HTTP_KEEP_ALIVE_TIMEOUT_MS,
      return503OnClosing: true,
      logger: false
    })
    app.setNotFoundHandler(async (req, reply) => await reply.code(404).send(errorBody('ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}; see GET /health, /v1/network, /v1/tasks, /v1/tasks/<id>, /v1/models`)))
    app.setErrorHandler(async (err: Error & { statusCode?: number, code?: string, validation?: unknown }, req, reply) => {
      if (err.validation != null) return await reply.code(400).send(errorBody('ERR_BAD_REQUEST', err.message))
      const status = err.statusCode ?? 500
      if (status >= 400 && status < 500) return await reply.code(status).send(errorBody(err.code ?? 'ERR_BAD_REQUEST', err.message))
      log.error('%s %s failed: %s', req.method, req.url, err.stack)
      return await reply.code(500).send(errorBody('ERR_INTERNAL', 'internal error; see the node\'s log (DEBUG=poi:api:http)'))
    })
    this.routes(app)
    for (const plugin of this.init.plugins ?? []) await app.register(plugin)
    try {
      await app.listen({ host: this.init.host, port: this.init.port })
    } catch (err) {
      await app.close()
      throw new HttpApiError(`cannot serve HTTP on ${this.init.host}:${this.init.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (is the port taken? choose another with --http)`, { cause: err })
    }
    const addr = app.server.address()
    this.bound = addr != null && typeof addr === 'object' ? { host: addr.address, port: addr.port } : { host: this.init.host, port: this.init.port }
    this.app = app
    log('listening on %s', this.url)
  }

  async stop (): Promise<void> {
    const app = this.app
    if (app == null) return
    this.app = undefined
    // Keep-alive sockets would hold close() until they time out.
    app.server.closeAllConnections()
    await app.close()
  }

  private routes (app: FastifyInstance): void {
    const { source } = this
    getRoute(app, '/health', {}, async (_req, reply) => {
      const checks = await source.health()
      const ok = checks.every(c => c.ok)
      return await reply.code(ok ? 200 : 503).send({ ok, checks: ok ? checks : checks.filter(c => !c.ok) })
    })
    getRoute(app, '/v1/network', {}, async () => source.network())
    getRoute(app, '/v1/tasks/:id', {
      schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: TASK_ID_PATTERN } }, required: ['id'] } }
    }, async (req) => await source.task((req.params as { id: string }).id.toLowerCase()))
    getRoute(app, '/v1/tasks', {
      schema: { querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: MAX_TASKS_LIMIT, default: DEFAULT_TASKS_LIMIT } }, additionalProperties: false } }
    }, async (req) => ({ tasks: await source.recentTasks((req.query as { limit: number }).limit) }))
    getRoute(app, '/v1/models', {}, async () => ({ models: await source.models() }))
    getRoute(app, '/v1/models/:id', {
      schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: MODEL_ID_PATTERN } }, required: ['id'] } }
    }, async (req, reply) => {
      const id = (req.params as { id: string }).id
      const model = (await source.models()).find(m => m.modelId === id)
      if (model == null) return await reply.code(404).send(errorBody('ERR_UNKNOWN_MODEL', `this node holds no model ${id}; GET /v1/models lists those it holds`))
      return model
    })
  }
}

export function createHttpServer (source: HttpSource, init: HttpServerInit): HttpServer {
  return new HttpServer(source, init)
}
