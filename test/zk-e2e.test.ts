/**
 * Issue 16's acceptance, the small circuit end to end in one flow: a ceremony started on the
 * machine's cached powers of tau with two contributions by different contributors and
 * finalized; a proof of a known input made with the final key for an anvil account as the
 * prover; the proof verified off-chain (and refused, with its reason, against any other
 * circuit, input, output or prover); then on anvil the final verification key's verifier
 * deployed and named for a model, the proof settling a zk-tier task and paying its prover, and
 * a tampered proof refused both off-chain ('invalid') and on-chain (InvalidZkProof).
 *
 * The steps run in order and share state (the ceremony, the proof, the chain): each needs the
 * one before it, as a user's flow does. The file runs alone.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bytesToHex, numberToBytes, parseEventLogs } from 'viem'
import {
  TaskManagerAbi, ZkProofRejectedOnChainError, checkZkProofOnChain, deposit, readCredit, readVault, submitZkResult, verifyOnChain
} from '../contracts/index.js'
import {
  ProofRejectedError, contribute, finalizeCeremony, prove, readCeremonyRecord, readVerificationKey, releaseCurve, sha256File, startCeremony, verifyProof,
  type CeremonyRecord, type ExpectedSignals, type ProofRejection, type VerificationKey, type ZkProof
} from '../node/inference/zk/index.js'
import { BN254_SCALAR_FIELD, taskIdOf, type TaskAnnouncement } from '../protocols/wire/index.js'
import { ETHER } from './consensus-fixtures.js'
import { anvilAccount, paidTask, startPoiChain, type PoiChain } from './helpers/poi-chain.js'
import { registerZkModel, type ZkModelOnChain } from './helpers/zk-chain.js'
import { TEST_CIRCUIT_ID, cachedTestPtau, commitInt32, commitInt8, compileTestCircuit, testCircuitInput, testModel, type TestCircuit } from './helpers/zk-test-circuit.js'

/** The known input the proof is about (int8), and one it is not about. */
const X = [3, -7, 100]
const OTHER_X = [3, -7, 101]
/** anvil accounts: 0 deploys (treasury), 1 owns the model, 2 requests, 3 is the prover (payee), 4 submits. */
const OWNER = 1
const REQUESTER = 2
const PROVER = 3
const SUBMITTER = 4
const ACCOUNTS = 5
const MODEL_FEE = 2n * 10n ** 14n
const BPS = 10_000n
const CONTRIBUTORS = ['alice (e2e)', 'bob (e2e)']

/** Each step's wall time, printed at the end. */
const timings: Record<string, number> = {}
async function timed<T> (step: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now()
  try { return await fn() } finally { timings[step] = Date.now() - started }
}

