/**
 * worker_threads entry point of BufferedVerifier: verifies one batch of signature sets per
 * message. The pairings run here because blst's "async" calls in @chainsafe/bls still run on
 * the calling thread and would stall gossip, timers and the QC deadline on the main loop.
 *
 * Keys are validated and cached per worker (PublicKeyCache): the operator set's keys recur in
 * every batch, so each is decompressed and subgroup-checked once per worker lifetime.
 */
import { parentPort } from 'node:worker_threads'
import { PublicKeyCache } from './pubkey-cache.js'
import { verifySignatureSets } from './signature-sets.js'
import type { VerifyRequest, VerifyResponse } from './verifier.js'

if (parentPort === null) {
  throw new Error('consensus/verify-worker.js must be started by BufferedVerifier as a worker_threads Worker, not run directly')
}
const port = parentPort
const publicKeys = new PublicKeyCache()

port.on('message', (request: VerifyRequest) => {
  const response: VerifyResponse = { id: request.id, results: verifySignatureSets(request.sets, publicKeys) }
  port.postMessage(response)
})
