/**
 * A zk task end to end on a chain (issue 16, point 3 and 4 together): an anvil chain with three
 * staked operators and the zk test model registered with its Groth16 verifier; one operator runs
 * with `prove` (--prove), an aggregator settles zk results. A light requester asks for the zk
 * tier: the prover runs the model, proves it in its proving process and announces the proof; the
 * requester checks it with the model's key; the aggregator posts it (`submitZkResult`) and the
 * chain credits the prover the signers' share. A task whose input commitment is not its input's
 * gets no proof (the prover says why), and a task of tier both is not run.
 */
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { deployVerifier, readCredit, registerModel, setModelZkVerifier } from '../contracts/index.js'
import { ChainClient } from '../node/chain-client.js'
import { MANIFEST_FILE, MODEL_FILE, attachZkArtifacts, encodeManifest, loadModelDir, type ModelDir } from '../node/inference/index.js'
import { releaseCurve } from '../node/inference/zk/index.js'
import type { PoiNode } from '../node/poi-node.js'
import { NoProofError, requestZkInference } from '../node/requester/index.js'
import { randomTaskNonce } from '../node/requester/index.js'
import { TASK_TIERS, signTask, to0xHex, uint256ToBytes32 } from '../protocols/wire/index.js'
import { startPaidNetwork, type PaidNetwork } from './helpers/paid-network.js'
import { waitForEvent } from './helpers/wait.js'
import type { Submission } from '../storage/index.js'
import { zkTestInput, zkTestModel } from './helpers/zk-test-model.js'

const X = [17, -90]
const TASK_TIMEOUT_MS = 60_000

