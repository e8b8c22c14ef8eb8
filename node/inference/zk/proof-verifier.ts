/**
 * Groth16 verification off the main thread (issue 16, spec16n part B): one worker_threads
 * worker that runs verifyProof (verify-worker.ts), started on the first proof so a node that
 * never sees one never loads snarkjs. A node checks proofs one task at a time and each takes tens
 * of milliseconds, so one worker is enough; its snarkjs curve uses worker threads of its own.
 *
 * Trust: as verifyProof's (the proof is untrusted, the key trusted).
 */
import { Worker } from 'node:worker_threads'
import { errorWithCode } from '../../../protocols/wire/index.js'
import { ProofRejectedError, type ProofRejection } from './errors.js'
import type { ExpectedSignals, ZkProof } from './proof.js'
import type { VerificationKey } from './snarkjs.js'

/** Main thread → worker. */
export interface ProofVerifyRequest { id: number, vkey: VerificationKey, proof: ZkProof, expected: ExpectedSignals }
/** Worker → main thread: the proof holds, is rejected (with ProofRejectedError's reason), or the check itself failed. */
export type ProofVerifyResponse =
  | { id: number, ok: true }
  | { id: number, ok: false, reason: ProofRejection, message: string }
  | { id: number, ok: false, error: string }

/** The verifier is closed, or its worker died or failed on a proof (not a judgement of the proof). */
export class ProofVerifierError extends errorWithCode('ERR_ZK_PROOF_VERIFIER') {}

/** How long close() waits for the worker to end snarkjs's curve threads before terminating it. */
const CLOSE_TIMEOUT_MS = 2_000

const WORKER_URL = new URL('./verify-worker.js', import.meta.url)

interface Pending { resolve: () => void, reject: (err: Error) => void }

export class ProofVerifier {
  private worker: Worker | undefined
  private readonly pending = new Map<number, Pending>()
  private nextId = 0
  private closed = false

  /** Resolves when `proof` verifies with `vkey` for `expected`; throws ProofRejectedError with its reason, or ProofVerifierError. */
  async verify (vkey: VerificationKey, proof: ZkProof, expected: ExpectedSignals): Promise<void> {
    if (this.closed) throw new ProofVerifierError('the proof verifier is closed; create a new one to verify more proofs')
    const worker = this.worker ?? this.spawn()
    const id = this.nextId++
    return await new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      // a worker with a proof in flight keeps the process alive; an idle one does not
      worker.ref()
      worker.postMessage({ id, vkey, proof, expected } satisfies ProofVerifyRequest)
    })
  }

  /**
   * Starts the worker now if it is not running: its first proof otherwise waits for it to load
   * snarkjs and build its curve (measured 2-4.7 s on 2 loaded cores). A node calls it when a zk
   * task arrives, so the worker is ready by the time the task's proof (seconds of proving) does.
   */
  warm (): void {
    if (!this.closed && this.worker == null) this.spawn()
  }

  /** Ends the worker (and snarkjs's threads in it); proofs in flight reject with ProofVerifierError. Idempotent. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    const worker = this.worker
    this.worker = undefined
    this.failAll(new ProofVerifierError('the proof verifier closed before the proof was checked'))
    if (worker == null) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)
      worker.once('message', () => { clearTimeout(timer); resolve() })
      worker.postMessage({ close: true })
    })
    await worker.terminate()
  }

  private spawn (): Worker {
    // snarkjs imports the web-worker package, which in any worker thread takes itself for one of
    // its own workers and runs `workerData.mod`: give it an empty module, so it only sets up the
    // globals its workers expect and loads nothing (the worker uses a single-threaded curve).
    const worker = new Worker(WORKER_URL, { workerData: { mod: 'data:text/javascript,', name: 'poi-proof-verifier', type: 'module' } })
    worker.unref()
    worker.on('message', (response: ProofVerifyResponse) => {
      const pending = this.pending.get(response.id)
      if (pending == null) return
      this.pending.delete(response.id)
      if (this.pending.size === 0) worker.unref()
      if (response.ok) pending.resolve()
      else if ('reason' in response) pending.reject(new ProofRejectedError(response.reason, response.message))
      else pending.reject(new ProofVerifierError(`the proof could not be checked: ${response.error}`))
    })
    const died = (why: string): void => {
      if (this.worker === worker) this.worker = undefined
      this.failAll(new ProofVerifierError(`the proof verify worker ${why}`))
    }
    worker.on('error', (err) => { died(`failed: ${err.message}`) })
    worker.on('exit', (code) => { if (!this.closed) died(`exited with code ${code}`) })
    this.worker = worker
    return worker
  }

  private failAll (err: Error): void {
    const pending = [...this.pending.values()]
    this.pending.clear()
    for (const p of pending) p.reject(err)
  }
}

/** The process's shared verifier and how many hold it. */
let shared: { verifier: ProofVerifier, holders: number } | undefined

/**
 * The verifier every node of this process shares (one worker, one snarkjs load and curve: tests
 * and embedders run several nodes in one process, and a cold worker takes seconds); `release`
 * it once done with it, and the last release closes it.
 */
export function acquireProofVerifier (): { verifier: ProofVerifier, release: () => Promise<void> } {
  const entry = shared ??= { verifier: new ProofVerifier(), holders: 0 }
  entry.holders++
  let released = false
  return {
    verifier: entry.verifier,
    release: async () => {
      if (released) return
      released = true
      if (--entry.holders > 0) return
      if (shared === entry) shared = undefined
      await entry.verifier.close()
    }
  }
}
