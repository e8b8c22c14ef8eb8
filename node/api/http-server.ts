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
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
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
/**
 * How often Node checks the request and header timeouts of open connections: they are
 * enforced only at these checks, so with Node's default (30 s) a client sending its headers a
 * byte at a time would hold its socket up to 40 s instead of HTTP_REQUEST_TIMEOUT_MS. A check
 * walks the open connections: cheap at the few the API has.
 */
export const HTTP_TIMEOUT_CHECK_INTERVAL_MS = 1_000
/** Longest route parameter (a model id is at most 128 characters): a longer one answers 414 before any route runs. */
export const HTTP_MAX_PARAM_CHARS = 256
/** An error message echoes at most this much of the request's path, so a huge URL does not make a huge answer. */
const MAX_ECHOED_PATH_CHARS = 200
/** Longest error message (fastify's own messages quote the whole URL). */
const MAX_ERROR_MESSAGE_CHARS = 400
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

/** The server's timeouts, each defaulting to its HTTP_* constant (tests lower them to see a slow client cut off). */
export interface HttpTimeouts {
  requestMs?: number
  connectionMs?: number
  keepAliveMs?: number
  checkIntervalMs?: number
}

export interface HttpServerInit {
  host: string
  port: number
  /** Extra routes (e.g. /metrics), registered after the API's own. */
  plugins?: FastifyPluginAsync[]
  timeouts?: HttpTimeouts
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

function errorBody (code: string, message: string): HttpErrorBody {
  return { error: { code, message: message.length > MAX_ERROR_MESSAGE_CHARS ? `${message.slice(0, MAX_ERROR_MESSAGE_CHARS)}…` : message } }
}

/** A request's path for an error message: no query, bounded. */
function echoedPath (url: string): string {
  const path = url.split('?')[0]
  return path.length > MAX_ECHOED_PATH_CHARS ? `${path.slice(0, MAX_ECHOED_PATH_CHARS)}…` : path
}

/**
 * fastify's own errors (body parsing, URLs, limits) as this API's status and error code:
 * without this they would reach clients with fastify's codes and, for some, fastify's own
 * body shape instead of `{error:{code,message}}`.
 */
const FRAMEWORK_ERRORS: Record<string, { status: number, code: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'ERR_BODY_TOO_LARGE' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'ERR_UNSUPPORTED_MEDIA_TYPE' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'ERR_BAD_REQUEST' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'ERR_BAD_JSON' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'ERR_BAD_JSON' },
  FST_ERR_BAD_URL: { status: 400, code: 'ERR_BAD_URL' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, code: 'ERR_URI_TOO_LONG' },
  FST_ERR_ASYNC_CONSTRAINT: { status: 500, code: 'ERR_INTERNAL' }
}

/** An error as this API's answer: 4xx with what was wrong, or 500 with nothing of the node's internals (they go to the log). */
export function httpErrorOf (err: Error & { statusCode?: number, code?: string, validation?: unknown }): { status: number, body: HttpErrorBody } {
  if (err.validation != null) return { status: 400, body: errorBody('ERR_BAD_REQUEST', err.message) }
  const known = err.code != null ? FRAMEWORK_ERRORS[err.code] : undefined
  // JSON.parse's own SyntaxError carries status 400 and no fastify code.
  const status = known?.status ?? err.statusCode ?? 500
  if (status >= 400 && status < 500) {
    const code = known?.code ?? (err.code?.startsWith('ERR_') === true ? err.code : err instanceof SyntaxError ? 'ERR_BAD_JSON' : 'ERR_BAD_REQUEST')
    return { status, body: errorBody(code, err.message) }
  }
  return { status: 500, body: errorBody('ERR_INTERNAL', 'internal error; see the node\'s log (DEBUG=poi:api:http)') }
}

