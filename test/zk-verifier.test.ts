/**
 * The zk tier on-chain (issue 16, point 4's first half), on anvil: a snarkjs Groth16 verifier
 * generated from a circuit's verification key, compiled with solc-js and deployed; the model's
 * owner registers it with the ModelRegistry; ModelRegistry.verifyZkProof accepts a real proof and
 * reverts with a named error for every bad one (tampered, another circuit, a signal outside the
 * field, no verifier, too little gas). The off-chain pieces are held against snarkjs's own:
 * the source against exportSolidityVerifier (which needs the zkey), the calldata against
 * exportSolidityCallData. The circuit is a four-constraint fixture (helpers/zk-verifier-fixture.ts)
 * with the four public signals (circuitId, inputCommitment, outputCommitment, prover).
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { BaseError, decodeErrorResult, encodeFunctionData, zeroAddress, type TransactionReceipt } from 'viem'
import {
  GROTH16_VERIFIER_ABI, ModelRegistryAbi, ModelRegistryError, VERIFY_CALL_GAS, ZK_ON_CHAIN_REJECTIONS, ZK_PROOF_ERRORS_ABI, ZkProofFormatError, ZkProofRejectedOnChainError, ZkVerifierBuildError,
  checkZkProofOnChain, compileVerifier, deployVerifier, modelKeyOf, proofCalldata, readModelZkVerifier, registerModel, setModelZkVerifier, verifierMatchesKey,
  verifierSource, verifyOnChain, type ZkOnChainRejection, type ZkProof
} from '../contracts/index.js'
import { BN254_BASE_FIELD, BN254_SCALAR_FIELD } from '../protocols/wire/index.js'
import { ownedManifest, type OwnedManifest } from './helpers/model-manifests.js'
import { startPoiChain, type PoiChain } from './helpers/poi-chain.js'
import { FIXTURE_CIRCUIT_ID, loadSnarkjs, zkVerifierFixture, type ZkVerifierFixture } from './helpers/zk-verifier-fixture.js'

const require = createRequire(import.meta.url)
/** anvil accounts: 0 deploys, 1 owns the models, 2 is a stranger. */
const OWNER = 1
const STRANGER = 2
/** What one verifyZkProof may cost as a transaction (4 signals): the pairing's 181,000, four ecMul/ecAdd, calldata and the registry's reads. */
const VERIFY_TX_GAS_BOUND = 260_000n
/** setZkVerifier writes two fresh slots (2 × 22,100) and an event. */
const REGISTER_GAS_BOUND = 80_000n

