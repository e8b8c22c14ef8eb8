/**
 * The zk tier's settlement on anvil (issue 16, point 4's second half): a task of tier zk settles
 * on a real Groth16 proof (the verifier fixture's circuit, proved for the task's own input
 * commitment and a chosen prover) and pays the prover the signers' share a certificate would get;
 * every balance is checked to the wei (the requester's deposit, the model owner's, the
 * treasury's and the prover's credits, the prover's withdrawal). A second submission returns
 * false and moves nothing; a tampered proof, a proof of another input, and a proof sent with
 * another payee than it names (a copied proof) revert InvalidZkProof; a replicated task reverts
 * TaskNotZkTier. A task of tier both settles on a certificate and an agreeing proof, splitting
 * the signers' share half and half (the reward index shows the signers' half); a certificate and
 * a proof that disagree revert ZkResultMismatch.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { BaseError, bytesToHex, decodeErrorResult, encodeFunctionData, hexToBytes, parseEventLogs, type Hex } from 'viem'
import { generateBlsSecretKey } from '../consensus/index.js'
import {
  TASK_MANAGER_ZK_ABI, TaskManagerAbi, ZkProofRejectedOnChainError, ZkSettlementRejectedError, deposit, readCredit, readOperatorSet,
  readValidationStatus, readVault, registerAgent, requestValidation, submitCertificateWithProof, submitZkResult, taskArgs, withdrawCredit, zkResultArgs, zkResultHash,
  type OnChainOperatorSet, type ZkProof
} from '../contracts/index.js'
import type { TaskAnnouncement } from '../protocols/wire/index.js'
import { ETHER } from './consensus-fixtures.js'
import type { OwnedManifest } from './helpers/model-manifests.js'
import { currentEpoch, makeCertificate, nextEpoch, paidTask, registerAll, resultOf, startPoiChain, type PoiChain } from './helpers/poi-chain.js'
import { registerZkModel } from './helpers/zk-chain.js'
import { FIXTURE_CIRCUIT_ID, fixtureOutputCommitment, fixtureProof, zkVerifierFixture } from './helpers/zk-verifier-fixture.js'

const CHAIN_TIMEOUT_MS = 120_000
const EPOCH_SECONDS = 100n
/** 105 ether in all; operator 0 (10 ether) never signs, 95 > 2/3. */
const STAKES = [10n, 20n, 30n, 45n].map(s => s * ETHER)
const SIGNERS = [1, 2, 3]
const SIGNED_STAKE = STAKES[1] + STAKES[2] + STAKES[3]
const REWARD_SCALE = 10n ** 27n
const BPS = 10_000n
const MODEL_FEE = 3n * 10n ** 14n
/** Above the least fee, so the prover's share is the larger part and rounding shows. */
const EXTRA_FEE = 7n * 10n ** 13n + 1n
/** anvil accounts: 0 deploys (treasury), 1..4 operators, 5 owns the model, 6 requests, 7 is the prover (payee), 8 submits, 9 copies proofs. */
const OWNER = 5
const REQUESTER = 6
const PROVER = 7
const SUBMITTER = 8
const THIEF = 9
const ACCOUNTS = 10
/** What a zk result may cost (the verifier's ~211,000 with 4 signals, the registry's call, the task's checks, three credits). */
const ZK_RESULT_GAS_BOUND = 420_000n

