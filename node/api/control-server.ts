/**
 * The node's end of the control channel (control-protocol.ts): a Unix domain socket in the
 * data directory, one JSON-lines request per connection, progress lines streamed back, one
 * result or error line last. A socket file left by a node that was killed (nothing accepts on
 * it: connect is refused) is replaced; a live one means another node runs on this data
 * directory and is an error. The socket file is removed on stop.
 */
import { chmod, unlink } from 'node:fs/promises'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import type { Startable } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { PoiError } from '../../protocols/wire/index.js'
import {
  CONTROL_PROTOCOL_VERSION, CONTROL_REQUEST_TIMEOUT_MS, ControlError, MAX_CONTROL_REQUEST_BYTES, MAX_SOCKET_PATH_BYTES,
  parseControlRequest, type ControlReply, type ControlRequest, type ControlResults
} from './control-protocol.js'

const log = logger('poi:api:control')

/** The data directory (0700) already keeps others out; the socket is narrowed too, should it ever be moved out of it. */
const CONTROL_SOCKET_MODE = 0o600

/** What the node does for each operation; `progress` sends a line to the client at once. */
export interface ControlHandlers {
  publish: (request: Extract<ControlRequest, { op: 'publish' }>, progress: (message: string) => void) => Promise<ControlResults['publish']>
  models: () => Promise<ControlResults['models']>
}

export interface ControlServerInit {
  /** The socket's path (controlSocketPath(dataDir)). */
  path: string
}

export class ControlServer implements Startable {
  private server: Server | undefined
  private readonly connections = new Set<Socket>()

  constructor (private readonly handlers: ControlHandlers, private readonly init: ControlServerInit) {}

  /** The socket's path. */
  get path (): string { return this.init.path }

  /** Whether the node listens (false when the path is too long for a Unix socket). */
  get listening (): boolean { return this.server != null }

  async start (): Promise<void> {
    const { path } = this.init
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
      // The node runs without it; `poi model publish` then says the store is locked by a node.
      log.error('no control socket: %s is longer than %d bytes, the limit of a Unix socket path; use a shorter --data-dir', path, MAX_SOCKET_PATH_BYTES)
      return
    }
    const server = createServer((socket) => { this.serve(socket) })
    try {
      await listen(server, path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw controlListenError(path, err)
      if (await answers(path)) {
        throw new ControlError('ERR_CONTROL_IN_USE', `another node already answers on ${path}: it runs on this data directory; stop it or use another --data-dir`)
      }
      // Left by a node that was killed: nothing accepts on it any more.
      log('replacing the stale control socket %s', path)
      await unlink(path)
      try {
        await listen(server, path)
      } catch (again) {
        throw controlListenError(path, again)
      }
    }
    this.server = server
    await chmod(path, CONTROL_SOCKET_MODE)
    log('listening on %s', path)
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server == null) return
    this.server = undefined
    for (const socket of this.connections) socket.destroy()
    // close() unlinks the socket file of a Unix socket server it bound.
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
    await unlink(this.init.path).catch(() => {})
  }

  private serve (socket: Socket): void {
    this.connections.add(socket)
    socket.on('close', () => this.connections.delete(socket))
    socket.on('error', (err) => { log('control connection: %s', err.message) })
    socket.setTimeout(CONTROL_REQUEST_TIMEOUT_MS, () => {
      reply(socket, { v: CONTROL_PROTOCOL_VERSION, type: 'error', code: 'ERR_CONTROL_TIMEOUT', message: `no request line within ${CONTROL_REQUEST_TIMEOUT_MS} ms` })
      socket.end()
    })
    let buffered = ''
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8')
      const end = buffered.indexOf('\n')
      if (end < 0 && Buffer.byteLength(buffered) <= MAX_CONTROL_REQUEST_BYTES) return
      socket.off('data', onData)
      socket.setTimeout(0)
      if (end < 0 || Buffer.byteLength(buffered.slice(0, end)) > MAX_CONTROL_REQUEST_BYTES) {
        reply(socket, { v: CONTROL_PROTOCOL_VERSION, type: 'error', code: 'ERR_CONTROL_REQUEST', message: `control request larger than ${MAX_CONTROL_REQUEST_BYTES} bytes` })
        socket.end()
        return
      }
      void this.answer(socket, buffered.slice(0, end))
    }
    socket.on('data', onData)
  }

  private async answer (socket: Socket, line: string): Promise<void> {
    try {
      const request = parseControlRequest(line)
      log('request %s', request.op)
      const result = request.op === 'publish'
        ? await this.handlers.publish(request, (message) => reply(socket, { v: CONTROL_PROTOCOL_VERSION, type: 'progress', message }))
        : await this.handlers.models()
      reply(socket, { v: CONTROL_PROTOCOL_VERSION, type: 'result', result })
    } catch (err) {
      const code = err instanceof PoiError ? err.code : 'ERR_CONTROL_INTERNAL'
      if (!(err instanceof PoiError)) log.error('control request failed: %s', (err as Error).stack)
      reply(socket, { v: CONTROL_PROTOCOL_VERSION, type: 'error', code, message: (err as Error).message })
    }
    socket.end()
  }
}

export function createControlServer (handlers: ControlHandlers, init: ControlServerInit): ControlServer {
  return new ControlServer(handlers, init)
}

function reply (socket: Socket, message: ControlReply): void {
  if (!socket.writable) return
  socket.write(`${JSON.stringify(message)}\n`)
}

async function listen (server: Server, path: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/** Whether something accepts connections on the socket at `path` (a live node), or not (a stale file). */
async function answers (path: string): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const probe = createConnection(path)
    probe.once('connect', () => { probe.destroy(); resolve(true) })
    probe.once('error', () => { resolve(false) })
  })
}

function controlListenError (path: string, err: unknown): ControlError {
  return new ControlError('ERR_CONTROL_LISTEN', `cannot listen on the control socket ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
}
