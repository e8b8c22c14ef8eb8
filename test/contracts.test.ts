/**
 * The poi contracts on a real anvil (Prague, EIP-2537 precompiles) through viem: registration with
 * proofs of possession, epoch snapshots and the registry reader, quorum certificates with every
 * rejection path, and equivocation slashing. Keys, attestations and QCs come from the real
 * consensus code, so these tests also pin the off-chain ↔ on-chain encodings.
 */
import assert from 'node:assert/strict'
import { parseEventLogs, type TransactionReceipt } from 'viem'
import {
  TaskAggregation, blsPublicKeyOf, createOperatorSet, g1ToEip2537, generateBlsSecretKey, signAttestation,
  verifyCertificate, verifyEquivocationEvidence, type EquivocationEvidence, type OperatorSet
} from '../consensus/index.js'
import {
  OperatorRegistryAbi, SlashingManagerAbi, TaskManagerAbi, certificateCalldata, evidenceCalldata, readOperatorSet, readReputation,
  merkleProof, readCurrentEpoch, registerOperator, registrationCalldata, submitCertificate, submitEvidence, toOnChainOperatorSet, verifyMerkleProof,
  type CertificateCalldata, type OnChainOperatorSet
} from '../contracts/index.js'
import { ETHER, taskResult } from './consensus-fixtures.js'
import { expectRevert, makeCertificate, nextEpoch, paidTask, registerAll, resultOf, startPoiChain, type PoiChain, type Wallet } from './helpers/poi-chain.js'

const CHAIN_TIMEOUT_MS = 60_000
const EPOCH_SECONDS = 100n

function gasCost (receipt: TransactionReceipt): bigint {
  return receipt.gasUsed * receipt.effectiveGasPrice
}

