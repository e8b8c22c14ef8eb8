/**
 * The proving process ProofWorker forks: computes a witness and a Groth16 proof per message, off
 * the node's event loop (snarkjs runs the witness generator's WebAssembly and parts of the prover
 * on the calling thread: 0.3–3 s of a blocked loop for poi's circuits). A process, not a
 * worker_thread: ffjavascript's `web-worker` dependency takes over any worker thread it is loaded
 * in. It exits when its parent goes.
 *
 * A circuit's generator and key arrive once, with its first request, and stay here by key.
 */
import { prove } from './proof.js'
import type { ProveRequest, ProveResponse } from './proof-worker.js'

const send = process.send?.bind(process)
if (send === undefined) {
  throw new Error('node/inference/zk/prove-worker.js must be forked by ProofWorker (it answers over the IPC channel), not run directly')
}
const circuits = new Map<string, { wasm: Uint8Array, zkey: Uint8Array }>()

process.on('message', (request: ProveRequest) => {
  void answer(request).then(response => { send(response) })
})
// The node stopped or died: nothing is left to prove for.
process.on('disconnect', () => { process.exit(0) })

async function answer (request: ProveRequest): Promise<ProveResponse> {
  try {
    if (request.files !== undefined) circuits.set(request.key, request.files)
    const files = circuits.get(request.key)
    if (files === undefined) return { id: request.id, error: { name: 'ProvingError', message: `the proving process holds no circuit ${request.key}` } }
    const started = performance.now()
    const proof = await prove(files.wasm, files.zkey, request.input)
    return { id: request.id, proof, provingMs: performance.now() - started }
  } catch (err) {
    return { id: request.id, error: { name: (err as Error).name, message: (err as Error).message } }
  }
}
