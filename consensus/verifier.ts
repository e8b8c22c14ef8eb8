/**
 * BufferedVerifier: collects signature sets for a few milliseconds, then verifies them as one
 * batch in a worker thread (Lodestar's BlsMultiThreadWorkerPool, cut down to what poi needs).
 *
 * Why buffer: attestations for a task arrive in a burst (every operator finishes the same
 * inference at about the same time), and a batch of N costs far less than N single verifies
 * (see signature-sets.ts). Why off the main thread: a pairing is ~1 ms of blocking native
 * code, and blst's "async" API still runs on the caller's thread.
 *
 * Trust: the sets given to verify() are untrusted; malformed ones resolve to false. The promise
 * only rejects (VerifierError) when the verifier is closed or its worker dies mid-batch.
 */
import { Worker } from 'node:worker_threads'
import { logger } from '@libp2p/logger'
import { VerifierError } from './errors.js'
import type { SignatureSet } from './signature-sets.js'

const log = logger('poi:consensus:verifier')

/**
 * Sets go to an idle worker at once; only while every worker is busy do they wait, and then at
 * most this long (the batch also leaves as soon as a worker frees up).
 *
 * How long the first set of a batch may wait for company. Lodestar waits 100 ms because it
 * optimises throughput; here the QC is on the requester's critical path, so the wait is kept to
 * a few milliseconds: a burst of attestations (all arriving within the same few ms of gossip
 * fan-out) is still caught in one batch, while a lone attestation pays at most 5 ms — about
 * what five single verifies would cost.
 */
export const MAX_BUFFER_WAIT_MS = 5

/**
 * A batch is sent as soon as it holds this many sets: the gain of batching flattens out around
 * here (32 sets ≈ 14 ms batched vs ≈ 32 ms singly on this box), and a batch that fails falls back
 * to one-by-one verification, whose cost grows with the batch size.
 */
export const MAX_BUFFERED_SETS = 32

/** One worker: the machine runs inference on the other cores; raise it on verifier-only nodes. */
export const DEFAULT_VERIFIER_WORKERS = 1

export type BufferedVerifierOptions = {
  /** Worker threads in the pool (default DEFAULT_VERIFIER_WORKERS). */
  workers?: number
  /** Longest time a set waits for a batch to fill (default MAX_BUFFER_WAIT_MS). */
  maxBufferWaitMs?: number
  /** Batch size that triggers an immediate send (default MAX_BUFFERED_SETS). */
  maxBufferedSets?: number
  /** Told the size of every batch sent to a worker (metrics). */
  onBatch?: (sets: number) => void
}

/** Main thread → worker. */
export type VerifyRequest = { id: number, sets: SignatureSet[] }
/** Worker → main thread: one result per set, same order. */
export type VerifyResponse = { id: number, results: boolean[] }

type PendingSet = { set: SignatureSet, resolve: (valid: boolean) => void, reject: (err: Error) => void }
type WorkerSlot = { worker: Worker, jobs: Map<number, PendingSet[]> }

const WORKER_URL = new URL('./verify-worker.js', import.meta.url)

export class BufferedVerifier {
  private readonly workerCount: number
  private readonly maxBufferWaitMs: number
  private readonly maxBufferedSets: number
  private readonly slots: WorkerSlot[] = []
  private buffer: PendingSet[] = []
  private timer: NodeJS.Timeout | null = null
  private immediate: NodeJS.Immediate | null = null
  private nextJobId = 0
  private closed = false
  private readonly onBatch: ((sets: number) => void) | undefined

  constructor (options: BufferedVerifierOptions = {}) {
    this.onBatch = options.onBatch
    this.workerCount = positiveInteger('workers', options.workers ?? DEFAULT_VERIFIER_WORKERS)
    this.maxBufferWaitMs = nonNegative('maxBufferWaitMs', options.maxBufferWaitMs ?? MAX_BUFFER_WAIT_MS)
    this.maxBufferedSets = positiveInteger('maxBufferedSets', options.maxBufferedSets ?? MAX_BUFFERED_SETS)
    // started eagerly: loading blst in a fresh worker takes tens of ms we do not want on the first QC
    for (let i = 0; i < this.workerCount; i++) this.slots.push(this.spawn())
  }