describe('contracts: OperatorRegistry', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  const MIN_STAKE = ETHER
  const EXIT_DELAY = 50n
  const keys = Array.from({ length: 5 }, () => generateBlsSecretKey())
  let chain: PoiChain
  const registry = (): `0x${string}` => chain.deployment.registry
  const address = (i: number): `0x${string}` => chain.wallets[i].account.address
  const simulateRegister = async (wallet: Wallet, args: ReturnType<typeof registrationCalldata>, value: bigint): Promise<unknown> =>
    await chain.publicClient.simulateContract({
      account: wallet.account, address: registry(), abi: OperatorRegistryAbi, functionName: 'register', args: [args.pubkey, args.proofOfPossession], value
    })
  const readEpoch = async (epoch: bigint): Promise<unknown> =>
    await chain.publicClient.readContract({ address: registry(), abi: OperatorRegistryAbi, functionName: 'getEpoch', args: [epoch] })
  const isRegistered = async (i: number): Promise<boolean> =>
    (await chain.publicClient.readContract({ address: registry(), abi: OperatorRegistryAbi, functionName: 'operators', args: [address(i)] })).registered
  /** Operator 1 (wallet 1, keys[0], 2 ether), as the first test registers it; registered here when a later test runs alone. */
  const withOperator1 = async (): Promise<void> => {
    if (!await isRegistered(1)) await registerOperator(chain.wallets[1], chain.publicClient, registry(), keys[0], 2n * ETHER)
  }

  before(async () => {
    chain = await startPoiChain({ minStake: MIN_STAKE, epochDuration: EPOCH_SECONDS, exitDelay: EXIT_DELAY })
  })
  after(async () => { await chain?.stop() })

  it('accepts a registration whose proof of possession is valid', async () => {
    const receipt = await registerOperator(chain.wallets[1], chain.publicClient, registry(), keys[0], 2n * ETHER)
    const [event] = parseEventLogs({ abi: OperatorRegistryAbi, logs: receipt.logs, eventName: 'OperatorRegistered' })
    assert.equal(event.args.operator, address(1))
    assert.equal(event.args.stake, 2n * ETHER)
    assert.deepEqual(event.args.pubkey, g1ToEip2537(blsPublicKeyOf(keys[0])))
    const operator = await chain.publicClient.readContract({ address: registry(), abi: OperatorRegistryAbi, functionName: 'operators', args: [address(1)] })
    assert.equal(operator.registered, true)
    assert.equal(operator.stake, 2n * ETHER)
    assert.equal(operator.exitRequestedAt, 0n)
  })

  it('rejects a proof of possession made for another address', async () => {
    await expectRevert(simulateRegister(chain.wallets[2], registrationCalldata(keys[1], address(3)), MIN_STAKE), 'InvalidProofOfPossession')
  })

  it('rejects a proof of possession made with another key', async () => {
    const forged = { pubkey: registrationCalldata(keys[1], address(2)).pubkey, proofOfPossession: registrationCalldata(keys[2], address(2)).proofOfPossession }
    await expectRevert(simulateRegister(chain.wallets[2], forged, MIN_STAKE), 'InvalidProofOfPossession')
  })

  it('rejects a stake below the minimum', async () => {
    const args = await expectRevert(simulateRegister(chain.wallets[2], registrationCalldata(keys[1], address(2)), MIN_STAKE - 1n), 'StakeTooLow')
    assert.deepEqual(args, [MIN_STAKE - 1n, MIN_STAKE])
  })

  it('rejects a second registration of the same operator or of the same key', async () => {
    await withOperator1()
    await expectRevert(simulateRegister(chain.wallets[1], registrationCalldata(keys[3], address(1)), MIN_STAKE), 'AlreadyRegistered')
    // keys[0] is taken by operator 1; a valid proof for operator 2 does not make it reusable
    await expectRevert(simulateRegister(chain.wallets[2], registrationCalldata(keys[0], address(2)), MIN_STAKE), 'KeyAlreadyUsed')
  })

  it('snapshots the active set per epoch; later registrations and exits leave old epochs as they were', async () => {
    await withOperator1()
    await registerAll(chain, [keys[1], keys[2]], [3n * ETHER, 4n * ETHER], 2)
    assert.equal((await nextEpoch(chain)).epoch, 1n)
    await expectRevert(chain.publicClient.simulateContract({ account: chain.wallets[0].account, address: registry(), abi: OperatorRegistryAbi, functionName: 'advanceEpoch' }), 'EpochNotOver')

    const epoch1 = await readEpoch(1n)
    const set1 = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
    assert.deepEqual(set1.operators.map(o => o.address), [address(1), address(2), address(3)])
    assert.deepEqual(set1.operators.map(o => o.blsPublicKey), [keys[0], keys[1], keys[2]].map(blsPublicKeyOf))
    assert.deepEqual(set1.operators.map(o => o.stake), [2n * ETHER, 3n * ETHER, 4n * ETHER])
    assert.equal(set1.totalStake, 9n * ETHER)
    assert.deepEqual(set1.domain, { chainId: 31337n, taskManager: chain.deployment.taskManager })
    // the TypeScript tree over the off-chain set has the root the contract computed
    const offChain = toOnChainOperatorSet(createOperatorSet({ epoch: 1n, domain: set1.domain, operators: set1.operators }))
    assert.equal(offChain.root, (epoch1 as { root: string }).root)
    for (const [i, leaf] of set1.leaves.entries()) assert.equal(verifyMerkleProof(set1.root, 3, i, leaf, merkleProof(set1.leaves, i)), true)
    assert.equal(verifyMerkleProof(set1.root, 3, 1, set1.leaves[0], merkleProof(set1.leaves, 0)), false)

    await registerOperator(chain.wallets[4], chain.publicClient, registry(), keys[3], 5n * ETHER)
    await chain.wallets[1].writeContract({ address: registry(), abi: OperatorRegistryAbi, functionName: 'requestExit' })
    assert.equal((await nextEpoch(chain)).epoch, 2n)

    assert.deepEqual(await readEpoch(1n), epoch1)
    assert.deepEqual(await readOperatorSet(chain.publicClient, chain.deployment, 1n), set1)
    const set2 = await readOperatorSet(chain.publicClient, chain.deployment, 2n)
    assert.deepEqual(set2.operators.map(o => o.address), [address(2), address(3), address(4)])
    assert.equal(set2.totalStake, 12n * ETHER)
    await assert.rejects(readOperatorSet(chain.publicClient, chain.deployment, 3n), { name: 'RegistryReadError' })
  })

  it('pays the stake back only after the exit delay and once no certificate of an epoch that counted it can be accepted', async () => {
    const wallet = chain.wallets[2]
    // Operator 2 (3 ether) in the current epoch: registered by the previous test, or here when this one runs alone.
    if (!await isRegistered(2)) {
      await registerOperator(wallet, chain.publicClient, registry(), keys[1], 3n * ETHER)
      await nextEpoch(chain)
    }
    const withdraw = async (): Promise<unknown> => await chain.publicClient.simulateContract({ account: wallet.account, address: registry(), abi: OperatorRegistryAbi, functionName: 'withdraw' })
    await expectRevert(withdraw(), 'NotExiting')
    await chain.publicClient.waitForTransactionReceipt({ hash: await wallet.writeContract({ address: registry(), abi: OperatorRegistryAbi, functionName: 'requestExit' }) })
    await expectRevert(withdraw(), 'ExitNotReady')
    await chain.testClient.increaseTime({ seconds: Number(EXIT_DELAY) })
    await chain.testClient.mine({ blocks: 1 })
    // the current epoch still counts this operator's stake, and a certificate of it is accepted for
    // maxCertificateAge more epochs: the stake stays slashable until then
    const current = await readCurrentEpoch(chain.publicClient, registry())
    const withdrawableFrom = current + 1n + chain.params.maxCertificateAge
    while (await readCurrentEpoch(chain.publicClient, registry()) < withdrawableFrom) {
      assert.deepEqual(await expectRevert(withdraw(), 'StakeStillCertifiable'), [withdrawableFrom])
      await nextEpoch(chain)
    }
    // and evidence against a certificate that landed just before gets exitDelay from then
    await expectRevert(withdraw(), 'ExitNotReady')
    await chain.testClient.increaseTime({ seconds: Number(EXIT_DELAY) })
    await chain.testClient.mine({ blocks: 1 })
    const before = await chain.publicClient.getBalance({ address: address(2) })
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: await wallet.writeContract({ address: registry(), abi: OperatorRegistryAbi, functionName: 'withdraw' }) })
    assert.equal(receipt.status, 'success')
    assert.equal(await chain.publicClient.getBalance({ address: address(2) }), before + 3n * ETHER - gasCost(receipt))
    await expectRevert(withdraw(), 'NotExiting')
  })
})

