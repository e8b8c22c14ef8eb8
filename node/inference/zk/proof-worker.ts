/**
 * Proving off the event loop: one forked process (prove-worker.ts) that proves the inputs it is
 * sent, as an operator proves its zk tasks. It starts with the first proof and ends with
 * `close()` (or with this process). Messages use the IPC channel's structured clone, so the
 * circuit's bytes and the bigints of an input cross as they are.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { logger } from '@libp2p/logger'
import { ProvingError } from './errors.js'
import type { ZkProof } from './proof.js'
import type { CircuitInput } from './snarkjs.js'

const log = logger('poi:prover:process')

/** A circuit's witness generator (model.wasm) and the ceremony's final key. */
export interface ProvingFiles { wasm: Uint8Array, zkey: Uint8Array }

export interface ProveRequest {
  id: number
  /** Names the circuit's files in the worker (e.g. its circuit id); they are sent with the first request. */
  key: string
  files?: ProvingFiles
  input: CircuitInput
}

export type ProveResponse =
  | { id: number, proof: ZkProof, provingMs: number, error?: undefined }
  | { id: number, error: { name: string, message: string }, proof?: undefined }

export class ProofWorker {
  private worker: ChildProcess | undefined
  private nextId = 0
  private readonly pending = new Map<number, { resolve: (r: { proof: ZkProof, provingMs: number }) => void, reject: (err: Error) => void }>()
  private readonly sent = new Set<string>()

  /** Proves `input` with the circuit `key` (its files sent to the worker once). */
  async prove (key: string, files: ProvingFiles, input: CircuitInput): Promise<{ proof: ZkProof, provingMs: number }> {
    const worker = this.start()
    const id = this.nextId++
    const first = !this.sent.has(key)
    this.sent.add(key)
    return await new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      // Held while a proof is pending, so a caller awaiting it is not left with an idle process.
      worker.channel?.ref()
      const request: ProveRequest = { id, key, input, ...(first ? { files } : {}) }
      worker.send(request, (err) => {
        if (err == null) return
        this.pending.delete(id)
        reject(new ProvingError(`the proving process did not take the request: ${err.message}`, { cause: err }))
      })
    })
  }

  /** Ends the worker; proofs in flight fail. */
  async close (): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    this.sent.clear()
    if (worker !== undefined && worker.exitCode === null && worker.signalCode === null) {
      const exited = new Promise<void>(resolve => worker.once('exit', () => { resolve() }))
      worker.kill()
      await exited
    }
    this.failAll(new ProvingError('the proving process stopped'))
  }

  private start (): ChildProcess {
    if (this.worker !== undefined) return this.worker
    // --liftoff-only: V8 would otherwise spend a minute optimising the witness generator's WebAssembly at exit (measured on Node 24).
    const worker = fork(fileURLToPath(new URL('./prove-worker.js', import.meta.url)), [], { serialization: 'advanced', execArgv: ['--liftoff-only'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    worker.unref()
    // The witness generator writes a refused input's failing template to stderr: debug output, not the node's.
    worker.stderr?.on('data', (chunk: Buffer) => { log('%s', chunk.toString().trimEnd()) })
    ;(worker.stderr as { unref?: () => void } | null)?.unref?.()
    worker.channel?.unref()
    worker.on('message', (response: ProveResponse) => {
      const waiting = this.pending.get(response.id)
      if (waiting === undefined) return
      this.pending.delete(response.id)
      if (this.pending.size === 0) worker.channel?.unref()
      if (response.error !== undefined) waiting.reject(new ProvingError(response.error.message))
      else waiting.resolve({ proof: response.proof, provingMs: response.provingMs })
    })
    worker.on('error', (err) => {
      if (this.worker === worker) this.forget()
      this.failAll(new ProvingError(`the proving process failed: ${err.message}`, { cause: err }))
    })
    worker.on('exit', (code, signal) => {
      if (this.worker !== worker) return
      this.forget()
      this.failAll(new ProvingError(`the proving process exited (${signal ?? `code ${code}`})`))
    })
    this.worker = worker
    return worker
  }

  private forget (): void {
    this.worker = undefined
    this.sent.clear()
  }

  private failAll (err: Error): void {
    for (const waiting of this.pending.values()) waiting.reject(err)
    this.pending.clear()
  }
}
