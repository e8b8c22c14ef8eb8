/**
 * The local control channel (DESIGN §12): a full node listens on a Unix domain socket in its
 * data directory, so a `poi` command run by the same user can ask the running node to do what
 * would otherwise need the node's LevelDB (locked while the node runs).
 *
 * One request per connection, JSON lines:
 *   client → node   {"v":1,"op":"publish","file":"/abs/model.onnx","manifest":{…}}   or {"v":1,"op":"models"}
 *   node → client   {"v":1,"type":"progress","message":"…"}   (zero or more)
 *                   {"v":1,"type":"result","result":{…}}      or {"v":1,"type":"error","code":"ERR_…","message":"…"}
 * then the node closes the connection.
 *
 * Trust boundary: the socket lives in the data directory, which is 0700, so only the node's
 * own user reaches it; requests are still parsed and bounded (size, time) like any input, and
 * a manifest is checked (parseManifest, then the file's bytes against it) before anything is stored.
 */
import { join } from 'node:path'
import { PoiError } from '../../protocols/wire/index.js'
import { parseManifest, type ModelManifest } from '../inference/index.js'

/** The socket's file name inside a node's data directory. */
export const CONTROL_SOCKET_NAME = 'control.sock'

/** Bumped when a request or reply changes shape; a node refuses other versions by name. */
export const CONTROL_PROTOCOL_VERSION = 1

/**
 * Largest request line. A manifest lists one CID (~60 bytes) per 1 MiB chunk: a 4 GiB model's
 * manifest is ~250 KiB, so 1 MiB leaves room without letting a client make the node buffer more.
 */
export const MAX_CONTROL_REQUEST_BYTES = 1024 * 1024

/** Largest reply line a client accepts (a `models` listing of many manifests). */
export const MAX_CONTROL_REPLY_BYTES = 64 * 1024 * 1024

/** A client has this long to send its request line once connected. */
export const CONTROL_REQUEST_TIMEOUT_MS = 10_000

/**
 * Linux's sun_path is 108 bytes with the terminating NUL: a longer socket path cannot be bound
 * (the node then runs without the channel and says so).
 */
export const MAX_SOCKET_PATH_BYTES = 107

/** Where a node on `dataDir` listens. */
export function controlSocketPath (dataDir: string): string {
  return join(dataDir, CONTROL_SOCKET_NAME)
}

/** A control request that failed: malformed, refused by the node, or cut off. `code` is the node's error code when it sent one. */
export class ControlError extends PoiError {
  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

export type ControlRequest =
  /** Store the model at `file` (an absolute path the node reads) under `manifest`, and announce it on the DHT. */
  | { v: typeof CONTROL_PROTOCOL_VERSION, op: 'publish', file: string, manifest: ModelManifest }
  /** The models in the node's block store. */
  | { v: typeof CONTROL_PROTOCOL_VERSION, op: 'models' }

export interface ControlPublishResult {
  modelId: string
  chunks: number
  /** Blocks announced on the DHT now (manifest and chunks). */
  provided: number
  /** Blocks not announced yet (no DHT peer, timeout); the node retries them in the background. */
  unannounced: number
}

export interface ControlModelsResult {
  models: Array<{ modelId: string, manifest: ModelManifest }>
}

export interface ControlResults {
  publish: ControlPublishResult
  models: ControlModelsResult
}

export type ControlReply =
  | { v: typeof CONTROL_PROTOCOL_VERSION, type: 'progress', message: string }
  | { v: typeof CONTROL_PROTOCOL_VERSION, type: 'result', result: unknown }
  | { v: typeof CONTROL_PROTOCOL_VERSION, type: 'error', code: string, message: string }

function isRecord (v: unknown): v is Record<string, unknown> {
  return v != null && typeof v === 'object' && !Array.isArray(v)
}

/** Parses a request line from a client; throws ControlError (ERR_CONTROL_REQUEST) saying what is wrong. */
export function parseControlRequest (line: string): ControlRequest {
  const bad = (why: string): ControlError => new ControlError('ERR_CONTROL_REQUEST', `bad control request: ${why}`)
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    throw bad('not JSON')
  }
  if (!isRecord(json)) throw bad('not a JSON object')
  if (json.v !== CONTROL_PROTOCOL_VERSION) throw new ControlError('ERR_CONTROL_VERSION', `control protocol version ${JSON.stringify(json.v)} is not ${CONTROL_PROTOCOL_VERSION}: the \`poi\` command and the running node are different versions; use the node's own \`poi\``)
  if (json.op === 'models') return { v: CONTROL_PROTOCOL_VERSION, op: 'models' }
  if (json.op === 'publish') {
    if (typeof json.file !== 'string' || !json.file.startsWith('/')) throw bad('publish needs `file`, an absolute path')
    let manifest: ModelManifest
    try {
      manifest = parseManifest(json.manifest)
    } catch (err) {
      throw bad(`publish needs a valid \`manifest\`: ${(err as Error).message}`)
    }
    return { v: CONTROL_PROTOCOL_VERSION, op: 'publish', file: json.file, manifest }
  }
  throw bad(`unknown op ${JSON.stringify(json.op)} (known: publish, models)`)
}

/** Parses a reply line from a node; throws ControlError (ERR_CONTROL_REPLY) on anything else. */
export function parseControlReply (line: string): ControlReply {
  const bad = (why: string): ControlError => new ControlError('ERR_CONTROL_REPLY', `the node's control channel sent a bad reply (${why}); is it the same poi version?`)
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch {
    throw bad('not JSON')
  }
  if (!isRecord(json) || json.v !== CONTROL_PROTOCOL_VERSION) throw bad('not a version 1 reply object')
  if (json.type === 'progress' && typeof json.message === 'string') return { v: CONTROL_PROTOCOL_VERSION, type: 'progress', message: json.message }
  if (json.type === 'result' && 'result' in json) return { v: CONTROL_PROTOCOL_VERSION, type: 'result', result: json.result }
  if (json.type === 'error' && typeof json.code === 'string' && typeof json.message === 'string') return { v: CONTROL_PROTOCOL_VERSION, type: 'error', code: json.code, message: json.message }
  throw bad(`unknown reply type ${JSON.stringify(json.type)}`)
}
