/**
 * Issue 10, holes 1, 2 and the registry half of 4, on a real anvil: an exiting operator's stake
 * stays until no certificate naming an epoch that counted it can be accepted (and deployment refuses
 * a TaskManager that would accept older ones); withdrawn operators leave the list advanceEpoch
 * walks, which is capped at the wire's MAX_OPERATORS; a key whose negation is registered is refused.
 * Each test starts its own chain, so each passes alone.
 */
import assert from 'node:assert/strict'
import { BaseError, decodeErrorResult, encodeDeployData, numberToHex, pad, zeroAddress, type Hex } from 'viem'
import { generateBlsSecretKey, signAttestation, type EquivocationEvidence, type OperatorSet } from '../consensus/index.js'
import {
  DeployError, OperatorRegistryAbi, SlashingManagerAbi, TaskManagerAbi, taskManagerBytecode, certificateCalldata, deployPoi,
  evidenceCalldata, readOperatorSet, registerOperator, registrationCalldata
} from '../contracts/index.js'
import { MAX_OPERATORS } from '../protocols/wire/index.js'
import { ETHER, taskResult } from './consensus-fixtures.js'
import { expectRevert, makeCertificate, nextEpoch, paidTask, registerAll, resultOf, startPoiChain, type PoiChain, type Wallet } from './helpers/poi-chain.js'

const CHAIN_TIMEOUT_MS = 60_000
const EPOCH_SECONDS = 100n
/** Shorter than an epoch, so the epoch rule decides until the last certifiable epoch has closed. */
const EXIT_DELAY = 10n
/** BLS12-381 group order r: r − sk is the secret key of −pk. */
const GROUP_ORDER = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001n
/**
 * OperatorRegistry's storage slot of `_operatorList` (its length): slots 0–6 are Ownable's owner,
 * EIP712's two name fallbacks, Nonces and Votes' three mappings; 7 the epoch slot, 8 guardian and
 * exitDelay, 9 slasher, 10 minStake.
 */
const OPERATOR_LIST_SLOT: Hex = pad('0xb', { size: 32 })

function negatedSecretKey (secretKey: Uint8Array): Uint8Array {
  const sk = BigInt(`0x${Buffer.from(secretKey).toString('hex')}`)
  return Uint8Array.from(Buffer.from((GROUP_ORDER - sk).toString(16).padStart(64, '0'), 'hex'))
}

/**
 * The chain of the tests that need no other deploy parameters: started once, and each such test
 * runs on an anvil snapshot of it that is reverted afterwards, so it starts from the freshly
 * deployed contracts as on a chain of its own, without another anvil start and deployment.
 */
let sharedChain: Promise<PoiChain> | undefined
after(async () => { await (await sharedChain)?.stop() })

async function withChain (params: Parameters<typeof startPoiChain>[0], body: (chain: PoiChain) => Promise<void>): Promise<void> {
  if (params === undefined || Object.keys(params).length === 0) {
    sharedChain ??= startPoiChain({ epochDuration: EPOCH_SECONDS, exitDelay: EXIT_DELAY })
    const shared = await sharedChain
    const id = await shared.testClient.snapshot()
    try {
      await body(shared)
    } finally {
      await shared.testClient.revert({ id })
    }
    return
  }
  const chain = await startPoiChain({ epochDuration: EPOCH_SECONDS, exitDelay: EXIT_DELAY, ...params })
  try {
    await body(chain)
  } finally {
    await chain.stop()
  }
}

const simulateWithdraw = async (chain: PoiChain, wallet: Wallet): Promise<unknown> =>
  await chain.publicClient.simulateContract({ account: wallet.account, address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'withdraw' })