describe('zk settlement: submitZkResult and submitCertificateWithProof on anvil', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  const keys = STAKES.map(() => generateBlsSecretKey())
  let chain: PoiChain
  let set: OnChainOperatorSet
  let model: OwnedManifest
  let labels = 0
  const measured: Record<string, string> = {}
  const tm = (): `0x${string}` => chain.deployment.taskManager
  const address = (account: number): `0x${string}` => chain.wallets[account].account.address
  const fee = (): bigint => MODEL_FEE + chain.params.minTaskFee + EXTRA_FEE

  /**
   * A signed task of `tier` for the zk model with a fresh random input commitment below the field
   * (its first byte 0x01..0x2f: the wire codec refuses a commitment with a leading zero byte).
   */
  const zkTask = async (tier: 'replicated' | 'zk' | 'both', validationRequest?: Hex): Promise<TaskAnnouncement> => {
    const random = randomBytes(32)
    random[0] = 1 + random[0] % 0x2f
    const inputCommitment = tier === 'replicated' ? new Uint8Array(0) : new Uint8Array(random)
    return await paidTask(chain, `zk-${labels++}`, {
      requester: REQUESTER, modelId: model.modelId, fee: fee(), tier, inputCommitment, ...(validationRequest !== undefined ? { validationRequest: hexToBytes(validationRequest) } : {})
    })
  }
  const commitmentOf = (task: TaskAnnouncement): bigint => BigInt(bytesToHex(task.inputCommitment))
  const proofFor = async (task: TaskAnnouncement, prover = address(PROVER)): Promise<ZkProof> => await fixtureProof(commitmentOf(task), prover)
  const outputRef = (): Hex => bytesToHex(randomBytes(32))

  /** The balances a settlement moves. */
  const balances = async (): Promise<Record<string, bigint>> => ({
    requester: (await readVault(chain.publicClient, tm(), address(REQUESTER))).balance,
    owner: await readCredit(chain.publicClient, tm(), address(OWNER)),
    treasury: await readCredit(chain.publicClient, tm(), address(0)),
    prover: await readCredit(chain.publicClient, tm(), address(PROVER)),
    submitter: await readCredit(chain.publicClient, tm(), address(SUBMITTER)),
    index: (await chain.publicClient.readContract({ address: tm(), abi: TaskManagerAbi, functionName: 'epochRewards', args: [set.epoch] }))[0]
  })

  /** `action` must fail with the proof rejected for `reason`. */
  const proofRejected = async (action: Promise<unknown>, reason: string): Promise<void> => {
    await assert.rejects(action, (err: unknown) => {
      assert.ok(err instanceof ZkProofRejectedOnChainError, `expected ZkProofRejectedOnChainError(${reason}), got ${String(err)}`)
      assert.equal(err.reason, reason, err.message)
      return true
    })
  }
  /** `action` must fail with the TaskManager's `reason`; its arguments. */
  const settlementRejected = async (action: Promise<unknown>, reason: string): Promise<readonly unknown[]> => {
    let args: readonly unknown[] = []
    await assert.rejects(action, (err: unknown) => {
      assert.ok(err instanceof ZkSettlementRejectedError, `expected ZkSettlementRejectedError(${reason}), got ${String(err)}`)
      assert.equal(err.reason, reason, err.message)
      args = err.args
      return true
    })
    return args
  }

  before(async () => {
    await zkVerifierFixture()
    chain = await startPoiChain({ epochDuration: EPOCH_SECONDS }, { accounts: ACCOUNTS })
    await registerAll(chain, keys, STAKES)
    await nextEpoch(chain)
    set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
    const { vkey } = await zkVerifierFixture()
    ;({ model } = await registerZkModel(chain, { owner: OWNER, name: 'zk-settlement', fee: MODEL_FEE, vkey, circuitId: FIXTURE_CIRCUIT_ID }))
    await deposit(chain.wallets[REQUESTER], chain.publicClient, tm(), ETHER)
  })

  after(async () => {
    await chain?.stop()
    // fullProve built snarkjs's curve on globalThis; its worker threads keep the process alive
    await (globalThis as { curve_bn128?: { terminate: () => Promise<void> } }).curve_bn128?.terminate()
    if (Object.keys(measured).length > 0) console.log('      measured: ' + Object.entries(measured).map(([k, v]) => `${k} ${v}`).join(', '))
  })

  let settled: { task: TaskAnnouncement, proof: ZkProof, ref: Hex }

  it('settles a zk task on its proof: the result is stored, and every balance moves to the wei, the prover paid', async () => {
    const task = await zkTask('zk')
    const proof = await proofFor(task)
    const ref = outputRef()
    const before = await balances()
    const { accepted, receipt } = await submitZkResult(chain.wallets[SUBMITTER], chain.publicClient, tm(), task, proof, { outputRef: ref, prover: address(PROVER) })
    assert.equal(accepted, true)
    measured['submitZkResult gas'] = String(receipt.gasUsed)
    assert.ok(receipt.gasUsed < ZK_RESULT_GAS_BOUND, `submitZkResult used ${receipt.gasUsed}`)

    const rest = fee() - MODEL_FEE
    const protocol = rest * BigInt(chain.params.protocolFeeBps) / BPS
    const after = await balances()
    assert.equal(after.requester, before.requester - fee())
    assert.equal(after.owner - before.owner, MODEL_FEE)
    assert.equal(after.treasury - before.treasury, protocol)
    assert.equal(after.prover - before.prover, rest - protocol)
    assert.equal(after.submitter, before.submitter, 'the submitter is not the payee')
    assert.equal(after.index, before.index, 'no signers: the reward index does not move')

    const output = fixtureOutputCommitment(commitmentOf(task))
    const taskId = (parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'ZkResultAccepted' }))[0]?.args.taskId
    assert.ok(taskId !== undefined, 'ZkResultAccepted emitted')
    const events = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: ['ZkResultAccepted', 'ProverPaid', 'TaskCharged'] })
    assert.deepEqual(events.map(e => e.eventName), ['ZkResultAccepted', 'TaskCharged', 'ProverPaid'])
    assert.deepEqual(events[0].args, { taskId, outputCommitment: output, outputRef: ref, prover: address(PROVER), submitter: address(SUBMITTER) })
    assert.deepEqual(events[2].args, { taskId, prover: address(PROVER), amount: rest - protocol })
    const epoch = await currentEpoch(chain)
    const read = async (functionName: 'isSettled' | 'hasResult', result?: { resultHash: Hex, outputRef: Hex, epoch: bigint }): Promise<boolean> =>
      result === undefined
        ? await chain.publicClient.readContract({ address: tm(), abi: TaskManagerAbi, functionName: 'isSettled', args: [taskId] })
        : await chain.publicClient.readContract({ address: tm(), abi: TaskManagerAbi, functionName: 'hasResult', args: [taskId, result] })
    assert.equal(await read('isSettled'), true)
    assert.equal(await read('hasResult', { resultHash: zkResultHash(output), outputRef: ref, epoch }), true)
    assert.equal(await read('hasResult', { resultHash: zkResultHash(output + 1n), outputRef: ref, epoch }), false)

    // the prover withdraws exactly its credit
    const ethBefore = await chain.publicClient.getBalance({ address: address(PROVER) })
    const { amount, receipt: withdrawal } = await withdrawCredit(chain.wallets[PROVER], chain.publicClient, tm())
    assert.equal(amount, after.prover)
    const ethAfter = await chain.publicClient.getBalance({ address: address(PROVER) })
    assert.equal(ethAfter, ethBefore + amount - withdrawal.gasUsed * withdrawal.effectiveGasPrice)
    assert.equal(await readCredit(chain.publicClient, tm(), address(PROVER)), 0n)
    settled = { task, proof, ref }
  })

  it('the same result again returns false and moves nothing (racing provers)', async () => {
    const before = await balances()
    const { accepted } = await submitZkResult(chain.wallets[SUBMITTER], chain.publicClient, tm(), settled.task, settled.proof, { outputRef: settled.ref, prover: address(PROVER) })
    assert.equal(accepted, false)
    assert.deepEqual(await balances(), before)
  })

  it('reverts InvalidZkProof for a tampered proof, a proof of another input, and a copied proof claiming another payee', async () => {
    const task = await zkTask('zk')
    const proof = await proofFor(task)
    const options = { outputRef: outputRef(), prover: address(PROVER) }
    const before = await balances()
    const tampered = structuredClone(proof)
    tampered.proof.pi_a[1] = (BigInt(tampered.proof.pi_a[1]) + 1n).toString()
    await proofRejected(submitZkResult(chain.wallets[SUBMITTER], chain.publicClient, tm(), task, tampered, options), 'InvalidZkProof')
    const otherOutput = structuredClone(proof)
    otherOutput.publicSignals[2] = (BigInt(otherOutput.publicSignals[2]) + 1n).toString()
    await proofRejected(submitZkResult(chain.wallets[SUBMITTER], chain.publicClient, tm(), task, otherOutput, options), 'InvalidZkProof')
    // a valid proof, but of another task's input commitment
    const other = await zkTask('zk')
    await proofRejected(submitZkResult(chain.wallets[SUBMITTER], chain.publicClient, tm(), task, await proofFor(other), options), 'InvalidZkProof')
    // front-running: the proof copied from the mempool, sent naming the copier as the payee
    await proofRejected(submitZkResult(chain.wallets[THIEF], chain.publicClient, tm(), task, proof, { ...options, prover: address(THIEF) }), 'InvalidZkProof')
    assert.deepEqual(await balances(), before)
    // the copier may still send it for the prover it names: the prover is paid, not the sender
    const { accepted } = await submitZkResult(chain.wallets[THIEF], chain.publicClient, tm(), task, proof, options)
    assert.equal(accepted, true)
    assert.equal(await readCredit(chain.publicClient, tm(), address(THIEF)), 0n)
    assert.ok((await readCredit(chain.publicClient, tm(), address(PROVER))) > before.prover)
  })

  it('with too little gas reverts ZkVerifierOutOfGas, not InvalidZkProof; eth_estimateGas gives a limit that verifies', async () => {
    const task = await zkTask('zk')
    const data = encodeFunctionData({
      abi: TaskManagerAbi,
      functionName: 'submitZkResult',
      args: [taskArgs(task), bytesToHex(task.requesterSig), zkResultArgs(await proofFor(task), { outputRef: outputRef(), prover: address(PROVER) })]
    })
    const account = chain.wallets[SUBMITTER].account
    const failure = await chain.publicClient.call({ account, to: tm(), data, gas: 250_000n }).then(() => undefined, (err: unknown) => err)
    assert.ok(failure instanceof BaseError, 'a call with 250,000 gas must revert')
    const revertData = (failure.walk(e => typeof (e as { data?: unknown }).data === 'string') as { data?: unknown } | null)?.data
    assert.ok(typeof revertData === 'string' && revertData.startsWith('0x'), failure.message)
    assert.equal(decodeErrorResult({ abi: TASK_MANAGER_ZK_ABI, data: revertData as Hex }).errorName, 'ZkVerifierOutOfGas')
    const estimate = await chain.publicClient.estimateGas({ account, to: tm(), data })
    measured['submitZkResult eth_estimateGas'] = String(estimate)
    const hash = await chain.wallets[SUBMITTER].sendTransaction({ to: tm(), data, gas: estimate })
    assert.equal((await chain.publicClient.waitForTransactionReceipt({ hash })).status, 'success')
  })

  it('refuses a proof for a replicated task (TaskNotZkTier) and for a task of tier both without its certificate (WrongProofTier)', async () => {
    const replicated = await zkTask('replicated')
    const proof = await fixtureProof(0n, address(PROVER))
    const options = { outputRef: outputRef(), prover: address(PROVER) }
    const [, tier] = await settlementRejected(submitZkResult(chain.wallets[SUBMITTER], chain.publicClient, tm(), replicated, proof, options), 'TaskNotZkTier')
    assert.equal(tier, 0)
    const both = await zkTask('both')
    await settlementRejected(submitZkResult(chain.wallets[SUBMITTER], chain.publicClient, tm(), both, await proofFor(both), options), 'WrongProofTier')
  })

  it('settles a task of tier both on a certificate and an agreeing proof, the signers\' share split half and half', async () => {
    const task = await zkTask('both')
    const proof = await proofFor(task)
    const output = fixtureOutputCommitment(commitmentOf(task))
    const result = { ...resultOf(chain, task, `both-${labels}`, 'out'), resultHash: hexToBytes(zkResultHash(output)) }
    const qc = makeCertificate(set, keys, SIGNERS, result)
    const before = await balances()
    const { accepted, receipt } = await submitCertificateWithProof(chain.wallets[SUBMITTER], chain.publicClient, tm(), qc, set, task, proof, {
      outputRef: bytesToHex(result.outputRef), prover: address(PROVER)
    })
    assert.equal(accepted, true)
    measured['submitCertificateWithProof gas (1 non-signer)'] = String(receipt.gasUsed)

    const rest = fee() - MODEL_FEE
    const protocol = rest * BigInt(chain.params.protocolFeeBps) / BPS
    const signersAndProver = rest - protocol
    const proverShare = signersAndProver / 2n
    const signersShare = signersAndProver - proverShare
    const after = await balances()
    assert.equal(after.requester, before.requester - fee())
    assert.equal(after.owner - before.owner, MODEL_FEE)
    assert.equal(after.treasury - before.treasury, protocol)
    assert.equal(after.prover - before.prover, proverShare)
    assert.equal(after.index - before.index, signersShare * REWARD_SCALE / SIGNED_STAKE)
    const events = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: ['CertificateAccepted', 'TaskCharged', 'ZkResultAccepted'] })
    // the proof is verified before anything is stored
    assert.deepEqual(events.map(e => e.eventName), ['ZkResultAccepted', 'CertificateAccepted', 'TaskCharged'])
    const charged = events.find(e => e.eventName === 'TaskCharged')
    assert.equal(charged?.eventName === 'TaskCharged' ? charged.args.signersShare : undefined, signersShare)
    const stored = await chain.publicClient.readContract({
      address: tm(), abi: TaskManagerAbi, functionName: 'hasResult', args: [bytesToHex(result.taskId), { resultHash: zkResultHash(output), outputRef: bytesToHex(result.outputRef), epoch: set.epoch }]
    })
    assert.equal(stored, true, 'the certificate\'s result is stored')
  })

  it('answers the task\'s ERC-8004 request: "poi-zk" for a proof alone, "poi-qc" for a certificate with a proof', async () => {
    const agent = await registerAgent(chain.wallets[REQUESTER], chain.publicClient, chain.deployment.identityRegistry, 'ipfs://zk-agent')
    const request = async (): Promise<Hex> => {
      const requestHash = outputRef()
      await requestValidation(chain.wallets[REQUESTER], chain.publicClient, chain.deployment.validationRegistry, { validator: tm(), agentId: agent, requestURI: 'ipfs://zk-request', requestHash })
      return requestHash
    }
    const zkRequest = await request()
    const zk = await zkTask('zk', zkRequest)
    await submitZkResult(chain.wallets[SUBMITTER], chain.publicClient, tm(), zk, await proofFor(zk), { outputRef: outputRef(), prover: address(PROVER) })
    const zkStatus = await readValidationStatus(chain.publicClient, chain.deployment.validationRegistry, zkRequest)
    assert.deepEqual([zkStatus?.response, zkStatus?.responseHash, zkStatus?.tag], [100, zkResultHash(fixtureOutputCommitment(commitmentOf(zk))), 'poi-zk'])

    const bothRequest = await request()
    const both = await zkTask('both', bothRequest)
    const output = zkResultHash(fixtureOutputCommitment(commitmentOf(both)))
    const result = { ...resultOf(chain, both, `both-${labels}`, 'out'), resultHash: hexToBytes(output) }
    await submitCertificateWithProof(chain.wallets[SUBMITTER], chain.publicClient, tm(), makeCertificate(set, keys, SIGNERS, result), set, both, await proofFor(both), {
      outputRef: bytesToHex(result.outputRef), prover: address(PROVER)
    })
    const bothStatus = await readValidationStatus(chain.publicClient, chain.deployment.validationRegistry, bothRequest)
    assert.deepEqual([bothStatus?.response, bothStatus?.responseHash, bothStatus?.tag], [100, output, 'poi-qc'])
  })

  it('reverts ZkResultMismatch when the certificate and the proof disagree, and moves nothing', async () => {
    const task = await zkTask('both')
    const proof = await proofFor(task)
    const qc = makeCertificate(set, keys, SIGNERS, resultOf(chain, task, 'mismatch', 'another result'))
    const before = await balances()
    const [qcResult, proofResult] = await settlementRejected(submitCertificateWithProof(chain.wallets[SUBMITTER], chain.publicClient, tm(), qc, set, task, proof, {
      outputRef: outputRef(), prover: address(PROVER)
    }), 'ZkResultMismatch')
    assert.equal(qcResult, bytesToHex(qc.resultHash))
    assert.equal(proofResult, zkResultHash(fixtureOutputCommitment(commitmentOf(task))))
    assert.deepEqual(await balances(), before)
    // a zk task is not settled this way either
    const zk = await zkTask('zk')
    const zkQc = makeCertificate(set, keys, SIGNERS, resultOf(chain, zk, 'zk-with-qc', 'out'))
    await settlementRejected(submitCertificateWithProof(chain.wallets[SUBMITTER], chain.publicClient, tm(), zkQc, set, zk, await proofFor(zk), {
      outputRef: outputRef(), prover: address(PROVER)
    }), 'WrongProofTier')
    assert.ok(TASK_MANAGER_ZK_ABI.some(item => item.type === 'error' && item.name === 'InvalidZkProof'))
  })
})
