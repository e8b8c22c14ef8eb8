import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import type { Deployment } from '../contracts/index.js'
import { PoiError } from '../protocols/wire/index.js'
import { SHIPPED_MODEL_DIR } from './inference/index.js'

/**
 * Node configuration: a JSON file (`--config`), then command-line flags on top.
 * Everything has a default that works on one machine, except the genesis file
 * (which operator set to trust is never guessed).
 */
export interface NodeConfig {
  /** Directory with peer.key, bls.key, eth.key (`poi keys generate`). */
  keystore: string
  /** LevelDB directory. */
  dataDir: string
  listen: string[]
  bootstrap: string[]
  /** Genesis operator set (JSON), until the registry moves on-chain. */
  genesis: string
  /** Directories holding <model>/manifest.json + model.onnx. */
  modelDirs: string[]
  /** How long an aggregator keeps collecting after quorum, for fewer non-signers. */
  graceMs: number
  /** Reject tasks whose deadline is further away than this (bounds the state a task holds). */
  maxTaskTtlMs: number
  /** Aggregators: a batch of tab tasks closes once it holds this many (node/roles/batcher.ts DEFAULT_BATCH_MAX_LEAVES). */
  batchMaxLeaves?: number
  /** Aggregators: a batch closes this long after its first task was certified, however few it holds (DEFAULT_BATCH_MAX_WAIT_MS). */
  batchMaxWaitMs?: number
  /**
   * The chain holding the operator registry and settling certificates. When
   * set, the operator set comes from the chain and `genesis` is not used.
   */
  chain?: ChainConfig
  /**
   * Serve the HTTP API (node/api/http-server.ts) on this address: `host:port`, `:port` or a bare
   * port (127.0.0.1), port 0 for any free one. Off when absent.
   */
  http?: string
}

/**
 * A node's chain: the poi deployment (contracts' Deployment) and the RPC endpoint to reach it.
 * `chainId` and `deployedAtBlock` may be absent in a config file (the RPC tells the chain id;
 * event scans then start at block 0).
 */
export type ChainConfig = Omit<Deployment, 'chainId' | 'deployedAtBlock'> & Partial<Pick<Deployment, 'chainId' | 'deployedAtBlock'>> & {
  rpcUrl: string
}

/** A setting (from a config file, a deployment file or a flag) is missing or malformed; the message names it. */
export class ConfigError extends PoiError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_CONFIG', message, options)
  }
}

export const DEFAULT_HOME = join(homedir(), '.poi')
export const DEFAULT_LISTEN = '/ip4/127.0.0.1/tcp/0'
/**
 * 250 ms: on loopback the last of 16 attestations arrives within ~50 ms of
 * the quorum one; the window ends early when every operator has signed.
 */
export const DEFAULT_GRACE_MS = 250
export const DEFAULT_MAX_TASK_TTL_MS = 10 * 60_000

export function defaultConfig (): NodeConfig {
  return {
    keystore: join(DEFAULT_HOME, 'keys'),
    dataDir: join(DEFAULT_HOME, 'data'),
    listen: [DEFAULT_LISTEN],
    bootstrap: [],
    genesis: join(DEFAULT_HOME, 'genesis.json'),
    modelDirs: [SHIPPED_MODEL_DIR],
    graceMs: DEFAULT_GRACE_MS,
    maxTaskTtlMs: DEFAULT_MAX_TASK_TTL_MS
  }
}

const KEYS: Array<keyof NodeConfig> = ['keystore', 'dataDir', 'listen', 'bootstrap', 'genesis', 'modelDirs', 'graceMs', 'maxTaskTtlMs', 'chain', 'http', 'batchMaxLeaves', 'batchMaxWaitMs']
const ADDRESS = /^0x[0-9a-fA-F]{40}$/

/** Reads and validates a config file; relative paths in it are relative to the file. */
export async function readConfigFile (path: string): Promise<Partial<NodeConfig>> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: any) {
    throw new ConfigError(`cannot read config file ${path}: ${err?.code === 'ENOENT' ? 'not found' : err?.message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`)
  }
  if (json == null || typeof json !== 'object' || Array.isArray(json)) throw new ConfigError(`config file ${path} must hold a JSON object`)
  const base = dirname(resolve(path))
  const out: Partial<NodeConfig> = {}
  for (const [key, value] of Object.entries(json)) {
    if (!(KEYS as string[]).includes(key)) throw new ConfigError(`config file ${path}: unknown setting "${key}" (known: ${KEYS.join(', ')})`)
    ;(out as Record<string, unknown>)[key] = value
  }
  for (const key of ['keystore', 'dataDir', 'genesis'] as const) {
    if (typeof out[key] === 'string') out[key] = resolve(base, out[key])
  }
  if (out.chain != null && typeof out.chain === 'object' && out.chain.deployedAtBlock != null) {
    try {
      out.chain = { ...out.chain, deployedAtBlock: BigInt(out.chain.deployedAtBlock as unknown as string) }
    } catch {
      throw new ConfigError(`config file ${path}: chain.deployedAtBlock must be a block number`)
    }
  }
  if (Array.isArray(out.modelDirs)) out.modelDirs = out.modelDirs.map(d => typeof d === 'string' ? resolve(base, d) : d)
  // Validated here too, so a bad value is reported with the file it came from, not only by name.
  try {
    validateConfig({ ...defaultConfig(), ...out })
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`config file ${path}: ${err.message}`)
    throw err
  }
  return out
}

