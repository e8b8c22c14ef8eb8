/**
 * Paid certificates on anvil: the requester's deposit pays the task's fee when its certificate is
 * accepted, split to the wei between the model owner, the treasury and the signers (claimed per
 * epoch, pro rata to stake, non-signers excluded); reputation counts signed and missed
 * certificates; every bad input reverts with its named error and moves no balance; a requester
 * that cannot pay is recorded in default; the ERC-20 path and a fee-0 task.
 */
import assert from 'node:assert/strict'
import { decodeEventLog, hexToBytes, parseEventLogs, type TransactionReceipt } from 'viem'
import { generateBlsSecretKey } from '../consensus/index.js'
import {
  DeployError, TaskManagerAbi, TestTokenAbi, TestTokenBytecode, certificateCalldata, claimRewards, deployParameters, deployPoi, deposit,
  readCredit, readOperatorSet, readPendingRewards, readReputation, readVault, registerModel, requestWithdrawal, requiredTaskFee, rewardClaims,
  submitCertificate, withdraw, withdrawCredit, type CertificateCalldata, type DeployPoiParameters, type OnChainOperatorSet
} from '../contracts/index.js'
import { taskIdOf, type TaskAnnouncement } from '../protocols/wire/index.js'
import { ownedManifest, type OwnedManifest } from './helpers/model-manifests.js'
import { ETHER } from './consensus-fixtures.js'
import {
  chainNowMs, expectRevert, makeCertificate, nextEpoch, paidTask, registerAll, resultOf, startPoiChain, type PoiChain, type Wallet
} from './helpers/poi-chain.js'

const CHAIN_TIMEOUT_MS = 60_000
const EPOCH_SECONDS = 100n
/** 105 ether in all; 10 ether (operator 0) can stay out and leave 95 > 2/3. */
const STAKES = [10n, 20n, 30n, 45n].map(s => s * ETHER)
const TOTAL_STAKE = STAKES.reduce((a, b) => a + b, 0n)
const REWARD_SCALE = 10n ** 27n
const BPS = 10_000n
/** EIP-170: the most runtime code a contract may have. */
const MAX_CODE_BYTES = 24_576
/**
 * Room the TaskManager's runtime code keeps below MAX_CODE_BYTES for the zk-result path the next
 * issue adds to it (verifier per model, proof and public signals, the prover's pay): what moving
 * setParameter into the TaskManagerGovernance library bought.
 */
const MIN_HEADROOM_BYTES = 3 * 1024
const MODEL_FEE = 3n * 10n ** 14n
/** The paid model: a real manifest naming the OWNER account (set in before()). */
let MODEL: OwnedManifest
/** anvil accounts: 0 deploys (treasury), 1..4 operators, 6 model owner, 7 and 8 requesters, 9 submits. */
const OWNER = 6
const REQUESTER = 8
const BROKE_REQUESTER = 7
const SUBMITTER = 9

type Split = { charged: bigint, owner: bigint, protocol: bigint, signers: bigint, increment: bigint }

/** The contract's split, recomputed: model fee first, protocolFeeBps of the rest, the remainder per unit of signed stake. */
function split (charged: bigint, modelFee: bigint, protocolFeeBps: bigint, signedStake: bigint): Split {
  const owner = charged < modelFee ? charged : modelFee
  const protocol = (charged - owner) * protocolFeeBps / BPS
  const signers = charged - owner - protocol
  return { charged, owner, protocol, signers, increment: signers * REWARD_SCALE / signedStake }
}

function gasCost (receipt: TransactionReceipt): bigint {
  return receipt.gasUsed * receipt.effectiveGasPrice
}

