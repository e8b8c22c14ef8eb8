/**
 * `GET /v1/events`: the node's event lines (node/api/events.ts, what `--json` prints) as
 * server-sent events, one per line:
 *
 *   id: <counter>
 *   event: <the line's event name>
 *   data: <the line, as --json prints it>
 *
 * with a comment line every SSE_HEARTBEAT_MS so proxies and the socket's idle timeout
 * (HTTP_CONNECTION_TIMEOUT_MS) do not close a quiet stream. There is no replay: `id` orders the
 * events of one node's run, a client that reconnects reloads the JSON endpoints.
 *
 * Trust boundary: a client is anyone who can reach the port. It costs the node one socket and
 * whatever that socket has not taken yet: a client that stops reading is dropped once more than
 * maxBufferedBytes wait for it, and at most maxClients streams are open (503 beyond).
 *
 * The stream also remembers when this node saw each recent task and when it was certified, so
 * `GET /v1/tasks/:id` can say how long the certificate took (TaskTimings).
 */
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { ServerResponse } from 'node:http'
import { serializeEvent, type NodeEventLine } from './events.js'
import { getRoute, type HttpErrorBody } from './http-server.js'

const log = logger('poi:api:events')

/** A comment line this often keeps a quiet stream open: under the socket idle timeout (HTTP_CONNECTION_TIMEOUT_MS, 30 s) and the 30–60 s proxies use. */
export const SSE_HEARTBEAT_MS = 15_000
/**
 * A client with more than this many bytes waiting in its socket's buffer (after what the kernel
 * took) has stopped reading: its stream is ended. A mebibyte is thousands of event lines, far
 * more than a live reader falls behind by.
 */
export const SSE_MAX_BUFFERED_BYTES = 1024 * 1024
/** Open event streams at most: each holds a socket and its buffer; a page needs one. */
export const SSE_MAX_CLIENTS = 64
/** Tasks whose first sight and certificate time are remembered for `GET /v1/tasks/:id` (the oldest is forgotten first). */
export const TASK_TIMINGS_KEPT = 1_000
/** How long an EventSource waits before reconnecting after the stream ends (the `retry:` field). */
export const SSE_RETRY_MS = 2_000

export interface EventStreamInit {
  heartbeatMs?: number
  maxBufferedBytes?: number
  maxClients?: number
}

/** When this node first saw a task and when it held its certificate (unix ms; null: not seen here since start). */
export interface TaskTiming { seenAt: number | null, certifiedAt: number | null }

/** Subscribes to the node's event lines; returns the unsubscribe (subscribeNodeEvents bound to a node). */
export type EventLineSubscribe = (onLine: (line: NodeEventLine) => void) => () => void

interface Client { res: ServerResponse, remote: string }

export class EventStream implements Startable {
  private readonly clients = new Set<Client>()
  private readonly timings = new Map<string, TaskTiming>()
  private unsubscribe: (() => void) | undefined
  private heartbeat: NodeJS.Timeout | undefined
  private nextId = 1
  private dropped = 0
  private readonly heartbeatMs: number
  private readonly maxBufferedBytes: number
  private readonly maxClients: number

  constructor (private readonly subscribe: EventLineSubscribe, init: EventStreamInit = {}) {
    this.heartbeatMs = init.heartbeatMs ?? SSE_HEARTBEAT_MS
    this.maxBufferedBytes = init.maxBufferedBytes ?? SSE_MAX_BUFFERED_BYTES
    this.maxClients = init.maxClients ?? SSE_MAX_CLIENTS
  }

  /** Streams open now. */
  get openStreams (): number { return this.clients.size }

  /** Streams ended because their client stopped reading, since start. */
  get droppedStreams (): number { return this.dropped }

  async start (): Promise<void> {
    this.unsubscribe = this.subscribe((line) => { this.publish(line) })
    this.heartbeat = setInterval(() => { this.broadcast(': heartbeat\n\n') }, this.heartbeatMs)
    this.heartbeat.unref()
  }

  async stop (): Promise<void> {
    this.unsubscribe?.()
    this.unsubscribe = undefined
    clearInterval(this.heartbeat)
    this.endAll()
  }

  /** When this node saw `taskId` (0x-hex, lower case) and its certificate. */
  timing (taskId: string): TaskTiming {
    return this.timings.get(taskId) ?? { seenAt: null, certifiedAt: null }
  }

  /** The GET /v1/events route (a fastify plugin for HttpServerInit.plugins). */
  routes (): FastifyPluginAsync {
    return async (app: FastifyInstance) => {
      // Ends the streams before fastify waits for its connections to finish.
      app.addHook('preClose', async () => { this.endAll() })
      getRoute(app, '/v1/events', {}, async (req, reply) => {
        if (this.clients.size >= this.maxClients) {
          const body: HttpErrorBody = { error: { code: 'ERR_TOO_MANY_STREAMS', message: `this node already serves ${this.maxClients} event streams; close one or try again later` } }
          return await reply.code(503).header('retry-after', Math.ceil(SSE_RETRY_MS / 1000)).send(body)
        }
        reply.hijack()
        const res = reply.raw
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache, no-transform',
          connection: 'keep-alive',
          // Tells a reverse proxy (nginx) not to buffer the stream.
          'x-accel-buffering': 'no'
        })
        if (req.method === 'HEAD') { res.end(); return }
        const client: Client = { res, remote: `${req.ip}:${req.socket.remotePort ?? '?'}` }
        this.clients.add(client)
        res.on('close', () => { this.clients.delete(client) })
        this.write(client, `retry: ${SSE_RETRY_MS}\n: poi event stream\n\n`)
        log('stream opened for %s (%d open)', client.remote, this.clients.size)
      })
    }
  }

  private publish (line: NodeEventLine): void {
    this.remember(line)
    if (this.clients.size === 0) return
    const id = this.nextId++
    this.broadcast(`id: ${id}\nevent: ${line.event}\ndata: ${serializeEvent(line)}\n\n`)
  }

  private remember (line: NodeEventLine): void {
    if (line.event !== 'task' && line.event !== 'certificate' && line.event !== 'certified') return
    const taskId = line.taskId.toLowerCase()
    const known = this.timings.get(taskId) ?? { seenAt: null, certifiedAt: null }
    const at = Math.round(line.at)
    if (line.event === 'task') known.seenAt ??= at
    else known.certifiedAt ??= at
    this.timings.delete(taskId)
    this.timings.set(taskId, known)
    if (this.timings.size > TASK_TIMINGS_KEPT) this.timings.delete(this.timings.keys().next().value as string)
  }

  private broadcast (text: string): void {
    for (const client of this.clients) this.write(client, text)
  }

  private write (client: Client, text: string): void {
    const { res } = client
    if (res.destroyed || res.writableEnded) return
    res.write(text)
    if (res.writableLength > this.maxBufferedBytes) {
      this.dropped++
      this.clients.delete(client)
      log('dropped the event stream of %s: %d bytes wait for a client that stopped reading (limit %d); %d dropped so far', client.remote, res.writableLength, this.maxBufferedBytes, this.dropped)
      // end() would wait behind the unread bytes: the socket goes now.
      res.destroy()
    }
  }

  private endAll (): void {
    for (const client of this.clients) client.res.end()
    this.clients.clear()
  }
}

export function createEventStream (subscribe: EventLineSubscribe, init?: EventStreamInit): EventStream {
  return new EventStream(subscribe, init)
}