/** Answers for requests Node's HTTP parser refuses before fastify sees them (bad syntax, huge headers, a request too slow). */
const CLIENT_ERRORS: Record<string, { status: number, code: string, message: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'ERR_REQUEST_TIMEOUT', message: 'the request was not received in time' },
  HPE_HEADER_OVERFLOW: { status: 431, code: 'ERR_HEADERS_TOO_LARGE', message: 'the request headers are too large' },
  HPE_URI_TOO_LONG: { status: 414, code: 'ERR_URI_TOO_LONG', message: 'the request URI is too long' }
}

/**
 * A malformed or too slow request, refused by Node's parser: answered with this API's JSON
 * error (fastify's default answers with its own shape) and the socket closed.
 */
export function onClientError (err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const known = err.code != null ? CLIENT_ERRORS[err.code] : undefined
  const status = known?.status ?? 400
  const body = JSON.stringify(errorBody(known?.code ?? 'ERR_BAD_REQUEST', known?.message ?? `malformed HTTP request (${err.code ?? 'parse error'})`))
  log('client error %s: %s', err.code, err.message)
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

/** An `Expect` other than 100-continue: Node would answer 417 with no body. */
export function onUnknownExpectation (req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(417, { 'content-type': 'application/json; charset=utf-8', connection: 'close' })
  res.end(JSON.stringify(errorBody('ERR_EXPECTATION_FAILED', `this API meets no expectation but 100-continue, not ${JSON.stringify(String(req.headers.expect).slice(0, 50))}`)))
}

/** CONNECT (a proxy's method) never reaches fastify: Node hands it to this, else it would drop the socket without an answer. */
export function onConnect (req: IncomingMessage, socket: Duplex): void {
  const body = JSON.stringify(errorBody('ERR_METHOD_NOT_ALLOWED', `${req.method ?? 'CONNECT'} is not allowed: this is not a proxy`))
  socket.end(`HTTP/1.1 405 Method Not Allowed\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`)
}

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
    const timeouts = this.init.timeouts ?? {}
    const requestTimeout = timeouts.requestMs ?? HTTP_REQUEST_TIMEOUT_MS
    const sendError = async (err: Error & { statusCode?: number, code?: string, validation?: unknown }, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const { status, body } = httpErrorOf(err)
      if (status >= 500) log.error('%s %s failed: %s', req.method, echoedPath(req.url), err.stack)
      return await reply.code(status).send(body)
    }
    const app = Fastify({
      bodyLimit: HTTP_BODY_LIMIT_BYTES,
      requestTimeout,
      connectionTimeout: timeouts.connectionMs ?? HTTP_CONNECTION_TIMEOUT_MS,
      keepAliveTimeout: timeouts.keepAliveMs ?? HTTP_KEEP_ALIVE_TIMEOUT_MS,
      routerOptions: { maxParamLength: HTTP_MAX_PARAM_CHARS },
      // Headers too must come within the request timeout (Node's own default is 60 s). Routes do
      // not depend on Host, and Node's refusal of a request without one has no JSON body.
      http: { headersTimeout: requestTimeout, connectionsCheckingInterval: timeouts.checkIntervalMs ?? HTTP_TIMEOUT_CHECK_INTERVAL_MS, requireHostHeader: false },
      clientErrorHandler: onClientError,
      frameworkErrors: sendError,
      return503OnClosing: true,
      logger: false
    })
    app.setNotFoundHandler(async (req, reply) => await reply.code(404).send(errorBody('ERR_NOT_FOUND', `no route ${req.method} ${echoedPath(req.url)}; see GET / (the network page), /health, /metrics, /v1/network, /v1/tasks, /v1/tasks/<id>, /v1/models, /v1/events`)))
    app.setErrorHandler(sendError)
    app.server.on('connect', onConnect)
    app.server.on('checkExpectation', onUnknownExpectation)
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
    await closeNow(app)
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

/**
 * Closes a server at once: open sockets (keep-alive ones, requests waiting on `?wait=`) are cut
 * first, since fastify's close() would otherwise wait for each to time out.
 */
export async function closeNow (app: FastifyInstance): Promise<void> {
  app.server.closeAllConnections()
  await app.close()
}