describe('zk verifier on-chain (snarkjs Groth16 verifier, ModelRegistry.verifyZkProof)', function () {
  // a cold fixture (circom2, a 2^8 ptau, setup, one proof) takes about ten seconds, loading solc a few
  this.timeout(120_000)
  let fixture: ZkVerifierFixture
  let chain: PoiChain
  let verifier: `0x${string}`
  let model: OwnedManifest
  let registerReceipt: TransactionReceipt
  const measured: Record<string, string> = {}

  const registry = (): `0x${string}` => chain.deployment.modelRegistry
  const owner = (): PoiChain['wallets'][number] => chain.wallets[OWNER]

  /** The fixture's proof with `edit` applied to a deep copy. */
  const tampered = (edit: (p: ZkProof) => void): ZkProof => {
    const copy = structuredClone(fixture.proof)
    edit(copy)
    return copy
  }

  /** verifyZkProof for `modelId` must revert with `reason`; the error's arguments. */
  async function rejected (modelId: Uint8Array, proof: ZkProof, reason: ZkOnChainRejection): Promise<readonly unknown[]> {
    try {
      await checkZkProofOnChain(chain.publicClient, registry(), modelId, proof)
    } catch (err) {
      assert.ok(err instanceof ZkProofRejectedOnChainError, `expected ZkProofRejectedOnChainError(${reason}), got ${String(err)}`)
      assert.equal(err.reason, reason, err.message)
      return err.args
    }
    throw new Error(`expected ${reason}, but the proof verified`)
  }

  async function newModel (): Promise<OwnedManifest> {
    const m = await ownedManifest(owner().account.address, 'zk-verifier')
    await registerModel(owner(), chain.publicClient, registry(), m.modelId, m.block, 0n)
    return m
  }

  before(async () => {
    fixture = await zkVerifierFixture()
    chain = await startPoiChain({}, { accounts: 3 })
    const started = Date.now()
    verifier = await deployVerifier(chain.wallets[0], chain.publicClient, fixture.vkey, {
      onProgress: ({ stage, ms }) => { measured[`${stage} ms`] = String(ms) }
    })
    measured['render+compile+deploy ms'] = String(Date.now() - started)
    model = await newModel()
  })

  after(async () => {
    await chain?.stop()
    // exportSolidityVerifier below built snarkjs's curve (ffjavascript keeps it on globalThis), whose worker threads keep the process alive
    await (globalThis as { curve_bn128?: { terminate: () => Promise<void> } }).curve_bn128?.terminate()
    if (Object.keys(measured).length > 0) console.log('      measured: ' + Object.entries(measured).map(([k, v]) => `${k} ${v}`).join(', '))
  })

  it('renders the very source snarkjs\'s exportSolidityVerifier writes from the zkey, from the verification key alone', async () => {
    const snarkjs = await loadSnarkjs()
    const template = await readFile(join(dirname(require.resolve('snarkjs')), '..', 'templates', 'verifier_groth16.sol.ejs'), 'utf8')
    const fromZkey = await snarkjs.zKey.exportSolidityVerifier(fixture.zkeyFile, { groth16: template })
    assert.equal(await verifierSource(fixture.vkey, 'Groth16Verifier'), fromZkey)
    const named = await verifierSource(fixture.vkey, 'Model_abc')
    assert.match(named, /contract Model_abc \{/)
    assert.doesNotMatch(named, /contract Groth16Verifier/)
  })

  it('compiles a verifier whose deployed code is what its key compiles to, and not another key\'s', async () => {
    const started = Date.now()
    const compiled = compileVerifier(await verifierSource(fixture.vkey, 'SizeProbe'))
    measured['compile ms (warm solc)'] = String(Date.now() - started)
    measured['verifier runtime bytes'] = String((compiled.deployedBytecode.length - 2) / 2)
    measured['verifier creation bytes'] = String((compiled.bytecode.length - 2) / 2)
    assert.equal(await chain.publicClient.getCode({ address: verifier }), compiled.deployedBytecode, 'the name does not change the code')
    assert.equal(await verifierMatchesKey(chain.publicClient, verifier, fixture.vkey), true)
    const otherKey = structuredClone(fixture.vkey)
    otherKey.IC[1] = fixture.vkey.IC[2]
    assert.equal(await verifierMatchesKey(chain.publicClient, verifier, otherKey), false)
    assert.equal(await verifierMatchesKey(chain.publicClient, registry(), fixture.vkey), false)
  })

  it('builds calldata from the proof JSON equal to snarkjs\'s exportSolidityCallData (pi_b as [c1, c0])', async () => {
    const snarkjs = await loadSnarkjs()
    const text = await snarkjs.groth16.exportSolidityCallData(fixture.proof.proof, fixture.proof.publicSignals)
    const theirs = JSON.parse(`[${text}]`) as [string[], string[][], string[], string[]]
    const toBig = (v: unknown): unknown => Array.isArray(v) ? v.map(toBig) : BigInt(v as string)
    assert.deepEqual(proofCalldata(fixture.proof), toBig(theirs))
    const [, b] = proofCalldata(fixture.proof)
    assert.equal(b[0][0], BigInt(fixture.proof.proof.pi_b[0][1]))
  })

  it('the bare verifier accepts the proof, refuses a tampered one, and answers false when short of gas (why calls go through the registry)', async () => {
    assert.equal(await verifyOnChain(chain.publicClient, verifier, fixture.proof), true)
    assert.equal(await verifyOnChain(chain.publicClient, verifier, tampered(p => { p.publicSignals[2] = '138' })), false)
    const data = encodeFunctionData({ abi: GROTH16_VERIFIER_ABI, functionName: 'verifyProof', args: proofCalldata(fixture.proof) })
    const estimate = await chain.publicClient.estimateGas({ to: verifier, data })
    measured['bare verifier eth_estimateGas'] = String(estimate)
    const { data: answer } = await chain.publicClient.call({ to: verifier, data, gas: estimate })
    assert.equal(BigInt(answer ?? '0x0'), 0n, 'eth_estimateGas settles on a gas limit at which the pairing fails (issue 16)')
    const { data: full } = await chain.publicClient.call({ to: verifier, data, gas: VERIFY_CALL_GAS })
    assert.equal(BigInt(full ?? '0x0'), 1n)
  })

  it('the on-chain verifier and snarkjs\'s groth16.verify agree on the proof and on tampered ones', async () => {
    const snarkjs = await loadSnarkjs()
    const cases: Array<[string, ZkProof]> = [
      ['the proof', fixture.proof],
      ...[0, 1, 2, 3].map((i): [string, ZkProof] => [`signal ${i} + 1`, tampered(p => { p.publicSignals[i] = (BigInt(p.publicSignals[i]) + 1n).toString() })]),
      ['signal 1 + r', tampered(p => { p.publicSignals[1] = (BigInt(p.publicSignals[1]) + BN254_SCALAR_FIELD).toString() })],
      ['A negated', tampered(p => { p.proof.pi_a[1] = (BN254_BASE_FIELD - BigInt(p.proof.pi_a[1])).toString() })],
      ['A and C swapped', tampered(p => { [p.proof.pi_a, p.proof.pi_c] = [p.proof.pi_c, p.proof.pi_a] })],
      ['C off the curve', tampered(p => { p.proof.pi_c[1] = (BigInt(p.proof.pi_c[1]) + 1n).toString() })]
    ]
    for (const [what, proof] of cases) {
      const offChain = await snarkjs.groth16.verify(fixture.vkey, proof.publicSignals, proof.proof).catch(() => false)
      const onChain = await verifyOnChain(chain.publicClient, verifier, proof)
      assert.equal(onChain, offChain, `${what}: on-chain ${String(onChain)}, snarkjs ${String(offChain)}`)
      assert.equal(onChain, what === 'the proof', what)
    }
  })

  it('the ModelRegistry\'s stipend covers what the verifier needs, measured', async () => {
    const data = encodeFunctionData({ abi: GROTH16_VERIFIER_ABI, functionName: 'verifyProof', args: proofCalldata(fixture.proof) })
    const answers = async (gas: bigint): Promise<boolean> => BigInt((await chain.publicClient.call({ to: verifier, data, gas })).data ?? '0x0') === 1n
    // the least transaction gas at which it answers true, by bisection
    let [low, high] = [30_000n, VERIFY_CALL_GAS]
    assert.equal(await answers(high), true)
    while (high - low > 1n) {
      const mid = (low + high) / 2n
      if (await answers(mid)) high = mid
      else low = mid
    }
    const bytes = Buffer.from(data.slice(2), 'hex')
    const zeros = bytes.filter(b => b === 0).length
    const intrinsic = 21_000n + 4n * BigInt(zeros) + 16n * BigInt(bytes.length - zeros)
    const needed = high - intrinsic
    measured['verifier needs gas'] = String(needed)
    const stipend = await chain.publicClient.readContract({ address: registry(), abi: ModelRegistryAbi, functionName: 'ZK_VERIFY_GAS' })
    assert.ok(needed < stipend, `the verifier needs ${needed} gas, ModelRegistry gives it ${stipend}`)
    assert.ok(stipend < needed * 3n / 2n, `ZK_VERIFY_GAS ${stipend} is more than 1.5 × the ${needed} measured: lower it`)
  })

  it('only the model\'s owner registers a verifier, with code and a circuit id in the field; it reads back', async () => {
    const args = [chain.publicClient, registry(), model.modelId] as const
    await assert.rejects(setModelZkVerifier(chain.wallets[STRANGER], ...args, verifier, FIXTURE_CIRCUIT_ID),
      (err: unknown) => err instanceof ModelRegistryError && err.reason === 'NotOwner')
    await assert.rejects(setModelZkVerifier(owner(), ...args, chain.wallets[STRANGER].account.address, FIXTURE_CIRCUIT_ID),
      (err: unknown) => err instanceof ModelRegistryError && err.reason === 'ZkVerifierHasNoCode')
    await assert.rejects(setModelZkVerifier(owner(), ...args, verifier, BN254_SCALAR_FIELD),
      (err: unknown) => err instanceof ModelRegistryError && err.reason === 'ZkCircuitIdOutOfField')
    const unregistered = await ownedManifest(owner().account.address, 'zk-unregistered')
    await assert.rejects(setModelZkVerifier(owner(), chain.publicClient, registry(), unregistered.modelId, verifier, FIXTURE_CIRCUIT_ID),
      (err: unknown) => err instanceof ModelRegistryError && err.reason === 'NotRegistered')
    assert.equal(await readModelZkVerifier(...args), undefined)

    registerReceipt = await setModelZkVerifier(owner(), ...args, verifier, FIXTURE_CIRCUIT_ID)
    measured['setZkVerifier gas'] = String(registerReceipt.gasUsed)
    assert.ok(registerReceipt.gasUsed < REGISTER_GAS_BOUND, `setZkVerifier used ${registerReceipt.gasUsed}`)
    assert.deepEqual(await readModelZkVerifier(...args), { verifier, circuitId: FIXTURE_CIRCUIT_ID })
    const events = await chain.publicClient.getContractEvents({ address: registry(), abi: ModelRegistryAbi, eventName: 'ZkVerifierChanged', fromBlock: registerReceipt.blockNumber, toBlock: registerReceipt.blockNumber, strict: true })
    assert.deepEqual(events.map(e => e.args), [{ modelKey: modelKeyOf(model.modelId), verifier, circuitId: FIXTURE_CIRCUIT_ID }])
  })

  it('verifies a valid proof through the registry, and measures its gas', async () => {
    await checkZkProofOnChain(chain.publicClient, registry(), model.modelId, fixture.proof)
    const data = encodeFunctionData({ abi: ModelRegistryAbi, functionName: 'verifyZkProof', args: [modelKeyOf(model.modelId), ...proofCalldata(fixture.proof)] })
    const account = chain.wallets[STRANGER].account
    const estimate = await chain.publicClient.estimateGas({ account, to: registry(), data })
    // unlike the bare verifier's, the estimate verifies: too little gas reverts instead of answering false
    await chain.publicClient.call({ account, to: registry(), data, gas: estimate })
    const hash = await chain.wallets[STRANGER].sendTransaction({ to: registry(), data, gas: estimate })
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash })
    assert.equal(receipt.status, 'success')
    measured['verifyZkProof tx gas'] = String(receipt.gasUsed)
    measured['verifyZkProof eth_estimateGas'] = String(estimate)
    assert.ok(receipt.gasUsed < VERIFY_TX_GAS_BOUND, `verifyZkProof used ${receipt.gasUsed}`)
  })

  it('reverts InvalidZkProof for a tampered proof or signal', async () => {
    const key = modelKeyOf(model.modelId)
    assert.deepEqual(await rejected(model.modelId, tampered(p => { p.publicSignals[2] = '138' }), 'InvalidZkProof'), [key])
    assert.deepEqual(await rejected(model.modelId, tampered(p => { p.publicSignals[1] = '13' }), 'InvalidZkProof'), [key])
    // a point off the curve: the precompile fails, the verifier answers false
    await rejected(model.modelId, tampered(p => { p.proof.pi_c[0] = (BigInt(p.proof.pi_c[0]) + 1n).toString() }), 'InvalidZkProof')
    // A and C swapped: both on the curve, the pairing does not hold
    await rejected(model.modelId, tampered(p => { [p.proof.pi_a, p.proof.pi_c] = [p.proof.pi_c, p.proof.pi_a] }), 'InvalidZkProof')
    // pi_b's Fp2 halves in snarkjs's order instead of the precompile's
    await rejected(model.modelId, tampered(p => { p.proof.pi_b = p.proof.pi_b.map(([c0, c1], i) => i < 2 ? [c1, c0] : [c0, c1]) }), 'InvalidZkProof')
  })

  it('reverts ZkCircuitMismatch for a model registered with another circuit', async () => {
    const other = await newModel()
    await setModelZkVerifier(owner(), chain.publicClient, registry(), other.modelId, verifier, FIXTURE_CIRCUIT_ID + 1n)
    assert.deepEqual(await rejected(other.modelId, fixture.proof, 'ZkCircuitMismatch'), [FIXTURE_CIRCUIT_ID + 1n, FIXTURE_CIRCUIT_ID])
  })

  it('reverts ZkSignalOutOfField for a public signal of r or more (which the bare verifier only answers false to)', async () => {
    const outside = tampered(p => { p.publicSignals[2] = (BigInt(p.publicSignals[2]) + BN254_SCALAR_FIELD).toString() })
    assert.equal(await verifyOnChain(chain.publicClient, verifier, outside), false)
    assert.deepEqual(await rejected(model.modelId, outside, 'ZkSignalOutOfField'), [2n, BigInt(fixture.proof.publicSignals[2]) + BN254_SCALAR_FIELD])
    // the circuit id plus r: the field check comes first, not a circuit mismatch
    await rejected(model.modelId, tampered(p => { p.publicSignals[0] = (FIXTURE_CIRCUIT_ID + BN254_SCALAR_FIELD).toString() }), 'ZkSignalOutOfField')
    await rejected(model.modelId, tampered(p => { p.publicSignals[1] = ((1n << 256n) - 1n).toString() }), 'ZkSignalOutOfField')
  })

  it('reverts ZkVerifierNotRegistered for a model without a verifier, or whose owner removed it', async () => {
    const bare = await newModel()
    assert.deepEqual(await rejected(bare.modelId, fixture.proof, 'ZkVerifierNotRegistered'), [modelKeyOf(bare.modelId)])
    const unknown = await ownedManifest(owner().account.address, 'zk-never-registered')
    await rejected(unknown.modelId, fixture.proof, 'ZkVerifierNotRegistered')
    await setModelZkVerifier(owner(), chain.publicClient, registry(), bare.modelId, verifier, FIXTURE_CIRCUIT_ID)
    await checkZkProofOnChain(chain.publicClient, registry(), bare.modelId, fixture.proof)
    await setModelZkVerifier(owner(), chain.publicClient, registry(), bare.modelId, zeroAddress, 0n)
    assert.equal(await readModelZkVerifier(chain.publicClient, registry(), bare.modelId), undefined)
    await rejected(bare.modelId, fixture.proof, 'ZkVerifierNotRegistered')
  })

  it('reverts ZkVerifierOutOfGas, not InvalidZkProof, when a valid proof is sent with too little gas', async () => {
    const data = encodeFunctionData({ abi: ModelRegistryAbi, functionName: 'verifyZkProof', args: [modelKeyOf(model.modelId), ...proofCalldata(fixture.proof)] })
    // an eth_call with a gas limit (readContract takes none): decode its revert data by hand
    const failure = await chain.publicClient.call({ to: registry(), data, gas: 200_000n }).then(() => undefined, (err: unknown) => err)
    assert.ok(failure instanceof BaseError, 'a call with 200,000 gas must revert')
    // the node's error (viem's RpcRequestError) carries the revert data
    const withData = failure.walk(e => typeof (e as { data?: unknown }).data === 'string')
    const revertData = (withData as { data?: unknown } | null)?.data
    assert.ok(typeof revertData === 'string' && revertData.startsWith('0x'), failure.message)
    const decoded = decodeErrorResult({ abi: ModelRegistryAbi, data: revertData as `0x${string}` })
    assert.equal(decoded.errorName, 'ZkVerifierOutOfGas')
    assert.equal(decodeErrorResult({ abi: ZK_PROOF_ERRORS_ABI, data: revertData as `0x${string}` }).errorName, 'ZkVerifierOutOfGas')
    assert.deepEqual(ZK_PROOF_ERRORS_ABI.map(e => e.type === 'error' ? e.name : '').sort(), [...ZK_ON_CHAIN_REJECTIONS].sort())
    const [gasLeft, gasNeeded] = decoded.args as readonly [bigint, bigint]
    assert.ok(gasLeft < gasNeeded, `${gasLeft} left, ${gasNeeded} needed`)
  })

  it('refuses malformed proofs and keys off-chain with a typed error', async () => {
    const refusesProof = (p: ZkProof): void => assert.throws(() => proofCalldata(p), ZkProofFormatError)
    refusesProof(tampered(p => { p.publicSignals.pop() }))
    refusesProof(tampered(p => { p.publicSignals[0] = '0x12' }))
    refusesProof(tampered(p => { p.publicSignals[0] = (1n << 256n).toString() }))
    refusesProof(tampered(p => { p.proof.pi_a[2] = '0' }))
    refusesProof(tampered(p => { p.proof.pi_b[2] = ['0', '1'] }))
    refusesProof(tampered(p => { p.proof.protocol = 'plonk' }))
    const refusesKey = async (edit: (k: typeof fixture.vkey) => void, name = 'V'): Promise<void> => {
      const key = structuredClone(fixture.vkey)
      edit(key)
      await assert.rejects(verifierSource(key, name), ZkVerifierBuildError)
    }
    // the key's numbers are pasted into Solidity source: nothing but a field element gets through
    await refusesKey(k => { k.IC[0][0] = '1; } contract Evil { function f() public {} //' })
    await refusesKey(k => { k.vk_delta_2[0][1] = '21888242871839275222246405745257275088696311157297823662689037894645226208583' })
    await refusesKey(k => { k.nPublic = 2; k.IC.pop() })
    await refusesKey(k => { k.protocol = 'plonk' })
    await refusesKey(() => {}, 'Evil { }\ncontract X')
  })
})
