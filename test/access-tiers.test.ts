/**
 * Model access tiers on anvil, at the contract level (ModelRegistry + TaskManager): the owner sets
 * a tier and its terms, requesters buy a subscription or credits paid to the owner's credit to the
 * wei, the TaskManager checks access again at settlement (at the task's deadline) and takes a
 * credit, and every bad input reverts with its named error and moves nothing. The same tiers
 * through a network of real nodes are in access-network.test.ts. A second, small chain pays in an
 * ERC-20 (TestToken) to show purchases work the same there.
 */
import assert from 'node:assert/strict'
import { bytesToHex, parseEventLogs, type TransactionReceipt } from 'viem'
import { generateBlsSecretKey } from '../consensus/index.js'
import {
  ModelRegistryAbi, ModelRegistryError, TaskManagerAbi, TestTokenAbi, buyModelAccess, modelKeyOf, certificateCalldata, deposit, readAccess, readCredit, readModel, readOperatorSet, registerModel,
  setModelAccessTier, setModelActive, setModelAllowed, submitCertificate, withdrawCredit, type OnChainOperatorSet
} from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { PaymentGate } from '../node/roles/index.js'
import { taskIdOf, type TaskAnnouncement } from '../protocols/wire/index.js'
import { ETHER } from './consensus-fixtures.js'
import { ownedManifest, type OwnedManifest } from './helpers/model-manifests.js'
import { until } from './helpers/wait.js'
import { chainNowMs, expectRevert, makeCertificate, nextEpoch, paidTask, registerAll, resultOf, startPoiChain, type PoiChain, type Wallet } from './helpers/poi-chain.js'

const CHAIN_TIMEOUT_MS = 60_000
const EPOCH_SECONDS = 100n
const STAKES = [10n, 20n, 30n, 45n].map(s => s * ETHER)
/** EIP-170: the most runtime code a contract may have. */
const MAX_CODE_BYTES = 24_576
/** A subscription period: longer than a test task's life (paidTask: 600 s), shorter than maxTaskLife (3600 s). */
const PERIOD = 1_000n
const PERIOD_PRICE = 7n * 10n ** 15n + 3n
const CREDIT_PRICE = 2n * 10n ** 14n + 1n
/** anvil accounts: 0 deploys, 1..4 operators, 5 a stranger, 6 model owner, 7 and 8 requesters, 9 submits. */
const STRANGER = 5
const OWNER = 6
const OTHER = 7
const REQUESTER = 8
const SUBMITTER = 9

/** Awaits `action`, which must fail with the registry's custom error `reason` (a ModelRegistryError from contracts/models.ts, or a raw revert); its arguments. */
async function refused (action: Promise<unknown>, reason: string): Promise<readonly unknown[]> {
  return await expectRevert(action.catch((err: unknown) => {
    if (err instanceof ModelRegistryError) {
      assert.equal(err.reason, reason, err.message)
      throw err.cause
    }
    throw err
  }), reason)
}

function gasCost (receipt: TransactionReceipt): bigint {
  return receipt.gasUsed * receipt.effectiveGasPrice
}

