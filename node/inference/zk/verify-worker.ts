/**
 * worker_threads entry point of ProofVerifier (proof-verifier.ts): checks one Groth16 proof per
 * message with verifyProof. Off the main thread because snarkjs blocks the loop while it
 * verifies: measured on 2 loaded cores with the 2→2→2 test circuit, the first verification of a
 * process stalls the event loop 1.8 s (building the BN254 curve), each later one 4-33 ms of its
 * 33-92 ms (gossip, timers and the QC deadline wait meanwhile).
 */
import { parentPort } from 'node:worker_threads'
import { ProofRejectedError } from './errors.js'
import { verifyProof } from './proof.js'
import { releaseCurve, useSingleThreadCurve } from './snarkjs.js'
import type { ProofVerifyRequest, ProofVerifyResponse } from './proof-verifier.js'

if (parentPort === null) {
  throw new Error('node/inference/zk/verify-worker.js must be started by ProofVerifier as a worker_threads Worker, not run directly')
}
const port = parentPort
// One curve for the worker's life, on this thread (see useSingleThreadCurve): built before the first proof is read.
const curve = useSingleThreadCurve()

port.on('message', (request: ProofVerifyRequest | { close: true }) => {
  if ('close' in request) {
    // snarkjs's curve keeps worker threads of its own: end them before this thread ends
    void releaseCurve().finally(() => { port.postMessage({ closed: true }) })
    return
  }
  const { id, vkey, proof, expected } = request
  curve.then(async () => { await verifyProof(vkey, proof, expected) }).then(
    () => { port.postMessage({ id, ok: true } satisfies ProofVerifyResponse) },
    (err: unknown) => {
      const response: ProofVerifyResponse = err instanceof ProofRejectedError
        ? { id, ok: false, reason: err.reason, message: err.message }
        : { id, ok: false, error: err instanceof Error ? err.message : String(err) }
      port.postMessage(response)
    }
  )
})