  /** Resolves true iff the set's signature is valid; false for invalid or malformed sets. */
  async verify (set: SignatureSet): Promise<boolean> {
    if (this.closed) throw new VerifierError('BufferedVerifier is closed; create a new one to verify more signatures')
    if (!(set.publicKey instanceof Uint8Array) || !(set.message instanceof Uint8Array) || !(set.signature instanceof Uint8Array)) {
      return false
    }
    return await new Promise<boolean>((resolve, reject) => {
      // only the three fields cross the thread boundary, each in its own small buffer
      this.buffer.push({ set: { publicKey: compact(set.publicKey), message: compact(set.message), signature: compact(set.signature) }, resolve, reject })
      if (this.buffer.length >= this.maxBufferedSets) {
        this.flush()
      } else if (this.hasIdleWorker()) {
        // An idle worker gains nothing from waiting: send what arrived in this turn of
        // the event loop. Under load (every worker busy) sets accumulate into batches.
        this.immediate ??= setImmediate(() => { this.immediate = null; this.flush() })
      } else if (this.timer === null) {
        this.timer = setTimeout(() => { this.flush() }, this.maxBufferWaitMs)
      }
    })
  }

  /** Terminates the workers; sets not yet verified reject with VerifierError. Idempotent. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    if (this.immediate !== null) clearImmediate(this.immediate)
    this.immediate = null
    const buffered = this.buffer
    this.buffer = []
    const closedError = new VerifierError('BufferedVerifier closed before the signature was verified')
    for (const pending of buffered) pending.reject(closedError)
    const slots = this.slots.splice(0)
    for (const slot of slots) rejectJobs(slot, closedError)
    await Promise.all(slots.map(async slot => await slot.worker.terminate()))
  }

  private hasIdleWorker (): boolean {
    return this.slots.length < this.workerCount || this.slots.some(slot => slot.jobs.size === 0)
  }

  private flush (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    if (this.immediate !== null) clearImmediate(this.immediate)
    this.immediate = null
    if (this.buffer.length === 0 || this.closed) return
    const batch = this.buffer
    this.buffer = []
    this.onBatch?.(batch.length)

    const slot = this.leastBusySlot()
    const id = this.nextJobId++
    slot.jobs.set(id, batch)
    // a worker with work in flight keeps the process alive; an idle one does not
    slot.worker.ref()
    const request: VerifyRequest = { id, sets: batch.map(pending => pending.set) }
    try {
      slot.worker.postMessage(request)
    } catch (err) {
      slot.jobs.delete(id)
      const error = new VerifierError(`could not send signature sets to the verify worker: ${(err as Error).message}`, { cause: err })
      for (const pending of batch) pending.reject(error)
    }
  }

  private leastBusySlot (): WorkerSlot {
    while (this.slots.length < this.workerCount) this.slots.push(this.spawn())
    let best = this.slots[0]
    for (const slot of this.slots) {
      if (slot.jobs.size < best.jobs.size) best = slot
    }
    return best
  }

  private spawn (): WorkerSlot {
    const worker = new Worker(WORKER_URL)
    const slot: WorkerSlot = { worker, jobs: new Map() }
    worker.unref()
    worker.on('message', (response: VerifyResponse) => {
      const batch = slot.jobs.get(response.id)
      if (batch === undefined) return
      slot.jobs.delete(response.id)
      if (slot.jobs.size === 0) worker.unref()
      for (const [i, pending] of batch.entries()) pending.resolve(response.results[i] === true)
      // What piled up while this worker was busy goes out now as one batch.
      if (this.buffer.length > 0 && !this.closed) this.flush()
    })
    worker.on('error', (err) => {
      log.error('verify worker failed: %s', err.message)
      this.retire(slot, new VerifierError(`verify worker failed: ${err.message}`, { cause: err }))
    })
    worker.on('exit', (code) => {
      this.retire(slot, new VerifierError(`verify worker exited with code ${code}`))
    })
    return slot
  }

  /** Drops a dead worker; its in-flight sets reject, and the next flush spawns a replacement. */
  private retire (slot: WorkerSlot, error: VerifierError): void {
    const at = this.slots.indexOf(slot)
    if (at === -1) return
    this.slots.splice(at, 1)
    rejectJobs(slot, error)
  }
}

function rejectJobs (slot: WorkerSlot, error: Error): void {
  for (const batch of slot.jobs.values()) {
    for (const pending of batch) pending.reject(error)
  }
  slot.jobs.clear()
}

/**
 * Structured clone copies a view's whole ArrayBuffer; fields decoded from a gossip message are
 * views into the full message (up to 64 KiB of output), so views are copied down to their bytes.
 */
function compact (bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()
}

function positiveInteger (name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new VerifierError(`BufferedVerifier option ${name} must be a positive integer, got ${value}`)
  return value
}

function nonNegative (name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new VerifierError(`BufferedVerifier option ${name} must be a non-negative number of milliseconds, got ${value}`)
  return value
}