/** Merges layers (defaults ← file ← flags) and validates the result. */
export function resolveConfig (...layers: Array<Partial<NodeConfig>>): NodeConfig {
  const cfg = defaultConfig()
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) {
      if (v !== undefined) (cfg as unknown as Record<string, unknown>)[k] = v
    }
  }
  validateConfig(cfg)
  return cfg
}

export function validateConfig (cfg: NodeConfig): void {
  for (const key of ['keystore', 'dataDir', 'genesis'] as const) {
    if (typeof cfg[key] !== 'string' || cfg[key].length === 0) throw new ConfigError(`setting ${key} must be a non-empty path`)
  }
  for (const key of ['listen', 'bootstrap'] as const) {
    const list = cfg[key]
    if (!Array.isArray(list)) throw new ConfigError(`setting ${key} must be a list of multiaddrs`)
    for (const a of list) {
      const problem = multiaddrProblem(a)
      if (problem !== undefined) throw new ConfigError(`setting ${key}: ${JSON.stringify(a)} is not a multiaddr (${problem}); example: /ip4/127.0.0.1/tcp/4001`)
    }
  }
  for (const a of cfg.bootstrap) {
    if (!a.includes('/p2p/')) throw new ConfigError(`setting bootstrap: ${a} must end with /p2p/<peer id> so the connection can be authenticated`)
  }
  if (!Array.isArray(cfg.modelDirs) || cfg.modelDirs.some(d => typeof d !== 'string')) throw new ConfigError('setting modelDirs must be a list of directories')
  for (const key of ['graceMs', 'maxTaskTtlMs'] as const) {
    const v = cfg[key]
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`setting ${key} must be a non-negative number of milliseconds, got ${JSON.stringify(v)}`)
  }
  if (cfg.batchMaxWaitMs !== undefined && (typeof cfg.batchMaxWaitMs !== 'number' || !Number.isFinite(cfg.batchMaxWaitMs) || cfg.batchMaxWaitMs < 0)) {
    throw new ConfigError(`setting batchMaxWaitMs must be a non-negative number of milliseconds, got ${JSON.stringify(cfg.batchMaxWaitMs)}`)
  }
  if (cfg.batchMaxLeaves !== undefined && (typeof cfg.batchMaxLeaves !== 'number' || !Number.isInteger(cfg.batchMaxLeaves) || cfg.batchMaxLeaves < 1)) {
    throw new ConfigError(`setting batchMaxLeaves must be a positive whole number of tasks, got ${JSON.stringify(cfg.batchMaxLeaves)}`)
  }
  if (cfg.http !== undefined) parseHttpAddress(cfg.http)
  if (cfg.chain !== undefined) {
    const c = cfg.chain as unknown as Record<string, unknown>
    if (c == null || typeof c !== 'object') throw new ConfigError('setting chain must be an object {rpcUrl, registry, taskManager, slashing}')
    const problem = rpcUrlProblem(c.rpcUrl)
    if (problem !== undefined) throw new ConfigError(`setting chain.rpcUrl: ${JSON.stringify(c.rpcUrl)} is not an http(s) or ws(s) URL (${problem})`)
    for (const key of ['modelRegistry', 'identityRegistry', 'validationRegistry']) {
      if (c[key] !== undefined && (typeof c[key] !== 'string' || !ADDRESS.test(c[key]))) {
        throw new ConfigError(`setting chain.${key} must be a 0x-prefixed 20-byte contract address, got ${JSON.stringify(c[key])}`)
      }
    }
    for (const key of ['registry', 'taskManager', 'slashing']) {
      if (typeof c[key] !== 'string' || !ADDRESS.test(c[key])) throw new ConfigError(`setting chain.${key} must be a 0x-prefixed 20-byte contract address, got ${JSON.stringify(c[key])}`)
    }
  }
}

/** Where the HTTP API binds when `--http` names only a port: this machine only. */
export const DEFAULT_HTTP_HOST = '127.0.0.1'
/** Highest TCP port. */
const MAX_PORT = 65535

/**
 * The HTTP API's address: `host:port`, `[ipv6]:port`, `:port` or `port` (then 127.0.0.1); port 0
 * picks a free one. A malformed value is a ConfigError naming the setting.
 */
export function parseHttpAddress (value: unknown): { host: string, port: number } {
  const bad = (why: string): ConfigError => new ConfigError(`setting http: ${JSON.stringify(value)} ${why}; examples: 127.0.0.1:8080, :8080, 8080, [::1]:8080`)
  if (typeof value !== 'string' || value.trim() === '') throw bad('is not an address')
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:[\]\s]*):)?(\d{1,5})$/.exec(value.trim())
  if (m == null) throw bad('is not host:port')
  const port = Number(m[2])
  if (port > MAX_PORT) throw bad(`has a port above ${MAX_PORT}`)
  const rawHost = m[1] ?? ''
  const host = rawHost === '' ? DEFAULT_HTTP_HOST : rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost
  return { host, port }
}

/** Why `a` is not a multiaddr, or undefined when it is one. */
function multiaddrProblem (a: unknown): string | undefined {
  if (typeof a !== 'string') return 'not a string'
  try {
    multiaddr(a)
    return undefined
  } catch (err) {
    return (err as Error).message
  }
}

const RPC_PROTOCOLS = ['http:', 'https:', 'ws:', 'wss:']

/** Why `url` is not an RPC endpoint URL, or undefined when it is one. */
function rpcUrlProblem (url: unknown): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(String(url))
  } catch (err) {
    return (err as Error).message
  }
  return RPC_PROTOCOLS.includes(parsed.protocol) ? undefined : `unsupported protocol ${parsed.protocol}`
}
