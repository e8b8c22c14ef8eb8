import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
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
/** The line anvil prints once it has bound its port (the last line of its banner). */
const LISTENING = /^Listening on 127\.0\.0\.1:(\d+)\r?\n/m
/** How much of anvil's stdout is kept while looking for LISTENING: more than a line, far less than the banner. */
const LISTENING_SCAN_CHARS = 512
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
 *
 * Without opts.port anvil binds port 0 and says which port the OS gave it (LISTENING). Picking a
 * free port first and handing it over would leave a moment in which another process (a test file
 * running in parallel, a node listening on port 0) can take it, and the RPC URL could then reach
 * someone else's anvil.
 */
export async function startAnvil (opts: AnvilOptions = {}): Promise<Anvil> {
  // Not --silent: anvil prints LISTENING only in its banner; the lines after it are drained unread.
  const args = ['--host', '127.0.0.1', '--port', String(opts.port ?? 0), '--hardfork', ANVIL_HARDFORK, '--chain-id', String(ANVIL_CHAIN_ID),
    '--accounts', String(opts.accounts ?? ANVIL_PRIVATE_KEYS.length), '--balance', String(opts.balanceEth ?? DEFAULT_BALANCE_ETH)]
  if (opts.blockTime != null) args.push('--block-time', String(opts.blockTime))
  if (opts.loadState != null) args.push('--load-state', opts.loadState)
  if (opts.dumpState != null) args.push('--dump-state', opts.dumpState)
  if (opts.dumpState != null && opts.stateIntervalS != null) args.push('--state-interval', String(opts.stateIntervalS))
  const proc = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] })
  opts.onSpawn?.(proc)
  let stderr = ''
  proc.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4_000) })
  const exited = new Promise<void>(resolve => proc.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (proc.exitCode != null || proc.signalCode != null) return
    proc.kill('SIGTERM')
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }
  const deadline = Date.now() + READY_TIMEOUT_MS
  const failed = (what: string): ChainError => new ChainError(`anvil ${what}: ${stderr.trim() || `code ${proc.exitCode}`}`)
  const port = await listeningPort(proc, READY_TIMEOUT_MS)
  if (port === 'timeout') {
    await stop()
    throw new ChainError(`anvil did not say which port it listens on within ${READY_TIMEOUT_MS} ms`)
  }
  if (port === 'exited') {
    if (proc.stderr != null && !proc.stderr.readableEnded) await new Promise(resolve => proc.stderr?.once('end', resolve))
    throw failed('exited before listening')
  }
  const rpcUrl = `http://127.0.0.1:${port}`
  while (!await rpcAnswers(rpcUrl)) {
    if (proc.exitCode != null || proc.signalCode != null) throw failed(`exited before answering on ${rpcUrl}`)
    if (Date.now() > deadline) {
      await stop()
      throw new ChainError(`anvil did not answer on ${rpcUrl} within ${READY_TIMEOUT_MS} ms`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return { rpcUrl, chainId: ANVIL_CHAIN_ID, process: proc, stop }
}

/**
 * The port in anvil's LISTENING line, read from its stdout: 'exited' if its stdout ends first,
 * 'timeout' after timeoutMs. Whatever anvil prints afterwards is read and dropped.
 */
async function listeningPort (proc: ChildProcess, timeoutMs: number): Promise<number | 'exited' | 'timeout'> {
  const stdout = proc.stdout
  if (stdout == null) return 'exited'
  let seen = ''
  return await new Promise(resolve => {
    const done = (outcome: number | 'exited' | 'timeout'): void => {
      clearTimeout(timer)
      stdout.off('data', onData)
      stdout.off('end', onEnd)
      stdout.resume() // keep draining: anvil logs every request, and a full pipe would stall it
      resolve(outcome)
    }
    const onData = (d: Buffer): void => {
      seen = (seen + d.toString()).slice(-LISTENING_SCAN_CHARS)
      const m = LISTENING.exec(seen)
      if (m !== null) done(Number(m[1]))
    }
    const onEnd = (): void => { done('exited') }
    const timer = setTimeout(() => { done('timeout') }, timeoutMs)
    stdout.on('data', onData)
    stdout.once('end', onEnd)
  })
}
