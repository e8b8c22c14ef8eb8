/**
 * TaskManager's assembly forwarder `_runZkSettlement` (contracts/src/TaskManager.sol): it copies
 * submitZkResult's calldata behind ZkSettlement's 7 storage-slot words and adds their size to
 * the two head offsets (the task, the requester's signature) before it DELEGATECALLs the
 * library. Nothing in Solidity checks the words it rewrites, so this file sends hand-made
 * calldata: offsets past the end of the calldata, offsets that would wrap around 2^256 when the
 * forwarder adds its shift (and so point the library at the slot words), a signature length past
 * the end, an inner offset of the task past the end, and calldata cut short. Each must revert
 * (the call, and a mined transaction) and change nothing; the same task then settles on
 * well-formed calldata, in the ABI's layout and in another valid layout (the tails swapped),
 * which only decodes right if the forwarder shifts whatever offsets it is given.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { bytesToHex, encodeFunctionData, type Hex } from 'viem'
import { TaskManagerAbi, deposit, readCredit, readVault, taskArgs, zkResultArgs, type ZkProof } from '../contracts/index.js'
import { taskIdOf, type TaskAnnouncement } from '../protocols/wire/index.js'
import { ETHER } from './consensus-fixtures.js'
import { paidTask, startPoiChain, type PoiChain } from './helpers/poi-chain.js'
import { registerZkModel } from './helpers/zk-chain.js'
import { FIXTURE_CIRCUIT_ID, fixtureProof, zkVerifierFixture } from './helpers/zk-verifier-fixture.js'

/** anvil accounts: 0 deploys, 1 owns the model, 2 requests, 3 is the prover, 4 submits. */
const OWNER = 1
const REQUESTER = 2
const PROVER = 3
const SUBMITTER = 4
const ACCOUNTS = 5
const MODEL_FEE = 10n ** 14n
/** ZkSettlement's storage parameters the forwarder puts before the arguments: 7 words. */
const FORWARDER_SHIFT = 7n * 32n
const WORD = 32
/** Head of submitZkResult's arguments: the task's offset, the signature's offset, then ZkResult in place (12 words). */
const TASK_OFFSET_WORD = 0
const SIG_OFFSET_WORD = 1
/** Enough for a settlement (about 390,000) and for whatever a malformed call burns before it reverts. */
const TX_GAS = 3_000_000n
const TWO_256 = 1n << 256n

/** Calldata as its selector and 32-byte words, to change a word and put it back together. */
class Calldata {
  readonly selector: string
  readonly words: string[]

  constructor (data: Hex) {
    this.selector = data.slice(0, 10)
    const body = data.slice(10)
    assert.equal(body.length % 64, 0, 'ABI-encoded arguments are whole words')
    this.words = body.match(/.{64}/g) ?? []
  }

  word (i: number): bigint { return BigInt('0x' + this.words[i]) }

  with (i: number, value: bigint): Calldata {
    const copy = new Calldata(this.hex())
    copy.words[i] = ((value % TWO_256 + TWO_256) % TWO_256).toString(16).padStart(64, '0')
    return copy
  }

  hex (): Hex { return `${this.selector}${this.words.join('')}` as Hex }
  /** Bytes after the selector, what offsets are relative to. */
  get size (): bigint { return BigInt(this.words.length * WORD) }
}