describe('model access tiers on-chain (ModelRegistry, TaskManager settlement)', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  const keys = STAKES.map(() => generateBlsSecretKey())
  let chain: PoiChain
  let set: OnChainOperatorSet
  let submitter: Wallet
  let subscription: OwnedManifest
  let credits: OwnedManifest
  let allowlist: OwnedManifest
  const registry = (): `0x${string}` => chain.deployment.modelRegistry
  const tm = (): `0x${string}` => chain.deployment.taskManager
  const address = (i: number): `0x${string}` => chain.wallets[i].account.address
  const ownerCredit = async (): Promise<bigint> => await readCredit(chain.publicClient, tm(), address(OWNER))
  const certify = async (task: TaskAnnouncement, label: string): Promise<TransactionReceipt> => {
    const { accepted, receipt } = await submitCertificate(submitter, chain.publicClient, tm(), makeCertificate(set, keys, [0, 1, 2, 3], resultOf(chain, task, label, 'out')), set, task)
    assert.equal(accepted, true)
    return receipt
  }
  /** The certificate's simulation must revert with `error` (its arguments returned); nothing is sent. */
  const refusedAtSettlement = async (task: TaskAnnouncement, label: string, error: string): Promise<readonly unknown[]> =>
    await expectRevert(chain.publicClient.simulateContract({
      account: submitter.account, address: tm(), abi: TaskManagerAbi, functionName: 'submitCertificate',
      args: certificateCalldata(makeCertificate(set, keys, [0, 1, 2, 3], resultOf(chain, task, label, 'out')), set, task)
    }), error)
  const fee = (): bigint => chain.params.minTaskFee

  before(async () => {
    chain = await startPoiChain({ epochDuration: EPOCH_SECONDS })
    submitter = chain.wallets[SUBMITTER]
    await registerAll(chain, keys, STAKES)
    await nextEpoch(chain)
    set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
    const owner = chain.wallets[OWNER]
    ;[subscription, credits, allowlist] = await Promise.all(['subscription', 'credits', 'allowlist'].map(async name => await ownedManifest(address(OWNER), name)))
    for (const m of [subscription, credits, allowlist]) await registerModel(owner, chain.publicClient, registry(), m.modelId, m.block, 0n)
    // each test passes alone: the tiers are set here (the tier test sets the subscription's again)
    await setModelAccessTier(owner, chain.publicClient, registry(), subscription.modelId, 'subscription', PERIOD_PRICE, PERIOD)
    await setModelAccessTier(owner, chain.publicClient, registry(), credits.modelId, 'credits', CREDIT_PRICE)
    await setModelAccessTier(owner, chain.publicClient, registry(), allowlist.modelId, 'allowlist', 0n)
    for (const i of [OTHER, REQUESTER]) await deposit(chain.wallets[i], chain.publicClient, tm(), ETHER)
  })
  after(async () => { await chain?.stop() })

  it('keeps the TaskManager under the 24 KiB code limit with the access check and the purchase payments', async () => {
    const code = await chain.publicClient.getCode({ address: tm() })
    const bytes = ((code?.length ?? 2) - 2) / 2
    assert.ok(bytes > 0 && bytes < MAX_CODE_BYTES, `TaskManager runtime code is ${bytes} bytes`)
  })

  it('only the owner sets a tier, with terms that fit it; each change is an event and reads back', async () => {
    const owner = chain.wallets[OWNER]
    const id = subscription.modelId
    const [notOwner] = await refused(setModelAccessTier(chain.wallets[STRANGER], chain.publicClient, registry(), id, 'subscription', PERIOD_PRICE, PERIOD), 'NotOwner')
    assert.equal(notOwner, address(STRANGER))
    await refused(setModelAccessTier(owner, chain.publicClient, registry(), id, 'subscription', PERIOD_PRICE, 0n), 'InvalidTierTerms')
    await refused(setModelAccessTier(owner, chain.publicClient, registry(), id, 'subscription', 0n, PERIOD), 'InvalidTierTerms')
    await refused(setModelAccessTier(owner, chain.publicClient, registry(), id, 'credits', CREDIT_PRICE, PERIOD), 'InvalidTierTerms')
    await refused(setModelAccessTier(owner, chain.publicClient, registry(), id, 'pay-per-use', 0n), 'InvalidTierTerms')
    await expectRevert(chain.publicClient.simulateContract({ account: owner.account, address: registry(), abi: ModelRegistryAbi, functionName: 'setAccessTier', args: [bytesToHex(id), 5, 1n, 0n] }), 'UnknownAccessPolicy')
    // subscription and credits need terms: register and setAccessPolicy do not take them
    await expectRevert(chain.publicClient.simulateContract({ account: owner.account, address: registry(), abi: ModelRegistryAbi, functionName: 'setAccessPolicy', args: [bytesToHex(id), 3] }), 'UnknownAccessPolicy')

    // pay-per-use: the price is the per-task fee
    await setModelAccessTier(owner, chain.publicClient, registry(), id, 'pay-per-use', 5n)
    assert.deepEqual(await readModel(chain.publicClient, registry(), id).then(m => [m?.accessPolicy, m?.fee, m?.price, m?.period]), ['pay-per-use', 5n, 0n, 0n])
    const receipt = await setModelAccessTier(owner, chain.publicClient, registry(), id, 'subscription', PERIOD_PRICE, PERIOD)
    const [changed] = parseEventLogs({ abi: ModelRegistryAbi, eventName: 'ModelAccessTierChanged', logs: receipt.logs })
    assert.deepEqual(changed.args, { modelKey: modelKeyOf(id), tier: 3, price: PERIOD_PRICE, period: PERIOD })
    // access is paid at purchase: the per-task fee is 0 under a prepaid tier
    assert.deepEqual(await readModel(chain.publicClient, registry(), id).then(m => [m?.accessPolicy, m?.fee, m?.price, m?.period]), ['subscription', 0n, PERIOD_PRICE, PERIOD])
  })

  it('refuses purchases of an inactive model, of a tier the model does not offer, of nothing, and with the wrong payment', async () => {
    const requester = chain.wallets[REQUESTER]
    const before = await ownerCredit()
    const [, offered, asked] = await refused(buyModelAccess(requester, chain.publicClient, registry(), subscription.modelId, 'credits', 1n), 'TierNotOffered')
    assert.deepEqual([offered, asked], [3, 4])
    await refused(buyModelAccess(requester, chain.publicClient, registry(), allowlist.modelId, 'subscription', 1n), 'TierNotOffered')
    await refused(buyModelAccess(requester, chain.publicClient, registry(), credits.modelId, 'credits', 0n), 'ZeroUnits')
    const unregistered = await ownedManifest(address(OWNER), 'never-registered')
    await refused(buyModelAccess(requester, chain.publicClient, registry(), unregistered.modelId, 'credits', 1n), 'NotRegistered')
    const [sent, price] = await expectRevert(chain.publicClient.simulateContract({
      account: requester.account, address: registry(), abi: ModelRegistryAbi, functionName: 'buyCredits', args: [bytesToHex(credits.modelId), 2n], value: CREDIT_PRICE
    }), 'WrongDepositValue')
    assert.deepEqual([sent, price], [CREDIT_PRICE, 2n * CREDIT_PRICE])
    await setModelActive(chain.wallets[OWNER], chain.publicClient, registry(), credits.modelId, false)
    await refused(buyModelAccess(requester, chain.publicClient, registry(), credits.modelId, 'credits', 1n), 'ModelInactive')
    await setModelActive(chain.wallets[OWNER], chain.publicClient, registry(), credits.modelId, true)
    // only the registry pays into the vault, only the TaskManager takes credits, the binding is once
    await expectRevert(chain.publicClient.simulateContract({ account: requester.account, address: tm(), abi: TaskManagerAbi, functionName: 'collectAccessPayment', args: [address(OTHER), address(REQUESTER), 1n], value: 1n }), 'NotModelRegistry')
    await expectRevert(chain.publicClient.simulateContract({ account: requester.account, address: registry(), abi: ModelRegistryAbi, functionName: 'useAccess', args: [modelKeyOf(credits.modelId), address(REQUESTER), 0n] }), 'NotTaskManager')
    await expectRevert(chain.publicClient.simulateContract({ account: chain.wallets[0].account, address: registry(), abi: ModelRegistryAbi, functionName: 'bindTaskManager', args: [address(STRANGER)] }), 'TaskManagerAlreadyBound')
    await expectRevert(chain.publicClient.simulateContract({ account: requester.account, address: registry(), abi: ModelRegistryAbi, functionName: 'bindTaskManager', args: [address(STRANGER)] }), 'NotDeployer')
    assert.equal(await ownerCredit(), before, 'no refused purchase paid anything')
  })

  it('subscription: paid to the owner to the wei, extends from the current end, covers tasks whose deadline is before its end, and refuses after it', async () => {
    const requester = chain.wallets[REQUESTER]
    const id = subscription.modelId
    const task = async (label: string, lifeMs = 600_000n): Promise<TaskAnnouncement> =>
      await paidTask(chain, label, { modelId: id, requester: REQUESTER, fee: fee(), deadline: (await chainNowMs(chain)) + lifeMs })
    // never subscribed: the certificate is refused, nothing moves
    const [, who, noneYet] = await refusedAtSettlement(await task('sub-before'), 'sub-before', 'SubscriptionEnded')
    assert.deepEqual([who, noneYet], [address(REQUESTER), 0n])

    const creditBefore = await ownerCredit()
    const ethBefore = await chain.publicClient.getBalance({ address: address(REQUESTER) })
    const bought = await buyModelAccess(requester, chain.publicClient, registry(), id, 'subscription', 2n)
    const block = await chain.publicClient.getBlock({ blockNumber: bought.receipt.blockNumber })
    assert.equal(bought.expiresAt, block.timestamp + 2n * PERIOD)
    assert.equal(bought.paid, 2n * PERIOD_PRICE)
    assert.equal(await ownerCredit() - creditBefore, 2n * PERIOD_PRICE, 'the owner is credited the price × periods at purchase')
    assert.equal(ethBefore - await chain.publicClient.getBalance({ address: address(REQUESTER) }), 2n * PERIOD_PRICE + gasCost(bought.receipt), 'paid from the wallet, not the deposit')
    // a second purchase extends from the current end, not from now
    const again = await buyModelAccess(requester, chain.publicClient, registry(), id, 'subscription', 1n)
    assert.equal(again.expiresAt, bought.expiresAt! + PERIOD)
    const access = await readAccess(chain.publicClient, registry(), id, address(REQUESTER))
    assert.deepEqual([access.tier, access.expiresAt, access.isOwner], ['subscription', again.expiresAt, false])

    // a task whose deadline is before the end settles; the owner gets no per-task fee
    const covered = await task('sub-covered')
    const creditAfterPurchases = await ownerCredit()
    await certify(covered, 'sub-covered')
    assert.equal(await ownerCredit(), creditAfterPurchases)
    // one whose deadline lies after the end is refused with the end and the deadline
    const tooLate = await task('sub-too-late', (again.expiresAt! + 10n) * 1000n - await chainNowMs(chain))
    const [, , end, at] = await refusedAtSettlement(tooLate, 'sub-too-late', 'SubscriptionEnded')
    assert.deepEqual([end, at], [again.expiresAt, tooLate.deadline / 1000n])
    // the chain's clock passes the end: a new task is refused, and the next purchase starts from now
    await chain.testClient.increaseTime({ seconds: Number(3n * PERIOD + 1n) })
    await chain.testClient.mine({ blocks: 1 })
    await refusedAtSettlement(await task('sub-expired'), 'sub-expired', 'SubscriptionEnded')
    assert.equal(await chain.publicClient.readContract({ address: registry(), abi: ModelRegistryAbi, functionName: 'isUsable', args: [bytesToHex(id), address(REQUESTER)] }), false)
    const renewed = await buyModelAccess(requester, chain.publicClient, registry(), id, 'subscription', 1n)
    const renewedAt = (await chain.publicClient.getBlock({ blockNumber: renewed.receipt.blockNumber })).timestamp
    assert.equal(renewed.expiresAt, renewedAt + PERIOD)
    await certify(await task('sub-renewed'), 'sub-renewed')
    // the owner never needs one
    await certify(await paidTask(chain, 'sub-owner', { modelId: id, requester: OWNER, fee: fee() }), 'sub-owner')

    // the owner takes out exactly what the purchases paid
    const owner = chain.wallets[OWNER]
    const ownerEth = await chain.publicClient.getBalance({ address: address(OWNER) })
    const { amount, receipt } = await withdrawCredit(owner, chain.publicClient, tm())
    assert.equal(amount, 4n * PERIOD_PRICE)
    assert.equal(await chain.publicClient.getBalance({ address: address(OWNER) }) - ownerEth + gasCost(receipt), 4n * PERIOD_PRICE)
  })

  it('credits: paid to the owner to the wei; each certified task uses one, and a task with none left is refused', async () => {
    const requester = chain.wallets[REQUESTER]
    const id = credits.modelId
    const task = async (label: string): Promise<TaskAnnouncement> => await paidTask(chain, label, { modelId: id, requester: REQUESTER, fee: fee() })
    const [, noCredits] = await refusedAtSettlement(await task('cr-before'), 'cr-before', 'NoCreditsLeft')
    assert.equal(noCredits, address(REQUESTER))

    const creditBefore = await ownerCredit()
    const bought = await buyModelAccess(requester, chain.publicClient, registry(), id, 'credits', 2n)
    assert.deepEqual([bought.paid, bought.credits], [2n * CREDIT_PRICE, 2n])
    const [event] = parseEventLogs({ abi: ModelRegistryAbi, eventName: 'CreditsPurchased', logs: bought.receipt.logs })
    assert.deepEqual([event.args.requester, event.args.credits, event.args.paid, event.args.balance], [address(REQUESTER), 2n, 2n * CREDIT_PRICE, 2n])
    assert.equal(await ownerCredit() - creditBefore, 2n * CREDIT_PRICE)
    // another requester's credits are its own
    await refusedAtSettlement(await paidTask(chain, 'cr-other', { modelId: id, requester: OTHER, fee: fee() }), 'cr-other', 'NoCreditsLeft')

    const vaultCharge = async (receipt: TransactionReceipt): Promise<bigint> =>
      parseEventLogs({ abi: TaskManagerAbi, eventName: 'TaskCharged', logs: receipt.logs })[0].args.charged
    assert.equal(await vaultCharge(await certify(await task('cr-1'), 'cr-1')), fee(), 'the network fee is still paid from the deposit')
    assert.equal((await readAccess(chain.publicClient, registry(), id, address(REQUESTER))).credits, 1n)
    await certify(await task('cr-2'), 'cr-2')
    assert.equal((await readAccess(chain.publicClient, registry(), id, address(REQUESTER))).credits, 0n)
    await refusedAtSettlement(await task('cr-3'), 'cr-3', 'NoCreditsLeft')
    assert.equal(await chain.publicClient.readContract({ address: registry(), abi: ModelRegistryAbi, functionName: 'hasAccess', args: [bytesToHex(id), address(REQUESTER), BigInt(Math.floor(Date.now() / 1000))] }), false)
  })

  it('full nodes: refuse with the reason at the task\'s deadline, and count the credits their pending tasks hold', async () => {
    // A fresh credits model, so the credits here are this test's alone.
    const owner = chain.wallets[OWNER]
    const model = await ownedManifest(address(OWNER), 'gate-credits')
    await registerModel(owner, chain.publicClient, registry(), model.modelId, model.block, 0n)
    await setModelAccessTier(owner, chain.publicClient, registry(), model.modelId, 'credits', CREDIT_PRICE)
    const node = await ChainClient.connect({ rpcUrl: chain.anvil.rpcUrl, ...chain.deployment })
    const id = bytesToHex(model.modelId)
    const requester = address(OTHER)
    assert.match(await node.modelRefusal(model.modelId, requester) ?? '', new RegExp(`requester ${requester} has no credits left for model ${id} \\(buy some with poi model buy ${id} --credits <n>\\)`))
    assert.equal(await node.modelRefusal(model.modelId, address(OWNER)), undefined, 'the owner needs none')
    // subscription: none, then one that ends before a late deadline
    const sub = subscription.modelId
    assert.match(await node.modelRefusal(sub, requester) ?? '', /has no subscription to model 0x[0-9a-f]+ \(buy one with poi model buy/)
    const { expiresAt } = await buyModelAccess(chain.wallets[OTHER], chain.publicClient, registry(), sub, 'subscription', 1n)
    await until(async () => await node.modelRefusal(sub, requester, Number(expiresAt!) * 1000 - 1) === undefined, 10_000, 'the node seeing the subscription')
    const late = await node.modelRefusal(sub, requester, Number(expiresAt!) * 1000)
    assert.match(late ?? '', new RegExp(`subscription to model 0x[0-9a-f]+ ${expiresAt! * 1000n <= BigInt(Date.now()) ? 'ended' : 'ends'} at ${new Date(Number(expiresAt!) * 1000).toISOString()}`))
    // allowlist
    assert.match(await node.modelRefusal(allowlist.modelId, address(STRANGER)) ?? '', /requester 0x[0-9a-fA-F]+ is not on the allowlist of model/)

    // one credit: a node admits one task at a time for it
    await buyModelAccess(chain.wallets[OTHER], chain.publicClient, registry(), model.modelId, 'credits', 1n)
    await until(async () => await node.modelRefusal(model.modelId, requester) === undefined, 10_000, 'the node seeing the credit')
    const gate = new PaymentGate(node)
    const [a, b] = await Promise.all(['gate-a', 'gate-b'].map(async label => await paidTask(chain, label, { modelId: model.modelId, requester: OTHER, fee: fee() })))
    const idOf = (t: TaskAnnouncement): Uint8Array => taskIdOf(t, tm())
    // a burst: both asked at once, one admitted (whichever finishes its reads first)
    const verdicts = await Promise.all([gate.admit(idOf(a), a), gate.admit(idOf(b), b)])
    assert.equal(verdicts.filter(v => v === undefined).length, 1, `exactly one admitted: ${JSON.stringify(verdicts)}`)
    const [admitted, held, heldVerdict] = verdicts[0] === undefined ? [{ task: a, label: 'gate-a' }, b, verdicts[1]] : [{ task: b, label: 'gate-b' }, a, verdicts[0]]
    assert.match(heldVerdict?.reason ?? '', new RegExp(`requester ${requester.toLowerCase()} has 1 credit left for model ${id} and 1 pending task here already holds it \\(buy more`))
    assert.equal(heldVerdict?.verdict, 'ignore')
    // the admitted one settles and uses the credit: the other is refused for want of credits, not for its pending hold
    await certify(admitted.task, admitted.label)
    gate.certified(idOf(admitted.task))
    assert.match((await gate.admit(idOf(held), held))?.reason ?? '', /has no credits left for model/)
    await buyModelAccess(chain.wallets[OTHER], chain.publicClient, registry(), model.modelId, 'credits', 1n)
    assert.equal(await gate.admit(idOf(held), held), undefined)
  })

  it('allowlist: settlement refuses a requester who is not on the list, and settles once it is', async () => {
    const id = allowlist.modelId
    const task = await paidTask(chain, 'al-1', { modelId: id, requester: REQUESTER, fee: fee() })
    const [, who] = await refusedAtSettlement(task, 'al-1', 'NotAllowed')
    assert.equal(who, address(REQUESTER))
    await setModelAllowed(chain.wallets[OWNER], chain.publicClient, registry(), id, address(REQUESTER), true)
    await certify(task, 'al-1')
  })
})