describe('zk tasks on a chain: prover, requester, aggregator', function () {
  // the first zk file on a machine builds the test model's setup (about a minute)
  this.timeout(300_000)
  let net: PaidNetwork
  let model: ModelDir
  let prover: PoiNode
  let aggregator: PoiNode
  let requester: PoiNode

  before(async function () {
    const zk = await zkTestModel()
    net = await startPaidNetwork('poi-zk-chain-', 0n)
    // The zk test model with its circuit attached, in a model directory the prover holds.
    const attached = attachZkArtifacts(zk.manifest, { circuitId: zk.circuitId, wasm: zk.wasm, zkey: zk.zkey, vkey: zk.vkey })
    const dir = join(net.root, 'zk-model')
    await mkdir(join(dir, 'zk'), { recursive: true })
    await writeFile(join(dir, MODEL_FILE), zk.modelBytes)
    await writeFile(join(dir, 'zk', 'model.wasm'), zk.wasm)
    await writeFile(join(dir, 'zk', 'model.zkey'), zk.zkey)
    await writeFile(join(dir, 'zk', 'verification_key.json'), zk.vkey)
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(attached.manifest))
    model = await loadModelDir(dir)
    // its owner (anvil account 0, the fixtures' owner) registers it and its verifier
    const owner = net.chain.wallets[0]
    await registerModel(owner, net.chain.publicClient, net.chain.deployment.modelRegistry, model.modelId, encodeManifest(model.manifest), 0n)
    const verifier = await deployVerifier(owner, net.chain.publicClient, zk.verificationKey)
    await setModelZkVerifier(owner, net.chain.publicClient, net.chain.deployment.modelRegistry, model.modelId, verifier, zk.circuitId)

    prover = await net.start('prover', { operate: true }, net.operatorKeys[0], { modelDirs: [dir], prove: true })
    await net.start('op1', { operate: true }, net.operatorKeys[1], { modelDirs: [dir] })
    await net.start('op2', { operate: true }, net.operatorKeys[2], { modelDirs: [dir] })
    // anvil account 4 pays the aggregator's transactions
    aggregator = await net.start('aggregator', { aggregate: true }, undefined, { modelDirs: [dir], settlement: await ChainClient.connect(net.client.config, net.account(4)) })
    requester = await net.start('requester', { light: true })
    await net.fund(5, 10n ** 18n)
  })

  after(async function () {
    await net?.stop()
    await releaseCurve()
  })

  it('a zk task is proved by the prover, checked by the requester and settled on chain by the aggregator, paying the prover', async function () {
    const zk = await zkTestModel()
    const payee = net.operatorKeys[0].account.address
    const creditBefore = await readCredit(net.chain.publicClient, net.chain.deployment.taskManager, payee)
    const fee = net.chain.params.minTaskFee
    const proved = waitForEvent(prover, 'proved', { timeoutMs: TASK_TIMEOUT_MS, what: 'the prover\'s proof' })
    const submitted = new Promise<Submission>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('the aggregator confirmed no zk submission in time')) }, TASK_TIMEOUT_MS)
      aggregator.submitter?.addEventListener('confirmed', ({ detail }) => { if (detail.kind === 'zk') { clearTimeout(timer); resolve(detail) } })
      aggregator.submitter?.addEventListener('failed', ({ detail }) => { if (detail.kind === 'zk') { clearTimeout(timer); reject(new Error(`the zk submission failed: ${detail.lastError ?? ''}`)) } })
    })
    const result = await requestZkInference(requester, net.account(5), {
      modelId: model.modelId, input: zkTestInput(X), manifest: model.manifest, verificationKey: zk.verificationKey, circuitId: zk.circuitId, timeoutMs: TASK_TIMEOUT_MS, fee
    })
    assert.equal(result.prover.toLowerCase(), payee.toLowerCase(), 'the proof names the prover\'s account as payee')
    assert.ok(result.verifyMs > 0)
    const { provingMs } = await proved
    assert.ok(provingMs > 0)
    const submission = await submitted
    assert.equal(submission.id, to0xHex(result.taskId).slice(2))
    const settled = await net.client.zkSettlement(result.taskId)
    assert.ok(settled !== undefined, 'the chain holds the zk result')
    assert.equal(settled.resultHash, to0xHex(uint256ToBytes32(result.outputCommitment)))
    const creditAfter = await readCredit(net.chain.publicClient, net.chain.deployment.taskManager, payee)
    assert.ok(creditAfter > creditBefore, 'the prover is credited its share of the fee')
  })

  it('a task whose input commitment is not its input\'s gets no proof, and the prover says why', async function () {
    const wrong = uint256ToBytes32(12345n)
    const set = requester.operatorSet
    const task = await signTask(net.account(5), set.domain.taskManager, {
      chainId: set.domain.chainId, modelId: model.modelId, input: zkTestInput(X), fee: net.chain.params.minTaskFee, deadline: BigInt(Date.now() + TASK_TIMEOUT_MS),
      quorumBps: 10_000, nonce: randomTaskNonce(), tier: 'zk', inputCommitment: wrong
    })
    const refused = waitForEvent(prover, 'failed', { timeoutMs: TASK_TIMEOUT_MS, what: 'the prover\'s refusal', filter: (f) => f.reason.includes('not the commitment of its input') })
    const taskId = await requester.announce(task)
    const { reason } = await refused
    assert.match(reason, /cannot prove/)
    assert.equal(prover.proofOf(taskId), undefined)
  })

  it('a requester refuses a proof its own key does not verify, and gives up at the deadline with NoProofError saying why', async function () {
    const zk = await zkTestModel()
    const ask = requestZkInference(requester, net.account(5), {
      modelId: model.modelId, input: zkTestInput([1, 2]), manifest: model.manifest, verificationKey: zk.verificationKey, circuitId: zk.circuitId + 1n, timeoutMs: 8_000, fee: net.chain.params.minTaskFee
    })
    // the requester expects circuit id + 1: the network's valid proof is not about it, so it is refused here, then the deadline
    await assert.rejects(ask, (err: unknown) => err instanceof NoProofError && err.refused.length > 0 && /circuit/.test(err.refused.join(' ')))
  })

  it('a task of tier both is not run: the network does not sign output commitments yet', async function () {
    const set = requester.operatorSet
    const task = await signTask(net.account(5), set.domain.taskManager, {
      chainId: set.domain.chainId, modelId: model.modelId, input: zkTestInput(X), fee: net.chain.params.minTaskFee, deadline: BigInt(Date.now() + TASK_TIMEOUT_MS),
      quorumBps: 6667, nonce: randomTaskNonce(), tier: 'both', inputCommitment: uint256ToBytes32(1n)
    })
    assert.equal(task.tier, TASK_TIERS.both)
    // the requester's first hop (any full node it is meshed with) refuses it, so it goes no further
    const full = net.nodes.filter(n => n !== requester)
    const ignored = Promise.any(full.map(async n => await waitForEvent(n, 'rejected', { timeoutMs: TASK_TIMEOUT_MS, what: 'the both task refused', filter: (r) => r.topic === 'task' && /both tier/.test(r.reason) })))
    const taskId = await requester.announce(task)
    const { verdict } = await ignored
    assert.ok(full.every(n => !n.knowsTask(taskId)), 'no full node took the both task')
    assert.equal(verdict, 'ignore')
  })
})
