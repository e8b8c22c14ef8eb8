/**
 * ProofWorker (node/inference/zk/proof-worker.ts): an operator's proofs are made in a worker
 * thread from the circuit's files held in memory, and the node's event loop keeps running while
 * one is made. Real snarkjs, the test circuit, a one-contribution setup.
 */
import assert from 'node:assert/strict'
import { readFile, rm, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProofWorker, ProvingError, contribute, finalizeCeremony, releaseCurve, startCeremony, verifyProof, type VerificationKey } from '../node/inference/zk/index.js'
import { cachedTestPtau, commitInt32, commitInt8, compileTestCircuit, testCircuitInput, testModel, TEST_CIRCUIT_ID, TEST_PROVER, type TestCircuit } from './helpers/zk-test-circuit.js'

const X = [3, -7, 100]

describe('zk proof worker', function () {
  this.timeout(120_000)
  let circuit: TestCircuit
  let dir: string
  let files: { wasm: Uint8Array, zkey: Uint8Array }
  let vkey: VerificationKey
  const worker = new ProofWorker()

  before(async function () {
    circuit = await compileTestCircuit()
    dir = await mkdtemp(join(tmpdir(), 'poi-zk-worker-'))
    await startCeremony(circuit.r1cs, await cachedTestPtau(), dir)
    await contribute(dir, { name: 'alice' })
    const { verificationKey, record } = await finalizeCeremony(dir)
    vkey = verificationKey
    files = { wasm: new Uint8Array(await readFile(circuit.wasm)), zkey: new Uint8Array(await readFile(join(dir, record.final!.zkeyFile))) }
  })

  after(async function () {
    await worker.close()
    await releaseCurve()
    await circuit?.remove()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('proves from files held in memory, off the event loop, and the proof verifies', async function () {
    // The longest gap between ticks of a 10 ms timer while the proof is made: the loop must keep turning.
    let last = performance.now()
    let worst = 0
    const ticker = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last); last = now }, 10)
    let result
    try {
      result = await worker.prove('test', files, testCircuitInput(X))
    } finally {
      clearInterval(ticker)
    }
    assert.ok(result.provingMs > 0)
    assert.deepEqual(result.proof.publicSignals, [TEST_CIRCUIT_ID, commitInt8(X), commitInt32(testModel(X)), TEST_PROVER].map(String))
    await verifyProof(vkey, result.proof, { circuitId: TEST_CIRCUIT_ID, inputCommitment: commitInt8(X), outputCommitment: commitInt32(testModel(X)), prover: TEST_PROVER })
    assert.ok(worst < 250, `the event loop stalled ${worst.toFixed(0)} ms while proving`)
  })

  it('keeps a circuit\'s files after the first request, and refuses an input the circuit does not satisfy', async function () {
    const again = await worker.prove('test', { wasm: new Uint8Array(0), zkey: new Uint8Array(0) }, testCircuitInput([1, 2, 3]))
    await verifyProof(vkey, again.proof)
    const bad = { ...testCircuitInput(X), outputCommitment: commitInt32([0, 0]).toString() }
    await assert.rejects(worker.prove('test', files, bad), (err: unknown) => err instanceof ProvingError && /satisfy the circuit/.test(err.message))
  })

  it('fails the proofs in flight when it is closed, and starts again on the next proof', async function () {
    const pending = worker.prove('test', files, testCircuitInput(X))
    await worker.close()
    await assert.rejects(pending, ProvingError)
    const fresh = await worker.prove('test', files, testCircuitInput(X))
    await verifyProof(vkey, fresh.proof)
  })
})