describe('model access tiers on-chain: purchases in an ERC-20', function () {
  this.timeout(CHAIN_TIMEOUT_MS)
  let chain: PoiChain
  before(async () => { chain = await startPoiChain({}, {}, { testToken: true }) })
  after(async () => { await chain?.stop() })

  it('pulls the price in the token after an approval, credits the owner exactly, and takes no ETH', async () => {
    const token = chain.deployment.paymentAsset
    const [owner, requester] = [chain.wallets[OWNER], chain.wallets[REQUESTER]]
    const registry = chain.deployment.modelRegistry
    const model = await ownedManifest(owner.account.address, 'erc20-credits')
    await registerModel(owner, chain.publicClient, registry, model.modelId, model.block, 0n)
    await setModelAccessTier(owner, chain.publicClient, registry, model.modelId, 'credits', CREDIT_PRICE)
    const minted = 10n * CREDIT_PRICE
    await chain.publicClient.waitForTransactionReceipt({ hash: await requester.writeContract({ address: token, abi: TestTokenAbi, functionName: 'mint', args: [requester.account.address, minted] }) })
    // ETH sent on a token network is refused with the vault's error
    await expectRevert(chain.publicClient.simulateContract({
      account: requester.account, address: registry, abi: ModelRegistryAbi, functionName: 'buyCredits', args: [bytesToHex(model.modelId), 1n], value: 1n
    }), 'WrongDepositValue')
    const bought = await buyModelAccess(requester, chain.publicClient, registry, model.modelId, 'credits', 3n)
    assert.deepEqual([bought.paid, bought.credits], [3n * CREDIT_PRICE, 3n])
    const balanceOf = async (who: `0x${string}`): Promise<bigint> => await chain.publicClient.readContract({ address: token, abi: TestTokenAbi, functionName: 'balanceOf', args: [who] })
    assert.equal(await balanceOf(requester.account.address), minted - 3n * CREDIT_PRICE)
    assert.equal(await readCredit(chain.publicClient, chain.deployment.taskManager, owner.account.address), 3n * CREDIT_PRICE)
    const { amount } = await withdrawCredit(owner, chain.publicClient, chain.deployment.taskManager)
    assert.equal(amount, 3n * CREDIT_PRICE)
    assert.equal(await balanceOf(owner.account.address), 3n * CREDIT_PRICE, 'the owner received the token, to the wei')
  })
})