/** Everything a bad input must leave unchanged. */
async function balances (chain: PoiChain, taskManager: `0x${string}`, operators: readonly `0x${string}`[]): Promise<unknown[]> {
  const reads: Array<Promise<unknown>> = [
    readVault(chain.publicClient, taskManager, chain.wallets[REQUESTER].account.address),
    readCredit(chain.publicClient, taskManager, chain.wallets[OWNER].account.address),
    readCredit(chain.publicClient, taskManager, chain.wallets[0].account.address),
    chain.publicClient.getBalance({ address: taskManager })
  ]
  for (const op of operators) reads.push(readPendingRewards(chain.publicClient, chain.deployment, op, [1n]))
  return await Promise.all(reads)
}

describe('payments: paid certificates in ETH', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  const keys = STAKES.map(() => generateBlsSecretKey())
  let chain: PoiChain
  let set: OnChainOperatorSet
  let submitter: Wallet
  const tm = (): `0x${string}` => chain.deployment.taskManager
  const operator = (i: number): `0x${string}` => set.operators[i].address
  const simulate = async (args: CertificateCalldata, address = tm()): Promise<boolean> =>
    (await chain.publicClient.simulateContract({ account: submitter.account, address, abi: TaskManagerAbi, functionName: 'submitCertificate', args })).result
  /** A certificate of epoch 1 by `signers` over `task`. */
  const certify = async (task: TaskAnnouncement, signers: number[]): Promise<TransactionReceipt> => {
    const qc = makeCertificate(set, keys, signers, resultOf(chain, task, 'paid', 'out'))
    const { accepted, receipt } = await submitCertificate(submitter, chain.publicClient, tm(), qc, set, task)
    assert.equal(accepted, true)
    return receipt
  }
  const pending = async (i: number): Promise<bigint> => await readPendingRewards(chain.publicClient, chain.deployment, operator(i), [1n])

  before(async () => {
    chain = await startPoiChain({ epochDuration: EPOCH_SECONDS })
    MODEL = await ownedManifest(chain.wallets[OWNER].account.address, 'paid-model')
    submitter = chain.wallets[SUBMITTER]
    await registerAll(chain, keys, STAKES)
    await nextEpoch(chain)
    set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
    await registerModel(chain.wallets[OWNER], chain.publicClient, chain.deployment.modelRegistry, MODEL.modelId, MODEL.block, MODEL_FEE)
    await deposit(chain.wallets[REQUESTER], chain.publicClient, tm(), ETHER)
  })
  after(async () => { await chain?.stop() })

  it('fits the TaskManager (vault included) under the 24 KiB code limit, with 3 KiB to spare', async () => {
    const code = await chain.publicClient.getCode({ address: tm() })
    const bytes = ((code?.length ?? 2) - 2) / 2
    assert.ok(bytes > 0 && bytes <= MAX_CODE_BYTES - MIN_HEADROOM_BYTES, `TaskManager runtime code is ${bytes} bytes: ${MAX_CODE_BYTES - bytes} of headroom, under ${MIN_HEADROOM_BYTES}`)
  })

  it('splits a paid certificate to the wei: owner, treasury, and each signer\'s claim its stake share', async () => {
    // rest = 4.2e14: the treasury's 5 % is 2.1e13 and the signers' 3.99e14 divides by 105 ether per 1e27
    const rest = 42n * 10n ** 13n
    const fee = MODEL_FEE + rest
    const task = await paidTask(chain, 'split', { modelId: MODEL.modelId, fee, requester: REQUESTER })
    const vaultBefore = await readVault(chain.publicClient, tm(), chain.wallets[REQUESTER].account.address)
    const receipt = await certify(task, [0, 1, 2, 3])

    const expected = split(fee, MODEL_FEE, BigInt(chain.params.protocolFeeBps), TOTAL_STAKE)
    assert.equal(expected.protocol, 21n * 10n ** 12n)
    assert.equal(expected.signers, 399n * 10n ** 12n)
    const [charged] = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'TaskCharged' })
    assert.deepEqual(charged.args, {
      taskId: `0x${Buffer.from(taskIdOf(task, tm())).toString('hex')}`, requester: chain.wallets[REQUESTER].account.address, charged: fee,
      modelOwner: chain.wallets[OWNER].account.address, ownerShare: MODEL_FEE, protocolShare: expected.protocol, signersShare: expected.signers
    })
    const vault = await readVault(chain.publicClient, tm(), chain.wallets[REQUESTER].account.address)
    assert.equal(vault.balance, vaultBefore.balance - fee)
    assert.equal(await readCredit(chain.publicClient, tm(), chain.wallets[OWNER].account.address), MODEL_FEE)
    assert.equal(await readCredit(chain.publicClient, tm(), chain.wallets[0].account.address), expected.protocol)

    let claimed = 0n
    for (let i = 0; i < STAKES.length; i++) {
      const share = expected.signers * STAKES[i] / TOTAL_STAKE
      assert.equal(share * TOTAL_STAKE, expected.signers * STAKES[i], 'the fee was chosen so every share is exact')
      assert.equal(await pending(i), share)
      const wallet = chain.wallets[1 + i]
      const before = await chain.publicClient.getBalance({ address: wallet.account.address })
      const { amount, receipt: claim } = await claimRewards(wallet, chain.publicClient, chain.deployment, [1n])
      assert.equal(amount, share)
      assert.equal(await chain.publicClient.getBalance({ address: wallet.account.address }), before + share - gasCost(claim))
      claimed += amount
    }
    assert.equal(claimed, expected.signers)

    // owner and treasury pull their credits
    for (const [index, credit] of [[OWNER, MODEL_FEE], [0, expected.protocol]] as const) {
      const wallet = chain.wallets[index]
      const before = await chain.publicClient.getBalance({ address: wallet.account.address })
      const { amount, receipt: paid } = await withdrawCredit(wallet, chain.publicClient, tm())
      assert.equal(amount, credit)
      assert.equal(await chain.publicClient.getBalance({ address: wallet.account.address }), before + credit - gasCost(paid))
      await expectRevert(withdrawCredit(wallet, chain.publicClient, tm()), 'NoCredit')
    }
  })

  it('gives a non-signer nothing for a certificate it missed and counts the miss in its reputation', async () => {
    const fee = MODEL_FEE + 10n ** 15n
    const before = await Promise.all([0, 1, 2, 3].map(pending))
    const repBefore = await Promise.all([0, 1].map(async i => await readReputation(chain.publicClient, tm(), operator(i), { from: 1n, to: 1n })))
    const receipt = await certify(await paidTask(chain, 'missed', { modelId: MODEL.modelId, fee, requester: REQUESTER }), [1, 2, 3])

    const signedStake = TOTAL_STAKE - STAKES[0]
    const expected = split(fee, MODEL_FEE, BigInt(chain.params.protocolFeeBps), signedStake)
    const [charged] = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'TaskCharged' })
    assert.equal(charged.args.signersShare, expected.signers)
    assert.equal(await pending(0), before[0], 'the non-signer earns nothing from it')
    let paid = 0n
    for (const i of [1, 2, 3]) {
      const earned = STAKES[i] * expected.increment / REWARD_SCALE
      assert.equal(await pending(i), before[i] + earned)
      paid += earned
    }
    assert.ok(paid <= expected.signers && expected.signers - paid < 3n, `rounding keeps at most a wei per signer in the vault (${expected.signers - paid})`)

    const [excluded, missed] = await chain.publicClient.readContract({ address: tm(), abi: TaskManagerAbi, functionName: 'missedIn', args: [1n, operator(0)] })
    assert.equal(excluded, expected.increment)
    assert.equal(missed, 1n)
    const repAfter = await Promise.all([0, 1].map(async i => await readReputation(chain.publicClient, tm(), operator(i), { from: 1n, to: 1n })))
    assert.deepEqual(repAfter[0], { ...repBefore[0], missed: repBefore[0].missed + 1n })
    assert.deepEqual(repAfter[1], { ...repBefore[1], signed: repBefore[1].signed + 1n })
    // the current registration covers epoch 1 only so far: the same figures
    assert.deepEqual(await readReputation(chain.publicClient, tm(), operator(0)), repAfter[0])
  })

  it('refuses every bad input with its named error and moves no balance', async () => {
    const snapshot = async (): Promise<unknown[]> => await balances(chain, tm(), set.operators.map(o => o.address))
    const before = await snapshot()
    const requester = chain.wallets[REQUESTER].account.address
    // the off-chain rule (nodes' admission, the CLI's default fee): the contract must name the same figure below
    const okFee = requiredTaskFee(MODEL_FEE, chain.params.minTaskFee)
    const args = async (task: TaskAnnouncement, label = 'bad'): Promise<CertificateCalldata> =>
      certificateCalldata(makeCertificate(set, keys, [0, 1, 2, 3], resultOf(chain, task, label, 'out')), set, task)

    // signed by another account than the requester it names
    const byOther = await paidTask(chain, 'impostor', { modelId: MODEL.modelId, fee: okFee, requester: 5 })
    const impostor = { ...byOther, requester: Uint8Array.from(hexToBytes(requester)) }
    assert.deepEqual(await expectRevert(simulate(await args(impostor)), 'InvalidRequesterSignature'), [requester])
    // a signature that is not a signature
    const good = await paidTask(chain, 'garbled', { modelId: MODEL.modelId, fee: okFee, requester: REQUESTER })
    await expectRevert(simulate(await args({ ...good, requesterSig: new Uint8Array(65) })), 'InvalidRequesterSignature')

    // replayed on another chain id, and on another TaskManager deployment of this chain
    const otherChain = await paidTask(chain, 'replay', { modelId: MODEL.modelId, fee: okFee, requester: REQUESTER, chainId: 1n })
    const [cert, nonSigners, taskArgs, sig] = await args(otherChain)
    assert.equal((await expectRevert(simulate([cert, nonSigners, taskArgs, sig]), 'TaskIdMismatch'))[0], cert.taskId)
    const second = await deployPoi(chain.wallets[0], chain.publicClient, { epochDuration: EPOCH_SECONDS })
    const forFirst = await paidTask(chain, 'replay-contract', { modelId: MODEL.modelId, fee: okFee, requester: REQUESTER })
    await expectRevert(simulate(await args(forFirst), second.taskManager), 'TaskIdMismatch')
    // signed for the second deployment and replayed here: its id there is not its digest here, and
    // re-labelled with this contract's id its signature no longer verifies
    const forSecond = await paidTask(chain, 'replay-contract', { modelId: MODEL.modelId, fee: okFee, requester: REQUESTER, taskManager: second.taskManager })
    const idThere = { ...resultOf(chain, forSecond, 'bad', 'out'), taskId: taskIdOf(forSecond, second.taskManager) }
    await expectRevert(simulate(certificateCalldata(makeCertificate(set, keys, [0, 1, 2, 3], idThere), set, forSecond)), 'TaskIdMismatch')
    await expectRevert(simulate(await args(forSecond)), 'InvalidRequesterSignature')

    // a fee below the model's fee plus the network minimum
    const cheap = await paidTask(chain, 'cheap', { modelId: MODEL.modelId, fee: okFee - 1n, requester: REQUESTER })
    assert.deepEqual(await expectRevert(simulate(await args(cheap)), 'FeeBelowMinimum'), [okFee - 1n, okFee])

    // a deadline past its settlement window, or too far ahead
    const now = await chainNowMs(chain)
    const late = await paidTask(chain, 'late', { modelId: MODEL.modelId, fee: okFee, requester: REQUESTER, deadline: now - chain.params.settlementWindow * 1000n - 2000n })
    await expectRevert(simulate(await args(late)), 'TaskExpired')
    const far = await paidTask(chain, 'far', { modelId: MODEL.modelId, fee: okFee, requester: REQUESTER, deadline: now + chain.params.maxTaskLife * 1000n + 60_000n })
    await expectRevert(simulate(await args(far)), 'DeadlineTooFar')

    // a task asking a larger quorum than the network's is held to it
    const strict = await paidTask(chain, 'strict', { modelId: MODEL.modelId, fee: okFee, requester: REQUESTER, quorumBps: 10_000 })
    const partial = certificateCalldata(makeCertificate(set, keys, [1, 2, 3], resultOf(chain, strict, 'bad', 'out')), set, strict)
    await expectRevert(simulate(partial), 'InsufficientStake')
    assert.equal(await simulate(await args(strict)), true)

    // a claim with another operator's leaf, and a claim with nothing new
    const [leafOf1] = await rewardClaims(chain.publicClient, chain.deployment, operator(1), [1n])
    assert.deepEqual(await expectRevert(chain.publicClient.simulateContract({
      account: chain.wallets[1].account, address: tm(), abi: TaskManagerAbi, functionName: 'claimRewards', args: [[leafOf1]]
    }), 'NotCallersLeaf'), [1n, 1])
    await claimRewards(chain.wallets[2], chain.publicClient, chain.deployment, [1n])
    const afterClaim = await snapshot()
    await expectRevert(claimRewards(chain.wallets[2], chain.publicClient, chain.deployment, [1n]), 'NothingToClaim')
    assert.deepEqual(await snapshot(), afterClaim, 'a double claim pays nothing')
    // the first claim above was the only change
    assert.deepEqual([before[0], before[1], before[2]], [afterClaim[0], afterClaim[1], afterClaim[2]])

    // a withdrawal before it unlocks
    const wallet = chain.wallets[REQUESTER]
    const { unlocksAt } = await requestWithdrawal(wallet, chain.publicClient, tm(), 10n ** 17n)
    assert.deepEqual(await expectRevert(withdraw(wallet, chain.publicClient, tm()), 'WithdrawalLocked'), [unlocksAt])
    const vault = await readVault(chain.publicClient, tm(), wallet.account.address)
    assert.equal(vault.available, vault.balance - 10n ** 17n)
    await expectRevert(requestWithdrawal(wallet, chain.publicClient, tm(), vault.balance + 1n), 'WithdrawalExceedsBalance')
  })

  it('keeps a pending withdrawal chargeable, then pays it once unlocked', async () => {
    const wallet = chain.wallets[REQUESTER]
    const address = wallet.account.address
    const { unlocksAt } = await requestWithdrawal(wallet, chain.publicClient, tm(), 10n ** 17n)
    const fee = MODEL_FEE + 10n ** 15n
    const before = await readVault(chain.publicClient, tm(), address)
    await certify(await paidTask(chain, 'in flight', { modelId: MODEL.modelId, fee, requester: REQUESTER }), [0, 1, 2, 3])
    assert.equal((await readVault(chain.publicClient, tm(), address)).balance, before.balance - fee, 'a task in flight is still paid')
    const block = await chain.publicClient.getBlock({ blockTag: 'latest' })
    await chain.testClient.increaseTime({ seconds: Number(unlocksAt - block.timestamp) })
    await chain.testClient.mine({ blocks: 1 })
    const ethBefore = await chain.publicClient.getBalance({ address })
    const { amount, receipt } = await withdraw(wallet, chain.publicClient, tm())
    assert.equal(amount, 10n ** 17n)
    assert.equal(await chain.publicClient.getBalance({ address }), ethBefore + amount - gasCost(receipt))
    const after = await readVault(chain.publicClient, tm(), address)
    assert.deepEqual(after.pending, { amount: 0n, unlocksAt: 0n })
    assert.equal(after.balance, before.balance - fee - amount)
  })

  it('accepts the certificate of a requester that cannot pay, takes what there is and records the default', async () => {
    const broke = chain.wallets[BROKE_REQUESTER]
    const deposited = 2n * 10n ** 14n
    await deposit(broke, chain.publicClient, tm(), deposited)
    const fee = MODEL_FEE + 10n ** 15n
    const task = await paidTask(chain, 'default', { modelId: MODEL.modelId, fee, requester: BROKE_REQUESTER })
    const ownerBefore = await readCredit(chain.publicClient, tm(), chain.wallets[OWNER].account.address)
    const receipt = await certify(task, [0, 1, 2, 3])
    const [defaulted] = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'RequesterDefaulted' })
    assert.deepEqual(defaulted.args, {
      requester: broke.account.address, taskId: `0x${Buffer.from(taskIdOf(task, tm())).toString('hex')}`, fee, charged: deposited, shortfall: fee - deposited
    })
    const vault = await readVault(chain.publicClient, tm(), broke.account.address)
    assert.equal(vault.balance, 0n)
    assert.equal(vault.shortfall, fee - deposited)
    // what there was is split the same way: the owner's fee first (here more than the deposit)
    assert.equal(await readCredit(chain.publicClient, tm(), chain.wallets[OWNER].account.address), ownerBefore + deposited)
  })

  it('refuses a deployment whose withdrawal delay does not outlast a task and its settlement', async () => {
    await assert.rejects(deployPoi(chain.wallets[0], chain.publicClient, { maxTaskLife: 3600n, settlementWindow: 3600n, withdrawalDelay: 7200n }),
      (err: unknown) => err instanceof DeployError && /withdrawalDelay \(7200 s\) must exceed maxTaskLife \+ settlementWindow/.test(err.message))
    await assert.rejects(deployPoi(chain.wallets[0], chain.publicClient, { protocolFeeBps: 10_001 }), DeployError)
  })
})