describe('zk settlement forwarder: hand-made submitZkResult calldata', function () {
  this.timeout(120_000)
  let chain: PoiChain
  let task: TaskAnnouncement
  let proof: ZkProof
  let good: Calldata
  const tm = (): `0x${string}` => chain.deployment.taskManager
  const address = (account: number): `0x${string}` => chain.wallets[account].account.address

  /** Everything a settlement of the task would change. */
  const state = async (): Promise<Record<string, unknown>> => ({
    settled: await chain.publicClient.readContract({ address: tm(), abi: TaskManagerAbi, functionName: 'isSettled', args: [bytesToHex(taskIdOf(task, tm()))] }),
    requester: (await readVault(chain.publicClient, tm(), address(REQUESTER))).balance,
    owner: await readCredit(chain.publicClient, tm(), address(OWNER)),
    treasury: await readCredit(chain.publicClient, tm(), address(0)),
    prover: await readCredit(chain.publicClient, tm(), address(PROVER))
  })

  /** `data` must revert as a call and as a mined transaction, and change nothing. */
  const refused = async (data: Hex, what: string): Promise<void> => {
    const before = await state()
    await assert.rejects(chain.publicClient.call({ account: chain.wallets[SUBMITTER].account, to: tm(), data, gas: TX_GAS }), `${what}: the call must revert`)
    const hash = await chain.wallets[SUBMITTER].sendTransaction({ to: tm(), data, gas: TX_GAS })
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash })
    assert.equal(receipt.status, 'reverted', `${what}: the transaction must revert`)
    assert.deepEqual(await state(), before, `${what}: nothing changes`)
  }

  before(async function () {
    const { vkey } = await zkVerifierFixture()
    chain = await startPoiChain({}, { accounts: ACCOUNTS })
    const { model } = await registerZkModel(chain, { owner: OWNER, name: 'zk-forwarder', fee: MODEL_FEE, vkey, circuitId: FIXTURE_CIRCUIT_ID })
    await deposit(chain.wallets[REQUESTER], chain.publicClient, tm(), ETHER)
    // an input commitment below the field: its first byte 0x01..0x2f
    const commitment = randomBytes(32)
    commitment[0] = 1 + commitment[0] % 0x2f
    task = await paidTask(chain, 'zk-forwarder', {
      requester: REQUESTER, modelId: model.modelId, fee: MODEL_FEE + chain.params.minTaskFee, tier: 'zk', inputCommitment: new Uint8Array(commitment)
    })
    proof = await fixtureProof(BigInt(bytesToHex(commitment)), address(PROVER))
    good = new Calldata(encodeFunctionData({
      abi: TaskManagerAbi,
      functionName: 'submitZkResult',
      args: [taskArgs(task), bytesToHex(task.requesterSig), zkResultArgs(proof, { outputRef: bytesToHex(randomBytes(32)), prover: address(PROVER) })]
    }))
    // the layout the cases below rely on: the task's tail first, right after the 14-word head, then the signature's
    assert.equal(good.word(TASK_OFFSET_WORD), 14n * 32n)
    assert.ok(good.word(SIG_OFFSET_WORD) > good.word(TASK_OFFSET_WORD))
  })
  after(async function () {
    await chain?.stop()
    // fullProve built snarkjs's curve on globalThis; its worker threads keep the process alive
    await (globalThis as { curve_bn128?: { terminate: () => Promise<void> } }).curve_bn128?.terminate()
  })

  it('the well-formed calldata would settle (eth_call answers true)', async function () {
    const { data } = await chain.publicClient.call({ account: chain.wallets[SUBMITTER].account, to: tm(), data: good.hex(), gas: TX_GAS })
    assert.equal(data !== undefined && BigInt(data), 1n)
  })

  it('reverts, changing nothing, on head offsets past the end of the calldata', async function () {
    await refused(good.with(TASK_OFFSET_WORD, good.size).hex(), 'task offset = calldata size')
    await refused(good.with(TASK_OFFSET_WORD, good.size + 32n * 100n).hex(), 'task offset far past the end')
    await refused(good.with(SIG_OFFSET_WORD, good.size).hex(), 'signature offset = calldata size')
    await refused(good.with(TASK_OFFSET_WORD, 1n << 64n).hex(), 'task offset 2^64')
  })

  it('reverts, changing nothing, on head offsets that wrap around 2^256 when the forwarder shifts them (onto its slot words)', async function () {
    // + 0xe0 wraps these to 0 and 0x20: the library would decode the task from the slot words
    await refused(good.with(TASK_OFFSET_WORD, TWO_256 - FORWARDER_SHIFT).hex(), 'task offset 2^256 - shift')
    await refused(good.with(TASK_OFFSET_WORD, TWO_256 - FORWARDER_SHIFT + 32n).hex(), 'task offset 2^256 - shift + 32')
    await refused(good.with(SIG_OFFSET_WORD, TWO_256 - FORWARDER_SHIFT).hex(), 'signature offset 2^256 - shift')
    await refused(good.with(TASK_OFFSET_WORD, TWO_256 - 1n).hex(), 'task offset 2^256 - 1')
  })

  it('reverts, changing nothing, on lengths and inner offsets past the end, and on calldata cut short', async function () {
    const sigAt = Number(good.word(SIG_OFFSET_WORD) / 32n)
    await refused(good.with(sigAt, good.size).hex(), 'signature length past the end')
    await refused(good.with(sigAt, TWO_256 - 1n).hex(), 'signature length 2^256 - 1')
    // the task's first head word is its modelId's offset, relative to the task
    const taskAt = Number(good.word(TASK_OFFSET_WORD) / 32n)
    await refused(good.with(taskAt, good.size).hex(), 'the task\'s modelId offset past the end')
    await refused(good.with(taskAt, TWO_256 - 1n).hex(), 'the task\'s modelId offset 2^256 - 1')
    await refused(good.hex().slice(0, -64) as Hex, 'calldata one word short')
    await refused(good.hex().slice(0, 10 + 64 * 13) as Hex, 'calldata cut inside the head')
  })

  it('settles on well-formed calldata laid out another valid way (the signature\'s tail before the task\'s), then refuses it again as settled', async function () {
    // tails swapped: [head][signature tail][task tail]; only the two head offsets change
    const head = good.words.slice(0, 14)
    const taskTail = good.words.slice(Number(good.word(TASK_OFFSET_WORD) / 32n), Number(good.word(SIG_OFFSET_WORD) / 32n))
    const sigTail = good.words.slice(Number(good.word(SIG_OFFSET_WORD) / 32n))
    const swapped = new Calldata(`${good.selector}${[...head, ...sigTail, ...taskTail].join('')}` as Hex)
      .with(SIG_OFFSET_WORD, 14n * 32n)
      .with(TASK_OFFSET_WORD, BigInt((14 + sigTail.length) * 32))
    assert.notEqual(swapped.hex(), good.hex())
    const before = await state()
    const hash = await chain.wallets[SUBMITTER].sendTransaction({ to: tm(), data: swapped.hex(), gas: TX_GAS })
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash })
    assert.equal(receipt.status, 'success')
    const after = await state()
    assert.equal(after.settled, true)
    assert.equal(before.settled, false)
    assert.ok((after.prover as bigint) > (before.prover as bigint), 'the prover is paid')
    assert.equal(after.requester, (before.requester as bigint) - MODEL_FEE - chain.params.minTaskFee)
    // the ABI's own layout of the same task is now a no-op returning false
    const { data } = await chain.publicClient.call({ account: chain.wallets[SUBMITTER].account, to: tm(), data: good.hex(), gas: TX_GAS })
    assert.equal(data !== undefined && BigInt(data), 0n)
  })
})