describe('contracts: TaskManager certificates', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  const STAKES = [10n, 20n, 30n, 15n, 5n, 20n].map(s => s * ETHER) // total 100 ether
  const QUORUM_BPS = 6667
  const keys = STAKES.map(() => generateBlsSecretKey())
  let chain: PoiChain
  let set: OnChainOperatorSet
  let submitter: Wallet
  const taskManager = (): `0x${string}` => chain.deployment.taskManager
  const simulate = async (args: CertificateCalldata): Promise<boolean> =>
    (await chain.publicClient.simulateContract({ account: submitter.account, address: taskManager(), abi: TaskManagerAbi, functionName: 'submitCertificate', args })).result
  const readResult = async (taskId: `0x${string}`): Promise<unknown> =>
    await chain.publicClient.readContract({ address: taskManager(), abi: TaskManagerAbi, functionName: 'getResultCommitment', args: [taskId] })
  const hasResult = async (taskId: `0x${string}`, result: { resultHash: `0x${string}`, outputRef: `0x${string}`, epoch: bigint }): Promise<boolean> =>
    await chain.publicClient.readContract({ address: taskManager(), abi: TaskManagerAbi, functionName: 'hasResult', args: [taskId, result] })
  const calldata = async (signers: number[], label: string, options: Parameters<typeof makeCertificate>[4] = {}): Promise<CertificateCalldata> => {
    const task = await paidTask(chain, label)
    return certificateCalldata(makeCertificate(set, keys, signers, resultOf(chain, task, label, 'out'), options), set, task)
  }

  before(async () => {
    chain = await startPoiChain({ epochDuration: EPOCH_SECONDS, quorumBps: QUORUM_BPS, maxEpochAge: 1n })
    submitter = chain.wallets[9]
    await registerAll(chain, keys, STAKES)
    await nextEpoch(chain)
    set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
  })
  after(async () => { await chain?.stop() })

  it('accepts a QC aggregated from real attestations, stores the result and emits CertificateAccepted', async () => {
    const task = await paidTask(chain, 'accepted')
    const result = resultOf(chain, task, 'accepted', 'out')
    const aggregation = new TaskAggregation({ operatorSet: set, taskId: result.taskId, quorumBps: QUORUM_BPS, deadline: Date.now() + 60_000 })
    for (const index of [0, 1, 2, 3, 4]) {
      aggregation.add(signAttestation(keys[index], set.domain, { ...result, epoch: set.epoch, operatorIndex: index }), Date.now())
    }
    const qc = aggregation.buildCertificate(result.resultHash)
    assert.equal(verifyCertificate(qc, set, { quorumBps: QUORUM_BPS }).ok, true)

    const { accepted, receipt } = await submitCertificate(submitter, chain.publicClient, taskManager(), qc, set, task)
    assert.equal(accepted, true)
    const [event] = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'CertificateAccepted' })
    const [certificate] = certificateCalldata(qc, set, task)
    assert.deepEqual(event.args, {
      taskId: certificate.taskId, resultHash: certificate.resultHash, outputRef: certificate.outputRef, epoch: 1n, signedStake: 80n * ETHER, submitter: submitter.account.address
    })
    assert.ok(await hasResult(certificate.taskId, { resultHash: certificate.resultHash, outputRef: certificate.outputRef, epoch: 1n }))
    assert.ok(!await hasResult(certificate.taskId, { resultHash: certificate.outputRef === certificate.resultHash ? ('0x' + '11'.repeat(32)) as `0x${string}` : certificate.outputRef, outputRef: certificate.outputRef, epoch: 1n }))
    assert.ok(!await hasResult(certificate.taskId, { resultHash: certificate.resultHash, outputRef: certificate.outputRef, epoch: 2n }))
  })

  it('treats a second valid QC for a settled task as a no-op (returns false, no event, result unchanged)', async () => {
    const task = await paidTask(chain, 'settled twice')
    const first = makeCertificate(set, keys, [0, 1, 2, 3, 4], resultOf(chain, task, 'settled twice', 'out'))
    assert.equal((await submitCertificate(submitter, chain.publicClient, taskManager(), first, set, task)).accepted, true)
    const args = certificateCalldata(makeCertificate(set, keys, [1, 2, 3, 5], resultOf(chain, task, 'settled twice', 'other')), set, task)
    const before = await readResult(args[0].taskId)
    assert.equal(await simulate(args), false)
    const hash = await submitter.writeContract({ address: taskManager(), abi: TaskManagerAbi, functionName: 'submitCertificate', args })
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash })
    assert.equal(receipt.status, 'success')
    assert.equal(parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'CertificateAccepted' }).length, 0)
    assert.deepEqual(await readResult(args[0].taskId), before)
  })

  it('accepts QCs where every operator or only a bare quorum signed', async () => {
    assert.equal(await simulate(await calldata([0, 1, 2, 3, 4, 5], 'all')), true)
    assert.equal(await simulate(await calldata([1, 2, 5], 'bare')), true) // 70 of 100
  })

  it('rejects a signer bitmap that does not match the non-signers', async () => {
    const [certificate, nonSigners, ...paid] = await calldata([0, 1, 2, 3], 'bitmap')
    await expectRevert(simulate([certificate, nonSigners.slice(1), ...paid]), 'BitmapMismatch')
    await expectRevert(simulate([certificate, [...nonSigners].reverse(), ...paid]), 'BitmapMismatch')
    await expectRevert(simulate([{ ...certificate, signerBitmap: `${certificate.signerBitmap}00` }, nonSigners, ...paid]), 'BitmapMismatch')
    // bit 6 names an operator the epoch does not have
    await expectRevert(simulate(await calldata([0, 1, 2, 3, 6], 'bitmap', { signatureFrom: [0, 1, 2, 3] })), 'BitmapMismatch')
    await expectRevert(simulate([{ ...certificate, signerBitmap: '0x' }, nonSigners, ...paid]), 'BitmapMismatch')
  })

  it('rejects a forged aggregate signature', async () => {
    await expectRevert(simulate(await calldata([0, 1, 2, 3], 'forged', { signedResult: taskResult('forged', 'something else') })), 'InvalidSignature')
  })

  it('rejects a bitmap that claims a signer whose signature is not in the aggregate', async () => {
    await expectRevert(simulate(await calldata([0, 1, 2, 3, 5], 'missing', { signatureFrom: [0, 1, 2, 3] })), 'InvalidSignature')
  })

  it('rejects too little stake and too few signers', async () => {
    const args = await expectRevert(simulate(await calldata([0, 1, 4], 'light')), 'InsufficientStake')
    assert.deepEqual(args, [35n * ETHER, (6667n * 100n * ETHER + 9999n) / 10000n])
    await expectRevert(simulate(await calldata([2, 5], 'two')), 'TooFewSigners')
  })

  it('rejects a non-signer whose stake, key or proof does not match the epoch root', async () => {
    const [certificate, nonSigners, ...paid] = await calldata([0, 1, 2, 3], 'proof')
    const cheaper = nonSigners.map((s, k) => k === 0 ? { ...s, stake: 1n } : s)
    assert.deepEqual(await expectRevert(simulate([certificate, cheaper, ...paid]), 'InvalidNonSignerProof'), [4])
    const otherKey = nonSigners.map((s, k) => k === 1 ? { ...s, pubkey: nonSigners[0].pubkey } : s)
    assert.deepEqual(await expectRevert(simulate([certificate, otherKey, ...paid]), 'InvalidNonSignerProof'), [5])
    const shortProof = nonSigners.map((s, k) => k === 0 ? { ...s, proof: s.proof.slice(1) } : s)
    await expectRevert(simulate([certificate, shortProof, ...paid]), 'InvalidNonSignerProof')
  })

  it('rejects a QC signed for another chain id or another TaskManager', async () => {
    const task = await paidTask(chain, 'replay')
    const result = resultOf(chain, task, 'replay', 'out')
    const otherChain = makeCertificate(set, keys, [0, 1, 2, 3], result, { domain: { ...set.domain, chainId: 1n } })
    assert.equal(verifyCertificate(otherChain, set, { quorumBps: QUORUM_BPS }).ok, false)
    await expectRevert(simulate(certificateCalldata(otherChain, set, task)), 'InvalidSignature')
    const otherContract = makeCertificate(set, keys, [0, 1, 2, 3], result, { domain: { ...set.domain, taskManager: chain.deployment.registry } })
    await expectRevert(simulate(certificateCalldata(otherContract, set, task)), 'InvalidSignature')
  })

  it('rejects future and stale epochs', async () => {
    const [certificate, nonSigners, ...paid] = await calldata([0, 1, 2, 3], 'epochs')
    assert.deepEqual(await expectRevert(simulate([{ ...certificate, epoch: 2n }, nonSigners, ...paid]), 'FutureEpoch'), [2n, 1n])
    await expectRevert(simulate([{ ...certificate, epoch: 0n }, nonSigners, ...paid]), 'StaleEpoch')
    await nextEpoch(chain)
    assert.equal(await simulate([certificate, nonSigners, ...paid]), true) // epoch 1 is one epoch old: still within maxEpochAge
    await nextEpoch(chain)
    assert.deepEqual(await expectRevert(simulate([certificate, nonSigners, ...paid]), 'StaleEpoch'), [1n, 3n])
  })
})