describe('payments: an ERC-20 asset, a fee-0 task, a failing validation registry', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  const keys = STAKES.map(() => generateBlsSecretKey())
  let base: PoiChain
  let chain: PoiChain
  let token: `0x${string}`
  let set: OnChainOperatorSet

  before(async () => {
    base = await startPoiChain({ epochDuration: EPOCH_SECONDS })
    MODEL = await ownedManifest(base.wallets[OWNER].account.address, 'paid-model')
    const hash = await base.wallets[0].deployContract({ abi: TestTokenAbi, bytecode: TestTokenBytecode, args: ['Test', 'TST'] })
    const deployed = await base.publicClient.waitForTransactionReceipt({ hash })
    token = deployed.contractAddress as `0x${string}`
    // a registry that has no validationResponse: every response fails, settlement must not
    const params: DeployPoiParameters = { epochDuration: EPOCH_SECONDS, asset: token, minTaskFee: 0n, validationRegistry: base.deployment.modelRegistry }
    chain = { ...base, deployment: await deployPoi(base.wallets[0], base.publicClient, params), params: deployParameters(params) }
    await registerAll(chain, keys, STAKES)
    await nextEpoch(chain)
    set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
    for (const i of [REQUESTER, OWNER]) {
      await base.wallets[i].writeContract({ address: token, abi: TestTokenAbi, functionName: 'mint', args: [base.wallets[i].account.address, 10n * ETHER] })
    }
    await registerModel(chain.wallets[OWNER], chain.publicClient, chain.deployment.modelRegistry, MODEL.modelId, MODEL.block, MODEL_FEE)
  })
  after(async () => { await base?.stop() })

  const tokenBalance = async (address: `0x${string}`): Promise<bigint> =>
    await chain.publicClient.readContract({ address: token, abi: TestTokenAbi, functionName: 'balanceOf', args: [address] })

  it('deposits, charges, splits and pays out in the token, to the wei', async () => {
    const tm = chain.deployment.taskManager
    assert.equal(chain.deployment.paymentAsset.toLowerCase(), token.toLowerCase())
    await deposit(chain.wallets[REQUESTER], chain.publicClient, tm, ETHER)
    assert.equal(await tokenBalance(tm), ETHER)
    const rest = 42n * 10n ** 13n
    const fee = MODEL_FEE + rest
    const task = await paidTask(chain, 'token', { modelId: MODEL.modelId, fee, requester: REQUESTER, validationRequest: new Uint8Array(32).fill(7) })
    const qc = makeCertificate(set, keys, [0, 1, 2, 3], resultOf(chain, task, 'token', 'out'))
    const { accepted, receipt } = await submitCertificate(chain.wallets[SUBMITTER], chain.publicClient, tm, qc, set, task)
    assert.equal(accepted, true)
    const failed = parseEventLogs({ abi: TaskManagerAbi, logs: receipt.logs, eventName: 'ValidationResponseFailed' })
    assert.equal(failed.length, 1, 'the failed ERC-8004 response is reported, the certificate still accepted')

    const expected = split(fee, MODEL_FEE, BigInt(chain.params.protocolFeeBps), TOTAL_STAKE)
    for (let i = 0; i < STAKES.length; i++) {
      const wallet = chain.wallets[1 + i]
      const before = await tokenBalance(wallet.account.address)
      const { amount } = await claimRewards(wallet, chain.publicClient, chain.deployment, [1n])
      assert.equal(amount, expected.signers * STAKES[i] / TOTAL_STAKE)
      assert.equal(await tokenBalance(wallet.account.address), before + amount)
    }
    const ownerBefore = await tokenBalance(chain.wallets[OWNER].account.address)
    await withdrawCredit(chain.wallets[OWNER], chain.publicClient, tm)
    assert.equal(await tokenBalance(chain.wallets[OWNER].account.address), ownerBefore + MODEL_FEE)
    // the vault holds exactly what it still owes: the deposit left and the treasury's credit
    const vault = await readVault(chain.publicClient, tm, chain.wallets[REQUESTER].account.address)
    assert.equal(await tokenBalance(tm), vault.balance + expected.protocol)
    // ETH sent with a token deposit is refused
    await expectRevert(chain.publicClient.simulateContract({
      account: chain.wallets[REQUESTER].account, address: tm, abi: TaskManagerAbi, functionName: 'deposit', args: [1n], value: 1n
    }), 'WrongDepositValue')
  })

  it('accepts a fee-0 task (unregistered model, no network minimum): reputation moves, no money does', async () => {
    const tm = chain.deployment.taskManager
    const task = await paidTask(chain, 'free', { fee: 0n, requester: REQUESTER })
    const vaultBefore = await readVault(chain.publicClient, tm, chain.wallets[REQUESTER].account.address)
    const [indexBefore, certificatesBefore] = await chain.publicClient.readContract({ address: tm, abi: TaskManagerAbi, functionName: 'epochRewards', args: [1n] })
    const qc = makeCertificate(set, keys, [1, 2, 3], resultOf(chain, task, 'free', 'out'))
    const { accepted, receipt } = await submitCertificate(chain.wallets[SUBMITTER], chain.publicClient, tm, qc, set, task)
    assert.equal(accepted, true)
    assert.deepEqual(await readVault(chain.publicClient, tm, chain.wallets[REQUESTER].account.address), vaultBefore)
    const [indexAfter, certificatesAfter] = await chain.publicClient.readContract({ address: tm, abi: TaskManagerAbi, functionName: 'epochRewards', args: [1n] })
    assert.equal(indexAfter, indexBefore)
    assert.equal(certificatesAfter, certificatesBefore + 1n)
    const rep = await readReputation(chain.publicClient, tm, set.operators[0].address)
    assert.deepEqual(rep, { signed: certificatesAfter - 1n, missed: 1n, slashings: 0 })
    const logs = receipt.logs.filter(l => l.address.toLowerCase() === tm.toLowerCase()).map(l => decodeEventLog({ abi: TaskManagerAbi, ...l }).eventName)
    assert.deepEqual(logs, ['CertificateAccepted', 'TaskCharged'])
  })
})