const withdraw = async (chain: PoiChain, wallet: Wallet): Promise<void> => {
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash: await wallet.writeContract({ address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'withdraw' }) })
  assert.equal(receipt.status, 'success')
}
const requestExit = async (chain: PoiChain, wallet: Wallet): Promise<void> => {
  await chain.publicClient.waitForTransactionReceipt({ hash: await wallet.writeContract({ address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'requestExit' }) })
}
const passExitDelay = async (chain: PoiChain): Promise<void> => {
  await chain.testClient.increaseTime({ seconds: Number(EXIT_DELAY) })
  await chain.testClient.mine({ blocks: 1 })
}
const operatorCount = async (chain: PoiChain): Promise<bigint> =>
  await chain.publicClient.readContract({ address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'operatorCount' })
const simulateRegister = async (chain: PoiChain, wallet: Wallet, secretKey: Uint8Array): Promise<unknown> => {
  const { pubkey, proofOfPossession } = registrationCalldata(secretKey, wallet.account.address)
  return await chain.publicClient.simulateContract({
    account: wallet.account, address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'register', args: [pubkey, proofOfPossession], value: ETHER
  })
}

describe('registry holes: exiting stake stays slashable while its epochs can still be certified (hole 1)', function () {
  this.timeout(CHAIN_TIMEOUT_MS)

  it('refuses withdraw while a certificate of the last epoch that counted the stake is accepted, and evidence of that epoch still slashes', async () => {
    // a day to settle: the certificate is tried again after three hour-long epochs
    await withChain({ maxEpochAge: 2n, settlementWindow: 86_400n, withdrawalDelay: 2n * 86_400n }, async (chain) => {
      const keys = Array.from({ length: 3 }, () => generateBlsSecretKey())
      await registerAll(chain, keys, keys.map(() => 10n * ETHER))
      await nextEpoch(chain)
      const set = await readOperatorSet(chain.publicClient, chain.deployment, 1n)
      const leaver = chain.wallets[1] // operator 0 of epoch 1
      await requestExit(chain, leaver) // exitEpoch 2: epoch 1 is the last that counts it
      // a certificate of epoch 1 that operator 0 signed, and its equivocation in the same epoch
      const task = await paidTask(chain, 'late')
      const certificate = certificateCalldata(makeCertificate(set, keys, [0, 1, 2], resultOf(chain, task, 'late', 'out')), set, task)
      const simulateCertificate = async (): Promise<boolean> => (await chain.publicClient.simulateContract({
        account: chain.wallets[9].account, address: chain.deployment.taskManager, abi: TaskManagerAbi, functionName: 'submitCertificate', args: certificate
      })).result
      const evidence = evidenceCalldata(equivocation(set, keys[0], 0, 'late-equivocation'), set)
      const simulateEvidence = async (): Promise<bigint> => (await chain.publicClient.simulateContract({
        account: chain.wallets[9].account, address: chain.deployment.slashing, abi: SlashingManagerAbi, functionName: 'submitEvidence', args: [evidence]
      })).result

      // anyone advances epochs back to back after a gap; the exit delay is long past
      for (const epoch of [2n, 3n]) {
        assert.equal((await nextEpoch(chain)).epoch, epoch)
        assert.equal(await simulateCertificate(), true, `a certificate of epoch 1 is still accepted in epoch ${epoch}`)
        assert.deepEqual(await expectRevert(simulateWithdraw(chain, leaver), 'StakeStillCertifiable'), [4n])
        assert.equal(await simulateEvidence(), 10n * ETHER * BigInt(chain.params.slashBps) / 10_000n)
      }
      const last = await nextEpoch(chain)
      assert.equal(last.epoch, 4n)
      await expectRevert(simulateCertificate(), 'StaleEpoch')
      // a certificate of epoch 1 may have landed in the block before epoch 4 started: evidence
      // against it still gets exitDelay from that moment
      const epoch4 = await chain.publicClient.readContract({ address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'getEpoch', args: [4n] })
      assert.deepEqual(await expectRevert(simulateWithdraw(chain, leaver), 'ExitNotReady'), [epoch4.startedAt + EXIT_DELAY])
      assert.equal(await simulateEvidence(), 10n * ETHER * BigInt(chain.params.slashBps) / 10_000n)
      await passExitDelay(chain)
      const before = await chain.publicClient.getBalance({ address: leaver.account.address })
      await withdraw(chain, leaver)
      assert.ok(await chain.publicClient.getBalance({ address: leaver.account.address }) > before + 9n * ETHER)
    })
  })

  it('refuses a deployment whose TaskManager accepts certificates older than the registry keeps stake for', async () => {
    await withChain({ maxEpochAge: 2n, maxCertificateAge: 2n }, async (chain) => {
      await assert.rejects(deployPoi(chain.wallets[0], chain.publicClient, { maxEpochAge: 3n, maxCertificateAge: 2n }),
        (err: unknown) => err instanceof DeployError && /maxEpochAge \(3\) exceeds the registry's maxCertificateAge \(2\)/.test(err.message))
      // the constructor enforces it too, for deployments that do not go through deployPoi
      const data = encodeDeployData({ abi: TaskManagerAbi, bytecode: taskManagerBytecode(zeroAddress, zeroAddress, zeroAddress), args: [chain.deployment.registry, chain.deployment.modelRegistry, 6667, 3n, {
        asset: zeroAddress, treasury: chain.wallets[0].account.address, protocolFeeBps: 500, minTaskFee: 0n, maxTaskLife: 3600n, settlementWindow: 3600n, withdrawalDelay: 10_800n, validationRegistry: zeroAddress
      }] })
      const reverted = await chain.publicClient.call({ account: chain.wallets[0].account, data }).then(() => undefined, (err: unknown) => err)
      const revertData = reverted instanceof BaseError ? (reverted.walk(e => typeof (e as { data?: unknown }).data === 'string') as { data?: Hex } | null)?.data : undefined
      assert.ok(revertData !== undefined, `expected the TaskManager constructor to revert, got ${String(reverted)}`)
      const decoded = decodeErrorResult({ abi: TaskManagerAbi, data: revertData })
      assert.equal(decoded.errorName, 'EpochAgeExceedsRegistry')
      assert.deepEqual(decoded.args, [3n, 2n])
      // raising maxEpochAge alone raises the registry's bound with it
      const deployment = await deployPoi(chain.wallets[0], chain.publicClient, { maxEpochAge: 5n })
      assert.equal(await chain.publicClient.readContract({ address: deployment.registry, abi: OperatorRegistryAbi, functionName: 'maxCertificateAge' }), 5n)
    })
  })
})

describe('registry holes: withdrawn operators leave the epoch loop, which is capped (hole 2)', function () {
  this.timeout(CHAIN_TIMEOUT_MS)

  it('swaps a withdrawn operator out of the list; later epochs commit to the new order and readers rebuild it', async () => {
    await withChain({}, async (chain) => {
      const keys = Array.from({ length: 3 }, () => generateBlsSecretKey())
      await registerAll(chain, keys, [1n, 2n, 3n].map(s => s * ETHER))
      await nextEpoch(chain)
      assert.equal(await operatorCount(chain), 3n)
      await requestExit(chain, chain.wallets[1])
      for (let i = 0; i < 3; i++) await nextEpoch(chain) // epoch 4 = exitEpoch 2 + maxCertificateAge 2
      await passExitDelay(chain)
      await withdraw(chain, chain.wallets[1])
      assert.equal(await operatorCount(chain), 2n)
      assert.equal(BigInt(await chain.publicClient.getStorageAt({ address: chain.deployment.registry, slot: OPERATOR_LIST_SLOT }) ?? '0x0'), 2n)

      const { epoch } = await nextEpoch(chain)
      const swapped = await readOperatorSet(chain.publicClient, chain.deployment, epoch)
      assert.deepEqual(swapped.operators.map(o => o.address), [chain.wallets[3].account.address, chain.wallets[2].account.address])

      // the same account comes back with a fresh key, at the end of the list
      const fresh = generateBlsSecretKey()
      await registerOperator(chain.wallets[1], chain.publicClient, chain.deployment.registry, fresh, ETHER)
      assert.equal(await operatorCount(chain), 3n)
      const next = await nextEpoch(chain)
      const set = await readOperatorSet(chain.publicClient, chain.deployment, next.epoch)
      assert.deepEqual(set.operators.map(o => o.address), [3, 2, 1].map(i => chain.wallets[i].account.address))
      const task = await paidTask(chain, 'after-swap')
      const certificate = certificateCalldata(makeCertificate(set, [keys[2], keys[1], fresh], [0, 1, 2], resultOf(chain, task, 'after-swap', 'out')), set, task)
      assert.equal((await chain.publicClient.simulateContract({
        account: chain.wallets[9].account, address: chain.deployment.taskManager, abi: TaskManagerAbi, functionName: 'submitCertificate', args: certificate
      })).result, true)
    })
  })

  it(`refuses a registration beyond MAX_OPERATORS (${MAX_OPERATORS}) with TooManyOperators`, async () => {
    await withChain({}, async (chain) => {
      assert.equal(await chain.publicClient.readContract({ address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'MAX_OPERATORS' }), BigInt(MAX_OPERATORS))
      await registerOperator(chain.wallets[1], chain.publicClient, chain.deployment.registry, generateBlsSecretKey(), ETHER)
      assert.equal(BigInt(await chain.publicClient.getStorageAt({ address: chain.deployment.registry, slot: OPERATOR_LIST_SLOT }) ?? '0x0'), 1n)
      // 1023 registrations would take minutes; the list's length is what the cap reads, so fill it in place
      await chain.testClient.setStorageAt({ address: chain.deployment.registry, index: OPERATOR_LIST_SLOT, value: pad(numberToHex(MAX_OPERATORS - 1), { size: 32 }) })
      await registerOperator(chain.wallets[2], chain.publicClient, chain.deployment.registry, generateBlsSecretKey(), ETHER)
      assert.equal(await operatorCount(chain), BigInt(MAX_OPERATORS))
      assert.deepEqual(await expectRevert(simulateRegister(chain, chain.wallets[3], generateBlsSecretKey()), 'TooManyOperators'), [BigInt(MAX_OPERATORS)])
    })
  })
})

describe('registry holes: a key whose negation is registered is refused (hole 4, registry half)', function () {
  this.timeout(CHAIN_TIMEOUT_MS)

  it('refuses −pk once pk is registered, in either order, and the identity point', async () => {
    await withChain({}, async (chain) => {
      const key = generateBlsSecretKey()
      await registerOperator(chain.wallets[1], chain.publicClient, chain.deployment.registry, key, ETHER)
      // the proof of possession for −pk is valid (its owner knows r − sk): only the new rule refuses it
      await expectRevert(simulateRegister(chain, chain.wallets[2], negatedSecretKey(key)), 'NegatedKeyRegistered')

      const other = generateBlsSecretKey()
      await registerOperator(chain.wallets[3], chain.publicClient, chain.deployment.registry, negatedSecretKey(other), ETHER)
      await expectRevert(simulateRegister(chain, chain.wallets[4], other), 'NegatedKeyRegistered')

      const zero: Hex = pad('0x0', { size: 32 })
      const { proofOfPossession } = registrationCalldata(generateBlsSecretKey(), chain.wallets[5].account.address)
      await expectRevert(chain.publicClient.simulateContract({
        account: chain.wallets[5].account, address: chain.deployment.registry, abi: OperatorRegistryAbi, functionName: 'register',
        args: [{ x_a: zero, x_b: zero, y_a: zero, y_b: zero }, proofOfPossession], value: ETHER
      }), 'InvalidPublicKey')
      assert.equal(await operatorCount(chain), 2n)
    })
  })
})

function equivocation (set: OperatorSet, secretKey: Uint8Array, index: number, task: string): EquivocationEvidence {
  const a = taskResult(task, 'first')
  const b = taskResult(task, 'second')
  const sign = (result: ReturnType<typeof taskResult>): ReturnType<typeof signAttestation> =>
    signAttestation(secretKey, set.domain, { ...result, epoch: set.epoch, operatorIndex: index })
  return { taskId: a.taskId, operatorIndex: index, epoch: set.epoch, a: sign(a), b: sign(b) }
}
