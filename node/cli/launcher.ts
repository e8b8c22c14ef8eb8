import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { generateKeystore, loadKeystore, type Keystore } from '../keys.js'

/** The compiled CLI, next to this file in dist/node/cli/. */
export const CLI_PATH = join(dirname(fileURLToPath(import.meta.url)), 'main.js')

export interface NodeEvent {
  event: string
  [key: string]: unknown
}

export interface ReadyEvent extends NodeEvent {
  event: 'ready'
  peerId: string
  addrs: string[]
  operatorIndex: number | null
}

export class ChildExitedError extends Error {
  constructor (name: string, code: number | null, signal: string | null, logFile: string) {
    super(`${name} exited (${signal ?? `code ${code}`}) before it was ready; see ${logFile}`)
    this.name = 'ChildExitedError'
  }
}

/**
 * A poi node running as its own process, started with `--json` so it reports
 * events (ready, attested, certificate, mesh, …) as lines on stdout. Its
 * stderr goes to a log file.
 */
export class ChildNode {
  readonly name: string
  readonly proc: ChildProcess
  readonly logFile: string
  readonly events: NodeEvent[] = []
  private readonly waiters = new Set<{ pred: (e: NodeEvent) => boolean, resolve: (e: NodeEvent) => void }>()
  private readonly log: WriteStream
  readonly exited: Promise<{ code: number | null, signal: string | null }>
  private exitedFlag = false

  constructor (name: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = {}) {
    this.name = name
    this.logFile = logFile
    this.log = createWriteStream(logFile, { flags: 'a' })
    this.proc = spawn(process.execPath, [CLI_PATH, ...args, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env }
    })
    this.proc.stderr?.pipe(this.log, { end: false })
    const lines = createInterface({ input: this.proc.stdout! })
    lines.on('line', (line) => {
      let e: NodeEvent
      try {
        e = JSON.parse(line) as NodeEvent
      } catch {
        this.log.write(`[stdout] ${line}\n`)
        return
      }
      this.events.push(e)
      for (const w of this.waiters) {
        if (w.pred(e)) { this.waiters.delete(w); w.resolve(e) }
      }
    })
    this.exited = new Promise(resolve => {
      this.proc.once('exit', (code, signal) => {
        this.exitedFlag = true
        this.log.end()
        resolve({ code, signal })
      })
    })
  }

  get running (): boolean { return !this.exitedFlag }

  /** Resolves with the first event (already seen or future) that matches, or rejects on exit or timeout. */
  async waitFor (pred: (e: NodeEvent) => boolean, timeoutMs: number, what = 'event'): Promise<NodeEvent> {
    const seen = this.events.find(pred)
    if (seen != null) return seen
    return await new Promise<NodeEvent>((resolve, reject) => {
      const w = { pred, resolve: (e: NodeEvent) => { cleanup(); resolve(e) } }
      const timer = setTimeout(() => { cleanup(); reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; see ${this.logFile}`)) }, timeoutMs)
      const onExit = (code: number | null, signal: string | null): void => { cleanup(); reject(new ChildExitedError(this.name, code, signal, this.logFile)) }
      const cleanup = (): void => { clearTimeout(timer); this.waiters.delete(w); this.proc.off('exit', onExit) }
      this.waiters.add(w)
      this.proc.once('exit', onExit)
      if (this.exitedFlag) onExit(this.proc.exitCode, this.proc.signalCode)
    })
  }

  async ready (timeoutMs = 30_000): Promise<ReadyEvent> {
    return await this.waitFor(e => e.event === 'ready', timeoutMs, 'ready event') as ReadyEvent
  }

  /** The node's current gossip mesh sizes (from its last `mesh` event). */
  mesh (): { tasks: number, attestations: number, certificates: number } {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i]
      if (e.event === 'mesh') return e as unknown as { tasks: number, attestations: number, certificates: number }
    }
    return { tasks: 0, attestations: 0, certificates: 0 }
  }

  async stop (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    if (this.exitedFlag) return
    this.proc.kill(signal)
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs)
    await this.exited
    clearTimeout(timer)
  }
}

export interface NodeDirs {
  keystore: string
  dataDir: string
}

/** Makes `<root>/<name>/{keys,data}` with fresh keys. */
export async function prepareNodeDir (root: string, name: string): Promise<NodeDirs & { keys: Keystore }> {
  const dir = resolve(root, name)
  await mkdir(dir, { recursive: true })
  const keystore = join(dir, 'keys')
  await generateKeystore(keystore)
  return { keystore, dataDir: join(dir, 'data'), keys: await loadKeystore(keystore) }
}
