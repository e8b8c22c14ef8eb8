/**
 * The `poi` command's end of the control channel (control-protocol.ts): find out whether a node
 * runs on a data directory (its socket answers) and send it one request.
 */
import { createConnection, type Socket } from 'node:net'
import {
  CONTROL_PROTOCOL_VERSION, ControlError, MAX_CONTROL_REPLY_BYTES, controlSocketPath, parseControlReply,
  type ControlModelsResult, type ControlPublishResult, type ControlRequest
} from './control-protocol.js'
import type { ModelManifest } from '../inference/index.js'

/** Connecting to a local socket is immediate; this only bounds a wedged node. */
const CONNECT_TIMEOUT_MS = 5_000

/**
 * A publish stores the model (a few seconds for hundreds of MiB) and announces it on the DHT
 * (at most PROVIDE_TIMEOUT_MS per block, a few in parallel): the node sends progress meanwhile,
 * so this bounds only the silence between two lines.
 */
export const CONTROL_IDLE_TIMEOUT_MS = 120_000

/** A connection to a running node's control socket. */
export class ControlClient {
  private constructor (readonly path: string) {}

  /**
   * The node running on `dataDir`, or undefined when none answers there (no socket file, or a
   * stale one left by a node that was killed: connect is refused).
   */
  static async find (dataDir: string): Promise<ControlClient | undefined> {
    const path = controlSocketPath(dataDir)
    const socket = await connect(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED' || err.code === 'ENOTSOCK') return undefined
      throw new ControlError('ERR_CONTROL_CONNECT', `cannot reach the node's control socket ${path}: ${err.code ?? err.message}`, { cause: err })
    })
    if (socket === undefined) return undefined
    socket.destroy()
    return new ControlClient(path)
  }

  /** Asks the node to store the model at `file` (absolute) under `manifest` and announce it. */
  async publish (file: string, manifest: ModelManifest, progress: (message: string) => void = () => {}): Promise<ControlPublishResult> {
    return await this.request({ v: CONTROL_PROTOCOL_VERSION, op: 'publish', file, manifest }, progress) as ControlPublishResult
  }

  /** The models in the node's block store. */
  async models (): Promise<ControlModelsResult> {
    return await this.request({ v: CONTROL_PROTOCOL_VERSION, op: 'models' }) as ControlModelsResult
  }

  private async request (request: ControlRequest, progress: (message: string) => void = () => {}): Promise<unknown> {
    const socket = await connect(this.path).catch((err: NodeJS.ErrnoException) => {
      throw new ControlError('ERR_CONTROL_CONNECT', `the node on ${this.path} stopped answering: ${err.code ?? err.message}`, { cause: err })
    })
    return await new Promise<unknown>((resolve, reject) => {
      let buffered = ''
      let settled = false
      const finish = (err: Error | undefined, value?: unknown): void => {
        if (settled) return
        settled = true
        socket.destroy()
        if (err != null) reject(err)
        else resolve(value)
      }
      socket.setTimeout(CONTROL_IDLE_TIMEOUT_MS, () => finish(new ControlError('ERR_CONTROL_TIMEOUT', `the node on ${this.path} sent nothing for ${CONTROL_IDLE_TIMEOUT_MS / 1000} s; see its log`)))
      socket.on('error', (err) => finish(new ControlError('ERR_CONTROL_CONNECT', `the connection to the node on ${this.path} failed: ${err.message}`, { cause: err })))
      socket.on('close', () => finish(new ControlError('ERR_CONTROL_CLOSED', `the node on ${this.path} closed the connection without an answer (did it stop?); see its log`)))
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8')
        if (buffered.length > MAX_CONTROL_REPLY_BYTES) { finish(new ControlError('ERR_CONTROL_REPLY', `the node on ${this.path} sent a reply line over ${MAX_CONTROL_REPLY_BYTES} bytes`)); return }
        let end: number
        while ((end = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, end)
          buffered = buffered.slice(end + 1)
          let reply
          try {
            reply = parseControlReply(line)
          } catch (err) {
            finish(err as Error)
            return
          }
          if (reply.type === 'progress') progress(reply.message)
          else if (reply.type === 'result') { finish(undefined, reply.result); return } else { finish(new ControlError(reply.code, reply.message)); return }
        }
      })
      socket.write(`${JSON.stringify(request)}\n`)
    })
  }
}

async function connect (path: string): Promise<Socket> {
  return await new Promise<Socket>((resolve, reject) => {
    const socket = createConnection(path)
    const timer = setTimeout(() => { socket.destroy(); reject(Object.assign(new Error(`no answer within ${CONNECT_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })) }, CONNECT_TIMEOUT_MS)
    socket.once('connect', () => { clearTimeout(timer); socket.off('error', reject); resolve(socket) })
    socket.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
}