describe('contracts: SlashingManager', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  const STAKE = 10n * ETHER
  const SLASH_BPS = 5000
  const REPORTER_BPS = 1000
  const keys = Array.from({ length: 4 }, () => generateBlsSecretKey())
  let chain: PoiChain
  let set: OnChainOperatorSet
  let reporter: Wallet
  const slashing = (): `0x${string}` => chain.deployment.slashing

  function equivocation (operatorSet: OperatorSet, index: number, task: string, signedB?: string): EquivocationEvidence {
    const a = taskResult(task, 'first')
    const b = taskResult(task, 'second')
    const sign = (result: ReturnType<typeof taskResult>): ReturnType<typeof signAttestation> =>
      signAttestation(keys[index], operatorSet.domain, { ...result, epoch: operatorSet.epoch, operatorIndex: index })
    const attestationB = sign(b)
    if (signedB !== undefined) attestationB.blsSig = sign(taskResult(task, signedB)).blsSig
    return { taskId: a.taskId, operatorIndex: index, epoch: operatorSet.epoch, a: sign(a), b: attestationB }
  }
  const simulate = async (evidence: ReturnType<typeof evidenceCalldata>): Promise<bigint> =>
    (await chain.publicClient.simulateContract({ account: reporter.account, address: slashing(), abi: SlashingManagerAbi, functionName: 'submitEvidence', args: [evidence] })).result

  before(async () => {
    chain = await startPoiChain({ epochDuration: EPOCH_SECONDS, slashBps: SLASH_BPS, reporterBps: REPORTER_BPS })
    reporter = chain.wallets[9]
    await registerAll(chain, keys, keys.map(() => STAKE))
    await nextEpoch(chain)
    set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
  })
  after(async () => { await chain?.stop() })

  it('slashes valid equivocation evidence once and pays the reporter', async () => {
    const evidence = equivocation(set, 1, 'equivocate')
    assert.equal(verifyEquivocationEvidence(evidence, set), true)
    const before = await chain.publicClient.getBalance({ address: reporter.account.address })
    const { slashed, receipt } = await submitEvidence(reporter, chain.publicClient, slashing(), evidence, set)
    const amount = STAKE * BigInt(SLASH_BPS) / 10_000n
    const reward = amount * BigInt(REPORTER_BPS) / 10_000n
    assert.equal(slashed, amount)
    assert.equal(await chain.publicClient.getBalance({ address: reporter.account.address }), before + reward - gasCost(receipt))
    const [event] = parseEventLogs({ abi: SlashingManagerAbi, logs: receipt.logs, eventName: 'EquivocationSlashed' })
    assert.equal(event.args.operator, set.operators[1].address)
    assert.equal(event.args.amount, amount)
    assert.equal(event.args.reward, reward)
    const operator = await chain.publicClient.readContract({ address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'operators', args: [set.operators[1].address] })
    assert.equal(operator.stake, STAKE - amount)
    // reputation counts the slashing where it happens (the registry), whatever the certificates say
    assert.equal(operator.slashings, 1)
    assert.equal((await readReputation(chain.publicClient, chain.deployment.taskManager, set.operators[1].address)).slashings, 1)
    // the epoch snapshot keeps the stake it was frozen with
    const epoch = await chain.publicClient.readContract({ address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'getEpoch', args: [1n] })
    assert.equal(epoch.totalStake, 4n * STAKE)

    await expectRevert(simulate(evidenceCalldata(evidence, set)), 'AlreadySlashed')
  })

  it('rejects evidence with one invalid signature', async () => {
    assert.deepEqual(await expectRevert(simulate(evidenceCalldata(equivocation(set, 2, 'bad-b', 'third'), set)), 'InvalidSignature'), [1])
    const evidence = evidenceCalldata(equivocation(set, 2, 'bad-a'), set)
    assert.deepEqual(await expectRevert(simulate({ ...evidence, a: { ...evidence.a, signature: evidence.b.signature } }), 'InvalidSignature'), [0])
  })

  it('rejects identical results and operators not proven in the epoch', async () => {
    const evidence = evidenceCalldata(equivocation(set, 3, 'identical'), set)
    await expectRevert(simulate({ ...evidence, b: evidence.a }), 'IdenticalResults')
    await expectRevert(simulate({ ...evidence, a: { ...evidence.a, member: { ...evidence.a.member, stake: evidence.a.member.stake + 1n } } }), 'InvalidOperatorProof')
    await expectRevert(simulate({ ...evidence, b: { ...evidence.b, member: { ...evidence.b.member, index: 2 } } }), 'InvalidOperatorProof')
  })
})