describe('zk end to end: ceremony with two contributions, prove, verify off-chain and on anvil', function () {
  this.timeout(120_000)
  const prover = anvilAccount(PROVER).address
  const expected: ExpectedSignals = {
    circuitId: TEST_CIRCUIT_ID, inputCommitment: commitInt8(X), outputCommitment: commitInt32(testModel(X)), prover: BigInt(prover)
  }
  let root: string
  let ceremonyDir: string
  let circuit: TestCircuit
  let record: CeremonyRecord
  let vkey: VerificationKey
  let proof: ZkProof
  let tampered: ZkProof
  let chain: PoiChain
  let zkModel: ZkModelOnChain

  before(async function () {
    root = await mkdtemp(join(tmpdir(), 'poi-zk-e2e-'))
    ceremonyDir = join(root, 'ceremony')
    circuit = await timed('compile', compileTestCircuit)
  })
  after(async function () {
    await chain?.stop()
    // snarkjs's curve runs worker threads that keep the process alive until terminated
    await releaseCurve()
    await circuit?.remove()
    await rm(root, { recursive: true, force: true })
    console.log(`      times (ms): ${JSON.stringify(timings)}`)
  })

  it('sets up the circuit: start on the cached powers of tau, two contributions by different names, finalize', async function () {
    const ptau = await timed('ptau (cached)', cachedTestPtau)
    const started = await timed('startCeremony', async () => await startCeremony(circuit.r1cs, ptau, ceremonyDir, { name: 'e2e starter' }))
    assert.deepEqual([started.contributions, started.final, started.ptau.source], [[], null, 'supplied'])
    for (const [i, name] of CONTRIBUTORS.entries()) {
      const entry = await timed(`contribution ${i + 1}`, async () => await contribute(ceremonyDir, { name }))
      assert.deepEqual([entry.index, entry.name], [i + 1, name])
    }
    const finalized = await timed('finalizeCeremony', async () => await finalizeCeremony(ceremonyDir))
    record = await readCeremonyRecord(ceremonyDir)
    assert.deepEqual(record, finalized.record, 'the record on disk is the one finalize returned')

    // both contributions, in order, each with its own hash and key
    assert.deepEqual(record.contributions.map(c => [c.index, c.name]), [[1, CONTRIBUTORS[0]], [2, CONTRIBUTORS[1]]])
    assert.notEqual(record.contributions[0].contributionHash, record.contributions[1].contributionHash)
    assert.notEqual(record.contributions[0].zkeySha256, record.contributions[1].zkeySha256)
    for (const c of record.contributions) assert.equal(await sha256File(join(ceremonyDir, c.file)), c.zkeySha256, `${c.file} is the key recorded`)

    // the final key is the second contribution's, and the verification key is recorded by hash
    assert.ok(record.final !== null, 'finalized')
    assert.equal(record.final.zkeyFile, record.contributions[1].file)
    assert.equal(record.final.zkeySha256, record.contributions[1].zkeySha256)
    assert.equal(await sha256File(join(ceremonyDir, record.final.verificationKeyFile)), record.final.verificationKeySha256)
    vkey = await readVerificationKey(join(ceremonyDir, record.final.verificationKeyFile))
    assert.deepEqual(vkey, finalized.verificationKey)
    assert.equal(vkey.nPublic, 4)
  })

  it('proves the known input with the final key, naming the prover\'s anvil account', async function () {
    assert.ok(record?.final != null, 'needs the finalized ceremony of the step before')
    proof = await timed('prove', async () => await prove(circuit.wasm, join(ceremonyDir, record.final!.zkeyFile), testCircuitInput(X, BigInt(prover))))
    assert.deepEqual(proof.publicSignals, [expected.circuitId, expected.inputCommitment, expected.outputCommitment, expected.prover].map(String))
    tampered = structuredClone(proof)
    tampered.proof.pi_a[1] = (BigInt(tampered.proof.pi_a[1]) + 1n).toString()
  })

  it('verifies the proof off-chain, and refuses it for any other circuit, input, output or prover, or tampered, with the reason', async function () {
    assert.ok(proof !== undefined, 'needs the proof of the step before')
    await timed('verifyProof', async () => { await verifyProof(vkey, proof, expected) })
    // without expectations: the pairing alone
    await verifyProof(vkey, proof)
    const refused = async (p: unknown, want: Partial<ExpectedSignals> | undefined, reason: ProofRejection): Promise<void> => {
      await assert.rejects(verifyProof(vkey, p, want === undefined ? undefined : { ...expected, ...want }), (err: unknown) => {
        assert.ok(err instanceof ProofRejectedError, `expected ProofRejectedError(${reason}), got ${String(err)}`)
        assert.equal(err.reason, reason, err.message)
        return true
      })
    }
    await refused(proof, { circuitId: TEST_CIRCUIT_ID + 1n }, 'circuit')
    await refused(proof, { inputCommitment: commitInt8(OTHER_X) }, 'input')
    await refused(proof, { outputCommitment: commitInt32(testModel(OTHER_X)) }, 'output')
    await refused(proof, { prover: BigInt(anvilAccount(SUBMITTER).address) }, 'prover')
    await refused(tampered, {}, 'invalid')
    // the same proof claiming another output: the pairing refuses it
    const relabelled = structuredClone(proof)
    relabelled.publicSignals[2] = String(commitInt32(testModel(OTHER_X)))
    await refused(relabelled, undefined, 'invalid')
    const outOfField = structuredClone(proof)
    outOfField.publicSignals[1] = String(BN254_SCALAR_FIELD + expected.inputCommitment)
    await refused(outOfField, undefined, 'field')
  })

  describe('on anvil', function () {
    let task: TaskAnnouncement
    const settled = async (): Promise<boolean> =>
      await chain.publicClient.readContract({ address: tm(), abi: TaskManagerAbi, functionName: 'isSettled', args: [bytesToHex(taskIdOf(task, tm()))] })
    const tm = (): `0x${string}` => chain.deployment.taskManager
    const address = (account: number): `0x${string}` => chain.wallets[account].account.address
    const fee = (): bigint => MODEL_FEE + chain.params.minTaskFee
    const balances = async (): Promise<Record<string, bigint>> => ({
      requester: (await readVault(chain.publicClient, tm(), address(REQUESTER))).balance,
      owner: await readCredit(chain.publicClient, tm(), address(OWNER)),
      treasury: await readCredit(chain.publicClient, tm(), address(0)),
      prover: await readCredit(chain.publicClient, tm(), address(PROVER)),
      submitter: await readCredit(chain.publicClient, tm(), address(SUBMITTER))
    })

    before(async function () {
      assert.ok(vkey !== undefined && proof !== undefined, 'needs the verification key and the proof of the steps before')
      chain = await timed('anvil + deployPoi', async () => await startPoiChain({}, { accounts: ACCOUNTS }))
      zkModel = await timed('deployVerifier + setZkVerifier', async () =>
        await registerZkModel(chain, { owner: OWNER, name: 'zk-e2e', fee: MODEL_FEE, vkey, circuitId: TEST_CIRCUIT_ID }))
      await deposit(chain.wallets[REQUESTER], chain.publicClient, tm(), ETHER)
      task = await paidTask(chain, 'zk-e2e', {
        requester: REQUESTER, modelId: zkModel.model.modelId, fee: fee(), tier: 'zk', input: Uint8Array.from(X, v => v & 0xff), inputCommitment: numberToBytes(expected.inputCommitment, { size: 32 })
      })
    })

    it('the verifier deployed from the final verification key accepts the proof, and the registry checks it for the model', async function () {
      assert.equal(await verifyOnChain(chain.publicClient, zkModel.verifier, proof), true)
      assert.equal(await verifyOnChain(chain.publicClient, zkModel.verifier, tampered), false)
      await checkZkProofOnChain(chain.publicClient, chain.deployment.modelRegistry, zkModel.model.modelId, proof)
    })

    it('refuses the tampered proof on chain with InvalidZkProof, moving nothing', async function () {
      const before = await balances()
      await assert.rejects(submitZkResult(chain.wallets[SUBMITTER], chain.publicClient, tm(), task, tampered, { outputRef: bytesToHex(new Uint8Array(32).fill(7)), prover }), (err: unknown) => {
        assert.ok(err instanceof ZkProofRejectedOnChainError, `expected ZkProofRejectedOnChainError(InvalidZkProof), got ${String(err)}`)
        assert.equal(err.reason, 'InvalidZkProof', err.message)
        return true
      })
      assert.deepEqual(await balances(), before)
      assert.equal(await settled(), false)
    })

    it('settles the zk task on the proof and pays the prover', async function () {
      const before = await balances()
      const outputRef = bytesToHex(new Uint8Array(32).fill(9))
      const { accepted, receipt } = await timed('submitZkResult', async () => await submitZkResult(chain.wallets[SUBMITTER], chain.publicClient, tm(), task, proof, { outputRef, prover }))
      assert.equal(accepted, true)
      timings['submitZkResult gas'] = Number(receipt.gasUsed)

      const rest = fee() - MODEL_FEE
      const protocol = rest * BigInt(chain.params.protocolFeeBps) / BPS
      const after = await balances()
      assert.equal(after.requester, before.requester - fee())
      assert.equal(after.owner - before.owner, MODEL_FEE)
      assert.equal(after.treasury - before.treasury, protocol)
      assert.equal(after.prover - before.prover, rest - protocol)
      assert.ok(after.prover > before.prover, 'the prover is paid')
      assert.equal(after.submitter, before.submitter, 'the submitter is not the payee')
      const events = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'ZkResultAccepted' })
      assert.deepEqual(events.map(e => e.args), [{ taskId: bytesToHex(taskIdOf(task, tm())), outputCommitment: expected.outputCommitment, outputRef, prover, submitter: address(SUBMITTER) }])
      assert.equal(await settled(), true)
    })
  })
})
