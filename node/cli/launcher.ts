import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { PoiError } from '../../protocols/wire/index.js'
import { generateKeystore, loadKeystore, type Keystore } from '../keys.js'
import { EXIT_WITH_PARENT_ENV, own } from './children.js'
import { EventLog } from './event-log.js'
import { heapFlags } from './heap-flags.js'
import { EventLineError, parseEvent, type EventOf, type PoiEvent, type PoiEventName } from './events.js'

export { EventTimeoutError } from './event-log.js'
export type { EventOf, PoiEvent, PoiEventName } from './events.js'

/** The compiled CLI, next to this file in dist/node/cli/. */
export const CLI_PATH = join(dirname(fileURLToPath(import.meta.url)), 'main.js')

export type ReadyEvent = EventOf<'ready'>
export type MeshEvent = EventOf<'mesh'>

/** How long a node may take to print its `ready` line by default. */
const DEFAULT_READY_TIMEOUT_MS = 30_000
/** How long stop() waits after SIGTERM before it sends SIGKILL. */
const DEFAULT_STOP_TIMEOUT_MS = 10_000

export class ChildExitedError extends PoiError {
  /** `what`: the event that was awaited, e.g. `ready event` ("exited (code 1) with no ready event"). */
  constructor (name: string, code: number | null, signal: string | null, logFile: string, what?: string) {
    super('ERR_CHILD_EXITED', `${name} exited (${signal ?? `code ${code}`}) ${what !== undefined ? `with no ${what}` : 'before it was ready'}; see ${logFile}`)
  }
}

/**
 * A poi node running as its own process, started with `--json` so it reports events (ready,
 * attested, certificate, mesh, …: PoiEvent) as lines on stdout. Every line it prints, on
 * stdout (events included) and stderr, goes to its log file. It is owned (node/cli/children.ts):
 * stopped with its launcher, and it exits by itself when its launcher dies (its stdin, a pipe
 * from the launcher, closes).
 */
export class ChildNode {
  readonly name: string
  /** The `poi` arguments it was started with (without --json, which the launcher adds): what a restart of the same node passes again. */
  readonly args: string[]
  readonly proc: ChildProcess
  readonly logFile: string
  readonly exited: Promise<{ code: number | null, signal: string | null }>
  private readonly eventLog: EventLog
  private readonly log: WriteStream
  private exitedFlag = false

  /**
   * `command`: what the node runs under, e.g. `['ip', 'netns', 'exec', ns]` to put it in a
   * network namespace (the chaos suite's partition); it must exec the node in its own process,
   * so that signals reach the node.
   */
  constructor (name: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = {}, command: string[] = []) {
    this.name = name
    this.args = [...args]
    this.logFile = logFile
    this.eventLog = new EventLog(name, `see ${logFile}`)
    this.log = createWriteStream(logFile, { flags: 'a' })
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, [EXIT_WITH_PARENT_ENV]: '1' }
    const argv = [...command, process.execPath, ...heapFlags([], childEnv.NODE_OPTIONS), CLI_PATH, ...args, '--json']
    this.proc = spawn(argv[0], argv.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: childEnv
    })
    own(this.proc)
    this.proc.stderr?.pipe(this.log, { end: false })
    const lines = createInterface({ input: this.proc.stdout! })
    lines.on('line', (line) => {
      this.log.write(line + '\n')
      let event: PoiEvent
      try {
        event = parseEvent(line)
      } catch (err) {
        if (!(err instanceof EventLineError)) throw err
        return
      }
      this.eventLog.push(event)
    })
    this.exited = new Promise(resolve => {
      this.proc.once('exit', (code, signal) => {
        this.exitedFlag = true
        resolve({ code, signal })
      })
    })
    // After 'close' every line the process printed has been read: no event can come any more.
    this.proc.once('close', (code, signal) => {
      this.log.end()
      this.eventLog.close((what) => new ChildExitedError(name, code, signal, logFile, what))
    })
  }

  get running (): boolean { return !this.exitedFlag }

  /** Every event the node has printed so far, in order. */
  get events (): readonly PoiEvent[] { return this.eventLog.events }

  /**
   * The first event (already seen or to come) that matches; rejects after `timeoutMs` with a
   * message naming the node and `what`, or when the process exits first.
   */
  async waitFor (pred: (e: PoiEvent) => boolean, timeoutMs: number, what: string): Promise<PoiEvent> {
    return await this.eventLog.waitFor(pred, timeoutMs, what)
  }

  /** The first `name` event that `match` accepts, typed by its name: `waitForEvent('certificate', e => e.taskId === id, …)`. */
  async waitForEvent<K extends PoiEventName> (name: K, match: (e: EventOf<K>) => boolean, timeoutMs: number, what: string): Promise<EventOf<K>> {
    return await this.eventLog.waitForEvent(name, match, timeoutMs, what)
  }

  async ready (timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<ReadyEvent> {
    return await this.eventLog.waitForEvent('ready', () => true, timeoutMs, 'ready event')
  }

  /** Where the node serves HTTP (`--http`): the `http` of its ready line; undefined before it, or without --http. */
  get httpUrl (): string | undefined { return this.eventLog.last('ready')?.http ?? undefined }

  /** The node's current gossip mesh sizes (from its last `mesh` event; zeros before the first). */
  mesh (): Omit<MeshEvent, 'event'> {
    return this.eventLog.last('mesh') ?? { tasks: 0, attestations: 0, certificates: 0, attestationSubscribers: 0 }
  }

  async stop (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
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

/** `<root>/<name>/{keys,data}` of a node made before (a resumed devnet), with its keys. */
export async function openNodeDir (root: string, name: string): Promise<NodeDirs & { keys: Keystore }> {
  const dir = resolve(root, name)
  const keystore = join(dir, 'keys')
  return { keystore, dataDir: join(dir, 'data'), keys: await loadKeystore(keystore) }
}

/** Makes `<root>/<name>/{keys,data}` with fresh keys. */
export async function prepareNodeDir (root: string, name: string): Promise<NodeDirs & { keys: Keystore }> {
  const dir = resolve(root, name)
  await mkdir(dir, { recursive: true })
  const keystore = join(dir, 'keys')
  await generateKeystore(keystore)
  return { keystore, dataDir: join(dir, 'data'), keys: await loadKeystore(keystore) }
}
