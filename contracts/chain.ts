import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { PoiError } from '../protocols/wire/index.js'

const require = createRequire(import.meta.url)

/** anvil's well-known development mnemonic accounts (public knowledge; devnets only). */
export const ANVIL_PRIVATE_KEYS = [
  '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
  '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
  '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba',
  '0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e',
  '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356',
  '0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97',
  '0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6'
] as const
export const ANVIL_CHAIN_ID = 31337
/** Every EIP-2537 precompile is live from Prague on. */
export const ANVIL_HARDFORK = 'prague'
const READY_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 5_000
/** Enough for 128 operators each registering with ETH stake, and then some. */
const DEFAULT_BALANCE_ETH = 100_000

export class ChainError extends PoiError {
  constructor (message: string) {
    super('ERR_CHAIN', message)
  }
}

/**
 * The anvil binary from the platform package of @foundry-rs/anvil. We depend
 * on that package directly (as an optional dependency): the wrapper lists
 * builds for every platform, and npm ci then wants them all in the lock file,
 * though the registry has only some of them.
 */
export function anvilBinary (): string {
  const platformPackage = `@foundry-rs/anvil-${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`
  try {
    return join(dirname(require.resolve(`${platformPackage}/package.json`)), 'bin', 'anvil')
  } catch {
    throw new ChainError(`no anvil binary for ${process.platform}/${process.arch}: package ${platformPackage} is not installed. poi lists the linux x64 build as an optional dependency; on another platform install the matching @foundry-rs/anvil-* package, or point nodes at any chain with --chain`)
  }
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr != null ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

export interface AnvilOptions {
  port?: number
  /** Seconds per block; undefined mines a block per transaction (fastest for tests). */
  blockTime?: number
  accounts?: number
  balanceEth?: number
  /** Called with anvil's process as soon as it is spawned, before it answers (e.g. to stop it with its owner). */
  onSpawn?: (proc: ChildProcess) => void
  /** A state file (anvil's --dump-state) to start from: same accounts, contracts, storage and block number. */
  loadState?: string
  /**
   * Where anvil writes its state when it stops on SIGTERM or SIGINT (`stop` sends SIGTERM), and
   * every `stateIntervalS` seconds while it runs, so a SIGKILL loses only the last interval.
   */
  dumpState?: string
  stateIntervalS?: number
}

export interface Anvil {
  rpcUrl: string
  chainId: number
  process: ChildProcess
  stop: () => Promise<void>
}

async function rpcAnswers (url: string): Promise<boolean> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }),
      signal: AbortSignal.timeout(1_000)
    })
    return res.ok
  } catch {
    return false
  }
}

/**
 * Starts a local anvil chain on 127.0.0.1 with the Prague hard fork and
 * waits until it answers JSON-RPC.
 */
export async function startAnvil (opts: AnvilOptions = {}): Promise<Anvil> {
  const port = opts.port ?? await freePort()
  const args = ['--host', '127.0.0.1', '--port', String(port), '--hardfork', ANVIL_HARDFORK, '--chain-id', String(ANVIL_CHAIN_ID),
    '--accounts', String(opts.accounts ?? ANVIL_PRIVATE_KEYS.length), '--balance', String(opts.balanceEth ?? DEFAULT_BALANCE_ETH), '--silent']
  if (opts.blockTime != null) args.push('--block-time', String(opts.blockTime))
  if (opts.loadState != null) args.push('--load-state', opts.loadState)
  if (opts.dumpState != null) args.push('--dump-state', opts.dumpState)
  if (opts.dumpState != null && opts.stateIntervalS != null) args.push('--state-interval', String(opts.stateIntervalS))
  const proc = spawn(anvilBinary(), args, { stdio: ['ignore', 'ignore', 'pipe'] })
  opts.onSpawn?.(proc)
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4_000) })
  const exited = new Promise<void>(resolve => proc.once('exit', () => resolve()))
  const rpcUrl = `http://127.0.0.1:${port}`
  const stop = async (): Promise<void> => {
    if (proc.exitCode != null || proc.signalCode != null) return
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }
  const deadline = Date.now() + READY_TIMEOUT_MS
  while (!await rpcAnswers(rpcUrl)) {
    if (proc.exitCode != null || proc.signalCode != null) throw new ChainError(`anvil exited before answering on ${rpcUrl}: ${stderr.trim() || `code ${proc.exitCode}`}`)
    if (Date.now() > deadline) {
      await stop()
      throw new ChainError(`anvil did not answer on ${rpcUrl} within ${READY_TIMEOUT_MS} ms`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return { rpcUrl, chainId: ANVIL_CHAIN_ID, process: proc, stop }
}
